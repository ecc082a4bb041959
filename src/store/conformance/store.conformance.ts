import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { apiKeyConformance } from "./api-keys.conformance.ts";
import { approvalStoreConformance } from "./approvals.conformance.ts";
import { auditLogConformance } from "./audit-log.conformance.ts";
import { type BackendUnderTest, makeRecord } from "./backend.conformance.ts";
import { decisionStoreConformance } from "./decisions.conformance.ts";
import { memoryCaseConformance } from "./memory-cases.conformance.ts";
import { policyRegistryConformance } from "./policy-registry.conformance.ts";
import { velocityConformance } from "./velocity.conformance.ts";
import { webhookConformance } from "./webhooks.conformance.ts";

/** Every aggregate's suite against one backend, and what the store as a whole promises. */
export function storeConformance(backend: BackendUnderTest): void {
  decisionStoreConformance(backend);
  auditLogConformance(backend);
  memoryCaseConformance(backend);
  approvalStoreConformance(backend);
  apiKeyConformance(backend);
  webhookConformance(backend);
  policyRegistryConformance(backend);
  velocityConformance(backend);
  describe(`Store conformance: ${backend.name}`, () => {
    it("answers ping while open and refuses work once closed", async () => {
      const store = await backend.open();
      await store.ping();
      await store.close();
      await assert.rejects(() => store.decisions.get("x"), /closed/);
    });

    it("tells what its writes are doing: pending from the moment they are handed over, and its last commit", async () => {
      const store = await backend.open();
      try {
        assert.deepEqual(store.writeActivity(), { pending: 0, oldestPendingMs: 0 });
        const puts = [store.decisions.put(makeRecord()), store.decisions.put(makeRecord())];
        assert.equal(store.writeActivity().pending, 2);
        await Promise.all(puts);
        const decided = store.writeActivity();
        assert.deepEqual([decided.pending, decided.oldestPendingMs], [0, 0]);
        assert.ok(decided.sinceLastCommitMs !== undefined && decided.sinceLastCommitMs < 60_000);
        await new Promise((resolve) => setTimeout(resolve, 20));
        const aged = store.writeActivity().sinceLastCommitMs ?? 0;
        assert.ok(aged >= 15, `the last commit ages: ${aged} ms`);
        await store.apiKeys.revoke("no-such-key");
        assert.ok((store.writeActivity().sinceLastCommitMs ?? aged) < aged, "any write's commit counts");
      } finally {
        await store.close();
      }
    });
  });
}
