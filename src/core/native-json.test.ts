import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { testEquivalence } from "../testing/equivalence.ts";
import { givesUpOrAgrees, jsonDocument, lossless } from "../testing/json-text.ts";
import { isJsonObject } from "./json.ts";
import { readJsonNative } from "./native-json.ts";

describe("readJsonNative", () => {
  testEquivalence({
    speedup: "json-readers",
    over: "JSON texts (repeated keys, integral floats, big integers): V8's JSON.parse reads as the lossless reader or gives up",
    inputs: jsonDocument(true),
    fast: (text) => readJsonNative(text, 64),
    plain: lossless,
    same: givesUpOrAgrees,
    runs: 5_000,
  });

  it("gives up where JSON.parse would read a number differently, on repeated keys and on deep nesting", () => {
    for (const text of [
      "[100.0]",
      "[1.50e1]",
      "[1.0000000000000000001]",
      "[-0]",
      "[-0.0]",
      "[1e400]",
      "[9007199254740993]",
      "[1234567890123456]",
      '{"a": 1, "a": 1}',
      '{"a": 1, "\\u0061": 2}',
      '{"a": {"b": 1, "b": 2}}',
      `${"[".repeat(5)}${"]".repeat(5)}`,
      "[1,]",
      "",
    ]) {
      assert.equal(readJsonNative(text, 4), undefined, text);
    }
  });

  it("reads plain documents: numbers of both kinds, escapes, __proto__, and strings that look like syntax", () => {
    assert.deepEqual(readJsonNative(`${"[".repeat(4)}${"]".repeat(4)}`, 4), [[[[]]]]);
    const value = readJsonNative(
      '{"amount": 22.72, "count": -12, "big": 123456789012345, "tiny": 2.5e-7, "__proto__": {"x": 1},' +
        ' "text": "a \\" : { [ 1.0 \\\\", "k\\u0061": [true, false, null]}',
      64,
    );
    assert.ok(isJsonObject(value));
    assert.deepEqual(Object.keys(value), ["amount", "count", "big", "tiny", "__proto__", "text", "ka"]);
    assert.deepEqual(Object.getOwnPropertyDescriptor(value, "__proto__")?.value, { x: 1 });
    assert.equal(value.text, 'a " : { [ 1.0 \\');
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
  });

  it("reads every example decision request, the documents it exists for", () => {
    for (const { request } of Object.values(EXAMPLE_REQUESTS)) {
      const text = JSON.stringify(request, null, 2);
      assert.deepEqual(readJsonNative(text, 64), request, text);
    }
  });
});
