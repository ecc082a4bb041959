import { RE2JS } from "re2js";
import { isJsonObject, JsonFloat, type JsonValue } from "../core/json.ts";

/**
 * The meaning of every condition operator, shared by the compiled evaluator and the explain trace so that
 * both always agree. A value that is missing reads as `null`.
 *
 * Two equalities exist on purpose: the flat keys of the reference (`evidence.x_is`, `_ne`, `_in`) compare as
 * Python's `==` does (so `true == 1` and `1 == 1.0`), while the nested operators are JSON-typed (`1 != true`,
 * `100 == 100.0`).
 */

export type Value = JsonValue | undefined;

/** A number for comparisons, or undefined when the value is not a JSON number. */
export function jsonNumber(value: Value): number | bigint | undefined {
  if (typeof value === "number" || typeof value === "bigint") return value;
  if (value instanceof JsonFloat) return value.value;
  return undefined;
}

/** Python's view of a number: booleans are the integers 0 and 1. */
export function pythonNumber(value: Value): number | bigint | undefined {
  if (typeof value === "boolean") return value ? 1 : 0;
  return jsonNumber(value);
}

function deepEquals(a: Value, b: Value, scalar: (x: Value, y: Value) => boolean): boolean {
  const left = a === undefined ? null : a;
  const right = b === undefined ? null : b;
  if (Array.isArray(left)) {
    if (!Array.isArray(right) || left.length !== right.length) return false;
    for (let i = 0; i < left.length; i++) if (!deepEquals(left[i], right[i], scalar)) return false;
    return true;
  }
  if (isJsonObject(left)) {
    if (!isJsonObject(right)) return false;
    const keys = Object.keys(left);
    if (keys.length !== Object.keys(right).length) return false;
    for (const key of keys) {
      if (!Object.hasOwn(right, key) || !deepEquals(left[key], right[key], scalar)) return false;
    }
    return true;
  }
  if (Array.isArray(right) || isJsonObject(right)) return false;
  return scalar(left, right);
}

function jsonScalarEquals(a: Value, b: Value): boolean {
  const x = jsonNumber(a);
  if (x !== undefined) {
    const y = jsonNumber(b);
    // biome-ignore lint/suspicious/noDoubleEquals: loose equality compares a bigint with a number exactly.
    return y !== undefined && x == y;
  }
  return a === b;
}

function pythonScalarEquals(a: Value, b: Value): boolean {
  const x = pythonNumber(a);
  if (x !== undefined) {
    const y = pythonNumber(b);
    // biome-ignore lint/suspicious/noDoubleEquals: loose equality compares a bigint with a number exactly.
    return y !== undefined && x == y;
  }
  return a === b;
}

export function jsonEquals(a: Value, b: Value): boolean {
  return deepEquals(a, b, jsonScalarEquals);
}

export function pythonEquals(a: Value, b: Value): boolean {
  return deepEquals(a, b, pythonScalarEquals);
}

export type Comparison = "gt" | "gte" | "lt" | "lte";

function compareNumbers(x: number | bigint, op: Comparison, y: number | bigint): boolean {
  switch (op) {
    case "gt":
      return x > y;
    case "gte":
      return x >= y;
    case "lt":
      return x < y;
    case "lte":
      return x <= y;
  }
}

/** Shared implementations, referenced by name from generated code. */
export const operators = {
  eq: (value: Value, operand: JsonValue): boolean => jsonEquals(value, operand),
  ne: (value: Value, operand: JsonValue): boolean => !jsonEquals(value, operand),
  in: (value: Value, operand: readonly JsonValue[]): boolean =>
    operand.some((item) => jsonEquals(value, item)),
  not_in: (value: Value, operand: readonly JsonValue[]): boolean =>
    !operand.some((item) => jsonEquals(value, item)),
  compare: (value: Value, op: Comparison, operand: number | bigint): boolean => {
    const x = jsonNumber(value);
    return x !== undefined && compareNumbers(x, op, operand);
  },
  between: (value: Value, low: number | bigint, high: number | bigint): boolean => {
    const x = jsonNumber(value);
    return x !== undefined && x >= low && x <= high;
  },
  exists: (value: Value, expected: boolean): boolean => (value !== undefined && value !== null) === expected,
  contains: (value: Value, operand: JsonValue): boolean => {
    if (typeof value === "string") return typeof operand === "string" && value.includes(operand);
    if (Array.isArray(value)) return value.some((item) => jsonEquals(item, operand));
    return false;
  },
  matches: (value: Value, pattern: RE2JS): boolean =>
    typeof value === "string" && pattern.matcher(value).find(),
  flatIs: (value: Value, operand: JsonValue): boolean => pythonEquals(value, operand),
  flatNe: (value: Value, operand: JsonValue): boolean => !pythonEquals(value, operand),
  flatIn: (value: Value, operand: readonly JsonValue[]): boolean =>
    operand.some((item) => pythonEquals(value, item)),
  flatCompare: (value: Value, op: Comparison, operand: number | bigint): boolean => {
    const x = pythonNumber(value);
    return x !== undefined && compareNumbers(x, op, operand);
  },
};

/** Compiles an RE2 pattern; `(?i)` and the other RE2 flags are allowed, matching is linear-time. */
export function compileRegex(pattern: string): { ok: true; regex: RE2JS } | { ok: false; message: string } {
  try {
    return { ok: true, regex: RE2JS.compile(pattern) };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}
