import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { testEquivalence, withSpeedup } from "../testing/equivalence.ts";
import { anyJsonText, givesUpOrAgrees, jsonDocument, lossless } from "../testing/json-text.ts";
import { JsonFloat } from "./json.ts";
import { FAST_JSON_READERS, parseJson, parseJsonBytes } from "./parse-json.ts";

describe("parseJson", () => {
  const parse = ([text, maxDepth]: [string, number]) => parseJson(text, { maxDepth, file: "doc.json" });

  testEquivalence({
    speedup: "json-readers",
    over: "broken, random and valid texts at two depth limits: the same values, the same problems",
    inputs: fc.tuple(fc.oneof(anyJsonText, jsonDocument(true)), fc.constantFrom(64, 3)),
    fast: withSpeedup("json-readers", true, parse),
    plain: withSpeedup("json-readers", false, parse),
    runs: 3_000,
  });

  for (const reader of FAST_JSON_READERS)
    testEquivalence({
      speedup: "json-readers",
      over: `broken, random and valid texts: the ${reader.name} reader never accepts what the lossless one refuses`,
      inputs: anyJsonText,
      fast: (text) => reader.read(text, 64),
      plain: lossless,
      same: givesUpOrAgrees,
      runs: 5_000,
    });

  it("parses integers, floats and big integers losslessly", () => {
    const parsed = parseJson("[1, 1.0, 1.5, 12345678901234567890, -0, -0.0, 1e2]");
    assert.ok(parsed.ok);
    const [a, b, c, d, e, f, g] = parsed.value as unknown[];
    assert.equal(a, 1);
    assert.ok(b instanceof JsonFloat && b.value === 1);
    assert.equal(c, 1.5);
    assert.equal(d, 12345678901234567890n);
    assert.ok(Object.is(e, 0));
    assert.ok(f instanceof JsonFloat && Object.is(f.value, -0));
    assert.ok(g instanceof JsonFloat && g.value === 100);
  });

  it("points at syntax errors with line and column", () => {
    const parsed = parseJson('{\n  "a": 1,\n  "b": tru\n}', { file: "req.json" });
    assert.ok(!parsed.ok);
    assert.equal(parsed.kind, "invalid_json");
    assert.deepEqual(
      [parsed.problems[0]?.file, parsed.problems[0]?.line, parsed.problems[0]?.column],
      ["req.json", 3, 8],
    );
  });

  it("refuses duplicate keys, non-finite numbers, lone surrogates, excess size and depth", () => {
    const cases: [string, string, object?][] = [
      ['{"a": 1, "a": 2}', "duplicate_key"],
      ['{"a": 1e400}', "non_finite_number"],
      ['{"a": "\\ud800"}', "invalid_string"],
      [`{"a": "${"x".repeat(100)}"}`, "too_large", { maxBytes: 50 }],
      [`${"[".repeat(100)}${"]".repeat(100)}`, "too_deep"],
    ];
    for (const [text, code, options] of cases) {
      const parsed = parseJson(text, options);
      assert.ok(!parsed.ok, text);
      assert.equal(parsed.problems[0]?.code, code, text);
    }
  });

  it("shows only the start of a long out-of-range number in its message", () => {
    const parsed = parseJson(`{"f": 1${"0".repeat(500_000)}.5}`);
    assert.ok(!parsed.ok);
    assert.equal(
      parsed.problems[0]?.message,
      `number 1${"0".repeat(31)}… (500003 characters) is out of range (non-finite numbers are not allowed)`,
    );
  });

  it("refuses integers of more than 4,300 digits, naming each member, with the fast readers on and off", () => {
    const long = "9".repeat(4301);
    const text = `{"evidence": {"ok": ${"1".repeat(4300)}, "big": ${long}, "list": [1, -${long}]}, "f": 1${"0".repeat(5000)}.5e-5000}`;
    for (const on of [true, false]) {
      const parsed = withSpeedup("json-readers", on, (document: string) => parseJson(document))(text);
      assert.ok(!parsed.ok, `json-readers ${on ? "on" : "off"}`);
      assert.deepEqual(
        parsed.problems.map((problem) => [problem.code, problem.pointer, problem.message]),
        [
          ["integer_too_long", "/evidence/big", "integer of 4301 digits, over the limit of 4300 digits"],
          ["integer_too_long", "/evidence/list/1", "integer of 4301 digits, over the limit of 4300 digits"],
        ],
      );
      const kept = withSpeedup("json-readers", on, (document: string) => parseJson(document))(
        `{"big": -${"1".repeat(4300)}, "f": 1${"0".repeat(5000)}.5e-5000}`,
      );
      assert.ok(kept.ok && typeof (kept.value as { big: unknown }).big === "bigint");
    }
  });

  it("finds unpaired surrogates wherever they come from: escapes of either case, raw text, keys", () => {
    const refused: [string, string][] = [
      ['{"a": ["x", "\\uDC00"]}', "/a/1"],
      ['{"\\ud800": 1}', "/\ud800"],
      ['{"a": {"b": "\ud800"}}', "/a/b"],
    ];
    for (const [text, pointer] of refused) {
      const parsed = parseJson(text);
      assert.ok(!parsed.ok, text);
      assert.deepEqual([parsed.problems[0]?.code, parsed.problems[0]?.pointer], ["invalid_string", pointer]);
    }
    assert.ok(parseJson('{"a": "\\ud83d\\ude00 \\\\ud800"}').ok, "a pair, and an escaped backslash");
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.boolean(), (text, escaped) => {
        const document = escaped
          ? JSON.stringify({ k: text })
          : `{"k": ${JSON.stringify(text).replace(/\\u(d[89a-f][0-9a-f]{2})/g, (_, hex) => String.fromCharCode(Number.parseInt(hex, 16)))}}`;
        assert.equal(parseJson(document).ok, text.isWellFormed(), document);
      }),
      { numRuns: 500 },
    );
  });

  it("refuses invalid UTF-8 instead of replacing it", () => {
    const parsed = parseJsonBytes(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]));
    assert.ok(!parsed.ok);
    assert.equal(parsed.problems[0]?.code, "invalid_utf8");
  });

  it("never throws, whatever the input", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.string({ unit: "binary" })), (text) => {
        const parsed = parseJson(text);
        assert.ok(parsed.ok || parsed.problems.length > 0);
      }),
      { numRuns: 2_000 },
    );
  });
});
