import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import type { JsonObject, JsonValue } from "../core/json.ts";
import { groupValueOf, velocityWindow } from "../domain/velocity.ts";
import { measureVelocity } from "../engine/velocity.ts";
import { Lumyn } from "../lumyn.ts";
import { eventually, redisForTests, type TestRedis } from "../testing/redis.ts";
import type { SyncLog } from "./policy-sync.ts";
import { RedisVelocityCounters } from "./redis-counters.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-counters-"));
const { redis, skip } = await redisForTests();
after(async () => {
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

const POLICY = `schema_version: policy.v1
policy_id: velocity
policy_version: "1"
defaults: {mode: enforce, default_verdict: ALLOW, default_reason_code: OK}
velocity:
  subject_denials_1h: {count: decisions, where: {verdict: [DENY]}, group_by: subject.id, window: 1h}
  payouts_today: {sum: amount_usd, where: {action_type: [payout.create]}, window: today}
  subject_amounts_10m: {sum: action.amount.value, group_by: subject.id, window: 10m}
rules:
  - {id: BAD, stage: REQUIREMENTS, if: {evidence.bad_is: true}, then: {verdict: DENY, reason_codes: [BAD_REQUEST]}}
  - {id: VELOCITY, stage: REQUIREMENTS, if: {velocity.subject_denials_1h: {gt: 3}}, then: {verdict: DENY, reason_codes: [SUBJECT_VELOCITY]}}
`;

const quiet: SyncLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

function request(i: number): JsonValue {
  const base = structuredClone(EXAMPLE_REQUESTS["refund-small"]?.request) as JsonObject;
  return {
    ...base,
    request_id: `r-${i}`,
    subject: { type: "agent", id: `agent-${i % 3}` },
    action: {
      ...(base.action as JsonObject),
      type: i % 2 === 0 ? "payout.create" : "support.refund",
      amount: { value: 100 + i, currency: i % 4 === 0 ? "EUR" : "USD" },
    },
    evidence: {
      ...(base.evidence as JsonObject),
      fx_rate_to_usd: 1.5,
      ...(i % 3 === 0 ? { bad: true } : {}),
    },
  };
}

describe("velocity counters in Redis", { skip }, () => {
  it("answer as SQL does, across servers, and fall back to SQL while Redis is down and for what it missed", async () => {
    const server = redis as TestRedis;
    const policyPath = join(root, "policy.yml");
    writeFileSync(policyPath, POLICY);
    const workspace = join(root, "ws");
    // Counters answer only for windows they saw whole, from when each measure was first used. The decisions
    // are made on a clock the test moves: first two hours past the next midnight (UTC), where SQL answers
    // while the counters start, then a day later, where the counters have seen every window whole.
    const day = 86_400_000;
    let start = Math.ceil(Date.now() / day) * day + 2 * 3_600_000;
    let current = Date.now();
    const clock = () => current;
    let i = 0;
    const gateways: { lumyn: Lumyn; counters: RedisVelocityCounters }[] = [];
    for (let g = 0; g < 2; g++) {
      const opened = await Lumyn.open({ workspace, policyPath });
      assert.ok(opened.ok);
      const counters = await RedisVelocityCounters.connect(server.url, quiet, clock);
      opened.value.useVelocityCounters(counters);
      gateways.push({ lumyn: opened.value, counters });
    }
    const [first] = gateways as [(typeof gateways)[number]];
    const policy = first.lumyn.policy;
    const decideNext = async (): Promise<void> => {
      const gateway = gateways[i % 2] as (typeof gateways)[number];
      current = start + i * 1_000;
      const now = new Date(current);
      const value = request(i++);
      // What SQL measures before the decision is what the decision must see, wherever the value came from.
      const bySql = await measureVelocity(
        policy.model.velocity,
        "acme",
        value as JsonObject,
        now,
        first.lumyn.store.velocity,
      );
      const decided = await gateway.lumyn.decide(value, { now });
      assert.ok(decided.ok);
      const record = decided.value.record;
      const recorded = Object.fromEntries(
        Object.entries(record.determinism.velocity as JsonObject).map(([name, entry]) => [
          name,
          (entry as JsonObject).value,
        ]),
      );
      assert.deepEqual(recorded, bySql, `decision ${i - 1}: what the decision saw is what SQL measures`);
    };
    const countersAnswer = async (): Promise<boolean> => {
      const now = new Date(current);
      const request = (
        await first.lumyn.store.decisions.get(
          (await first.lumyn.list({ limit: 1 })).records[0]?.decision_id ?? "",
        )
      )?.request as JsonObject;
      for (const spec of policy.model.velocity) {
        const ask = {
          spec,
          tenantId: "acme",
          groupValue: groupValueOf(spec, request),
          ...velocityWindow(spec, now),
        };
        if ((await first.counters.measure(ask)) === undefined) return false;
      }
      return true;
    };
    try {
      for (let n = 0; n < 6; n++) await decideNext();
      assert.equal(await countersAnswer(), false, "the counters have not seen a whole window yet");
      start += day;
      for (let n = 0; n < 12; n++) await decideNext();
      assert.equal(await countersAnswer(), true, "the counters answer every measure");

      await server.stop();
      for (let n = 0; n < 6; n++) await decideNext();
      await server.resume();
      await eventually(async () => {
        try {
          await decideNext();
          return true;
        } catch {
          return false;
        }
      }, "decisions go on once Redis is back");
      const client = server.client();
      try {
        await eventually(
          async () => Number(await client.get("lumyn:velocity:exact-from")) >= current - 1_000,
          "the servers restart counting after what they could not count",
        );
      } finally {
        client.disconnect();
      }
      for (let n = 0; n < 6; n++) await decideNext();
    } finally {
      for (const gateway of gateways) {
        gateway.counters.close();
        await gateway.lumyn.close();
      }
    }
  });
});
