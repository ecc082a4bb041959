import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { verifyStoreChain } from "../../audit/verify.ts";
import type { DecisionRecord } from "../../domain/decision-record.ts";
import { treeRoot } from "../../domain/merkle.ts";

import { type BackendUnderTest, makeRecord, storeOpener } from "./backend.conformance.ts";

export function auditLogConformance(backend: BackendUnderTest): void {
  describe(`AuditLog (events and the chain) conformance: ${backend.name}`, () => {
    const withStore = storeOpener(backend);

    it("appends events in order and never changes them", () =>
      withStore(async (store) => {
        const record = makeRecord();
        await store.decisions.put(record);
        const first = await store.log.append({
          decisionId: record.decision_id,
          type: "label",
          data: { label: "failure" },
        });
        await store.log.append({
          decisionId: record.decision_id,
          type: "label",
          data: { label: "success", n: 1.5 },
        });
        const events = await store.log.events(record.decision_id);
        assert.deepEqual(
          events.map((e) => e.data),
          [{ label: "failure" }, { label: "success", n: 1.5 }],
        );
        assert.equal(events[0]?.eventId, first.eventId);
        assert.deepEqual(await store.log.events("01NOPE"), []);
      }));

    it("chains every stored decision and event, in one chain under concurrent writes", () =>
      withStore(async (store) => {
        const records = Array.from({ length: 40 }, (_, i) => makeRecord({ requestId: `chain-${i}` }));
        const results = await Promise.all([
          ...records.map((record) => store.decisions.put(record)),
          store.decisions.put(makeRecord({ requestId: "chain-0" })),
          store.decisions.put(makeRecord({ requestId: "chain-1", amount: 999 })),
        ]);
        assert.deepEqual(
          results.slice(-2).map((r) => r.status),
          ["duplicate", "conflict"],
        );
        const first = records[0] as DecisionRecord;
        await Promise.all([
          store.log.append({ decisionId: first.decision_id, type: "note", data: { text: "é" } }),
          store.memory.putLabel({
            decisionId: first.decision_id,
            label: "failure",
            tenantId: "acme",
            actionType: "support.refund",
            fingerprint: new Int8Array(128),
            projection: "p",
          }),
          store.decisions.put(makeRecord({ requestId: "chain-late" })),
        ]);
        const links: { seq: number; kind: string; refId: string }[] = [];
        await store.log.readChain((link) => {
          links.push({ seq: link.seq, kind: link.kind, refId: link.refId });
          return true;
        });
        assert.equal(links.length, 43, "40 + 1 decisions and 2 events; duplicates and conflicts add nothing");
        assert.deepEqual(
          links.map((link) => link.seq),
          Array.from({ length: 43 }, (_, i) => i + 1),
        );
        assert.deepEqual(
          links.slice(0, 40).map((link) => link.refId),
          records.map((record) => record.decision_id),
        );
        assert.deepEqual(await store.log.unchained(), []);
        const report = await verifyStoreChain(store);
        assert.equal(report.broken, undefined);
        assert.equal(report.length, 43);
        assert.match(report.headHash, /^sha256:[0-9a-f]{64}$/);
      }));

    it("signs the chain's head every N entries and on close, and the signatures verify", async () => {
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const store = await backend.open({ signingKeyPem: pem, checkpointEvery: 5 });
      for (let i = 0; i < 12; i++) await store.decisions.put(makeRecord({ requestId: `signed-${i}` }));
      assert.deepEqual(
        (await store.log.checkpoints()).map((checkpoint) => checkpoint.seq),
        [5, 10],
      );
      const report = await verifyStoreChain(store, { publicKeys: [publicKey] });
      assert.deepEqual(report.checkpoints, { total: 2, verified: 2 });
      const hashes: string[] = [];
      await store.log.readChain((link) => hashes.push(link.hash) > 0);
      for (const checkpoint of await store.log.checkpoints())
        assert.equal(
          checkpoint.treeRoot,
          treeRoot(hashes.slice(0, checkpoint.seq)),
          `the checkpoint at ${checkpoint.seq} signs the Merkle root of entries 1 to ${checkpoint.seq}`,
        );
      await store.close();
      const reopened = await backend.open({ signingKeyPem: pem, checkpointEvery: 5 });
      try {
        assert.deepEqual(
          (await reopened.log.checkpoints()).map((checkpoint) => checkpoint.seq),
          [5, 10, 12],
          "closing signs the head",
        );
        const other = generateKeyPairSync("ed25519").publicKey;
        assert.equal(
          (await verifyStoreChain(reopened, { publicKeys: [other] })).broken?.reason,
          "unknown_key",
        );
      } finally {
        await reopened.close();
      }
    });
  });
}
