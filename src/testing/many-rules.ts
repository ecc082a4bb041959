/**
 * A policy of many small rules, as the security review's was (50,000 rules in 8.5 MB): five lines and about
 * 170 bytes each, every rule its own id and threshold. 6,000 of them are 1 MB, just within the size limit.
 */
export function manyRulesPolicy(count: number): string {
  let text = `schema_version: policy.v1
policy_id: many
policy_version: "1"
defaults: {mode: enforce, default_verdict: ESCALATE, default_reason_code: NO_MATCH}
rules:
`;
  for (let i = 0; i < count; i++)
    text += `  - id: R${String(i).padStart(6, "0")}\n    stage: ESCALATIONS\n    when: {action_type: support.refund}\n    if: {amount_usd: {gt: ${i}}}\n    then: {verdict: ESCALATE, reason_codes: [OVER_LIMIT]}\n`;
  return text;
}
