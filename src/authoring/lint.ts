import { canonicalJson, isJsonNumber, isJsonObject, type JsonValue, toDouble } from "../core/json.ts";
import { VERDICT_PRECEDENCE } from "../core/verdict.ts";
import type { Condition, PolicyRule, ValueRef } from "../policy/model.ts";
import { operatorOf, type RangeFacts } from "../policy/operator-table.ts";
import type { Policy } from "../policy/policy.ts";

export type Severity = "error" | "warning" | "info";

/** One static finding about a policy. */
export interface Finding {
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  /** Where in the policy document (JSON pointer). */
  readonly pointer: string;
  readonly hint: string;
}

export interface LintContext {
  /** Requests of the policy's test cases (defaults merged), for the checks that compare with tests. */
  readonly testRequests?: readonly JsonValue[];
  readonly reasonCodeRegistry?: ReadonlySet<string>;
}

/** A condition's value, as a string that is equal for conditions reading the same thing. */
function refKey(ref: ValueRef): string {
  if (ref.kind === "derived") return ref.name;
  if (ref.kind === "evidence_key") return `evidence\u0000${ref.key}`;
  if (ref.kind === "velocity") return `velocity\u0001${ref.name}`;
  return ref.segments.join("\u0000");
}

function refName(ref: ValueRef): string {
  if (ref.kind === "derived") return ref.name;
  if (ref.kind === "evidence_key") return `evidence.${ref.key}`;
  if (ref.kind === "velocity") return `velocity.${ref.name}`;
  return ref.segments.join(".");
}

/** What a set of conditions (all holding) allows for one value. */
interface Range {
  low: number;
  lowOpen: boolean;
  high: number;
  highOpen: boolean;
  /** Values it must equal (eq/is/in), when any such condition exists. */
  allowed?: JsonValue[];
  mustBeMissing: boolean;
  mustExist: boolean;
}

/** A value as the condition's equality sees it: numbers by value (1 = 1.0), and in flat form true = 1. */
function number(value: JsonValue, flat: boolean): number | undefined {
  if (isJsonNumber(value)) return toDouble(value);
  if (flat && typeof value === "boolean") return value ? 1 : 0;
  return undefined;
}

function valueKey(value: JsonValue, flat: boolean): string {
  const n = number(value, flat);
  return n === undefined ? canonicalJson(value) : `number ${n}`;
}

/** What conditions allow together for one value, with flat (`true = 1`) or JSON-typed equality. */
function rangeOf(conditions: readonly Condition[], flat: boolean): Range {
  const range: Range = {
    low: -Infinity,
    lowOpen: false,
    high: Infinity,
    highOpen: false,
    mustBeMissing: false,
    mustExist: false,
  };
  // A number bound also says the value is there.
  const facts: RangeFacts = {
    above: (bound, orEqual) => {
      const value = toDouble(bound);
      if (value > range.low || (value === range.low && !orEqual))
        Object.assign(range, { low: value, lowOpen: !orEqual });
      range.mustExist = true;
    },
    below: (bound, orEqual) => {
      const value = toDouble(bound);
      if (value < range.high || (value === range.high && !orEqual))
        Object.assign(range, { high: value, highOpen: !orEqual });
      range.mustExist = true;
    },
    oneOf: (values) => {
      const keys = new Set(values.map((v) => valueKey(v, flat)));
      range.allowed =
        range.allowed === undefined ? [...values] : range.allowed.filter((v) => keys.has(valueKey(v, flat)));
    },
    missing: () => {
      range.mustBeMissing = true;
    },
    present: () => {
      range.mustExist = true;
    },
  };
  for (const condition of conditions) operatorOf(condition).range?.(condition.operand, facts);
  return range;
}

/** Whether a condition holds only for numbers (a threshold, a range). */
function comparesNumbers(condition: Condition): boolean {
  const range = rangeOf([condition], condition.form === "flat");
  return range.low !== -Infinity || range.high !== Infinity;
}

/** Why a set of conditions on one value can never hold together, if it cannot. */
function contradiction(range: Range, flat: boolean): string | undefined {
  if (range.low > range.high || (range.low === range.high && (range.lowOpen || range.highOpen))) {
    return `no number is ${range.lowOpen ? ">" : ">="} ${range.low} and ${range.highOpen ? "<" : "<="} ${range.high}`;
  }
  if (range.allowed !== undefined && range.allowed.length === 0)
    return "no value is allowed (empty list, or equalities that disagree)";
  if (
    range.mustBeMissing &&
    (range.mustExist || (range.allowed !== undefined && !range.allowed.includes(null)))
  ) {
    return "it must be both missing and present";
  }
  const numbersOnly = range.low !== -Infinity || range.high !== Infinity;
  if (numbersOnly && range.allowed !== undefined) {
    const inRange = range.allowed.filter((v) => {
      const n = number(v, flat);
      return (
        n !== undefined &&
        (range.lowOpen ? n > range.low : n >= range.low) &&
        (range.highOpen ? n < range.high : n <= range.high)
      );
    });
    if (inRange.length === 0) return "none of the values it must equal is within its numeric bounds";
  }
  return undefined;
}

/** The sets of conditions under which a rule matches: its AND part, with each if_any alternative. */
function conjunctions(rule: PolicyRule): Condition[][] {
  const base = [...rule.when, ...rule.if, ...(rule.ifAll ?? []).flat()];
  if (!rule.ifAny) return [base];
  return rule.ifAny.map((group) => [...base, ...group]);
}

function byValue(conditions: readonly Condition[]): Map<string, Condition[]> {
  const groups = new Map<string, Condition[]>();
  for (const condition of conditions) {
    const key = refKey(condition.ref);
    groups.set(key, [...(groups.get(key) ?? []), condition]);
  }
  return groups;
}

function impossibleRules(policy: Policy): Finding[] {
  const findings: Finding[] = [];
  for (const rule of policy.model.rules) {
    if (rule.ifAny && rule.ifAny.length === 0) {
      findings.push({
        code: "never_matches",
        severity: "error",
        message: `rule ${rule.id} has an empty if_any, so it never matches`,
        pointer: `${rule.pointer}/if_any`,
        hint: "add alternatives to if_any or remove it",
      });
      continue;
    }
    const reasons = conjunctions(rule).map((conditions) => {
      for (const [, group] of byValue(conditions)) {
        // Flat and nested conditions compare differently (true = 1 only in flat form): mixed, say nothing.
        if (group.some((c) => c.form !== (group[0] as Condition).form)) continue;
        const flat = (group[0] as Condition).form === "flat";
        const why = contradiction(rangeOf(group, flat), flat);
        if (why) return { why, group };
      }
      return undefined;
    });
    if (reasons.length > 0 && reasons.every((reason) => reason !== undefined)) {
      const first = reasons[0] as { why: string; group: Condition[] };
      findings.push({
        code: "never_matches",
        severity: "error",
        message: `rule ${rule.id} can never match: on ${refName((first.group[0] as Condition).ref)}, ${first.why} (${first.group.map((c) => c.key + (c.form === "nested" ? `.${c.operator}` : "")).join(", ")})`,
        pointer: (first.group[0] as Condition).pointer,
        hint: "fix the thresholds or values so that some request can satisfy every condition",
      });
    }
  }
  return findings;
}

/** Whether every request that satisfies `strong` also satisfies condition `weak`. */
function implies(strong: Map<string, Condition[]>, weak: Condition): boolean {
  // A flat condition holds wherever its nested twin does (flat equality also takes true = 1), not the reverse;
  // so a nested condition may imply a flat one, a flat one only a flat one.
  const flat = weak.form === "flat";
  const same = strong.get(refKey(weak.ref))?.filter((c) => c.form === weak.form || flat);
  if (!same || same.length === 0) return false;
  const identical = same.some(
    (c) =>
      c.operator === weak.operator &&
      c.form === weak.form &&
      canonicalJson(c.operand) === canonicalJson(weak.operand),
  );
  if (identical) return true;
  // Past identity, only a condition that its range says exactly can be implied: `strong` must allow no more.
  if (!operatorOf(weak).range) return false;
  return within(rangeOf(same, flat), rangeOf([weak], flat), flat);
}

/** Whether every value that `inner` allows is allowed by `outer`. */
function within(inner: Range, outer: Range, flat: boolean): boolean {
  if (outer.low !== -Infinity || outer.high !== Infinity) {
    const lowOk = inner.low > outer.low || (inner.low === outer.low && (inner.lowOpen || !outer.lowOpen));
    const highOk =
      inner.high < outer.high || (inner.high === outer.high && (inner.highOpen || !outer.highOpen));
    const numeric =
      inner.low !== -Infinity ||
      inner.high !== Infinity ||
      (inner.allowed?.every((v) => isJsonNumber(v)) ?? false);
    if (!(numeric && lowOk && highOk)) return false;
  }
  if (outer.allowed !== undefined) {
    const accepted = new Set(outer.allowed.map((v) => valueKey(v, flat)));
    if (
      inner.allowed === undefined ||
      inner.allowed.length === 0 ||
      !inner.allowed.every((v) => accepted.has(valueKey(v, flat)))
    )
      return false;
  }
  if (outer.mustBeMissing && !inner.mustBeMissing) return false;
  if (outer.mustExist && !(inner.mustExist || (inner.allowed?.every((v) => v !== null) ?? false)))
    return false;
  return true;
}

function shadowedRules(policy: Policy, neverMatching: ReadonlySet<string>): Finding[] {
  const findings: Finding[] = [];
  const plain = policy.model.rules.filter((rule) => !rule.ifAny);
  for (const rule of plain) {
    if (neverMatching.has(rule.pointer)) continue;
    const own = byValue(conjunctions(rule)[0] as Condition[]);
    const stronger = plain.find(
      (other) =>
        other !== rule &&
        VERDICT_PRECEDENCE[other.verdict] > VERDICT_PRECEDENCE[rule.verdict] &&
        (conjunctions(other)[0] as Condition[]).every((condition) => implies(own, condition)),
    );
    if (stronger) {
      findings.push({
        code: "never_decides",
        severity: "warning",
        message: `rule ${rule.id} (${rule.verdict}) can never change the verdict: whenever it matches, rule ${stronger.id} (${stronger.verdict}) matches too`,
        pointer: rule.pointer,
        hint: `narrow ${rule.id}, or remove it if ${stronger.id} is meant to win`,
      });
    }
  }
  return findings;
}

function duplicateRules(policy: Policy): Finding[] {
  const findings: Finding[] = [];
  const seen = new Map<string, PolicyRule>();
  for (const rule of policy.model.rules) {
    const conditions = (group: readonly Condition[]) =>
      group.map((c) => `${refKey(c.ref)} ${c.form} ${c.operator} ${canonicalJson(c.operand)}`).sort();
    const key = canonicalJson({
      all: conditions([...rule.when, ...rule.if, ...(rule.ifAll ?? []).flat()]),
      any: (rule.ifAny ?? [])
        .map(conditions)
        .map((g) => g.join("\n"))
        .sort(),
    });
    const earlier = seen.get(key);
    if (!earlier) {
      seen.set(key, rule);
      continue;
    }
    const sameOutcome =
      earlier.verdict === rule.verdict &&
      canonicalJson([...earlier.reasonCodes]) === canonicalJson([...rule.reasonCodes]);
    findings.push({
      code: sameOutcome ? "duplicate_rule" : "same_conditions",
      severity: "warning",
      message: sameOutcome
        ? `rule ${rule.id} repeats rule ${earlier.id}: same conditions, same verdict and reason codes`
        : `rule ${rule.id} has the same conditions as rule ${earlier.id}, with a different outcome (${rule.verdict} vs ${earlier.verdict})`,
      pointer: rule.pointer,
      hint: sameOutcome
        ? `remove ${rule.id}`
        : `merge ${rule.id} into ${earlier.id}, or tell them apart with a condition`,
    });
  }
  return findings;
}

function actionTypesOf(request: JsonValue): string | undefined {
  const action = isJsonObject(request) ? request.action : undefined;
  return isJsonObject(action) && typeof action.type === "string" ? action.type : undefined;
}

function testChecks(policy: Policy, requests: readonly JsonValue[]): Finding[] {
  const findings: Finding[] = [];
  const tested = new Set(requests.map(actionTypesOf).filter((type): type is string => type !== undefined));
  for (const rule of policy.model.rules) {
    for (const condition of rule.when) {
      if (condition.ref.kind !== "derived" || condition.ref.name !== "action_type") continue;
      const types = rangeOf([condition], condition.form === "flat").allowed ?? [];
      for (const type of types) {
        if (typeof type === "string" && !tested.has(type)) {
          findings.push({
            code: "untested_action_type",
            severity: "warning",
            message: `rule ${rule.id} applies to action type '${type}', which no test case uses`,
            pointer: condition.pointer,
            hint: `add a case with action.type ${type} to a *.test.yml beside the policy`,
          });
        }
      }
    }
    const numeric = [
      ...rule.when,
      ...rule.if,
      ...(rule.ifAll ?? []).flat(),
      ...(rule.ifAny ?? []).flat(),
    ].filter(comparesNumbers);
    for (const condition of numeric) {
      if (
        condition.ref.kind !== "evidence_key" &&
        !(condition.ref.kind === "request_path" && condition.ref.segments[0] === "evidence")
      )
        continue;
      const seenAsString = requests.some((request) => {
        const evidence =
          isJsonObject(request) && isJsonObject(request.evidence) ? request.evidence : undefined;
        if (!evidence) return false;
        let value: JsonValue | undefined = evidence;
        const path =
          condition.ref.kind === "evidence_key"
            ? [condition.ref.key]
            : (condition.ref as { segments: readonly string[] }).segments.slice(1);
        for (const segment of path)
          value = isJsonObject(value) && Object.hasOwn(value, segment) ? value[segment] : undefined;
        return typeof value === "string";
      });
      if (seenAsString) {
        findings.push({
          code: "number_compared_with_string",
          severity: "warning",
          message: `rule ${rule.id} compares ${refName(condition.ref)} with a number, but a test sends it as a string, so the condition is false there`,
          pointer: condition.pointer,
          hint: "send the evidence as a JSON number, or compare it with eq/in",
        });
      }
    }
  }
  return findings;
}

function unusedCodes(policy: Policy, registry: ReadonlySet<string>): Finding[] {
  const used = new Set([
    policy.model.defaults.reasonCode,
    ...policy.model.rules.flatMap((rule) => rule.reasonCodes),
  ]);
  return [...registry]
    .filter((code) => !used.has(code))
    .map((code) => ({
      code: "unused_reason_code",
      severity: "info" as const,
      message: `reason code ${code} is in the registry but no rule gives it`,
      pointer: "",
      hint: "remove it from the registry, or use it in a rule",
    }));
}

/** Static checks of a policy (and, when given, of its tests and reason-code registry). */
export function lintPolicy(policy: Policy, context: LintContext = {}): Finding[] {
  const impossible = impossibleRules(policy);
  // A rule that never matches says nothing about the rules it would shadow; it is reported once, as such.
  const neverMatching = new Set(
    impossible.map((finding) => finding.pointer.split("/").slice(0, 3).join("/")),
  );
  return [
    ...impossible,
    ...shadowedRules(policy, neverMatching),
    ...duplicateRules(policy),
    ...(context.testRequests ? testChecks(policy, context.testRequests) : []),
    ...(context.reasonCodeRegistry ? unusedCodes(policy, context.reasonCodeRegistry) : []),
  ];
}
