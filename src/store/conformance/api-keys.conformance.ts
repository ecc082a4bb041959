import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StorageError } from "../../core/problem.ts";

import { type BackendUnderTest, storeOpener } from "./backend.conformance.ts";

export function apiKeyConformance(backend: BackendUnderTest): void {
  describe(`ApiKeyStore conformance: ${backend.name}`, () => {
    const withStore = storeOpener(backend);

    it("keeps API keys by hash with their principals, lists them oldest first and revokes them once", () =>
      withStore(async (store) => {
        const first = {
          keyId: "01KEYA",
          keyHash: `sha256:${"a".repeat(64)}`,
          name: "checkout agent",
          principal: "checkout-team",
          scopes: ["decide", "read"],
          tenantId: "acme",
          roles: ["finance-lead"],
          rateLimitPerSecond: 2.5,
          createdAt: "2026-03-01T00:00:00Z",
        };
        const second = {
          keyId: "01KEYB",
          keyHash: `sha256:${"b".repeat(64)}`,
          name: "",
          principal: "01KEYB",
          scopes: ["admin"],
          roles: [],
          createdAt: "2026-03-02T00:00:00Z",
        };
        await store.apiKeys.put(second);
        await store.apiKeys.put(first);
        assert.deepEqual(await store.apiKeys.findByHash(first.keyHash), first);
        assert.deepEqual(await store.apiKeys.findByHash(second.keyHash), second);
        assert.equal(await store.apiKeys.findByHash(`sha256:${"c".repeat(64)}`), undefined);
        await assert.rejects(() => store.apiKeys.put({ ...first, keyId: "01KEYC" }), StorageError);
        assert.deepEqual(
          (await store.apiKeys.list()).map((key) => key.keyId),
          ["01KEYA", "01KEYB"],
        );
        assert.equal(await store.apiKeys.revoke("01KEYA", "2026-03-03T00:00:00Z"), true);
        assert.equal(await store.apiKeys.revoke("01KEYA", "2026-03-04T00:00:00Z"), true);
        assert.equal(await store.apiKeys.revoke("01NOPE"), false);
        assert.equal((await store.apiKeys.findByHash(first.keyHash))?.revokedAt, "2026-03-03T00:00:00Z");
        assert.equal((await store.apiKeys.findByHash(second.keyHash))?.revokedAt, undefined);
      }));
  });
}
