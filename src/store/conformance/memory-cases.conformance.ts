import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { type BackendUnderTest, makeRecord, storeOpener } from "./backend.conformance.ts";

export function memoryCaseConformance(backend: BackendUnderTest): void {
  describe(`MemoryCaseStore (labels) conformance: ${backend.name}`, () => {
    const withStore = storeOpener(backend);

    it("keeps labels as events and the latest as memory's case, and refuses labels of unknown decisions", () =>
      withStore(async (store) => {
        const record = makeRecord();
        await store.decisions.put(record);
        const vector = Int8Array.from({ length: 128 }, (_, i) => (i % 7) - 3);
        const label = {
          decisionId: record.decision_id,
          tenantId: "acme",
          actionType: "support.refund",
          fingerprint: vector,
          projection: "p",
        };
        // What the event records of the fingerprint holds memory's case to it (AuditLog.inconsistencies).
        const recordedFingerprint = {
          projection: "p",
          fingerprint_sha256: `sha256:${createHash("sha256").update(new Uint8Array(vector.buffer)).digest("hex")}`,
        };
        assert.ok(await store.memory.putLabel({ ...label, label: "failure", summary: "fraud", severity: 4 }));
        assert.ok(await store.memory.putLabel({ ...label, label: "success" }));
        assert.equal(
          await store.memory.putLabel({ ...label, decisionId: "01NOPE", label: "failure" }),
          undefined,
        );
        assert.deepEqual(
          (await store.log.events(record.decision_id)).map((e) => [e.type, e.data]),
          [
            ["label", { label: "failure", summary: "fraud", severity: 4, ...recordedFingerprint }],
            ["label", { label: "success", ...recordedFingerprint }],
          ],
        );
        assert.deepEqual(await store.memory.scopes(), [
          { tenantId: "acme", actionType: "support.refund", count: 1 },
        ]);
        const cases: unknown[] = [];
        assert.equal(await store.memory.load((memoryCase) => cases.push(memoryCase)), 1);
        assert.deepEqual(cases, [
          {
            decisionId: record.decision_id,
            tenantId: "acme",
            actionType: "support.refund",
            label: "success",
            vector,
          },
        ]);
        assert.deepEqual(
          await store.memory.summaries([record.decision_id, "01NOPE"]),
          new Map([[record.decision_id, ""]]),
        );
        assert.deepEqual(await store.memory.cases([record.decision_id, "01NOPE"]), cases);
      }));
  });
}
