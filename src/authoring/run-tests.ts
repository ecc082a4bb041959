import { canonicalJson, type JsonValue } from "../core/json.ts";
import type { Problem } from "../core/problem.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import { completeDecision, prepareDecision } from "../engine/decide.ts";
import { deriveFeatures, evaluationInput, NO_MEMORY } from "../engine/normalize.ts";
import { type RuleTrace, traceRule } from "../policy/evaluate.ts";
import type { Policy } from "../policy/policy.ts";
import type { Expectation, TestCase } from "./test-suite.ts";

/** One way a case's result differs from what it expects. */
export interface Mismatch {
  readonly field: "verdict" | "reason_codes" | "matched_rules" | "obligations" | "queries";
  readonly expected: JsonValue;
  readonly actual: JsonValue;
}

export interface CaseResult {
  readonly name: string;
  readonly passed: boolean;
  readonly mismatches: readonly Mismatch[];
  /** Set when the case's request itself is invalid. */
  readonly problems?: readonly Problem[];
  readonly record?: DecisionRecord;
  /** Every rule, condition by condition, for this case's request. */
  readonly traces: readonly RuleTrace[];
  readonly durationMs: number;
}

const FIXED = { decisionId: "00000000000000000000000000", now: new Date(0) };

/**
 * Decides the case's request under the policy (no store: velocity measures are the case's values, else 0)
 * and compares the record with the expectation.
 */
export function runCase(policy: Policy, testCase: TestCase, request: JsonValue): CaseResult {
  const started = performance.now();
  const measures = new Set(policy.model.velocity.map((spec) => spec.name));
  const unknown = Object.keys(testCase.velocity ?? {}).filter((name) => !measures.has(name));
  const prepared = prepareDecision(request, FIXED);
  if (!prepared.ok || unknown.length > 0) {
    return {
      name: testCase.name,
      passed: false,
      mismatches: [],
      problems: prepared.ok
        ? unknown.map((name) => ({
            code: "velocity",
            message: `the case sets velocity '${name}', which the policy does not define`,
            expected:
              measures.size > 0
                ? `one of ${[...measures].join(", ")}`
                : "no velocity values (the policy has no velocity section)",
          }))
        : prepared.problems,
      traces: [],
      durationMs: performance.now() - started,
    };
  }
  const velocity = Object.fromEntries(
    policy.model.velocity.map((spec) => [spec.name, testCase.velocity?.[spec.name] ?? 0]),
  );
  const { record } = completeDecision(prepared.value, policy, undefined, FIXED, velocity);
  const input = evaluationInput(record.request, deriveFeatures(record.request), NO_MEMORY, velocity);
  const traces = policy.model.rules.map((rule) => traceRule(rule, input));
  const mismatches = compare(testCase.expect, record);
  return {
    name: testCase.name,
    passed: mismatches.length === 0,
    mismatches,
    record,
    traces,
    durationMs: performance.now() - started,
  };
}

function compare(expect: Expectation, record: DecisionRecord): Mismatch[] {
  const mismatches: Mismatch[] = [];
  const differs = (a: JsonValue, b: JsonValue): boolean => canonicalJson(a) !== canonicalJson(b);
  if (expect.verdict !== undefined && expect.verdict !== record.verdict) {
    mismatches.push({ field: "verdict", expected: expect.verdict, actual: record.verdict });
  }
  if (expect.reasonCodes) {
    if ("exact" in expect.reasonCodes) {
      if (differs([...expect.reasonCodes.exact], record.reason_codes)) {
        mismatches.push({
          field: "reason_codes",
          expected: [...expect.reasonCodes.exact],
          actual: record.reason_codes,
        });
      }
    } else if (!expect.reasonCodes.contains.every((code) => record.reason_codes.includes(code))) {
      mismatches.push({
        field: "reason_codes",
        expected: { contains: [...expect.reasonCodes.contains] },
        actual: record.reason_codes,
      });
    }
  }
  const ruleIds = record.matched_rules.map((rule) => rule.rule_id as string);
  if (expect.matchedRules && differs([...expect.matchedRules], ruleIds)) {
    mismatches.push({ field: "matched_rules", expected: [...expect.matchedRules], actual: ruleIds });
  }
  for (const field of ["obligations", "queries"] as const) {
    const expected = expect[field];
    if (expected && differs([...expected], record[field]))
      mismatches.push({ field, expected: [...expected], actual: record[field] });
  }
  return mismatches;
}

export interface RuleCoverage {
  readonly ruleId: string;
  readonly stage: string;
  /** Cases whose request matched the rule. */
  readonly matches: number;
}

export interface ConditionCoverage {
  readonly ruleId: string;
  readonly key: string;
  readonly pointer: string;
  readonly seenTrue: boolean;
  readonly seenFalse: boolean;
}

export interface Coverage {
  readonly rules: readonly RuleCoverage[];
  readonly conditions: readonly ConditionCoverage[];
  /** Share of rules matched by at least one case, in percent: what `--min-coverage` checks. */
  readonly rulePercent: number;
  /** Share of conditions seen both true and false, in percent. */
  readonly conditionPercent: number;
}

/** Which rules the cases matched, and which conditions they saw both true and false. */
export function coverageOf(policy: Policy, results: readonly CaseResult[]): Coverage {
  const rules = policy.model.rules.map((rule) => ({ ruleId: rule.id, stage: rule.stage, matches: 0 }));
  const conditions = new Map<
    string,
    { ruleId: string; key: string; pointer: string; seenTrue: boolean; seenFalse: boolean }
  >();
  for (const rule of policy.model.rules) {
    const groups = [rule.when, rule.if, ...(rule.ifAll ?? []), ...(rule.ifAny ?? [])];
    for (const condition of groups.flat()) {
      conditions.set(condition.pointer, {
        ruleId: rule.id,
        key: condition.key,
        pointer: condition.pointer,
        seenTrue: false,
        seenFalse: false,
      });
    }
  }
  for (const result of results) {
    result.traces.forEach((trace, index) => {
      if (trace.matched) (rules[index] as { matches: number }).matches++;
      const groups = [trace.when, trace.if, ...(trace.ifAll ?? []), ...(trace.ifAny ?? [])];
      for (const { condition, holds } of groups.flatMap((group) => group.conditions)) {
        const entry = conditions.get(condition.pointer);
        if (!entry) continue;
        if (holds) entry.seenTrue = true;
        else entry.seenFalse = true;
      }
    });
  }
  const conditionList = [...conditions.values()];
  const percent = (part: number, whole: number): number => (whole === 0 ? 100 : (100 * part) / whole);
  return {
    rules,
    conditions: conditionList,
    rulePercent: percent(rules.filter((rule) => rule.matches > 0).length, rules.length),
    conditionPercent: percent(
      conditionList.filter((c) => c.seenTrue && c.seenFalse).length,
      conditionList.length,
    ),
  };
}
