import { RE2JS } from "re2js";
import { isJsonNumber, isJsonObject, JsonFloat, type JsonValue, stringify } from "../core/json.ts";

/**
 * The value semantics the condition operators are built on (see operator-table.ts). A value that is missing
 * reads as `null`.
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

/** Compiles an RE2 pattern; `(?i)` and the other RE2 flags are allowed, matching is linear-time. */
export function compileRegex(pattern: string): { ok: true; regex: RE2JS } | { ok: false; message: string } {
  try {
    return { ok: true, regex: RE2JS.compile(pattern) };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

/** A value as messages name it: "the number 3", "the string 'x'", "a list". */
export function describeValue(value: JsonValue | undefined): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (isJsonObject(value)) return "a mapping";
  if (isJsonNumber(value)) return `the number ${stringify(value)}`;
  if (typeof value === "boolean") return `the boolean ${value}`;
  return `the string '${value}'`;
}
