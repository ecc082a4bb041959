import {
  escapePointerToken,
  isJsonNumber,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  setMember,
  toDouble,
} from "../core/json.ts";
import { didYouMean, fail, ok, type Problem, type Result } from "../core/problem.ts";
import { VERDICTS, type Verdict } from "../core/verdict.ts";
import { loadYaml11, type Position } from "../policy/yaml.ts";

/**
 * Policy test files (`*.test.yml`): a policy, shared request defaults, and cases with what each must give.
 *
 * ```yaml
 * policy: policy.yml            # relative to this file
 * defaults: { schema_version: decision_request.v1, subject: { type: agent, id: a1 } }
 * cases:
 *   - name: small refunds go ahead
 *     request: { action: { type: support.refund, intent: x, amount: { value: 20, currency: USD } } }
 *     expect: { verdict: ALLOW, reason_codes: [REFUND_SMALL_LOW_RISK] }
 * ```
 */
export interface TestSuite {
  readonly file: string;
  readonly policy: string;
  readonly cases: readonly TestCase[];
}

export interface TestCase {
  readonly name: string;
  /** The request with the suite's defaults merged in; `requestFile` names where it came from, if a file. */
  readonly request?: JsonValue;
  readonly requestFile?: string;
  /** Values of the policy's velocity measures to decide with (the history a store would have measured). */
  readonly velocity?: Readonly<Record<string, number>>;
  readonly expect: Expectation;
  readonly line?: number;
}

export interface Expectation {
  readonly verdict?: Verdict;
  /** An exact list, or codes that must all be present. */
  readonly reasonCodes?: { readonly exact: readonly string[] } | { readonly contains: readonly string[] };
  readonly matchedRules?: readonly string[];
  readonly obligations?: readonly JsonValue[];
  readonly queries?: readonly JsonValue[];
}

const SUITE_KEYS = ["policy", "defaults", "cases"];
const CASE_KEYS = ["name", "request", "request_file", "velocity", "expect"];
const EXPECT_KEYS = ["verdict", "reason_codes", "matched_rules", "obligations", "queries"];

/** Merges `overlay` into `base`: objects member by member, anything else replaced. */
export function mergeDefaults(base: JsonValue, overlay: JsonValue): JsonValue {
  if (!isJsonObject(base) || !isJsonObject(overlay)) return overlay;
  const merged: JsonObject = { ...base };
  for (const [key, value] of Object.entries(overlay)) {
    setMember(merged, key, Object.hasOwn(base, key) ? mergeDefaults(base[key] as JsonValue, value) : value);
  }
  return merged;
}

function stringList(value: JsonValue | undefined): string[] | undefined {
  return Array.isArray(value) && value.every((item) => typeof item === "string")
    ? (value as string[])
    : undefined;
}

/** Reads and checks a test file; every problem is reported with line:col. */
export function parseTestSuite(text: string, file: string): Result<TestSuite> {
  const loaded = loadYaml11(text, file);
  if (!loaded.ok) return loaded;
  const { value: document, valuePositions, keyPositions } = loaded.value;
  const problems: Problem[] = [];
  const report = (
    pointer: string,
    message: string,
    expected?: string,
    hint?: string,
    at: "key" | "value" = "value",
  ): void => {
    const position: Position | undefined =
      (at === "key" ? keyPositions : valuePositions).get(pointer) ?? valuePositions.get(pointer);
    problems.push({
      code: "test_file",
      message,
      pointer,
      file,
      ...(position ?? {}),
      ...(expected ? { expected } : {}),
      ...(hint ? { hint } : {}),
    });
  };
  const checkKeys = (object: JsonObject, allowed: readonly string[], pointer: string): void => {
    for (const key of Object.keys(object)) {
      if (!allowed.includes(key)) {
        const hint = didYouMean(key, allowed);
        report(
          `${pointer}/${escapePointerToken(key)}`,
          `unknown key '${key}'`,
          `one of ${allowed.join(", ")}`,
          hint,
          "key",
        );
      }
    }
  };
  if (!isJsonObject(document)) {
    return fail("invalid_policy", [
      { code: "test_file", message: "a test file must be a mapping with policy and cases", file },
    ]);
  }
  checkKeys(document, SUITE_KEYS, "");
  if (typeof document.policy !== "string" || document.policy.length === 0)
    report("/policy", "policy must name the policy file", "a path relative to the test file");
  const defaults = document.defaults ?? {};
  if (!isJsonObject(defaults))
    report("/defaults", "defaults must be a mapping merged into every request", "a mapping");
  const cases: TestCase[] = [];
  if (!Array.isArray(document.cases) || document.cases.length === 0) {
    report("/cases", "cases must be a non-empty list", "a list of {name, request | request_file, expect}");
  } else {
    document.cases.forEach((value, index) => {
      const pointer = `/cases/${index}`;
      if (!isJsonObject(value)) {
        report(pointer, `case ${index} must be a mapping`, "{name, request | request_file, expect}");
        return;
      }
      checkKeys(value, CASE_KEYS, pointer);
      const name = typeof value.name === "string" && value.name.length > 0 ? value.name : undefined;
      if (!name) report(`${pointer}/name`, `case ${index} needs a name`, "a non-empty string");
      if ((value.request === undefined) === (value.request_file === undefined)) {
        report(pointer, `case ${name ?? index} needs exactly one of request and request_file`);
      }
      if (value.request_file !== undefined && typeof value.request_file !== "string")
        report(`${pointer}/request_file`, "request_file must be a path", "a path relative to the test file");
      const velocity = value.velocity;
      const velocityValid =
        velocity === undefined ||
        (isJsonObject(velocity) && Object.values(velocity).every((v) => isJsonNumber(v)));
      if (!velocityValid)
        report(
          `${pointer}/velocity`,
          "velocity must map measure names to numbers",
          "{subject_denials_1h: 4}",
        );
      const expect = parseExpectation(value.expect, `${pointer}/expect`, report, checkKeys);
      if (!name || !expect || !velocityValid) return;
      cases.push({
        name,
        ...(value.request !== undefined
          ? { request: mergeDefaults(isJsonObject(defaults) ? defaults : {}, value.request) }
          : {}),
        ...(typeof value.request_file === "string" ? { requestFile: value.request_file } : {}),
        ...(isJsonObject(velocity)
          ? {
              velocity: Object.fromEntries(
                Object.entries(velocity).map(([measure, v]) => [
                  measure,
                  toDouble(v as Parameters<typeof toDouble>[0]),
                ]),
              ),
            }
          : {}),
        expect,
        ...(valuePositions.get(pointer) ? { line: valuePositions.get(pointer)?.line as number } : {}),
      });
    });
  }
  if (problems.length > 0) return fail("invalid_policy", problems);
  return ok({ file, policy: document.policy as string, cases });
}

function parseExpectation(
  value: JsonValue | undefined,
  pointer: string,
  report: (pointer: string, message: string, expected?: string, hint?: string) => void,
  checkKeys: (object: JsonObject, allowed: readonly string[], pointer: string) => void,
): Expectation | undefined {
  if (!isJsonObject(value) || Object.keys(value).length === 0) {
    report(
      pointer,
      "expect must say what the case must give",
      `a mapping with some of ${EXPECT_KEYS.join(", ")}`,
    );
    return undefined;
  }
  checkKeys(value, EXPECT_KEYS, pointer);
  let valid = true;
  const expectation: { -readonly [K in keyof Expectation]: Expectation[K] } = {};
  if (value.verdict !== undefined) {
    if (typeof value.verdict === "string" && (VERDICTS as readonly string[]).includes(value.verdict))
      expectation.verdict = value.verdict as Verdict;
    else {
      const hint = typeof value.verdict === "string" ? didYouMean(value.verdict, VERDICTS) : undefined;
      report(`${pointer}/verdict`, "unknown verdict", VERDICTS.join(", "), hint);
      valid = false;
    }
  }
  const codes = value.reason_codes;
  if (codes !== undefined) {
    const exact = stringList(codes);
    const contains = isJsonObject(codes) ? stringList(codes.contains) : undefined;
    if (exact) expectation.reasonCodes = { exact };
    else if (contains && isJsonObject(codes) && Object.keys(codes).length === 1)
      expectation.reasonCodes = { contains };
    else {
      report(
        `${pointer}/reason_codes`,
        "reason_codes must be a list (exact) or {contains: [...]}",
        "[CODE, …] or {contains: [CODE, …]}",
      );
      valid = false;
    }
  }
  if (value.matched_rules !== undefined) {
    const rules = stringList(value.matched_rules);
    if (rules) expectation.matchedRules = rules;
    else {
      report(
        `${pointer}/matched_rules`,
        "matched_rules must be a list of rule ids (DEFAULT when none matches)",
        "[R001, …]",
      );
      valid = false;
    }
  }
  for (const key of ["obligations", "queries"] as const) {
    const list = value[key];
    if (list === undefined) continue;
    if (Array.isArray(list)) expectation[key] = list;
    else {
      report(`${pointer}/${key}`, `${key} must be a list`, "a list of mappings, as in the record");
      valid = false;
    }
  }
  return valid ? expectation : undefined;
}
