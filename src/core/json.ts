/**
 * JSON values that keep what a double cannot: the int/float distinction and integers of any size.
 *
 * Digests must match Lumyn 1.3.6 (Python), whose canonical JSON writes `100` and `100.0` differently and
 * writes big integers exactly. The representation used throughout Lumyn:
 *   - an integer is a `number` with an integral value, or a `bigint` when outside the safe-integer range;
 *   - a float is a `number` with a fractional part, or a {@link JsonFloat} when its value is integral
 *     (`100.0`, `1e+16`, `-0.0`), so that it stays a float.
 * Plain JavaScript objects passed to the library therefore mean what `JSON.parse` would have made of them.
 */

export class JsonFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
  valueOf(): number {
    return this.value;
  }
  toJSON(): number {
    return this.value;
  }
}

export type JsonPrimitive = null | boolean | number | bigint | string | JsonFloat;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return (
    typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof JsonFloat)
  );
}

/** True for a JSON number in any of its representations. */
export function isJsonNumber(value: unknown): value is number | bigint | JsonFloat {
  return typeof value === "number" || typeof value === "bigint" || value instanceof JsonFloat;
}

/** The numeric value of a JSON number as a double (bigints round to nearest, as Python's float() does). */
export function toDouble(value: number | bigint | JsonFloat): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  return value.value;
}

/** Wraps a double so that it is written as a float (`100.0`) even when integral. */
export function float(value: number): number | JsonFloat {
  return Number.isInteger(value) || Object.is(value, -0) ? new JsonFloat(value) : value;
}

/**
 * The most digits an integer may have: Python's `sys.int_info.default_max_str_digits`. Lumyn 1.3.6 can neither
 * read nor write a longer one, and converting one between text and bigint costs time that grows faster than its
 * length (a million digits held the event loop for about half a second).
 */
export const MAX_INTEGER_DIGITS = 4300;

const OVER_MAX_INTEGER = 10n ** BigInt(MAX_INTEGER_DIGITS);

/** Whether an integer has more than {@link MAX_INTEGER_DIGITS} digits, found without writing it out. */
export function integerTooLong(value: bigint): boolean {
  return value >= OVER_MAX_INTEGER || value <= -OVER_MAX_INTEGER;
}

/** Turns an integer literal into the Lumyn representation: a number when safe, else a bigint. */
export function integerFromLiteral(digits: string): number | bigint {
  const n = Number(digits);
  if (Number.isSafeInteger(n)) return n === 0 ? 0 : n;
  return BigInt(digits);
}

/**
 * Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the decimal exponent is
 * in [-4, 16), otherwise `d.ddde±XX` with at least two exponent digits; integral values keep `.0`.
 */
export function pythonFloatRepr(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`non-finite number ${x} has no JSON form`);
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const magnitude = Math.abs(x);
  if (magnitude >= 1e-4 && magnitude < 1e16) {
    // Both languages write the shortest round-trip digits in fixed notation here; Python keeps a ".0".
    const text = String(x);
    return text.includes(".") ? text : `${text}.0`;
  }
  const sign = x < 0 ? "-" : "";
  const [mantissa = "", expText = "0"] = Math.abs(x).toExponential().split("e");
  const exponent = Number(expText);
  const digits = mantissa.replace(".", "");
  if (exponent < -4 || exponent >= 16) {
    const rest = digits.length > 1 ? `.${digits.slice(1)}` : "";
    const expSign = exponent < 0 ? "-" : "+";
    const expDigits = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${digits[0]}${rest}e${expSign}${expDigits}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  if (digits.length <= exponent + 1) return `${sign}${digits}${"0".repeat(exponent + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}

function numberText(value: number | bigint | JsonFloat): string {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof JsonFloat) return pythonFloatRepr(value.value);
  if (Number.isInteger(value)) {
    if (Number.isSafeInteger(value)) return value === 0 ? "0" : String(value);
    // An integral double beyond 2^53 given by a caller: write its exact integer value, as Python would.
    return BigInt(value).toString();
  }
  return pythonFloatRepr(value);
}

/**
 * Orders strings by Unicode code point. Sorting by UTF-16 code units (JavaScript's default) differs for
 * astral-plane characters, which are surrogate pairs (0xD800–0xDFFF) and would sort before U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codeUnitRank(x) - codeUnitRank(y);
  }
  return a.length - b.length;
}

function codeUnitRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

const SURROGATE = /[\ud800-\udfff]/;
const INSERTION_SORT_LIMIT = 16;

/** Keys in code point order. The default sort is UTF-16 order, which differs only for keys with surrogates. */
export function sortedKeys(object: object): string[] {
  const keys = Object.keys(object);
  if (keys.length > INSERTION_SORT_LIMIT) keys.sort();
  // Insertion sort for small objects (most of them): cheaper than a general sort, linear when already in order.
  else
    for (let i = 1; i < keys.length; i++) {
      const key = keys[i] as string;
      let j = i - 1;
      while (j >= 0 && (keys[j] as string) > key) {
        keys[j + 1] = keys[j] as string;
        j--;
      }
      keys[j + 1] = key;
    }
  for (const key of keys) if (SURROGATE.test(key)) return keys.sort(compareCodePoints);
  return keys;
}

export class JsonEncodeError extends Error {
  readonly pointer: string;
  constructor(message: string, pointer: string) {
    super(`${message} at ${pointer || "/"}`);
    this.name = "JsonEncodeError";
    this.pointer = pointer;
  }
}

/** Canonical JSON text already produced, written verbatim where it stands (saves serialising twice). */
export class RawJson {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/** What the writer accepts: JSON values, with {@link RawJson} fragments anywhere. */
export type Serializable =
  | JsonValue
  | RawJson
  | readonly Serializable[]
  | { readonly [key: string]: Serializable | undefined };

export interface StringifyOptions {
  /** Spaces per level; omitted for compact output (`,` and `:` without spaces). */
  indent?: number;
}

/**
 * Lumyn's JSON writer: keys sorted by code point, non-ASCII written raw, control characters escaped as
 * `\u00XX`, numbers as Python writes them. Compact output is the canonical form used for every digest
 * (Python's `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`); indented output matches
 * `json.dumps(indent=N, sort_keys=True, ensure_ascii=False)`.
 */
export function stringify(value: Serializable, options: StringifyOptions = {}): string {
  return new JsonWriter(options.indent ?? 0).write(value, "");
}

/** The canonical JSON text of a value (compact, sorted keys). */
export function canonicalJson(value: Serializable): string {
  return new JsonWriter(0).write(value, "");
}

/** Characters that JSON escapes, and surrogates (which must come in pairs). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON must escape.
const NEEDS_CARE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Member names recur across documents; their quoted form is kept (bounded). */
const quotedKeys = new Map<string, string>();
const MAX_QUOTED_KEYS = 10_000;

class JsonWriter {
  private readonly indent: number;
  /** Keys and indices from the root to the value being written, to point at an unwritable value. */
  private readonly path: (string | number)[] = [];

  constructor(indent: number) {
    this.indent = indent;
  }

  private fail(message: string): never {
    throw new JsonEncodeError(message, pointerOf(this.path));
  }

  private string(text: string): string {
    if (!NEEDS_CARE.test(text)) return `"${text}"`;
    if (!text.isWellFormed()) this.fail("string contains an unpaired UTF-16 surrogate");
    // JSON.stringify escapes exactly what Python's encoder escapes for well-formed strings.
    return JSON.stringify(text);
  }

  private key(key: string): string {
    let quoted = quotedKeys.get(key);
    if (quoted === undefined) {
      quoted = this.string(key);
      if (quotedKeys.size < MAX_QUOTED_KEYS) quotedKeys.set(key, quoted);
    }
    return quoted;
  }

  write(value: Serializable, padding: string): string {
    if (value === null) return "null";
    switch (typeof value) {
      case "string":
        return this.string(value);
      case "boolean":
        return value ? "true" : "false";
      case "number":
        if (!Number.isFinite(value)) this.fail(`non-finite number ${value}`);
        return numberText(value);
      case "bigint":
        return value.toString();
      case "object":
        break;
      default:
        this.fail(`${typeof value} is not a JSON value`);
    }
    if (value instanceof JsonFloat) {
      if (!Number.isFinite(value.value)) this.fail(`non-finite number ${value.value}`);
      return numberText(value);
    }
    if (value instanceof RawJson) return value.text;
    const inner = this.indent > 0 ? `${padding}${" ".repeat(this.indent)}` : "";
    const open = this.indent > 0 ? `\n${inner}` : "";
    const separator = this.indent > 0 ? `,\n${inner}` : ",";
    const close = this.indent > 0 ? `\n${padding}` : "";
    if (Array.isArray(value)) {
      if (value.length === 0) return "[]";
      let out = `[${open}`;
      for (let i = 0; i < value.length; i++) {
        this.path.push(i);
        out += (i > 0 ? separator : "") + this.write(value[i] as Serializable, inner);
        this.path.pop();
      }
      return `${out}${close}]`;
    }
    const object = value as { readonly [key: string]: Serializable | undefined };
    const colon = this.indent > 0 ? ": " : ":";
    let out = "";
    for (const key of sortedKeys(object)) {
      const item = object[key];
      if (item === undefined) continue;
      this.path.push(key);
      out += (out === "" ? "" : separator) + this.key(key) + colon + this.write(item, inner);
      this.path.pop();
    }
    return out === "" ? "{}" : `{${open}${out}${close}}`;
  }
}

/** RFC 6901 escaping of one reference token. */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

export function pointerOf(path: readonly (string | number)[]): string {
  return path.map((segment) => `/${escapePointerToken(String(segment))}`).join("");
}

/** Sets an own member, also for the key `__proto__`, which plain assignment would treat as the prototype. */
export function setMember(object: JsonObject, key: string, value: JsonValue): void {
  if (key === "__proto__")
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  else object[key] = value;
}
