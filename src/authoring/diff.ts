import { canonicalJson, isJsonObject, type JsonObject, type JsonValue } from "../core/json.ts";
import { approvalJson } from "../domain/approval.ts";
import type { ConditionGroup, PolicyRule } from "../policy/model.ts";
import type { Policy } from "../policy/policy.ts";

/** One changed property: a default, a rule's verdict, one condition's operand … */
export interface Change {
  readonly what: string;
  /** Absent when the property was added. */
  readonly old?: JsonValue;
  /** Absent when the property was removed. */
  readonly new?: JsonValue;
}

export interface RuleSummary {
  readonly rule_id: string;
  readonly stage: string;
  readonly verdict: string;
  readonly reason_codes: readonly string[];
}

/** What changed between two policies, rule by rule (rules are matched by id). */
export interface PolicyDiff {
  readonly old: { readonly policy_id: string; readonly policy_version: string; readonly policy_hash: string };
  readonly new: { readonly policy_id: string; readonly policy_version: string; readonly policy_hash: string };
  readonly policy: readonly Change[];
  readonly added: readonly RuleSummary[];
  readonly removed: readonly RuleSummary[];
  readonly changed: readonly {
    readonly rule_id: string;
    readonly stage: string;
    readonly changes: readonly Change[];
  }[];
  /** True when the documents are the same (same hash). */
  readonly identical: boolean;
}

function summary(rule: PolicyRule): RuleSummary {
  return { rule_id: rule.id, stage: rule.stage, verdict: rule.verdict, reason_codes: rule.reasonCodes };
}

/** Conditions as `section key operator` → operand, e.g. `if_all[0] amount_usd lte` → 25. */
function conditionMap(rule: PolicyRule): Map<string, JsonValue> {
  const map = new Map<string, JsonValue>();
  const add = (section: string, group: ConditionGroup): void => {
    for (const condition of group) {
      const name = condition.form === "flat" ? condition.key : `${condition.key}.${condition.operator}`;
      map.set(`${section} ${name}`, condition.operand);
    }
  };
  add("when", rule.when);
  add("if", rule.if);
  for (const [i, group] of (rule.ifAll ?? []).entries()) add(`if_all[${i}]`, group);
  for (const [i, group] of (rule.ifAny ?? []).entries()) add(`if_any[${i}]`, group);
  return map;
}

function compareValues(
  what: string,
  before: JsonValue | undefined,
  after: JsonValue | undefined,
  changes: Change[],
): void {
  const a = before === undefined ? undefined : canonicalJson(before);
  const b = after === undefined ? undefined : canonicalJson(after);
  if (a === b) return;
  changes.push({
    what,
    ...(before !== undefined ? { old: before } : {}),
    ...(after !== undefined ? { new: after } : {}),
  });
}

function ruleChanges(before: PolicyRule, after: PolicyRule): Change[] {
  const changes: Change[] = [];
  compareValues("stage", before.stage, after.stage, changes);
  compareValues("verdict", before.verdict, after.verdict, changes);
  compareValues("reason_codes", [...before.reasonCodes], [...after.reasonCodes], changes);
  compareValues("queries", [...before.queries], [...after.queries], changes);
  compareValues("obligations", [...before.obligations], [...after.obligations], changes);
  compareValues("description", before.description, after.description, changes);
  compareValues(
    "approval",
    before.approval && approvalJson(before.approval),
    after.approval && approvalJson(after.approval),
    changes,
  );
  const oldConditions = conditionMap(before);
  const newConditions = conditionMap(after);
  for (const key of new Set([...oldConditions.keys(), ...newConditions.keys()])) {
    compareValues(key, oldConditions.get(key), newConditions.get(key), changes);
  }
  return changes;
}

export function diffPolicies(before: Policy, after: Policy): PolicyDiff {
  const describe = (policy: Policy) => ({
    policy_id: policy.model.policyId,
    policy_version: policy.model.policyVersion,
    policy_hash: policy.hash,
  });
  const policyChanges: Change[] = [];
  compareValues("policy_id", before.model.policyId, after.model.policyId, policyChanges);
  compareValues("policy_version", before.model.policyVersion, after.model.policyVersion, policyChanges);
  const defaults = (policy: Policy): JsonObject => policy.document.defaults as JsonObject;
  for (const key of ["mode", "default_verdict", "default_reason_code", "approval"]) {
    compareValues(`defaults.${key}`, defaults(before)[key], defaults(after)[key], policyChanges);
  }
  for (const key of ["thresholds", "required_evidence", "extensions"]) {
    compareValues(key, before.document[key], after.document[key], policyChanges);
  }
  const memoryOf = (policy: Policy): JsonObject =>
    isJsonObject(policy.document.memory) ? policy.document.memory : {};
  for (const key of new Set([...Object.keys(memoryOf(before)), ...Object.keys(memoryOf(after))])) {
    compareValues(`memory.${key}`, memoryOf(before)[key], memoryOf(after)[key], policyChanges);
  }
  const oldRules = new Map(before.model.rules.map((rule) => [rule.id, rule]));
  const newRules = new Map(after.model.rules.map((rule) => [rule.id, rule]));
  const oldOrder = before.model.rules.map((rule) => rule.id).filter((id) => newRules.has(id));
  const newOrder = after.model.rules.map((rule) => rule.id).filter((id) => oldRules.has(id));
  if (oldOrder.join("\u0000") !== newOrder.join("\u0000")) {
    policyChanges.push({ what: "evaluation order of kept rules", old: oldOrder, new: newOrder });
  }
  const changed = [...newRules.values()]
    .filter((rule) => oldRules.has(rule.id))
    .map((rule) => ({
      rule_id: rule.id,
      stage: rule.stage,
      changes: ruleChanges(oldRules.get(rule.id) as PolicyRule, rule),
    }))
    .filter((entry) => entry.changes.length > 0);
  return {
    old: describe(before),
    new: describe(after),
    policy: policyChanges,
    added: after.model.rules.filter((rule) => !oldRules.has(rule.id)).map(summary),
    removed: before.model.rules.filter((rule) => !newRules.has(rule.id)).map(summary),
    changed,
    identical: before.hash === after.hash,
  };
}

function show(value: JsonValue | undefined): string {
  return value === undefined ? "(none)" : canonicalJson(value);
}

/** The diff for people, one line per change. */
export function renderDiff(diff: PolicyDiff): string {
  const lines = [
    `policy ${diff.old.policy_id} ${diff.old.policy_version} → ${diff.new.policy_id} ${diff.new.policy_version}`,
    `hash   ${diff.old.policy_hash} → ${diff.new.policy_hash}${diff.identical ? " (identical)" : ""}`,
  ];
  for (const change of diff.policy) lines.push(`  ${change.what}: ${show(change.old)} → ${show(change.new)}`);
  for (const rule of diff.added)
    lines.push(`+ ${rule.rule_id} [${rule.stage}] → ${rule.verdict} ${rule.reason_codes.join(", ")}`);
  for (const rule of diff.removed)
    lines.push(`- ${rule.rule_id} [${rule.stage}] → ${rule.verdict} ${rule.reason_codes.join(", ")}`);
  for (const rule of diff.changed) {
    lines.push(`~ ${rule.rule_id} [${rule.stage}]`);
    for (const change of rule.changes)
      lines.push(`    ${change.what}: ${show(change.old)} → ${show(change.new)}`);
  }
  if (
    !diff.identical &&
    diff.policy.length + diff.added.length + diff.removed.length + diff.changed.length === 0
  ) {
    lines.push(
      "  the documents differ only in form (e.g. TRUST_PATHS written for ALLOW_PATHS): no rule changes meaning",
    );
  }
  return lines.join("\n");
}
