import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import { exampleRequest, startTestServer, type TestServer } from "../testing/server.ts";
import { LumynApiError, LumynClient } from "./index.ts";

describe("lumyn/client against a real server", () => {
  let server: TestServer;
  let client: LumynClient;
  before(async () => {
    server = await startTestServer({ signingSecret: "client-secret" });
    client = new LumynClient({
      baseUrl: `${server.url}/`,
      apiKey: await server.key({ scopes: ["admin"] }),
      signingSecret: "client-secret",
    });
  });
  after(() => server.close());

  it("decides (signed), repeats idempotently, reads, explains and labels", async () => {
    const request = exampleRequest("refund-large", { request_id: "client-1" });
    const decided = await client.decide(request);
    assert.equal(decided.status, "stored");
    assert.equal(decided.record.verdict, "ESCALATE");
    assert.equal((await client.decide(request)).status, "duplicate");
    assert.deepEqual(await client.getDecision(decided.record.decision_id), decided.record);
    const explanation = await client.explain(decided.record.decision_id);
    assert.equal(explanation.because, "R030 matched with ESCALATE");
    const event = await client.label(decided.record.decision_id, { label: "success", severity: 1 });
    const { fingerprint_sha256, ...labelled } = event.data;
    assert.deepEqual(
      [event.type, labelled],
      ["label", { label: "success", severity: 1, projection: "lumyn-fingerprint-v1" }],
    );
    assert.match(String(fingerprint_sha256), /^sha256:[0-9a-f]{64}$/, "the fingerprint memory keeps");
  });

  it("lists page by page, counts, and reads the policy and readiness", async () => {
    for (let i = 0; i < 5; i++)
      await client.decide(exampleRequest("refund-small", { request_id: `client-list-${i}` }));
    const page = await client.listDecisions({ limit: 2 });
    assert.equal(page.decisions.length, 2);
    assert.ok(page.next_cursor);
    const all = [];
    for await (const record of client.decisions({ limit: 2 })) all.push(record.decision_id);
    assert.equal(all.length, 6);
    assert.equal(new Set(all).size, 6);
    const stats = await client.stats({ by: "verdict" });
    assert.deepEqual([stats.total, stats.groups], [6, { ALLOW: 5, ESCALATE: 1 }]);
    assert.equal((await client.policy()).policy_hash, STARTER_POLICY_HASH);
    assert.equal(await client.ready(), true);
  });

  it("throws the server's problem document as a LumynApiError", async () => {
    const conflict = await client.decide(exampleRequest("refund-small", { request_id: "client-1" })).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(conflict instanceof LumynApiError);
    assert.equal(conflict.status, 409);
    assert.equal(conflict.problem.code, "request_id_conflict");
    assert.equal(conflict.problem.errors?.[0]?.pointer, "/request_id");
    const unsigned = new LumynClient({
      baseUrl: server.url,
      apiKey: await server.key({ scopes: ["decide"] }),
    });
    await assert.rejects(
      () => unsigned.decide(exampleRequest("refund-small")),
      (error: unknown) => error instanceof LumynApiError && error.problem.code === "signature_required",
    );
    const anonymous = new LumynClient({ baseUrl: server.url });
    await assert.rejects(
      () => anonymous.policy(),
      (error: unknown) => error instanceof LumynApiError && error.status === 401,
    );
  });

  it("downloads a pack, and follows an approval: vote, wait, events, consume", async () => {
    const approvals = await startTestServer({
      policy: `schema_version: policy.v1
policy_id: p
policy_version: "1"
defaults: { mode: enforce, default_verdict: ESCALATE, default_reason_code: ASK, approval: { approver_roles: [finance] } }
rules:
  - { id: SMALL, stage: ALLOW_PATHS, if: { amount_usd: { lt: 1 } }, then: { verdict: ALLOW, reason_codes: [TINY] } }
`,
    });
    try {
      const agent = new LumynClient({
        baseUrl: approvals.url,
        apiKey: await approvals.key({ scopes: ["decide", "read"] }),
      });
      const approver = new LumynClient({
        baseUrl: approvals.url,
        apiKey: await approvals.key({ scopes: ["approve", "read"], name: "alice", roles: ["finance"] }),
      });
      const decided = await agent.decide(exampleRequest("refund-small", { request_id: "client-approval" }));
      assert.equal(decided.record.verdict, "ESCALATE");
      assert.ok(decided.approvalId);
      const pack = await agent.pack(decided.record.decision_id);
      assert.deepEqual([...pack.subarray(0, 2)], [0x50, 0x4b], "a zip");
      assert.deepEqual(
        (await approver.listApprovals({ state: "WAITING_FOR_HUMAN" })).map((a) => a.approval_id),
        [decided.approvalId],
      );
      const waiting = agent.waitForApproval(decided.approvalId, 20);
      const events = agent.approvalEvents(decided.approvalId);
      assert.equal((await events.next()).value?.state, "WAITING_FOR_HUMAN");
      const approved = await approver.vote(decided.approvalId, "approve", {
        justification: "ok",
        idempotencyKey: "v1",
      });
      assert.equal(approved.state, "APPROVED");
      assert.equal((await waiting).state, "APPROVED");
      assert.deepEqual((await events.next()).value, approved);
      assert.equal(
        (await agent.consume(decided.approvalId, decided.record.determinism.inputs_digest)).state,
        "CONSUMED",
      );
      assert.equal((await events.next()).value?.state, "CONSUMED");
      assert.equal((await events.next()).done, true, "the stream ends with the final state");
      await assert.rejects(
        () => agent.consume(decided.approvalId as string, decided.record.determinism.inputs_digest),
        (error: unknown) => error instanceof LumynApiError && error.problem.code === "not_approved",
      );
    } finally {
      await approvals.close();
    }
  });
});
