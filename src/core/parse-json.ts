import { parse as parseLossless } from "lossless-json";
import { readJsonFast } from "./fast-json.ts";
import {
  escapePointerToken,
  integerFromLiteral,
  JsonFloat,
  type JsonValue,
  MAX_INTEGER_DIGITS,
} from "./json.ts";
import { readJsonNative } from "./native-json.ts";
import { fail, ok, type Problem, type Result } from "./problem.ts";
import { speedupEnabled } from "./speedups.ts";

/** Default limits for untrusted JSON (requests over the CLI and HTTP). */
export const DEFAULT_MAX_JSON_BYTES = 1024 * 1024;
export const DEFAULT_MAX_JSON_DEPTH = 64;

export interface ParseJsonOptions {
  maxBytes?: number;
  maxDepth?: number;
  /** Named in error locations, e.g. the request file. */
  file?: string;
}

/**
 * A reader tried before the lossless one, for speed: it answers exactly what the lossless reader would, or
 * gives up (undefined) and leaves the document to the next reader. It never reports a problem itself, so that
 * the lossless reader alone decides what an error says and where.
 */
export interface JsonReader {
  readonly name: string;
  readonly read: (text: string, maxDepth: number) => JsonValue | undefined;
}

/**
 * The readers tried before the lossless one, quickest first (the speed-up `json-readers`): V8's JSON.parse,
 * which gives up on integral floats, big integers and repeated keys, then the fast reader, which gives up on
 * repeated keys. Each is the quickest on the documents it takes (docs/benchmarks.md).
 */
export const FAST_JSON_READERS: readonly JsonReader[] = [
  { name: "native", read: readJsonNative },
  { name: "fast", read: readJsonFast },
];

const INTEGER_LITERAL = /^-?\d+$/;

class NonFiniteNumber extends Error {
  readonly literal: string;
  constructor(literal: string) {
    // A literal can be most of a megabyte: the message shows its start.
    const shown = literal.length > 40 ? `${literal.slice(0, 32)}… (${literal.length} characters)` : literal;
    super(`number ${shown} is out of range (non-finite numbers are not allowed)`);
    this.literal = literal;
  }
}

/**
 * What the lossless reader puts where an integer literal has too many digits, instead of converting it: parsing
 * goes on, so that the members holding such integers can be named, and nothing costly is done with the digits.
 */
class OverlongInteger {
  readonly digits: number;
  constructor(digits: number) {
    this.digits = digits;
  }
}

type OverlongFound = { pointer: string; digits: number }[];

/** Integers over {@link MAX_INTEGER_DIGITS}, each with the pointer of the member that holds it. */
class IntegersTooLong extends Error {
  readonly found: OverlongFound;
  constructor(found: OverlongFound) {
    super(`integers over ${MAX_INTEGER_DIGITS} digits`);
    this.found = found;
  }
}

/** The number of digits of an integer literal (its sign is no digit). */
function integerDigits(literal: string): number {
  return literal.length - (literal.charCodeAt(0) === 45 ? 1 : 0);
}

function parseNumber(literal: string): number | bigint | JsonFloat | OverlongInteger {
  if (INTEGER_LITERAL.test(literal)) {
    if (literal.length > MAX_INTEGER_DIGITS && integerDigits(literal) > MAX_INTEGER_DIGITS)
      return new OverlongInteger(integerDigits(literal));
    return integerFromLiteral(literal);
  }
  const value = Number(literal);
  if (!Number.isFinite(value)) throw new NonFiniteNumber(literal);
  return Number.isInteger(value) || Object.is(value, -0) ? new JsonFloat(value) : value;
}

/**
 * Parses JSON losslessly into Lumyn's {@link JsonValue} (int/float kept apart, big integers exact).
 * Duplicate keys, unpaired surrogates, non-finite numbers, integers of more than {@link MAX_INTEGER_DIGITS}
 * digits and documents over the size or depth limit are refused with the position of the problem.
 */
export function parseJson(text: string, options: ParseJsonOptions = {}): Result<JsonValue> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_JSON_BYTES;
  const size = Buffer.byteLength(text, "utf8");
  if (size > maxBytes) {
    return fail("too_large", [
      {
        code: "too_large",
        message: `JSON document is ${size} bytes, over the limit of ${maxBytes} bytes`,
        ...(options.file ? { file: options.file } : {}),
      },
    ]);
  }
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  let value: unknown = speedupEnabled("json-readers") ? readWithFastReaders(text, maxDepth) : undefined;
  if (value === undefined) {
    // Given up on, or the fast readers are off: the lossless parser reads it and says what is wrong, where.
    const depthProblem = checkDepth(text, maxDepth, options.file);
    if (depthProblem) return fail("invalid_json", [depthProblem]);
    try {
      value = readJsonLossless(text);
    } catch (error) {
      if (error instanceof IntegersTooLong)
        return fail(
          "invalid_json",
          error.found.map(({ pointer, digits }) => ({
            code: "integer_too_long",
            message: `integer of ${digits} digits, over the limit of ${MAX_INTEGER_DIGITS} digits`,
            pointer,
            expected: `an integer of at most ${MAX_INTEGER_DIGITS} digits, Python's limit, or the number as a string`,
            ...(options.file ? { file: options.file } : {}),
          })),
        );
      return fail("invalid_json", [syntaxProblem(text, error, options.file)]);
    }
  }
  const surrogate = mayHoldUnpairedSurrogate(text)
    ? findUnpairedSurrogate(value as JsonValue, "")
    : undefined;
  if (surrogate !== undefined) {
    return fail("invalid_json", [
      {
        code: "invalid_string",
        message: "string contains an unpaired UTF-16 surrogate escape",
        pointer: surrogate,
        expected: "well-formed Unicode text",
        ...(options.file ? { file: options.file } : {}),
      },
    ]);
  }
  return ok(value as JsonValue);
}

function readWithFastReaders(text: string, maxDepth: number): JsonValue | undefined {
  for (const reader of FAST_JSON_READERS) {
    const value = reader.read(text, maxDepth);
    if (value !== undefined) return value;
  }
  return undefined;
}

/**
 * The lossless reader that decides every document the fast readers give up on: it throws a SyntaxError (with
 * the position), NonFiniteNumber or IntegersTooLong. Exported for the tests that hold the fast readers to its
 * answers.
 */
export function readJsonLossless(text: string): unknown {
  let overlong = false;
  const value = parseLossless(text, null, (literal: string) => {
    const number = parseNumber(literal);
    if (number instanceof OverlongInteger) overlong = true;
    return number;
  });
  if (overlong) throw new IntegersTooLong(overlongIntegers(value, ""));
  return value;
}

function overlongIntegers(value: unknown, pointer: string, found: OverlongFound = []): OverlongFound {
  if (value instanceof OverlongInteger) found.push({ pointer, digits: value.digits });
  else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) overlongIntegers(value[i], `${pointer}/${i}`, found);
  } else if (value !== null && typeof value === "object" && !(value instanceof JsonFloat)) {
    for (const key of Object.keys(value))
      overlongIntegers(
        (value as Record<string, unknown>)[key],
        `${pointer}/${escapePointerToken(key)}`,
        found,
      );
  }
  return found;
}

/** Decodes bytes as strict UTF-8 before parsing; invalid UTF-8 is an error, never replaced silently. */
export function parseJsonBytes(bytes: Uint8Array, options: ParseJsonOptions = {}): Result<JsonValue> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return fail("invalid_json", [
      {
        code: "invalid_utf8",
        message: "document is not valid UTF-8",
        expected: "UTF-8 encoded JSON",
        ...(options.file ? { file: options.file } : {}),
      },
    ]);
  }
  return parseJson(text, options);
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function syntaxProblem(text: string, error: unknown, file: string | undefined): Problem {
  if (error instanceof NonFiniteNumber) {
    const at = text.indexOf(error.literal);
    return {
      code: "non_finite_number",
      message: error.message,
      expected: "a finite number",
      ...(file ? { file } : {}),
      ...(at >= 0 ? lineColumn(text, at) : {}),
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  const position = /at position (\d+)/.exec(message);
  const base = message.replace(/ at position \d+$/, "");
  const code = /Duplicate key/.test(message) ? "duplicate_key" : "syntax";
  return {
    code,
    message:
      code === "duplicate_key" ? `${base} (each key may appear once per object)` : `invalid JSON: ${base}`,
    ...(file ? { file } : {}),
    ...(position ? lineColumn(text, Number(position[1])) : {}),
  };
}

/** Measures nesting before parsing so that a deeply nested document cannot exhaust the parser's stack. */
function checkDepth(text: string, maxDepth: number, file: string | undefined): Problem | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      depth++;
      if (depth > maxDepth) {
        return {
          code: "too_deep",
          message: `JSON nesting is deeper than the limit of ${maxDepth} levels`,
          ...(file ? { file } : {}),
          ...lineColumn(text, i),
        };
      }
    } else if (c === 125 || c === 93) depth--;
  }
  return undefined;
}

/** A `\u` escape of a surrogate (D800–DFFF). */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * Whether parsing this text can yield a string with an unpaired surrogate: only a surrogate in the text
 * itself or an escaped one can. Most documents have neither, and then the walk over every key is skipped.
 */
function mayHoldUnpairedSurrogate(text: string): boolean {
  return !text.isWellFormed() || SURROGATE_ESCAPE.test(text);
}

function findUnpairedSurrogate(value: JsonValue, pointer: string): string | undefined {
  if (typeof value === "string") return value.isWellFormed() ? undefined : pointer;
  if (value === null || typeof value !== "object" || value instanceof JsonFloat) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnpairedSurrogate(value[i] as JsonValue, `${pointer}/${i}`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    const token = escapePointerToken(key);
    if (!key.isWellFormed()) return `${pointer}/${token}`;
    const found = findUnpairedSurrogate(value[key] as JsonValue, `${pointer}/${token}`);
    if (found !== undefined) return found;
  }
  return undefined;
}
