import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DecisionRequest } from "../domain/request.ts";
import { loadPolicy } from "../policy/policy.ts";
import { explainRequest, renderExplanation } from "./explain.ts";

describe("explain", () => {
  it("writes each condition with its operator's wording and the value it saw", () => {
    const loaded = loadPolicy(`schema_version: policy.v1
policy_id: p
policy_version: "1"
defaults: { mode: enforce, default_verdict: ALLOW, default_reason_code: OK }
rules:
  - id: R
    stage: ESCALATIONS
    if: { evidence.note: { starts_with: "re:", ends_with: "?" }, evidence.tier_in: [gold], amount_usd: { between: [1, 9] } }
    then: { verdict: ESCALATE, reason_codes: [X] }
`);
    assert.ok(loaded.ok);
    const request = {
      schema_version: "decision_request.v1",
      subject: { type: "agent", id: "a" },
      action: { type: "t", intent: "x", amount: { value: 5, currency: "USD" } },
      evidence: { note: "re: refund?", tier: "silver" },
      context: { mode: "digest_only", digest: `sha256:${"0".repeat(64)}` },
    } as DecisionRequest;
    const lines = renderExplanation(explainRequest(request, loaded.value)).split("\n");
    assert.deepEqual(lines.slice(-4), [
      '        ✓ evidence.note starts with "re:"  (actual: "re: refund?")',
      '        ✓ evidence.note ends with "?"  (actual: "re: refund?")',
      '        ✗ evidence.tier in ["gold"]  (actual: "silver")',
      "        ✓ amount_usd between [1,9]  (actual: 5)",
    ]);
  });
});
