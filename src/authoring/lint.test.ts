import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { STARTER_POLICY } from "../assets/starter-policy.ts";
import { STARTER_POLICY_TESTS } from "../assets/starter-policy-tests.ts";
import { loadPolicy, type Policy } from "../policy/policy.ts";
import { lintPolicy } from "./lint.ts";
import { parseTestSuite } from "./test-suite.ts";

const HEAD = `schema_version: policy.v1
policy_id: p
policy_version: "1"
defaults: { mode: enforce, default_verdict: ESCALATE, default_reason_code: NO_MATCH }
rules:
`;

function load(rules: string): Policy {
  const loaded = loadPolicy(HEAD + rules);
  assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
  return loaded.value;
}

const codes = (policy: Policy, context = {}) =>
  lintPolicy(policy, context).map((f) => `${f.code} ${f.pointer}`);

describe("lint", () => {
  it("finds conditions that can never hold together", () => {
    const policy =
      load(`  - { id: A, stage: ESCALATIONS, if: { amount_usd: { gt: 10, lt: 5 } }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: B, stage: ESCALATIONS, if: { evidence.x_gte: 5, evidence.x_lt: 5 }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: C, stage: ESCALATIONS, if: { tier: { in: [] } }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: D, stage: ESCALATIONS, if: { tier: { eq: gold } }, if_all: [{ tier: { eq: silver } }], then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: E, stage: ESCALATIONS, if: { n: { exists: false, gt: 1 } }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: F, stage: ESCALATIONS, if_any: [], then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: G, stage: ESCALATIONS, if: { n: { between: [1, 5], eq: 9 } }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: OK, stage: ESCALATIONS, if: { amount_usd: { gte: 5, lte: 5 } }, if_any: [{ n: { gt: 1, lt: 0 } }, { n: { eq: 3 } }], then: { verdict: ESCALATE, reason_codes: [X] } }
`);
    const found = lintPolicy(policy).filter((f) => f.code === "never_matches");
    assert.deepEqual(
      found.map((f) => f.message.split(" ")[1]),
      ["A", "B", "C", "D", "E", "F", "G"],
    );
    assert.ok(found.every((f) => f.severity === "error" && f.pointer.startsWith("/rules/")));
  });

  it("does not call rules impossible that match, under either equality", () => {
    const policy =
      load(`  - { id: A, stage: ESCALATIONS, if: { evidence.vip_is: true }, if_all: [{ evidence.vip_is: 1 }], then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: B, stage: ESCALATIONS, if: { count: { eq: 100 } }, if_all: [{ count: { eq: 100.0 } }], then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: C, stage: ESCALATIONS, if: { evidence.flag_is: true, evidence.flag_gte: 1 }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: D, stage: ESCALATIONS, if: { n: { in: [1.0, 2.0] } }, if_all: [{ n: { eq: 1 } }], then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: E, stage: ESCALATIONS, if: { evidence.w_in: [null, a], evidence.w_is: null }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: F, stage: ESCALATIONS, if: { evidence.x_is: true, x: { eq: 1 } }, then: { verdict: ESCALATE, reason_codes: [X] } }
`);
    assert.deepEqual(
      lintPolicy(policy).filter((f) => f.code === "never_matches"),
      [],
    );
  });

  it("does not let a flat condition imply a nested one (true = 1 only in flat form)", () => {
    const policy =
      load(`  - { id: BLOCK, stage: HARD_BLOCKS, if: { x: { eq: 1 } }, then: { verdict: DENY, reason_codes: [B] } }
  - { id: OK, stage: ALLOW_PATHS, if: { evidence.x_is: 1 }, then: { verdict: ALLOW, reason_codes: [O] } }
`);
    assert.deepEqual(codes(policy), []);
  });

  it("finds rules that can never change the verdict, and duplicates", () => {
    const policy =
      load(`  - { id: BLOCK, stage: HARD_BLOCKS, when: { action_type: pay }, if: { evidence.risk_gte: 0.8 }, then: { verdict: DENY, reason_codes: [R] } }
  - { id: ALLOW, stage: ALLOW_PATHS, when: { action_type: pay }, if: { risk: { between: [0.85, 1] }, amount_usd_lt: 10 }, then: { verdict: ALLOW, reason_codes: [OK] } }
  - { id: ALLOW2, stage: ALLOW_PATHS, when: { action_type: pay }, if: { evidence.risk_gte: 0.5 }, then: { verdict: ALLOW, reason_codes: [OK] } }
  - { id: COPY, stage: HARD_BLOCKS, when: { action_type: pay }, if: { evidence.risk_gte: 0.8 }, then: { verdict: DENY, reason_codes: [R] } }
  - { id: TWIN, stage: ESCALATIONS, when: { action_type: pay }, if: { evidence.risk_gte: 0.8 }, then: { verdict: ESCALATE, reason_codes: [E] } }
`);
    const found = codes(policy);
    assert.ok(found.includes("never_decides /rules/1"), found.join("\n"));
    assert.ok(found.includes("duplicate_rule /rules/3"), found.join("\n"));
    assert.ok(found.includes("same_conditions /rules/4"), found.join("\n"));
    assert.ok(
      !found.includes("never_decides /rules/2"),
      "ALLOW2 also allows risk 0.5–0.8, where BLOCK does not match",
    );
  });

  it("compares the policy with its tests and its reason-code registry", () => {
    const policy =
      load(`  - { id: A, stage: ESCALATIONS, when: { action_type_in: [pay, refund] }, if: { evidence.amount_gt: 5 }, then: { verdict: ESCALATE, reason_codes: [X] } }
`);
    const requests = [{ action: { type: "pay" }, evidence: { amount: "7" } }];
    const found = codes(policy, {
      testRequests: requests,
      reasonCodeRegistry: new Set(["X", "NO_MATCH", "UNUSED"]),
    });
    assert.deepEqual(found.sort(), [
      "number_compared_with_string /rules/0/if/evidence.amount_gt",
      "untested_action_type /rules/0/when/action_type_in",
      "unused_reason_code ",
    ]);
  });

  it("takes as a rule's action types only those it must equal, not those it excludes or matches", () => {
    const policy =
      load(`  - { id: A, stage: ESCALATIONS, when: { action_type: { ne: pay } }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: B, stage: ESCALATIONS, when: { action_type: { matches: "^refund\\\\." } }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: C, stage: ESCALATIONS, when: { action_type: { in: [pay, wire] } }, then: { verdict: ESCALATE, reason_codes: [X] } }
  - { id: D, stage: ESCALATIONS, when: { action_type: wire, action_type_in: [wire, card] }, then: { verdict: ESCALATE, reason_codes: [X] } }
`);
    const found = lintPolicy(policy, { testRequests: [{ action: { type: "pay" } }] }).filter(
      (f) => f.code === "untested_action_type",
    );
    assert.deepEqual(
      found.map((f) => `${f.pointer} ${f.message.split("'")[1]}`),
      [
        "/rules/2/when/action_type/in wire",
        "/rules/3/when/action_type wire",
        "/rules/3/when/action_type_in wire",
        "/rules/3/when/action_type_in card",
      ],
    );
  });

  it("finds nothing to say about the starter policy and its tests", () => {
    const loaded = loadPolicy(STARTER_POLICY);
    const suite = parseTestSuite(STARTER_POLICY_TESTS, "policy.test.yml");
    assert.ok(loaded.ok && suite.ok);
    assert.deepEqual(
      lintPolicy(loaded.value, { testRequests: suite.value.cases.map((c) => c.request ?? null) }),
      [],
    );
  });
});
