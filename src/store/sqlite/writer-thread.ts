/**
 * The embedded store's writer in a worker thread: it owns the write connection, so that commits (and their
 * fsync) run beside the main thread instead of blocking it. Decision rows that arrive in the same turn of this
 * thread's event loop are written in one transaction (group commit).
 */
import { parentPort, workerData } from "node:worker_threads";
import {
  type ApiKeyRow,
  type ApprovalRow,
  type ChainOptions,
  type DecisionRow,
  type EventRow,
  type LabelRow,
  openDatabase,
  type PolicyRow,
  type RowOutcome,
  SqliteWriter,
  type WebhookWrite,
} from "./writer.ts";

export type WriterRequest =
  | { readonly id: number; readonly op: "decisions"; readonly rows: readonly DecisionRow[] }
  | { readonly id: number; readonly op: "policy"; readonly row: PolicyRow }
  | { readonly id: number; readonly op: "event"; readonly row: EventRow }
  | { readonly id: number; readonly op: "label"; readonly row: LabelRow }
  | { readonly id: number; readonly op: "apiKey"; readonly row: ApiKeyRow }
  | { readonly id: number; readonly op: "revokeApiKey"; readonly keyId: string; readonly revokedAt: string }
  | {
      readonly id: number;
      readonly op: "approval";
      readonly row: ApprovalRow;
      readonly expectedVersion: number;
    }
  | { readonly id: number; readonly op: "webhook"; readonly change: WebhookWrite }
  | { readonly id: number; readonly op: "close" };

/** A request before the client numbers it. */
export type WriterCall = WriterRequest extends infer R
  ? R extends WriterRequest
    ? Omit<R, "id">
    : never
  : never;

export type WriterReply =
  | { readonly id: number; readonly ok: true; readonly value?: readonly RowOutcome[] | boolean }
  | { readonly id: number; readonly ok: false; readonly message: string };

export interface WriterThreadData extends ChainOptions {
  readonly path: string;
  readonly busyTimeoutMs: number;
}

const port = parentPort;
if (port) {
  const { path, busyTimeoutMs, ...chainOptions } = workerData as WriterThreadData;
  let writer: SqliteWriter | undefined;
  let db: ReturnType<typeof openDatabase> | undefined;
  let openError: string | undefined;
  try {
    db = openDatabase(path, busyTimeoutMs);
    writer = new SqliteWriter(db, chainOptions);
  } catch (error) {
    openError = error instanceof Error ? error.message : String(error);
  }
  const reply = (message: WriterReply): void => port.postMessage(message);
  const failure = (id: number, error: unknown): WriterReply => ({
    id,
    ok: false,
    message: openError ?? (error instanceof Error ? error.message : String(error)),
  });

  let pending: { id: number; rows: readonly DecisionRow[] }[] = [];
  const flush = (): void => {
    const batch = pending;
    pending = [];
    try {
      if (!writer) throw new Error(openError);
      const outcomes = writer.writeDecisions(batch.flatMap((request) => request.rows));
      let offset = 0;
      for (const request of batch) {
        reply({ id: request.id, ok: true, value: outcomes.slice(offset, offset + request.rows.length) });
        offset += request.rows.length;
      }
    } catch (error) {
      for (const request of batch) reply(failure(request.id, error));
    }
  };

  port.on("message", (request: WriterRequest) => {
    if (request.op === "decisions") {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ id: request.id, rows: request.rows });
      return;
    }
    if (pending.length > 0) flush();
    try {
      if (request.op === "close") {
        try {
          writer?.checkpoint();
        } catch {
          // Every entry is already durable; a head left unsigned now is signed at the next close or checkpoint.
        }
        db?.close();
        reply({ id: request.id, ok: true });
        port.close();
        return;
      }
      if (!writer) throw new Error(openError);
      if (request.op === "policy") writer.putPolicy(request.row);
      else if (request.op === "label") {
        reply({ id: request.id, ok: true, value: writer.putLabel(request.row) });
        return;
      } else if (request.op === "revokeApiKey") {
        reply({ id: request.id, ok: true, value: writer.revokeApiKey(request.keyId, request.revokedAt) });
        return;
      } else if (request.op === "webhook") {
        reply({ id: request.id, ok: true, value: writer.writeWebhook(request.change) });
        return;
      } else if (request.op === "approval") {
        reply({
          id: request.id,
          ok: true,
          value: writer.updateApproval(request.row, request.expectedVersion),
        });
        return;
      } else if (request.op === "apiKey") writer.putApiKey(request.row);
      else writer.appendEvent(request.row);
      reply({ id: request.id, ok: true });
    } catch (error) {
      reply(failure(request.id, error));
    }
  });
}
