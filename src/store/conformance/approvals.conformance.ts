import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { verifyStoreChain } from "../../audit/verify.ts";
import { openApproval, vote } from "../../domain/approval.ts";

import { type BackendUnderTest, makeRecord, storeOpener } from "./backend.conformance.ts";

export function approvalStoreConformance(backend: BackendUnderTest): void {
  describe(`ApprovalStore conformance: ${backend.name}`, () => {
    const withStore = storeOpener(backend);

    it("opens an approval with its decision, once, and applies changes only over the version they came from", () =>
      withStore(async (store) => {
        const record = makeRecord({ requestId: "ap-1", amount: 900 });
        const settings = {
          approverRoles: ["finance"],
          quorum: 1,
          timeout: "30m",
          timeoutMs: 1_800_000,
          onTimeout: "DENY" as const,
          escalationRoles: [],
          separationOfDuties: true,
        };
        const opened = openApproval(
          {
            approvalId: "01APPROVAL",
            decisionId: record.decision_id,
            tenantId: "acme",
            inputsDigest: record.determinism.inputs_digest,
            recordDigest: "sha256:rec",
            policyHash: record.policy.policy_hash,
            requesterId: "agent-1",
            settings,
          },
          new Date("2026-03-01T00:00:00Z"),
        );
        const openEvent = {
          decisionId: record.decision_id,
          type: "approval_transition",
          data: { approval_id: "01APPROVAL", to: "WAITING_FOR_HUMAN" },
          createdAt: opened.created_at,
        };
        assert.equal(
          (await store.decisions.put(record, undefined, { approval: opened, events: [openEvent] })).status,
          "stored",
        );
        const again = await store.decisions.put(record, undefined, {
          approval: { ...opened, approval_id: "01OTHER" },
          events: [openEvent],
        });
        assert.equal(again.status, "duplicate");
        assert.equal(await store.approvals.get("01OTHER"), undefined, "a repeated request opens nothing");
        assert.deepEqual(await store.approvals.get("01APPROVAL"), opened);
        assert.deepEqual(await store.approvals.findByDecision(record.decision_id), opened);
        assert.deepEqual(
          (await store.approvals.list({ state: "WAITING_FOR_HUMAN", role: "finance" })).map(
            (a) => a.approval_id,
          ),
          ["01APPROVAL"],
        );
        assert.deepEqual(await store.approvals.list({ role: "cfo" }), []);
        assert.deepEqual(await store.approvals.list({ tenantId: "globex" }), []);

        const voted = vote(
          opened,
          {
            actor: { id: "fin-1", roles: ["finance"] },
            decision: "approve",
            justification: "ok",
            idempotencyKey: "k",
          },
          new Date("2026-03-01T00:10:00Z"),
        );
        assert.ok(voted.ok);
        const change = {
          approval: voted.value.approval,
          expectedVersion: opened.version,
          events: [{ decisionId: record.decision_id, type: "approval_transition", data: { to: "APPROVED" } }],
        };
        assert.equal(await store.approvals.update(change), true);
        assert.equal(
          await store.approvals.update(change),
          false,
          "a second writer over the same version loses",
        );
        assert.equal((await store.approvals.get("01APPROVAL"))?.state, "APPROVED");
        assert.deepEqual(
          (await store.log.events(record.decision_id)).map((e) => e.data.to),
          ["WAITING_FOR_HUMAN", "APPROVED"],
          "each change is an event of the decision, written with it",
        );
        assert.equal((await verifyStoreChain(store)).length, 3, "the decision and both events are chained");
        assert.deepEqual(await store.approvals.due("2026-03-01T00:29:59Z"), []);
        assert.deepEqual(
          (await store.approvals.due("2026-03-01T00:30:00Z")).map((a) => a.approval_id),
          ["01APPROVAL"],
          "an approved approval not consumed by its deadline is due",
        );
      }));
  });
}
