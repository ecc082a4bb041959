import type { ErrorObject } from "ajv";
import {
  escapePointerToken,
  isJsonObject,
  JsonFloat,
  type JsonObject,
  type JsonValue,
} from "../core/json.ts";
import { didYouMean, fail, ok, type Problem, type Result } from "../core/problem.ts";
import { validate as validateSchema } from "./generated/decision-request.validate.ts";

/** A decision request that passed validation (decision_request.v1). */
export type DecisionRequest = JsonObject & {
  readonly schema_version: "decision_request.v1";
  readonly action: JsonObject & { readonly type: string };
  readonly context: JsonObject;
};

export const REQUEST_SCHEMA_VERSION = "decision_request.v1";

/** Members the schema leaves open; their contents are opaque to validation. */
const OPEN_MEMBERS = new Set(["/evidence", "/extensions", "/context/inline"]);

/** The schema compiled ahead of time by scripts/generate-validators.ts (no schema compilation at start-up). */
const schemaValidator = validateSchema as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/**
 * The schema checks JSON types with `typeof`, so it sees numbers as plain doubles; the open members
 * (evidence, extensions, context.inline) are not descended into, since the schema does not constrain them.
 */
function validationView(value: JsonValue, pointer: string): unknown {
  if (value instanceof JsonFloat) return value.value;
  if (typeof value === "bigint") return Number(value);
  if (value === null || typeof value !== "object" || OPEN_MEMBERS.has(pointer)) return value;
  if (Array.isArray(value)) return value.map((item, i) => validationView(item, `${pointer}/${i}`));
  const view: Record<string, unknown> = {};
  for (const key of Object.keys(value))
    view[key] = validationView(value[key] as JsonValue, `${pointer}/${escapePointerToken(key)}`);
  return view;
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
 * refused too, since library callers can pass them.
 */
export function validateRequest(value: JsonValue): Result<DecisionRequest> {
  const problems: Problem[] = [];
  findNonJson(value, "", problems);
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
  if (!schemaValidator(validationView(value, ""))) {
    for (const error of schemaValidator.errors ?? []) {
      const problem = problemFromAjv(error);
      if (problem) problems.push(problem);
    }
    if (problems.length > 0) return fail("invalid_request", problems);
  }
  return ok(value as DecisionRequest);
}

const MAX_VALUE_DEPTH = 64;

function findNonJson(value: unknown, pointer: string, problems: Problem[], depth = 0): void {
  if (problems.length >= 20) return;
  if (depth > MAX_VALUE_DEPTH) {
    problems.push({ code: "too_deep", message: `nesting is deeper than ${MAX_VALUE_DEPTH} levels`, pointer });
    return;
  }
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed())
        problems.push({
          code: "invalid_string",
          message: "string contains an unpaired UTF-16 surrogate",
          pointer,
          expected: "well-formed Unicode text",
        });
      return;
    case "number":
      if (!Number.isFinite(value))
        problems.push({
          code: "non_finite_number",
          message: `${value} is not a finite number`,
          pointer,
          expected: "a finite number",
        });
      return;
    case "boolean":
    case "bigint":
      return;
    case "object":
      if (value === null) return;
      if (value instanceof JsonFloat) {
        if (!Number.isFinite(value.value))
          problems.push({
            code: "non_finite_number",
            message: `${value.value} is not a finite number`,
            pointer,
            expected: "a finite number",
          });
        return;
      }
      if (Array.isArray(value)) {
        for (const [i, item] of value.entries()) findNonJson(item, `${pointer}/${i}`, problems, depth + 1);
        return;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
        problems.push({
          code: "type",
          message: "is not a plain JSON object",
          pointer,
          expected: "a JSON value",
        });
        return;
      }
      for (const key of Object.keys(value)) {
        const child = `${pointer}/${escapePointerToken(key)}`;
        if (!key.isWellFormed())
          problems.push({
            code: "invalid_string",
            message: "member name contains an unpaired UTF-16 surrogate",
            pointer: child,
          });
        findNonJson((value as Record<string, unknown>)[key], child, problems, depth + 1);
      }
      return;
    default:
      problems.push({
        code: "type",
        message: `${typeof value} is not a JSON value`,
        pointer,
        expected: "a JSON value",
      });
  }
}
