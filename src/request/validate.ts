import type { ErrorObject } from "ajv";
import {
  escapePointerToken,
  integerTooLong,
  isJsonObject,
  JsonFloat,
  type JsonValue,
  MAX_INTEGER_DIGITS,
  pointerOf,
} from "../core/json.ts";
import { didYouMean, fail, ok, type Problem, type Result } from "../core/problem.ts";
import type { DecisionRequest } from "../domain/request.ts";
import { validate as validateSchema } from "./generated/decision-request.validate.ts";

/** Members the schema leaves open (evidence, extensions, context.inline); their contents are opaque to it. */
function isOpenMember(path: readonly string[]): boolean {
  return path.length === 1
    ? path[0] === "evidence" || path[0] === "extensions"
    : path.length === 2 && path[0] === "context" && path[1] === "inline";
}

/** The schema compiled ahead of time by scripts/generate-validators.ts (no schema compilation at start-up). */
const schemaValidator = validateSchema as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/**
 * The schema checks JSON types with `typeof`, so it sees numbers as plain doubles; the open members
 * (evidence, extensions, context.inline) are not descended into, since the schema does not constrain them.
 */
function validationView(value: JsonValue, path: string[]): unknown {
  if (value instanceof JsonFloat) return value.value;
  if (typeof value === "bigint") return Number(value);
  if (value === null || typeof value !== "object" || isOpenMember(path)) return value;
  // Copy on write: a subtree without JsonFloat or bigint is passed as it is.
  let view: unknown[] | Record<string, unknown> | undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i] as JsonValue;
      path.push(String(i));
      const seen = validationView(item, path);
      path.pop();
      if (seen !== item) {
        view ??= value.slice();
        (view as unknown[])[i] = seen;
      }
    }
    return view ?? value;
  }
  for (const key of Object.keys(value)) {
    const item = value[key] as JsonValue;
    path.push(key);
    const seen = validationView(item, path);
    path.pop();
    if (seen !== item) {
      view ??= { ...value };
      (view as Record<string, unknown>)[key] = seen;
    }
  }
  return view ?? value;
}

function problemFromAjv(error: ErrorObject): Problem | undefined {
  const pointer = error.instancePath;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "if":
      return undefined;
    case "additionalProperties": {
      const key = String(params.additionalProperty);
      const allowed = Object.keys(
        (error.parentSchema as { properties?: object } | undefined)?.properties ?? {},
      );
      const hint = didYouMean(key, allowed);
      return {
        code: "unknown_key",
        message: `unknown member '${key}'`,
        pointer: `${pointer}/${escapePointerToken(key)}`,
        expected: `one of ${allowed.join(", ")}`,
        ...(hint ? { hint } : {}),
      };
    }
    case "required": {
      const key = String(params.missingProperty);
      return {
        code: "missing",
        message: `'${key}' is required`,
        pointer: `${pointer}/${escapePointerToken(key)}`,
        expected: `a member named ${key}`,
      };
    }
    case "enum": {
      const allowed = (params.allowedValues as unknown[]).map(String);
      return {
        code: "enum",
        message: "value is not allowed",
        pointer,
        expected: `one of ${allowed.join(", ")}`,
      };
    }
    case "const":
      return {
        code: "const",
        message: "value is not allowed",
        pointer,
        expected: JSON.stringify(params.allowedValue),
      };
    case "type":
      return {
        code: "type",
        message: `must be ${params.type === "object" ? "an object" : `a ${String(params.type)}`}`,
        pointer,
        expected: String(params.type),
      };
    case "pattern":
      return {
        code: "pattern",
        message: "does not have the expected form",
        pointer,
        expected: `text matching ${String(params.pattern)}`,
      };
    default:
      return { code: error.keyword, message: error.message ?? "is invalid", pointer };
  }
}

/**
 * Checks a request against decision_request.v1 and reports every problem with its JSON pointer.
 * Values that JSON cannot carry (functions, undefined members, non-finite numbers, unpaired surrogates) are
 * refused too, since library callers can pass them, and so are integers longer than Lumyn 1.3.6 reads.
 */
export function validateRequest(value: JsonValue): Result<DecisionRequest> {
  const problems: Problem[] = [];
  findNonJson(value, [], problems);
  if (problems.length > 0) return fail("invalid_request", problems);
  if (!isJsonObject(value)) {
    return fail("invalid_request", [
      {
        code: "type",
        message: "a decision request must be a JSON object",
        pointer: "",
        expected: "an object",
      },
    ]);
  }
  if (!schemaValidator(validationView(value, []))) {
    for (const error of schemaValidator.errors ?? []) {
      const problem = problemFromAjv(error);
      if (problem) problems.push(problem);
    }
    if (problems.length > 0) return fail("invalid_request", problems);
  }
  return ok(value as DecisionRequest);
}

const MAX_VALUE_DEPTH = 64;
const MAX_PROBLEMS = 20;

/**
 * Finds what JSON cannot carry. The path to the current value is kept as a stack and turned into a pointer
 * only when there is a problem to report.
 */
function findNonJson(value: unknown, path: (string | number)[], problems: Problem[]): void {
  if (problems.length >= MAX_PROBLEMS) return;
  if (path.length > MAX_VALUE_DEPTH) {
    report(
      problems,
      path,
      "too_deep",
      `nesting is deeper than ${MAX_VALUE_DEPTH} levels`,
      `at most ${MAX_VALUE_DEPTH} levels`,
    );
    return;
  }
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed())
        report(
          problems,
          path,
          "invalid_string",
          "string contains an unpaired UTF-16 surrogate",
          "well-formed Unicode text",
        );
      return;
    case "number":
      if (!Number.isFinite(value))
        report(problems, path, "non_finite_number", `${value} is not a finite number`, "a finite number");
      return;
    case "bigint":
      if (integerTooLong(value))
        report(
          problems,
          path,
          "integer_too_long",
          `integer of more than ${MAX_INTEGER_DIGITS} digits`,
          `an integer of at most ${MAX_INTEGER_DIGITS} digits, Python's limit, or the number as a string`,
        );
      return;
    case "boolean":
      return;
    case "object": {
      if (value === null) return;
      if (value instanceof JsonFloat) {
        if (!Number.isFinite(value.value))
          report(
            problems,
            path,
            "non_finite_number",
            `${value.value} is not a finite number`,
            "a finite number",
          );
        return;
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          path.push(i);
          findNonJson(value[i], path, problems);
          path.pop();
        }
        return;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) {
        report(problems, path, "type", "is not a plain JSON object", "a JSON value");
        return;
      }
      // for…in visits own members only here (plain objects inherit nothing enumerable) and allocates no key array.
      for (const key in value) {
        path.push(key);
        if (!key.isWellFormed())
          report(
            problems,
            path,
            "invalid_string",
            "member name contains an unpaired UTF-16 surrogate",
            "well-formed Unicode text",
          );
        findNonJson((value as Record<string, unknown>)[key], path, problems);
        path.pop();
      }
      return;
    }
    default:
      report(problems, path, "type", `${typeof value} is not a JSON value`, "a JSON value");
  }
}

function report(
  problems: Problem[],
  path: readonly (string | number)[],
  code: string,
  message: string,
  expected: string,
): void {
  problems.push({ code, message, pointer: pointerOf(path), expected });
}
