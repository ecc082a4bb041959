import type { DecisionEvent } from "../domain/decision-event.ts";
import type { Label, MemoryCase, ScopeCount } from "../domain/memory-case.ts";

/** Labelled decisions: the cases memory compares new requests with. */
export interface MemoryCaseStore {
  /**
   * Labels a decision (`failure` or `success`): appends a `label` event and makes it the decision's current
   * label for memory (the latest label wins; the events keep the history). Undefined when there is no such
   * decision.
   */
  putLabel(label: LabelWrite): Promise<DecisionEvent | undefined>;
  /** How many labelled cases each tenant has of each action type (to size the memory index before loading). */
  scopes(): Promise<ScopeCount[]>;
  /** Every labelled case, each decision once, for building the memory index at start-up; returns how many. */
  load(visit: (memoryCase: MemoryCase) => void): Promise<number>;
  /** The current labelled cases of these decisions, to catch up with labels given through other processes. */
  cases(decisionIds: readonly string[]): Promise<MemoryCase[]>;
  /** The summaries of labelled decisions (empty string when a label has none). */
  summaries(decisionIds: readonly string[]): Promise<Map<string, string>>;
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
