/** Example requests written by `lumyn init` and used by `lumyn demo`: one for each verdict of the starter policy. */
function refund(requestId: string, intent: string, value: number, evidence: Record<string, unknown>) {
  return {
    schema_version: "decision_request.v1",
    request_id: requestId,
    tenant: { tenant_id: "acme", environment: "prod" },
    subject: { type: "agent", id: "support-agent-17", roles: ["support"] },
    action: {
      type: "support.refund",
      intent,
      target: { system: "stripe", resource_type: "charge", resource_id: `ch_${requestId}` },
      amount: { value, currency: "USD" },
    },
    evidence,
    context: { mode: "digest_only", digest: `sha256:${"0".repeat(64)}` },
  };
}

const establishedCustomer = {
  ticket_id: "ZD-1001",
  order_id: "82731",
  customer_id: "C-9",
  payment_instrument_risk: "low",
  chargeback_risk: 0.05,
  previous_refund_count_90d: 0,
  customer_age_days: 180,
};

export const EXAMPLE_REQUESTS: Readonly<
  Record<string, { readonly title: string; readonly request: object }>
> = {
  "refund-small": {
    title: "A $20 refund for an established, low-risk customer",
    request: refund("demo-refund-small", "Refund duplicate charge", 20, establishedCustomer),
  },
  "refund-missing-evidence": {
    title: "A refund with no ticket or customer on file",
    request: refund("demo-refund-missing", "Refund without a ticket", 20, { order_id: "82731" }),
  },
  "refund-large": {
    title: "A $500 refund, over the escalation limit",
    request: refund("demo-refund-large", "Refund a large order", 500, establishedCustomer),
  },
  "refund-risky-card": {
    title: "A refund to a high-risk payment instrument",
    request: refund("demo-refund-risky", "Refund to a flagged card", 20, {
      ...establishedCustomer,
      payment_instrument_risk: "high",
    }),
  },
};
