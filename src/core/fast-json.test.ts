import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { assertNeverAcceptsRefused, jsonText, lossless, space } from "../testing/json-text.ts";
import { readJsonFast } from "./fast-json.ts";

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

  it("never accepts what the lossless reader refuses", () => assertNeverAcceptsRefused(readJsonFast));

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
