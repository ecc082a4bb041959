import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { newDecisionId, timestamp } from "../../core/ids.ts";
import { canonicalJson, type JsonObject } from "../../core/json.ts";
import { parseJson } from "../../core/parse-json.ts";
import type { DecisionRecord } from "../../engine/decide.ts";
import {
  DEFAULT_PAGE_SIZE,
  type DecisionEvent,
  type DecisionPage,
  type DecisionQuery,
  MAX_PAGE_SIZE,
  type NewDecisionEvent,
  type PolicySnapshot,
  type PutDecisionResult,
  type Stats,
  type StatsQuery,
  StorageError,
  type Store,
  tenantOf,
} from "../store.ts";
import { MIGRATIONS } from "./schema.ts";

export interface SqliteStoreOptions {
  /** How long a write waits for another process's lock before failing (ms). */
  readonly busyTimeoutMs?: number;
  /** Most decisions written in one transaction. */
  readonly maxBatch?: number;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_BATCH = 512;

interface PendingWrite {
  readonly record: DecisionRecord;
  readonly resolve: (result: PutDecisionResult) => void;
  readonly reject: (error: Error) => void;
}

function storageError(action: string, error: unknown): StorageError {
  const detail = error instanceof Error ? error.message : String(error);
  return new StorageError(`could not ${action}: ${detail}`, { cause: error });
}

function parseRecord(text: string): DecisionRecord {
  const parsed = parseJson(text, { maxBytes: Number.POSITIVE_INFINITY, maxDepth: 1_000 });
  if (!parsed.ok) throw new StorageError(`stored record is not valid JSON: ${parsed.problems[0]?.message}`);
  return parsed.value as DecisionRecord;
}

/**
 * The embedded default store: one SQLite file through `node:sqlite`, in WAL mode with `synchronous=FULL`, so
 * a record is on disk before `putDecision` resolves. Concurrent `putDecision` calls made in the same turn of
 * the event loop are committed together in one transaction (group commit): one fsync for the batch.
 */
export class SqliteStore implements Store {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly maxBatch: number;
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  private closed = false;
  private readonly statements: Statements;

  private constructor(path: string, db: DatabaseSync, options: SqliteStoreOptions) {
    this.path = path;
    this.db = db;
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    this.statements = prepareStatements(db);
  }

  /** Opens (creating when missing) the database file and applies pending migrations. */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let db: DatabaseSync | undefined;
    try {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
      migrate(db);
      return new SqliteStore(path, db, options);
    } catch (error) {
      db?.close();
      throw storageError(`open the store at ${path}`, error);
    }
  }

  async putPolicy(snapshot: PolicySnapshot): Promise<void> {
    this.ensureOpen();
    try {
      this.statements.putPolicy.run(
        snapshot.policyHash,
        snapshot.policyId,
        snapshot.policyVersion,
        snapshot.text,
        timestamp(new Date()),
      );
    } catch (error) {
      throw storageError("store the policy snapshot", error);
    }
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

  putDecision(record: DecisionRecord): Promise<PutDecisionResult> {
    this.ensureOpen();
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      let results: PutDecisionResult[];
      try {
        results = this.writeBatch(batch);
      } catch (error) {
        const failure = error instanceof StorageError ? error : storageError("store the decision", error);
        for (const pending of batch) pending.reject(failure);
        continue;
      }
      for (const [i, pending] of batch.entries()) pending.resolve(results[i] as PutDecisionResult);
    }
  }

  /** One transaction for the whole batch; on any failure nothing of it is kept. */
  private writeBatch(batch: readonly PendingWrite[]): PutDecisionResult[] {
    const { findRequest, insertDecision, insertReason, getDecision } = this.statements;
    const results: PutDecisionResult[] = [];
    this.db.exec("BEGIN IMMEDIATE");
    try {
      for (const { record } of batch) {
        const request = record.request;
        const tenantId = tenantOf(request);
        const requestId = typeof request.request_id === "string" ? request.request_id : null;
        if (requestId !== null) {
          const existing = findRequest.get(tenantId, requestId);
          if (existing) {
            const existingId = String(existing.decision_id);
            if (existing.inputs_digest === record.determinism.inputs_digest) {
              const row = getDecision.get(existingId);
              results.push({ status: "duplicate", record: parseRecord(String(row?.record_json)) });
            } else {
              results.push({ status: "conflict", existingDecisionId: existingId });
            }
            continue;
          }
        }
        const subject = request.subject as JsonObject | undefined;
        insertDecision.run(
          record.decision_id,
          record.created_at,
          tenantId,
          typeof subject?.id === "string" ? subject.id : null,
          String(request.action.type),
          record.verdict,
          record.policy.policy_hash,
          record.determinism.inputs_digest,
          requestId,
          canonicalJson(record),
        );
        for (const [position, code] of record.reason_codes.entries())
          insertReason.run(record.decision_id, position, code);
        results.push({ status: "stored" });
      }
      this.db.exec("COMMIT");
    } catch (error) {
      try {
        this.db.exec("ROLLBACK");
      } catch {
        // The transaction may already be gone (e.g. SQLITE_FULL rolls back by itself); nothing more to undo.
      }
      throw error;
    }
    return results;
  }

  async getDecision(decisionId: string): Promise<DecisionRecord | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.getDecision.get(decisionId));
    return row ? parseRecord(String(row.record_json)) : undefined;
  }

  async findByRequestId(tenantId: string, requestId: string): Promise<DecisionRecord | undefined> {
    this.ensureOpen();
    const row = this.read(() => this.statements.getByRequest.get(tenantId, requestId));
    return row ? parseRecord(String(row.record_json)) : undefined;
  }

  async listDecisions(query: DecisionQuery): Promise<DecisionPage> {
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
    const records = rows.slice(0, limit).map((row) => parseRecord(String(row.record_json)));
    const last = records.at(-1);
    return rows.length > limit && last ? { records, nextCursor: last.decision_id } : { records };
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

  async appendEvent(event: NewDecisionEvent): Promise<DecisionEvent> {
    this.ensureOpen();
    const stored: DecisionEvent = {
      eventId: newDecisionId(),
      decisionId: event.decisionId,
      type: event.type,
      data: event.data,
      createdAt: event.createdAt ?? timestamp(new Date()),
    };
    try {
      this.statements.insertEvent.run(
        stored.eventId,
        stored.decisionId,
        stored.type,
        stored.createdAt,
        canonicalJson(stored.data),
      );
    } catch (error) {
      throw storageError("append the event", error);
    }
    return stored;
  }

  async listEvents(decisionId: string): Promise<DecisionEvent[]> {
    this.ensureOpen();
    const rows = this.read(() => this.statements.listEvents.all(decisionId));
    return rows.map((row) => ({
      eventId: String(row.event_id),
      decisionId: String(row.decision_id),
      type: String(row.type),
      createdAt: String(row.created_at),
      data: parseRecord(String(row.data_json)) as unknown as JsonObject,
    }));
  }

  async ping(): Promise<void> {
    this.ensureOpen();
    this.read(() => this.db.prepare("SELECT 1").get());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }

  private ensureOpen(): void {
    if (this.closed) throw new StorageError("the store is closed");
  }

  private read<T>(query: () => T): T {
    try {
      return query();
    } catch (error) {
      throw storageError("read from the store", error);
    }
  }
}

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: DatabaseSync) {
  return {
    findRequest: db.prepare(
      "SELECT decision_id, inputs_digest FROM decisions WHERE tenant_id = ? AND request_id = ?",
    ),
    insertDecision: db.prepare(
      `INSERT INTO decisions (decision_id, created_at, tenant_id, subject_id, action_type, verdict, policy_hash,
         inputs_digest, request_id, record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertReason: db.prepare(
      "INSERT INTO decision_reason_codes (decision_id, position, reason_code) VALUES (?, ?, ?)",
    ),
    getDecision: db.prepare("SELECT record_json FROM decisions WHERE decision_id = ?"),
    getByRequest: db.prepare("SELECT record_json FROM decisions WHERE tenant_id = ? AND request_id = ?"),
    putPolicy: db.prepare(
      "INSERT INTO policy_snapshots (policy_hash, policy_id, policy_version, policy_text, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (policy_hash) DO NOTHING",
    ),
    getPolicy: db.prepare(
      "SELECT policy_hash, policy_id, policy_version, policy_text FROM policy_snapshots WHERE policy_hash = ?",
    ),
    insertEvent: db.prepare(
      "INSERT INTO decision_events (event_id, decision_id, type, created_at, data_json) VALUES (?, ?, ?, ?, ?)",
    ),
    listEvents: db.prepare(
      "SELECT event_id, decision_id, type, created_at, data_json FROM decision_events WHERE decision_id = ? ORDER BY seq",
    ),
  };
}

function decisionFilter(query: DecisionQuery | StatsQuery): { where: string[]; params: (string | number)[] } {
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

function migrate(db: DatabaseSync): void {
  const current = Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(MIGRATIONS[version] as string);
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }
}
