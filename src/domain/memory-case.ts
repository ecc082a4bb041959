export const LABELS = ["failure", "success"] as const;
/** A later fact about a decision: it went wrong, or it went well. */
export type Label = (typeof LABELS)[number];

/** A labelled past decision, as memory keeps it. */
export interface MemoryCase {
  readonly decisionId: string;
  readonly tenantId: string;
  readonly actionType: string;
  readonly label: Label;
  readonly vector: Int8Array;
}

/** How many labelled cases a tenant has of one action type. */
export interface ScopeCount {
  readonly tenantId: string;
  readonly actionType: string;
  readonly count: number;
}
