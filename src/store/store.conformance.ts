/**
 * The conformance suite every Store backend runs: the same cases, parameterised by how to open the backend,
 * so that no backend can drift from the contract in `store.ts`.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { STARTER_POLICY } from "../assets/starter-policy.ts";
import { verifyStoreChain } from "../audit/verify.ts";
import { canonicalJson, type JsonObject } from "../core/json.ts";
import { openApproval, vote } from "../domain/approval.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import { decide } from "../engine/decide.ts";
import { loadPolicy, type Policy } from "../policy/policy.ts";
import { StorageError, type Store, type StoredDecisionPage } from "./store.ts";

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

export function storeConformance(backend: BackendUnderTest): void {
  describe(`Store conformance: ${backend.name}`, () => {
    const withStore = async (test: (store: Store) => Promise<void>): Promise<void> => {
      const store = await backend.open();
      try {
        await test(store);
      } finally {
        await store.close();
      }
    };

    it("stores a record and returns it byte for byte", () =>
      withStore(async (store) => {
        const record = makeRecord();
        assert.deepEqual(await store.putDecision(record), { status: "stored" });
        const read = await store.getDecision(record.decision_id);
        assert.ok(read);
        assert.equal(canonicalJson(read), canonicalJson(record));
        assert.equal(await store.getDecision("01NOPE"), undefined);
        assert.deepEqual(await store.getDecisionJson(record.decision_id), {
          json: canonicalJson(record),
          tenantId: "acme",
        });
        assert.equal(await store.getDecisionJson("01NOPE"), undefined);
      }));

    it("is idempotent on (tenant, request_id): same request returns the stored record, a different one conflicts", () =>
      withStore(async (store) => {
        const first = makeRecord({ requestId: "r-1" });
        const again = makeRecord({ requestId: "r-1" });
        const different = makeRecord({ requestId: "r-1", amount: 500 });
        const otherTenant = makeRecord({ requestId: "r-1", tenant: "globex" });
        assert.deepEqual(await store.putDecision(first), { status: "stored" });
        const duplicate = await store.putDecision(again);
        assert.equal(duplicate.status, "duplicate");
        assert.equal(duplicate.status === "duplicate" && duplicate.record.decision_id, first.decision_id);
        assert.deepEqual(await store.putDecision(different), {
          status: "conflict",
          existingDecisionId: first.decision_id,
        });
        assert.deepEqual(await store.putDecision(otherTenant), { status: "stored" });
        assert.equal((await store.findByRequestId("acme", "r-1"))?.decision_id, first.decision_id);
        assert.equal((await store.stats({ by: "verdict" })).total, 2);
      }));

    it("keeps one record per request_id when the same request races itself", () =>
      withStore(async (store) => {
        const records = Array.from({ length: 20 }, () => makeRecord({ requestId: "race" }));
        const results = await Promise.all(records.map((record) => store.putDecision(record)));
        assert.equal(results.filter((r) => r.status === "stored").length, 1);
        assert.equal(results.filter((r) => r.status === "duplicate").length, 19);
        assert.equal((await store.stats({ by: "verdict" })).total, 1);
      }));

    it("fails a record that cannot be stored alone, not the decisions written with it", () =>
      withStore(async (store) => {
        const first = makeRecord({ requestId: "a" });
        const sameId = { ...makeRecord({ requestId: "b" }), decision_id: first.decision_id };
        const other = makeRecord({ requestId: "c" });
        const results = await Promise.allSettled([
          store.putDecision(first),
          store.putDecision(sameId),
          store.putDecision(other),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ["fulfilled", "rejected", "fulfilled"],
        );
        assert.ok(results[1]?.status === "rejected" && results[1].reason instanceof StorageError);
        assert.equal((await store.stats({ by: "verdict" })).total, 2);
        assert.equal(await store.findByRequestId("acme", "b"), undefined);
      }));

    it("keeps policy snapshots by hash", () =>
      withStore(async (store) => {
        const snapshot = {
          policyHash: `sha256:${"1".repeat(64)}`,
          policyId: "p",
          policyVersion: "1",
          text: "rules: []\n# é\n",
        };
        await store.putPolicy(snapshot);
        await store.putPolicy(snapshot);
        assert.deepEqual(await store.getPolicy(snapshot.policyHash), snapshot);
        assert.equal(await store.getPolicy(`sha256:${"2".repeat(64)}`), undefined);
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
        for (const record of records) await store.putDecision(record);
        const ids = (page: StoredDecisionPage) => page.decisions.map((decision) => decision.decisionId);
        const page1 = await store.listDecisionJson({ limit: 2 });
        assert.deepEqual(ids(page1), [records[4]?.decision_id, records[3]?.decision_id]);
        assert.deepEqual(
          page1.decisions.map((decision) => decision.json),
          [records[4], records[3]].map((record) => canonicalJson(record as DecisionRecord)),
          "each decision as its stored canonical JSON",
        );
        await store.putDecision(makeRecord());
        const page2 = await store.listDecisionJson({
          limit: 2,
          ...(page1.nextCursor ? { cursor: page1.nextCursor } : {}),
        });
        assert.deepEqual(ids(page2), [records[2]?.decision_id, records[1]?.decision_id]);
        const page3 = await store.listDecisionJson({
          limit: 2,
          ...(page2.nextCursor ? { cursor: page2.nextCursor } : {}),
        });
        assert.deepEqual(ids(page3), [records[0]?.decision_id]);
        assert.equal(page3.nextCursor, undefined);

        const filtered = async (query: object) => ids(await store.listDecisionJson(query));
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
        await store.putDecision(makeRecord({ now: new Date("2026-02-01T00:00:00Z") }));
        await store.putDecision(makeRecord({ now: new Date("2026-02-02T00:00:00Z") }));
        await store.putDecision(makeRecord({ now: new Date("2026-02-03T00:00:00Z"), amount: 500 }));
        await store.putDecision(makeRecord({ now: new Date("2026-02-04T00:00:00Z"), ticket: "" }));
        assert.deepEqual(await store.stats({ by: "verdict" }), {
          total: 4,
          groups: [
            { key: "ALLOW", count: 2 },
            { key: "DENY", count: 1 },
            { key: "ESCALATE", count: 1 },
          ],
        });
        // The DENY record also matched the ALLOW path: every reason code on a record counts.
        assert.deepEqual((await store.stats({ by: "reason_code", since: "2026-02-03T00:00:00Z" })).groups, [
          { key: "MISSING_EVIDENCE_REFUND", count: 1 },
          { key: "REFUND_OVER_ESCALATION_LIMIT", count: 1 },
          { key: "REFUND_SMALL_LOW_RISK", count: 1 },
        ]);
        assert.deepEqual(await store.stats({ by: "action_type", until: "2026-02-02T00:00:00Z" }), {
          total: 1,
          groups: [{ key: "support.refund", count: 1 }],
        });
      }));

    it("appends events in order and never changes them", () =>
      withStore(async (store) => {
        const record = makeRecord();
        await store.putDecision(record);
        const first = await store.appendEvent({
          decisionId: record.decision_id,
          type: "label",
          data: { label: "failure" },
        });
        await store.appendEvent({
          decisionId: record.decision_id,
          type: "label",
          data: { label: "success", n: 1.5 },
        });
        const events = await store.listEvents(record.decision_id);
        assert.deepEqual(
          events.map((e) => e.data),
          [{ label: "failure" }, { label: "success", n: 1.5 }],
        );
        assert.equal(events[0]?.eventId, first.eventId);
        assert.deepEqual(await store.listEvents("01NOPE"), []);
      }));

    it("keeps labels as events and the latest as memory's case, and refuses labels of unknown decisions", () =>
      withStore(async (store) => {
        const record = makeRecord();
        await store.putDecision(record);
        const vector = Int8Array.from({ length: 128 }, (_, i) => (i % 7) - 3);
        const label = {
          decisionId: record.decision_id,
          tenantId: "acme",
          actionType: "support.refund",
          fingerprint: vector,
          projection: "p",
        };
        assert.ok(await store.putLabel({ ...label, label: "failure", summary: "fraud", severity: 4 }));
        assert.ok(await store.putLabel({ ...label, label: "success" }));
        assert.equal(await store.putLabel({ ...label, decisionId: "01NOPE", label: "failure" }), undefined);
        assert.deepEqual(
          (await store.listEvents(record.decision_id)).map((e) => [e.type, e.data]),
          [
            ["label", { label: "failure", summary: "fraud", severity: 4 }],
            ["label", { label: "success" }],
          ],
        );
        assert.deepEqual(await store.memoryScopes(), [
          { tenantId: "acme", actionType: "support.refund", count: 1 },
        ]);
        const cases: unknown[] = [];
        assert.equal(await store.loadMemory((memoryCase) => cases.push(memoryCase)), 1);
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
          await store.memorySummaries([record.decision_id, "01NOPE"]),
          new Map([[record.decision_id, ""]]),
        );
        assert.deepEqual(await store.memoryCases([record.decision_id, "01NOPE"]), cases);
      }));

    it("chains every stored decision and event, in one chain under concurrent writes", () =>
      withStore(async (store) => {
        const records = Array.from({ length: 40 }, (_, i) => makeRecord({ requestId: `chain-${i}` }));
        const results = await Promise.all([
          ...records.map((record) => store.putDecision(record)),
          store.putDecision(makeRecord({ requestId: "chain-0" })),
          store.putDecision(makeRecord({ requestId: "chain-1", amount: 999 })),
        ]);
        assert.deepEqual(
          results.slice(-2).map((r) => r.status),
          ["duplicate", "conflict"],
        );
        const first = records[0] as DecisionRecord;
        await Promise.all([
          store.appendEvent({ decisionId: first.decision_id, type: "note", data: { text: "é" } }),
          store.putLabel({
            decisionId: first.decision_id,
            label: "failure",
            tenantId: "acme",
            actionType: "support.refund",
            fingerprint: new Int8Array(128),
            projection: "p",
          }),
          store.putDecision(makeRecord({ requestId: "chain-late" })),
        ]);
        const links: { seq: number; kind: string; refId: string }[] = [];
        await store.readChain((link) => {
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
        assert.deepEqual(await store.unchainedRows(), []);
        const report = await verifyStoreChain(store);
        assert.equal(report.broken, undefined);
        assert.equal(report.length, 43);
        assert.match(report.headHash, /^sha256:[0-9a-f]{64}$/);
      }));

    it("signs the chain's head every N entries and on close, and the signatures verify", async () => {
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const store = await backend.open({ signingKeyPem: pem, checkpointEvery: 5 });
      for (let i = 0; i < 12; i++) await store.putDecision(makeRecord({ requestId: `signed-${i}` }));
      assert.deepEqual(
        (await store.listCheckpoints()).map((checkpoint) => checkpoint.seq),
        [5, 10],
      );
      const report = await verifyStoreChain(store, publicKey);
      assert.deepEqual(report.checkpoints, { total: 2, verified: 2 });
      await store.close();
      const reopened = await backend.open({ signingKeyPem: pem, checkpointEvery: 5 });
      try {
        assert.deepEqual(
          (await reopened.listCheckpoints()).map((checkpoint) => checkpoint.seq),
          [5, 10, 12],
          "closing signs the head",
        );
        const other = generateKeyPairSync("ed25519").publicKey;
        assert.equal((await verifyStoreChain(reopened, other)).broken?.reason, "unknown_key");
      } finally {
        await reopened.close();
      }
    });

    it("visits stored decisions oldest first, filtered and limited", () =>
      withStore(async (store) => {
        const records = [
          makeRecord({ now: new Date("2026-03-01T00:00:00Z") }),
          makeRecord({ now: new Date("2026-03-02T00:00:00Z"), tenant: "globex" }),
          makeRecord({ now: new Date("2026-03-03T00:00:00Z") }),
          makeRecord({ now: new Date("2026-03-04T00:00:00Z") }),
        ];
        for (const record of records) await store.putDecision(record);
        const visited = async (query: object) => {
          const ids: string[] = [];
          const count = await store.scanDecisions(query, (json) => ids.push(JSON.parse(json).decision_id));
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

    it("keeps API keys by hash, lists them oldest first and revokes them once", () =>
      withStore(async (store) => {
        const first = {
          keyId: "01KEYA",
          keyHash: `sha256:${"a".repeat(64)}`,
          name: "checkout agent",
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
          scopes: ["admin"],
          roles: [],
          createdAt: "2026-03-02T00:00:00Z",
        };
        await store.putApiKey(second);
        await store.putApiKey(first);
        assert.deepEqual(await store.findApiKey(first.keyHash), first);
        assert.equal(await store.findApiKey(`sha256:${"c".repeat(64)}`), undefined);
        await assert.rejects(() => store.putApiKey({ ...first, keyId: "01KEYC" }), StorageError);
        assert.deepEqual(
          (await store.listApiKeys()).map((key) => key.keyId),
          ["01KEYA", "01KEYB"],
        );
        assert.equal(await store.revokeApiKey("01KEYA", "2026-03-03T00:00:00Z"), true);
        assert.equal(await store.revokeApiKey("01KEYA", "2026-03-04T00:00:00Z"), true);
        assert.equal(await store.revokeApiKey("01NOPE"), false);
        assert.equal((await store.findApiKey(first.keyHash))?.revokedAt, "2026-03-03T00:00:00Z");
        assert.equal((await store.findApiKey(second.keyHash))?.revokedAt, undefined);
      }));

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
          (await store.putDecision(record, undefined, { approval: opened, events: [openEvent] })).status,
          "stored",
        );
        const again = await store.putDecision(record, undefined, {
          approval: { ...opened, approval_id: "01OTHER" },
          events: [openEvent],
        });
        assert.equal(again.status, "duplicate");
        assert.equal(await store.getApproval("01OTHER"), undefined, "a repeated request opens nothing");
        assert.deepEqual(await store.getApproval("01APPROVAL"), opened);
        assert.deepEqual(await store.findApproval(record.decision_id), opened);
        assert.deepEqual(
          (await store.listApprovals({ state: "WAITING_FOR_HUMAN", role: "finance" })).map(
            (a) => a.approval_id,
          ),
          ["01APPROVAL"],
        );
        assert.deepEqual(await store.listApprovals({ role: "cfo" }), []);
        assert.deepEqual(await store.listApprovals({ tenantId: "globex" }), []);

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
        assert.equal(await store.updateApproval(change), true);
        assert.equal(
          await store.updateApproval(change),
          false,
          "a second writer over the same version loses",
        );
        assert.equal((await store.getApproval("01APPROVAL"))?.state, "APPROVED");
        assert.deepEqual(
          (await store.listEvents(record.decision_id)).map((e) => e.data.to),
          ["WAITING_FOR_HUMAN", "APPROVED"],
          "each change is an event of the decision, written with it",
        );
        assert.equal((await verifyStoreChain(store)).length, 3, "the decision and both events are chained");
        assert.deepEqual(await store.dueApprovals("2026-03-01T00:29:59Z"), []);
        assert.deepEqual(
          (await store.dueApprovals("2026-03-01T00:30:00Z")).map((a) => a.approval_id),
          ["01APPROVAL"],
          "an approved approval not consumed by its deadline is due",
        );
      }));

    it("keeps webhooks, their progress and delivery log, reads events after a sequence number, and leases by compare-and-set", () =>
      withStore(async (store) => {
        assert.equal(await store.lastEventSeq(), 0);
        const record = makeRecord();
        await store.putDecision(record);
        await store.appendEvent({ decisionId: record.decision_id, type: "label", data: { n: 1 } });
        await store.appendEvent({
          decisionId: record.decision_id,
          type: "approval_transition",
          data: { n: 2 },
        });
        await store.appendEvent({
          decisionId: record.decision_id,
          type: "approval_transition",
          data: { n: 3 },
        });
        const last = await store.lastEventSeq();
        const after = await store.eventsAfter(0, ["approval_transition"], 10);
        assert.deepEqual(
          after.map((e) => e.event.data.n),
          [2, 3],
        );
        assert.equal(after[1]?.seq, last);
        assert.deepEqual(
          (await store.eventsAfter(after[0]?.seq ?? 0, ["approval_transition"], 10)).map(
            (e) => e.event.data.n,
          ),
          [3],
        );
        assert.equal((await store.eventsAfter(0, ["approval_transition"], 1)).length, 1);

        const webhook = {
          webhookId: "01HOOK",
          url: "http://127.0.0.1:1/h",
          secret: "s".repeat(20),
          name: "ops",
          createdAt: "2026-03-01T00:00:00Z",
          cursorSeq: 0,
          attempts: 0,
        };
        await store.putWebhook(webhook);
        assert.deepEqual(await store.listWebhooks(), [webhook]);
        assert.equal(
          await store.claimWebhook("01HOOK", "a", "2026-03-01T00:01:00Z", "2026-03-01T00:00:00Z"),
          true,
        );
        assert.equal(
          await store.claimWebhook("01HOOK", "b", "2026-03-01T00:01:00Z", "2026-03-01T00:00:30Z"),
          false,
        );
        assert.equal(
          await store.claimWebhook("01HOOK", "b", "2026-03-01T00:02:00Z", "2026-03-01T00:01:00Z"),
          true,
        );
        const attempt = {
          webhookId: "01HOOK",
          eventId: after[0]?.event.eventId as string,
          attempt: 1,
          outcome: "failed" as const,
          httpStatus: 503,
          at: "2026-03-01T00:00:10Z",
        };
        await store.recordDelivery(attempt, {
          webhookId: "01HOOK",
          cursorSeq: 0,
          attempts: 1,
          nextAttemptAt: "2026-03-01T00:00:11Z",
        });
        const delivered = {
          ...attempt,
          attempt: 2,
          outcome: "delivered" as const,
          httpStatus: 200,
          at: "2026-03-01T00:00:12Z",
        };
        await store.recordDelivery(delivered, {
          webhookId: "01HOOK",
          cursorSeq: after[0]?.seq as number,
          attempts: 0,
        });
        assert.deepEqual(await store.listDeliveries({ webhookId: "01HOOK" }), [delivered, attempt]);
        assert.deepEqual(await store.listDeliveries({ webhookId: "01NONE" }), []);
        assert.deepEqual(await store.listWebhooks(), [{ ...webhook, cursorSeq: after[0]?.seq, attempts: 0 }]);
        assert.equal(await store.deleteWebhook("01HOOK"), true);
        assert.equal(await store.deleteWebhook("01HOOK"), false);
        assert.deepEqual(await store.listWebhooks(), []);
      }));

    it("keeps a policy registry per tenant: history in order, one active version, compare-and-set changes", () =>
      withStore(async (store) => {
        assert.deepEqual(await store.activePolicies(), new Map());
        const detail = { by: "test" };
        await store.appendPolicyEvent({
          tenantId: "acme",
          type: "published",
          policyHash: "sha256:a",
          detail,
        });
        assert.deepEqual(await store.activePolicies(), new Map(), "publishing activates nothing");
        const activated = await store.appendPolicyEvent({
          tenantId: "acme",
          type: "activated",
          policyHash: "sha256:a",
          expectedActive: null,
          detail,
        });
        assert.equal(activated?.policyHash, "sha256:a");
        assert.equal(
          await store.appendPolicyEvent({
            tenantId: "acme",
            type: "activated",
            policyHash: "sha256:b",
            expectedActive: null,
            detail,
          }),
          undefined,
          "a change computed from a stale active version loses and writes nothing",
        );
        await store.appendPolicyEvent({
          tenantId: "acme",
          type: "rejected",
          detail: { by: "redis", problems: [{ code: "yaml" }] },
        });
        await store.appendPolicyEvent({
          tenantId: "*",
          type: "activated",
          policyHash: "sha256:d",
          expectedActive: null,
          detail,
        });
        await store.appendPolicyEvent({
          tenantId: "acme",
          type: "rolled_back",
          policyHash: "sha256:z",
          expectedActive: "sha256:a",
          detail,
        });
        assert.deepEqual(
          await store.activePolicies(),
          new Map([
            ["*", "sha256:d"],
            ["acme", "sha256:z"],
          ]),
          "a rejected document leaves the active version as it was",
        );
        const history = await store.listPolicyEvents("acme");
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
        assert.equal((await store.listPolicyEvents()).length, 5);
      }));

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
          await store.putDecision({ ...record, verdict: (options.verdict ?? "ALLOW") as never });
        };
        await put(0, { verdict: "DENY" });
        await put(10, { verdict: "DENY", amount: 100 });
        await put(20, { verdict: "ALLOW", amount: 50, currency: "EUR" });
        await put(30, { verdict: "DENY", subject: "agent-2" });
        await put(40, { verdict: "DENY", tenant: "globex" });
        await put(59, { verdict: "DENY" });
        const window = { since: at(5).toISOString(), until: at(59).toISOString() };
        const bySubject = { tenantId: "acme", groupBy: ["subject", "id"], groupValue: "agent-1", ...window };
        assert.equal(await store.velocity({ ...bySubject, measure: { kind: "count" } }), 2);
        assert.equal(
          await store.velocity({ ...bySubject, measure: { kind: "count" }, verdicts: ["DENY"] }),
          1,
          "only DENY, only in the window (the end is exclusive), only this subject and tenant",
        );
        assert.equal(
          await store.velocity({ ...bySubject, measure: { kind: "sum_amount_usd" } }),
          200,
          "100 USD, and 50 EUR at 2 USD per EUR",
        );
        assert.equal(
          await store.velocity({
            ...bySubject,
            measure: { kind: "sum_path", segments: ["action", "amount", "value"] },
          }),
          150,
        );
        assert.equal(
          await store.velocity({
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
          await store.velocity({ ...bySubject, groupValue: "nobody", measure: { kind: "sum_amount_usd" } }),
          0,
        );
        for (const [path, value] of [
          [["evidence", "order_id"], "O-1"],
          [["evidence", "customer_age_days"], 100],
        ] as const) {
          assert.equal(
            await store.velocity({
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
          await store.velocity({ ...bySubject, measure: { kind: "count" }, actionTypes: ["payout.create"] }),
          0,
        );
      }));

    it("answers ping while open and refuses work once closed", async () => {
      const store = await backend.open();
      await store.ping();
      await store.close();
      await assert.rejects(() => store.getDecision("x"), /closed/);
    });
  });
}
