import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { testEquivalence } from "../testing/equivalence.ts";
import { jsonDocument, lossless } from "../testing/json-text.ts";
import { readJsonFast } from "./fast-json.ts";

describe("readJsonFast", () => {
  // Documents the lossless reader refuses (a float overflowing to infinity) must be given up on too.
  testEquivalence({
    speedup: "json-readers",
    over: "JSON texts without repeated keys: the fast reader reads every one as the lossless reader does",
    inputs: jsonDocument(false),
    fast: (text) => readJsonFast(text, 64),
    plain: lossless,
    runs: 3_000,
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
