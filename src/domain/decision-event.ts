import type { JsonObject } from "../core/json.ts";

/** Something that happened to a decision after it was made (a label, an approval's vote …): never changed. */
export interface DecisionEvent {
  readonly eventId: string;
  readonly decisionId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly createdAt: string;
}

/** An event before it is stored (the store gives it its id, and the time when none is given). */
export interface NewDecisionEvent {
  readonly decisionId: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly createdAt?: string;
}

/** An event with its position in the event log. */
export interface SequencedEvent {
  readonly seq: number;
  readonly event: DecisionEvent;
}
