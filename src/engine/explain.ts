import {
  isJsonNumber,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  stringify,
  toDouble,
} from "../core/json.ts";
import type { Verdict } from "../core/verdict.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import type { DecisionRequest } from "../domain/request.ts";
import { recordedVelocity, type VelocityValues } from "../domain/velocity.ts";
import { type ConditionTrace, type GroupTrace, type RuleTrace, traceRule } from "../policy/evaluate.ts";
import type { Condition } from "../policy/model.ts";
import { operatorOf } from "../policy/operator-table.ts";
import { outcomeOf, type Policy } from "../policy/policy.ts";
import { deriveFeatures, evaluationInput, type MemoryFeatures } from "./normalize.ts";

/** Why a request got its verdict: every rule, every condition with the value it saw, and what won. */
export interface Explanation {
  readonly verdict: Verdict;
  readonly policy: {
    readonly policy_id: string;
    readonly policy_version: string;
    readonly policy_hash: string;
  };
  readonly rules: readonly RuleTrace[];
  /** One sentence on why the final verdict won. */
  readonly because: string;
  /** Set when the explained record's verdict differs from what the policy alone gives (memory, storage failure). */
  readonly recordedVerdict?: Verdict;
  /** Memory's part, for a stored decision made with memory. */
  readonly memory?: MemoryPart;
}

export interface MemoryPart {
  readonly failureScore: number;
  readonly successScore: number;
  readonly neighbours: readonly {
    readonly id: string;
    readonly label: string;
    readonly score: number;
    readonly summary: string;
  }[];
  /** Set when memory changed the verdict. */
  readonly effect?: Verdict;
  readonly reasonCodes?: readonly string[];
}

/** Explains a request under a policy (the request as persisted: after redaction). */
export function explainRequest(
  request: DecisionRequest,
  policy: Policy,
  memory?: MemoryFeatures,
  velocity?: VelocityValues,
): Explanation {
  const input = evaluationInput(request, deriveFeatures(request), memory, velocity);
  const rules = policy.model.rules.map((rule) => traceRule(rule, input));
  const matched = rules.filter((trace) => trace.matched);
  const { defaults } = policy.model;
  const { verdict } = outcomeOf(
    policy.model,
    matched.map((trace) => trace.rule),
  );
  let because: string;
  if (matched.length === 0) {
    because = `no rule matched, so the policy default ${defaults.verdict} (${defaults.reasonCode}) applies`;
  } else {
    const winners = matched.filter((t) => t.rule.verdict === verdict).map((t) => t.rule.id);
    const others = matched
      .filter((t) => t.rule.verdict !== verdict)
      .map((t) => `${t.rule.id} (${t.rule.verdict})`);
    because =
      `${winners.join(", ")} matched with ${verdict}` +
      (others.length > 0
        ? `, which outranks ${others.join(", ")} (precedence ABSTAIN > DENY > ESCALATE > ALLOW)`
        : "");
  }
  return {
    verdict,
    policy: {
      policy_id: policy.model.policyId,
      policy_version: policy.model.policyVersion,
      policy_hash: policy.hash,
    },
    rules,
    because,
  };
}

/** Explains a stored record with the policy it names. */
export function explainRecord(record: DecisionRecord, policy: Policy): Explanation {
  const memory = recordedMemory(record);
  const explanation = explainRequest(
    record.request,
    policy,
    memory ? { failure: memory.failureScore, success: memory.successScore } : undefined,
    recordedVelocity(policy.model.velocity, record.determinism.velocity).values,
  );
  return {
    ...explanation,
    ...(memory ? { memory } : {}),
    ...(explanation.verdict !== record.verdict ? { recordedVerdict: record.verdict } : {}),
  };
}

/** Memory's part in a stored decision, from its risk signals and its `MEMORY` matched rule. */
function recordedMemory(record: DecisionRecord): MemoryPart | undefined {
  const signals = record.risk_signals;
  const side = (key: string): { score: number; top: JsonObject[] } => {
    const value = isJsonObject(signals[key]) ? (signals[key] as JsonObject) : {};
    const score = value.score;
    return {
      score: isJsonNumber(score) ? toDouble(score) : 0,
      top: Array.isArray(value.top_k) ? (value.top_k.filter(isJsonObject) as JsonObject[]) : [],
    };
  };
  if (!isJsonObject(record.determinism.memory)) return undefined;
  const failure = side("failure_similarity");
  const success = side("success_similarity");
  const rule = record.matched_rules.find((m) => m.rule_id === "MEMORY");
  return {
    failureScore: failure.score,
    successScore: success.score,
    neighbours: [...failure.top, ...success.top].map((hit) => ({
      id: String(hit.id),
      label: String(hit.label),
      score: isJsonNumber(hit.score) ? toDouble(hit.score) : 0,
      summary: typeof hit.summary === "string" ? hit.summary : "",
    })),
    ...(rule ? { effect: rule.effect as Verdict, reasonCodes: (rule.reason_codes as string[]) ?? [] } : {}),
  };
}

function showValue(value: JsonValue | undefined): string {
  return value === undefined ? "missing" : stringify(value);
}

function describeRead(condition: Condition): string {
  const ref = condition.ref;
  if (ref.kind === "derived") return ref.name;
  if (ref.kind === "evidence_key") return `evidence.${ref.key}`;
  if (ref.kind === "velocity") return `velocity.${ref.name}`;
  return ref.segments.join(".");
}

function conditionLine(trace: ConditionTrace): string {
  const { condition, actual, holds } = trace;
  return `${holds ? "✓" : "✗"} ${describeRead(condition)} ${operatorOf(condition).text} ${stringify(condition.operand)}  (actual: ${showValue(actual)})`;
}

function groupLines(label: string, group: GroupTrace, indent: string): string[] {
  if (group.conditions.length === 0) return [];
  return [`${indent}${label}:`, ...group.conditions.map((c) => `${indent}  ${conditionLine(c)}`)];
}

/** The explanation as text for people. */
export function renderExplanation(explanation: Explanation, heading?: string): string {
  const lines: string[] = [];
  if (heading) lines.push(heading);
  const { policy } = explanation;
  lines.push(`policy ${policy.policy_id} ${policy.policy_version} (${policy.policy_hash})`);
  lines.push(`verdict ${explanation.verdict}: ${explanation.because}`);
  if (explanation.memory) {
    const { memory } = explanation;
    lines.push(
      `memory: failure similarity ${memory.failureScore.toFixed(3)}, success similarity ${memory.successScore.toFixed(3)}`,
    );
    for (const hit of memory.neighbours) {
      lines.push(
        `  ${hit.score.toFixed(3)} ${hit.label.padEnd(7)} ${hit.id}${hit.summary ? `  ${hit.summary}` : ""}`,
      );
    }
    if (memory.effect)
      lines.push(
        `  memory changed the verdict to ${memory.effect} (${(memory.reasonCodes ?? []).join(", ")})`,
      );
  }
  if (explanation.recordedVerdict) {
    lines.push(
      `note: the record says ${explanation.recordedVerdict}; the policy alone gives ${explanation.verdict}`,
    );
  }
  lines.push("");
  for (const trace of explanation.rules) {
    const { rule } = trace;
    lines.push(
      `${trace.matched ? "MATCH" : "no   "} ${rule.id} [${rule.stage}] → ${rule.verdict} ${rule.reasonCodes.join(", ")}`,
    );
    lines.push(...groupLines("when", trace.when, "      "));
    lines.push(...groupLines("if", trace.if, "      "));
    trace.ifAll?.forEach((group, i) => {
      lines.push(...groupLines(`if_all[${i}]`, group, "      "));
    });
    if (trace.ifAny) {
      trace.ifAny.forEach((group, i) => {
        lines.push(...groupLines(`if_any[${i}]${group.holds ? " (holds)" : ""}`, group, "      "));
      });
      if (trace.ifAny.length === 0) lines.push("      if_any: empty, never holds");
    }
  }
  return lines.join("\n");
}

/** The explanation as JSON (for `--json` and the HTTP API). */
export function explanationJson(explanation: Explanation): JsonObject {
  const group = (g: GroupTrace): JsonObject => ({
    holds: g.holds,
    conditions: g.conditions.map((c) => ({
      key: c.condition.key,
      reads: describeRead(c.condition),
      operator: c.condition.operator,
      operand: c.condition.operand,
      actual: c.actual === undefined ? null : c.actual,
      present: c.actual !== undefined,
      holds: c.holds,
      pointer: c.condition.pointer,
    })),
  });
  return {
    verdict: explanation.verdict,
    because: explanation.because,
    policy: { ...explanation.policy },
    ...(explanation.recordedVerdict ? { recorded_verdict: explanation.recordedVerdict } : {}),
    ...(explanation.memory
      ? {
          memory: {
            failure_similarity: explanation.memory.failureScore,
            success_similarity: explanation.memory.successScore,
            neighbours: explanation.memory.neighbours.map((hit) => ({ ...hit })),
            ...(explanation.memory.effect
              ? {
                  effect: explanation.memory.effect,
                  reason_codes: [...(explanation.memory.reasonCodes ?? [])],
                }
              : {}),
          },
        }
      : {}),
    rules: explanation.rules.map((t) => ({
      rule_id: t.rule.id,
      stage: t.rule.stage,
      effect: t.rule.verdict,
      reason_codes: [...t.rule.reasonCodes],
      matched: t.matched,
      when: group(t.when),
      if: group(t.if),
      ...(t.ifAll ? { if_all: t.ifAll.map(group) } : {}),
      ...(t.ifAny ? { if_any: t.ifAny.map(group) } : {}),
    })),
  };
}
