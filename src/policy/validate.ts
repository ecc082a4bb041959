import {
  escapePointerToken,
  isJsonNumber,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  toDouble,
} from "../core/json.ts";
import { didYouMean, fail, ok, type Problem, type Result } from "../core/problem.ts";
import {
  POLICY_MODES,
  REASON_CODE_PATTERN,
  STAGE_ALIASES,
  STAGES,
  type Stage,
  VERDICTS,
  type Verdict,
} from "../core/verdict.ts";
import type { ApprovalSettings } from "../domain/approval.ts";
import { DEFAULT_MEMORY_CONFIG, type MemoryConfig } from "../memory/arbitrate.ts";
import { DEFAULT_WEIGHTS, type FingerprintWeights } from "../memory/fingerprint.ts";
import { approvalSection } from "./approval.ts";
import {
  type Condition,
  type ConditionGroup,
  DERIVED_FEATURES,
  DERIVED_FLAT_KEYS,
  type DerivedFeature,
  type PolicyDefaults,
  type PolicyModel,
  type PolicyRule,
  REQUEST_ROOTS,
  type ValueRef,
} from "./model.ts";
import {
  FLAT_OPERATOR_NAMES,
  FLAT_OPERATORS,
  type FlatOperator,
  NESTED_OPERATOR_NAMES,
  NESTED_OPERATORS,
  type NestedOperator,
  type OperandFault,
} from "./operator-table.ts";
import { describeValue as describe } from "./operators.ts";
import { velocitySection } from "./velocity.ts";
import type { Positions } from "./yaml.ts";

export interface ValidateOptions {
  /** When given, reason codes outside it are errors (custom codes are otherwise allowed). */
  readonly reasonCodeRegistry?: ReadonlySet<string>;
  readonly file?: string;
  readonly valuePositions?: Positions;
  readonly keyPositions?: Positions;
}

const TOP_LEVEL_KEYS = [
  "schema_version",
  "policy_id",
  "policy_version",
  "defaults",
  "rules",
  "thresholds",
  "required_evidence",
  "extensions",
  "memory",
  "velocity",
];
const DEFAULTS_KEYS = ["mode", "default_verdict", "default_reason_code", "approval"];
const RULE_KEYS = ["id", "stage", "description", "when", "if", "if_all", "if_any", "then"];
const THEN_KEYS = ["verdict", "reason_codes", "queries", "obligations", "approval"];
const OBLIGATION_KEYS = ["type", "title", "details", "fields", "severity"];
const OBLIGATION_TYPES = ["check", "required_evidence", "rollback_hint", "rate_limit", "log"];
const OBLIGATION_SEVERITIES = ["info", "warning", "critical"];
const STAGE_NAMES = [...STAGES, ...Object.keys(STAGE_ALIASES)];

/**
 * Checks a policy.v1 document and turns it into a {@link PolicyModel}. Every problem is reported, each with
 * its JSON pointer and, when the document came from a file, its line and column.
 */
export function validatePolicy(document: JsonValue, options: ValidateOptions = {}): Result<PolicyModel> {
  const problems: Problem[] = [];
  const report = (
    problem: Omit<Problem, "file" | "line" | "column">,
    at: "value" | "key" = "value",
  ): void => {
    const pointer = problem.pointer ?? "";
    const positions = at === "key" ? options.keyPositions : options.valuePositions;
    let position = positions?.get(pointer) ?? options.valuePositions?.get(pointer);
    for (let parent = pointer; position === undefined && parent.length > 0; ) {
      parent = parent.slice(0, parent.lastIndexOf("/"));
      position = options.valuePositions?.get(parent);
    }
    problems.push({ ...problem, ...(options.file ? { file: options.file } : {}), ...(position ?? {}) });
  };

  const checkKeys = (object: JsonObject, allowed: readonly string[], pointer: string, what: string): void => {
    for (const key of Object.keys(object)) {
      if (allowed.includes(key)) continue;
      const hint = didYouMean(key, allowed);
      report(
        {
          code: "unknown_key",
          message: `unknown key '${key}' in ${what}`,
          pointer: `${pointer}/${escapePointerToken(key)}`,
          expected: `one of ${allowed.join(", ")}`,
          ...(hint ? { hint } : {}),
        },
        "key",
      );
    }
  };

  const requireString = (value: JsonValue | undefined, pointer: string, what: string): string | undefined => {
    if (typeof value === "string" && value.length > 0) return value;
    report({
      code: value === undefined ? "missing_key" : "type",
      message:
        value === undefined
          ? `${what} is required`
          : `${what} must be a non-empty string, not ${describe(value)}`,
      pointer,
      expected: "a non-empty string (quote numbers such as versions)",
    });
    return undefined;
  };

  const requireEnum = <T extends string>(
    value: JsonValue | undefined,
    allowed: readonly T[],
    pointer: string,
    what: string,
  ): T | undefined => {
    if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
    const hint = typeof value === "string" ? didYouMean(value, allowed) : undefined;
    report({
      code: value === undefined ? "missing_key" : "enum",
      message:
        value === undefined ? `${what} is required` : `${what} is ${describe(value)}, which is not allowed`,
      pointer,
      expected: `one of ${allowed.join(", ")}`,
      ...(hint ? { hint } : {}),
    });
    return undefined;
  };

  const checkReasonCode = (value: JsonValue | undefined, pointer: string): string | undefined => {
    if (typeof value !== "string" || !REASON_CODE_PATTERN.test(value)) {
      report({
        code: "reason_code",
        message: `${describe(value)} is not a valid reason code`,
        pointer,
        expected: "upper-case letters, digits and underscores (^[A-Z0-9_]+$)",
      });
      return undefined;
    }
    const registry = options.reasonCodeRegistry;
    if (registry && !registry.has(value)) {
      const hint = didYouMean(value, [...registry]);
      report({
        code: "unknown_reason_code",
        message: `reason code '${value}' is not in the reason-code registry`,
        pointer,
        expected: "a code listed in the registry",
        ...(hint ? { hint } : {}),
      });
      return undefined;
    }
    return value;
  };

  if (!isJsonObject(document)) {
    report({
      code: "type",
      message: `a policy must be a mapping, not ${describe(document)}`,
      pointer: "",
      expected: "a mapping with schema_version, policy_id, policy_version, defaults, rules",
    });
    return fail("invalid_policy", problems);
  }
  checkKeys(document, TOP_LEVEL_KEYS, "", "the policy");
  if (document.schema_version !== "policy.v1") {
    report({
      code: document.schema_version === undefined ? "missing_key" : "enum",
      message:
        document.schema_version === undefined
          ? "schema_version is required"
          : `schema_version ${describe(document.schema_version)} is not supported`,
      pointer: "/schema_version",
      expected: "policy.v1",
    });
  }
  const policyId = requireString(document.policy_id, "/policy_id", "policy_id");
  const policyVersion = requireString(document.policy_version, "/policy_version", "policy_version");
  for (const key of ["thresholds", "extensions"] as const) {
    if (document[key] !== undefined && !isJsonObject(document[key])) {
      report({
        code: "type",
        message: `${key} must be a mapping, not ${describe(document[key])}`,
        pointer: `/${key}`,
        expected: "a mapping",
      });
    }
  }
  const requiredEvidence = document.required_evidence;
  if (requiredEvidence !== undefined) {
    if (!isJsonObject(requiredEvidence)) {
      report({
        code: "type",
        message: `required_evidence must be a mapping of lists of strings, not ${describe(requiredEvidence)}`,
        pointer: "/required_evidence",
        expected: "a mapping of lists of strings",
      });
    } else {
      for (const [key, list] of Object.entries(requiredEvidence)) {
        if (!Array.isArray(list) || list.some((item) => typeof item !== "string")) {
          report({
            code: "type",
            message: `required_evidence.${key} must be a list of strings`,
            pointer: `/required_evidence/${escapePointerToken(key)}`,
            expected: "a list of strings",
          });
        }
      }
    }
  }

  let defaults: PolicyDefaults | undefined;
  if (!isJsonObject(document.defaults)) {
    report({
      code: document.defaults === undefined ? "missing_key" : "type",
      message:
        document.defaults === undefined
          ? "defaults is required"
          : `defaults must be a mapping, not ${describe(document.defaults)}`,
      pointer: "/defaults",
      expected: "a mapping with mode, default_verdict, default_reason_code",
    });
  } else {
    const d = document.defaults;
    checkKeys(d, DEFAULTS_KEYS, "/defaults", "defaults");
    const mode = requireEnum(d.mode, POLICY_MODES, "/defaults/mode", "defaults.mode");
    const verdict = requireEnum(
      d.default_verdict,
      VERDICTS,
      "/defaults/default_verdict",
      "defaults.default_verdict",
    );
    const reasonCode = checkReasonCode(d.default_reason_code, "/defaults/default_reason_code");
    const approval =
      d.approval === undefined
        ? undefined
        : approvalSection(d.approval, "/defaults/approval", "defaults.approval", { report, checkKeys });
    if (mode && verdict && reasonCode)
      defaults = { mode, verdict, reasonCode, ...(approval ? { approval } : {}) };
  }

  // Read before the rules: `velocity.<name>` in a condition reads a measure only when the section defines it.
  const velocity =
    document.velocity === undefined ? [] : velocitySection(document.velocity, { report, checkKeys });
  const velocityNames = new Set((velocity ?? []).map((spec) => spec.name));

  const rules: PolicyRule[] = [];
  if (!Array.isArray(document.rules) || document.rules.length === 0) {
    report({
      code: document.rules === undefined ? "missing_key" : "type",
      message:
        document.rules === undefined
          ? "rules is required"
          : `rules must be a non-empty list, not ${describe(document.rules)}`,
      pointer: "/rules",
      expected: "a list of at least one rule",
    });
  } else {
    const seenIds = new Map<string, number>();
    document.rules.forEach((ruleValue, index) => {
      const id = isJsonObject(ruleValue) ? ruleValue.id : undefined;
      const previous = typeof id === "string" ? seenIds.get(id) : undefined;
      if (typeof id === "string" && previous !== undefined) {
        report({
          code: "duplicate_rule_id",
          message: `rule id '${id}' is already used by rule ${previous}`,
          pointer: `/rules/${index}/id`,
          expected: "a unique rule id",
        });
      } else if (typeof id === "string") seenIds.set(id, index);
      const rule = validateRule(ruleValue, index, {
        report,
        checkKeys,
        requireString,
        requireEnum,
        checkReasonCode,
        velocityNames,
      });
      if (rule) rules.push(rule);
    });
  }

  const memory =
    document.memory === undefined
      ? DEFAULT_MEMORY_CONFIG
      : memorySection(document.memory, { report, checkKeys });
  if (problems.length > 0 || !policyId || !policyVersion || !defaults || !memory || !velocity)
    return fail("invalid_policy", problems);
  const stageOrder = (stage: Stage): number => STAGES.indexOf(stage);
  const ordered = [...rules].sort((a, b) => stageOrder(a.stage) - stageOrder(b.stage) || a.index - b.index);
  return ok({ policyId, policyVersion, defaults, rules: ordered, memory, velocity });
}

interface Checks {
  report: (problem: Omit<Problem, "file" | "line" | "column">, at?: "value" | "key") => void;
  checkKeys: (object: JsonObject, allowed: readonly string[], pointer: string, what: string) => void;
  requireString: (value: JsonValue | undefined, pointer: string, what: string) => string | undefined;
  requireEnum: <T extends string>(
    value: JsonValue | undefined,
    allowed: readonly T[],
    pointer: string,
    what: string,
  ) => T | undefined;
  checkReasonCode: (value: JsonValue | undefined, pointer: string) => string | undefined;
  /** The measures of the policy's `velocity:` section. */
  velocityNames: ReadonlySet<string>;
}

function validateRule(value: JsonValue, index: number, checks: Checks): PolicyRule | undefined {
  const pointer = `/rules/${index}`;
  const { report, checkKeys, requireString, requireEnum, checkReasonCode } = checks;
  if (!isJsonObject(value)) {
    report({
      code: "type",
      message: `rule ${index} must be a mapping, not ${describe(value)}`,
      pointer,
      expected: "a mapping with id, stage, then",
    });
    return undefined;
  }
  const id = requireString(value.id, `${pointer}/id`, "rule id");
  const label = id ? `rule ${id}` : `rule ${index}`;
  checkKeys(value, RULE_KEYS, pointer, label);
  const stageAsWritten = requireEnum(value.stage, STAGE_NAMES, `${pointer}/stage`, `${label} stage`);
  const stage = stageAsWritten ? (STAGE_ALIASES[stageAsWritten] ?? (stageAsWritten as Stage)) : undefined;
  if (value.description !== undefined && typeof value.description !== "string") {
    report({
      code: "type",
      message: `${label} description must be a string`,
      pointer: `${pointer}/description`,
      expected: "a string",
    });
  }

  // As in the reference, a condition written as null is no condition.
  const when =
    value.when == null ? [] : conditionGroup(value.when, `${pointer}/when`, `${label} when`, checks);
  const ifGroup = value.if == null ? [] : conditionGroup(value.if, `${pointer}/if`, `${label} if`, checks);
  const groupList = (key: "if_all" | "if_any"): ConditionGroup[] | undefined => {
    const list = value[key];
    if (list == null) return undefined;
    if (!Array.isArray(list)) {
      report({
        code: "type",
        message: `${label} ${key} must be a list of condition mappings, not ${describe(list)}`,
        pointer: `${pointer}/${key}`,
        expected: "a list of mappings",
      });
      return undefined;
    }
    return list.map(
      (item, i) => conditionGroup(item, `${pointer}/${key}/${i}`, `${label} ${key}[${i}]`, checks) ?? [],
    );
  };
  const ifAll = groupList("if_all");
  const ifAny = groupList("if_any");

  const then = value.then;
  let verdict: Verdict | undefined;
  let reasonCodes: string[] | undefined;
  const queries: JsonObject[] = [];
  const obligations: JsonObject[] = [];
  if (!isJsonObject(then)) {
    report({
      code: then === undefined ? "missing_key" : "type",
      message:
        then === undefined
          ? `${label} has no then`
          : `${label} then must be a mapping, not ${describe(then)}`,
      pointer: `${pointer}/then`,
      expected: "a mapping with verdict and reason_codes",
    });
  } else {
    checkKeys(then, THEN_KEYS, `${pointer}/then`, `${label} then`);
    verdict = requireEnum(then.verdict, VERDICTS, `${pointer}/then/verdict`, `${label} verdict`);
    if (!Array.isArray(then.reason_codes) || then.reason_codes.length === 0) {
      report({
        code: then.reason_codes === undefined ? "missing_key" : "type",
        message: `${label} needs reason_codes, a non-empty list`,
        pointer: `${pointer}/then/reason_codes`,
        expected: "a list of at least one reason code",
      });
    } else {
      const codes = then.reason_codes.map((code, i) =>
        checkReasonCode(code, `${pointer}/then/reason_codes/${i}`),
      );
      if (codes.every((code) => code !== undefined)) reasonCodes = codes as string[];
    }
    if (then.queries !== undefined) {
      if (!Array.isArray(then.queries)) {
        report({
          code: "type",
          message: `${label} queries must be a list of mappings`,
          pointer: `${pointer}/then/queries`,
          expected: "a list of mappings",
        });
      } else {
        then.queries.forEach((query, i) => {
          if (isJsonObject(query)) queries.push(query);
          else
            report({
              code: "type",
              message: `${label} query ${i} must be a mapping, not ${describe(query)}`,
              pointer: `${pointer}/then/queries/${i}`,
              expected: "a mapping such as {field, question}",
            });
        });
      }
    }
    if (then.obligations !== undefined) {
      if (!Array.isArray(then.obligations)) {
        report({
          code: "type",
          message: `${label} obligations must be a list of mappings`,
          pointer: `${pointer}/then/obligations`,
          expected: "a list of mappings",
        });
      } else {
        then.obligations.forEach((obligation, i) => {
          const at = `${pointer}/then/obligations/${i}`;
          if (!isJsonObject(obligation)) {
            report({
              code: "type",
              message: `${label} obligation ${i} must be a mapping, not ${describe(obligation)}`,
              pointer: at,
              expected: "a mapping with type",
            });
            return;
          }
          checkKeys(obligation, OBLIGATION_KEYS, at, `${label} obligation ${i}`);
          const type = requireEnum(
            obligation.type,
            OBLIGATION_TYPES,
            `${at}/type`,
            `${label} obligation type`,
          );
          for (const key of ["title", "details"] as const) {
            if (obligation[key] !== undefined && typeof obligation[key] !== "string") {
              report({
                code: "type",
                message: `${label} obligation ${key} must be a string`,
                pointer: `${at}/${key}`,
                expected: "a string",
              });
            }
          }
          const fields = obligation.fields;
          if (
            fields !== undefined &&
            (!Array.isArray(fields) || fields.some((field) => typeof field !== "string"))
          ) {
            report({
              code: "type",
              message: `${label} obligation fields must be a list of strings`,
              pointer: `${at}/fields`,
              expected: "a list of strings",
            });
          }
          if (obligation.severity !== undefined)
            requireEnum(
              obligation.severity,
              OBLIGATION_SEVERITIES,
              `${at}/severity`,
              `${label} obligation severity`,
            );
          if (type) obligations.push(obligation);
        });
      }
    }
  }

  let approval: ApprovalSettings | undefined;
  if (isJsonObject(then) && then.approval !== undefined) {
    approval = approvalSection(then.approval, `${pointer}/then/approval`, `${label} approval`, checks);
    if (verdict && verdict !== "ESCALATE")
      report({
        code: "approval_needs_escalate",
        message: `${label} has an approval but decides ${verdict}: only an ESCALATE waits for people`,
        pointer: `${pointer}/then/approval`,
        expected: "verdict: ESCALATE, or no approval",
      });
  }

  if (!id || !stage || !stageAsWritten || !verdict || !reasonCodes || !when || !ifGroup) return undefined;
  return {
    id,
    stage,
    stageAsWritten,
    ...(typeof value.description === "string" ? { description: value.description } : {}),
    when,
    if: ifGroup,
    ...(ifAll ? { ifAll } : {}),
    ...(ifAny ? { ifAny } : {}),
    verdict,
    reasonCodes,
    queries,
    obligations,
    ...(approval ? { approval } : {}),
    index,
    pointer,
  };
}

function conditionGroup(
  value: JsonValue,
  pointer: string,
  label: string,
  checks: Checks,
): ConditionGroup | undefined {
  if (!isJsonObject(value)) {
    checks.report({
      code: "type",
      message: `${label} must be a mapping of conditions, not ${describe(value)}`,
      pointer,
      expected: "a mapping such as {evidence.risk_score: {gt: 0.8}}",
    });
    return undefined;
  }
  const conditions: Condition[] = [];
  let valid = true;
  for (const [key, operand] of Object.entries(value)) {
    const parsed = parseConditionKey(key, operand, `${pointer}/${escapePointerToken(key)}`, label, checks);
    if (parsed) conditions.push(...parsed);
    else valid = false;
  }
  return valid ? conditions : undefined;
}

/** The value a nested-form path reads. */
export function resolvePath(path: string): ValueRef | undefined {
  if ((DERIVED_FEATURES as readonly string[]).includes(path))
    return { kind: "derived", name: path as DerivedFeature };
  const segments = path.split(".");
  if (segments.some((segment) => segment.length === 0)) return undefined;
  if ((REQUEST_ROOTS as readonly string[]).includes(segments[0] ?? "")) {
    return segments.length > 1 ? { kind: "request_path", segments } : undefined;
  }
  return { kind: "request_path", segments: ["evidence", ...segments] };
}

function parseFlatKey(key: string): { ref: ValueRef; operator: FlatOperator } | undefined {
  const derived = DERIVED_FLAT_KEYS[key];
  if (derived) return { ref: { kind: "derived", name: derived.name }, operator: derived.operator };
  if (!key.startsWith("evidence.")) return undefined;
  const rest = key.slice("evidence.".length);
  const split = rest.lastIndexOf("_");
  if (split <= 0) return undefined;
  const operator = rest.slice(split + 1);
  if (!isFlatOperator(operator)) return undefined;
  return { ref: { kind: "evidence_key", key: rest.slice(0, split) }, operator };
}

function isFlatOperator(name: string): name is FlatOperator {
  return Object.hasOwn(FLAT_OPERATORS, name);
}

function isNestedOperator(name: string): name is NestedOperator {
  return Object.hasOwn(NESTED_OPERATORS, name);
}

function isNestedForm(key: string, operand: JsonValue): operand is JsonObject {
  if (!isJsonObject(operand)) return false;
  // Derived features (amount_usd, action_type …) hold scalars: a mapping on them is always operators.
  if (Object.hasOwn(DERIVED_FLAT_KEYS, key)) return true;
  const keys = Object.keys(operand);
  if (keys.length === 0) return parseFlatKey(key) === undefined;
  // A mapping is the operand of a flat evidence equality only when no member names an operator.
  return (
    parseFlatKey(key) === undefined ||
    keys.some((k) => isNestedOperator(k) || didYouMean(k, NESTED_OPERATOR_NAMES) !== undefined)
  );
}

function parseConditionKey(
  key: string,
  operand: JsonValue,
  pointer: string,
  label: string,
  checks: Checks,
): Condition[] | undefined {
  const { report } = checks;
  if (isNestedForm(key, operand)) {
    const velocityName = key.startsWith("velocity.") ? key.slice("velocity.".length) : undefined;
    const ref: ValueRef | undefined =
      velocityName !== undefined && checks.velocityNames.has(velocityName)
        ? { kind: "velocity", name: velocityName }
        : resolvePath(key);
    if (!ref) {
      report(
        {
          code: "path",
          message: `${label}: '${key}' is not a readable path`,
          pointer,
          expected: `a derived feature (${DERIVED_FEATURES.join(", ")}), a path under ${REQUEST_ROOTS.join(", ")}, or an evidence key`,
        },
        "key",
      );
      return undefined;
    }
    const operators = Object.keys(operand);
    if (operators.length === 0) {
      report({
        code: "empty_condition",
        message: `${label}: '${key}' has no operator`,
        pointer,
        expected: `one or more of ${NESTED_OPERATOR_NAMES.join(", ")}`,
      });
      return undefined;
    }
    const conditions: Condition[] = [];
    let valid = true;
    for (const operator of operators) {
      const at = `${pointer}/${escapePointerToken(operator)}`;
      if (!isNestedOperator(operator)) {
        const hint = didYouMean(operator, NESTED_OPERATOR_NAMES);
        report(
          {
            code: "unknown_operator",
            message: `${label}: unknown operator '${operator}' on '${key}'`,
            pointer: at,
            expected: `one of ${NESTED_OPERATOR_NAMES.join(", ")}`,
            ...(hint ? { hint } : {}),
          },
          "key",
        );
        valid = false;
        continue;
      }
      const value = operand[operator] as JsonValue;
      const fault = NESTED_OPERATORS[operator].check(value, `${label}: ${key}.${operator}`);
      if (fault) {
        reportFault(fault, at, report);
        valid = false;
        continue;
      }
      conditions.push({ key, form: "nested", ref, operator, operand: value, pointer: at });
    }
    return valid ? conditions : undefined;
  }

  const flat = parseFlatKey(key);
  if (!flat) {
    const suffix = key.includes("_") ? key.slice(key.lastIndexOf("_") + 1) : "";
    const operatorHint =
      key.startsWith("evidence.") && suffix ? didYouMean(suffix, FLAT_OPERATOR_NAMES) : undefined;
    const hint = operatorHint
      ? `operator ${operatorHint}`
      : (didYouMean(key, Object.keys(DERIVED_FLAT_KEYS)) ??
        `for equality write '${key}_is: …' or '${key}: {eq: …}'`);
    report(
      {
        code: "unknown_condition",
        message: `${label}: '${key}' is not a condition key`,
        pointer,
        expected: `evidence.<key>_<${FLAT_OPERATOR_NAMES.join("|")}>, a derived key such as amount_usd_gt, or '<path>: {<operator>: …}'`,
        hint,
      },
      "key",
    );
    return undefined;
  }
  const { operator } = flat;
  const fault = FLAT_OPERATORS[operator].check(operand, `${label}: '${key}'`);
  if (fault) {
    reportFault(fault, pointer, report);
    return undefined;
  }
  return [{ key, form: "flat", ref: flat.ref, operator, operand, pointer }];
}

function reportFault(fault: OperandFault, pointer: string, report: Checks["report"]): void {
  report({ code: fault.code, message: fault.message, pointer, expected: fault.expected });
}

const MEMORY_KEYS = [
  "enabled",
  "top_k",
  "scope",
  "block_at",
  "escalate_at",
  "allow_at",
  "block_verdict",
  "weights",
  "evidence",
];
const WEIGHT_KEYS = Object.keys(DEFAULT_WEIGHTS) as (keyof FingerprintWeights)[];

/** The policy's `memory:` section: when memory speaks, how strongly, and what a fingerprint looks at. */
function memorySection(
  value: JsonValue,
  checks: Pick<Checks, "report" | "checkKeys">,
): MemoryConfig | undefined {
  const { report, checkKeys } = checks;
  if (!isJsonObject(value)) {
    report({
      code: "type",
      message: `memory must be a mapping, not ${describe(value)}`,
      pointer: "/memory",
      expected: "a mapping",
    });
    return undefined;
  }
  checkKeys(value, MEMORY_KEYS, "/memory", "memory");
  let valid = true;
  const fraction = (key: string, fallback: number): number => {
    const item = value[key];
    if (item === undefined) return fallback;
    if (isJsonNumber(item) && toDouble(item) >= 0 && toDouble(item) <= 1) return toDouble(item);
    report({
      code: "type",
      message: `memory.${key} must be a similarity between 0 and 1, not ${describe(item)}`,
      pointer: `/memory/${key}`,
      expected: "a number from 0 to 1",
    });
    valid = false;
    return fallback;
  };
  const defaults = DEFAULT_MEMORY_CONFIG;
  const enabled = value.enabled ?? defaults.enabled;
  if (typeof enabled !== "boolean") {
    report({
      code: "type",
      message: "memory.enabled must be true or false",
      pointer: "/memory/enabled",
      expected: "true or false",
    });
    valid = false;
  }
  const topK = value.top_k ?? defaults.topK;
  if (typeof topK !== "number" || !Number.isInteger(topK) || topK < 1 || topK > 100) {
    report({
      code: "type",
      message: `memory.top_k must be a whole number from 1 to 100, not ${describe(topK)}`,
      pointer: "/memory/top_k",
      expected: "1 to 100",
    });
    valid = false;
  }
  const scope = value.scope ?? defaults.scope;
  if (scope !== "action_type" && scope !== "tenant") {
    const hint = typeof scope === "string" ? didYouMean(scope, ["action_type", "tenant"]) : undefined;
    report({
      code: "enum",
      message: `memory.scope is ${describe(scope)}, which is not allowed`,
      pointer: "/memory/scope",
      expected: "action_type or tenant",
      ...(hint ? { hint } : {}),
    });
    valid = false;
  }
  const blockVerdict = value.block_verdict ?? defaults.blockVerdict;
  if (blockVerdict !== "DENY" && blockVerdict !== "ABSTAIN") {
    report({
      code: "enum",
      message: `memory.block_verdict is ${describe(blockVerdict)}, which is not allowed`,
      pointer: "/memory/block_verdict",
      expected: "DENY or ABSTAIN",
    });
    valid = false;
  }
  const blockAt = fraction("block_at", defaults.blockAt);
  const escalateAt = fraction("escalate_at", defaults.escalateAt);
  const allowAt = fraction("allow_at", defaults.allowAt);
  if (escalateAt > blockAt) {
    report({
      code: "range",
      message: `memory.escalate_at (${escalateAt}) is above block_at (${blockAt})`,
      pointer: "/memory/escalate_at",
      expected: "escalate_at <= block_at",
    });
    valid = false;
  }
  const weights: Record<string, number> = { ...defaults.fingerprint.weights };
  if (value.weights !== undefined) {
    if (!isJsonObject(value.weights)) {
      report({
        code: "type",
        message: "memory.weights must be a mapping",
        pointer: "/memory/weights",
        expected: `a mapping of ${WEIGHT_KEYS.join(", ")} to numbers`,
      });
      valid = false;
    } else {
      checkKeys(value.weights, WEIGHT_KEYS, "/memory/weights", "memory.weights");
      for (const key of WEIGHT_KEYS) {
        const weight = value.weights[key];
        if (weight === undefined) continue;
        if (isJsonNumber(weight) && toDouble(weight) >= 0) weights[key] = toDouble(weight);
        else {
          report({
            code: "type",
            message: `memory.weights.${key} must be a number >= 0`,
            pointer: `/memory/weights/${key}`,
            expected: "a number >= 0",
          });
          valid = false;
        }
      }
    }
  }
  let include: string[] | undefined;
  let ignore: string[] = [];
  const evidenceWeights: Record<string, number> = {};
  if (value.evidence !== undefined) {
    const evidence = value.evidence;
    if (!isJsonObject(evidence)) {
      report({
        code: "type",
        message: "memory.evidence must be a mapping",
        pointer: "/memory/evidence",
        expected: "a mapping with include, ignore, weights",
      });
      valid = false;
    } else {
      checkKeys(evidence, ["include", "ignore", "weights"], "/memory/evidence", "memory.evidence");
      const list = (key: "include" | "ignore"): string[] | undefined => {
        const items = evidence[key];
        if (items === undefined) return undefined;
        if (Array.isArray(items) && items.every((item) => typeof item === "string")) return items as string[];
        report({
          code: "type",
          message: `memory.evidence.${key} must be a list of evidence keys`,
          pointer: `/memory/evidence/${key}`,
          expected: "a list of (dotted) evidence keys",
        });
        valid = false;
        return undefined;
      };
      include = list("include");
      ignore = list("ignore") ?? [];
      if (evidence.weights !== undefined) {
        if (!isJsonObject(evidence.weights)) {
          report({
            code: "type",
            message: "memory.evidence.weights must map evidence keys to numbers",
            pointer: "/memory/evidence/weights",
            expected: "a mapping",
          });
          valid = false;
        } else {
          for (const [key, weight] of Object.entries(evidence.weights)) {
            if (isJsonNumber(weight) && toDouble(weight) >= 0) evidenceWeights[key] = toDouble(weight);
            else {
              report({
                code: "type",
                message: `memory.evidence.weights.${key} must be a number >= 0`,
                pointer: `/memory/evidence/weights/${escapePointerToken(key)}`,
                expected: "a number >= 0",
              });
              valid = false;
            }
          }
        }
      }
    }
  }
  if (!valid) return undefined;
  return {
    enabled: enabled as boolean,
    topK: topK as number,
    scope: scope as "action_type" | "tenant",
    blockAt,
    escalateAt,
    allowAt,
    blockVerdict: blockVerdict as "DENY" | "ABSTAIN",
    fingerprint: {
      weights: weights as unknown as FingerprintWeights,
      ...(include ? { includeEvidence: include } : {}),
      ignoreEvidence: ignore,
      evidenceWeights,
    },
  };
}
