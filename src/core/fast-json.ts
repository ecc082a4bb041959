import {
  integerFromLiteral,
  JsonFloat,
  type JsonObject,
  type JsonValue,
  MAX_INTEGER_DIGITS,
  setMember,
} from "./json.ts";

/**
 * The reader of {@link parseJson} for what the native one leaves (integral floats such as `100.0`, big
 * integers): well-formed JSON with no duplicate keys and no integer over the digit limit, within the depth
 * limit. It reads numbers exactly as the lossless parser does (int/float kept apart, big integers exact) but
 * builds strings by slicing the text, where the lossless parser goes one character at a time: that is where
 * it saves (docs/benchmarks.md). It gives up (returns undefined) at the first thing it does not accept, and
 * the lossless parser then reads the document again and reports the problem with its position: one reader
 * decides what an error says, and this one only ever answers documents that parse cleanly.
 */
export function readJsonFast(text: string, maxDepth: number): JsonValue | undefined {
  const reader = new FastReader(text, maxDepth);
  try {
    const value = reader.value(0);
    reader.whitespace();
    return reader.at === text.length ? value : undefined;
  } catch (error) {
    if (error === GIVE_UP) return undefined;
    throw error;
  }
}

/** Thrown through the reader to stop at once; caught by {@link readJsonFast} only. */
const GIVE_UP: unique symbol = Symbol("give up");

const INTEGER_LITERAL = /^-?(?:0|[1-9]\d*)$/;
const NUMBER_LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

const HEX4 = /^[0-9a-fA-F]{4}$/;

const ESCAPES: Readonly<Record<number, string>> = {
  34: '"',
  92: "\\",
  47: "/",
  98: "\b",
  102: "\f",
  110: "\n",
  114: "\r",
  116: "\t",
};

class FastReader {
  private readonly text: string;
  private readonly maxDepth: number;
  at = 0;

  constructor(text: string, maxDepth: number) {
    this.text = text;
    this.maxDepth = maxDepth;
  }

  whitespace(): void {
    const text = this.text;
    let at = this.at;
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 32 || c === 10 || c === 13 || c === 9) at++;
      else break;
    }
    this.at = at;
  }

  value(depth: number): JsonValue {
    this.whitespace();
    const c = this.text.charCodeAt(this.at);
    if (c === 34) return this.string();
    if (c === 123) return this.object(depth + 1);
    if (c === 91) return this.array(depth + 1);
    if (c === 45 || (c >= 48 && c <= 57)) return this.number();
    if (this.text.startsWith("true", this.at)) {
      this.at += 4;
      return true;
    }
    if (this.text.startsWith("false", this.at)) {
      this.at += 5;
      return false;
    }
    if (this.text.startsWith("null", this.at)) {
      this.at += 4;
      return null;
    }
    throw GIVE_UP;
  }

  private object(depth: number): JsonObject {
    if (depth > this.maxDepth) throw GIVE_UP;
    this.at++;
    const object: JsonObject = {};
    this.whitespace();
    if (this.text.charCodeAt(this.at) === 125) {
      this.at++;
      return object;
    }
    for (;;) {
      this.whitespace();
      if (this.text.charCodeAt(this.at) !== 34) throw GIVE_UP;
      const key = this.string();
      // A repeated key is an error unless both values are equal: the lossless parser decides.
      if (Object.hasOwn(object, key)) throw GIVE_UP;
      this.whitespace();
      if (this.text.charCodeAt(this.at) !== 58) throw GIVE_UP;
      this.at++;
      setMember(object, key, this.value(depth));
      this.whitespace();
      const c = this.text.charCodeAt(this.at++);
      if (c === 125) return object;
      if (c !== 44) throw GIVE_UP;
    }
  }

  private array(depth: number): JsonValue[] {
    if (depth > this.maxDepth) throw GIVE_UP;
    this.at++;
    const array: JsonValue[] = [];
    this.whitespace();
    if (this.text.charCodeAt(this.at) === 93) {
      this.at++;
      return array;
    }
    for (;;) {
      array.push(this.value(depth));
      this.whitespace();
      const c = this.text.charCodeAt(this.at++);
      if (c === 93) return array;
      if (c !== 44) throw GIVE_UP;
    }
  }

  private string(): string {
    const text = this.text;
    const start = this.at + 1;
    let at = start;
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 34) {
        this.at = at + 1;
        return text.slice(start, at);
      }
      if (c === 92) return this.escapedString(start, at);
      // Control characters must be escaped; past the end of the text the code is NaN, which fails too.
      if (!(c >= 32)) throw GIVE_UP;
      at++;
    }
  }

  /** The rest of a string from its first backslash on: the plain runs between escapes are sliced whole. */
  private escapedString(start: number, backslash: number): string {
    const text = this.text;
    let out = "";
    let run = start;
    let at = backslash;
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 34) {
        this.at = at + 1;
        return out + text.slice(run, at);
      }
      if (c === 92) {
        out += text.slice(run, at);
        const escaped = text.charCodeAt(at + 1);
        const plain = ESCAPES[escaped];
        if (plain !== undefined) {
          out += plain;
          at += 2;
        } else if (escaped === 117) {
          const hex = text.slice(at + 2, at + 6);
          if (!HEX4.test(hex)) throw GIVE_UP;
          out += String.fromCharCode(Number.parseInt(hex, 16));
          at += 6;
        } else throw GIVE_UP;
        run = at;
        continue;
      }
      if (!(c >= 32)) throw GIVE_UP;
      at++;
    }
  }

  private number(): number | bigint | JsonFloat {
    NUMBER_LITERAL.lastIndex = this.at;
    const match = NUMBER_LITERAL.exec(this.text);
    if (!match) throw GIVE_UP;
    const literal = match[0];
    this.at += literal.length;
    if (INTEGER_LITERAL.test(literal)) {
      if (literal.length > MAX_INTEGER_DIGITS && literal.replace("-", "").length > MAX_INTEGER_DIGITS)
        throw GIVE_UP;
      return integerFromLiteral(literal);
    }
    const value = Number(literal);
    if (!Number.isFinite(value)) throw GIVE_UP;
    return Number.isInteger(value) || Object.is(value, -0) ? new JsonFloat(value) : value;
  }
}
