import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { JsonFloat, type JsonObject } from "../core/json.ts";
import { VERDICTS, type Verdict } from "../core/verdict.ts";
import type { DecisionRequest } from "../domain/request.ts";
import { deriveFeatures, evaluationInput } from "../engine/normalize.ts";
import { traceRule } from "./evaluate.ts";
import { evaluatePolicy, loadPolicy, matchRules, type Policy } from "./policy.ts";

function policyWith(conditions: string, extraRules = ""): Policy {
  const loaded = loadPolicy(`schema_version: policy.v1
policy_id: t
policy_version: "1"
defaults: { mode: enforce, default_verdict: ESCALATE, default_reason_code: NO_MATCH }
rules:
  - id: R
    stage: ESCALATIONS
    if: ${conditions}
    then: { verdict: DENY, reason_codes: [HIT] }
${extraRules}`);
  assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
  return loaded.value;
}

function request(evidence: JsonObject, amount?: JsonObject, extra: JsonObject = {}): DecisionRequest {
  return {
    schema_version: "decision_request.v1",
    subject: { type: "agent", id: "a1", roles: ["support", "admin"] },
    action: { type: "support.refund", intent: "x", ...(amount ? { amount } : {}) },
    evidence,
    context: { mode: "digest_only", digest: `sha256:${"0".repeat(64)}` },
    ...extra,
  } as DecisionRequest;
}

function holds(conditions: string, req: DecisionRequest): boolean {
  const policy = policyWith(conditions);
  const input = evaluationInput(req, deriveFeatures(req));
  const compiled = matchRules(policy, input).length === 1;
  const interpreted = traceRule(policy.model.rules[0] as never, input).matched;
  assert.equal(compiled, interpreted, `compiled and interpreted disagree on ${conditions}`);
  return compiled;
}

describe("operators", () => {
  it("flat keys follow the reference: missing reads as null, booleans are numbers, Python equality", () => {
    assert.equal(holds("{ evidence.x_is: null }", request({})), true);
    assert.equal(holds("{ evidence.x_is: null }", request({ x: null })), true);
    assert.equal(holds("{ evidence.x_ne: a }", request({})), true);
    assert.equal(holds("{ evidence.x_is: true }", request({ x: 1 })), true);
    assert.equal(holds("{ evidence.x_is: 100 }", request({ x: new JsonFloat(100) })), true);
    assert.equal(holds("{ evidence.x_gte: 1 }", request({ x: true })), true);
    assert.equal(holds("{ evidence.x_gt: 1 }", request({ x: "5" })), false);
    assert.equal(holds("{ evidence.x_in: [1, b] }", request({ x: true })), true);
    assert.equal(
      holds("{ evidence.a.b_is: 1 }", request({ "a.b": 1 })),
      true,
      "flat keys read the literal evidence key",
    );
    assert.equal(
      holds("{ evidence.big_gt: 12345678901234567889 }", request({ big: 12345678901234567890n })),
      true,
    );
  });

  it("derived keys: amount_usd from USD or the fx rate, currency tests, action types", () => {
    assert.equal(holds("{ amount_usd_gt: 200 }", request({}, { value: 201, currency: "USD" })), true);
    assert.equal(
      holds("{ amount_usd_gt: 200 }", request({ fx_rate_to_usd: 1.1 }, { value: 190, currency: "EUR" })),
      true,
    );
    assert.equal(holds("{ amount_usd_gt: 200 }", request({}, { value: 1000, currency: "EUR" })), false);
    assert.equal(
      holds("{ amount_usd: 20 }", request({}, { value: new JsonFloat(20), currency: "USD" })),
      true,
      "bare amount_usd is honoured",
    );
    assert.equal(
      holds("{ amount_currency: EUR }", request({}, { value: 1, currency: "EUR" })),
      true,
      "bare amount_currency is honoured",
    );
    assert.equal(holds("{ amount_currency_is: EUR }", request({}, { value: 1, currency: "EUR" })), true);
    assert.equal(holds("{ amount_currency_ne: USD }", request({})), true, "no currency is not USD");
    assert.equal(holds("{ action_type_in: [support.refund, x] }", request({})), true);
  });

  it("nested operators are JSON-typed", () => {
    const r = request({
      score: 0.9,
      flag: true,
      n: 100,
      name: "Alice Smith",
      tags: ["vip", 2],
      user: { trusted: true },
    });
    const cases: [string, boolean][] = [
      ["{ evidence.score: { gt: 0.8 } }", true],
      ["{ score: { gte: 0.9, lt: 1 } }", true],
      ["{ n: { eq: 100.0 } }", true],
      ["{ flag: { eq: 1 } }", false],
      ["{ flag: { gt: 0 } }", false],
      ["{ n: { between: [100, 100] } }", true],
      ["{ n: { between: [101, 200] } }", false],
      ["{ user.trusted: { eq: true } }", true],
      ["{ name: { matches: '(?i)^alice' } }", true],
      ["{ name: { matches: 'smith$' } }", false],
      ["{ name: { contains: 'ce Sm' } }", true],
      ["{ tags: { contains: vip } }", true],
      ["{ tags: { contains: 2 } }", true],
      ["{ missing: { exists: false } }", true],
      ["{ score: { exists: true } }", true],
      ["{ missing: { ne: 3 } }", true],
      ["{ missing: { not_in: [1] } }", true],
      ["{ missing: { eq: null } }", true],
      ["{ n: { in: [1, 100] } }", true],
      ["{ n: { not_in: [1, 100] } }", false],
      ["{ subject.roles: { contains: admin } }", true],
      ["{ subject.id: { eq: a1 } }", true],
      ["{ action.type: { eq: support.refund } }", true],
      ["{ evidence.constructor: { exists: true } }", false],
      ["{ tags.0: { eq: vip } }", true],
      ["{ name: { starts_with: Alice } }", true],
      ["{ name: { starts_with: alice } }", false],
      ["{ name: { ends_with: ' Smith' } }", true],
      ["{ name: { starts_with: '', ends_with: '' } }", true],
      ["{ n: { starts_with: '1' } }", false],
      ["{ tags: { ends_with: vip } }", false],
      ["{ missing: { starts_with: '' } }", false],
    ];
    for (const [condition, expected] of cases) assert.equal(holds(condition, r), expected, condition);
  });

  it("compiled and interpreted evaluation agree on random requests", () => {
    const policy = policyWith(
      "{ evidence.a_gte: 3 }",
      `  - id: S
    stage: HARD_BLOCKS
    if_any:
      - { evidence.b_in: [x, 1, true, null] }
      - { c: { between: [-1.5, 2] }, d: { ne: y } }
    then: { verdict: ABSTAIN, reason_codes: [S] }
  - id: T
    stage: ALLOW_PATHS
    if_all:
      - { e: { contains: k } }
      - { evidence.a_ne: 2, a: { lt: 10 } }
    then: { verdict: ALLOW, reason_codes: [T] }
  - id: U
    stage: REQUIREMENTS
    when: { action_type: support.refund }
    if: { amount_usd_lte: 50, e: { matches: "^k+$" } }
    then: { verdict: DENY, reason_codes: [U] }
`,
    );
    const value = fc.oneof(
      fc.integer({ min: -3, max: 12 }),
      fc.double({ min: -3, max: 12, noNaN: true }),
      fc.boolean(),
      fc.constantFrom("x", "y", "k", "kk", "akb", null),
      fc.constant(new JsonFloat(2)),
      fc.array(fc.constantFrom("k", 1, true), { maxLength: 3 }),
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom("a", "b", "c", "d", "e"), value),
        fc.option(fc.integer({ min: 0, max: 100 })),
        (evidence, amount) => {
          const req = request(
            evidence as JsonObject,
            amount === null ? undefined : { value: amount, currency: "USD" },
          );
          const input = evaluationInput(req, deriveFeatures(req));
          const compiled = matchRules(policy, input).map((rule) => rule.id);
          const interpreted = policy.model.rules
            .filter((rule) => traceRule(rule, input).matched)
            .map((rule) => rule.id);
          assert.deepEqual(compiled, interpreted);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe("verdict precedence", () => {
  it("ABSTAIN > DENY > ESCALATE > ALLOW, all rules recorded in stage order, queries only on DENY", () => {
    const stages = ["ALLOW_PATHS", "ESCALATIONS", "HARD_BLOCKS", "REQUIREMENTS"];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...VERDICTS), { minLength: 1, maxLength: 6 }), (verdicts) => {
        const rules = verdicts
          .map(
            (verdict, i) => `  - id: R${i}
    stage: ${stages[i % 4]}
    then: { verdict: ${verdict}, reason_codes: [C${i}], queries: [{ field: f${i} }], obligations: [{ type: log, title: o${i} }] }
`,
          )
          .join("");
        const loaded = loadPolicy(
          `schema_version: policy.v1\npolicy_id: t\npolicy_version: "1"\ndefaults: { mode: enforce, default_verdict: ESCALATE, default_reason_code: D }\nrules:\n${rules}`,
        );
        assert.ok(loaded.ok);
        const req = request({});
        const outcome = evaluatePolicy(loaded.value, evaluationInput(req, deriveFeatures(req)));
        const rank: Record<Verdict, number> = { ALLOW: 0, ESCALATE: 1, DENY: 2, ABSTAIN: 3 };
        const expected = verdicts.reduce((a, b) => (rank[b] > rank[a] ? b : a));
        assert.equal(outcome.verdict, expected);
        const stageRank = (i: number) =>
          ["REQUIREMENTS", "HARD_BLOCKS", "ESCALATIONS", "ALLOW_PATHS"].indexOf(stages[i % 4] as string);
        const order = verdicts.map((_, i) => i).sort((a, b) => stageRank(a) - stageRank(b) || a - b);
        assert.deepEqual(
          outcome.matchedRules.map((m) => m.rule_id),
          order.map((i) => `R${i}`),
        );
        assert.deepEqual(
          outcome.reasonCodes,
          order.map((i) => `C${i}`),
        );
        assert.equal(outcome.obligations.length, verdicts.length);
        const denyQueries = order.filter((i) => verdicts[i] === "DENY").map((i) => `f${i}`);
        assert.deepEqual(
          outcome.queries.map((q) => q.field),
          expected === "DENY" ? denyQueries : [],
        );
      }),
      { numRuns: 300 },
    );
  });

  it("applies the default as a DEFAULT entry when nothing matches", () => {
    const policy = policyWith("{ evidence.never_is: 1 }");
    const req = request({});
    const outcome = evaluatePolicy(policy, evaluationInput(req, deriveFeatures(req)));
    assert.equal(outcome.verdict, "ESCALATE");
    assert.deepEqual(outcome.reasonCodes, ["NO_MATCH"]);
    assert.deepEqual(outcome.matchedRules, [
      { rule_id: "DEFAULT", stage: "DEFAULT", effect: "ESCALATE", reason_codes: ["NO_MATCH"] },
    ]);
  });
});

describe("compiled reads", () => {
  it("never see inherited members, whatever the key", () => {
    for (const key of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]) {
      assert.equal(holds(`{ evidence.${key}_is: null }`, request({})), true, key);
      assert.equal(holds(`{ evidence.${key}_is: 1 }`, request(JSON.parse(`{"${key}": 1}`))), true, key);
    }
  });
});
