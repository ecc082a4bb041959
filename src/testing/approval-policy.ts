/**
 * The policy approval tests decide under: refunds over $500 ESCALATE and open an approval with these settings
 * (a YAML flow mapping, e.g. `{ approver_roles: [finance], quorum: 2 }`); every other request is ALLOWed.
 */
export function bigRefundPolicy(approval: string): string {
  return `schema_version: policy.v1
policy_id: big-refunds
policy_version: "1"
defaults: { mode: enforce, default_verdict: ALLOW, default_reason_code: SMALL_REFUND }
rules:
  - id: BIG_REFUND
    stage: ESCALATIONS
    if: { amount_usd: { gt: 500 } }
    then: { verdict: ESCALATE, reason_codes: [BIG_REFUND], approval: ${approval} }
`;
}
