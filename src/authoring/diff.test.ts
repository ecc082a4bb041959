import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { STARTER_POLICY } from "../assets/starter-policy.ts";
import { loadPolicy, type Policy } from "../policy/policy.ts";
import { diffPolicies, renderDiff } from "./diff.ts";

function load(text: string): Policy {
  const loaded = loadPolicy(text);
  assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
  return loaded.value;
}

describe("policy diff", () => {
  it("finds rules added, removed and changed, condition by condition, and the hash", () => {
    const before = load(STARTER_POLICY);
    const after = load(
      STARTER_POLICY.replace("evidence.chargeback_risk_gte: 0.70", "evidence.chargeback_risk: { gte: 0.8 }")
        .replace(
          "verdict: ESCALATE\n      reason_codes: [REFUND_REPEAT_CUSTOMER]",
          "verdict: DENY\n      reason_codes: [REFUND_REPEAT_CUSTOMER, REPEAT]",
        )
        .replace(/ {2}- id: R020b[\s\S]*?(?= {2}- id: R022)/, "")
        .replace(
          "rules:\n",
          "rules:\n  - id: R000\n    stage: REQUIREMENTS\n    if: { subject.roles: { contains: intern } }\n    then: { verdict: DENY, reason_codes: [INTERN] }\n",
        ),
    );
    const diff = diffPolicies(before, after);
    assert.equal(diff.identical, false);
    assert.notEqual(diff.old.policy_hash, diff.new.policy_hash);
    assert.deepEqual(
      diff.added.map((r) => r.rule_id),
      ["R000"],
    );
    assert.deepEqual(
      diff.removed.map((r) => r.rule_id),
      ["R020b"],
    );
    const changed = Object.fromEntries(diff.changed.map((r) => [r.rule_id, r.changes]));
    assert.deepEqual(changed.R022, [
      { what: "if evidence.chargeback_risk_gte", old: 0.7 },
      { what: "if evidence.chargeback_risk.gte", new: 0.8 },
    ]);
    assert.deepEqual(changed.R031, [
      { what: "verdict", old: "ESCALATE", new: "DENY" },
      { what: "reason_codes", old: ["REFUND_REPEAT_CUSTOMER"], new: ["REFUND_REPEAT_CUSTOMER", "REPEAT"] },
    ]);
    assert.match(renderDiff(diff), /~ R031 \[ESCALATIONS\]\n {4}verdict: "ESCALATE" → "DENY"/);
  });

  it("reports changes to the memory section", () => {
    const diff = diffPolicies(
      load(STARTER_POLICY),
      load(`${STARTER_POLICY}memory: { block_at: 0.95, enabled: false }\n`),
    );
    assert.deepEqual(diff.policy, [
      { what: "memory.block_at", new: 0.95 },
      { what: "memory.enabled", new: false },
    ]);
  });

  it("reports changes to approval settings, of a rule and of the defaults", () => {
    const diff = diffPolicies(
      load(STARTER_POLICY),
      load(
        STARTER_POLICY.replace(
          "reason_codes: [REFUND_REPEAT_CUSTOMER]\n",
          "reason_codes: [REFUND_REPEAT_CUSTOMER]\n      approval: { approver_roles: [support_lead], timeout: 4h }\n",
        ).replace(
          "default_reason_code: NO_MATCH_DEFAULT_ESCALATE\n",
          "default_reason_code: NO_MATCH_DEFAULT_ESCALATE\n  approval: { approver_roles: [ops], quorum: 2 }\n",
        ),
      ),
    );
    assert.deepEqual(diff.policy, [
      { what: "defaults.approval", new: { approver_roles: ["ops"], quorum: 2 } },
    ]);
    assert.deepEqual(diff.changed, [
      {
        rule_id: "R031",
        stage: "ESCALATIONS",
        changes: [
          {
            what: "approval",
            new: {
              approver_roles: ["support_lead"],
              quorum: 1,
              timeout: "4h",
              on_timeout: "DENY",
              escalation_roles: [],
              separation_of_duties: true,
            },
          },
        ],
      },
    ]);
  });

  it("says when two documents mean the same", () => {
    const diff = diffPolicies(load(STARTER_POLICY), load(`# comment only\n${STARTER_POLICY}`));
    assert.equal(diff.identical, true);
    assert.deepEqual([diff.added, diff.removed, diff.changed, diff.policy], [[], [], [], []]);
  });
});
