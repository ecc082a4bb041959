import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalJson } from "../../core/json.ts";
import { StorageError } from "../../core/problem.ts";
import type { DecisionRecord } from "../../domain/decision-record.ts";
import type { StoredDecisionPage } from "../decisions.ts";

import { type BackendUnderTest, makeRecord, storeOpener } from "./backend.conformance.ts";

export function decisionStoreConformance(backend: BackendUnderTest): void {
  describe(`DecisionStore (decisions and reason codes) conformance: ${backend.name}`, () => {
    const withStore = storeOpener(backend);

    it("stores a record and returns it byte for byte", () =>
      withStore(async (store) => {
        const record = makeRecord();
        assert.deepEqual(await store.decisions.put(record), { status: "stored" });
        const read = await store.decisions.get(record.decision_id);
        assert.ok(read);
        assert.equal(canonicalJson(read), canonicalJson(record));
        assert.equal(await store.decisions.get("01NOPE"), undefined);
        assert.deepEqual(await store.decisions.getJson(record.decision_id), {
          json: canonicalJson(record),
          tenantId: "acme",
        });
        assert.equal(await store.decisions.getJson("01NOPE"), undefined);
      }));

    it("is idempotent on (tenant, request_id): same request returns the stored record, a different one conflicts", () =>
      withStore(async (store) => {
        const first = makeRecord({ requestId: "r-1" });
        const again = makeRecord({ requestId: "r-1" });
        const different = makeRecord({ requestId: "r-1", amount: 500 });
        const otherTenant = makeRecord({ requestId: "r-1", tenant: "globex" });
        assert.deepEqual(await store.decisions.put(first), { status: "stored" });
        const duplicate = await store.decisions.put(again);
        assert.equal(duplicate.status, "duplicate");
        assert.equal(duplicate.status === "duplicate" && duplicate.record.decision_id, first.decision_id);
        assert.deepEqual(await store.decisions.put(different), {
          status: "conflict",
          existingDecisionId: first.decision_id,
        });
        assert.deepEqual(await store.decisions.put(otherTenant), { status: "stored" });
        assert.equal((await store.decisions.findByRequestId("acme", "r-1"))?.decision_id, first.decision_id);
        assert.equal((await store.decisions.stats({ by: "verdict" })).total, 2);
      }));

    it("keeps one record per request_id when the same request races itself", () =>
      withStore(async (store) => {
        const records = Array.from({ length: 20 }, () => makeRecord({ requestId: "race" }));
        const results = await Promise.all(records.map((record) => store.decisions.put(record)));
        assert.equal(results.filter((r) => r.status === "stored").length, 1);
        assert.equal(results.filter((r) => r.status === "duplicate").length, 19);
        assert.equal((await store.decisions.stats({ by: "verdict" })).total, 1);
      }));

    it("fails a record that cannot be stored alone, not the decisions written with it", () =>
      withStore(async (store) => {
        const first = makeRecord({ requestId: "a" });
        const sameId = { ...makeRecord({ requestId: "b" }), decision_id: first.decision_id };
        const other = makeRecord({ requestId: "c" });
        const results = await Promise.allSettled([
          store.decisions.put(first),
          store.decisions.put(sameId),
          store.decisions.put(other),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ["fulfilled", "rejected", "fulfilled"],
        );
        assert.ok(results[1]?.status === "rejected" && results[1].reason instanceof StorageError);
        assert.equal((await store.decisions.stats({ by: "verdict" })).total, 2);
        assert.equal(await store.decisions.findByRequestId("acme", "b"), undefined);
      }));

    it("lists newest first with filters and a cursor that stays stable while decisions arrive", () =>
      withStore(async (store) => {
        const records = [
          makeRecord({ now: new Date("2026-01-01T00:00:00Z") }),
          makeRecord({ now: new Date("2026-01-02T00:00:00Z"), amount: 500 }),
          makeRecord({ now: new Date("2026-01-03T00:00:00Z"), ticket: "" }),
          makeRecord({ now: new Date("2026-01-04T00:00:00Z"), tenant: "globex" }),
          makeRecord({ now: new Date("2026-01-05T00:00:00Z") }),
        ];
        for (const record of records) await store.decisions.put(record);
        const ids = (page: StoredDecisionPage) => page.decisions.map((decision) => decision.decisionId);
        const page1 = await store.decisions.list({ limit: 2 });
        assert.deepEqual(ids(page1), [records[4]?.decision_id, records[3]?.decision_id]);
        assert.deepEqual(
          page1.decisions.map((decision) => decision.json),
          [records[4], records[3]].map((record) => canonicalJson(record as DecisionRecord)),
          "each decision as its stored canonical JSON",
        );
        await store.decisions.put(makeRecord());
        const page2 = await store.decisions.list({
          limit: 2,
          ...(page1.nextCursor ? { cursor: page1.nextCursor } : {}),
        });
        assert.deepEqual(ids(page2), [records[2]?.decision_id, records[1]?.decision_id]);
        const page3 = await store.decisions.list({
          limit: 2,
          ...(page2.nextCursor ? { cursor: page2.nextCursor } : {}),
        });
        assert.deepEqual(ids(page3), [records[0]?.decision_id]);
        assert.equal(page3.nextCursor, undefined);

        const filtered = async (query: object) => ids(await store.decisions.list(query));
        assert.deepEqual(await filtered({ verdict: "ESCALATE" }), [records[1]?.decision_id]);
        assert.deepEqual(await filtered({ reasonCode: "MISSING_EVIDENCE_REFUND" }), [
          records[2]?.decision_id,
        ]);
        assert.deepEqual(await filtered({ tenantId: "globex" }), [records[3]?.decision_id]);
        assert.deepEqual(await filtered({ since: "2026-01-02T00:00:00Z", until: "2026-01-04T00:00:00Z" }), [
          records[2]?.decision_id,
          records[1]?.decision_id,
        ]);
        assert.equal((await filtered({ actionType: "support.refund", subjectId: "none" })).length, 0);
      }));

    it("counts by verdict, reason code and action type within a window", () =>
      withStore(async (store) => {
        await store.decisions.put(makeRecord({ now: new Date("2026-02-01T00:00:00Z") }));
        await store.decisions.put(makeRecord({ now: new Date("2026-02-02T00:00:00Z") }));
        await store.decisions.put(makeRecord({ now: new Date("2026-02-03T00:00:00Z"), amount: 500 }));
        await store.decisions.put(makeRecord({ now: new Date("2026-02-04T00:00:00Z"), ticket: "" }));
        assert.deepEqual(await store.decisions.stats({ by: "verdict" }), {
          total: 4,
          groups: [
            { key: "ALLOW", count: 2 },
            { key: "DENY", count: 1 },
            { key: "ESCALATE", count: 1 },
          ],
        });
        // The DENY record also matched the ALLOW path: every reason code on a record counts.
        assert.deepEqual(
          (await store.decisions.stats({ by: "reason_code", since: "2026-02-03T00:00:00Z" })).groups,
          [
            { key: "MISSING_EVIDENCE_REFUND", count: 1 },
            { key: "REFUND_OVER_ESCALATION_LIMIT", count: 1 },
            { key: "REFUND_SMALL_LOW_RISK", count: 1 },
          ],
        );
        assert.deepEqual(await store.decisions.stats({ by: "action_type", until: "2026-02-02T00:00:00Z" }), {
          total: 1,
          groups: [{ key: "support.refund", count: 1 }],
        });
      }));

    it("visits stored decisions oldest first, filtered and limited", () =>
      withStore(async (store) => {
        const records = [
          makeRecord({ now: new Date("2026-03-01T00:00:00Z") }),
          makeRecord({ now: new Date("2026-03-02T00:00:00Z"), tenant: "globex" }),
          makeRecord({ now: new Date("2026-03-03T00:00:00Z") }),
          makeRecord({ now: new Date("2026-03-04T00:00:00Z") }),
        ];
        for (const record of records) await store.decisions.put(record);
        const visited = async (query: object) => {
          const ids: string[] = [];
          const count = await store.decisions.scan(query, (json) => ids.push(JSON.parse(json).decision_id));
          assert.equal(count, ids.length);
          return ids;
        };
        const id = (i: number) => records[i]?.decision_id;
        assert.deepEqual(await visited({}), [id(0), id(1), id(2), id(3)]);
        assert.deepEqual(await visited({ tenantId: "acme", limit: 2 }), [id(0), id(2)]);
        assert.deepEqual(await visited({ since: "2026-03-02T00:00:00Z", until: "2026-03-04T00:00:00Z" }), [
          id(1),
          id(2),
        ]);
      }));
  });
}
