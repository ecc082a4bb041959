import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JsonObject, JsonValue } from "../core/json.ts";
import { decide } from "../engine/decide.ts";
import { loadPolicy } from "../policy/policy.ts";
import { DEFAULT_FALLBACK, evaluatorAnswer, evaluatorFallback, evaluatorRequest } from "./gantral.ts";

const POLICY = `schema_version: policy.v1
policy_id: payouts
policy_version: "1"
defaults: { mode: enforce, default_verdict: ALLOW, default_reason_code: SMALL_PAYOUT }
rules:
  - id: HIGH_MATERIALITY
    stage: ESCALATIONS
    if: { evidence.materiality: { eq: HIGH } }
    then:
      verdict: ESCALATE
      reason_codes: [HIGH_MATERIALITY_PAYOUT]
      approval: { approver_roles: [finance_manager], timeout: 30m, on_timeout: ESCALATE, escalation_roles: [cfo] }
  - id: NO_ROLE
    stage: HARD_BLOCKS
    if: { subject.roles: { contains: suspended } }
    then: { verdict: DENY, reason_codes: [ACTOR_SUSPENDED] }
`;

const input = (materiality: string, roles: string[] = ["payments_bot"]): JsonObject => ({
  instance: {
    instance_id: "inst-42",
    workflow_id: "supplier-payout",
    workflow_version: "3",
    materiality,
    owning_team_id: "finance-ops",
  },
  execution: { current_state: "RUNNING", step: "pay_supplier", cost_estimate: 12500 },
  context: { domain: "payments.payout", trigger: "schedule", attributes: { supplier_id: "s-9" } },
  identity: { actor_id: "agent-pay", roles },
  policy: { policy_version_id: "pv-7" },
});

describe("the Gantral evaluator mapping", () => {
  const loaded = loadPolicy(POLICY);
  assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
  const policy = loaded.value;
  const evaluate = (value: JsonObject) => {
    const request = evaluatorRequest(value, "acme");
    assert.ok(request.ok, request.ok ? "" : JSON.stringify(request.problems));
    const decided = decide(request.value as JsonValue, policy);
    assert.ok(decided.ok, decided.ok ? "" : JSON.stringify(decided.problems));
    return { request: request.value, record: decided.value.record };
  };

  it("turns the evaluator input into a valid decision request that rules can read", () => {
    const { request, record } = evaluate(input("LOW"));
    assert.deepEqual(request.evidence, {
      supplier_id: "s-9",
      materiality: "LOW",
      workflow_id: "supplier-payout",
      workflow_version: "3",
      owning_team_id: "finance-ops",
      current_state: "RUNNING",
      step: "pay_supplier",
      trigger: "schedule",
    });
    assert.equal(request.request_id, "gantral:inst-42:pay_supplier");
    assert.deepEqual(request.action, {
      type: "payments.payout",
      intent: "pay_supplier",
      target: { system: "gantral", resource_type: "workflow_instance", resource_id: "inst-42" },
      amount: { value: 12500, currency: "USD" },
    });
    assert.deepEqual(evaluatorAnswer(record, undefined), {
      decision: "ALLOW",
      approver_roles: [],
      timeout: null,
      escalation_roles: [],
      decision_id: record.decision_id,
      reason_codes: ["SMALL_PAYOUT"],
    });
  });

  it("answers REQUIRE_HUMAN with the approval settings for an ESCALATE, and DENY for a DENY", () => {
    const { record } = evaluate(input("HIGH"));
    const approval = policy.model.rules.find((rule) => rule.id === "HIGH_MATERIALITY")?.approval;
    assert.deepEqual(evaluatorAnswer(record, approval), {
      decision: "REQUIRE_HUMAN",
      approver_roles: ["finance_manager"],
      timeout: "30m",
      escalation_roles: ["cfo"],
      decision_id: record.decision_id,
      reason_codes: ["HIGH_MATERIALITY_PAYOUT"],
    });
    const denied = evaluate(input("LOW", ["suspended"])).record;
    assert.equal(evaluatorAnswer(denied, undefined).decision, "DENY");
  });

  it("fails closed for HIGH materiality whatever the settings, and as configured for MEDIUM and LOW", () => {
    const open = { medium: "REQUIRE_HUMAN", low: "ALLOW" } as const;
    assert.deepEqual(
      (["HIGH", "MEDIUM", "LOW"] as const).map((m) =>
        [evaluatorFallback(m, DEFAULT_FALLBACK), evaluatorFallback(m, open)].map(
          (a) => `${a.decision} ${a.reason_codes[0]}`,
        ),
      ),
      [
        ["DENY EVALUATOR_UNAVAILABLE_FAIL_CLOSED_HIGH", "DENY EVALUATOR_UNAVAILABLE_FAIL_CLOSED_HIGH"],
        [
          "DENY EVALUATOR_UNAVAILABLE_FAIL_CLOSED_MEDIUM",
          "REQUIRE_HUMAN EVALUATOR_UNAVAILABLE_REQUIRE_HUMAN_MEDIUM",
        ],
        ["DENY EVALUATOR_UNAVAILABLE_FAIL_CLOSED_LOW", "ALLOW EVALUATOR_UNAVAILABLE_FAIL_OPEN_LOW"],
      ],
    );
  });

  it("lets rules read a materiality stated in evidence or in extensions, like any other value", () => {
    const loaded = loadPolicy(`schema_version: policy.v1
policy_id: m
policy_version: "1"
defaults: { mode: enforce, default_verdict: ALLOW, default_reason_code: OK }
rules:
  - id: HIGH_IN_EXTENSIONS
    stage: ESCALATIONS
    if: { extensions.materiality: { eq: HIGH } }
    then: { verdict: ESCALATE, reason_codes: [HIGH_MATERIALITY] }
`);
    assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
    const request = evaluatorRequest(input("LOW"), "acme");
    assert.ok(request.ok);
    const withExtension = { ...request.value, extensions: { materiality: "HIGH" } };
    const decided = decide(withExtension as JsonValue, loaded.value);
    assert.ok(decided.ok, decided.ok ? "" : JSON.stringify(decided.problems));
    assert.equal(decided.value.record.verdict, "ESCALATE");
    const plain = decide(request.value as JsonValue, loaded.value);
    assert.ok(plain.ok && plain.value.record.verdict === "ALLOW");
  });

  it("reports every problem of a bad input with its JSON pointer", () => {
    const bad = evaluatorRequest(
      {
        instance: { instance_id: "", workflow_id: "w", materiality: "EXTREME" },
        execution: { cost_estimate: "lots" },
        context: { domain: "Payments Payout" },
        identity: { roles: "admin" },
      },
      "acme",
    );
    assert.ok(!bad.ok);
    assert.deepEqual(
      bad.problems.map((p) => p.pointer),
      [
        "/instance/instance_id",
        "/instance/materiality",
        "/context/domain",
        "/identity/actor_id",
        "/identity/roles",
        "/execution/cost_estimate",
      ],
    );
    assert.equal(evaluatorRequest([1, 2], "acme").ok, false);
  });
});
