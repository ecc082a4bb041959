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
    assert.deepEqual([event.type, event.data], ["label", { label: "success", severity: 1 }]);
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
});
