import { matchableRules, member, type RuleMatcher } from "./evaluate.ts";
import type { Condition, ConditionGroup, DerivedFeature, PolicyModel, ValueRef } from "./model.ts";
import { type CodeWriter, type CompiledRead, operatorOf } from "./operator-table.ts";

/** Locals of the generated function holding the derived features. */
const DERIVED_LOCALS: Readonly<Record<DerivedFeature, string>> = {
  action_type: "at",
  amount_currency: "cur",
  amount_value: "val",
  amount_usd: "usd",
  "memory.failure_similarity": "mfs",
  "memory.success_similarity": "mss",
};

class CodeBuilder implements CodeWriter {
  readonly constants: unknown[] = [];
  private readonly constantIndex = new Map<unknown, number>();
  readonly helpers: ((...args: never[]) => unknown)[] = [];
  private readonly helperNames = new Map<(...args: never[]) => unknown, string>();
  readonly scratch = "x";

  constant(value: unknown): string {
    let index = this.constantIndex.get(value);
    if (index === undefined) {
      index = this.constants.length;
      this.constants.push(value);
      this.constantIndex.set(value, index);
    }
    return `K[${index}]`;
  }

  helper(fn: (...args: never[]) => unknown): string {
    let name = this.helperNames.get(fn);
    if (name === undefined) {
      // Numbered, so that no helper's name meets a local of the generated function.
      name = `${fn.name.replace(/[^\w$]/g, "") || "helper"}_${this.helpers.length}`;
      this.helpers.push(fn);
      this.helperNames.set(fn, name);
    }
    return name;
  }

  read(ref: ValueRef): CompiledRead {
    switch (ref.kind) {
      case "derived":
        return {
          code: DERIVED_LOCALS[ref.name],
          numberOrNull: ref.name !== "action_type" && ref.name !== "amount_currency",
        };
      case "evidence_key":
        // Evidence is a plain object (validated), so a plain read can only reach an own member unless the key
        // names something every object inherits (`constructor`, `toString` …): those go through member().
        return {
          code:
            ref.key in Object.prototype
              ? `${this.helper(member)}(ev, ${JSON.stringify(ref.key)})`
              : `ev[${JSON.stringify(ref.key)}]`,
          numberOrNull: false,
        };
      case "request_path":
        return {
          code: ref.segments.reduce(
            (code, segment) => `${this.helper(member)}(${code}, ${JSON.stringify(segment)})`,
            "rq",
          ),
          numberOrNull: false,
        };
      case "velocity":
        // Velocity measures are always numbers.
        return { code: `${this.helper(member)}(vl, ${JSON.stringify(ref.name)})`, numberOrNull: true };
    }
  }

  condition(condition: Condition): string {
    return operatorOf(condition).compile(this.read(condition.ref), condition.operand, this);
  }

  group(group: ConditionGroup): string {
    return group.length === 0 ? "true" : group.map((c) => this.condition(c)).join(" && ");
  }
}

/**
 * The fast matcher: a validated policy compiled into one JavaScript function, each condition in the operator
 * table's compiled form, generated once per policy so that deciding never walks the YAML tree. Rule ids, paths
 * and operands never become code: keys are emitted as JSON string literals and operands are passed in a
 * constants array, so a policy cannot inject code.
 */
export function compiledMatcher(model: PolicyModel): RuleMatcher {
  const builder = new CodeBuilder();
  const lines: string[] = [];
  matchableRules(model).forEach((rule, index) => {
    const parts = [builder.group(rule.when), builder.group(rule.if)];
    if (rule.ifAll) parts.push(rule.ifAll.map((g) => `(${builder.group(g)})`).join(" && ") || "true");
    if (rule.ifAny) parts.push(`(${rule.ifAny.map((g) => `(${builder.group(g)})`).join(" || ") || "false"})`);
    const test = parts.filter((part) => part !== "true").join(" && ") || "true";
    lines.push(`  if (${test}) out[n++] = ${index};`);
  });
  const helperLocals = builder.helpers.map((fn, i) => `${builder.helper(fn)} = H[${i}]`);
  const body = [
    '"use strict";',
    ...(helperLocals.length > 0 ? [`const ${helperLocals.join(", ")};`] : []),
    "return function matchCompiled(input, out) {",
    "  const rq = input.request, ev = input.evidence, at = input.action_type, cur = input.amount_currency, val = input.amount_value, usd = input.amount_usd;",
    '  const mfs = input["memory.failure_similarity"], mss = input["memory.success_similarity"], vl = input.velocity;',
    `  let n = 0, ${builder.scratch};`,
    ...lines,
    "  return n;",
    "};",
  ].join("\n");
  // Generated from a validated policy: keys are JSON string literals and operands are passed as data, never as code.
  const factory = new Function("H", "K", body) as (h: unknown[], k: unknown[]) => RuleMatcher;
  return factory(builder.helpers, builder.constants);
}
