import { sha256 } from "../core/digest.ts";
import { newDecisionId } from "../core/ids.ts";
import type { JsonObject } from "../core/json.ts";
import { tenantOf } from "../core/tenant.ts";
import {
  type ApprovalOpening,
  type ApprovalSettings,
  approvalEvents,
  openApproval,
  type Requester,
} from "../domain/approval.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import type { Policy } from "../policy/policy.ts";

/**
 * The approval settings that apply to a decision: those of the first matched ESCALATE rule that has some,
 * else the policy's defaults. None unless the verdict is ESCALATE.
 */
export function approvalSettingsFor(policy: Policy, record: DecisionRecord): ApprovalSettings | undefined {
  if (record.verdict !== "ESCALATE") return undefined;
  for (const matched of record.matched_rules) {
    const rule = policy.model.rules.find((candidate) => candidate.id === matched.rule_id);
    if (rule?.verdict === "ESCALATE" && rule.approval) return rule.approval;
  }
  return policy.model.defaults.approval;
}

/**
 * The approval an ESCALATE opens (stored with its record), or undefined when the policy asks for none;
 * `requester` is who asked for the decision.
 */
export function approvalOpening(
  record: DecisionRecord,
  recordJson: string,
  policy: Policy,
  now: Date,
  requester: Requester | undefined,
): ApprovalOpening | undefined {
  const settings = approvalSettingsFor(policy, record);
  if (!settings) return undefined;
  const subject = record.request.subject as JsonObject | undefined;
  const approval = openApproval(
    {
      approvalId: newDecisionId(),
      decisionId: record.decision_id,
      tenantId: tenantOf(record.request),
      inputsDigest: record.determinism.inputs_digest,
      recordDigest: sha256(recordJson),
      policyHash: record.policy.policy_hash,
      requesterId: typeof subject?.id === "string" ? subject.id : null,
      ...(requester ? { requester } : {}),
      settings,
    },
    now,
  );
  return { approval, events: approvalEvents(undefined, { approval, transitions: approval.timeline }) };
}
