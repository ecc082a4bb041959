import type { JsonObject } from "../core/json.ts";
import { tenantOf } from "../core/tenant.ts";
import type { PolicyMode, Stage, Verdict } from "../core/verdict.ts";
import type { DecisionRequest } from "./request.ts";

export const RECORD_SCHEMA_VERSION = "decision_record.v1";

/** A decision record (decision_record.v1), as stored and returned. Its keys are those of the reference. */
export interface DecisionRecord extends JsonObject {
  schema_version: "decision_record.v1";
  decision_id: string;
  created_at: string;
  request: DecisionRequest;
  policy: { policy_id: string; policy_version: string; policy_hash: string; mode: PolicyMode };
  verdict: Verdict;
  reason_codes: string[];
  matched_rules: JsonObject[];
  risk_signals: JsonObject;
  queries: JsonObject[];
  obligations: JsonObject[];
  determinism: JsonObject & { engine_version: string; evaluation_order: string[]; inputs_digest: string };
  extensions: JsonObject;
  trace: JsonObject;
}

/** One entry of a record's `matched_rules`: a rule that matched, the default, or memory's say. */
export interface MatchedRule {
  readonly rule_id: string;
  readonly stage: Stage | "DEFAULT" | "MEMORY";
  readonly effect: Verdict;
  readonly reason_codes: readonly string[];
}

/**
 * The columns a store indexes a record by, all read from the record itself: a row whose columns disagree
 * with its record's JSON was not written by Lumyn.
 */
export interface RecordKeys {
  readonly decisionId: string;
  readonly createdAt: string;
  readonly tenantId: string;
  readonly subjectId: string | null;
  readonly actionType: string;
  readonly verdict: string;
  readonly policyHash: string;
  readonly inputsDigest: string;
  readonly requestId: string | null;
  readonly reasonCodes: readonly string[];
}

export function recordKeys(record: DecisionRecord): RecordKeys {
  const request = record.request;
  const subject = request.subject as JsonObject | undefined;
  return {
    decisionId: record.decision_id,
    createdAt: record.created_at,
    tenantId: tenantOf(request),
    subjectId: typeof subject?.id === "string" ? subject.id : null,
    actionType: String(request.action.type),
    verdict: record.verdict,
    policyHash: record.policy.policy_hash,
    inputsDigest: record.determinism.inputs_digest,
    requestId: typeof request.request_id === "string" ? request.request_id : null,
    reasonCodes: record.reason_codes,
  };
}

/** How storing a record went: stored now, already stored under its request_id, or that id taken by another request. */
export type PutDecisionResult =
  | { readonly status: "stored" }
  | { readonly status: "duplicate"; readonly record: DecisionRecord }
  | { readonly status: "conflict"; readonly existingDecisionId: string };
