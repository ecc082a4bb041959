/**
 * What the store conformance suites share: the backend under test, and records to store. Each aggregate of
 * the Store (src/store/store.ts) has its own suite beside this file; every backend runs all of them (see
 * store.conformance.ts), so that no backend can drift from the contract.
 */
import assert from "node:assert/strict";
import { STARTER_POLICY } from "../../assets/starter-policy.ts";
import type { JsonObject } from "../../core/json.ts";
import type { DecisionRecord } from "../../domain/decision-record.ts";
import { decide } from "../../engine/decide.ts";
import { loadPolicy, type Policy } from "../../policy/policy.ts";
import type { Store } from "../store.ts";

export interface BackendUnderTest {
  readonly name: string;
  /** A new, empty store for one test; with a signing key, it signs the head of its audit chain. */
  open(options?: { signingKeyPem?: string; checkpointEvery?: number }): Promise<Store>;
}

let starterPolicy: Policy | undefined;

function starter(): Policy {
  if (!starterPolicy) {
    const loaded = loadPolicy(STARTER_POLICY);
    assert.ok(loaded.ok);
    starterPolicy = loaded.value;
  }
  return starterPolicy;
}

export function makeRecord(
  overrides: { requestId?: string; tenant?: string; amount?: number; ticket?: string; now?: Date } = {},
): DecisionRecord {
  const request: JsonObject = {
    schema_version: "decision_request.v1",
    ...(overrides.requestId ? { request_id: overrides.requestId } : {}),
    tenant: { tenant_id: overrides.tenant ?? "acme" },
    subject: { type: "agent", id: "agent-1" },
    action: {
      type: "support.refund",
      intent: "refund",
      amount: { value: overrides.amount ?? 20, currency: "USD" },
    },
    evidence: {
      ...(overrides.ticket === "" ? {} : { ticket_id: overrides.ticket ?? "T-1" }),
      order_id: "O-1",
      customer_id: "C-1",
      payment_instrument_risk: "low",
      chargeback_risk: 0.1,
      previous_refund_count_90d: 0,
      customer_age_days: 100,
    },
    context: { mode: "digest_only", digest: `sha256:${"0".repeat(64)}` },
  };
  const decided = decide(request, starter(), overrides.now ? { now: overrides.now } : {});
  assert.ok(decided.ok);
  return decided.value.record;
}

/** Runs `test` with a new, empty store of the backend, closed afterwards. */
export function storeOpener(
  backend: BackendUnderTest,
): (test: (store: Store) => Promise<void>) => Promise<void> {
  return async (test) => {
    const store = await backend.open();
    try {
      await test(store);
    } finally {
      await store.close();
    }
  };
}
