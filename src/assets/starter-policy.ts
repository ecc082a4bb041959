/**
 * The starter policy written by `lumyn init`: support refunds, the same rules as Lumyn 1.3.6's starter policy,
 * so its `policy_hash` is the reference's (comments and layout do not count towards the hash).
 */
export const STARTER_POLICY = `# Lumyn starter policy: support refunds.
# Stages run in order REQUIREMENTS, HARD_BLOCKS, ESCALATIONS, ALLOW_PATHS; every rule is evaluated and the
# strongest verdict wins (ABSTAIN > DENY > ESCALATE > ALLOW). When nothing matches, the default applies.
schema_version: policy.v1
policy_id: starter-policy
policy_version: "1.0.0"

defaults:
  mode: enforce
  default_verdict: ESCALATE
  default_reason_code: NO_MATCH_DEFAULT_ESCALATE

rules:
  # Requirements: a refund names its ticket, order and customer.
  - id: R001
    stage: REQUIREMENTS
    when: { action_type: support.refund }
    if_any:
      - { evidence.ticket_id_is: null }
      - { evidence.order_id_is: null }
      - { evidence.customer_id_is: null }
    then:
      verdict: DENY
      reason_codes: [MISSING_EVIDENCE_REFUND]
      queries:
        - field: evidence.ticket_id
          question: ticket_id is required
        - field: evidence.order_id
          question: order_id is required
        - field: evidence.customer_id
          question: customer_id is required

  # Requirements: amounts in another currency need an exchange rate to compare in USD.
  - id: R007
    stage: REQUIREMENTS
    when: { action_type: support.refund }
    if_all:
      - { amount_currency_ne: USD }
      - { evidence.fx_rate_to_usd_is: null }
    then:
      verdict: DENY
      reason_codes: [MISSING_FX_RATE]
      queries:
        - field: evidence.fx_rate_to_usd
          question: Provide fx_rate_to_usd to evaluate amount_usd.

  # Hard blocks: risky payment instruments and likely chargebacks.
  - id: R020
    stage: HARD_BLOCKS
    when: { action_type: support.refund }
    if: { evidence.payment_instrument_risk_is: high }
    then:
      verdict: ABSTAIN
      reason_codes: [PAYMENT_INSTRUMENT_HIGH_RISK]

  - id: R020b
    stage: HARD_BLOCKS
    when: { action_type: support.issue_credit }
    if: { evidence.payment_instrument_risk_is: high }
    then:
      verdict: ABSTAIN
      reason_codes: [PAYMENT_INSTRUMENT_HIGH_RISK]

  - id: R022
    stage: HARD_BLOCKS
    when: { action_type: support.refund }
    if: { evidence.chargeback_risk_gte: 0.70 }
    then:
      verdict: ABSTAIN
      reason_codes: [CHARGEBACK_RISK_BLOCK]

  # Escalations: large refunds and repeat refunders go to a person.
  - id: R030
    stage: ESCALATIONS
    when: { action_type: support.refund }
    if: { amount_usd_gt: 200 }
    then:
      verdict: ESCALATE
      reason_codes: [REFUND_OVER_ESCALATION_LIMIT]

  - id: R031
    stage: ESCALATIONS
    when: { action_type: support.refund }
    if: { evidence.previous_refund_count_90d_gte: 2 }
    then:
      verdict: ESCALATE
      reason_codes: [REFUND_REPEAT_CUSTOMER]

  # Allow paths: small, low-risk refunds for established customers go ahead.
  - id: R050
    stage: ALLOW_PATHS
    when: { action_type: support.refund }
    if_all:
      - { amount_usd_lte: 25 }
      - { evidence.payment_instrument_risk_in: [low, medium] }
      - { evidence.chargeback_risk_lt: 0.35 }
      - { evidence.previous_refund_count_90d_lt: 2 }
      - { evidence.customer_age_days_gte: 14 }
    then:
      verdict: ALLOW
      reason_codes: [REFUND_SMALL_LOW_RISK]
      obligations:
        - type: check
          title: Verify ticket exists
          details: Confirm the support ticket_id exists.
`;

/** The policy_hash of {@link STARTER_POLICY}, equal to Lumyn 1.3.6's starter policy. */
export const STARTER_POLICY_HASH = "sha256:57edcff8659e004a14a99b2896708f51c9dc74e66b0aa08902f9157274996ab4";
