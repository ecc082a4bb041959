import type { JsonObject } from "../core/json.ts";

/** A decision request that passed validation (decision_request.v1): what an agent asks before it acts. */
export type DecisionRequest = JsonObject & {
  readonly schema_version: "decision_request.v1";
  readonly action: JsonObject & { readonly type: string };
  readonly context: JsonObject;
};
