/** The tests `lumyn init` writes beside the starter policy (`policy.test.yml`); `lumyn test` runs them. */
export const STARTER_POLICY_TESTS = `# Tests for policy.yml: run them with \`lumyn test\` (add --coverage to see what they exercise).
policy: policy.yml

# Merged into every case's request, so that cases only say what differs.
defaults:
  schema_version: decision_request.v1
  tenant: { tenant_id: acme }
  subject: { type: agent, id: support-agent-17 }
  action: { type: support.refund, intent: refund, amount: { value: 20, currency: USD } }
  context: { mode: digest_only, digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000" }
  evidence:
    ticket_id: ZD-1001
    order_id: "82731"
    customer_id: C-9
    payment_instrument_risk: low
    chargeback_risk: 0.05
    previous_refund_count_90d: 0
    customer_age_days: 180

cases:
  - name: a small refund for an established, low-risk customer goes ahead
    request: {}
    expect:
      verdict: ALLOW
      reason_codes: [REFUND_SMALL_LOW_RISK]
      matched_rules: [R050]
      obligations: [{ type: check, title: Verify ticket exists, details: Confirm the support ticket_id exists. }]

  - name: a refund without ticket or customer is denied, asking for them
    request: { evidence: { ticket_id: null, customer_id: null } }
    expect:
      verdict: DENY
      reason_codes: { contains: [MISSING_EVIDENCE_REFUND] }
      queries:
        - { field: evidence.ticket_id, question: ticket_id is required }
        - { field: evidence.order_id, question: order_id is required }
        - { field: evidence.customer_id, question: customer_id is required }

  - name: a refund in euros without an exchange rate is denied
    request: { action: { amount: { currency: EUR } } }
    expect: { verdict: DENY, reason_codes: [MISSING_FX_RATE], matched_rules: [R007] }

  - name: a refund to a high-risk instrument is not decided by the agent
    request: { evidence: { payment_instrument_risk: high } }
    expect: { verdict: ABSTAIN, reason_codes: [PAYMENT_INSTRUMENT_HIGH_RISK], matched_rules: [R020] }

  - name: a credit to a high-risk instrument is not decided either
    request: { action: { type: support.issue_credit }, evidence: { payment_instrument_risk: high } }
    expect: { verdict: ABSTAIN, matched_rules: [R020b] }

  - name: a likely chargeback blocks the refund
    request: { evidence: { chargeback_risk: 0.7 } }
    expect: { verdict: ABSTAIN, reason_codes: [CHARGEBACK_RISK_BLOCK] }

  - name: a large refund goes to a person
    request: { action: { amount: { value: 500 } } }
    expect: { verdict: ESCALATE, reason_codes: [REFUND_OVER_ESCALATION_LIMIT], matched_rules: [R030] }

  - name: a repeat refunder goes to a person
    request: { evidence: { previous_refund_count_90d: 2 } }
    expect: { verdict: ESCALATE, reason_codes: [REFUND_REPEAT_CUSTOMER] }

  - name: a euro refund with a rate is compared in dollars
    request: { action: { amount: { value: 20, currency: EUR } }, evidence: { fx_rate_to_usd: 1.1 } }
    expect: { verdict: ALLOW, matched_rules: [R050] }

  - name: anything the policy does not cover goes to a person
    request: { action: { type: support.close_ticket } }
    expect: { verdict: ESCALATE, reason_codes: [NO_MATCH_DEFAULT_ESCALATE], matched_rules: [DEFAULT] }
`;
