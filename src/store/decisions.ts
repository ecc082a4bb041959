import type { ApprovalOpening } from "../domain/approval.ts";
import type { DecisionRecord, PutDecisionResult } from "../domain/decision-record.ts";

/**
 * Decisions and their reason codes. Stored once per (tenant, request_id); every stored record is an entry of
 * the audit chain, appended in the transaction that stores it.
 */
export interface DecisionStore {
  /**
   * Stores a record durably, unless (tenant, request_id) is already taken: then the stored record is
   * returned (`duplicate`) when its inputs digest is the same, or `conflict` when it differs. `json`, when
   * the caller has it, is the record's canonical JSON (it saves serialising the record again). `approval`,
   * for an ESCALATE that people must approve, is stored with the record in the same transaction, with the
   * event that opens it (and only when the record is newly stored).
   */
  put(record: DecisionRecord, json?: string, approval?: ApprovalOpening): Promise<PutDecisionResult>;
  get(decisionId: string): Promise<DecisionRecord | undefined>;
  /**
   * A stored record's canonical JSON as stored, with its tenant: what a server sends without parsing and
   * re-serialising the record.
   */
  getJson(decisionId: string): Promise<{ readonly json: string; readonly tenantId: string } | undefined>;
  /** The record stored for an idempotency key, if any. */
  findByRequestId(tenantId: string, requestId: string): Promise<DecisionRecord | undefined>;
  /**
   * One page of stored decisions, newest first, each as its stored canonical JSON: a server sends them as
   * they are, and {@link Lumyn.list} parses them into records.
   */
  list(query: DecisionQuery): Promise<StoredDecisionPage>;
  stats(query: StatsQuery): Promise<Stats>;
  /**
   * Visits the stored decisions that match, oldest first, one at a time as their canonical JSON (for
   * backtests over all of history: nothing is held but the current row). Returns how many were visited.
   */
  scan(query: DecisionScan, visit: (recordJson: string) => void): Promise<number>;
}

export interface DecisionQuery {
  readonly verdict?: string;
  readonly reasonCode?: string;
  readonly actionType?: string;
  readonly subjectId?: string;
  readonly tenantId?: string;
  /** Inclusive lower bound on `created_at` (ISO 8601). */
  readonly since?: string;
  /** Exclusive upper bound on `created_at` (ISO 8601). */
  readonly until?: string;
  readonly limit?: number;
  /** Opaque cursor from a previous page; pages run newest first and stay stable as decisions arrive. */
  readonly cursor?: string;
}

export interface DecisionScan {
  readonly tenantId?: string;
  /** Inclusive lower bound on `created_at` (ISO 8601). */
  readonly since?: string;
  /** Exclusive upper bound on `created_at` (ISO 8601). */
  readonly until?: string;
  /** The oldest this many (all when absent). */
  readonly limit?: number;
}

export interface DecisionPage {
  readonly records: DecisionRecord[];
  readonly nextCursor?: string;
}

/** A page of stored decisions as the store keeps them: each record's canonical JSON, by id. */
export interface StoredDecisionPage {
  readonly decisions: readonly { readonly decisionId: string; readonly json: string }[];
  readonly nextCursor?: string;
}

export const STATS_DIMENSIONS = ["verdict", "reason_code", "action_type"] as const;
export type StatsDimension = (typeof STATS_DIMENSIONS)[number];

export interface StatsQuery {
  readonly by: StatsDimension;
  readonly since?: string;
  readonly until?: string;
  readonly tenantId?: string;
}

export interface Stats {
  /** Decisions in the window. */
  readonly total: number;
  /** Counts per value of the dimension, largest first (reason codes count once per occurrence). */
  readonly groups: readonly { readonly key: string; readonly count: number }[];
}
