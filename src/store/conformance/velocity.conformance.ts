import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JsonObject } from "../../core/json.ts";

import { type BackendUnderTest, makeRecord, storeOpener } from "./backend.conformance.ts";

export function velocityConformance(backend: BackendUnderTest): void {
  describe(`VelocityStore conformance: ${backend.name}`, () => {
    const withStore = storeOpener(backend);

    it("measures velocity: counts and sums of a tenant's decisions per group, filtered, in a window", () =>
      withStore(async (store) => {
        const at = (minute: number) => new Date(Date.UTC(2026, 2, 1, 10, minute));
        const put = async (
          minute: number,
          options: {
            subject?: string;
            verdict?: string;
            amount?: number;
            tenant?: string;
            currency?: string;
          },
        ) => {
          const record = makeRecord({
            now: at(minute),
            ...(options.amount !== undefined ? { amount: options.amount } : {}),
            ...(options.tenant ? { tenant: options.tenant } : {}),
          });
          const request = record.request as JsonObject;
          request.subject = { type: "agent", id: options.subject ?? "agent-1" };
          if (options.currency) {
            request.action = {
              ...(request.action as JsonObject),
              amount: { value: options.amount ?? 20, currency: options.currency },
            };
            request.evidence = { ...(request.evidence as JsonObject), fx_rate_to_usd: 2 };
          }
          await store.decisions.put({ ...record, verdict: (options.verdict ?? "ALLOW") as never });
        };
        await put(0, { verdict: "DENY" });
        await put(10, { verdict: "DENY", amount: 100 });
        await put(20, { verdict: "ALLOW", amount: 50, currency: "EUR" });
        await put(30, { verdict: "DENY", subject: "agent-2" });
        await put(40, { verdict: "DENY", tenant: "globex" });
        await put(59, { verdict: "DENY" });
        const window = { since: at(5).toISOString(), until: at(59).toISOString() };
        const bySubject = { tenantId: "acme", groupBy: ["subject", "id"], groupValue: "agent-1", ...window };
        assert.equal(await store.velocity.measure({ ...bySubject, measure: { kind: "count" } }), 2);
        assert.equal(
          await store.velocity.measure({ ...bySubject, measure: { kind: "count" }, verdicts: ["DENY"] }),
          1,
          "only DENY, only in the window (the end is exclusive), only this subject and tenant",
        );
        assert.equal(
          await store.velocity.measure({ ...bySubject, measure: { kind: "sum_amount_usd" } }),
          200,
          "100 USD, and 50 EUR at 2 USD per EUR",
        );
        assert.equal(
          await store.velocity.measure({
            ...bySubject,
            measure: { kind: "sum_path", segments: ["action", "amount", "value"] },
          }),
          150,
        );
        assert.equal(
          await store.velocity.measure({
            tenantId: "acme",
            groupBy: [],
            measure: { kind: "count" },
            actionTypes: ["support.refund"],
            ...window,
          }),
          3,
          "the whole tenant when not grouped",
        );
        assert.equal(
          await store.velocity.measure({
            ...bySubject,
            groupValue: "nobody",
            measure: { kind: "sum_amount_usd" },
          }),
          0,
        );
        for (const [path, value] of [
          [["evidence", "order_id"], "O-1"],
          [["evidence", "customer_age_days"], 100],
        ] as const) {
          assert.equal(
            await store.velocity.measure({
              tenantId: "acme",
              groupBy: path,
              groupValue: value,
              measure: { kind: "count" },
              ...window,
            }),
            3,
            `grouped by ${path.join(".")} (a string, then a number, read from the request)`,
          );
        }
        assert.equal(
          await store.velocity.measure({
            ...bySubject,
            measure: { kind: "count" },
            actionTypes: ["payout.create"],
          }),
          0,
        );
      }));
  });
}
