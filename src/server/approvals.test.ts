import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ROUTES } from "../api/index.ts";
import { signBody } from "../core/digest.ts";
import { assertProblem, call } from "../testing/http.ts";
import { exampleRequest, startTestServer, type TestServer } from "../testing/server.ts";

const POLICY = `schema_version: policy.v1
policy_id: payouts-with-approval
policy_version: "1"
defaults: { mode: enforce, default_verdict: ALLOW, default_reason_code: SMALL }
rules:
  - id: BIG
    stage: ESCALATIONS
    if: { amount_usd: { gt: 500 } }
    then:
      verdict: ESCALATE
      reason_codes: [BIG]
      approval: { approver_roles: [finance], quorum: 1, timeout: 1h }
  - id: HIGH_MATERIALITY
    stage: ESCALATIONS
    if: { evidence.materiality: { eq: HIGH } }
    then:
      verdict: ESCALATE
      reason_codes: [HIGH_MATERIALITY]
      approval: { approver_roles: [finance_manager], timeout: 30m, on_timeout: ESCALATE, escalation_roles: [cfo] }
`;

describe("HTTP service: approvals", () => {
  let server: TestServer;
  let agent: string;
  let alice: string;
  let bob: string;
  let reader: string;
  let outsider: string;
  let requester: string;
  before(async () => {
    server = await startTestServer({ policy: POLICY });
    agent = await server.key({ scopes: ["decide", "read"], name: "agent-7" });
    alice = await server.key({ scopes: ["approve", "read"], name: "alice", roles: ["finance"] });
    bob = await server.key({ scopes: ["approve", "read"], name: "bob", roles: ["support"] });
    reader = await server.key({ scopes: ["read"], name: "auditor" });
    outsider = await server.key({
      scopes: ["approve", "read"],
      name: "eve",
      roles: ["finance"],
      tenantId: "globex",
    });
    requester = await server.key({ scopes: ["approve"], name: "agent-7", roles: ["finance"] });
  });
  after(() => server.close());

  const escalate = async (requestId: string) => {
    const request = exampleRequest("refund-small", {
      request_id: requestId,
      subject: { type: "agent", id: "agent-7" },
      action: { type: "support.refund", intent: "refund", amount: { value: 900, currency: "USD" } },
    });
    const answer = await call(server, "POST", "/v1/decide", { key: agent, body: request });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.verdict, "ESCALATE");
    const id = answer.headers.get("lumyn-approval-id");
    assert.ok(id, "the decide answer names the approval it opened");
    return { id, decision: answer.body };
  };
  const vote = (key: string, id: string, decision: "approve" | "reject", body: object, headers = {}) =>
    call(server, "POST", `/v1/approvals/${id}/${decision}`, { key, body, headers });

  it("opens an approval with an ESCALATE; votes take identity and roles from the key, never the body", async () => {
    const { id, decision } = await escalate("h-1");
    const listed = await call(server, "GET", "/v1/approvals?state=WAITING_FOR_HUMAN&role=finance", {
      key: reader,
    });
    assert.equal(listed.status, 200);
    const opened = listed.body.approvals.find((a: { approval_id: string }) => a.approval_id === id);
    const agentKey = (await server.lumyn.store.apiKeys.list()).find((key) => key.scopes.includes("decide"));
    assert.deepEqual(
      [opened?.requester, opened?.requester_id],
      [{ principal: "agent-7", key_id: agentKey?.keyId }, "agent-7"],
      "the key that asked is the requester, beside the body's subject",
    );

    assertProblem(
      await vote(reader, id, "approve", { justification: "x", idempotency_key: "r" }),
      403,
      "insufficient_scope",
    );
    assertProblem(
      await vote(bob, id, "approve", { justification: "x", idempotency_key: "b" }),
      403,
      "not_an_approver",
    );
    assertProblem(
      await vote(requester, id, "approve", { justification: "x", idempotency_key: "s" }),
      403,
      "separation_of_duties",
    );
    assertProblem(
      await vote(outsider, id, "approve", { justification: "x", idempotency_key: "o" }),
      404,
      "approval_not_found",
    );
    assertProblem(await vote(alice, id, "approve", { justification: "" }), 422, "invalid_request");
    assertProblem(
      await vote(alice, id, "approve", { justification: "ok", actor_id: "someone-else" }),
      422,
      "invalid_request",
    );
    assertProblem(await vote(alice, id, "approve", { justification: "ok" }), 422, "idempotency_key_required");

    const approved = await vote(
      alice,
      id,
      "approve",
      { justification: "verified" },
      { "idempotency-key": "a-1" },
    );
    assert.equal(approved.status, 200, approved.text);
    assert.equal(approved.body.state, "APPROVED");
    assert.equal(approved.body.authority.decision_id, decision.decision_id);
    assert.deepEqual(
      approved.body.votes.map((v: { actor_id: string; asserted_by?: string }) => [v.actor_id, v.asserted_by]),
      [["alice", undefined]],
      "the key proves who votes: nothing is asserted",
    );
    const retried = await vote(alice, id, "approve", { justification: "verified", idempotency_key: "a-1" });
    assert.equal(retried.status, 200, "a retried identical vote answers the same");
    assertProblem(
      await vote(alice, id, "reject", { justification: "changed my mind", idempotency_key: "a-1" }),
      409,
      "idempotency_conflict",
    );
    assertProblem(
      await vote(alice, id, "reject", { justification: "late", idempotency_key: "a-2" }),
      409,
      "closed",
    );

    const consumed = await call(server, "POST", `/v1/approvals/${id}/consume`, {
      key: agent,
      body: { inputs_digest: decision.determinism.inputs_digest },
    });
    assert.equal(consumed.status, 200, consumed.text);
    assert.equal(consumed.body.state, "CONSUMED");
    assertProblem(
      await call(server, "POST", `/v1/approvals/${id}/consume`, {
        key: agent,
        body: { inputs_digest: decision.determinism.inputs_digest },
      }),
      409,
      "not_approved",
    );
  });

  it("keeps each tenant's approvals to its keys on every route, whichever way the request names its tenant", async () => {
    const acmeAgent = await server.key({ scopes: ["decide", "read"], name: "agent-9", tenantId: "acme" });
    const acmeApprover = await server.key({
      scopes: ["approve", "read"],
      name: "ann",
      roles: ["finance"],
      tenantId: "acme",
    });
    const globex = await server.key({
      scopes: ["approve", "read", "decide"],
      name: "gus",
      roles: ["finance", "override"],
      tenantId: "globex",
    });
    const { tenant: _none, ...request } = exampleRequest("refund-small", {
      request_id: "iso-1",
      subject: { type: "agent", id: "agent-9", tenant_id: "acme" },
      action: { type: "support.refund", intent: "refund", amount: { value: 900, currency: "USD" } },
    });
    const decided = await call(server, "POST", "/v1/decide", { key: acmeAgent, body: request });
    assert.equal(decided.status, 200, decided.text);
    const id = decided.headers.get("lumyn-approval-id") as string;
    const own = await call(server, "GET", `/v1/approvals/${id}`, { key: acmeApprover });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.body.tenant_id, "acme", "the approval is the tenant's its record is");
    const body = { justification: "x", idempotency_key: "g" };
    for (const [method, path, payload] of [
      ["GET", `/v1/approvals/${id}`, undefined],
      ["GET", `/v1/approvals/${id}/wait?timeout=1s`, undefined],
      ["GET", `/v1/approvals/${id}/events`, undefined],
      ["POST", `/v1/approvals/${id}/approve`, body],
      ["POST", `/v1/approvals/${id}/reject`, body],
      ["POST", `/v1/approvals/${id}/override`, { justification: "x" }],
      ["POST", `/v1/approvals/${id}/cancel`, { justification: "x" }],
      ["POST", `/v1/approvals/${id}/consume`, { inputs_digest: `sha256:${"0".repeat(64)}` }],
    ] as const)
      assertProblem(
        await call(server, method, path, { key: globex, body: payload }),
        404,
        "approval_not_found",
      );
    assertProblem(
      await call(server, "GET", "/v1/approvals?tenant_id=acme", { key: globex }),
      403,
      "tenant_forbidden",
    );
    const listed = await call(server, "GET", "/v1/approvals", { key: globex });
    assert.deepEqual(listed.body.approvals, [], "a tenant-bound key lists its tenant's approvals only");
  });

  it("lets the requester or an approver cancel, nobody else", async () => {
    const { id } = await escalate("h-cancel");
    assertProblem(
      await call(server, "POST", `/v1/approvals/${id}/cancel`, {
        key: bob,
        body: { justification: "not mine" },
      }),
      403,
      "not_a_canceller",
    );
    const cancelled = await call(server, "POST", `/v1/approvals/${id}/cancel`, {
      key: alice,
      body: { justification: "duplicate request" },
    });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.deepEqual([cancelled.body.state, cancelled.body.outcome], ["CANCELLED", "DENY"]);
  });

  it("long-polls and streams an approval until people resolve it", async () => {
    const { id } = await escalate("h-2");
    const waited = await call(server, "GET", `/v1/approvals/${id}/wait?timeout=1s`, { key: reader });
    assert.equal(waited.status, 202, "still waiting when the poll times out");
    assert.equal(waited.headers.get("lumyn-approval-state"), "WAITING_FOR_HUMAN");

    const events = await fetch(`${server.url}/v1/approvals/${id}/events`, {
      headers: { authorization: `Bearer ${reader}` },
    });
    assert.equal(events.headers.get("content-type"), "text/event-stream");
    const waiting = call(server, "GET", `/v1/approvals/${id}/wait?timeout=20s`, { key: reader });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const rejected = await vote(alice, id, "reject", {
      justification: "over budget",
      idempotency_key: "a-3",
    });
    assert.equal(rejected.status, 200, rejected.text);
    const resolved = await waiting;
    assert.equal(resolved.status, 200);
    assert.equal(resolved.body.state, "REJECTED");

    const text = await events.text();
    const states = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1] as string).state);
    assert.deepEqual(states, ["WAITING_FOR_HUMAN", "REJECTED"], "the stream ends with the final state");
  });

  it("evaluates Gantral's evaluator input: REQUIRE_HUMAN with the approval's roles, and pointed errors", async () => {
    const input = {
      instance: { instance_id: "inst-1", workflow_id: "supplier-payout", materiality: "HIGH" },
      execution: { step: "pay", cost_estimate: 100 },
      context: { domain: "payments.payout", trigger: "schedule" },
      identity: { actor_id: "agent-7", roles: ["payments"] },
    };
    const answer = await call(server, "POST", "/v1/evaluate", { key: agent, body: input });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      [answer.body.decision, answer.body.approver_roles, answer.body.timeout, answer.body.escalation_roles],
      ["REQUIRE_HUMAN", ["finance_manager"], "30m", ["cfo"]],
    );
    assert.ok(answer.body.approval_id, "the approval it opened");
    const stored = await call(server, "GET", `/v1/decisions/${answer.body.decision_id}`, { key: reader });
    assert.equal(stored.body.request.evidence.materiality, "HIGH");
    const low = await call(server, "POST", "/v1/evaluate", {
      key: agent,
      body: { ...input, instance: { ...input.instance, instance_id: "inst-2", materiality: "LOW" } },
    });
    assert.equal(low.body.decision, "ALLOW");
    const bad = await call(server, "POST", "/v1/evaluate", {
      key: agent,
      body: { ...input, instance: { instance_id: "i", workflow_id: "w", materiality: "SEVERE" } },
    });
    assertProblem(bad, 422, "invalid_request");
    assert.deepEqual(
      bad.body.errors.map((e: { pointer: string }) => e.pointer),
      ["/instance/materiality"],
    );
  });
});

describe("HTTP service: identity comes from the key (the security review's attacks)", () => {
  let server: TestServer;
  let requester: string;
  before(async () => {
    server = await startTestServer({ policy: POLICY });
    requester = await server.key({
      scopes: ["decide", "approve", "read"],
      name: "support-agent-17",
      roles: ["finance", "override"],
    });
  });
  after(() => server.close());

  const escalate = async (key: string, requestId: string, subject: string) => {
    const answer = await call(server, "POST", "/v1/decide", {
      key,
      body: exampleRequest("refund-small", {
        request_id: requestId,
        subject: { type: "agent", id: subject },
        action: { type: "support.refund", intent: "refund", amount: { value: 900, currency: "USD" } },
      }),
    });
    assert.equal(answer.status, 200, answer.text);
    return {
      id: answer.headers.get("lumyn-approval-id") as string,
      digest: answer.body.determinism.inputs_digest as string,
    };
  };
  const approve = (key: string, id: string) =>
    call(server, "POST", `/v1/approvals/${id}/approve`, {
      key,
      body: { justification: "looks fine", idempotency_key: `vote-${Math.random()}` },
    });

  it("attack 1: a key that names someone else as the subject is still the requester: it cannot approve, so nothing is consumed", async () => {
    const { id, digest } = await escalate(requester, "attack-1", "someone-else");
    const approval = await call(server, "GET", `/v1/approvals/${id}`, { key: requester });
    assert.deepEqual(
      [approval.body.requester.principal, approval.body.requester_id],
      ["support-agent-17", "someone-else"],
    );
    const refused = await approve(requester, id);
    assertProblem(refused, 403, "separation_of_duties");
    assert.equal(
      refused.body.detail,
      "support-agent-17 is the requester of this action and may not vote on it (separation of duties)",
    );
    assertProblem(
      await call(server, "POST", `/v1/approvals/${id}/consume`, {
        key: requester,
        body: { inputs_digest: digest },
      }),
      409,
      "not_approved",
    );
  });

  it("attack 1: keys whose names read as the requester's or the subject's (case, a trailing space, Unicode hyphens) are the same identity", async () => {
    const { id } = await escalate(requester, "attack-1-lookalikes", "payout-agent-3");
    for (const name of [
      "Support-Agent-17",
      "support-agent-17 ",
      "support\u2010agent\u201017",
      "PAYOUT-AGENT-3",
      "payout\u2011agent\u20113",
    ]) {
      const lookalike = await server.key({ scopes: ["approve"], name, roles: ["finance"] });
      const refused = await approve(lookalike, id);
      assertProblem(refused, 403, "separation_of_duties");
      assert.match(refused.body.detail, / reads as (support-agent-17|payout-agent-3), the /, name);
    }
    const other = await server.key({ scopes: ["approve"], name: "finance-lead", roles: ["finance"] });
    assert.equal((await approve(other, id)).body.state, "APPROVED", "someone else approves");
  });

  it("attack 1 on /v1/evaluate: identity.actor_id is the key's own principal unless the key has the delegate scope, and the record says which key asserted another", async () => {
    const payout = await server.key({ scopes: ["decide", "read"], name: "payout-agent" });
    const input = (instance: string, actor: string) => ({
      instance: { instance_id: instance, workflow_id: "supplier-payout", materiality: "HIGH" },
      execution: { step: "pay", cost_estimate: 100 },
      context: { domain: "payments.payout" },
      identity: { actor_id: actor, roles: ["payments"] },
    });
    const refused = await call(server, "POST", "/v1/evaluate", {
      key: payout,
      body: input("e-1", "someone-else"),
    });
    assertProblem(refused, 403, "not_a_delegate");
    assert.deepEqual(
      refused.body.errors.map((e: { pointer: string }) => e.pointer),
      ["/identity/actor_id"],
    );
    assert.match(
      refused.body.detail,
      /acts as 'payout-agent' and may not name another actor \('someone-else'\)/,
    );
    const own = await call(server, "POST", "/v1/evaluate", {
      key: payout,
      body: input("e-2", "Payout-Agent"),
    });
    assert.equal(own.status, 200, own.text);

    const gantral = await server.key({
      scopes: ["decide", "delegate", "approve", "read"],
      name: "gantral",
      roles: ["finance_manager"],
    });
    const gantralKey = (await server.lumyn.store.apiKeys.list()).find((key) => key.name === "gantral");
    const asserted = await call(server, "POST", "/v1/evaluate", {
      key: gantral,
      body: input("e-3", "alice"),
    });
    assert.equal(asserted.status, 200, asserted.text);
    assert.equal(asserted.body.decision, "REQUIRE_HUMAN");
    const approval = await call(server, "GET", `/v1/approvals/${asserted.body.approval_id}`, {
      key: gantral,
    });
    assert.deepEqual(
      [approval.body.requester, approval.body.requester_id],
      [
        {
          principal: "gantral",
          key_id: gantralKey?.keyId,
          subject_asserted_by: `key:${gantralKey?.keyId}`,
        },
        "alice",
      ],
    );
    const record = await call(server, "GET", `/v1/decisions/${asserted.body.decision_id}`, { key: gantral });
    assert.deepEqual(
      [record.body.request.subject.id, record.body.request.extensions.subject_asserted_by],
      ["alice", `key:${gantralKey?.keyId}`],
    );
    const alice = await server.key({ scopes: ["approve"], name: "Alice", roles: ["finance_manager"] });
    for (const key of [gantral, alice])
      assertProblem(await approve(key, asserted.body.approval_id), 403, "separation_of_duties");
  });

  it("attack 2: the requester holding the override role cannot override its own approval, and may still cancel it", async () => {
    const { id } = await escalate(requester, "attack-2", "someone-else");
    const overridden = await call(server, "POST", `/v1/approvals/${id}/override`, {
      key: requester,
      body: { justification: "urgent" },
    });
    assertProblem(overridden, 403, "separation_of_duties");
    assert.match(overridden.body.detail, /requester of this action and may not override it/);
    const rotated = await server.key({
      scopes: ["approve"],
      name: "support-agent-17-new",
      principal: "support-agent-17",
      roles: ["override"],
    });
    assertProblem(
      await call(server, "POST", `/v1/approvals/${id}/override`, {
        key: rotated,
        body: { justification: "urgent" },
      }),
      403,
      "separation_of_duties",
    );
    const cancelled = await call(server, "POST", `/v1/approvals/${id}/cancel`, {
      key: rotated,
      body: { justification: "not needed after all" },
    });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.state, "CANCELLED");
  });

  it("attack 3: consuming without the inputs_digest of the action about to run is refused and changes nothing", async () => {
    const { id, digest } = await escalate(requester, "attack-3", "someone-else");
    const approver = await server.key({ scopes: ["approve"], name: "finance-lead-3", roles: ["finance"] });
    assert.equal((await approve(approver, id)).body.state, "APPROVED");
    const consume = (body: object) =>
      call(server, "POST", `/v1/approvals/${id}/consume`, { key: requester, body });
    const unproven = await consume({});
    assertProblem(unproven, 422, "invalid_request");
    assert.deepEqual(
      unproven.body.errors.map((e: { pointer: string }) => e.pointer),
      ["/inputs_digest"],
    );
    assertProblem(await consume({ inputs_digest: `sha256:${"0".repeat(64)}` }), 409, "different_action");
    const still = await call(server, "GET", `/v1/approvals/${id}`, { key: requester });
    assert.equal(still.body.state, "APPROVED", "nothing consumed yet");
    const consumed = await consume({ inputs_digest: digest });
    assert.equal(consumed.status, 200, consumed.text);
    assert.equal(consumed.body.state, "CONSUMED");
  });
});

describe("HTTP service: body signatures on every route (the security review's attack 4)", () => {
  const secret = "identity-signing-secret";
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ policy: POLICY, signingSecret: secret });
  });
  after(() => server.close());

  const signed = (key: string, path: string, body: object) => {
    const raw = JSON.stringify(body);
    return call(server, "POST", path, { key, raw, headers: { "x-lumyn-signature": signBody(secret, raw) } });
  };

  it("attack 4: consume without X-Lumyn-Signature is refused while a signing secret is set, an empty body too", async () => {
    const agent = await server.key({ scopes: ["decide", "read"], name: "agent-7" });
    const approver = await server.key({ scopes: ["approve"], name: "alice", roles: ["finance"] });
    const decided = await signed(
      agent,
      "/v1/decide",
      exampleRequest("refund-small", {
        request_id: "attack-4",
        action: { type: "support.refund", intent: "refund", amount: { value: 900, currency: "USD" } },
      }),
    );
    assert.equal(decided.status, 200, decided.text);
    const id = decided.headers.get("lumyn-approval-id") as string;
    const approved = await signed(approver, `/v1/approvals/${id}/approve`, {
      justification: "verified",
      idempotency_key: "sig-1",
    });
    assert.equal(approved.body.state, "APPROVED", approved.text);
    const path = `/v1/approvals/${id}/consume`;
    const body = { inputs_digest: decided.body.determinism.inputs_digest };
    for (const raw of ["", JSON.stringify(body)])
      assertProblem(
        await call(server, "POST", path, {
          key: agent,
          raw,
          headers: { "content-type": "application/json" },
        }),
        401,
        "signature_required",
      );
    assertProblem(
      await call(server, "POST", path, {
        key: agent,
        raw: JSON.stringify(body),
        headers: { "x-lumyn-signature": signBody(secret, "{}") },
      }),
      401,
      "invalid_signature",
    );
    const consumed = await signed(agent, path, body);
    assert.equal(consumed.status, 200, consumed.text);
    assert.equal(consumed.body.state, "CONSUMED");
  });

  it("checks the signature of every route that takes a body before anything else", async () => {
    const admin = await server.key({ scopes: ["admin"], name: "root", roles: ["finance", "override"] });
    const posts = Object.values(ROUTES).filter((route) => route.method === "POST");
    assert.ok(posts.length >= 8, "every POST route is here");
    for (const route of posts) {
      const path = route.url.replace(":id", "01JZ8D8V7C3A9R2S6T8V0W4XYZ");
      assertProblem(await call(server, "POST", path, { key: admin, raw: "{}" }), 401, "signature_required");
    }
  });
});
