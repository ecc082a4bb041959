import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  canonicalJson,
  compareCodePoints,
  JsonFloat,
  type JsonValue,
  pythonFloatRepr,
  stringify,
} from "./json.ts";
import { parseJson } from "./parse-json.ts";

describe("pythonFloatRepr", () => {
  it("writes floats as Python's repr does", () => {
    const cases: [number, string][] = [
      [100, "100.0"],
      [0.7, "0.7"],
      [1e-5, "1e-05"],
      [2.5e-7, "2.5e-07"],
      [1e16, "1e+16"],
      [1e15, "1000000000000000.0"],
      [1.152921504606847e18, "1.152921504606847e+18"],
      [-0, "-0.0"],
      [0, "0.0"],
      [0.0001, "0.0001"],
      [123.456, "123.456"],
      [-1.5e-10, "-1.5e-10"],
      [5e-324, "5e-324"],
      [1.7976931348623157e308, "1.7976931348623157e+308"],
      [0.1 + 0.2, "0.30000000000000004"],
      [2 ** 53 + 2, "9007199254740994.0"],
    ];
    for (const [value, expected] of cases) assert.equal(pythonFloatRepr(value), expected, `repr(${value})`);
  });

  it("round-trips every finite double", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        assert.ok(Object.is(Number(pythonFloatRepr(x)), x));
      }),
    );
  });
});

describe("canonical JSON", () => {
  it("keeps int and float apart and writes big integers exactly", () => {
    const parsed = parseJson(
      '{"a": 100, "b": 100.0, "c": 12345678901234567890, "d": 1e-5, "e": 1E16, "f": -0.0, "g": 0.5}',
    );
    assert.ok(parsed.ok);
    assert.equal(
      canonicalJson(parsed.value),
      '{"a":100,"b":100.0,"c":12345678901234567890,"d":1e-05,"e":1e+16,"f":-0.0,"g":0.5}',
    );
  });

  it("sorts keys by code point, not UTF-16 unit", () => {
    const value = { "\u{1F600}": 1, "\uFF61": 2, a: 3, B: 4, "": 5 };
    assert.equal(canonicalJson(value), '{"":5,"B":4,"a":3,"｡":2,"😀":1}');
  });

  it("orders the members of objects of any size by code point", () => {
    const codePoints = (s: string) => [...s].map((c) => c.codePointAt(0) as number);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ unit: "grapheme", maxLength: 4 }), { maxLength: 40 }),
        (keys) => {
          const object = Object.fromEntries(keys.map((key, i) => [key, i]));
          const expected = [...keys].sort((a, b) => compareArrays(codePoints(a), codePoints(b)));
          // Compared as text: a parsed object would list integer-like keys first, whatever the JSON says.
          assert.equal(
            canonicalJson(object),
            `{${expected.map((key) => `${JSON.stringify(key)}:${object[key]}`).join(",")}}`,
          );
        },
      ),
    );
  });

  it("escapes control characters and writes non-ASCII raw", () => {
    assert.equal(canonicalJson({ k: 'é"\\\n\u0001\u007f\u2028' }), '{"k":"é\\"\\\\\\n\\u0001\u007f\u2028"}');
  });

  it("orders any two strings as code point sequences do", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        const expected = Math.sign(
          [...a].map((c) => c.codePointAt(0) as number).join(",") ===
            [...b].map((c) => c.codePointAt(0) as number).join(",")
            ? 0
            : compareArrays(
                [...a].map((c) => c.codePointAt(0) as number),
                [...b].map((c) => c.codePointAt(0) as number),
              ),
        );
        assert.equal(Math.sign(compareCodePoints(a, b)), expected);
      }),
    );
  });

  it("is the same after a parse/print round trip (lossless)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const first = canonicalJson(value as JsonValue);
        const reparsed = parseJson(first);
        assert.ok(reparsed.ok);
        assert.equal(canonicalJson(reparsed.value), first);
      }),
    );
  });

  it("indents like Python's json.dumps(indent=2, sort_keys=True)", () => {
    assert.equal(
      stringify({ b: [1, new JsonFloat(2)], a: {}, c: [] }, { indent: 2 }),
      '{\n  "a": {},\n  "b": [\n    1,\n    2.0\n  ],\n  "c": []\n}',
    );
  });

  it("refuses values JSON cannot carry", () => {
    assert.throws(() => canonicalJson({ x: Number.NaN }), /non-finite number NaN at \/x/);
    assert.throws(() => canonicalJson({ x: ["\ud800"] }), /unpaired UTF-16 surrogate at \/x\/0/);
  });
});

function compareArrays(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}
