import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { readJsonFast } from "./fast-json.ts";
import { readJsonLossless } from "./parse-json.ts";

/** The lossless reader's answer, or undefined when it refuses the text. */
function lossless(text: string): unknown {
  try {
    return readJsonLossless(text);
  } catch {
    return undefined;
  }
}

/** Number literals as clients write them: integral floats, exponents, big integers, negative zeros. */
const numberLiteral = fc.oneof(
  fc.integer().map(String),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
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

describe("readJsonFast", () => {
  it("reads what the lossless reader reads, and gives up on no document that has no repeated key", () => {
    fc.assert(
      fc.property(space, jsonText(false), space, (before, text, after) => {
        const document = `${before}${text}${after}`;
        const slow = lossless(document);
        // Documents the lossless reader refuses (a float overflowing to infinity) must be given up on too.
        assert.deepStrictEqual(readJsonFast(document, 64), slow, document);
      }),
      { numRuns: 3_000 },
    );
  });

  it("never accepts what the lossless reader refuses", () => {
    const broken = fc
      .tuple(
        jsonText(true),
        fc.nat(),
        fc.constantFrom("", "}", "]", ",", ":", '"', "\\", "\u0001", "x", "-", "."),
      )
      .map(([text, at, insert]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + insert + text.slice(i + (insert === "" ? 1 : 0));
      });
    fc.assert(
      fc.property(fc.oneof(broken, fc.string(), fc.json()), (text) => {
        const fast = readJsonFast(text, 64);
        if (fast !== undefined) assert.deepStrictEqual(fast, lossless(text), text);
      }),
      { numRuns: 5_000 },
    );
  });

  it("gives up on nesting deeper than the limit, repeated keys and non-finite numbers", () => {
    assert.equal(readJsonFast(`${"[".repeat(5)}${"]".repeat(5)}`, 4), undefined);
    assert.deepEqual(readJsonFast(`${"[".repeat(4)}${"]".repeat(4)}`, 4), [[[[]]]]);
    assert.equal(readJsonFast('{"a": 1, "a": 1}', 64), undefined);
    assert.equal(readJsonFast('{"a": 1, "\\u0061": 2}', 64), undefined);
    assert.deepEqual(readJsonFast('{"a": {"a": 1}}', 64), { a: { a: 1 } });
    assert.equal(readJsonFast("[1e400]", 64), undefined);
    assert.equal(readJsonFast('"a\u0001"', 64), undefined);
  });
});
