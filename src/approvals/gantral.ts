import { digestJson } from "../core/digest.ts";
import { isJsonNumber, isJsonObject, type JsonObject, type JsonValue, toDouble } from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import { type ApiKey, grants } from "../domain/api-key.ts";
import type { ApprovalSettings, Requester } from "../domain/approval.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import { sameIdentity } from "../domain/identity.ts";

/**
 * Lumyn as the policy evaluator of an execution-authority layer (Gantral): its evaluator input becomes a
 * decision request, and the decision an evaluator answer. How the fields map is in docs/approvals.md.
 */
export const MATERIALITIES = ["LOW", "MEDIUM", "HIGH"] as const;
export type Materiality = (typeof MATERIALITIES)[number];

export type EvaluatorDecision = "ALLOW" | "REQUIRE_HUMAN" | "DENY";

export interface EvaluatorAnswer {
  readonly decision: EvaluatorDecision;
  readonly approver_roles: string[];
  readonly timeout: string | null;
  readonly escalation_roles: string[];
  readonly decision_id: string | null;
  readonly reason_codes: string[];
}

/**
 * What to answer when the policy cannot be evaluated (the store is down, no policy is active): HIGH always
 * fails closed; MEDIUM and LOW follow these settings, and only LOW may fail open.
 */
export interface EvaluatorFallback {
  readonly medium: "DENY" | "REQUIRE_HUMAN";
  readonly low: "DENY" | "ALLOW";
}

export const DEFAULT_FALLBACK: EvaluatorFallback = { medium: "DENY", low: "DENY" };

const ACTION_TYPE = /^[a-z0-9]+(\.[a-z0-9_]+)*$/;

/** The materiality an evaluator input states, or undefined when it is missing or not one of the three. */
export function materialityOf(input: JsonValue): Materiality | undefined {
  const instance = isJsonObject(input) ? input.instance : undefined;
  const value = isJsonObject(instance) ? instance.materiality : undefined;
  return MATERIALITIES.find((m) => m === value);
}

/** An evaluator input as a decision request, and who asks for it. */
export interface EvaluatorRequest {
  readonly request: JsonObject;
  /** The calling key, recorded as the requester of the approval the decision opens (none without a key). */
  readonly requester?: Requester;
}

/**
 * The decision request for an evaluator input from the calling key (none on a server without auth), in the
 * tenant the key is bound to (none for a key bound to no tenant: the request is then the global tenant's, as
 * any request without one). `identity.actor_id` must be the key's own principal unless the key has the
 * `delegate` scope: such a key may name another actor (as Gantral does for its humans), and the request's
 * `extensions.subject_asserted_by` and the approval's requester then say which key asserted it.
 */
export function evaluatorRequest(input: JsonValue, key: ApiKey | undefined): Result<EvaluatorRequest> {
  const problems: Problem[] = [];
  const section = (key: string, required: boolean): JsonObject => {
    const value = isJsonObject(input) ? input[key] : undefined;
    if (isJsonObject(value)) return value;
    if (value !== undefined || required)
      problems.push({
        code: "type",
        message: `${key} must be an object`,
        pointer: `/${key}`,
        expected: "an object",
      });
    return {};
  };
  const text = (object: JsonObject, key: string, pointer: string, required: boolean): string | undefined => {
    const value = object[key];
    if (typeof value === "string" && value !== "") return value;
    if (value !== undefined || required)
      problems.push({
        code: "type",
        message: `${pointer.slice(1).replace("/", ".")} must be a non-empty string`,
        pointer,
        expected: "a string",
      });
    return undefined;
  };
  if (!isJsonObject(input))
    return fail("invalid_request", [
      {
        code: "type",
        message: "an evaluator input must be a JSON object",
        pointer: "",
        expected: "an object",
      },
    ]);
  const instance = section("instance", true);
  const execution = section("execution", false);
  const context = section("context", true);
  const identity = section("identity", true);
  const policy = section("policy", false);

  const instanceId = text(instance, "instance_id", "/instance/instance_id", true);
  const workflowId = text(instance, "workflow_id", "/instance/workflow_id", true);
  const materiality = materialityOf(input);
  if (!materiality)
    problems.push({
      code: "enum",
      message: "instance.materiality must be LOW, MEDIUM or HIGH",
      pointer: "/instance/materiality",
      expected: MATERIALITIES.join(", "),
    });
  const domain = text(context, "domain", "/context/domain", true);
  if (domain && !ACTION_TYPE.test(domain))
    problems.push({
      code: "pattern",
      message: `context.domain '${domain}' is not an action type`,
      pointer: "/context/domain",
      expected: "lower-case dotted words, e.g. payments.payout",
    });
  const actorId = text(identity, "actor_id", "/identity/actor_id", true);
  const roles = identity.roles;
  if (roles !== undefined && (!Array.isArray(roles) || roles.some((role) => typeof role !== "string")))
    problems.push({
      code: "type",
      message: "identity.roles must be a list of strings",
      pointer: "/identity/roles",
      expected: "a list of strings",
    });
  const cost = execution.cost_estimate;
  if (cost !== undefined && !isJsonNumber(cost))
    problems.push({
      code: "type",
      message: "execution.cost_estimate must be a number",
      pointer: "/execution/cost_estimate",
      expected: "a number",
    });
  const attributes = context.attributes;
  if (attributes !== undefined && !isJsonObject(attributes))
    problems.push({
      code: "type",
      message: "context.attributes must be an object",
      pointer: "/context/attributes",
      expected: "an object",
    });
  const step = text(execution, "step", "/execution/step", false);
  const trigger = text(context, "trigger", "/context/trigger", false);
  if (problems.length > 0) return fail("invalid_request", problems);
  const actor = actorId as string;
  const delegated = key !== undefined && !sameIdentity(actor, key.principal);
  if (delegated && !grants(key, "delegate"))
    return fail("forbidden", [
      {
        code: "not_a_delegate",
        message: `key ${key.keyId} acts as '${key.principal}' and may not name another actor ('${actor}'): that needs the 'delegate' scope`,
        pointer: "/identity/actor_id",
        expected: `'${key.principal}', or a key with the 'delegate' scope`,
      },
    ]);
  const assertedBy = delegated ? `key:${key.keyId}` : undefined;

  const evidence: JsonObject = {
    ...(isJsonObject(attributes) ? attributes : {}),
    materiality: materiality as string,
    workflow_id: workflowId as string,
    ...(typeof instance.workflow_version === "string" ? { workflow_version: instance.workflow_version } : {}),
    ...(typeof instance.owning_team_id === "string" ? { owning_team_id: instance.owning_team_id } : {}),
    ...(typeof execution.current_state === "string" ? { current_state: execution.current_state } : {}),
    ...(step ? { step } : {}),
    ...(trigger ? { trigger } : {}),
  };
  const extensions: JsonObject = {
    ...(typeof policy.policy_version_id === "string"
      ? { gantral_policy_version_id: policy.policy_version_id }
      : {}),
    ...(assertedBy !== undefined ? { subject_asserted_by: assertedBy } : {}),
  };
  const request: JsonObject = {
    schema_version: "decision_request.v1",
    request_id: `gantral:${instanceId}:${step ?? "evaluate"}`,
    ...(key?.tenantId !== undefined ? { tenant: { tenant_id: key.tenantId } } : {}),
    subject: { type: "agent", id: actor, roles: Array.isArray(roles) ? roles : [] },
    action: {
      type: domain as string,
      intent: step ?? `run workflow ${workflowId}`,
      target: { system: "gantral", resource_type: "workflow_instance", resource_id: instanceId as string },
      ...(isJsonNumber(cost) ? { amount: { value: toDouble(cost), currency: "USD" } } : {}),
    },
    evidence,
    context: { mode: "digest_only", digest: digestJson(input) },
    ...(Object.keys(extensions).length > 0 ? { extensions } : {}),
  };
  return ok({
    request,
    ...(key
      ? {
          requester: {
            principal: key.principal,
            keyId: key.keyId,
            ...(assertedBy !== undefined ? { subjectAssertedBy: assertedBy } : {}),
          },
        }
      : {}),
  });
}

/** The evaluator answer for a decision: ESCALATE asks for people (with the approval settings), ABSTAIN denies. */
export function evaluatorAnswer(
  record: DecisionRecord,
  approval: ApprovalSettings | undefined,
): EvaluatorAnswer {
  const decision: EvaluatorDecision =
    record.verdict === "ALLOW" ? "ALLOW" : record.verdict === "ESCALATE" ? "REQUIRE_HUMAN" : "DENY";
  const asksPeople = decision === "REQUIRE_HUMAN" && approval !== undefined;
  return {
    decision,
    approver_roles: asksPeople ? [...approval.approverRoles] : [],
    timeout: asksPeople ? approval.timeout : null,
    escalation_roles: asksPeople ? [...approval.escalationRoles] : [],
    decision_id: record.decision_id,
    reason_codes: [...record.reason_codes],
  };
}

/** The answer when the policy cannot be evaluated, with a reason code that says which case it was. */
export function evaluatorFallback(materiality: Materiality, fallback: EvaluatorFallback): EvaluatorAnswer {
  const decision: EvaluatorDecision =
    materiality === "HIGH" ? "DENY" : materiality === "MEDIUM" ? fallback.medium : fallback.low;
  const how = decision === "ALLOW" ? "FAIL_OPEN" : decision === "DENY" ? "FAIL_CLOSED" : "REQUIRE_HUMAN";
  return {
    decision,
    approver_roles: [],
    timeout: null,
    escalation_roles: [],
    decision_id: null,
    reason_codes: [`EVALUATOR_UNAVAILABLE_${how}_${materiality}`],
  };
}
