import { extname } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { newDecisionId, timestamp } from "../../core/ids.ts";
import { canonicalJson } from "../../core/json.ts";
import type { ApiKey } from "../../domain/api-key.ts";
import type { Approval } from "../../domain/approval.ts";
import {
  type ChainCheckpoint,
  type ChainKind,
  type ChainLink,
  decisionEntry,
  eventEntry,
  signingKeyFromPem,
} from "../../domain/chain.ts";
import type { DecisionEvent, NewDecisionEvent, SequencedEvent } from "../../domain/decision-event.ts";
import type { DecisionRecord } from "../../domain/decision-record.ts";
import type { Label, MemoryCase, ScopeCount } from "../../domain/memory-case.ts";
import {
  changesActivePolicy,
  type NewPolicyEvent,
  type PolicyEvent,
  type PolicySnapshot,
} from "../../domain/policy-registry.ts";
import type { VelocityMeasure, VelocityQuery } from "../../domain/velocity.ts";
import type { DeliveryAttempt, Webhook, WebhookProgress } from "../../domain/webhook.ts";
import {
  API_KEY_COLUMNS,
  apiKeyOf,
  approvalRow,
  DELIVERY_COLUMNS,
  decisionRow,
  deliveryOf,
  eventRow,
  memoryCaseOf,
  parseStored,
  policyEventOf,
  sequencedEventOf,
  storageError,
  storedDecisionPage,
  storedEvent,
  WEBHOOK_COLUMNS,
  webhookOf,
} from "../rows.ts";
import {
  type ApprovalChange,
  type ApprovalOpening,
  type ApprovalQuery,
  DEFAULT_PAGE_SIZE,
  type DecisionQuery,
  type DecisionScan,
  type LabelWrite,
  MAX_PAGE_SIZE,
  type PutDecisionResult,
  type Stats,
  type StatsQuery,
  StorageError,
  type Store,
  type StoredDecisionPage,
} from "../store.ts";
import {
  type ApiKeyRow,
  type ChainOptions,
  type DecisionRow,
  type LabelRow,
  openDatabase,
  type PolicyRow,
  type RowOutcome,
  SqliteWriter,
  type WebhookWrite,
} from "./writer.ts";
import type { WriterCall, WriterReply, WriterThreadData } from "./writer-thread.ts";

export interface SqliteStoreOptions extends ChainOptions {
  /** How long a write waits for another process's lock before failing (ms). */
  readonly busyTimeoutMs?: number;
  /** Most decisions written in one transaction. */
  readonly maxBatch?: number;
  /**
   * Where writes run: `inline` on the calling thread (no start-up cost: the CLI), or `thread` in a worker
   * thread that commits while the main thread keeps deciding (throughput: servers and batch jobs).
   */
  readonly writer?: "inline" | "thread";
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_BATCH = 512;
/**
 * Decisions queued before they are handed to the writer thread without waiting for the end of the turn. Small
 * hand-offs let the writer start committing while this thread is still deciding the rest of a burst (the
 * writer gathers whatever arrived during its previous commit into one transaction): over HTTP with 32
 * connections, 8 gave 7.0–7.7k decisions/s against 5.7k/s at 32, A/B on the same machine (docs/benchmarks.md).
 */
const THREAD_HANDOFF = 8;
/** How long reads may share one snapshot (see `read`). */
const MAX_SNAPSHOT_AGE_MS = 1;

interface PendingWrite {
  readonly row: DecisionRow;
  readonly resolve: (result: PutDecisionResult) => void;
  readonly reject: (error: Error) => void;
}

function putResult(outcome: RowOutcome): PutDecisionResult {
  switch (outcome.status) {
    case "duplicate":
      return { status: "duplicate", record: parseStored(outcome.json) as DecisionRecord };
    case "failed":
      throw new StorageError(`could not store the decision: ${outcome.message}`);
    default:
      return outcome;
  }
}

type WriterValue = readonly RowOutcome[] | boolean | undefined;

/** The writer running in a worker thread, called with promises. */
class WriterThread {
  private readonly worker: Worker;
  private readonly calls = new Map<
    number,
    { resolve: (value: WriterValue) => void; reject: (error: Error) => void }
  >();
  private nextId = 0;
  private failure: Error | undefined;

  /** `written` runs before each reply is handed on, so that what follows it can read what was written. */
  constructor(data: WriterThreadData, written: () => void) {
    const self = fileURLToPath(import.meta.url);
    this.worker = new Worker(new URL(`./writer-thread${extname(self)}`, import.meta.url), {
      workerData: data,
    });
    this.worker.on("message", (reply: WriterReply) => {
      written();
      const call = this.calls.get(reply.id);
      this.calls.delete(reply.id);
      if (reply.ok) call?.resolve(reply.value);
      else call?.reject(new Error(reply.message));
    });
    this.worker.on("error", (error) => this.fail(error));
    this.worker.on("exit", () => this.fail(new Error("the writer thread stopped")));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const call of this.calls.values()) call.reject(error);
    this.calls.clear();
  }

  call(request: WriterCall): Promise<WriterValue> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id });
    });
  }

  async close(): Promise<void> {
    if (!this.failure) await this.call({ op: "close" }).catch(() => undefined);
    await this.worker.terminate();
  }
}

/**
 * The embedded default store: one SQLite file through `node:sqlite`, in WAL mode with `synchronous=FULL`, so
 * a record is on disk before `putDecision` resolves. Decisions put in the same turn of the event loop are
 * committed together in one transaction (group commit): one fsync for the batch. Reads use their own
 * connection; WAL lets them run beside the writer.
 */
export class SqliteStore implements Store {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly maxBatch: number;
  private readonly inline: SqliteWriter | undefined;
  private readonly thread: WriterThread | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  private snapshotOpen = false;
  private snapshotOpenedAt = 0;
  private closed = false;
  private readonly statements: Statements;

  private constructor(path: string, db: DatabaseSync, options: SqliteStoreOptions) {
    this.path = path;
    this.db = db;
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    this.statements = prepareStatements(db);
    const chain: ChainOptions = {
      ...(options.signingKeyPem ? { signingKeyPem: options.signingKeyPem } : {}),
      ...(options.checkpointEvery ? { checkpointEvery: options.checkpointEvery } : {}),
    };
    if (options.writer === "thread") {
      // A bad key fails the open here, as it does inline, rather than every write in the thread.
      if (options.signingKeyPem) signingKeyFromPem(options.signingKeyPem);
      this.thread = new WriterThread(
        {
          path,
          busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
          ...chain,
        },
        () => this.endSnapshot(),
      );
    } else {
      this.inline = new SqliteWriter(db, chain);
    }
  }

  /** Opens (creating when missing) the database file and applies pending migrations. */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let db: DatabaseSync | undefined;
    try {
      db = openDatabase(path, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
      return new SqliteStore(path, db, options);
    } catch (error) {
      db?.close();
      throw storageError(`open the store at ${path}`, error);
    }
  }

  /** Runs one write on the writer, wherever it is. */
  private async write<T>(
    action: string,
    inline: (writer: SqliteWriter) => T,
    request: WriterCall,
  ): Promise<T | WriterValue> {
    this.ensureOpen();
    try {
      if (this.inline) {
        this.endSnapshot();
        return inline(this.inline);
      }
      return await this.track((this.thread as WriterThread).call(request));
    } catch (error) {
      throw storageError(action, error);
    }
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    promise.then(
      () => this.inFlight.delete(promise),
      () => this.inFlight.delete(promise),
    );
    return promise;
  }

  async putPolicy(snapshot: PolicySnapshot): Promise<void> {
    const row: PolicyRow = { ...snapshot, createdAt: timestamp(new Date()) };
    await this.write("store the policy snapshot", (writer) => writer.putPolicy(row), { op: "policy", row });
  }

  async getPolicy(policyHash: string): Promise<PolicySnapshot | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.getPolicy.get(policyHash));
    if (!row) return undefined;
    return {
      policyHash: String(row.policy_hash),
      policyId: String(row.policy_id),
      policyVersion: String(row.policy_version),
      text: String(row.policy_text),
    };
  }

  putDecision(record: DecisionRecord, json?: string, opening?: ApprovalOpening): Promise<PutDecisionResult> {
    this.ensureOpen();
    const row: DecisionRow = {
      ...decisionRow(record, json ?? canonicalJson(record)),
      ...(opening ? { approval: approvalRow(opening.approval, opening.events) } : {}),
    };
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      // A writer thread commits while this thread decides: hand it work early so both stay busy.
      if (this.thread && this.queue.length >= THREAD_HANDOFF) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      const rows = batch.map((pending) => pending.row);
      const settle = (outcomes: readonly RowOutcome[]): void => {
        for (let i = 0; i < batch.length; i++) {
          const pending = batch[i] as PendingWrite;
          try {
            pending.resolve(putResult(outcomes[i] as RowOutcome));
          } catch (error) {
            pending.reject(error as Error);
          }
        }
      };
      const reject = (error: unknown): void => {
        const failure = storageError("store the decision", error);
        for (const pending of batch) pending.reject(failure);
      };
      if (this.inline) {
        try {
          this.endSnapshot();
          settle(this.inline.writeDecisions(rows));
        } catch (error) {
          reject(error);
        }
      } else {
        this.track((this.thread as WriterThread).call({ op: "decisions", rows })).then(
          (outcomes) => settle(outcomes as readonly RowOutcome[]),
          reject,
        );
      }
    }
  }

  async getDecision(decisionId: string): Promise<DecisionRecord | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.getDecision.get(decisionId));
    return row ? (parseStored(String(row.record_json)) as DecisionRecord) : undefined;
  }

  async getDecisionJson(decisionId: string): Promise<{ json: string; tenantId: string } | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.getDecisionJson.get(decisionId));
    return row ? { json: String(row.record_json), tenantId: String(row.tenant_id) } : undefined;
  }

  async findByRequestId(tenantId: string, requestId: string): Promise<DecisionRecord | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.getByRequest.get(tenantId, requestId));
    return row ? (parseStored(String(row.record_json)) as DecisionRecord) : undefined;
  }

  async listDecisionJson(query: DecisionQuery): Promise<StoredDecisionPage> {
    this.ensureOpen();
    const limit = Math.min(Math.max(query.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const { where, params } = decisionFilter(query);
    if (query.cursor) {
      where.push("d.decision_id < ?");
      params.push(query.cursor);
    }
    const sql = `SELECT d.record_json, d.decision_id FROM decisions d ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY d.decision_id DESC LIMIT ?`;
    const rows = this.read(() => this.db.prepare(sql).all(...params, limit + 1));
    return storedDecisionPage(rows, limit);
  }

  async stats(query: StatsQuery): Promise<Stats> {
    this.ensureOpen();
    const { where, params } = decisionFilter(query);
    const whereSql = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const totalRow = this.read(() =>
      this.db.prepare(`SELECT count(*) AS total FROM decisions d ${whereSql}`).get(...params),
    );
    const groupSql =
      query.by === "reason_code"
        ? `SELECT r.reason_code AS key, count(*) AS count FROM decision_reason_codes r JOIN decisions d ON d.decision_id = r.decision_id ${whereSql} GROUP BY r.reason_code`
        : `SELECT d.${query.by} AS key, count(*) AS count FROM decisions d ${whereSql} GROUP BY d.${query.by}`;
    const rows = this.read(() => this.db.prepare(`${groupSql} ORDER BY count DESC, key ASC`).all(...params));
    return {
      total: Number(totalRow?.total ?? 0),
      groups: rows.map((row) => ({ key: String(row.key), count: Number(row.count) })),
    };
  }

  async putLabel(label: LabelWrite): Promise<DecisionEvent | undefined> {
    const event: DecisionEvent = {
      eventId: newDecisionId(),
      decisionId: label.decisionId,
      type: "label",
      data: {
        label: label.label,
        ...(label.summary !== undefined ? { summary: label.summary } : {}),
        ...(label.severity !== undefined ? { severity: label.severity } : {}),
      },
      createdAt: label.createdAt ?? timestamp(new Date()),
    };
    const row: LabelRow = {
      event: { ...event, dataJson: canonicalJson(event.data) },
      tenantId: label.tenantId,
      actionType: label.actionType,
      label: label.label,
      summary: label.summary ?? "",
      severity: label.severity ?? null,
      projection: label.projection,
      fingerprint: new Uint8Array(
        label.fingerprint.buffer,
        label.fingerprint.byteOffset,
        label.fingerprint.byteLength,
      ),
    };
    const stored = await this.write("store the label", (writer) => writer.putLabel(row), {
      op: "label",
      row,
    });
    return stored ? event : undefined;
  }

  async memoryScopes(): Promise<ScopeCount[]> {
    this.ensureOpen();
    return this.read(() =>
      this.statements.memoryScopes.all().map((row) => ({
        tenantId: String(row.tenant_id),
        actionType: String(row.action_type),
        count: Number(row.count),
      })),
    );
  }

  async loadMemory(visit: (memoryCase: MemoryCase) => void): Promise<number> {
    this.ensureOpen();
    let count = 0;
    this.read(() => {
      // Rows as arrays: a million cases load faster without an object per row.
      const statement = this.statements.memoryCases;
      statement.setReturnArrays(true);
      for (const row of statement.iterate() as unknown as Iterable<
        [string, string, string, Label, Uint8Array]
      >) {
        const [decisionId, tenantId, actionType, label, bytes] = row;
        visit({
          decisionId,
          tenantId,
          actionType,
          label,
          vector: new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        });
        count++;
      }
    });
    return count;
  }

  async memoryCases(decisionIds: readonly string[]): Promise<MemoryCase[]> {
    this.ensureOpen();
    const cases: MemoryCase[] = [];
    this.read(() => {
      for (const id of decisionIds) {
        const row = this.statements.memoryCase.get(id);
        if (row) cases.push(memoryCaseOf(row));
      }
    });
    return cases;
  }

  async memorySummaries(decisionIds: readonly string[]): Promise<Map<string, string>> {
    this.ensureOpen();
    const summaries = new Map<string, string>();
    this.read(() => {
      for (const id of decisionIds) {
        const row = this.statements.memorySummary.get(id);
        if (row) summaries.set(id, String(row.summary));
      }
    });
    return summaries;
  }

  async appendEvent(event: NewDecisionEvent): Promise<DecisionEvent> {
    const row = eventRow(event);
    await this.write("append the event", (writer) => writer.appendEvent(row), { op: "event", row });
    return storedEvent(row);
  }

  async getApproval(approvalId: string): Promise<Approval | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.getApproval.get(approvalId));
    return row ? (parseStored(String(row.approval_json)) as unknown as Approval) : undefined;
  }

  async findApproval(decisionId: string): Promise<Approval | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.findApproval.get(decisionId));
    return row ? (parseStored(String(row.approval_json)) as unknown as Approval) : undefined;
  }

  async listApprovals(query: ApprovalQuery): Promise<Approval[]> {
    this.ensureOpen();
    const limit = Math.min(Math.max(query.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const where: string[] = [];
    const params: string[] = [];
    if (query.state) {
      where.push("state = ?");
      params.push(query.state);
    }
    if (query.tenantId) {
      where.push("tenant_id = ?");
      params.push(query.tenantId);
    }
    const sql = `SELECT approval_json FROM approvals ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at DESC, approval_id DESC`;
    const approvals: Approval[] = [];
    this.read(() => {
      for (const row of this.db.prepare(sql).iterate(...params)) {
        const approval = parseStored(String(row.approval_json)) as unknown as Approval;
        if (query.role && !approval.approver_roles.includes(query.role)) continue;
        approvals.push(approval);
        if (approvals.length === limit) break;
      }
    });
    return approvals;
  }

  async updateApproval(change: ApprovalChange): Promise<boolean> {
    const row = approvalRow(change.approval, change.events);
    const { expectedVersion } = change;
    const applied = await this.write(
      "update the approval",
      (writer) => writer.updateApproval(row, expectedVersion),
      { op: "approval", row, expectedVersion },
    );
    return applied === true;
  }

  async dueApprovals(now: string, limit = DEFAULT_PAGE_SIZE): Promise<Approval[]> {
    this.ensureOpen();
    const rows = this.read(() => this.statements.dueApprovals.all(now, limit));
    return rows.map((row) => parseStored(String(row.approval_json)) as unknown as Approval);
  }

  async listEvents(decisionId: string): Promise<DecisionEvent[]> {
    this.ensureOpen();
    const rows = this.read(() => this.statements.listEvents.all(decisionId));
    return rows.map((row) => ({
      eventId: String(row.event_id),
      decisionId: String(row.decision_id),
      type: String(row.type),
      createdAt: String(row.created_at),
      data: parseStored(String(row.data_json)),
    }));
  }

  async scanDecisions(query: DecisionScan, visit: (recordJson: string) => void): Promise<number> {
    this.ensureOpen();
    const { where, params } = decisionFilter(query);
    const limit = query.limit === undefined ? "" : " LIMIT ?";
    const sql = `SELECT d.record_json FROM decisions d ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY d.decision_id${limit}`;
    let count = 0;
    this.read(() => {
      const statement = this.db.prepare(sql);
      statement.setReturnArrays(true);
      const rows = statement.iterate(...params, ...(query.limit === undefined ? [] : [query.limit]));
      for (const row of rows as unknown as Iterable<[string]>) {
        visit(row[0]);
        count++;
      }
    });
    return count;
  }

  async readChain(visit: (link: ChainLink) => boolean): Promise<void> {
    this.ensureOpen();
    this.read(() => {
      const statement = this.statements.chain;
      statement.setReturnArrays(true);
      type Row = [
        number,
        ChainKind,
        string,
        string,
        string | null,
        string | null,
        string | null,
        string | null,
        string | null,
      ];
      for (const row of statement.iterate() as unknown as Iterable<Row>) {
        const [seq, kind, refId, hash, recordJson, decisionId, type, createdAt, dataJson] = row;
        let entry: string | undefined;
        if (kind === "decision") entry = recordJson === null ? undefined : decisionEntry(seq, recordJson);
        else if (decisionId !== null)
          entry = eventEntry(seq, {
            eventId: refId,
            decisionId,
            type: String(type),
            createdAt: String(createdAt),
            dataJson: String(dataJson),
          });
        if (!visit({ seq, kind, refId, hash, entry })) break;
      }
    });
  }

  async unchainedRows(limit = 100): Promise<{ kind: ChainKind; id: string }[]> {
    this.ensureOpen();
    const rows = this.read(() => this.statements.unchained.all(limit));
    return rows.map((row) => ({ kind: row.kind as ChainKind, id: String(row.id) }));
  }

  async listCheckpoints(): Promise<ChainCheckpoint[]> {
    this.ensureOpen();
    const rows = this.read(() => this.statements.checkpoints.all());
    return rows.map((row) => ({
      seq: Number(row.seq),
      headHash: String(row.head_hash),
      keyId: String(row.key_id),
      signature: String(row.signature),
      signedAt: String(row.signed_at),
    }));
  }

  async putWebhook(webhook: Webhook): Promise<void> {
    const change: WebhookWrite = {
      kind: "put",
      webhookId: webhook.webhookId,
      url: webhook.url,
      secret: webhook.secret,
      name: webhook.name,
      createdAt: webhook.createdAt,
      cursorSeq: webhook.cursorSeq,
    };
    await this.writeWebhook("store the webhook", change);
  }

  async listWebhooks(): Promise<Webhook[]> {
    this.ensureOpen();
    return this.read(() => this.statements.listWebhooks.all()).map(webhookOf);
  }

  deleteWebhook(webhookId: string): Promise<boolean> {
    return this.writeWebhook("remove the webhook", { kind: "delete", webhookId });
  }

  async lastEventSeq(): Promise<number> {
    this.ensureOpen();
    return Number(this.read(() => this.statements.lastEventSeq.get())?.seq ?? 0);
  }

  async eventsAfter(seq: number, types: readonly string[], limit: number): Promise<SequencedEvent[]> {
    this.ensureOpen();
    if (types.length === 0) return [];
    const sql = `SELECT seq, event_id, decision_id, type, created_at, data_json FROM decision_events
      WHERE seq > ? AND type IN (${types.map(() => "?").join(", ")}) ORDER BY seq LIMIT ?`;
    return this.read(() => this.db.prepare(sql).all(seq, ...types, limit)).map(sequencedEventOf);
  }

  claimWebhook(webhookId: string, holder: string, until: string, now: string): Promise<boolean> {
    return this.writeWebhook("lease the webhook", { kind: "claim", webhookId, holder, until, now });
  }

  async recordDelivery(attempt: DeliveryAttempt, progress: WebhookProgress): Promise<void> {
    await this.writeWebhook("log the delivery", {
      kind: "record",
      webhookId: attempt.webhookId,
      eventId: attempt.eventId,
      attempt: attempt.attempt,
      outcome: attempt.outcome,
      httpStatus: attempt.httpStatus ?? null,
      error: attempt.error ?? null,
      at: attempt.at,
      cursorSeq: progress.cursorSeq,
      attempts: progress.attempts,
      nextAttemptAt: progress.nextAttemptAt ?? null,
    });
  }

  async listDeliveries(query: {
    readonly webhookId?: string;
    readonly limit?: number;
  }): Promise<DeliveryAttempt[]> {
    this.ensureOpen();
    const limit = Math.min(Math.max(query.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const rows = this.read(() =>
      query.webhookId
        ? this.statements.deliveriesOf.all(query.webhookId, limit)
        : this.statements.deliveries.all(limit),
    );
    return rows.map(deliveryOf);
  }

  private async writeWebhook(action: string, change: WebhookWrite): Promise<boolean> {
    const changed = await this.write(action, (writer) => writer.writeWebhook(change), {
      op: "webhook",
      change,
    });
    return changed === true;
  }

  async putApiKey(key: ApiKey): Promise<void> {
    const row: ApiKeyRow = {
      keyId: key.keyId,
      keyHash: key.keyHash,
      name: key.name,
      scopesJson: JSON.stringify(key.scopes),
      tenantId: key.tenantId ?? null,
      rolesJson: JSON.stringify(key.roles),
      rateLimitPerSecond: key.rateLimitPerSecond ?? null,
      createdAt: key.createdAt,
    };
    await this.write("store the API key", (writer) => writer.putApiKey(row), { op: "apiKey", row });
  }

  async findApiKey(keyHash: string): Promise<ApiKey | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.findApiKey.get(keyHash));
    return row ? apiKeyOf(row) : undefined;
  }

  async listApiKeys(): Promise<ApiKey[]> {
    this.ensureOpen();
    return this.read(() => this.statements.listApiKeys.all()).map(apiKeyOf);
  }

  async revokeApiKey(keyId: string, revokedAt: string = timestamp(new Date())): Promise<boolean> {
    const revoked = await this.write(
      "revoke the API key",
      (writer) => writer.revokeApiKey(keyId, revokedAt),
      { op: "revokeApiKey", keyId, revokedAt },
    );
    return revoked === true;
  }

  async appendPolicyEvent(event: NewPolicyEvent): Promise<PolicyEvent | undefined> {
    this.ensureOpen();
    const createdAt = event.createdAt ?? timestamp(new Date());
    const detailJson = canonicalJson(event.detail);
    const changesActive = changesActivePolicy(event.type);
    // Registry changes are rare and small: they run on this connection, and BEGIN IMMEDIATE makes the
    // read of the current active policy and the write one step against any other writer of the file.
    this.endSnapshot();
    return this.guarded("write the policy event", () => {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const latest = this.statements.activePolicy.get(event.tenantId);
        const active = latest?.active_hash === undefined ? null : (latest.active_hash as string | null);
        if (changesActive && active !== (event.expectedActive ?? null)) {
          this.db.exec("ROLLBACK");
          return undefined;
        }
        const { lastInsertRowid } = this.statements.insertPolicyEvent.run(
          event.tenantId,
          event.type,
          event.policyHash ?? null,
          changesActive ? (event.policyHash ?? null) : active,
          detailJson,
          createdAt,
        );
        this.db.exec("COMMIT");
        return {
          seq: Number(lastInsertRowid),
          tenantId: event.tenantId,
          type: event.type,
          ...(event.policyHash !== undefined ? { policyHash: event.policyHash } : {}),
          detail: event.detail,
          createdAt,
        };
      } catch (error) {
        if (this.db.isTransaction) this.db.exec("ROLLBACK");
        throw error;
      }
    });
  }

  async listPolicyEvents(tenantId?: string): Promise<PolicyEvent[]> {
    this.ensureOpen();
    const rows = this.read(() =>
      tenantId === undefined
        ? this.statements.allPolicyEvents.all()
        : this.statements.tenantPolicyEvents.all(tenantId),
    );
    return rows.map(policyEventOf);
  }

  async activePolicies(): Promise<Map<string, string>> {
    this.ensureOpen();
    const rows = this.read(() => this.statements.activePolicies.all());
    return new Map(
      rows
        .filter((row) => row.active_hash !== null)
        .map((row) => [String(row.tenant_id), String(row.active_hash)]),
    );
  }

  async velocity(query: VelocityQuery): Promise<number> {
    this.ensureOpen();
    const params: (string | number | null)[] = [query.tenantId, query.since, query.until];
    const filters: string[] = [];
    const value = query.groupValue;
    if (query.groupBy.join(".") === "subject.id" && typeof value === "string") {
      // The subject has its own column: no record needs parsing to find the group.
      filters.push("subject_id = ?");
      params.push(value);
    } else if (query.groupBy.length > 0) {
      filters.push("json_extract(record_json, ?) = ?");
      params.push(
        requestJsonPath(query.groupBy),
        typeof value === "boolean" ? Number(value) : (value ?? null),
      );
    }
    for (const [column, values] of [
      ["verdict", query.verdicts],
      ["action_type", query.actionTypes],
    ] as const) {
      if (values === undefined) continue;
      filters.push(`${column} IN (${values.map(() => "?").join(", ")})`);
      params.push(...values);
    }
    const sql = `SELECT ${velocityAggregate(query.measure)} AS value FROM decisions
      WHERE tenant_id = ? AND created_at >= ? AND created_at < ?${filters.map((f) => ` AND ${f}`).join("")}`;
    const row = this.read(() => this.db.prepare(sql).get(...params));
    return Number(row?.value ?? 0);
  }

  async ping(): Promise<void> {
    this.ensureOpen();
    this.read(() => this.db.prepare("SELECT 1").get());
  }

  /** Writes what is queued, waits for the writer, then closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    this.endSnapshot();
    try {
      this.inline?.checkpoint();
    } catch {
      // Every entry is already durable; a head left unsigned now is signed at the next close or checkpoint.
    }
    await this.thread?.close();
    this.db.close();
  }

  private ensureOpen(): void {
    if (this.closed) throw new StorageError("the store is closed");
  }

  /**
   * Runs a read in the current snapshot. Starting a read transaction costs SQLite a few system calls (WAL
   * locks, a file check), about three times the read itself; so reads share one until the event loop's
   * turn ends, a write through this store completes, or it is a millisecond old (a snapshot opened late in
   * one turn would otherwise last into the next). A read therefore always sees this store's completed
   * writes, and other connections' writes at most a millisecond late.
   */
  private read<T>(query: () => T): T {
    return this.guarded("read from the store", () => {
      if (this.snapshotOpen && performance.now() - this.snapshotOpenedAt > MAX_SNAPSHOT_AGE_MS)
        this.endSnapshot();
      if (!this.snapshotOpen && !this.db.isTransaction) {
        this.statements.beginRead.run();
        this.snapshotOpen = true;
        this.snapshotOpenedAt = performance.now();
        setImmediate(() => this.endSnapshot());
      }
      return query();
    });
  }

  private endSnapshot(): void {
    if (!this.snapshotOpen) return;
    this.snapshotOpen = false;
    try {
      this.statements.endRead.run();
    } catch {
      // Ending a read-only transaction fails only when the connection is gone: there is nothing to keep.
    }
  }

  private guarded<T>(action: string, work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw storageError(action, error);
    }
  }
}

/** A SQLite JSON path into a stored record's request; segments are validated names (letters, digits, `_`, `-`). */
function requestJsonPath(segments: readonly string[]): string {
  return `$.request${segments.map((segment) => `."${segment}"`).join("")}`;
}

/** A number at a path of the record, or NULL when it holds anything else (a string is never coerced). */
function numberAt(path: string): string {
  return `CASE WHEN json_type(record_json, '${path}') IN ('integer', 'real') THEN json_extract(record_json, '${path}') END`;
}

function velocityAggregate(measure: VelocityMeasure): string {
  switch (measure.kind) {
    case "count":
      return "count(*)";
    case "sum_path":
      return `total(${numberAt(requestJsonPath(measure.segments))})`;
    case "sum_amount_usd": {
      // As amount_usd derives it (engine/normalize.ts): the amount itself in USD, else times the FX rate.
      const value = numberAt("$.request.action.amount.value");
      const rate = numberAt("$.request.evidence.fx_rate_to_usd");
      return `total(CASE WHEN json_extract(record_json, '$.request.action.amount.currency') = 'USD' THEN ${value}
        WHEN json_type(record_json, '$.request.action.amount.currency') = 'text' THEN ${value} * ${rate} END)`;
    }
  }
}

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: DatabaseSync) {
  return {
    getDecision: db.prepare("SELECT record_json FROM decisions WHERE decision_id = ?"),
    activePolicy: db.prepare(
      "SELECT active_hash FROM policy_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1",
    ),
    insertPolicyEvent: db.prepare(
      "INSERT INTO policy_events (tenant_id, type, policy_hash, active_hash, detail_json, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    allPolicyEvents: db.prepare(
      "SELECT seq, tenant_id, type, policy_hash, detail_json, created_at FROM policy_events ORDER BY seq",
    ),
    tenantPolicyEvents: db.prepare(
      "SELECT seq, tenant_id, type, policy_hash, detail_json, created_at FROM policy_events WHERE tenant_id = ? ORDER BY seq",
    ),
    activePolicies: db.prepare(
      "SELECT tenant_id, active_hash FROM policy_events WHERE seq IN (SELECT max(seq) FROM policy_events GROUP BY tenant_id) ORDER BY tenant_id",
    ),
    beginRead: db.prepare("BEGIN"),
    endRead: db.prepare("COMMIT"),
    getDecisionJson: db.prepare("SELECT record_json, tenant_id FROM decisions WHERE decision_id = ?"),
    getByRequest: db.prepare("SELECT record_json FROM decisions WHERE tenant_id = ? AND request_id = ?"),
    getPolicy: db.prepare(
      "SELECT policy_hash, policy_id, policy_version, policy_text FROM policy_snapshots WHERE policy_hash = ?",
    ),
    memoryScopes: db.prepare(
      "SELECT tenant_id, action_type, count(*) AS count FROM memory_cases GROUP BY tenant_id, action_type ORDER BY tenant_id, action_type",
    ),
    // In storage order: reading through the primary key's index instead would cost a seek per case.
    memoryCases: db.prepare(
      "SELECT decision_id, tenant_id, action_type, label, fingerprint FROM memory_cases",
    ),
    memorySummary: db.prepare("SELECT summary FROM memory_cases WHERE decision_id = ?"),
    memoryCase: db.prepare(
      "SELECT decision_id, tenant_id, action_type, label, fingerprint FROM memory_cases WHERE decision_id = ?",
    ),
    chain: db.prepare(
      // Scalar subqueries per kind read faster than outer joins here (one index probe a row, not two).
      `SELECT c.seq, c.kind, c.ref_id, c.hash,
         CASE c.kind WHEN 'decision' THEN (SELECT record_json FROM decisions WHERE decision_id = c.ref_id) END,
         CASE c.kind WHEN 'event' THEN (SELECT decision_id FROM decision_events WHERE event_id = c.ref_id) END,
         CASE c.kind WHEN 'event' THEN (SELECT type FROM decision_events WHERE event_id = c.ref_id) END,
         CASE c.kind WHEN 'event' THEN (SELECT created_at FROM decision_events WHERE event_id = c.ref_id) END,
         CASE c.kind WHEN 'event' THEN (SELECT data_json FROM decision_events WHERE event_id = c.ref_id) END
       FROM audit_chain c ORDER BY c.seq`,
    ),
    unchained: db.prepare(
      `SELECT 'decision' AS kind, decision_id AS id FROM decisions d
         WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = d.decision_id AND c.kind = 'decision')
       UNION ALL SELECT 'event', event_id FROM decision_events e
         WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = e.event_id AND c.kind = 'event')
       LIMIT ?`,
    ),
    checkpoints: db.prepare(
      "SELECT seq, head_hash, key_id, signature, signed_at FROM audit_checkpoints ORDER BY seq",
    ),
    listEvents: db.prepare(
      "SELECT event_id, decision_id, type, created_at, data_json FROM decision_events WHERE decision_id = ? ORDER BY seq",
    ),
    getApproval: db.prepare("SELECT approval_json FROM approvals WHERE approval_id = ?"),
    findApproval: db.prepare("SELECT approval_json FROM approvals WHERE decision_id = ?"),
    dueApprovals: db.prepare(
      `SELECT approval_json FROM approvals
       WHERE state IN ('WAITING_FOR_HUMAN', 'APPROVED', 'OVERRIDDEN') AND deadline <= ? ORDER BY deadline LIMIT ?`,
    ),
    listWebhooks: db.prepare(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, webhook_id`),
    lastEventSeq: db.prepare("SELECT max(seq) AS seq FROM decision_events"),
    deliveries: db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries ORDER BY seq DESC LIMIT ?`),
    deliveriesOf: db.prepare(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ? ORDER BY seq DESC LIMIT ?`,
    ),
    findApiKey: db.prepare(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?`),
    listApiKeys: db.prepare(`SELECT ${API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id`),
  };
}

function decisionFilter(query: DecisionQuery | StatsQuery | DecisionScan): {
  where: string[];
  params: (string | number)[];
} {
  const where: string[] = [];
  const params: (string | number)[] = [];
  const add = (sql: string, value: string | undefined): void => {
    if (value === undefined) return;
    where.push(sql);
    params.push(value);
  };
  if ("verdict" in query) add("d.verdict = ?", query.verdict);
  if ("actionType" in query) add("d.action_type = ?", query.actionType);
  if ("subjectId" in query) add("d.subject_id = ?", query.subjectId);
  if ("reasonCode" in query)
    add(
      "EXISTS (SELECT 1 FROM decision_reason_codes rc WHERE rc.decision_id = d.decision_id AND rc.reason_code = ?)",
      query.reasonCode,
    );
  add("d.tenant_id = ?", query.tenantId);
  add("d.created_at >= ?", query.since);
  add("d.created_at < ?", query.until);
  return { where, params };
}
