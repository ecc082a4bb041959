import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { apiKeyConformance } from "./api-keys.conformance.ts";
import { approvalStoreConformance } from "./approvals.conformance.ts";
import { auditLogConformance } from "./audit-log.conformance.ts";
import type { BackendUnderTest } from "./backend.conformance.ts";
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
  });
}
