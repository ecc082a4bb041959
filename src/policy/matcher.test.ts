import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { STARTER_POLICY } from "../assets/starter-policy.ts";
import { JsonFloat, type JsonObject, type JsonValue } from "../core/json.ts";
import type { DecisionRequest } from "../domain/request.ts";
import { deriveFeatures, evaluationInput } from "../engine/normalize.ts";
import { testEquivalence, withSpeedup } from "../testing/equivalence.ts";
import { compiledMatcher } from "./compile.ts";
import { type EvaluationInput, interpretedMatcher, type RuleMatcher } from "./evaluate.ts";
import { DERIVED_FLAT_KEYS, type PolicyModel } from "./model.ts";
import {
  FLAT_OPERATOR_NAMES,
  FLAT_OPERATORS,
  NESTED_OPERATOR_NAMES,
  NESTED_OPERATORS,
} from "./operator-table.ts";
import { loadPolicy } from "./policy.ts";
import { validatePolicy } from "./validate.ts";

// Few distinct values, so that a value often meets the operand it is compared with.
const scalar: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer({ min: -1, max: 3 }),
  fc.constantFrom(0.5, -0, new JsonFloat(2), 12345678901234567890n),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom("a", "ab", "", "^a", "(?i)A", "("),
);
const flatOperand: fc.Arbitrary<JsonValue> = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }));
const nestedOperand: fc.Arbitrary<JsonValue> = fc.oneof(
  flatOperand,
  fc.dictionary(fc.constantFrom("b", "x"), scalar),
);
const value: fc.Arbitrary<JsonValue> = fc.oneof(
  { arbitrary: scalar, weight: 4 },
  { arbitrary: fc.array(scalar, { maxLength: 3 }), weight: 1 },
  { arbitrary: fc.dictionary(fc.constantFrom("b", "x"), scalar), weight: 1 },
);

/** A condition of each form on each kind of read, with an operand the operator's check takes. */
const nestedOperator = fc
  .constantFrom(...NESTED_OPERATOR_NAMES)
  .chain((name) =>
    nestedOperand
      .filter((operand) => !NESTED_OPERATORS[name].check(operand, name))
      .map((operand): [string, JsonValue] => [name, operand]),
  );
const nestedCondition = fc
  .tuple(
    fc.constantFrom(
      "a",
      "b",
      "a.b",
      "constructor",
      "evidence.a",
      "subject.roles",
      "amount_usd",
      "action_type",
      "velocity.v",
    ),
    fc.array(nestedOperator, { minLength: 1, maxLength: 2 }),
  )
  .map(([key, operators]): [string, JsonValue] => [key, Object.fromEntries(operators)]);
const flatCondition = fc
  .oneof(
    fc
      .tuple(fc.constantFrom("a", "b", "a.b", "constructor"), fc.constantFrom(...FLAT_OPERATOR_NAMES))
      .map(([key, operator]) => ({ key: `evidence.${key}_${operator}`, operator })),
    fc.constantFrom(...Object.entries(DERIVED_FLAT_KEYS).map(([key, { operator }]) => ({ key, operator }))),
  )
  .chain(({ key, operator }) =>
    flatOperand
      .filter((operand) => !FLAT_OPERATORS[operator].check(operand, key))
      .map((operand): [string, JsonValue] => [key, operand]),
  );
// Small groups, so that one condition's answer is seldom hidden by another's.
const group = fc
  .array(fc.oneof(nestedCondition, flatCondition), { minLength: 1, maxLength: 2 })
  .map((conditions): JsonObject => Object.fromEntries(conditions));

const rule = fc
  .record(
    { if: group, if_all: fc.array(group, { maxLength: 2 }), if_any: fc.array(group, { maxLength: 2 }) },
    { requiredKeys: ["if"] },
  )
  .map((body): JsonObject => body);

const policy = fc.array(rule, { minLength: 1, maxLength: 12 }).map((rules): PolicyModel => {
  const document: JsonObject = {
    schema_version: "policy.v1",
    policy_id: "p",
    policy_version: "1",
    defaults: { mode: "enforce", default_verdict: "ESCALATE", default_reason_code: "NO_MATCH" },
    velocity: { v: { count: "decisions", window: "1h" } },
    rules: rules.map((body, i) => ({
      id: `R${i}`,
      stage: "ESCALATIONS",
      ...body,
      // biome-ignore lint/suspicious/noThenProperty: a rule's `then` section.
      then: { verdict: "ESCALATE", reason_codes: ["X"] },
    })),
  };
  const validated = validatePolicy(document);
  assert.ok(validated.ok, validated.ok ? "" : JSON.stringify(validated.problems));
  return validated.value;
});

const input = fc
  .record({
    evidence: fc.dictionary(fc.constantFrom("a", "b", "a.b", "constructor", "fx_rate_to_usd"), value),
    roles: fc.array(fc.constantFrom("a", "admin"), { maxLength: 2 }),
    type: fc.constantFrom("a", "pay"),
    amount: fc.option(
      fc.record({ value: fc.integer({ min: 0, max: 20 }), currency: fc.constantFrom("USD", "EUR") }),
    ),
    velocity: fc.integer({ min: 0, max: 5 }),
  })
  .map(({ evidence, roles, type, amount, velocity }): EvaluationInput => {
    const request = {
      schema_version: "decision_request.v1",
      subject: { type: "agent", id: "s", roles },
      action: { type, intent: "x", ...(amount ? { amount } : {}) },
      evidence,
      context: { mode: "digest_only", digest: `sha256:${"0".repeat(64)}` },
    } as DecisionRequest;
    return evaluationInput(request, deriveFeatures(request), undefined, { v: velocity });
  });

function matches(matcher: RuleMatcher, inputs: readonly EvaluationInput[]): number[][] {
  const out = new Uint16Array(64);
  return inputs.map((input) => Array.from(out.subarray(0, matcher(input, out))));
}

testEquivalence({
  speedup: "policy-compiler",
  over: "generated policies (every operator, both forms, every kind of read) and requests",
  inputs: fc.tuple(policy, fc.array(input, { minLength: 1, maxLength: 8 })),
  fast: ([model, inputs]) => matches(compiledMatcher(model), inputs),
  plain: ([model, inputs]) => matches(interpretedMatcher(model), inputs),
  runs: 1_000,
});

describe("the policy-compiler switch", () => {
  it("gives a loaded policy the interpreted matcher when off, and the compiled one when on", () => {
    const load = (on: boolean) =>
      withSpeedup("policy-compiler", on, () => loadPolicy(STARTER_POLICY))(undefined);
    const plain = load(false);
    const fast = load(true);
    assert.ok(plain.ok && fast.ok);
    assert.equal(plain.value.matcher.name, "matchInterpreted");
    assert.equal(fast.value.matcher.name, "matchCompiled");
  });
});
