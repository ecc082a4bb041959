import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { GENERATED_KERNEL, generateKernel } from "../../scripts/generate-kernel.ts";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import type { JsonObject } from "../core/json.ts";
import type { Label } from "../domain/memory-case.ts";
import { testEquivalence, withSpeedup } from "../testing/equivalence.ts";
import { fingerprints } from "../testing/fingerprints.ts";
import { arbitrate, DEFAULT_MEMORY_CONFIG, memorySnapshot } from "./arbitrate.ts";
import {
  DEFAULT_FINGERPRINT_CONFIG,
  fingerprint,
  fingerprintFromBase64,
  fingerprintToBase64,
  fnv1a,
  similarity,
} from "./fingerprint.ts";
import { type MemoryHit, MemoryIndex } from "./index.ts";

const base = EXAMPLE_REQUESTS["refund-small"]?.request as JsonObject;
const withEvidence = (evidence: JsonObject, amount = 20): JsonObject => ({
  ...base,
  action: { ...(base.action as JsonObject), amount: { value: amount, currency: "USD" } },
  evidence: { ...(base.evidence as JsonObject), ...evidence },
});

describe("fingerprints", () => {
  it("are the same bytes for the same request, on every machine (golden value)", () => {
    assert.equal(
      fingerprintToBase64(fingerprint(base)),
      "AAAAAADxAA8AAAAAAAAAAA8AAAAAAAAAHgAAAAAAAAAAAAAAAADiAADxAEoADwAAAAAAAADiAPHxAAAAAAAeAAAAAAAeAAAAAAAA4gAAAAAAAAAAAAAAAAAAAAAAAAAAAA8AAAAAAAAAAAAAAAAAAAAA4uIeAAAAAAAAAADiAAA=",
    );
    assert.deepEqual(fingerprintFromBase64(fingerprintToBase64(fingerprint(base))), fingerprint(base));
  });

  it("make close requests similar and different ones less so", () => {
    const a = fingerprint(withEvidence({}, 20));
    const closeAmount = similarity(a, fingerprint(withEvidence({}, 21)));
    const farAmount = similarity(a, fingerprint(withEvidence({}, 5000)));
    const otherCustomer = similarity(a, fingerprint(withEvidence({ customer_id: "C-10", order_id: "9" })));
    const otherAction = similarity(
      a,
      fingerprint({
        ...base,
        action: { type: "payments.send", intent: "x" },
        evidence: { beneficiary: "b" },
      }),
    );
    assert.ok(Math.abs(similarity(a, a) - 1) < 1e-6);
    assert.ok(closeAmount > farAmount, `${closeAmount} > ${farAmount}`);
    assert.ok(otherCustomer < 1 && otherCustomer > 0.5, String(otherCustomer));
    assert.ok(otherAction < 0.3, String(otherAction));
  });

  it("cannot be emptied by evidence keys that objects inherit (constructor, __proto__ …)", () => {
    for (const key of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const vector = fingerprint(
        JSON.parse(
          JSON.stringify({ ...base, evidence: { ...(base.evidence as JsonObject) } }).replace(
            '"evidence":{',
            `"evidence":{"${key}":"a",`,
          ),
        ),
      );
      assert.ok(
        vector.some((v) => v !== 0),
        key,
      );
      assert.ok(similarity(vector, fingerprint(base)) > 0.8, key);
    }
  });

  it("follow the policy's weights and ignored evidence", () => {
    const a = withEvidence({ note: "agent asked twice for the same refund" });
    const b = withEvidence({ note: "a completely different story here" });
    const withNotes = similarity(fingerprint(a), fingerprint(b));
    const ignoring = { ...DEFAULT_FINGERPRINT_CONFIG, ignoreEvidence: ["note"] };
    assert.ok(similarity(fingerprint(a, ignoring), fingerprint(b, ignoring)) > withNotes);
    const noAmount = {
      ...DEFAULT_FINGERPRINT_CONFIG,
      weights: { ...DEFAULT_FINGERPRINT_CONFIG.weights, amount: 0 },
    };
    assert.ok(
      Math.abs(
        similarity(
          fingerprint(withEvidence({}, 20), noAmount),
          fingerprint(withEvidence({}, 9000), noAmount),
        ) - 1,
      ) < 1e-6,
    );
  });
});

function hitOf(id: string, label: Label, score: number): MemoryHit {
  return { decisionId: id, label, score, vector: new Int8Array(128) };
}

describe("arbitration", () => {
  const policy = (verdict: "ALLOW" | "DENY" | "ESCALATE" | "ABSTAIN") => ({
    verdict,
    reasonCodes: ["P"],
    matchedRules: [],
  });
  const run = (
    verdict: "ALLOW" | "DENY" | "ESCALATE" | "ABSTAIN",
    failure: number,
    success: number,
    config = DEFAULT_MEMORY_CONFIG,
  ) =>
    arbitrate(
      policy(verdict),
      {
        failure: failure ? [hitOf("f", "failure", failure)] : [],
        success: success ? [hitOf("s", "success", success)] : [],
      },
      config,
    );

  it("blocks near failures, escalates fairly near ones, allows near successes, and never overrules DENY or ABSTAIN", () => {
    const cases: [Parameters<typeof run>[0], number, number, string, string | undefined][] = [
      ["ALLOW", 0.95, 0, "DENY", "FAILURE_MEMORY_SIMILAR_BLOCK"],
      ["ESCALATE", 0.9, 0, "DENY", "FAILURE_MEMORY_SIMILAR_BLOCK"],
      ["ALLOW", 0.8, 0, "ESCALATE", "FAILURE_MEMORY_SIMILAR_ESCALATE"],
      ["ESCALATE", 0.8, 0.99, "ESCALATE", undefined],
      ["ESCALATE", 0.5, 0.99, "ALLOW", "SUCCESS_MEMORY_SIMILAR_ALLOW"],
      ["ALLOW", 0.5, 0.99, "ALLOW", undefined],
      ["DENY", 0.99, 0, "DENY", undefined],
      ["ABSTAIN", 0, 0.99, "ABSTAIN", undefined],
      ["ALLOW", 0.74, 0.5, "ALLOW", undefined],
    ];
    for (const [verdict, failure, success, expected, code] of cases) {
      const result = run(verdict, failure, success);
      assert.equal(result.verdict, expected, `${verdict} f=${failure} s=${success}`);
      assert.deepEqual(result.memoryRule?.reason_codes, code ? [code] : undefined);
      if (code) assert.deepEqual(result.reasonCodes, ["P", code]);
    }
    assert.equal(
      run("ALLOW", 0.95, 0, { ...DEFAULT_MEMORY_CONFIG, blockVerdict: "ABSTAIN" }).verdict,
      "ABSTAIN",
    );
    const zeroThresholds = { ...DEFAULT_MEMORY_CONFIG, blockAt: 0, escalateAt: 0 };
    assert.equal(
      run("ALLOW", 0, 0.5, zeroThresholds).verdict,
      "ALLOW",
      "no failure neighbour, nothing to block with",
    );
  });

  it("writes a snapshot that names the projection, settings and hits, with its own digest", () => {
    const query = fingerprint(base);
    const snapshot = memorySnapshot(
      query,
      {
        failure: [hitOf("b", "failure", 0.5), hitOf("a", "failure", 0.5)],
        success: [hitOf("c", "success", 0.7)],
      },
      DEFAULT_MEMORY_CONFIG,
    );
    assert.equal(snapshot.schema_version, "memory_snapshot.v1");
    assert.deepEqual(
      (snapshot.hits as JsonObject[]).map((h) => h.decision_id),
      ["c", "a", "b"],
    );
    assert.match(String(snapshot.snapshot_digest), /^sha256:[0-9a-f]{64}$/);
  });
});

describe("the memory index", () => {
  it("never crosses tenants, scopes by action type, and lets the latest label win", () => {
    const index = new MemoryIndex();
    const vector = fingerprint(base);
    index.upsert({
      decisionId: "d1",
      tenantId: "acme",
      actionType: "support.refund",
      label: "failure",
      vector,
    });
    index.upsert({
      decisionId: "d2",
      tenantId: "globex",
      actionType: "support.refund",
      label: "failure",
      vector,
    });
    index.upsert({
      decisionId: "d3",
      tenantId: "acme",
      actionType: "payments.send",
      label: "success",
      vector,
    });
    const same = index.search("acme", "support.refund", vector, 5);
    assert.deepEqual(
      same.failure.map((h) => h.decisionId),
      ["d1"],
    );
    assert.deepEqual(same.success, []);
    assert.deepEqual(
      index.search("acme", undefined, vector, 5).success.map((h) => h.decisionId),
      ["d3"],
    );
    index.upsert({
      decisionId: "d1",
      tenantId: "acme",
      actionType: "support.refund",
      label: "success",
      vector,
    });
    const relabelled = index.search("acme", "support.refund", vector, 5);
    assert.deepEqual([relabelled.failure.length, relabelled.success.map((h) => h.decisionId)], [0, ["d1"]]);
    assert.equal(index.size, 3);
  });

  it("returns the k best of each label, best first, as an exhaustive comparison does", () => {
    const index = new MemoryIndex();
    const vectors = Array.from({ length: 300 }, (_, i) =>
      fingerprint(withEvidence({ chargeback_risk: (i % 37) / 40, customer_age_days: i }, 5 + (i % 50))),
    );
    for (const [i, vector] of vectors.entries()) {
      const decisionId = `d${String(i).padStart(3, "0")}`;
      index.upsert({
        decisionId,
        tenantId: "t",
        actionType: "support.refund",
        label: i % 3 === 0 ? "success" : "failure",
        vector,
      });
    }
    const query = fingerprint(withEvidence({ chargeback_risk: 0.3, customer_age_days: 77 }, 23));
    const found = index.search("t", "support.refund", query, 5);
    const expected = vectors
      .map((vector, i) => ({
        id: `d${String(i).padStart(3, "0")}`,
        label: i % 3 === 0 ? "success" : "failure",
        score: similarity(query, vector),
      }))
      .filter((h) => h.label === "failure")
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
      .slice(0, 5);
    assert.deepEqual(
      found.failure.map((h) => h.decisionId),
      expected.map((h) => h.id),
    );
    for (const [i, hit] of found.failure.entries())
      assert.ok(Math.abs(hit.score - (expected[i]?.score ?? 0)) < 1e-9);
  });
});

describe("the memory index's storage", () => {
  /** A deterministic pseudo-random fingerprint with a few non-zero coordinates, like a request's. */
  const vectorOf = (seed: number): Int8Array => {
    const vector = new Int8Array(128);
    let state = seed * 2654435761;
    for (let i = 0; i < 12; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      vector[state % 128] = ((state >>> 8) % 255) - 127;
    }
    return vector;
  };
  const exhaustive = (
    cases: Map<string, { label: Label; vector: Int8Array }>,
    query: Int8Array,
    label: Label,
  ) =>
    [...cases]
      .filter(([, c]) => c.label === label)
      .map(([id, c]) => ({ id, score: similarity(query, c.vector) }))
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
      .slice(0, 5)
      .map((hit) => hit.id);

  it("stays exact while scopes grow in turns, move, are compacted and relabelled, and when loaded at once", () => {
    const scopes = ["a", "b", "c", "d", "e", "f", "g"];
    const grown = new MemoryIndex();
    const truth = new Map(
      scopes.map((scope) => [scope, new Map<string, { label: Label; vector: Int8Array }>()]),
    );
    // Scopes take turns, so that each outgrows its region while the others hold theirs: regions move and the
    // garbage they leave is compacted away several times over.
    for (let i = 0; i < 3000; i++) {
      const scope = scopes[i % scopes.length] as string;
      const decisionId = `d${String(i).padStart(5, "0")}`;
      const memoryCase = { label: (i % 4 === 0 ? "failure" : "success") as Label, vector: vectorOf(i) };
      grown.upsert({ decisionId, tenantId: "t", actionType: scope, ...memoryCase });
      truth.get(scope)?.set(decisionId, memoryCase);
    }
    for (let i = 0; i < 3000; i += 11) {
      const scope = scopes[i % scopes.length] as string;
      const decisionId = `d${String(i).padStart(5, "0")}`;
      const relabelled = { label: "failure" as Label, vector: vectorOf(i + 7) };
      grown.upsert({ decisionId, tenantId: "t", actionType: scope, ...relabelled });
      truth.get(scope)?.set(decisionId, relabelled);
    }
    const loaded = new MemoryIndex();
    loaded.reserve(
      scopes.map((scope) => ({ tenantId: "t", actionType: scope, count: truth.get(scope)?.size ?? 0 })),
    );
    for (const [scope, cases] of truth)
      for (const [decisionId, c] of cases)
        loaded.load({ decisionId, tenantId: "t", actionType: scope, ...c });
    assert.equal(grown.size, 3000);
    assert.equal(loaded.size, 3000);
    for (let q = 0; q < 20; q++) {
      const query = vectorOf(100_000 + q);
      const scope = scopes[q % scopes.length] as string;
      const cases = truth.get(scope) as Map<string, { label: Label; vector: Int8Array }>;
      for (const index of [grown, loaded]) {
        const found = index.search("t", scope, query, 5);
        for (const label of ["failure", "success"] as const) {
          assert.deepEqual(
            found[label].map((hit) => hit.decisionId),
            exhaustive(cases, query, label),
          );
          for (const hit of found[label]) assert.deepEqual(hit.vector, cases.get(hit.decisionId)?.vector);
        }
      }
    }
  });

  interface Search {
    readonly pool: readonly Int8Array[];
    readonly cases: readonly { id: number; scope: string; label: Label; pick: number }[];
    readonly query: Int8Array;
    readonly k: number;
    readonly scope: string | undefined;
  }
  /**
   * Cases drawn from a few fingerprints, so that many score the same and only their ids order them, in two
   * scopes, some relabelled; a query searched in one scope or across both.
   */
  const searches: fc.Arbitrary<Search> = fc.record({
    pool: fc.array(fingerprints, { minLength: 1, maxLength: 6 }),
    cases: fc.array(
      fc.record({
        id: fc.nat(80),
        scope: fc.constantFrom("a", "b"),
        label: fc.constantFrom<Label>("failure", "success"),
        pick: fc.nat(),
      }),
      { maxLength: 120 },
    ),
    query: fingerprints,
    k: fc.integer({ min: 1, max: 8 }),
    scope: fc.constantFrom("a", undefined),
  });
  const search = ({ pool, cases, query, k, scope }: Search) => {
    const index = new MemoryIndex();
    for (const memoryCase of cases)
      index.upsert({
        decisionId: `d${String(memoryCase.id).padStart(2, "0")}`,
        tenantId: "t",
        actionType: memoryCase.scope,
        label: memoryCase.label,
        vector: pool[memoryCase.pick % pool.length] as Int8Array,
      });
    return index.search("t", scope, query, k);
  };

  testEquivalence({
    speedup: "similarity-kernel",
    over: "generated fingerprints with many ties: the same hits, scores and order",
    inputs: searches,
    fast: withSpeedup("similarity-kernel", true, search),
    plain: withSpeedup("similarity-kernel", false, search),
    runs: 300,
  });

  it("runs the committed kernel, assembled from its source (run `npm run generate` after editing the .wat)", async () => {
    assert.equal(readFileSync(GENERATED_KERNEL, "utf8"), await generateKernel());
  });
});

describe("fnv1a", () => {
  it("hashes the UTF-8 bytes, as over TextEncoder's output", () => {
    const reference = (text: string) => {
      let hash = 0x811c9dc5;
      for (const byte of new TextEncoder().encode(text)) hash = Math.imul(hash ^ byte, 0x01000193);
      return hash >>> 0;
    };
    for (const text of [
      "",
      "action_type=support.refund",
      "amount≈41",
      "é",
      "日本",
      "😀x",
      "evidence.note~größe",
    ]) {
      assert.equal(fnv1a(text), reference(text), text);
    }
  });
});
