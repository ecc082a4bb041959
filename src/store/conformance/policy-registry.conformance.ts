import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type BackendUnderTest, storeOpener } from "./backend.conformance.ts";

export function policyRegistryConformance(backend: BackendUnderTest): void {
  describe(`PolicyRegistryStore (snapshots and the registry) conformance: ${backend.name}`, () => {
    const withStore = storeOpener(backend);

    it("keeps policy snapshots by hash", () =>
      withStore(async (store) => {
        const snapshot = {
          policyHash: `sha256:${"1".repeat(64)}`,
          policyId: "p",
          policyVersion: "1",
          text: "rules: []\n# é\n",
        };
        await store.policies.putSnapshot(snapshot);
        await store.policies.putSnapshot(snapshot);
        assert.deepEqual(await store.policies.getSnapshot(snapshot.policyHash), snapshot);
        assert.equal(await store.policies.getSnapshot(`sha256:${"2".repeat(64)}`), undefined);
      }));

    it("keeps a policy registry per tenant: history in order, one active version, compare-and-set changes", () =>
      withStore(async (store) => {
        assert.deepEqual(await store.policies.active(), new Map());
        const detail = { by: "test" };
        await store.policies.append({
          tenantId: "acme",
          type: "published",
          policyHash: "sha256:a",
          detail,
        });
        assert.deepEqual(await store.policies.active(), new Map(), "publishing activates nothing");
        const activated = await store.policies.append({
          tenantId: "acme",
          type: "activated",
          policyHash: "sha256:a",
          expectedActive: null,
          detail,
        });
        assert.equal(activated?.policyHash, "sha256:a");
        assert.equal(
          await store.policies.append({
            tenantId: "acme",
            type: "activated",
            policyHash: "sha256:b",
            expectedActive: null,
            detail,
          }),
          undefined,
          "a change computed from a stale active version loses and writes nothing",
        );
        await store.policies.append({
          tenantId: "acme",
          type: "rejected",
          detail: { by: "redis", problems: [{ code: "yaml" }] },
        });
        await store.policies.append({
          tenantId: "*",
          type: "activated",
          policyHash: "sha256:d",
          expectedActive: null,
          detail,
        });
        await store.policies.append({
          tenantId: "acme",
          type: "rolled_back",
          policyHash: "sha256:z",
          expectedActive: "sha256:a",
          detail,
        });
        assert.deepEqual(
          await store.policies.active(),
          new Map([
            ["*", "sha256:d"],
            ["acme", "sha256:z"],
          ]),
          "a rejected document leaves the active version as it was",
        );
        const history = await store.policies.history("acme");
        assert.deepEqual(
          history.map((event) => [event.type, event.policyHash]),
          [
            ["published", "sha256:a"],
            ["activated", "sha256:a"],
            ["rejected", undefined],
            ["rolled_back", "sha256:z"],
          ],
        );
        assert.deepEqual(history[2]?.detail, { by: "redis", problems: [{ code: "yaml" }] });
        assert.ok(history.every((event, i) => i === 0 || event.seq > (history[i - 1]?.seq ?? 0)));
        assert.equal((await store.policies.history()).length, 5);
      }));
  });
}
