import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { STARTER_POLICY } from "../assets/starter-policy.ts";
import { stringify } from "../core/json.ts";
import { Lumyn } from "../lumyn.ts";
import { loadPolicy, type Policy } from "../policy/policy.ts";
import { SqliteStore } from "../store/sqlite/sqlite-store.ts";
import { BacktestTally, parseTransitions, redecideStored, triggered } from "./backtest.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-backtest-"));
after(() => rmSync(root, { recursive: true, force: true }));

function policy(text: string): Policy {
  const loaded = loadPolicy(text);
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.problems));
  return loaded.value;
}

/** The starter policy with an obligation whose text looks like the members a backtest looks for. */
const LOOK_ALIKE_POLICY = STARTER_POLICY.replace(
  "      obligations:\n",
  `      obligations:\n        - { type: log, title: note, details: '"reason_codes":["X"],"request":{"verdict":"DENY"}' }\n`,
);

describe("redecideStored", () => {
  it("reads canonical records by their parts exactly as it reads them whole", async () => {
    assert.notEqual(LOOK_ALIKE_POLICY, STARTER_POLICY);
    const store = SqliteStore.open(join(root, "lumyn.db"));
    const lumyn = new Lumyn({ policy: policy(LOOK_ALIKE_POLICY), store });
    const examples = Object.values(EXAMPLE_REQUESTS).map(
      (example) => example.request as Record<string, unknown>,
    );
    const first = await lumyn.decide(examples[0] as never);
    assert.ok(first.ok);
    assert.ok((await lumyn.label(first.value.record.decision_id, "failure")).ok);
    for (const [i, request] of examples.entries()) {
      const evidence = {
        ...(request.evidence as object),
        big: 123456789012345678901234567890n,
        note: '"reason_codes":["A"],"request":{',
      };
      assert.ok((await lumyn.decide({ ...request, request_id: `again-${i}`, evidence } as never)).ok);
    }
    const candidate = policy(STARTER_POLICY.replace("amount_usd_gt: 200", "amount_usd_gt: 10"));
    let withMemory = 0;
    let count = 0;
    await store.decisions.scan({}, (json) => {
      count++;
      if (json.includes('"memory":{')) withMemory++;
      const fast = redecideStored(json, candidate);
      const whole = redecideStored(stringify(JSON.parse(json), { indent: 1 }), candidate);
      assert.ok(fast);
      assert.deepEqual(fast, whole);
    });
    assert.equal(count, 5);
    assert.ok(withMemory >= 3, "later decisions carry the failure as memory");
    await lumyn.close();
  });

  it("skips what is not a record", () => {
    assert.equal(redecideStored("{}", policy(STARTER_POLICY)), undefined);
    assert.equal(redecideStored("not json", policy(STARTER_POLICY)), undefined);
  });
});

describe("BacktestTally and --fail-on", () => {
  it("counts transitions, codes gained and lost, and keeps the most loosened changes first", () => {
    const tally = new BacktestTally(2);
    tally.add({ id: "a", from: "ALLOW", fromCodes: ["OK"], to: "DENY", toCodes: ["NO"] });
    tally.add({ id: "b", from: "ESCALATE", fromCodes: ["BIG"], to: "ALLOW", toCodes: ["OK"] });
    tally.add({ id: "c", from: "ABSTAIN", fromCodes: ["RISK"], to: "ALLOW", toCodes: ["OK"] });
    tally.add({ id: "d", from: "ALLOW", fromCodes: ["OK"], to: "ALLOW", toCodes: ["OK"] });
    const report = tally.report();
    assert.equal(report.total, 4);
    assert.equal(report.changed, 3);
    assert.equal(report.matrix.ABSTAIN.ALLOW, 1);
    assert.deepEqual(report.gained, [
      { code: "OK", count: 2 },
      { code: "NO", count: 1 },
    ]);
    assert.deepEqual(
      report.topChanged.map((change) => change.id),
      ["c", "b"],
    );
    const gate = parseTransitions("abstain>allow, *>DENY");
    assert.ok(gate.ok);
    assert.deepEqual(triggered(report, gate.value), [
      { from: "ALLOW", to: "DENY", count: 1 },
      { from: "ABSTAIN", to: "ALLOW", count: 1 },
    ]);
    const bad = parseTransitions("DENY>DENY,ALLOW,X>Y");
    assert.ok(!bad.ok);
    assert.equal(bad.problems.length, 3);
  });
});
