import type { ApiKey } from "../domain/api-key.ts";
import type { Approval, ApprovalState } from "../domain/approval.ts";
import type { ChainCheckpoint, ChainKind, ChainLink } from "../domain/chain.ts";
import type { DecisionEvent, NewDecisionEvent, SequencedEvent } from "../domain/decision-event.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import type { Label, MemoryCase, ScopeCount } from "../domain/memory-case.ts";
import type { NewPolicyEvent, PolicyEvent, PolicySnapshot } from "../domain/policy-registry.ts";
import type { VelocityQuery } from "../domain/velocity.ts";
import type { DeliveryAttempt, Webhook, WebhookProgress } from "../domain/webhook.ts";

/**
 * Where decisions, events and policy snapshots live. Asynchronous from the start: the PostgreSQL backend is
 * network I/O, and the embedded backend batches concurrent writes into one transaction (group commit).
 * Every backend passes the same conformance suite (`store/conformance.ts`).
 */
export interface Store {
  /** Keeps the policy text by hash so that any record's policy can be recovered. Idempotent. */
  putPolicy(snapshot: PolicySnapshot): Promise<void>;
  getPolicy(policyHash: string): Promise<PolicySnapshot | undefined>;

  /**
   * Stores a record durably, unless (tenant, request_id) is already taken: then the stored record is
   * returned (`duplicate`) when its inputs digest is the same, or `conflict` when it differs. `json`, when
   * the caller has it, is the record's canonical JSON (it saves serialising the record again). `approval`,
   * for an ESCALATE that people must approve, is stored with the record in the same transaction, with the
   * event that opens it (and only when the record is newly stored).
   */
  putDecision(record: DecisionRecord, json?: string, approval?: ApprovalOpening): Promise<PutDecisionResult>;
  getDecision(decisionId: string): Promise<DecisionRecord | undefined>;
  /**
   * A stored record's canonical JSON as stored, with its tenant: what a server sends without parsing and
   * re-serialising the record.
   */
  getDecisionJson(
    decisionId: string,
  ): Promise<{ readonly json: string; readonly tenantId: string } | undefined>;
  /** The record stored for an idempotency key, if any. */
  findByRequestId(tenantId: string, requestId: string): Promise<DecisionRecord | undefined>;
  /**
   * One page of stored decisions, newest first, each as its stored canonical JSON: a server sends them as
   * they are, and {@link Lumyn.list} parses them into records.
   */
  listDecisionJson(query: DecisionQuery): Promise<StoredDecisionPage>;
  stats(query: StatsQuery): Promise<Stats>;

  /**
   * Labels a decision (`failure` or `success`): appends a `label` event and makes it the decision's current
   * label for memory (the latest label wins; the events keep the history). Undefined when there is no such
   * decision.
   */
  putLabel(label: LabelWrite): Promise<DecisionEvent | undefined>;
  /** How many labelled cases each tenant has of each action type (to size the memory index before loading). */
  memoryScopes(): Promise<ScopeCount[]>;
  /**
   * Every labelled case, each decision once, for building the memory index at start-up. Returns how many
   * there were.
   */
  loadMemory(visit: (memoryCase: MemoryCase) => void): Promise<number>;
  /** The current labelled cases of these decisions, to catch up with labels given through other processes. */
  memoryCases(decisionIds: readonly string[]): Promise<MemoryCase[]>;
  /** The summaries of labelled decisions (empty string when a label has none). */
  memorySummaries(decisionIds: readonly string[]): Promise<Map<string, string>>;

  /** Appends an event about a decision (labels, approvals …); events are never changed or removed. */
  appendEvent(event: NewDecisionEvent): Promise<DecisionEvent>;
  listEvents(decisionId: string): Promise<DecisionEvent[]>;

  /**
   * Visits the stored decisions that match, oldest first, one at a time as their canonical JSON (for
   * backtests over all of history: nothing is held but the current row). Returns how many were visited.
   */
  scanDecisions(query: DecisionScan, visit: (recordJson: string) => void): Promise<number>;

  /**
   * The audit chain, in order: every stored decision and event is an entry, appended in the same transaction
   * that stores it (src/audit/chain.ts). Each link carries the entry's canonical bytes rebuilt from the row it
   * names. `visit` returns false to stop early.
   */
  readChain(visit: (link: ChainLink) => boolean): Promise<void>;
  /** Decisions and events that no chain entry covers (at most `limit`, default 100). */
  unchainedRows(limit?: number): Promise<{ kind: ChainKind; id: string }[]>;
  /** The signed checkpoints of the chain's head, oldest first. */
  listCheckpoints(): Promise<ChainCheckpoint[]>;

  /** Stores a new API key: its hash and grants, never the key itself. */
  putApiKey(key: ApiKey): Promise<void>;
  /** The key with this hash, revoked or not (the caller decides what a revoked key means). */
  findApiKey(keyHash: string): Promise<ApiKey | undefined>;
  /** Every key, oldest first. */
  listApiKeys(): Promise<ApiKey[]>;
  /**
   * Revokes a key from now on. True when the key exists (a key revoked before keeps its first revocation
   * time); false when there is no such key.
   */
  revokeApiKey(keyId: string, revokedAt?: string): Promise<boolean>;

  getApproval(approvalId: string): Promise<Approval | undefined>;
  /** The approval a decision opened, if any. */
  findApproval(decisionId: string): Promise<Approval | undefined>;
  /** Approvals, newest first. */
  listApprovals(query: ApprovalQuery): Promise<Approval[]>;
  /**
   * Writes the next version of an approval and its events in one transaction, only over the version it was
   * computed from (compare-and-set): false, and nothing written, when another writer got there first.
   */
  updateApproval(change: ApprovalChange): Promise<boolean>;
  /** Approvals whose deadline has passed while they wait or are unused (`now` ISO 8601), oldest deadline first. */
  dueApprovals(now: string, limit?: number): Promise<Approval[]>;

  putWebhook(webhook: Webhook): Promise<void>;
  listWebhooks(): Promise<Webhook[]>;
  /** False when there is no such webhook. */
  deleteWebhook(webhookId: string): Promise<boolean>;
  /** The highest event sequence number so far (0 for none): where a new webhook starts. */
  lastEventSeq(): Promise<number>;
  /** Events of these types after `seq`, in order, at most `limit`. */
  eventsAfter(seq: number, types: readonly string[], limit: number): Promise<SequencedEvent[]>;
  /**
   * Takes the webhook's delivery lease for `holder` until `until` when it is free or expired at `now`
   * (compare-and-set): true when taken, so that one process at a time delivers for a webhook.
   */
  claimWebhook(webhookId: string, holder: string, until: string, now: string): Promise<boolean>;
  /** Logs a delivery attempt and moves the webhook's progress, in one transaction. */
  recordDelivery(attempt: DeliveryAttempt, progress: WebhookProgress): Promise<void>;
  /** Delivery attempts, newest first. */
  listDeliveries(query: { readonly webhookId?: string; readonly limit?: number }): Promise<DeliveryAttempt[]>;

  /**
   * Appends to a tenant's policy registry history. An `activated` or `rolled_back` event makes its
   * `policyHash` the tenant's active policy, only over the active policy it was computed from
   * (`expectedActive`, null when the tenant had none): undefined, and nothing written, when another writer
   * changed it first. `published` and `rejected` events change no active policy.
   */
  appendPolicyEvent(event: NewPolicyEvent): Promise<PolicyEvent | undefined>;
  /** A tenant's registry history (every tenant's when absent), oldest first. */
  listPolicyEvents(tenantId?: string): Promise<PolicyEvent[]>;
  /** Each tenant's active policy hash (tenants with none are absent). */
  activePolicies(): Promise<Map<string, string>>;

  /**
   * A velocity measure over stored decisions: how many (or the sum of a number) of the tenant's decisions in
   * `[since, until)` share the group value and pass the filters. Rows whose summed number is missing count
   * as nothing in a sum.
   */
  velocity(query: VelocityQuery): Promise<number>;

  /** Store reachable and writable enough to answer (for readiness checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** An approval opened by a decision, and the events that open it. */
export interface ApprovalOpening {
  readonly approval: Approval;
  readonly events: readonly NewDecisionEvent[];
}

export interface ApprovalChange {
  readonly approval: Approval;
  readonly expectedVersion: number;
  readonly events: readonly NewDecisionEvent[];
}

export interface ApprovalQuery {
  readonly state?: ApprovalState;
  /** Only approvals this role may vote on now. */
  readonly role?: string;
  readonly tenantId?: string;
  readonly limit?: number;
}

export type PutDecisionResult =
  | { readonly status: "stored" }
  | { readonly status: "duplicate"; readonly record: DecisionRecord }
  | { readonly status: "conflict"; readonly existingDecisionId: string };

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

export interface LabelWrite {
  readonly decisionId: string;
  readonly label: Label;
  readonly summary?: string;
  /** 1 (minor) to 5 (severe). */
  readonly severity?: number;
  readonly tenantId: string;
  readonly actionType: string;
  readonly fingerprint: Int8Array;
  readonly projection: string;
  readonly createdAt?: string;
}

/** The store could not be reached or written. Decisions then fail closed (ABSTAIN, STORAGE_UNAVAILABLE). */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
  }
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;
