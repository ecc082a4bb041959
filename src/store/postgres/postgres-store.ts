import pg from "pg";
import { newDecisionId, timestamp } from "../../core/ids.ts";
import { canonicalJson } from "../../core/json.ts";
import type { ApiKey } from "../../domain/api-key.ts";
import type { Approval } from "../../domain/approval.ts";
import {
  type ChainCheckpoint,
  type ChainKind,
  type ChainLink,
  chainHash,
  DEFAULT_CHECKPOINT_EVERY,
  decisionEntry,
  eventEntry,
  type SigningKey,
  signCheckpoint,
  signingKeyFromPem,
} from "../../domain/chain.ts";
import type { DecisionEvent, NewDecisionEvent, SequencedEvent } from "../../domain/decision-event.ts";
import type { DecisionRecord } from "../../domain/decision-record.ts";
import type { MemoryCase, ScopeCount } from "../../domain/memory-case.ts";
import {
  changesActivePolicy,
  type NewPolicyEvent,
  type PolicyEvent,
  type PolicySnapshot,
} from "../../domain/policy-registry.ts";
import type { VelocityMeasure, VelocityQuery } from "../../domain/velocity.ts";
import type { DeliveryAttempt, Webhook, WebhookProgress } from "../../domain/webhook.ts";
import type { StoreLocation } from "../location.ts";
import type { DecisionRow, EventRow } from "../rows.ts";
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
  WEBHOOK_COLUMNS,
  webhookOf,
} from "../rows.ts";
import type { ChainOptions } from "../sqlite/writer.ts";
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
import { migrate, schemaVersion } from "./migrate.ts";
import { type MigrationOutcome, POSTGRES_MIGRATIONS } from "./schema.ts";

export interface PostgresStoreOptions extends ChainOptions {
  /** Apply pending migrations on open (default true); when false, a store behind the code refuses to open. */
  readonly migrate?: boolean;
  /** Most decisions written in one transaction. */
  readonly maxBatch?: number;
  /** Decisions waiting for a transaction before new ones fail at once (fail-closed, not an unbounded queue). */
  readonly maxQueued?: number;
  /** How long to wait for a connection (ms). */
  readonly connectTimeoutMs?: number;
}

type PostgresLocation = Extract<StoreLocation, { kind: "postgres" }>;

export const DEFAULT_PG_MAX_BATCH = 256;
export const DEFAULT_PG_MAX_QUEUED = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** A statement that runs longer than this is cancelled: a stuck server must not hold the chain's head forever. */
const STATEMENT_TIMEOUT_MS = 30_000;
/** Rows read per round trip when whole history is walked (chain, memory, backtests): memory stays bounded. */
const SCAN_PAGE = 2_000;

/** SQLSTATE classes of a row the database refused (data, integrity): that row alone fails. */
const ROW_ERROR = /^(22|23)/;

interface PendingWrite {
  readonly row: DecisionRow;
  readonly resolve: (result: PutDecisionResult) => void;
  readonly reject: (error: Error) => void;
}

type RowOutcome =
  | { readonly status: "stored" }
  | { readonly status: "duplicate"; readonly json: string }
  | { readonly status: "conflict"; readonly existingDecisionId: string }
  | { readonly status: "failed"; readonly message: string };

interface Head {
  seq: number;
  hash: string;
}

function sqlState(error: unknown): string {
  return typeof (error as { code?: unknown })?.code === "string" ? (error as { code: string }).code : "";
}

/**
 * The PostgreSQL store: the embedded store's tables in a database that several `lumyn serve` processes share.
 * Every write transaction first locks the chain's head row, so the audit chain stays one chain across
 * processes and the idempotency check and insert of a request happen under that lock. Decisions put while a
 * transaction is running are committed together in the next one (group commit).
 */
export class PostgresStore implements Store {
  readonly location: PostgresLocation;
  private readonly pool: pg.Pool;
  private readonly maxBatch: number;
  private readonly maxQueued: number;
  private readonly signingKey: SigningKey | undefined;
  private readonly checkpointEvery: number;
  private queue: PendingWrite[] = [];
  private writing: Promise<void> | undefined;
  private closed = false;

  private constructor(location: PostgresLocation, pool: pg.Pool, options: PostgresStoreOptions) {
    this.location = location;
    this.pool = pool;
    this.maxBatch = options.maxBatch ?? DEFAULT_PG_MAX_BATCH;
    this.maxQueued = options.maxQueued ?? DEFAULT_PG_MAX_QUEUED;
    this.signingKey = options.signingKeyPem ? signingKeyFromPem(options.signingKeyPem) : undefined;
    this.checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  }

  /** Connects, applies pending migrations (unless disabled) and checks the schema is one this code knows. */
  static async open(location: PostgresLocation, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = createPool(location, options);
    try {
      const client = await checkout(pool);
      try {
        if (options.migrate !== false) await migrate(client, location.schema);
        else await requireCurrentSchema(client);
      } finally {
        client.removeListener("error", ignore);
        client.release();
      }
      return new PostgresStore(location, pool, options);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw storageError(`open the store at ${location.display}`, error);
    }
  }

  /** Applies pending migrations and reports the versions (what `lumyn migrate` does). */
  static async migrate(location: PostgresLocation): Promise<MigrationOutcome> {
    const pool = createPool(location, {});
    try {
      const client = await checkout(pool);
      try {
        return await migrate(client, location.schema);
      } finally {
        client.removeListener("error", ignore);
        client.release();
      }
    } catch (error) {
      throw storageError(`migrate the store at ${location.display}`, error);
    } finally {
      await pool.end().catch(() => undefined);
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new StorageError("the store is closed");
  }

  private async query<R extends pg.QueryResultRow>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    this.ensureOpen();
    try {
      return await this.pool.query<R>(sql, params as unknown[]);
    } catch (error) {
      throw storageError("read from the store", error);
    }
  }

  /** Runs `work` in a transaction that holds the chain's head; commits the head `work` moved. */
  private async transaction<T>(action: string, work: (client: pg.PoolClient, head: Head) => Promise<T>) {
    this.ensureOpen();
    let client: pg.PoolClient;
    try {
      client = await checkout(this.pool);
    } catch (error) {
      throw storageError(action, error);
    }
    let broken = false;
    try {
      const head = await beginAndLockHead(client);
      const start = head.seq;
      const result = await work(client, head);
      if (head.seq === start) await client.query("COMMIT");
      else {
        const every = this.checkpointEvery;
        if (Math.floor(head.seq / every) > Math.floor(start / every)) await this.signHead(client, head);
        await client.query(`${headUpdate(head)}; COMMIT`);
      }
      return result;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch {
        // The connection is gone with its transaction; the pool must not hand it out again.
        broken = true;
      }
      throw storageError(action, error);
    } finally {
      client.removeListener("error", ignore);
      client.release(broken);
    }
  }

  private async signHead(client: pg.PoolClient, head: Head): Promise<ChainCheckpoint | undefined> {
    const key = this.signingKey;
    if (!key) return undefined;
    const last = await client.query<{ seq: string | null }>("SELECT max(seq) AS seq FROM audit_checkpoints");
    if (head.seq <= Number(last.rows[0]?.seq ?? 0)) return undefined;
    const checkpoint = signCheckpoint(key, head.seq, head.hash, timestamp(new Date()));
    await client.query(
      `INSERT INTO audit_checkpoints (seq, head_hash, key_id, signature, signed_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (seq) DO NOTHING`,
      [checkpoint.seq, checkpoint.headHash, checkpoint.keyId, checkpoint.signature, checkpoint.signedAt],
    );
    return checkpoint;
  }

  async putPolicy(snapshot: PolicySnapshot): Promise<void> {
    this.ensureOpen();
    try {
      await this.pool.query(
        `INSERT INTO policy_snapshots (policy_hash, policy_id, policy_version, policy_text, created_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (policy_hash) DO NOTHING`,
        [
          snapshot.policyHash,
          snapshot.policyId,
          snapshot.policyVersion,
          snapshot.text,
          timestamp(new Date()),
        ],
      );
    } catch (error) {
      throw storageError("store the policy snapshot", error);
    }
  }

  async getPolicy(policyHash: string): Promise<PolicySnapshot | undefined> {
    const { rows } = await this.query(
      "SELECT policy_hash, policy_id, policy_version, policy_text FROM policy_snapshots WHERE policy_hash = $1",
      [policyHash],
    );
    const row = rows[0];
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
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(
        new StorageError(`could not store the decision: ${this.queue.length} decisions are already waiting`),
      );
    }
    const row: DecisionRow = {
      ...decisionRow(record, json ?? canonicalJson(record)),
      ...(opening ? { approval: approvalRow(opening.approval, opening.events) } : {}),
    };
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      this.writing ??= this.drain();
    });
  }

  /**
   * Writes what is queued, one transaction at a time, until the queue is empty. Decisions that arrive while a
   * transaction runs wait for the next one and share it.
   */
  private async drain(): Promise<void> {
    // Let the rest of this turn's decisions join the first batch.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const outcomes = await this.writeBatch(batch.map((pending) => pending.row));
          batch.forEach((pending, i) => {
            const outcome = outcomes[i] as RowOutcome;
            if (outcome.status === "failed")
              pending.reject(new StorageError(`could not store the decision: ${outcome.message}`));
            else if (outcome.status === "duplicate")
              pending.resolve({ status: "duplicate", record: parseStored(outcome.json) as DecisionRecord });
            else pending.resolve(outcome);
          });
        } catch (error) {
          const failure = storageError("store the decision", error);
          for (const pending of batch) pending.reject(failure);
        }
      }
    } finally {
      this.writing = undefined;
    }
  }

  /**
   * One transaction for the batch. When the database refuses a row, the batch is written again with a
   * savepoint per row, so that row fails alone.
   */
  private async writeBatch(rows: readonly DecisionRow[]): Promise<RowOutcome[]> {
    try {
      // The keys are looked up under the head's lock, which every writer takes first: idempotency holds
      // without relying on the unique index (which a table partitioned by month cannot keep global).
      return await this.transaction("store the decision", async (client, head) =>
        writeDecisions(client, head, rows, await takenRequests(client, rows)),
      );
    } catch (error) {
      if (!ROW_ERROR.test(sqlState((error as Error).cause))) throw error;
    }
    return this.transaction("store the decision", async (client, head) => {
      const outcomes: RowOutcome[] = [];
      for (const row of rows) {
        const before = { ...head };
        await client.query("SAVEPOINT decision_row");
        try {
          outcomes.push(...(await writeDecisions(client, head, [row], await takenRequests(client, [row]))));
          await client.query("RELEASE SAVEPOINT decision_row");
        } catch (error) {
          if (!ROW_ERROR.test(sqlState(error))) throw error;
          await client.query("ROLLBACK TO SAVEPOINT decision_row");
          Object.assign(head, before);
          outcomes.push({ status: "failed", message: (error as Error).message });
        }
      }
      return outcomes;
    });
  }

  async getDecision(decisionId: string): Promise<DecisionRecord | undefined> {
    const { rows } = await this.query("SELECT record_json FROM decisions WHERE decision_id = $1", [
      decisionId,
    ]);
    return rows[0] ? (parseStored(String(rows[0].record_json)) as DecisionRecord) : undefined;
  }

  async getDecisionJson(decisionId: string): Promise<{ json: string; tenantId: string } | undefined> {
    const { rows } = await this.query("SELECT record_json, tenant_id FROM decisions WHERE decision_id = $1", [
      decisionId,
    ]);
    const row = rows[0];
    return row ? { json: String(row.record_json), tenantId: String(row.tenant_id) } : undefined;
  }

  async findByRequestId(tenantId: string, requestId: string): Promise<DecisionRecord | undefined> {
    const { rows } = await this.query(
      "SELECT record_json FROM decisions WHERE tenant_id = $1 AND request_id = $2",
      [tenantId, requestId],
    );
    return rows[0] ? (parseStored(String(rows[0].record_json)) as DecisionRecord) : undefined;
  }

  async listDecisionJson(query: DecisionQuery): Promise<StoredDecisionPage> {
    const limit = Math.min(Math.max(query.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const filter = decisionFilter(query);
    if (query.cursor) filter.add("d.decision_id < ?", query.cursor);
    const { rows } = await this.query(
      `SELECT d.decision_id, d.record_json FROM decisions d ${filter.where()} ORDER BY d.decision_id DESC LIMIT ${limit + 1}`,
      filter.params,
    );
    return storedDecisionPage(rows, limit);
  }

  async stats(query: StatsQuery): Promise<Stats> {
    const filter = decisionFilter(query);
    const where = filter.where();
    const total = await this.query(`SELECT count(*) AS total FROM decisions d ${where}`, filter.params);
    const groupSql =
      query.by === "reason_code"
        ? `SELECT r.reason_code AS key, count(*) AS count FROM decision_reason_codes r JOIN decisions d ON d.decision_id = r.decision_id ${where} GROUP BY r.reason_code`
        : `SELECT d.${query.by} AS key, count(*) AS count FROM decisions d ${where} GROUP BY d.${query.by}`;
    const { rows } = await this.query(`${groupSql} ORDER BY count DESC, key ASC`, filter.params);
    return {
      total: Number(total.rows[0]?.total ?? 0),
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
    const row: EventRow = { ...event, dataJson: canonicalJson(event.data) };
    const fingerprint = Buffer.from(
      label.fingerprint.buffer,
      label.fingerprint.byteOffset,
      label.fingerprint.byteLength,
    );
    const stored = await this.transaction("store the label", async (client, head) => {
      const exists = await client.query("SELECT 1 FROM decisions WHERE decision_id = $1", [label.decisionId]);
      if (exists.rowCount === 0) return false;
      await insertEvents(client, head, [row]);
      await client.query(
        `INSERT INTO memory_cases (decision_id, tenant_id, action_type, label, summary, severity, projection, fingerprint, labelled_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (decision_id) DO UPDATE SET label = excluded.label, summary = excluded.summary,
             severity = excluded.severity, projection = excluded.projection, fingerprint = excluded.fingerprint,
             labelled_at = excluded.labelled_at`,
        [
          label.decisionId,
          label.tenantId,
          label.actionType,
          label.label,
          label.summary ?? "",
          label.severity ?? null,
          label.projection,
          fingerprint,
          event.createdAt,
        ],
      );
      return true;
    });
    return stored ? event : undefined;
  }

  async memoryScopes(): Promise<ScopeCount[]> {
    const { rows } = await this.query(
      `SELECT tenant_id, action_type, count(*) AS count FROM memory_cases
         GROUP BY tenant_id, action_type ORDER BY tenant_id, action_type`,
    );
    return rows.map((row) => ({
      tenantId: String(row.tenant_id),
      actionType: String(row.action_type),
      count: Number(row.count),
    }));
  }

  async loadMemory(visit: (memoryCase: MemoryCase) => void): Promise<number> {
    let count = 0;
    let after = "";
    for (;;) {
      const { rows } = await this.query(
        `SELECT decision_id, tenant_id, action_type, label, fingerprint FROM memory_cases
           WHERE decision_id > $1 ORDER BY decision_id LIMIT ${SCAN_PAGE}`,
        [after],
      );
      for (const row of rows) {
        visit(memoryCaseOf(row));
        count++;
      }
      if (rows.length < SCAN_PAGE) return count;
      after = String(rows.at(-1)?.decision_id);
    }
  }

  async memoryCases(decisionIds: readonly string[]): Promise<MemoryCase[]> {
    const { rows } = await this.query(
      `SELECT decision_id, tenant_id, action_type, label, fingerprint FROM memory_cases
         WHERE decision_id = ANY($1::text[]) ORDER BY decision_id`,
      [decisionIds],
    );
    return rows.map(memoryCaseOf);
  }

  async memorySummaries(decisionIds: readonly string[]): Promise<Map<string, string>> {
    const { rows } = await this.query(
      "SELECT decision_id, summary FROM memory_cases WHERE decision_id = ANY($1::text[])",
      [decisionIds],
    );
    return new Map(rows.map((row) => [String(row.decision_id), String(row.summary)]));
  }

  async appendEvent(event: NewDecisionEvent): Promise<DecisionEvent> {
    const row = eventRow(event);
    await this.transaction("append the event", (client, head) => insertEvents(client, head, [row]));
    return { ...row, data: parseStored(row.dataJson) };
  }

  async listEvents(decisionId: string): Promise<DecisionEvent[]> {
    const { rows } = await this.query(
      "SELECT event_id, decision_id, type, created_at, data_json FROM decision_events WHERE decision_id = $1 ORDER BY seq",
      [decisionId],
    );
    return rows.map((row) => ({
      eventId: String(row.event_id),
      decisionId: String(row.decision_id),
      type: String(row.type),
      createdAt: String(row.created_at),
      data: parseStored(String(row.data_json)),
    }));
  }

  async scanDecisions(query: DecisionScan, visit: (recordJson: string) => void): Promise<number> {
    let count = 0;
    let after = "";
    for (;;) {
      const page = query.limit === undefined ? SCAN_PAGE : Math.min(SCAN_PAGE, query.limit - count);
      if (page <= 0) return count;
      const filter = decisionFilter(query);
      filter.add("d.decision_id > ?", after);
      const { rows } = await this.query(
        `SELECT d.decision_id, d.record_json FROM decisions d ${filter.where()} ORDER BY d.decision_id LIMIT ${page}`,
        filter.params,
      );
      for (const row of rows) {
        visit(String(row.record_json));
        count++;
      }
      if (rows.length < page) return count;
      after = String(rows.at(-1)?.decision_id);
    }
  }

  async readChain(visit: (link: ChainLink) => boolean): Promise<void> {
    let after = 0;
    for (;;) {
      const { rows } = await this.query(
        `SELECT c.seq, c.kind, c.ref_id, c.hash, d.record_json, e.decision_id, e.type, e.created_at, e.data_json
           FROM audit_chain c
           LEFT JOIN decisions d ON c.kind = 'decision' AND d.decision_id = c.ref_id
           LEFT JOIN decision_events e ON c.kind = 'event' AND e.event_id = c.ref_id
           WHERE c.seq > $1 ORDER BY c.seq LIMIT ${SCAN_PAGE}`,
        [after],
      );
      for (const row of rows) {
        const seq = Number(row.seq);
        const kind = row.kind as ChainKind;
        const refId = String(row.ref_id);
        let entry: string | undefined;
        if (kind === "decision")
          entry = row.record_json === null ? undefined : decisionEntry(seq, String(row.record_json));
        else if (row.decision_id !== null)
          entry = eventEntry(seq, {
            eventId: refId,
            decisionId: String(row.decision_id),
            type: String(row.type),
            createdAt: String(row.created_at),
            dataJson: String(row.data_json),
          });
        if (!visit({ seq, kind, refId, hash: String(row.hash), entry })) return;
      }
      if (rows.length < SCAN_PAGE) return;
      after = Number(rows.at(-1)?.seq);
    }
  }

  async unchainedRows(limit = 100): Promise<{ kind: ChainKind; id: string }[]> {
    const { rows } = await this.query(
      `SELECT 'decision' AS kind, decision_id AS id FROM decisions d
         WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = d.decision_id AND c.kind = 'decision')
       UNION ALL SELECT 'event', event_id FROM decision_events e
         WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = e.event_id AND c.kind = 'event')
       LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({ kind: row.kind as ChainKind, id: String(row.id) }));
  }

  async listCheckpoints(): Promise<ChainCheckpoint[]> {
    const { rows } = await this.query(
      "SELECT seq, head_hash, key_id, signature, signed_at FROM audit_checkpoints ORDER BY seq",
    );
    return rows.map((row) => ({
      seq: Number(row.seq),
      headHash: String(row.head_hash),
      keyId: String(row.key_id),
      signature: String(row.signature),
      signedAt: String(row.signed_at),
    }));
  }

  async putApiKey(key: ApiKey): Promise<void> {
    this.ensureOpen();
    try {
      await this.pool.query(
        `INSERT INTO api_keys (key_id, key_hash, name, scopes_json, tenant_id, roles_json, rate_limit_per_second, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          key.keyId,
          key.keyHash,
          key.name,
          JSON.stringify(key.scopes),
          key.tenantId ?? null,
          JSON.stringify(key.roles),
          key.rateLimitPerSecond ?? null,
          key.createdAt,
        ],
      );
    } catch (error) {
      throw storageError("store the API key", error);
    }
  }

  async findApiKey(keyHash: string): Promise<ApiKey | undefined> {
    const { rows } = await this.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1`, [
      keyHash,
    ]);
    return rows[0] ? apiKeyOf(rows[0]) : undefined;
  }

  async listApiKeys(): Promise<ApiKey[]> {
    const { rows } = await this.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id`);
    return rows.map(apiKeyOf);
  }

  async revokeApiKey(keyId: string, revokedAt: string = timestamp(new Date())): Promise<boolean> {
    this.ensureOpen();
    try {
      const { rows } = await this.pool.query(
        `WITH revoked AS (UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM api_keys WHERE key_id = $2) AS found`,
        [revokedAt, keyId],
      );
      return rows[0]?.found === true;
    } catch (error) {
      throw storageError("revoke the API key", error);
    }
  }

  async getApproval(approvalId: string): Promise<Approval | undefined> {
    const { rows } = await this.query("SELECT approval_json FROM approvals WHERE approval_id = $1", [
      approvalId,
    ]);
    return rows[0] ? (parseStored(String(rows[0].approval_json)) as unknown as Approval) : undefined;
  }

  async findApproval(decisionId: string): Promise<Approval | undefined> {
    const { rows } = await this.query("SELECT approval_json FROM approvals WHERE decision_id = $1", [
      decisionId,
    ]);
    return rows[0] ? (parseStored(String(rows[0].approval_json)) as unknown as Approval) : undefined;
  }

  async listApprovals(query: ApprovalQuery): Promise<Approval[]> {
    const limit = Math.min(Math.max(query.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const filter = new Filter();
    filter.add("state = ?", query.state);
    filter.add("tenant_id = ?", query.tenantId);
    // An array holds a string it contains (jsonb @> with a scalar on the right).
    filter.add("(approval_json::jsonb -> 'approver_roles') @> to_jsonb(?::text)", query.role);
    const { rows } = await this.query(
      `SELECT approval_json FROM approvals ${filter.where()} ORDER BY created_at DESC, approval_id DESC LIMIT ${limit}`,
      filter.params,
    );
    return rows.map((row) => parseStored(String(row.approval_json)) as unknown as Approval);
  }

  async updateApproval(change: ApprovalChange): Promise<boolean> {
    const row = approvalRow(change.approval, change.events);
    return this.transaction("update the approval", async (client, head) => {
      const updated = await client.query(
        `UPDATE approvals SET state = $1, version = $2, deadline = $3, updated_at = $4, approval_json = $5
           WHERE approval_id = $6 AND version = $7`,
        [
          row.state,
          row.version,
          row.deadline,
          row.updatedAt,
          row.json,
          row.approvalId,
          change.expectedVersion,
        ],
      );
      if (updated.rowCount !== 1) return false;
      await insertEvents(client, head, row.events);
      return true;
    });
  }

  async dueApprovals(now: string, limit = DEFAULT_PAGE_SIZE): Promise<Approval[]> {
    const { rows } = await this.query(
      `SELECT approval_json FROM approvals
         WHERE state IN ('WAITING_FOR_HUMAN', 'APPROVED', 'OVERRIDDEN') AND deadline <= $1 ORDER BY deadline LIMIT $2`,
      [now, limit],
    );
    return rows.map((row) => parseStored(String(row.approval_json)) as unknown as Approval);
  }

  async putWebhook(webhook: Webhook): Promise<void> {
    await this.write(
      "store the webhook",
      `INSERT INTO webhooks (webhook_id, url, secret, name, created_at, cursor_seq, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, 0)`,
      [webhook.webhookId, webhook.url, webhook.secret, webhook.name, webhook.createdAt, webhook.cursorSeq],
    );
  }

  async listWebhooks(): Promise<Webhook[]> {
    const { rows } = await this.query(
      `SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, webhook_id`,
    );
    return rows.map(webhookOf);
  }

  async deleteWebhook(webhookId: string): Promise<boolean> {
    return (
      (await this.write("remove the webhook", "DELETE FROM webhooks WHERE webhook_id = $1", [webhookId])) ===
      1
    );
  }

  async lastEventSeq(): Promise<number> {
    const { rows } = await this.query("SELECT coalesce(max(seq), 0) AS seq FROM decision_events");
    return Number(rows[0]?.seq ?? 0);
  }

  // Events are inserted under the chain head's lock (see transaction), so their sequence numbers commit in
  // order: a reader never sees a number before a smaller one that is still to come.
  async eventsAfter(seq: number, types: readonly string[], limit: number): Promise<SequencedEvent[]> {
    const { rows } = await this.query(
      `SELECT seq, event_id, decision_id, type, created_at, data_json FROM decision_events
         WHERE seq > $1 AND type = ANY($2) ORDER BY seq LIMIT $3`,
      [seq, [...types], limit],
    );
    return rows.map(sequencedEventOf);
  }

  async claimWebhook(webhookId: string, holder: string, until: string, now: string): Promise<boolean> {
    const changed = await this.write(
      "lease the webhook",
      `UPDATE webhooks SET lease_holder = $1, lease_until = $2
         WHERE webhook_id = $3 AND (lease_until IS NULL OR lease_until <= $4 OR lease_holder = $1)`,
      [holder, until, webhookId, now],
    );
    return changed === 1;
  }

  async recordDelivery(attempt: DeliveryAttempt, progress: WebhookProgress): Promise<void> {
    // One statement, so the attempt and the progress are written together or not at all.
    await this.write(
      "log the delivery",
      `WITH logged AS (
         INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, outcome, http_status, error, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
       )
       UPDATE webhooks SET cursor_seq = $8, attempts = $9, next_attempt_at = $10 WHERE webhook_id = $11`,
      [
        attempt.webhookId,
        attempt.eventId,
        attempt.attempt,
        attempt.outcome,
        attempt.httpStatus ?? null,
        attempt.error ?? null,
        attempt.at,
        progress.cursorSeq,
        progress.attempts,
        progress.nextAttemptAt ?? null,
        progress.webhookId,
      ],
    );
  }

  async listDeliveries(query: {
    readonly webhookId?: string;
    readonly limit?: number;
  }): Promise<DeliveryAttempt[]> {
    const limit = Math.min(Math.max(query.limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const filter = new Filter();
    filter.add("webhook_id = ?", query.webhookId);
    const { rows } = await this.query(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries ${filter.where()} ORDER BY seq DESC LIMIT ${limit}`,
      filter.params,
    );
    return rows.map(deliveryOf);
  }

  async appendPolicyEvent(event: NewPolicyEvent): Promise<PolicyEvent | undefined> {
    this.ensureOpen();
    const createdAt = event.createdAt ?? timestamp(new Date());
    const changesActive = changesActivePolicy(event.type);
    let client: pg.PoolClient;
    try {
      client = await checkout(this.pool);
    } catch (error) {
      throw storageError("change the policy registry", error);
    }
    let broken = false;
    try {
      // One writer per tenant at a time (every process), so that reading the active version and appending
      // over it is one step: the compare-and-set of activations.
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtext('lumyn-policy-registry:' || $1))", [
        event.tenantId,
      ]);
      const latest = await client.query(
        "SELECT active_hash FROM policy_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
        [event.tenantId],
      );
      const active = latest.rows[0] ? ((latest.rows[0].active_hash as string | null) ?? null) : null;
      if (changesActive && active !== (event.expectedActive ?? null)) {
        await client.query("ROLLBACK");
        return undefined;
      }
      const inserted = await client.query(
        `INSERT INTO policy_events (tenant_id, type, policy_hash, active_hash, detail_json, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
        [
          event.tenantId,
          event.type,
          event.policyHash ?? null,
          changesActive ? (event.policyHash ?? null) : active,
          canonicalJson(event.detail),
          createdAt,
        ],
      );
      await client.query("COMMIT");
      return {
        seq: Number(inserted.rows[0]?.seq),
        tenantId: event.tenantId,
        type: event.type,
        ...(event.policyHash !== undefined ? { policyHash: event.policyHash } : {}),
        detail: event.detail,
        createdAt,
      };
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true;
      }
      throw storageError("change the policy registry", error);
    } finally {
      client.removeListener("error", ignore);
      client.release(broken);
    }
  }

  async listPolicyEvents(tenantId?: string): Promise<PolicyEvent[]> {
    const filter = new Filter();
    filter.add("tenant_id = ?", tenantId);
    const { rows } = await this.query(
      `SELECT seq, tenant_id, type, policy_hash, detail_json, created_at FROM policy_events ${filter.where()} ORDER BY seq`,
      filter.params,
    );
    return rows.map(policyEventOf);
  }

  async activePolicies(): Promise<Map<string, string>> {
    const { rows } = await this.query(
      "SELECT DISTINCT ON (tenant_id) tenant_id, active_hash FROM policy_events ORDER BY tenant_id, seq DESC",
    );
    return new Map(
      rows
        .filter((row) => row.active_hash !== null)
        .map((row) => [String(row.tenant_id), String(row.active_hash)]),
    );
  }

  async velocity(query: VelocityQuery): Promise<number> {
    const params: unknown[] = [query.tenantId, query.since, query.until];
    const filters: string[] = [];
    const value = query.groupValue;
    if (query.groupBy.join(".") === "subject.id" && typeof value === "string") {
      params.push(value);
      filters.push(`subject_id = $${params.length}`);
    } else if (query.groupBy.length > 0) {
      // jsonb equality: the same JSON value (numbers by value, so 1 equals 1.0, as in the embedded store).
      params.push(["request", ...query.groupBy], value === undefined ? null : JSON.stringify(value));
      filters.push(`(record_json::jsonb #> $${params.length - 1}::text[]) = $${params.length}::jsonb`);
    }
    for (const [column, values] of [
      ["verdict", query.verdicts],
      ["action_type", query.actionTypes],
    ] as const) {
      if (values === undefined) continue;
      params.push([...values]);
      filters.push(`${column} = ANY($${params.length})`);
    }
    const { rows } = await this.query(
      `SELECT ${velocityAggregate(query.measure, params)} AS value FROM decisions
         WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3${filters.map((f) => ` AND ${f}`).join("")}`,
      params,
    );
    return Number(rows[0]?.value ?? 0);
  }

  /** One write statement outside the chain; returns how many rows it changed. */
  private async write(action: string, sql: string, params: readonly unknown[]): Promise<number> {
    this.ensureOpen();
    try {
      return (await this.pool.query(sql, params as unknown[])).rowCount ?? 0;
    } catch (error) {
      throw storageError(action, error);
    }
  }

  async ping(): Promise<void> {
    await this.query("SELECT 1");
  }

  /** Writes what is queued, signs the head (with a signing key), then closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.writing) await this.writing;
    if (this.signingKey) {
      // Every entry is already durable; a head left unsigned now is signed at the next close or checkpoint.
      await this.transaction("sign the chain's head", (client, head) => this.signHead(client, head)).catch(
        () => undefined,
      );
    }
    this.closed = true;
    await this.pool.end();
  }
}

function createPool(location: PostgresLocation, options: PostgresStoreOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: location.connectionString,
    max: location.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: "lumyn",
    ...(location.schema !== undefined ? { options: `-c search_path=${location.schema}` } : {}),
  });
  // An idle connection the server drops (restart, failover) is removed from the pool; the next query opens
  // a new one. Without a listener the error would end the process.
  pool.on("error", ignore);
  return pool;
}

function ignore(): void {}

/**
 * A connection taken from the pool for a transaction. A connection that breaks between two of its queries
 * emits an error that no query receives: it is ignored here (the next query fails and the transaction with
 * it), since unhandled it would end the process.
 */
async function checkout(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect();
  client.on("error", ignore);
  return client;
}

async function requireCurrentSchema(client: pg.PoolClient): Promise<void> {
  const version = await schemaVersion(client);
  if (version < POSTGRES_MIGRATIONS.length) {
    throw new StorageError(
      `the database is at schema version ${version}, this Lumyn needs ${POSTGRES_MIGRATIONS.length}: run \`lumyn migrate\``,
    );
  }
}

/** Opens a transaction and locks the chain's head in it, in one round trip. */
async function beginAndLockHead(client: pg.PoolClient): Promise<Head> {
  const results = (await client.query(
    "BEGIN; SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
  )) as unknown as pg.QueryResult<{ seq: string; hash: string }>[];
  const row = results[1]?.rows[0];
  if (!row) throw new StorageError("the audit chain's head row is missing");
  return { seq: Number(row.seq), hash: row.hash };
}

const CHAIN_HASH = /^sha256:[0-9a-f]{64}$/;

/**
 * The statement that moves the head, with its values written in: it is sent with COMMIT in one round trip
 * (a statement with parameters cannot share a message with another). Both values are ours and checked.
 */
function headUpdate(head: Head): string {
  if (!Number.isSafeInteger(head.seq) || !CHAIN_HASH.test(head.hash))
    throw new StorageError(`the audit chain's head is malformed: ${head.seq} ${head.hash}`);
  return `UPDATE audit_head SET seq = ${head.seq}, hash = '${head.hash}' WHERE id = 1`;
}

interface ChainEntry {
  readonly kind: ChainKind;
  readonly id: string;
  readonly entry: (seq: number) => string;
}

/** The chain rows that follow `head` for these entries, in order; moves `head` past them. */
function chainEntries(head: Head, entries: readonly ChainEntry[]) {
  const rows = { seqs: [] as number[], kinds: [] as string[], ids: [] as string[], hashes: [] as string[] };
  for (const { kind, id, entry } of entries) {
    const seq = head.seq + 1;
    head.hash = chainHash(head.hash, entry(seq));
    head.seq = seq;
    rows.seqs.push(seq);
    rows.kinds.push(kind);
    rows.ids.push(id);
    rows.hashes.push(head.hash);
  }
  return rows;
}

/** Appends entries to the chain (in the caller's transaction), moving `head`. */
async function appendChain(client: pg.PoolClient, head: Head, entries: readonly ChainEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const rows = chainEntries(head, entries);
  await client.query(
    "INSERT INTO audit_chain (seq, kind, ref_id, hash) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])",
    [rows.seqs, rows.kinds, rows.ids, rows.hashes],
  );
}

async function insertEvents(client: pg.PoolClient, head: Head, events: readonly EventRow[]): Promise<void> {
  if (events.length === 0) return;
  await client.query(
    `INSERT INTO decision_events (event_id, decision_id, type, created_at, data_json)
       SELECT event_id, decision_id, type, created_at, data_json
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         WITH ORDINALITY AS e (event_id, decision_id, type, created_at, data_json, n)
       ORDER BY n`,
    [
      events.map((e) => e.eventId),
      events.map((e) => e.decisionId),
      events.map((e) => e.type),
      events.map((e) => e.createdAt),
      events.map((e) => e.dataJson),
    ],
  );
  await appendChain(
    client,
    head,
    events.map((event) => ({ kind: "event", id: event.eventId, entry: (seq) => eventEntry(seq, event) })),
  );
}

interface TakenRequest {
  readonly decisionId: string;
  readonly inputsDigest: string;
  readonly json: string;
}

function requestKey(tenantId: string, requestId: string): string {
  return JSON.stringify([tenantId, requestId]);
}

/** The stored decisions that already hold the rows' (tenant, request_id) keys. */
async function takenRequests(
  client: pg.PoolClient,
  rows: readonly DecisionRow[],
): Promise<Map<string, TakenRequest>> {
  const taken = new Map<string, TakenRequest>();
  const keyed = rows.filter((row) => row.requestId !== null);
  if (keyed.length === 0) return taken;
  const existing = await client.query({
    name: "lumyn_taken_requests",
    text: `SELECT tenant_id, request_id, decision_id, inputs_digest, record_json FROM decisions
             WHERE (tenant_id, request_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    values: [keyed.map((row) => row.tenantId), keyed.map((row) => row.requestId)],
  });
  for (const row of existing.rows)
    taken.set(requestKey(row.tenant_id, row.request_id), {
      decisionId: row.decision_id,
      inputsDigest: row.inputs_digest,
      json: row.record_json,
    });
  return taken;
}

/**
 * Every table a batch of decisions writes, in one statement: the decisions, their reason codes, the approvals
 * they open with those approvals' events, and the chain entries of all of them. (Foreign keys are checked at
 * the end of the statement, so children may be inserted beside their parents.)
 */
const WRITE_DECISIONS = `WITH
  decision_rows AS (
    INSERT INTO decisions (decision_id, created_at, tenant_id, subject_id, action_type, verdict, policy_hash,
      inputs_digest, request_id, record_json)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
      $8::text[], $9::text[], $10::text[])),
  reason_rows AS (
    INSERT INTO decision_reason_codes (decision_id, position, reason_code)
    SELECT * FROM unnest($11::text[], $12::int[], $13::text[])),
  approval_rows AS (
    INSERT INTO approvals (approval_id, decision_id, tenant_id, state, version, deadline, created_at, updated_at,
      approval_json)
    SELECT * FROM unnest($14::text[], $15::text[], $16::text[], $17::text[], $18::int[], $19::text[],
      $20::text[], $21::text[], $22::text[])),
  event_rows AS (
    INSERT INTO decision_events (event_id, decision_id, type, created_at, data_json)
    SELECT event_id, decision_id, type, created_at, data_json
    FROM unnest($23::text[], $24::text[], $25::text[], $26::text[], $27::text[])
      WITH ORDINALITY AS e (event_id, decision_id, type, created_at, data_json, n)
    ORDER BY n)
INSERT INTO audit_chain (seq, kind, ref_id, hash)
SELECT * FROM unnest($28::bigint[], $29::text[], $30::text[], $31::text[])`;

/**
 * Writes decisions in the caller's transaction, which holds the head. The rows whose (tenant, request_id) is
 * taken, in the store (`taken`) or earlier in the batch, are duplicates or conflicts; the rest are stored.
 */
async function writeDecisions(
  client: pg.PoolClient,
  head: Head,
  rows: readonly DecisionRow[],
  taken: Map<string, TakenRequest>,
): Promise<RowOutcome[]> {
  const outcomes: RowOutcome[] = [];
  const stored: DecisionRow[] = [];
  for (const row of rows) {
    const key = row.requestId === null ? undefined : requestKey(row.tenantId, row.requestId);
    const previous = key === undefined ? undefined : taken.get(key);
    if (previous) {
      outcomes.push(
        previous.inputsDigest === row.inputsDigest
          ? { status: "duplicate", json: previous.json }
          : { status: "conflict", existingDecisionId: previous.decisionId },
      );
      continue;
    }
    if (key !== undefined)
      taken.set(key, { decisionId: row.decisionId, inputsDigest: row.inputsDigest, json: row.json });
    stored.push(row);
    outcomes.push({ status: "stored" });
  }
  if (stored.length === 0) return outcomes;
  const approvals = stored.flatMap((row) => (row.approval ? [row.approval] : []));
  const events = approvals.flatMap((approval) => approval.events);
  const reasons = stored.flatMap((row) =>
    row.reasonCodes.map((code, position) => [row.decisionId, position, code] as const),
  );
  const chain = chainEntries(head, [
    ...stored.map((row) => ({
      kind: "decision" as const,
      id: row.decisionId,
      entry: (seq: number) => decisionEntry(seq, row.json),
    })),
    ...events.map((event) => ({
      kind: "event" as const,
      id: event.eventId,
      entry: (seq: number) => eventEntry(seq, event),
    })),
  ]);
  const of = <R, T>(list: readonly R[], pick: (item: R) => T): T[] => list.map(pick);
  await client.query({
    name: "lumyn_write_decisions",
    text: WRITE_DECISIONS,
    values: [
      of(stored, (r) => r.decisionId),
      of(stored, (r) => r.createdAt),
      of(stored, (r) => r.tenantId),
      of(stored, (r) => r.subjectId),
      of(stored, (r) => r.actionType),
      of(stored, (r) => r.verdict),
      of(stored, (r) => r.policyHash),
      of(stored, (r) => r.inputsDigest),
      of(stored, (r) => r.requestId),
      of(stored, (r) => r.json),
      of(reasons, (r) => r[0]),
      of(reasons, (r) => r[1]),
      of(reasons, (r) => r[2]),
      of(approvals, (a) => a.approvalId),
      of(approvals, (a) => a.decisionId),
      of(approvals, (a) => a.tenantId),
      of(approvals, (a) => a.state),
      of(approvals, (a) => a.version),
      of(approvals, (a) => a.deadline),
      of(approvals, (a) => a.createdAt),
      of(approvals, (a) => a.updatedAt),
      of(approvals, (a) => a.json),
      of(events, (e) => e.eventId),
      of(events, (e) => e.decisionId),
      of(events, (e) => e.type),
      of(events, (e) => e.createdAt),
      of(events, (e) => e.dataJson),
      chain.seqs,
      chain.kinds,
      chain.ids,
      chain.hashes,
    ],
  });
  return outcomes;
}

/** A number at a request path of the record, or NULL when it holds anything else (a string is never coerced). */
function numberAt(path: string): string {
  return `CASE WHEN jsonb_typeof(record_json::jsonb #> ${path}) = 'number' THEN (record_json::jsonb #>> ${path})::double precision END`;
}

/** The SQL of a velocity measure (as the embedded store's); paths are bound as parameters appended to `params`. */
function velocityAggregate(measure: VelocityMeasure, params: unknown[]): string {
  const path = (segments: readonly string[]): string => {
    params.push(["request", ...segments]);
    return `$${params.length}::text[]`;
  };
  switch (measure.kind) {
    case "count":
      return "count(*)";
    case "sum_path":
      return `coalesce(sum(${numberAt(path(measure.segments))}), 0)`;
    case "sum_amount_usd": {
      // As amount_usd derives it (engine/normalize.ts): the amount itself in USD, else times the FX rate.
      const value = numberAt(path(["action", "amount", "value"]));
      const rate = numberAt(path(["evidence", "fx_rate_to_usd"]));
      const currency = path(["action", "amount", "currency"]);
      return `coalesce(sum(CASE WHEN (record_json::jsonb #>> ${currency}) = 'USD' THEN ${value}
        WHEN jsonb_typeof(record_json::jsonb #> ${currency}) = 'string' THEN ${value} * ${rate} END), 0)`;
    }
  }
}

/** A WHERE clause built from optional conditions; `?` in each condition becomes the next `$n`. */
class Filter {
  readonly params: unknown[] = [];
  private readonly conditions: string[] = [];

  add(sql: string, value: string | undefined): void {
    if (value === undefined) return;
    this.params.push(value);
    this.conditions.push(sql.replace("?", `$${this.params.length}`));
  }

  where(): string {
    return this.conditions.length ? `WHERE ${this.conditions.join(" AND ")}` : "";
  }
}

function decisionFilter(query: DecisionQuery | StatsQuery | DecisionScan): Filter {
  const filter = new Filter();
  if ("verdict" in query) filter.add("d.verdict = ?", query.verdict);
  if ("actionType" in query) filter.add("d.action_type = ?", query.actionType);
  if ("subjectId" in query) filter.add("d.subject_id = ?", query.subjectId);
  if ("reasonCode" in query)
    filter.add(
      "EXISTS (SELECT 1 FROM decision_reason_codes rc WHERE rc.decision_id = d.decision_id AND rc.reason_code = ?)",
      query.reasonCode,
    );
  filter.add("d.tenant_id = ?", query.tenantId);
  filter.add("d.created_at >= ?", query.since);
  filter.add("d.created_at < ?", query.until);
  return filter;
}
