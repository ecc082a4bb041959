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
import { decisionConditions, listDecisionsSql, SQLITE_PLACEHOLDER, statsSql } from "../queries.ts";
import {
  approvalRow,
  type DecisionRow,
  decisionRow,
  parseStored,
  storageError,
  storedDecisionPage,
} from "../rows.ts";
import type { SqliteConnection } from "./connection.ts";
import type { RowOutcome } from "./writer.ts";

export const DEFAULT_MAX_BATCH = 512;
/**
 * Decisions queued before they are handed to the writer thread without waiting for the end of the turn. Small
 * hand-offs let the writer start committing while this thread is still deciding the rest of a burst (the
 * writer gathers whatever arrived during its previous commit into one transaction); see docs/benchmarks.md
 * for the hand-off sizes tried.
 */
const THREAD_HANDOFF = 8;

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

/**
 * Decisions in the embedded store. Decisions put in the same turn of the event loop are committed together
 * in one transaction (group commit): one fsync for the batch.
 */
export class SqliteDecisions implements DecisionStore {
  private readonly connection: SqliteConnection;
  private readonly maxBatch: number;
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly statements;

  constructor(connection: SqliteConnection, maxBatch: number = DEFAULT_MAX_BATCH) {
    this.connection = connection;
    this.maxBatch = maxBatch;
    const db = connection.db;
    this.statements = {
      get: db.prepare("SELECT record_json FROM decisions WHERE decision_id = ?"),
      getJson: db.prepare("SELECT record_json, tenant_id FROM decisions WHERE decision_id = ?"),
      byRequest: db.prepare("SELECT record_json FROM decisions WHERE tenant_id = ? AND request_id = ?"),
    };
  }

  put(record: DecisionRecord, json?: string, opening?: ApprovalOpening): Promise<PutDecisionResult> {
    this.connection.ensureOpen();
    const row: DecisionRow = {
      ...decisionRow(record, json ?? canonicalJson(record)),
      ...(opening ? { approval: approvalRow(opening.approval, opening.events) } : {}),
    };
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      // A writer thread commits while this thread decides: hand it work early so both stay busy.
      if (this.connection.threaded && this.queue.length >= THREAD_HANDOFF) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Decisions put and not yet handed to the writer. */
  get queued(): number {
    return this.queue.length;
  }

  /** Hands every queued decision to the writer (the store calls it before closing). */
  flush(): void {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.connection
        .write(
          "store the decision",
          "writeDecisions",
          batch.map((pending) => pending.row),
        )
        .then(
          (outcomes) => {
            for (let i = 0; i < batch.length; i++) {
              const pending = batch[i] as PendingWrite;
              try {
                pending.resolve(putResult(outcomes[i] as RowOutcome));
              } catch (error) {
                pending.reject(error as Error);
              }
            }
          },
          (error: unknown) => {
            const failure = storageError("store the decision", error);
            for (const pending of batch) pending.reject(failure);
          },
        );
    }
  }

  async get(decisionId: string): Promise<DecisionRecord | undefined> {
    const row = this.connection.read(() => this.statements.get.get(decisionId));
    return row ? (parseStored(String(row.record_json)) as DecisionRecord) : undefined;
  }

  async getJson(decisionId: string): Promise<{ json: string; tenantId: string } | undefined> {
    const row = this.connection.read(() => this.statements.getJson.get(decisionId));
    return row ? { json: String(row.record_json), tenantId: String(row.tenant_id) } : undefined;
  }

  async findByRequestId(tenantId: string, requestId: string): Promise<DecisionRecord | undefined> {
    const row = this.connection.read(() => this.statements.byRequest.get(tenantId, requestId));
    return row ? (parseStored(String(row.record_json)) as DecisionRecord) : undefined;
  }

  async list(query: DecisionQuery): Promise<StoredDecisionPage> {
    const { sql, params, limit } = listDecisionsSql(query, SQLITE_PLACEHOLDER);
    const db = this.connection.db;
    const rows = this.connection.read(() => db.prepare(sql).all(...(params as string[])));
    return storedDecisionPage(rows, limit);
  }

  async stats(query: StatsQuery): Promise<Stats> {
    const { totalSql, groupSql, params } = statsSql(query, SQLITE_PLACEHOLDER);
    const db = this.connection.db;
    const [totalRow, rows] = this.connection.read(() => [
      db.prepare(totalSql).get(...(params as string[])),
      db.prepare(groupSql).all(...(params as string[])),
    ]);
    return {
      total: Number(totalRow?.total ?? 0),
      groups: rows.map((row) => ({ key: String(row.key), count: Number(row.count) })),
    };
  }

  async scan(query: DecisionScan, visit: (recordJson: string) => void): Promise<number> {
    const conditions = decisionConditions(query, SQLITE_PLACEHOLDER);
    const limit = query.limit === undefined ? "" : ` LIMIT ${conditions.next(query.limit)}`;
    const sql = `SELECT d.record_json FROM decisions d ${conditions.where()} ORDER BY d.decision_id${limit}`;
    let count = 0;
    this.connection.read(() => {
      const statement = this.connection.db.prepare(sql);
      statement.setReturnArrays(true);
      for (const row of statement.iterate(...(conditions.params as string[])) as unknown as Iterable<
        [string]
      >) {
        visit(row[0]);
        count++;
      }
    });
    return count;
  }
}
