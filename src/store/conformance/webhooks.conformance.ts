import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type BackendUnderTest, makeRecord, storeOpener } from "./backend.conformance.ts";

export function webhookConformance(backend: BackendUnderTest): void {
  describe(`WebhookStore conformance: ${backend.name}`, () => {
    const withStore = storeOpener(backend);

    it("keeps webhooks, their progress and delivery log, reads events after a sequence number, and leases by compare-and-set", () =>
      withStore(async (store) => {
        assert.equal(await store.log.lastSeq(), 0);
        const record = makeRecord();
        await store.decisions.put(record);
        await store.log.append({ decisionId: record.decision_id, type: "label", data: { n: 1 } });
        await store.log.append({
          decisionId: record.decision_id,
          type: "approval_transition",
          data: { n: 2 },
        });
        await store.log.append({
          decisionId: record.decision_id,
          type: "approval_transition",
          data: { n: 3 },
        });
        const last = await store.log.lastSeq();
        const after = await store.log.after(0, ["approval_transition"], 10);
        assert.deepEqual(
          after.map((e) => e.event.data.n),
          [2, 3],
        );
        assert.equal(after[1]?.seq, last);
        assert.deepEqual(
          (await store.log.after(after[0]?.seq ?? 0, ["approval_transition"], 10)).map((e) => e.event.data.n),
          [3],
        );
        assert.equal((await store.log.after(0, ["approval_transition"], 1)).length, 1);

        const webhook = {
          webhookId: "01HOOK",
          url: "http://127.0.0.1:1/h",
          secret: "s".repeat(20),
          name: "ops",
          createdAt: "2026-03-01T00:00:00Z",
          cursorSeq: 0,
          attempts: 0,
        };
        await store.webhooks.put(webhook);
        assert.deepEqual(await store.webhooks.list(), [webhook]);
        assert.equal(
          await store.webhooks.claim("01HOOK", "a", "2026-03-01T00:01:00Z", "2026-03-01T00:00:00Z"),
          true,
        );
        assert.equal(
          await store.webhooks.claim("01HOOK", "b", "2026-03-01T00:01:00Z", "2026-03-01T00:00:30Z"),
          false,
        );
        assert.equal(
          await store.webhooks.claim("01HOOK", "b", "2026-03-01T00:02:00Z", "2026-03-01T00:01:00Z"),
          true,
        );
        const attempt = {
          webhookId: "01HOOK",
          eventId: after[0]?.event.eventId as string,
          attempt: 1,
          outcome: "failed" as const,
          httpStatus: 503,
          at: "2026-03-01T00:00:10Z",
        };
        await store.webhooks.recordDelivery(attempt, {
          webhookId: "01HOOK",
          cursorSeq: 0,
          attempts: 1,
          nextAttemptAt: "2026-03-01T00:00:11Z",
        });
        const delivered = {
          ...attempt,
          attempt: 2,
          outcome: "delivered" as const,
          httpStatus: 200,
          at: "2026-03-01T00:00:12Z",
        };
        await store.webhooks.recordDelivery(delivered, {
          webhookId: "01HOOK",
          cursorSeq: after[0]?.seq as number,
          attempts: 0,
        });
        assert.deepEqual(await store.webhooks.deliveries({ webhookId: "01HOOK" }), [delivered, attempt]);
        assert.deepEqual(await store.webhooks.deliveries({ webhookId: "01NONE" }), []);
        assert.deepEqual(await store.webhooks.list(), [
          { ...webhook, cursorSeq: after[0]?.seq, attempts: 0 },
        ]);
        assert.equal(await store.webhooks.delete("01HOOK"), true);
        assert.equal(await store.webhooks.delete("01HOOK"), false);
        assert.deepEqual(await store.webhooks.list(), []);
      }));
  });
}
