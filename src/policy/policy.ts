import { digestJson } from "../core/digest.ts";
import { isJsonObject, type JsonObject } from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import { speedupEnabled } from "../core/speedups.ts";
import { strongerVerdict, type Verdict } from "../core/verdict.ts";
import type { MatchedRule } from "../domain/decision-record.ts";
import { compiledMatcher } from "./compile.ts";
import { type EvaluationInput, interpretedMatcher, type RuleMatcher } from "./evaluate.ts";
import type { PolicyModel, PolicyRule } from "./model.ts";
import { type ValidateOptions, validatePolicy } from "./validate.ts";
import { loadYaml11 } from "./yaml.ts";

/** A policy ready to decide with: validated, hashed and given its matcher. Immutable. */
export interface Policy {
  readonly model: PolicyModel;
  /** `sha256:` of the canonical JSON of the document as PyYAML reads it. */
  readonly hash: string;
  /** The document as read (JSON value). */
  readonly document: JsonObject;
  /** The source text, kept so that records can be exported with the exact policy they name. */
  readonly text: string;
  /** Chosen at load: compiled, unless the `policy-compiler` speed-up is off (LUMYN_PLAIN). */
  readonly matcher: RuleMatcher;
}

/** The largest policy text by default, in UTF-8 bytes: parsing YAML with positions takes about a second a MiB. */
export const DEFAULT_POLICY_MAX_BYTES = 1024 * 1024;
/** The most rules a policy may have by default. */
export const DEFAULT_POLICY_MAX_RULES = 10_000;
/** The most rules a policy can have at all: a match is recorded as a 16-bit rule index (see matchRules). */
export const POLICY_RULES_CEILING = 65_536;
/** The highest size limit that may be set, in bytes. */
export const POLICY_BYTES_CEILING = 16 * 1024 * 1024;

/** What a policy may weigh: both are checked before the work that grows with them. */
export interface PolicyLimits {
  /** The largest policy text, in UTF-8 bytes (default {@link DEFAULT_POLICY_MAX_BYTES}); checked before parsing. */
  readonly maxBytes?: number;
  /**
   * The most rules (default {@link DEFAULT_POLICY_MAX_RULES}, at most {@link POLICY_RULES_CEILING}); checked
   * before the rules are validated and compiled.
   */
  readonly maxRules?: number;
}

/**
 * The limits an environment sets: LUMYN_POLICY_MAX_BYTES and LUMYN_POLICY_MAX_RULES, the defaults where unset.
 * The CLI's commands read them so; `lumyn serve` reads them with its other settings, under the same bounds.
 */
export function policyLimitsFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): Result<PolicyLimits> {
  const problems: Problem[] = [];
  const read = (name: string, ceiling: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (Number.isSafeInteger(value) && value >= 1 && value <= ceiling) return value;
    problems.push({
      code: "config",
      message: `${name}: ${JSON.stringify(raw)} is not allowed`,
      expected: `a whole number from 1 to ${ceiling}`,
    });
    return undefined;
  };
  const maxBytes = read("LUMYN_POLICY_MAX_BYTES", POLICY_BYTES_CEILING);
  const maxRules = read("LUMYN_POLICY_MAX_RULES", POLICY_RULES_CEILING);
  if (problems.length > 0) return fail("usage", problems);
  return ok({
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    ...(maxRules !== undefined ? { maxRules } : {}),
  });
}

export interface LoadPolicyOptions extends PolicyLimits {
  /** Named in error locations. */
  readonly file?: string;
  readonly reasonCodeRegistry?: ReadonlySet<string>;
}

/**
 * Parses (YAML 1.1), validates and hashes a policy, and gives it its matcher. All problems are returned at once,
 * except for a policy over its limits (size, then rules), which is refused with that one problem.
 */
export function loadPolicy(text: string, options: LoadPolicyOptions = {}): Result<Policy> {
  const where = options.file ? { file: options.file } : {};
  const maxBytes = options.maxBytes ?? DEFAULT_POLICY_MAX_BYTES;
  const size = Buffer.byteLength(text, "utf8");
  if (size > maxBytes)
    return fail("invalid_policy", [
      {
        code: "too_large",
        message: `policy is ${size} bytes, over the size limit of ${maxBytes} bytes (policy_max_bytes)`,
        expected: `a policy of at most ${maxBytes} bytes`,
        ...where,
      },
    ]);
  const loaded = loadYaml11(text, options.file);
  if (!loaded.ok) return loaded;
  const maxRules = Math.min(options.maxRules ?? DEFAULT_POLICY_MAX_RULES, POLICY_RULES_CEILING);
  const rules = isJsonObject(loaded.value.value) ? loaded.value.value.rules : undefined;
  if (Array.isArray(rules) && rules.length > maxRules)
    return fail("invalid_policy", [
      {
        code: "too_many_rules",
        message: `policy has ${rules.length} rules, over the limit of ${maxRules} rules (policy_max_rules)`,
        pointer: "/rules",
        expected: `at most ${maxRules} rules`,
        ...where,
        ...loaded.value.valuePositions.get("/rules"),
      },
    ]);
  const validateOptions: ValidateOptions = {
    valuePositions: loaded.value.valuePositions,
    keyPositions: loaded.value.keyPositions,
    ...(options.file ? { file: options.file } : {}),
    ...(options.reasonCodeRegistry ? { reasonCodeRegistry: options.reasonCodeRegistry } : {}),
  };
  const validated = validatePolicy(loaded.value.value, validateOptions);
  if (!validated.ok) return validated;
  return ok(fromModel(validated.value, loaded.value.value as JsonObject, text));
}

/**
 * The `policy_hash` of a policy's text (sha256 of the canonical JSON of the document as PyYAML reads it),
 * without validating or compiling it: what a stored snapshot's text must still hash to.
 */
export function hashPolicyText(text: string, file?: string): Result<string> {
  const loaded = loadYaml11(text, file);
  return loaded.ok ? ok(digestJson(loaded.value.value)) : loaded;
}

function fromModel(model: PolicyModel, document: JsonObject, text: string): Policy {
  const matcher = speedupEnabled("policy-compiler") ? compiledMatcher(model) : interpretedMatcher(model);
  return { model, hash: digestJson(document), document, text, matcher };
}

/** The policy's answer for one input, before memory arbitration. */
export interface PolicyOutcome {
  readonly verdict: Verdict;
  readonly reasonCodes: readonly string[];
  readonly matchedRules: readonly MatchedRule[];
  readonly queries: readonly JsonObject[];
  readonly obligations: readonly JsonObject[];
  /** The matched rules themselves (empty when the default applied). */
  readonly matched: readonly PolicyRule[];
}

const scratch = new Uint16Array(POLICY_RULES_CEILING);

/** Indices (into `policy.model.rules`) of the rules that match. */
export function matchRules(policy: Policy, input: EvaluationInput): PolicyRule[] {
  const count = policy.matcher(input, scratch);
  const rules = policy.model.rules;
  const matched: PolicyRule[] = new Array(count);
  for (let i = 0; i < count; i++) matched[i] = rules[scratch[i] as number] as PolicyRule;
  return matched;
}

/**
 * Evaluates every rule and combines the matches as the reference does: the strongest verdict wins
 * (ABSTAIN > DENY > ESCALATE > ALLOW), reason codes and obligations are concatenated in evaluation order,
 * queries come from matched DENY rules and are kept only when the final verdict is DENY, and when nothing
 * matched the policy's default applies as a `DEFAULT` entry.
 */
export function evaluatePolicy(policy: Policy, input: EvaluationInput): PolicyOutcome {
  return outcomeOf(policy.model, matchRules(policy, input));
}

export function outcomeOf(model: PolicyModel, matched: readonly PolicyRule[]): PolicyOutcome {
  if (matched.length === 0) {
    const { verdict, reasonCode } = model.defaults;
    return {
      verdict,
      reasonCodes: [reasonCode],
      matchedRules: [{ rule_id: "DEFAULT", stage: "DEFAULT", effect: verdict, reason_codes: [reasonCode] }],
      queries: [],
      obligations: [],
      matched: [],
    };
  }
  let verdict: Verdict = "ALLOW";
  const reasonCodes: string[] = [];
  const matchedRules: MatchedRule[] = [];
  const queries: JsonObject[] = [];
  const obligations: JsonObject[] = [];
  for (const rule of matched) {
    verdict = strongerVerdict(verdict, rule.verdict);
    reasonCodes.push(...rule.reasonCodes);
    matchedRules.push({
      rule_id: rule.id,
      stage: rule.stage,
      effect: rule.verdict,
      reason_codes: rule.reasonCodes,
    });
    if (rule.verdict === "DENY") queries.push(...rule.queries);
    obligations.push(...rule.obligations);
  }
  return {
    verdict,
    reasonCodes,
    matchedRules,
    queries: verdict === "DENY" ? queries : [],
    obligations,
    matched,
  };
}
