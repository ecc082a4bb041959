import type { RE2JS } from "re2js";
import { JsonFloat, type JsonValue } from "../core/json.ts";
import type { EvaluationInput } from "./evaluate.ts";
import { member } from "./evaluate.ts";
import type { Condition, ConditionGroup, DerivedFeature, PolicyModel, ValueRef } from "./model.ts";
import { compileRegex, jsonNumber, operators, pythonNumber } from "./operators.ts";

/**
 * Compiles a validated policy into one JavaScript function, generated once per policy, so that deciding
 * never walks the YAML tree. Rule ids, paths and operands never become code: keys are emitted as JSON string
 * literals and operands are passed in a constants array, so a policy cannot inject code.
 *
 * The function writes the indices (into `model.rules`, which is in evaluation order) of every matching rule
 * into `out` and returns how many matched.
 */
export type CompiledEvaluator = (input: EvaluationInput, out: Uint16Array) => number;

export const MAX_RULES = 65_535;

const helpers = {
  member,
  eq: operators.eq,
  inList: operators.in,
  between: operators.between,
  contains: operators.contains,
  matches: operators.matches,
  flatIs: operators.flatIs,
  flatIn: operators.flatIn,
  /** Slow path of a comparison, for values that are not plain doubles (bigint, JsonFloat, boolean in flat form). */
  compareJson: (value: unknown, op: string, operand: number | bigint): boolean => {
    const x = jsonNumber(value as JsonValue);
    return x !== undefined && compare(x, op, operand);
  },
  comparePython: (value: unknown, op: string, operand: number | bigint): boolean => {
    const x = pythonNumber(value as JsonValue);
    return x !== undefined && compare(x, op, operand);
  },
};

function compare(x: number | bigint, op: string, y: number | bigint): boolean {
  if (op === "gt") return x > y;
  if (op === "gte") return x >= y;
  if (op === "lt") return x < y;
  return x <= y;
}

/** Locals of the generated function holding the derived features. */
const DERIVED_LOCALS: Readonly<Record<DerivedFeature, string>> = {
  action_type: "at",
  amount_currency: "cur",
  amount_value: "val",
  amount_usd: "usd",
  "memory.failure_similarity": "mfs",
  "memory.success_similarity": "mss",
};

const JS_OPERATOR: Readonly<Record<string, string>> = { gt: ">", gte: ">=", lt: "<", lte: "<=" };

function numberLiteral(value: JsonValue): string {
  if (typeof value === "bigint") return `${value}n`;
  const n = value instanceof JsonFloat ? value.value : (value as number);
  return Object.is(n, -0) ? "-0" : String(n);
}

class CodeBuilder {
  readonly constants: unknown[] = [];
  private readonly constantIndex = new Map<unknown, number>();

  constant(value: unknown): string {
    let index = this.constantIndex.get(value);
    if (index === undefined) {
      index = this.constants.length;
      this.constants.push(value);
      this.constantIndex.set(value, index);
    }
    return `K[${index}]`;
  }

  read(ref: ValueRef): string {
    switch (ref.kind) {
      case "derived":
        return DERIVED_LOCALS[ref.name];
      case "evidence_key":
        // Evidence is a plain object (validated), so a plain read can only reach an own member unless the key
        // names something every object inherits (`constructor`, `toString` …): those go through member().
        return ref.key in Object.prototype
          ? `member(ev, ${JSON.stringify(ref.key)})`
          : `ev[${JSON.stringify(ref.key)}]`;
      case "request_path":
        return ref.segments.reduce((code, segment) => `member(${code}, ${JSON.stringify(segment)})`, "rq");
      case "velocity":
        return `member(vl, ${JSON.stringify(ref.name)})`;
    }
  }

  condition(condition: Condition): string {
    const v = this.read(condition.ref);
    const { operator, operand } = condition;
    // Velocity measures are always numbers (or missing, which no comparison accepts).
    const isDerivedNumber =
      condition.ref.kind === "velocity" ||
      (condition.ref.kind === "derived" &&
        condition.ref.name !== "action_type" &&
        condition.ref.name !== "amount_currency");
    if (condition.form === "flat") {
      switch (operator) {
        case "is":
          return this.equality(v, operand, "flatIs");
        case "ne":
          return `!${this.equality(v, operand, "flatIs")}`;
        case "in":
          return this.membership(v, operand as JsonValue[], "flatIn");
        default:
          return this.comparison(v, operator, operand, "comparePython", isDerivedNumber);
      }
    }
    switch (operator) {
      case "eq":
        return this.equality(v, operand, "eq");
      case "ne":
        return `!${this.equality(v, operand, "eq")}`;
      case "gt":
      case "gte":
      case "lt":
      case "lte":
        return this.comparison(v, operator, operand, "compareJson", isDerivedNumber);
      case "between": {
        const [low, high] = operand as [JsonValue, JsonValue];
        return `between(${v}, ${numberLiteral(low)}, ${numberLiteral(high)})`;
      }
      case "in":
        return this.membership(v, operand as JsonValue[], "inList");
      case "not_in":
        return `!${this.membership(v, operand as JsonValue[], "inList")}`;
      case "exists":
        return operand === true ? `(${v} != null)` : `(${v} == null)`;
      case "contains":
        return `contains(${v}, ${this.constant(operand)})`;
      case "matches": {
        const compiled = compileRegex(operand as string);
        if (!compiled.ok) throw new Error(`unvalidated regex at ${condition.pointer}`);
        return `matches(${v}, ${this.constant(compiled.regex satisfies RE2JS)})`;
      }
      default:
        throw new Error(`operator ${operator} is not a nested operator`);
    }
  }

  /** Strings, booleans and null compare by identity in both equalities; only numbers and containers need the helper. */
  private equality(v: string, operand: JsonValue, helper: "eq" | "flatIs"): string {
    if (typeof operand === "string") return `(${v} === ${JSON.stringify(operand)})`;
    if (operand === null) return `(${v} == null)`;
    if (typeof operand === "boolean" && helper === "eq") return `(${v} === ${operand})`;
    return `${helper}(${v}, ${this.constant(operand)})`;
  }

  private membership(v: string, list: JsonValue[], helper: "inList" | "flatIn"): string {
    if (list.every((item) => typeof item === "string")) return `${this.constant(new Set(list))}.has(${v})`;
    return `${helper}(${v}, ${this.constant(list)})`;
  }

  private comparison(
    v: string,
    operator: string,
    operand: JsonValue,
    slow: string,
    isDerivedNumber: boolean,
  ): string {
    const js = JS_OPERATOR[operator];
    const literal = numberLiteral(operand);
    if (isDerivedNumber) return `(${v} !== null && ${v} ${js} ${literal})`;
    return `((x = ${v}), typeof x === "number" ? x ${js} ${literal} : ${slow}(x, ${JSON.stringify(operator)}, ${literal}))`;
  }

  group(group: ConditionGroup): string {
    return group.length === 0 ? "true" : group.map((c) => this.condition(c)).join(" && ");
  }
}

/** Generates the evaluator of a validated policy. */
export function compileEvaluator(model: PolicyModel): CompiledEvaluator {
  if (model.rules.length > MAX_RULES) throw new RangeError(`a policy may have at most ${MAX_RULES} rules`);
  const builder = new CodeBuilder();
  const lines: string[] = [];
  model.rules.forEach((rule, index) => {
    const parts = [builder.group(rule.when), builder.group(rule.if)];
    if (rule.ifAll) parts.push(rule.ifAll.map((g) => `(${builder.group(g)})`).join(" && ") || "true");
    if (rule.ifAny) parts.push(`(${rule.ifAny.map((g) => `(${builder.group(g)})`).join(" || ") || "false"})`);
    const test = parts.filter((part) => part !== "true").join(" && ") || "true";
    lines.push(`  if (${test}) out[n++] = ${index};`);
  });
  const body = [
    '"use strict";',
    "const { member, eq, inList, between, contains, matches, flatIs, flatIn, compareJson, comparePython } = H;",
    "return function evaluate(input, out) {",
    "  const rq = input.request, ev = input.evidence, at = input.action_type, cur = input.amount_currency, val = input.amount_value, usd = input.amount_usd;",
    '  const mfs = input["memory.failure_similarity"], mss = input["memory.success_similarity"], vl = input.velocity;',
    "  let n = 0, x;",
    ...lines,
    "  return n;",
    "};",
  ].join("\n");
  // Generated from a validated policy: keys are JSON string literals and operands are passed as data, never as code.
  const factory = new Function("H", "K", body) as (h: typeof helpers, k: unknown[]) => CompiledEvaluator;
  return factory(helpers, builder.constants);
}
