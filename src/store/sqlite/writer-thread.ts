/**
 * The embedded store's writer in a worker thread: it owns the write connection, so that commits (and their
 * fsync) run beside the main thread instead of blocking it. Every write is one of the writer's operations,
 * called by name; decision rows that arrive in the same turn of this thread's event loop are written in one
 * transaction (group commit).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { DecisionRow } from "../rows.ts";
import type { ChainOptions } from "../store.ts";
import { openDatabase } from "./database.ts";
import { type RowOutcome, SqliteWriter, type WriterOperation } from "./writer.ts";

export type WriterRequest =
  | { readonly id: number; readonly op: WriterOperation; readonly args: readonly unknown[] }
  | { readonly id: number; readonly op: "close" };

export type WriterReply =
  | { readonly id: number; readonly ok: true; readonly value?: unknown }
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
      const outcomes: RowOutcome[] = writer.writeDecisions(batch.flatMap((request) => request.rows));
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
    if (request.op === "writeDecisions") {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ id: request.id, rows: request.args[0] as readonly DecisionRow[] });
      return;
    }
    // Writes keep their order: decisions queued before this request are committed first.
    if (pending.length > 0) flush();
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
    try {
      if (!writer) throw new Error(openError);
      const operation = writer[request.op] as (...args: unknown[]) => unknown;
      reply({ id: request.id, ok: true, value: operation.apply(writer, [...request.args]) });
    } catch (error) {
      reply(failure(request.id, error));
    }
  });
}
