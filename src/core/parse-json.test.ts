import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { JsonFloat } from "./json.ts";
import { parseJson, parseJsonBytes } from "./parse-json.ts";

describe("parseJson", () => {
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
