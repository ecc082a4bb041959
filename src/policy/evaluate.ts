import { JsonFloat, type JsonObject } from "../core/json.ts";
import type { VelocityValues } from "../domain/velocity.ts";
import type { Condition, ConditionGroup, PolicyModel, PolicyRule, ValueRef } from "./model.ts";
import { operatorOf } from "./operator-table.ts";
import type { Value } from "./operators.ts";

/** What rules read: the request and the features derived from it. */
export interface EvaluationInput {
  readonly request: JsonObject;
  /** `request.evidence`, or an empty object when the request has none. */
  readonly evidence: JsonObject;
  readonly action_type: string;
  readonly amount_currency: string | null;
  readonly amount_value: number | null;
  readonly amount_usd: number | null;
  /** Similarity to the nearest labelled failure / success (0 when memory is off or has none). */
  readonly "memory.failure_similarity": number;
  readonly "memory.success_similarity": number;
  /** The values of the policy's velocity measures for this request (`velocity.<name>`). */
  readonly velocity: VelocityValues;
}

/**
 * Finds the rules a request matches: writes the indices (into `model.rules`, which is in evaluation order) of
 * every matching rule into `out` and returns how many matched. A policy gets one when it is loaded: the
 * generated function of compile.ts ({@link compiledMatcher}), or, with the `policy-compiler` speed-up off,
 * {@link interpretedMatcher}; both give the same matches.
 */
export type RuleMatcher = (input: EvaluationInput, out: Uint16Array) => number;

/** Matchers write rule indices as 16-bit numbers. */
export const MAX_RULES = 65_535;

/** The rules of a model, refused when a matcher could not number them. */
export function matchableRules(model: PolicyModel): readonly PolicyRule[] {
  if (model.rules.length > MAX_RULES) throw new RangeError(`a policy may have at most ${MAX_RULES} rules`);
  return model.rules;
}

/** An own member of an object or array (never an inherited property such as `constructor`). */
export function member(container: Value, key: string): Value {
  if (container === null || typeof container !== "object" || container instanceof JsonFloat) return undefined;
  return Object.hasOwn(container, key) ? (container as JsonObject)[key] : undefined;
}

export function readValue(ref: ValueRef, input: EvaluationInput): Value {
  switch (ref.kind) {
    case "derived":
      return input[ref.name];
    case "evidence_key":
      return member(input.evidence, ref.key);
    case "request_path": {
      let value: Value = input.request;
      for (const segment of ref.segments) value = member(value, segment);
      return value;
    }
    case "velocity":
      return member(input.velocity as JsonObject, ref.name);
  }
}

const tests = new WeakMap<Condition, (value: Value) => boolean>();

/** The table's run-time test of a condition, prepared once (a pattern compiled, a threshold read). */
function testOf(condition: Condition): (value: Value) => boolean {
  let test = tests.get(condition);
  if (!test) {
    test = operatorOf(condition).test(condition.operand);
    tests.set(condition, test);
  }
  return test;
}

/** Whether one condition holds for a value (the interpreted form; the compiled form must agree). */
export function conditionHolds(condition: Condition, value: Value): boolean {
  return testOf(condition)(value);
}

export interface ConditionTrace {
  readonly condition: Condition;
  readonly actual: Value;
  readonly holds: boolean;
}

export interface GroupTrace {
  readonly conditions: readonly ConditionTrace[];
  readonly holds: boolean;
}

export interface RuleTrace {
  readonly rule: PolicyRule;
  readonly when: GroupTrace;
  readonly if: GroupTrace;
  readonly ifAll?: readonly GroupTrace[];
  readonly ifAny?: readonly GroupTrace[];
  readonly matched: boolean;
}

function traceGroup(group: ConditionGroup, input: EvaluationInput): GroupTrace {
  const conditions = group.map((condition) => {
    const actual = readValue(condition.ref, input);
    return { condition, actual, holds: conditionHolds(condition, actual) };
  });
  return { conditions, holds: conditions.every((c) => c.holds) };
}

/** Evaluates one rule condition by condition, keeping every actual value: the explain trace. */
export function traceRule(rule: PolicyRule, input: EvaluationInput): RuleTrace {
  const when = traceGroup(rule.when, input);
  const ifTrace = traceGroup(rule.if, input);
  const ifAll = rule.ifAll?.map((group) => traceGroup(group, input));
  const ifAny = rule.ifAny?.map((group) => traceGroup(group, input));
  const matched =
    when.holds &&
    ifTrace.holds &&
    (ifAll === undefined || ifAll.every((g) => g.holds)) &&
    (ifAny === undefined || ifAny.some((g) => g.holds));
  return { rule, when, if: ifTrace, ...(ifAll ? { ifAll } : {}), ...(ifAny ? { ifAny } : {}), matched };
}

type InputTest = (input: EvaluationInput) => boolean;

function groupTest(group: ConditionGroup): InputTest {
  const tests = group.map((condition): InputTest => {
    const test = testOf(condition);
    return (input) => test(readValue(condition.ref, input));
  });
  return (input) => tests.every((test) => test(input));
}

function ruleTest(rule: PolicyRule): InputTest {
  const groups = [groupTest(rule.when), groupTest(rule.if), ...(rule.ifAll ?? []).map(groupTest)];
  const alternatives = rule.ifAny?.map(groupTest);
  return (input) =>
    groups.every((test) => test(input)) &&
    (alternatives === undefined || alternatives.some((test) => test(input)));
}

/** The plain matcher: every condition read and tested through the operator table's run-time tests, as traces are. */
export function interpretedMatcher(model: PolicyModel): RuleMatcher {
  const rules = matchableRules(model).map(ruleTest);
  return function matchInterpreted(input, out) {
    let n = 0;
    rules.forEach((matches, index) => {
      if (matches(input)) out[n++] = index;
    });
    return n;
  };
}
