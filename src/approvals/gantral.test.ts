import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JsonObject, JsonValue } from "../core/json.ts";
import { createApiKey, type NewApiKey } from "../domain/api-key.ts";
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

/** The calling key: Gantral's, acting as the input's actor unless it may delegate. */
const keyOf = (options: Partial<NewApiKey> = {}) =>
  createApiKey({ scopes: ["decide"], name: "agent-pay", tenantId: "acme", ...options }).record;

describe("the Gantral evaluator mapping", () => {
  const loaded = loadPolicy(POLICY);
  assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
  const policy = loaded.value;
  const evaluate = (value: JsonObject) => {
    const mapped = evaluatorRequest(value, keyOf());
    assert.ok(mapped.ok, mapped.ok ? "" : JSON.stringify(mapped.problems));
    const decided = decide(mapped.value.request as JsonValue, policy);
    assert.ok(decided.ok, decided.ok ? "" : JSON.stringify(decided.problems));
    return { request: mapped.value.request, record: decided.value.record };
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
    const mapped = evaluatorRequest(input("LOW"), keyOf());
    assert.ok(mapped.ok);
    const withExtension = { ...mapped.value.request, extensions: { materiality: "HIGH" } };
    const decided = decide(withExtension as JsonValue, loaded.value);
    assert.ok(decided.ok, decided.ok ? "" : JSON.stringify(decided.problems));
    assert.equal(decided.value.record.verdict, "ESCALATE");
    const plain = decide(mapped.value.request as JsonValue, loaded.value);
    assert.ok(plain.ok && plain.value.record.verdict === "ALLOW");
  });

  it("takes identity.actor_id from a key that acts as it, and from another only with the delegate scope, recording which key asserted it", () => {
    const ownKey = keyOf({ name: "Agent-Pay " });
    const own = evaluatorRequest(input("LOW"), ownKey);
    assert.ok(own.ok, "the key's own principal, however spelt");
    assert.deepEqual(own.value.request.extensions, { gantral_policy_version_id: "pv-7" }, "nothing asserted");
    assert.deepEqual(own.value.requester, { principal: "Agent-Pay ", keyId: ownKey.keyId });

    const gantral = keyOf({ name: "gantral", tenantId: "globex" });
    const refused = evaluatorRequest(input("LOW"), gantral);
    assert.ok(!refused.ok);
    assert.equal(refused.kind, "forbidden");
    assert.deepEqual(refused.problems, [
      {
        code: "not_a_delegate",
        message: `key ${gantral.keyId} acts as 'gantral' and may not name another actor ('agent-pay'): that needs the 'delegate' scope`,
        pointer: "/identity/actor_id",
        expected: "'gantral', or a key with the 'delegate' scope",
      },
    ]);

    const delegate = keyOf({ name: "gantral", scopes: ["decide", "delegate"] });
    const asserted = evaluatorRequest(input("LOW"), delegate);
    assert.ok(asserted.ok);
    assert.deepEqual(asserted.value.request.subject, {
      type: "agent",
      id: "agent-pay",
      roles: ["payments_bot"],
    });
    assert.deepEqual(asserted.value.request.extensions, {
      gantral_policy_version_id: "pv-7",
      subject_asserted_by: `key:${delegate.keyId}`,
    });
    assert.deepEqual(asserted.value.requester, {
      principal: "gantral",
      keyId: delegate.keyId,
      subjectAssertedBy: `key:${delegate.keyId}`,
    });
    const decided = decide(asserted.value.request as JsonValue, policy);
    assert.ok(decided.ok, "the request stays a valid decision_request.v1");

    const anonymous = evaluatorRequest(input("LOW"), undefined);
    assert.ok(anonymous.ok && anonymous.value.requester === undefined, "no key, no requester (--no-auth)");
    assert.equal(anonymous.value.request.tenant, undefined);
  });

  it("reports every problem of a bad input with its JSON pointer", () => {
    const bad = evaluatorRequest(
      {
        instance: { instance_id: "", workflow_id: "w", materiality: "EXTREME" },
        execution: { cost_estimate: "lots" },
        context: { domain: "Payments Payout" },
        identity: { roles: "admin" },
      },
      keyOf(),
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
    assert.equal(evaluatorRequest([1, 2], keyOf()).ok, false);
  });
});
