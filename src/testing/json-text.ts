/**
 * JSON texts for the equivalence tests of the readers behind parseJson (src/testing/equivalence.ts): every
 * fast reader must give the lossless reader's value or give up, never a value of its own.
 */
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { readJsonLossless } from "../core/parse-json.ts";

/** The lossless reader's answer, or undefined when it refuses the text. */
export function lossless(text: string): unknown {
  try {
    return readJsonLossless(text);
  } catch {
    return undefined;
  }
}

/**
 * Number literals as clients write them: integral floats, exponents, big integers, negative zeros, and
 * integers at and just over the digit limit.
 */
const numberLiteral = fc.oneof(
  fc.integer().map(String),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc
    .constantFrom(4300, 4301)
    .chain((digits) => fc.constantFrom("", "-").map((sign) => `${sign}${"7".repeat(digits)}`)),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.integer({ min: -1000, max: 1000 }).map((n) => `${n}.0`),
  fc.constantFrom("-0", "-0.0", "0.0", "1e5", "1E+5", "2.5e-7", "1e400", "-1e-400", "0.10"),
);

/** Strings with escapes of every kind, raw non-ASCII, and surrogates escaped or raw (paired or not). */
const stringLiteral = fc.oneof(
  fc.string({ unit: "binary" }).map((text) => JSON.stringify(text)),
  fc
    .string()
    .map((text) =>
      JSON.stringify(text).replace(/[a-z]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
    ),
  fc.constantFrom('"\\/"', '"\\ud83d\\ude00"', '"\\uD800"', '"é\\n\\t\\"\\\\"', '"\u{1F600}"'),
);

const space = fc.constantFrom("", " ", "\n  ", "\t", "\r\n");

const KEYS = ['"a"', '"b"', '"__proto__"', '"k\\u0061"', '""'];

/** JSON texts built from those literals, with whitespace between tokens; keys repeat only when asked. */
function jsonText(repeatKeys: boolean): fc.Arbitrary<string> {
  return fc.letrec<{ value: string }>((tie) => {
    const member = fc.tuple(fc.constantFrom(...KEYS), space, tie("value"));
    return {
      value: fc.oneof(
        { depthSize: "small" },
        numberLiteral,
        stringLiteral,
        fc.constantFrom("true", "false", "null"),
        fc
          .array(fc.tuple(space, tie("value"), space), { maxLength: 5 })
          .map((items) => `[${items.map((item) => item.join("")).join(",")}]`),
        (repeatKeys
          ? fc.array(member, { maxLength: 5 })
          : fc.uniqueArray(member, { maxLength: 5, selector: ([key]) => key })
        ).map((members) => `{${members.map(([key, gap, value]) => `${key}${gap}:${value}`).join(",")}}`),
      ),
    };
  }).value;
}

/** JSON texts with one character inserted, replaced or removed somewhere: mostly broken, sometimes not. */
const mutatedJsonText: fc.Arbitrary<string> = fc
  .tuple(
    jsonText(true),
    fc.nat(),
    fc.constantFrom("", "}", "]", ",", ":", '"', "\\", "\u0001", "x", "-", "."),
  )
  .map(([text, at, insert]) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + insert + text.slice(i + (insert === "" ? 1 : 0));
  });

/** Broken, random and valid texts: what a reader must refuse unless the lossless reader reads it. */
export const anyJsonText: fc.Arbitrary<string> = fc.oneof(mutatedJsonText, fc.string(), fc.json());

/** JSON texts as {@link jsonText} makes them, with whitespace before and after. */
export function jsonDocument(repeatKeys: boolean): fc.Arbitrary<string> {
  return fc.tuple(space, jsonText(repeatKeys), space).map((parts) => parts.join(""));
}

/** Whether a fast reader's answer is the lossless reader's, or the reader gave up. */
export function givesUpOrAgrees(read: unknown, lossless: unknown): boolean {
  return read === undefined || isDeepStrictEqual(read, lossless);
}
