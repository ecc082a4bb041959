import type { Approval, ApprovalState } from "../domain/approval.ts";
import type { NewDecisionEvent } from "../domain/decision-event.ts";

/** Approvals that decisions opened (an approval is stored with its decision: see DecisionStore.put). */
export interface ApprovalStore {
  get(approvalId: string): Promise<Approval | undefined>;
  /** The approval a decision opened, if any. */
  findByDecision(decisionId: string): Promise<Approval | undefined>;
  /** Approvals, newest first. */
  list(query: ApprovalQuery): Promise<Approval[]>;
  /**
   * Writes the next version of an approval and its events in one transaction, only over the version it was
   * computed from (compare-and-set): false, and nothing written, when another writer got there first.
   */
  update(change: ApprovalChange): Promise<boolean>;
  /** Approvals whose deadline has passed while they wait or are unused (`now` ISO 8601), oldest deadline first. */
  due(now: string, limit?: number): Promise<Approval[]>;
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
