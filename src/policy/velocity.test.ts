import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { redecideStored } from "../audit/backtest.ts";
import { buildPack, readPack } from "../audit/pack.ts";
import { replayPack } from "../audit/replay.ts";
import { runCase } from "../authoring/run-tests.ts";
import { parseTestSuite } from "../authoring/test-suite.ts";
import { canonicalJson, type JsonObject, type JsonValue } from "../core/json.ts";
import { decide } from "../engine/decide.ts";
import { Lumyn } from "../lumyn.ts";
import { loadPolicy, type Policy } from "./policy.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-velocity-"));
after(() => rmSync(root, { recursive: true, force: true }));

const HEAD = `schema_version: policy.v1
policy_id: velocity
policy_version: "1"
defaults: {mode: enforce, default_verdict: ALLOW, default_reason_code: OK}
`;

const VELOCITY_POLICY = `${HEAD}velocity:
  subject_denials_1h: {count: decisions, where: {verdict: [DENY]}, group_by: subject.id, window: 1h}
  payouts_today: {sum: amount_usd, where: {action_type: [payout.create]}, window: today}
rules:
  - id: BAD
    stage: REQUIREMENTS
    if: {evidence.bad_is: true}
    then: {verdict: DENY, reason_codes: [BAD_REQUEST]}
  - id: SUBJECT_KEEPS_FAILING
    stage: REQUIREMENTS
    if: {velocity.subject_denials_1h: {gt: 3}}
    then: {verdict: DENY, reason_codes: [SUBJECT_VELOCITY]}
  - id: PAYOUTS_OVER_DAILY_LIMIT
    stage: ESCALATIONS
    if: {velocity.payouts_today: {gt: 50000}}
    then: {verdict: ESCALATE, reason_codes: [DAILY_PAYOUT_LIMIT]}
`;

function load(text: string, file = "policy.yml"): Policy {
  const loaded = loadPolicy(text, { file });
  assert.ok(loaded.ok, loaded.ok ? "" : JSON.stringify(loaded.problems));
  return loaded.value;
}

function request(
  id: string,
  options: { subject?: string; bad?: boolean; type?: string; amount?: number } = {},
): JsonValue {
  const base = structuredClone(EXAMPLE_REQUESTS["refund-small"]?.request) as JsonObject;
  return {
    ...base,
    request_id: id,
    subject: { type: "agent", id: options.subject ?? "agent-1" },
    action: {
      ...(base.action as JsonObject),
      type: options.type ?? "support.refund",
      amount: { value: options.amount ?? 20, currency: "USD" },
    },
    evidence: { ...(base.evidence as JsonObject), ...(options.bad ? { bad: true } : {}) },
  };
}

describe("velocity conditions: the policy section", () => {
  it("accepts measures and conditions on them", () => {
    const policy = load(VELOCITY_POLICY);
    assert.deepEqual(
      policy.model.velocity.map((spec) => [spec.name, spec.measure.kind, spec.groupBy.join(".")]),
      [
        ["subject_denials_1h", "count", "subject.id"],
        ["payouts_today", "sum_amount_usd", ""],
      ],
    );
  });

  it("reports every bad measure with file:line:col, and conditions on undefined measures read evidence", () => {
    const text = `${HEAD}velocity:
  both: {count: decisions, sum: amount_usd, window: 1h}
  bad_window: {count: decisions, window: 2y}
  bad_path: {sum: "subject..id", window: 1h}
  Bad-Name: {count: decisions, window: 1h}
  typo: {count: decisions, where: {verdict: [DENNY], actor: [x]}, window: 1h}
rules:
  - {id: A, stage: REQUIREMENTS, if: {velocity.both: {gt: 1}}, then: {verdict: DENY, reason_codes: [X]}}
`;
    const loaded = loadPolicy(text, { file: "p.yml" });
    assert.equal(loaded.ok, false);
    const problems = loaded.ok ? [] : loaded.problems;
    const at = (code: string) => problems.filter((p) => p.code === code).map((p) => `${p.line}:${p.column}`);
    assert.deepEqual(at("velocity_measure"), ["6:9"]);
    assert.deepEqual(at("velocity_window"), ["7:42"]);
    assert.deepEqual(at("path"), ["8:19"]);
    assert.deepEqual(at("velocity_name"), ["9:3"]);
    assert.ok(problems.some((p) => p.code === "enum" && p.hint?.includes("DENY") && p.line === 10));
    assert.ok(problems.some((p) => p.code === "unknown_key" && p.pointer === "/velocity/typo/where/actor"));
    assert.ok(problems.every((p) => p.file === "p.yml"));

    // Without a velocity section, `velocity.x` is an evidence path, as in the reference.
    const evidencePath = load(
      `${HEAD}rules:\n  - {id: A, stage: REQUIREMENTS, if: {velocity.x: {gt: 1}}, then: {verdict: DENY, reason_codes: [X]}}\n`,
    );
    const decided = decide(
      { ...(request("e") as JsonObject), evidence: { velocity: { x: 2 } } },
      evidencePath,
    );
    assert.ok(decided.ok);
    assert.equal(decided.value.record.verdict, "DENY");
  });

  it("leaves inputs_digest as it is: velocity values are recorded beside it, not in it", () => {
    const withVelocity = decide(request("d"), load(VELOCITY_POLICY));
    const without = decide(
      request("d"),
      load(
        `${HEAD}rules:\n  - {id: A, stage: REQUIREMENTS, if: {evidence.bad_is: true}, then: {verdict: DENY, reason_codes: [X]}}\n`,
      ),
    );
    assert.ok(withVelocity.ok && without.ok);
    assert.equal(
      withVelocity.value.record.determinism.inputs_digest,
      without.value.record.determinism.inputs_digest,
    );
    assert.equal(without.value.record.determinism.velocity, undefined, "no velocity, no trace in the record");
  });
});

describe("velocity conditions in policy test files", () => {
  it("decide with the case's values (0 for the others), and refuse names the policy does not define", () => {
    const policy = load(VELOCITY_POLICY);
    const suite = parseTestSuite(
      `policy: policy.yml
cases:
  - name: quiet subject
    request: ${JSON.stringify(request("t-1"))}
    expect: {verdict: ALLOW}
  - name: subject with four denials
    request: ${JSON.stringify(request("t-2"))}
    velocity: {subject_denials_1h: 4}
    expect: {verdict: DENY, reason_codes: [SUBJECT_VELOCITY]}
  - name: unknown measure
    request: ${JSON.stringify(request("t-3"))}
    velocity: {nope: 1}
    expect: {verdict: ALLOW}
`,
      "velocity.test.yml",
    );
    assert.ok(suite.ok, suite.ok ? "" : JSON.stringify(suite.problems));
    const results = suite.value.cases.map((testCase) =>
      runCase(policy, testCase, testCase.request as JsonValue),
    );
    assert.deepEqual(
      results.map((result) => result.passed),
      [true, true, false],
    );
    assert.match(
      results[2]?.problems?.[0]?.message ?? "",
      /velocity 'nope', which the policy does not define/,
    );
    const bad = parseTestSuite(
      `policy: p.yml\ncases:\n  - {name: x, request: {}, velocity: {a: many}, expect: {verdict: ALLOW}}\n`,
      "t.yml",
    );
    assert.ok(!bad.ok && bad.problems.some((problem) => problem.pointer === "/cases/0/velocity"));
  });
});

describe("velocity conditions: deciding over the store's history", () => {
  it("counts a subject's denials and sums a tenant's payouts, records what it saw, and replays without history", async () => {
    const policyPath = join(root, "velocity.yml");
    writeFileSync(policyPath, VELOCITY_POLICY);
    const opened = await Lumyn.open({ workspace: join(root, "ws"), policyPath });
    assert.ok(opened.ok);
    const lumyn = opened.value;
    try {
      for (let i = 0; i < 4; i++) {
        const denied = await lumyn.decide(request(`bad-${i}`, { bad: true }));
        assert.ok(denied.ok);
        assert.equal(denied.value.record.verdict, "DENY");
        assert.equal(
          (denied.value.record.determinism.velocity as JsonObject).subject_denials_1h &&
            ((denied.value.record.determinism.velocity as JsonObject).subject_denials_1h as JsonObject).value,
          i,
        );
      }
      const blocked = await lumyn.decide(request("good-1"));
      assert.ok(blocked.ok);
      assert.deepEqual(blocked.value.record.reason_codes, ["SUBJECT_VELOCITY"]);
      const other = await lumyn.decide(request("good-2", { subject: "agent-2" }));
      assert.ok(other.ok);
      assert.equal(other.value.record.verdict, "ALLOW", "another subject's history is not counted");

      for (const [i, amount] of [30_000, 25_000].entries()) {
        const paid = await lumyn.decide(
          request(`payout-${i}`, { subject: "payer", type: "payout.create", amount }),
        );
        assert.ok(paid.ok);
        assert.equal(paid.value.record.verdict, "ALLOW");
      }
      const overLimit = await lumyn.decide(
        request("payout-3", { subject: "payer", type: "payout.create", amount: 1 }),
      );
      assert.ok(overLimit.ok);
      const record = overLimit.value.record;
      assert.deepEqual([record.verdict, record.reason_codes], ["ESCALATE", ["DAILY_PAYOUT_LIMIT"]]);
      assert.deepEqual(record.determinism.velocity, {
        payouts_today: {
          sum: "amount_usd",
          where: { action_type: ["payout.create"] },
          window: "today",
          value: 55_000,
        },
        subject_denials_1h: {
          count: "decisions",
          where: { verdict: ["DENY"] },
          group_by: "subject.id",
          window: "1h",
          value: 0,
        },
      });

      const retried = await lumyn.decide(
        request("payout-3", { subject: "payer", type: "payout.create", amount: 1 }),
      );
      assert.ok(retried.ok);
      assert.equal(
        retried.value.status,
        "duplicate",
        "a retry is the same request, whatever history did since",
      );

      // Replay reads the values from the record: the history is gone, the answer is the same.
      const explained = await lumyn.explain(record.decision_id);
      assert.ok(explained.ok);
      assert.equal(explained.value.explanation.verdict, "ESCALATE");
      const stored = await lumyn.store.decisions.get(record.decision_id);
      assert.ok(stored);
      const pack = readPack(
        buildPack({ record: stored, policyText: VELOCITY_POLICY, events: [] }),
        "pack.zip",
      );
      assert.ok(pack.ok);
      const replayed = replayPack(pack.value, "pack.zip");
      assert.ok(replayed.ok);
      assert.equal(replayed.value.identical, true, JSON.stringify(replayed.value));
      assert.ok(replayed.value.checks.some((check) => check.name === "velocity" && check.ok));

      // A backtest re-decides with the recorded values; a measure the record never saw reads nothing.
      const json = canonicalJson(stored);
      assert.equal(redecideStored(json, load(VELOCITY_POLICY))?.to, "ESCALATE");
      const stricter = load(VELOCITY_POLICY.replace("gt: 50000", "gt: 60000"));
      assert.equal(redecideStored(json, stricter)?.to, "ALLOW");
      const redefined = redecideStored(json, load(VELOCITY_POLICY.replace("window: today", "window: 7d")));
      assert.deepEqual([redefined?.to, redefined?.unmeasured], ["ALLOW", ["payouts_today"]]);
    } finally {
      await lumyn.close();
    }
  });

  it("fails closed when the history cannot be read: ABSTAIN, STORAGE_UNAVAILABLE, nothing stored", async () => {
    const policyPath = join(root, "velocity-closed.yml");
    writeFileSync(policyPath, VELOCITY_POLICY);
    const opened = await Lumyn.open({ workspace: join(root, "ws-closed"), policyPath });
    assert.ok(opened.ok);
    await opened.value.close();
    const decided = await opened.value.decide(request("closed-1"));
    assert.ok(decided.ok);
    assert.equal(decided.value.status, "unavailable");
    assert.deepEqual(
      [decided.value.record.verdict, decided.value.record.reason_codes],
      ["ABSTAIN", ["STORAGE_UNAVAILABLE"]],
    );
  });
});
