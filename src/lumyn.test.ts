import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "./assets/example-requests.ts";
import { STARTER_POLICY } from "./assets/starter-policy.ts";
import type { JsonObject, JsonValue } from "./core/json.ts";
import { Lumyn } from "./lumyn.ts";
import { fingerprint, similarity } from "./memory/fingerprint.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-service-"));
after(() => rmSync(root, { recursive: true, force: true }));
let count = 0;

async function open(options: { policyPath?: string; busyTimeoutMs?: number; workspace?: string } = {}) {
  const opened = await Lumyn.open({
    workspace: options.workspace ?? join(root, `ws-${++count}`),
    ...(options.policyPath ? { policyPath: options.policyPath } : {}),
    store: { busyTimeoutMs: options.busyTimeoutMs ?? 5_000 },
  });
  assert.ok(opened.ok, opened.ok ? "" : JSON.stringify(opened.problems));
  return opened.value;
}

const small = EXAMPLE_REQUESTS["refund-small"]?.request as JsonObject;

describe("Lumyn (decide with the embedded store)", () => {
  it("creates a missing workspace with the starter policy and stores the record before answering", async () => {
    const lumyn = await open();
    const decided = await lumyn.decide(small as JsonValue);
    assert.ok(decided.ok);
    assert.equal(decided.value.status, "stored");
    assert.equal(decided.value.record.verdict, "ALLOW");
    // Another connection sees the committed row as soon as decide has answered.
    const db = new DatabaseSync(lumyn.workspace.databasePath, { readOnly: true });
    const row = db
      .prepare("SELECT verdict, policy_hash FROM decisions WHERE decision_id = ?")
      .get(decided.value.record.decision_id);
    db.close();
    assert.deepEqual({ ...row }, { verdict: "ALLOW", policy_hash: lumyn.policy.hash });
    await lumyn.close();
  });

  it("returns the stored record for a repeated request_id and refuses a different request under it", async () => {
    const lumyn = await open();
    const first = await lumyn.decide(small as JsonValue);
    const again = await lumyn.decide(structuredClone(small) as JsonValue);
    assert.ok(first.ok && again.ok);
    assert.equal(again.value.status, "duplicate");
    assert.equal(again.value.record.decision_id, first.value.record.decision_id);
    const different = await lumyn.decide({
      ...small,
      evidence: { ...(small.evidence as JsonObject), chargeback_risk: 0.9 },
    } as JsonValue);
    assert.ok(!different.ok);
    assert.equal(different.kind, "conflict");
    assert.equal(different.problems[0]?.pointer, "/request_id");
    assert.equal((await lumyn.stats({ by: "verdict" })).total, 1);
    await lumyn.close();
  });

  it("fails closed when the store cannot be written: ABSTAIN, STORAGE_UNAVAILABLE, nothing stored", async () => {
    const lumyn = await open({ busyTimeoutMs: 50 });
    await lumyn.decide({ ...small, request_id: "warm-up" } as JsonValue);
    const locker = new DatabaseSync(lumyn.workspace.databasePath);
    locker.exec("BEGIN EXCLUSIVE");
    let decided: Awaited<ReturnType<Lumyn["decide"]>>;
    try {
      decided = await lumyn.decide({ ...small, request_id: "while-locked" } as JsonValue);
    } finally {
      locker.exec("ROLLBACK");
      locker.close();
    }
    assert.ok(decided.ok);
    assert.equal(decided.value.status, "unavailable");
    assert.equal(decided.value.record.verdict, "ABSTAIN");
    assert.deepEqual(decided.value.record.reason_codes, ["STORAGE_UNAVAILABLE"]);
    assert.deepEqual(decided.value.record.matched_rules, []);
    assert.equal((await lumyn.show(decided.value.record.decision_id)).ok, false);
    assert.equal((await lumyn.stats({ by: "verdict" })).total, 1);
    await lumyn.close();
  });

  it("explains an old decision with the policy it was decided under, even after the policy changed", async () => {
    const workspace = join(root, "policy-change");
    const before = await open({ workspace });
    const decided = await before.decide({ ...small, request_id: "before-change" } as JsonValue);
    assert.ok(decided.ok);
    await before.close();

    const stricter = join(root, "stricter.yml");
    writeFileSync(
      stricter,
      STARTER_POLICY.replace("amount_usd_lte: 25", "amount_usd_lte: 5").replace(
        'policy_version: "1.0.0"',
        'policy_version: "1.1.0"',
      ),
    );
    const after = await open({ workspace, policyPath: stricter });
    assert.notEqual(after.policy.hash, decided.value.record.policy.policy_hash);
    const explained = await after.explain(decided.value.record.decision_id);
    assert.ok(explained.ok);
    assert.equal(explained.value.explanation.policy.policy_hash, decided.value.record.policy.policy_hash);
    assert.equal(explained.value.explanation.verdict, "ALLOW");
    const r050 = explained.value.explanation.rules.find((trace) => trace.rule.id === "R050");
    assert.ok(r050?.matched);
    const amount = r050.ifAll?.[0]?.conditions[0];
    assert.equal(amount?.condition.key, "amount_usd_lte");
    assert.equal(amount?.actual, 20);
    assert.equal((await after.explain("01UNKNOWN")).ok, false);
    await after.close();
  });

  it("remembers labelled outcomes: the next similar decision is blocked, at once and after a restart", async () => {
    const workspace = join(root, "memory");
    const lumyn = await open({ workspace });
    const first = await lumyn.decide({ ...small, request_id: "m-1" } as JsonValue);
    assert.ok(first.ok && first.value.record.verdict === "ALLOW");
    const labelled = await lumyn.label(first.value.record.decision_id, "failure", {
      summary: "chargeback fraud",
      severity: 5,
    });
    assert.ok(labelled.ok);
    const second = await lumyn.decide({ ...small, request_id: "m-2" } as JsonValue);
    assert.ok(second.ok);
    const record = second.value.record;
    assert.equal(record.verdict, "DENY");
    assert.deepEqual(record.reason_codes, ["REFUND_SMALL_LOW_RISK", "FAILURE_MEMORY_SIMILAR_BLOCK"]);
    assert.deepEqual(record.matched_rules.at(-1), {
      rule_id: "MEMORY",
      stage: "MEMORY",
      effect: "DENY",
      reason_codes: ["FAILURE_MEMORY_SIMILAR_BLOCK"],
    });
    const failure = record.risk_signals.failure_similarity as JsonObject;
    assert.deepEqual(
      (failure.top_k as JsonObject[]).map((hit) => [hit.id, hit.label, hit.summary]),
      [[first.value.record.decision_id, "failure", "chargeback fraud"]],
    );
    assert.deepEqual(record.risk_signals.failure_similarity_top_k, [first.value.record.decision_id]);
    assert.equal((record.determinism.memory as JsonObject).schema_version, "memory_snapshot.v1");
    const other = await lumyn.decide({
      ...small,
      request_id: "m-3",
      tenant: { tenant_id: "globex" },
    } as JsonValue);
    assert.ok(other.ok && other.value.record.verdict === "ALLOW", "memory never crosses tenants");
    assert.equal((await lumyn.label("01NOPE", "failure")).ok, false);
    const bad = await lumyn.label(first.value.record.decision_id, "fraud");
    assert.ok(!bad.ok && bad.kind === "invalid_request");
    await lumyn.close();

    const reopened = await open({ workspace });
    const third = await reopened.decide({ ...small, request_id: "m-4" } as JsonValue);
    assert.ok(third.ok && third.value.record.verdict === "DENY", "labels are loaded at start-up");
    await reopened.close();
  });

  it("fingerprints free-text evidence with a text embedder when given one, and names it in the projection", async () => {
    // A stand-in for an embedding model: texts about a stolen card land on the same concept.
    const concepts = [/stolen|taken|robbed/, /refund|money back/];
    const embedded: string[][] = [];
    const textEmbedder = {
      id: "concepts@1",
      async embed(texts: readonly string[]) {
        embedded.push([...texts]);
        return texts.map((text) => Float32Array.from(concepts, (concept) => (concept.test(text) ? 1 : 0)));
      },
    };
    const opened = await Lumyn.open({ workspace: join(root, "embedder"), textEmbedder });
    assert.ok(opened.ok);
    const lumyn = opened.value;
    const withNote = (requestId: string, note: string) =>
      ({
        ...small,
        request_id: requestId,
        evidence: { ...(small.evidence as JsonObject), note },
      }) as JsonValue;
    const first = await lumyn.decide(withNote("e-1", "customer says the card was stolen last night"));
    assert.ok(first.ok);
    assert.ok((await lumyn.label(first.value.record.decision_id, "failure")).ok);
    const second = await lumyn.decide(withNote("e-2", "my card got taken by someone at the mall"));
    assert.ok(second.ok);
    const snapshot = second.value.record.determinism.memory as JsonObject;
    assert.deepEqual(snapshot.projection, { model: "lumyn-fingerprint-v1+concepts@1", dimensions: 128 });
    assert.equal(second.value.record.verdict, "DENY");
    const score = Number(second.value.record.risk_signals.failure_similarity_score);
    assert.ok(score > 0.999_999, `different words, same meaning: the same fingerprint (similarity ${score})`);
    const byWords = similarity(
      fingerprint(withNote("e-1", "customer says the card was stolen last night") as JsonObject),
      fingerprint(withNote("e-2", "my card got taken by someone at the mall") as JsonObject),
    );
    assert.ok(byWords < 0.99, `without the embedder the notes differ (similarity ${byWords})`);
    assert.deepEqual(embedded.at(-1), ["my card got taken by someone at the mall"]);
    const events = await lumyn.store.log.events(first.value.record.decision_id);
    assert.equal(events.length, 1);
    await lumyn.close();

    const failing = await Lumyn.open({
      workspace: join(root, "embedder"),
      textEmbedder: { id: "down@1", embed: async () => Promise.reject(new Error("model not loaded")) },
    });
    assert.ok(failing.ok);
    const closed = await failing.value.decide(withNote("e-3", "the card was stolen"));
    assert.ok(closed.ok);
    assert.deepEqual(
      [closed.value.status, closed.value.record.verdict, closed.value.record.reason_codes],
      ["unavailable", "ABSTAIN", ["STORAGE_UNAVAILABLE"]],
      "an embedder that fails makes the decision fail closed",
    );
    await failing.value.close();
  });

  it("catches up with labels given through another process on the same store", async () => {
    const workspace = join(root, "two-processes");
    const first = await open({ workspace });
    const second = await open({ workspace });
    const decided = await first.decide({ ...small, request_id: "tp-1" } as JsonValue);
    assert.ok(decided.ok && decided.value.record.verdict === "ALLOW");
    assert.ok((await first.label(decided.value.record.decision_id, "failure")).ok);
    const before = await second.decide({ ...small, request_id: "tp-2" } as JsonValue);
    assert.ok(before.ok && before.value.record.verdict === "ALLOW", "the other process has not looked yet");
    assert.equal(await second.refreshMemory(), 1);
    assert.equal(await second.refreshMemory(), 0, "nothing new the second time");
    const after = await second.decide({ ...small, request_id: "tp-3" } as JsonValue);
    assert.ok(after.ok);
    assert.equal(after.value.record.verdict, "DENY");
    await first.close();
    await second.close();
  });

  it("lets rules read memory's similarity like any other value", async () => {
    const policyPath = join(root, "memory-rule.yml");
    writeFileSync(
      policyPath,
      `schema_version: policy.v1
policy_id: m
policy_version: "1"
defaults: { mode: enforce, default_verdict: ALLOW, default_reason_code: OK }
memory: { block_at: 1.0, escalate_at: 1.0 }
rules:
  - id: LOOKS_LIKE_FRAUD
    stage: HARD_BLOCKS
    if: { memory.failure_similarity: { gte: 0.8 } }
    then: { verdict: ABSTAIN, reason_codes: [LOOKS_LIKE_FRAUD] }
`,
    );
    const lumyn = await open({ policyPath });
    const first = await lumyn.decide({ ...small, request_id: "r-1" } as JsonValue);
    assert.ok(first.ok && first.value.record.verdict === "ALLOW");
    assert.ok((await lumyn.label(first.value.record.decision_id, "failure")).ok);
    const second = await lumyn.decide({ ...small, request_id: "r-2" } as JsonValue);
    assert.ok(second.ok);
    assert.deepEqual(
      [second.value.record.verdict, second.value.record.reason_codes],
      ["ABSTAIN", ["LOOKS_LIKE_FRAUD"]],
    );
    await lumyn.close();
  });

  it("holds the workspace policy to the workspace's reason-code registry", async () => {
    const workspace = join(root, "with-registry");
    mkdirSync(workspace, { recursive: true });
    writeFileSync(join(workspace, "reason-codes.json"), JSON.stringify(["MISSING_EVIDENCE_REFUND"]));
    const refused = await Lumyn.open({ workspace });
    assert.ok(!refused.ok);
    assert.equal(refused.problems[0]?.code, "unknown_reason_code");
    assert.equal(refused.problems[0]?.file, join(workspace, "policy.yml"));
    writeFileSync(join(workspace, "reason-codes.json"), "{not json");
    const broken = await Lumyn.open({ workspace });
    assert.ok(!broken.ok);
    assert.equal(broken.problems[0]?.file, join(workspace, "reason-codes.json"));
  });

  it("reports an unreadable or invalid policy as a failure, not an exception", async () => {
    const missing = await Lumyn.open({ workspace: join(root, "x"), policyPath: join(root, "nope.yml") });
    assert.ok(!missing.ok);
    assert.equal(missing.kind, "invalid_policy");
    const broken = join(root, "broken.yml");
    writeFileSync(broken, "schema_version: policy.v1\nrules: [\n");
    const invalid = await Lumyn.open({ workspace: join(root, "y"), policyPath: broken });
    assert.ok(!invalid.ok);
    assert.equal(invalid.problems[0]?.file, broken);
  });
});
