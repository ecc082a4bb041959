import type pg from "pg";
import { canonicalJson } from "../../core/json.ts";
import { StorageError } from "../../core/problem.ts";
import type { ApprovalOpening } from "../../domain/approval.ts";
import type { DecisionRecord, PutDecisionResult } from "../../domain/decision-record.ts";
import type {
  DecisionQuery,
  DecisionScan,
  DecisionStore,
  Stats,
  StatsQuery,
  StoredDecisionPage,
} from "../decisions.ts";
import { decisionConditions, listDecisionsSql, POSTGRES_PLACEHOLDER, statsSql } from "../queries.ts";
import {
  approvalRow,
  type DecisionRow,
  decisionRow,
  parseStored,
  storageError,
  storedDecisionPage,
} from "../rows.ts";
import { chainEntries, type Head, type PostgresConnection, SCAN_PAGE } from "./connection.ts";

const DEFAULT_PG_MAX_BATCH = 256;
const DEFAULT_PG_MAX_QUEUED = 10_000;

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

function sqlState(error: unknown): string {
  return typeof (error as { code?: unknown })?.code === "string" ? (error as { code: string }).code : "";
}

/**
 * Decisions in PostgreSQL. Every write transaction first locks the chain's head row, so the idempotency check
 * and insert of a request happen under that lock. Decisions put while a transaction is running are committed
 * together in the next one (group commit).
 */
export class PostgresDecisions implements DecisionStore {
  private readonly connection: PostgresConnection;
  private readonly maxBatch: number;
  private readonly maxQueued: number;
  private queue: PendingWrite[] = [];
  private writing: Promise<void> | undefined;

  constructor(connection: PostgresConnection, options: { maxBatch?: number; maxQueued?: number }) {
    this.connection = connection;
    this.maxBatch = options.maxBatch ?? DEFAULT_PG_MAX_BATCH;
    this.maxQueued = options.maxQueued ?? DEFAULT_PG_MAX_QUEUED;
  }

  put(record: DecisionRecord, json?: string, opening?: ApprovalOpening): Promise<PutDecisionResult> {
    this.connection.ensureOpen();
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
      return await this.connection.transaction("store the decision", async (client, head) =>
        writeDecisions(client, head, rows, await takenRequests(client, rows)),
      );
    } catch (error) {
      if (!ROW_ERROR.test(sqlState((error as Error).cause))) throw error;
    }
    return this.connection.transaction("store the decision", async (client, head) => {
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

  /** Decisions put and waiting for a transaction. */
  get queued(): number {
    return this.queue.length;
  }

  /** Resolves once every queued decision is written (the store waits for it before closing). */
  async drained(): Promise<void> {
    while (this.writing) await this.writing;
  }

  async get(decisionId: string): Promise<DecisionRecord | undefined> {
    const { rows } = await this.connection.query("SELECT record_json FROM decisions WHERE decision_id = $1", [
      decisionId,
    ]);
    return rows[0] ? (parseStored(String(rows[0].record_json)) as DecisionRecord) : undefined;
  }

  async getJson(decisionId: string): Promise<{ json: string; tenantId: string } | undefined> {
    const { rows } = await this.connection.query(
      "SELECT record_json, tenant_id FROM decisions WHERE decision_id = $1",
      [decisionId],
    );
    const row = rows[0];
    return row ? { json: String(row.record_json), tenantId: String(row.tenant_id) } : undefined;
  }

  async findByRequestId(tenantId: string, requestId: string): Promise<DecisionRecord | undefined> {
    const { rows } = await this.connection.query(
      "SELECT record_json FROM decisions WHERE tenant_id = $1 AND request_id = $2",
      [tenantId, requestId],
    );
    return rows[0] ? (parseStored(String(rows[0].record_json)) as DecisionRecord) : undefined;
  }

  async list(query: DecisionQuery): Promise<StoredDecisionPage> {
    const { sql, params, limit } = listDecisionsSql(query, POSTGRES_PLACEHOLDER);
    const { rows } = await this.connection.query(sql, params);
    return storedDecisionPage(rows, limit);
  }

  async stats(query: StatsQuery): Promise<Stats> {
    const { totalSql, groupSql, params } = statsSql(query, POSTGRES_PLACEHOLDER);
    const total = await this.connection.query(totalSql, params);
    const { rows } = await this.connection.query(groupSql, params);
    return {
      total: Number(total.rows[0]?.total ?? 0),
      groups: rows.map((row) => ({ key: String(row.key), count: Number(row.count) })),
    };
  }

  async scan(query: DecisionScan, visit: (recordJson: string) => void): Promise<number> {
    let count = 0;
    let after = "";
    for (;;) {
      const page = query.limit === undefined ? SCAN_PAGE : Math.min(SCAN_PAGE, query.limit - count);
      if (page <= 0) return count;
      const conditions = decisionConditions(query, POSTGRES_PLACEHOLDER).add("d.decision_id > ?", after);
      const { rows } = await this.connection.query(
        `SELECT d.decision_id, d.record_json FROM decisions d ${conditions.where()}
           ORDER BY d.decision_id LIMIT ${conditions.next(page)}`,
        conditions.params,
      );
      for (const row of rows) {
        visit(String(row.record_json));
        count++;
      }
      if (rows.length < page) return count;
      after = String(rows.at(-1)?.decision_id);
    }
  }
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
      id: row.decisionId,
      row: { kind: "decision" as const, recordJson: row.json },
    })),
    ...events.map((event) => ({ id: event.eventId, row: { kind: "event" as const, event } })),
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
