import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { STARTER_POLICY, STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import { canonicalJson, type JsonObject, type JsonValue } from "../core/json.ts";
import { parseJson } from "../core/parse-json.ts";
import { loadPolicy, type Policy } from "../policy/policy.ts";
import { decide, inputsDigest } from "./decide.ts";
import { deriveFeatures } from "./normalize.ts";

const FIXTURES = join(import.meta.dirname, "../../fixtures/compat/reference-vectors.json");

interface Vectors {
  starter_policy_hash: string;
  inputs_digest_as_given: { request: JsonObject; expected_digest: string };
  evaluation: {
    name: string;
    request: JsonObject;
    expect: { verdict: string; reason_codes: string[]; obligations_titles?: string[] };
    reference_record: JsonObject & { inputs_digest: string; request: JsonObject };
  }[];
}

function vectors(): Vectors {
  const parsed = parseJson(readFileSync(FIXTURES, "utf8"), { maxBytes: 10_000_000 });
  assert.ok(parsed.ok);
  return parsed.value as unknown as Vectors;
}

function starter(): Policy {
  const loaded = loadPolicy(STARTER_POLICY);
  assert.ok(loaded.ok);
  return loaded.value;
}

const SOME_REQUEST = {
  schema_version: "decision_request.v1",
  subject: { type: "agent", id: "a" },
  action: { type: "support.refund", intent: "x", amount: { value: 10, currency: "USD" } },
  context: {
    mode: "inline",
    digest: `sha256:${"a".repeat(64)}`,
    inline: { Email: "x@y", note: "keep", PASSWORD: "p" },
  },
};

describe("compatibility with Lumyn 1.3.6", () => {
  it("gives the starter policy the reference policy_hash", () => {
    assert.equal(starter().hash, vectors().starter_policy_hash);
    assert.equal(STARTER_POLICY_HASH, vectors().starter_policy_hash);
  });

  it("computes the reference inputs_digest over the request as given", () => {
    const { request, expected_digest } = vectors().inputs_digest_as_given;
    assert.equal(inputsDigest(request, deriveFeatures(request as never)), expected_digest);
  });

  for (const vector of vectors().evaluation) {
    it(`decides ${vector.name} as the reference does, byte for byte where it counts`, () => {
      const decided = decide(vector.request, starter());
      assert.ok(decided.ok);
      const record = decided.value.record;
      const reference = vector.reference_record;
      assert.equal(record.verdict, vector.expect.verdict);
      assert.deepEqual(record.reason_codes, vector.expect.reason_codes);
      if (vector.expect.obligations_titles)
        assert.deepEqual(
          record.obligations.map((o) => o.title),
          vector.expect.obligations_titles,
        );
      assert.equal(record.determinism.inputs_digest, reference.inputs_digest);
      for (const key of ["request", "matched_rules", "queries", "obligations", "policy"] as const) {
        assert.equal(
          canonicalJson(record[key] as JsonValue),
          canonicalJson(reference[key] as JsonValue),
          key,
        );
      }
    });
  }
});

describe("decide", () => {
  it("is deterministic apart from decision_id and created_at", () => {
    const policy = starter();
    const a = decide(SOME_REQUEST, policy, { decisionId: "01A", now: new Date(0) });
    const b = decide(structuredClone(SOME_REQUEST), policy, { decisionId: "01A", now: new Date(0) });
    assert.ok(a.ok && b.ok);
    assert.equal(canonicalJson(a.value.record), canonicalJson(b.value.record));
  });

  it("redacts context.inline before storing and digesting, recording what was removed", () => {
    const policy = starter();
    const cases: [string | undefined, string[], JsonObject][] = [
      [undefined, ["/context/inline/Email", "/context/inline/PASSWORD"], { note: "keep" }],
      ["strict", ["/context/inline/Email", "/context/inline/PASSWORD", "/context/inline/note"], {}],
      ["off", [], SOME_REQUEST.context.inline],
    ];
    for (const [profile, removed, inline] of cases) {
      const request = profile
        ? { ...SOME_REQUEST, context: { ...SOME_REQUEST.context, redaction: { profile } } }
        : SOME_REQUEST;
      const decided = decide(request, policy);
      assert.ok(decided.ok);
      const context = decided.value.record.request.context as JsonObject;
      assert.deepEqual(context.redaction, { profile: profile ?? "default", fields_removed: removed });
      assert.deepEqual(context.inline, inline);
      assert.equal(
        decided.value.record.determinism.inputs_digest,
        inputsDigest(decided.value.record.request, deriveFeatures(decided.value.record.request)),
      );
    }
    assert.equal(
      (SOME_REQUEST.context.inline as JsonObject).Email,
      "x@y",
      "the caller's request is not modified",
    );
  });

  it("returns every request problem with its JSON pointer, never throwing", () => {
    const decided = decide(
      {
        schema_version: "decision_request.v1",
        subject: { type: "robot", id: "" },
        action: { type: "Bad Type", intnt: "x" },
        context: {},
      },
      starter(),
    );
    assert.ok(!decided.ok);
    assert.equal(decided.kind, "invalid_request");
    const pointers = decided.problems.map((p) => p.pointer).sort();
    assert.deepEqual(pointers, [
      "/action/intent",
      "/action/intnt",
      "/action/type",
      "/context/digest",
      "/context/mode",
      "/subject/id",
      "/subject/type",
    ]);
    const unknown = decided.problems.find((p) => p.pointer === "/action/intnt");
    assert.equal(unknown?.hint, "did you mean 'intent'?");
  });

  it("accepts single-segment action types and refuses values JSON cannot carry", () => {
    const policy = starter();
    assert.ok(decide({ ...SOME_REQUEST, action: { type: "refund", intent: "x" } }, policy).ok);
    const bad = decide({ ...SOME_REQUEST, evidence: { x: Number.POSITIVE_INFINITY } } as never, policy);
    assert.ok(!bad.ok);
    assert.deepEqual(
      bad.problems.map((p) => [p.pointer, p.code]),
      [["/evidence/x", "non_finite_number"]],
    );
    // Python writes no integer of more than 4,300 digits: a record holding one could never be replayed there.
    const digits = decide({ ...SOME_REQUEST, evidence: { ok: 10n ** 4299n, big: -(10n ** 4300n) } }, policy);
    assert.ok(!digits.ok);
    assert.deepEqual(
      digits.problems.map((p) => [p.pointer, p.code]),
      [["/evidence/big", "integer_too_long"]],
    );
  });

  it("refuses amounts too large to compare instead of writing an infinite amount_usd", () => {
    const policy = starter();
    const huge = decide(
      {
        ...SOME_REQUEST,
        action: { type: "support.refund", intent: "x", amount: { value: 10n ** 400n, currency: "USD" } },
      },
      policy,
    );
    assert.ok(!huge.ok);
    assert.deepEqual(
      huge.problems.map((p) => [p.code, p.pointer]),
      [["out_of_range", "/action/amount/value"]],
    );
    const overflow = decide(
      {
        ...SOME_REQUEST,
        action: { type: "support.refund", intent: "x", amount: { value: 1e308, currency: "EUR" } },
        evidence: { fx_rate_to_usd: 10 },
      },
      policy,
    );
    assert.ok(!overflow.ok);
    assert.deepEqual(
      overflow.problems.map((p) => [p.code, p.pointer]),
      [["out_of_range", "/evidence/fx_rate_to_usd"]],
    );
  });

  it("never throws on fuzzed requests", () => {
    const policy = starter();
    const requestLike = fc.record(
      {
        schema_version: fc.constantFrom("decision_request.v1", "v0", 1),
        subject: fc.anything(),
        action: fc.record(
          {
            type: fc.oneof(fc.string(), fc.constant("support.refund")),
            intent: fc.anything(),
            amount: fc.anything(),
          },
          { requiredKeys: [] },
        ),
        evidence: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.anything()),
        context: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(requestLike, fc.jsonValue()), (value) => {
        const decided = decide(value as JsonValue, policy);
        assert.ok(decided.ok || decided.problems.length > 0);
      }),
      { numRuns: 1_000 },
    );
  });
});
