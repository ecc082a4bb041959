import type { JsonValue } from "./json.ts";

/**
 * The quickest reader of {@link parseJson}: V8's own `JSON.parse`, for the documents where what it builds is
 * exactly what the lossless reader would. That holds when every number is an integer literal in the safe
 * range (other than `-0`) or a float whose value has a fraction, no key repeats in an object, and nesting
 * stays within the limit; one pass over the text outside its strings checks all three. Anything else (an
 * integral float such as `100.0`, which must stay a float, a big integer, a repeated key, a syntax error) is
 * left to the next reader: this one returns undefined and never reports a problem itself.
 *
 * It is first because V8 builds the objects with their final shapes at once, which also makes the steps after
 * the read cheaper (figures in docs/benchmarks.md).
 */
export function readJsonNative(text: string, maxDepth: number): JsonValue | undefined {
  const members = plainMembers(text, maxDepth);
  if (members === undefined) return undefined;
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    return undefined;
  }
  // JSON.parse keeps the last of repeated keys: fewer members than the text has colons means one repeated.
  return memberCount(value) === members ? value : undefined;
}

/** Safe integers have at most 16 digits; every integer of 15 digits or fewer is safe. */
const MAX_PLAIN_DIGITS = 15;

/**
 * The number of object members in the text (its colons outside strings), or undefined when a number would
 * read differently from the lossless reader or nesting goes deeper than `maxDepth`. The text need not be
 * valid JSON: JSON.parse decides that afterwards.
 */
function plainMembers(text: string, maxDepth: number): number | undefined {
  const length = text.length;
  let members = 0;
  let depth = 0;
  let at = 0;
  while (at < length) {
    const c = text.charCodeAt(at);
    if (c === 34) {
      at = stringEnd(text, at);
      if (at < 0) return undefined;
    } else if (c === 58) {
      members++;
      at++;
    } else if (c === 123 || c === 91) {
      if (++depth > maxDepth) return undefined;
      at++;
    } else if (c === 125 || c === 93) {
      depth--;
      at++;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      const start = at;
      let integer = true;
      for (at++; at < length; at++) {
        const d = text.charCodeAt(at);
        if (d === 46 || d === 101 || d === 69 || d === 43 || d === 45) integer = false;
        else if (d < 48 || d > 57) break;
      }
      if (integer) {
        const digits = at - start - (c === 45 ? 1 : 0);
        if (digits > MAX_PLAIN_DIGITS) return undefined;
        if (c === 45 && text.charCodeAt(start + 1) === 48) return undefined;
      } else {
        const value = Number(text.slice(start, at));
        // An integral float must stay a float (`100.0`), and a non-finite one is an error: not for JSON.parse.
        if (!Number.isFinite(value) || Number.isInteger(value)) return undefined;
      }
    } else at++;
  }
  return members;
}

/** The index after the string that opens at `open`, or -1 when it is not closed. */
function stringEnd(text: string, open: number): number {
  let close = text.indexOf('"', open + 1);
  while (close >= 0) {
    let backslashes = 0;
    while (text.charCodeAt(close - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return close + 1;
    close = text.indexOf('"', close + 1);
  }
  return -1;
}

function memberCount(value: JsonValue): number {
  if (typeof value !== "object" || value === null) return 0;
  let count = 0;
  if (Array.isArray(value)) {
    for (const item of value) count += memberCount(item);
    return count;
  }
  const object = value as { [key: string]: JsonValue };
  for (const key of Object.keys(object)) count += 1 + memberCount(object[key] as JsonValue);
  return count;
}
