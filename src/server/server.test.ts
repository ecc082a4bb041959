import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import { readPack } from "../audit/pack.ts";
import { replayPack } from "../audit/replay.ts";
import { signBody } from "../core/digest.ts";
import { decide } from "../engine/decide.ts";
import { type Answer, assertProblem, call } from "../testing/http.ts";
import { exampleRequest, startTestServer, type TestServer } from "../testing/server.ts";
import { startServer } from "./server.ts";

describe("HTTP service: decisions", () => {
  let server: TestServer;
  let admin: string;
  before(async () => {
    server = await startTestServer();
    admin = await server.key({ scopes: ["admin"], name: "tests" });
  });
  after(() => server.close());

  it("serves a stored decision as a pack that replays identical offline", async () => {
    const decided = await call(server, "POST", "/v1/decide", {
      key: admin,
      body: exampleRequest("refund-small", { request_id: "http-pack" }),
    });
    const id = decided.body.decision_id;
    const response = await fetch(`${server.url}/v1/decisions/${id}/pack`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/zip");
    assert.equal(response.headers.get("content-disposition"), `attachment; filename="${id}.zip"`);
    const contents = readPack(new Uint8Array(await response.arrayBuffer()), `${id}.zip`);
    assert.ok(contents.ok, contents.ok ? "" : JSON.stringify(contents.problems));
    const replayed = replayPack(contents.value, `${id}.zip`);
    assert.ok(replayed.ok && replayed.value.identical);
    assertProblem(
      await call(server, "GET", "/v1/decisions/01NOPE/pack", { key: admin }),
      404,
      "decision_not_found",
    );
  });

  it("decides, stores and returns the same record the library would, and serves it back byte for byte", async () => {
    const request = exampleRequest("refund-large", { request_id: "http-1" });
    const answer = await call(server, "POST", "/v1/decide", { key: admin, body: request });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers.get("lumyn-decision-status"), "stored");
    assert.equal(answer.body.verdict, "ESCALATE");
    assert.deepEqual(answer.body.reason_codes, ["REFUND_OVER_ESCALATION_LIMIT"]);
    assert.equal(answer.body.policy.policy_hash, STARTER_POLICY_HASH);
    const library = decide(request as never, server.lumyn.policy);
    assert.ok(library.ok);
    assert.equal(answer.body.determinism.inputs_digest, library.value.record.determinism.inputs_digest);

    const shown = await call(server, "GET", `/v1/decisions/${answer.body.decision_id}`, { key: admin });
    assert.equal(shown.status, 200);
    assert.equal(shown.text, answer.text);
  });

  it("is idempotent on (tenant, request_id): a repeat returns the stored record, a different body is 409", async () => {
    const request = exampleRequest("refund-small", { request_id: "http-idem" });
    const first = await call(server, "POST", "/v1/decide", { key: admin, body: request });
    const again = await call(server, "POST", "/v1/decide", { key: admin, body: request });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get("lumyn-decision-status"), "duplicate");
    assert.equal(again.text, first.text);
    const changed = { ...request, action: { ...(request.action as object), intent: "something else" } };
    const conflict = await call(server, "POST", "/v1/decide", { key: admin, body: changed });
    assertProblem(conflict, 409, "request_id_conflict");
    assert.equal(conflict.body.errors[0].pointer, "/request_id");
  });

  it("answers malformed, oversized, mistyped and invalid bodies with problem documents that point", async () => {
    const malformed = await call(server, "POST", "/v1/decide", {
      key: admin,
      raw: '{"schema_version":\n  }',
    });
    assertProblem(malformed, 400, "invalid_json");
    assert.deepEqual([malformed.body.errors[0].line, malformed.body.errors[0].column], [2, 3]);

    const large = await call(server, "POST", "/v1/decide", {
      key: admin,
      raw: `"${"x".repeat(1024 * 1024)}"`,
    });
    assertProblem(large, 413, "too_large");

    // A million digits cost the event loop about half a second to read and digest; Python reads 4,300 at most.
    const digits = JSON.stringify(exampleRequest("refund-small", { request_id: "http-digits" })).replace(
      '"evidence":{',
      `"evidence":{"big":${"9".repeat(1_000_000)},`,
    );
    const tooLong = await call(server, "POST", "/v1/decide", { key: admin, raw: digits });
    assertProblem(tooLong, 400, "invalid_json");
    assert.deepEqual(
      [tooLong.body.errors[0].code, tooLong.body.errors[0].pointer],
      ["integer_too_long", "/evidence/big"],
    );

    const plain = await call(server, "POST", "/v1/decide", {
      key: admin,
      raw: "{}",
      headers: { "content-type": "text/plain" },
    });
    assertProblem(plain, 415, "unsupported_media_type");
    const untyped = await fetch(`${server.url}/v1/decide`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(untyped.status, 415);
    assert.equal(((await untyped.json()) as { code: string }).code, "unsupported_media_type");

    const invalid = exampleRequest("refund-small", { request_id: "http-invalid" });
    (invalid.subject as Record<string, unknown>).type = "robot";
    (invalid.context as Record<string, unknown>).digest = "nope";
    const unprocessable = await call(server, "POST", "/v1/decide", { key: admin, body: invalid });
    assertProblem(unprocessable, 422, "invalid_request");
    assert.deepEqual(unprocessable.body.errors.map((e: { pointer: string }) => e.pointer).sort(), [
      "/context/digest",
      "/subject/type",
    ]);
    const stored = await call(server, "GET", "/v1/decisions?limit=500", { key: admin });
    assert.ok(
      stored.body.decisions.every(
        (r: { request: { request_id?: string } }) =>
          r.request.request_id !== "http-invalid" && r.request.request_id !== "http-digits",
      ),
      "nothing is stored for a refused request",
    );
  });

  it("answers 404 for unknown decisions and routes", async () => {
    assertProblem(
      await call(server, "GET", "/v1/decisions/01NOPE", { key: admin }),
      404,
      "decision_not_found",
    );
    assertProblem(
      await call(server, "GET", "/v1/decisions/01NOPE/explain", { key: admin }),
      404,
      "decision_not_found",
    );
    assertProblem(await call(server, "GET", "/v1/nothing", { key: admin }), 404, "route_not_found");
  });

  it("explains a stored decision rule by rule", async () => {
    const decided = await call(server, "POST", "/v1/decide", {
      key: admin,
      body: exampleRequest("refund-missing-evidence", { request_id: "http-explain" }),
    });
    const explained = await call(server, "GET", `/v1/decisions/${decided.body.decision_id}/explain`, {
      key: admin,
    });
    assert.equal(explained.status, 200);
    assert.equal(explained.body.decision_id, decided.body.decision_id);
    assert.equal(explained.body.verdict, "DENY");
    const r001 = explained.body.rules.find((rule: { rule_id: string }) => rule.rule_id === "R001");
    assert.equal(r001.matched, true);
  });

  it("labels a decision (201), refuses bad labels with pointers and unknown decisions with 404", async () => {
    const decided = await call(server, "POST", "/v1/decide", {
      key: admin,
      // A tenant of its own: the failure label must not turn the other tests' look-alikes into denials.
      body: exampleRequest("refund-small", { request_id: "http-label", tenant: { tenant_id: "labels" } }),
    });
    const path = `/v1/decisions/${decided.body.decision_id}/labels`;
    const labelled = await call(server, "POST", path, {
      key: admin,
      body: { label: "failure", summary: "chargeback", severity: 4 },
    });
    assert.equal(labelled.status, 201, labelled.text);
    const { fingerprint_sha256, ...data } = labelled.body.data;
    assert.deepEqual(
      [labelled.body.type, labelled.body.decision_id, data],
      [
        "label",
        decided.body.decision_id,
        { label: "failure", summary: "chargeback", severity: 4, projection: "lumyn-fingerprint-v1" },
      ],
    );
    assert.match(fingerprint_sha256, /^sha256:[0-9a-f]{64}$/, "the fingerprint memory keeps");
    const events = await server.lumyn.store.log.events(decided.body.decision_id);
    assert.equal(events.length, 1);

    const bad = await call(server, "POST", path, {
      key: admin,
      body: { label: "meh", severity: 9, extra: 1 },
    });
    assertProblem(bad, 422, "invalid_request");
    assert.deepEqual(bad.body.errors.map((e: { pointer: string }) => e.pointer).sort(), [
      "/extra",
      "/label",
      "/severity",
    ]);
    assertProblem(
      await call(server, "POST", "/v1/decisions/01NOPE/labels", { key: admin, body: { label: "success" } }),
      404,
      "decision_not_found",
    );
  });

  it("lists newest first with filters and a cursor, and refuses unknown or invalid parameters", async () => {
    for (let i = 0; i < 5; i++) {
      await call(server, "POST", "/v1/decide", {
        key: admin,
        body: exampleRequest("refund-risky-card", { request_id: `http-list-${i}` }),
      });
    }
    const page1 = await call(server, "GET", "/v1/decisions?verdict=ABSTAIN&limit=3", { key: admin });
    assert.equal(page1.status, 200);
    assert.equal(page1.body.decisions.length, 3);
    assert.ok(page1.body.decisions.every((r: { verdict: string }) => r.verdict === "ABSTAIN"));
    await call(server, "POST", "/v1/decide", {
      key: admin,
      body: exampleRequest("refund-risky-card", { request_id: "http-list-late" }),
    });
    const page2 = await call(
      server,
      "GET",
      `/v1/decisions?verdict=ABSTAIN&limit=3&cursor=${page1.body.next_cursor}`,
      {
        key: admin,
      },
    );
    assert.deepEqual(
      page2.body.decisions.map((r: { request: { request_id: string } }) => r.request.request_id),
      ["http-list-1", "http-list-0"],
    );
    assert.equal(page2.body.next_cursor, undefined);
    const ids = [...page1.body.decisions, ...page2.body.decisions].map(
      (r: { decision_id: string }) => r.decision_id,
    );
    assert.deepEqual(ids, [...ids].sort().reverse(), "newest first");

    const filtered = await call(
      server,
      "GET",
      "/v1/decisions?reason_code=REFUND_OVER_ESCALATION_LIMIT&action_type=support.refund&subject_id=support-agent-17&tenant_id=acme&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
      { key: admin },
    );
    assert.deepEqual(
      filtered.body.decisions.map((r: { request: { request_id: string } }) => r.request.request_id),
      ["http-1"],
    );

    const invalid = await call(
      server,
      "GET",
      "/v1/decisions?limit=0&verdict=MAYBE&colour=red&since=yesterday",
      {
        key: admin,
      },
    );
    assertProblem(invalid, 422, "invalid_query");
    assert.deepEqual(invalid.body.errors.map((e: { pointer: string }) => e.pointer).sort(), [
      "/colour",
      "/limit",
      "/since",
      "/verdict",
    ]);
    assertProblem(
      await call(server, "GET", "/v1/decisions?since=2026-02-31T00:00:00Z", { key: admin }),
      422,
      "invalid_query",
    );
  });

  it("counts by verdict, reason code and action type", async () => {
    const byVerdict = await call(server, "GET", "/v1/stats", { key: admin });
    assert.equal(byVerdict.status, 200);
    assert.equal(byVerdict.body.by, "verdict");
    const all = await call(server, "GET", "/v1/decisions?limit=500", { key: admin });
    assert.equal(byVerdict.body.total, all.body.decisions.length);
    const sum = Object.values(byVerdict.body.groups as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.equal(sum, byVerdict.body.total);
    const byCode = await call(server, "GET", "/v1/stats?by=reason_code&tenant_id=acme", { key: admin });
    assert.ok(byCode.body.groups.PAYMENT_INSTRUMENT_HIGH_RISK >= 6);
    const byType = await call(server, "GET", "/v1/stats?by=action_type&until=2000-01-01T00:00:00Z", {
      key: admin,
    });
    assert.deepEqual([byType.body.total, byType.body.groups], [0, {}]);
    assertProblem(await call(server, "GET", "/v1/stats?by=colour", { key: admin }), 422, "invalid_query");
  });

  it("serves the active policy, health, readiness, metrics and the OpenAPI description", async () => {
    const policy = await call(server, "GET", "/v1/policy", { key: admin });
    assert.deepEqual(policy.body, {
      policy_id: "starter-policy",
      policy_version: "1.0.0",
      policy_hash: STARTER_POLICY_HASH,
      mode: "enforce",
    });
    assert.deepEqual((await call(server, "GET", "/healthz")).body, { ok: true });
    const ready = await call(server, "GET", "/readyz");
    assert.equal(ready.status, 200);
    assert.equal(ready.body.ok, true);

    const metrics = await call(server, "GET", "/metrics", { key: admin });
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^lumyn_decisions_total\{verdict="ESCALATE",status="stored"\} \d+$/m);
    assert.match(
      metrics.text,
      /^lumyn_decision_reason_codes_total\{reason_code="PAYMENT_INSTRUMENT_HIGH_RISK"\} \d+$/m,
    );
    assert.match(metrics.text, /^lumyn_decision_duration_seconds_bucket\{le="0\.01"\} \d+$/m);
    assert.match(
      metrics.text,
      /^lumyn_http_requests_total\{method="POST",route="\/v1\/decide",status="409"\} 1$/m,
    );
    assert.match(
      metrics.text,
      /^lumyn_http_request_duration_seconds_count\{method="GET",route="\/healthz"\} 1$/m,
    );
    assert.match(metrics.text, /^# TYPE lumyn_store_errors_total counter$/m);

    const openapi = await call(server, "GET", "/openapi.json", { key: admin });
    assert.equal(openapi.body.openapi, "3.1.0");
    assert.deepEqual(Object.keys(openapi.body.paths).sort(), [
      "/healthz",
      "/metrics",
      "/openapi.json",
      "/readyz",
      "/v1/approvals",
      "/v1/approvals/{id}",
      "/v1/approvals/{id}/approve",
      "/v1/approvals/{id}/cancel",
      "/v1/approvals/{id}/consume",
      "/v1/approvals/{id}/events",
      "/v1/approvals/{id}/override",
      "/v1/approvals/{id}/reject",
      "/v1/approvals/{id}/wait",
      "/v1/decide",
      "/v1/decisions",
      "/v1/decisions/{id}",
      "/v1/decisions/{id}/explain",
      "/v1/decisions/{id}/labels",
      "/v1/decisions/{id}/pack",
      "/v1/evaluate",
      "/v1/policy",
      "/v1/stats",
    ]);
    assert.ok(openapi.body.components.schemas.DecisionRequest.properties.action);
    const docs = await call(server, "GET", "/docs/", { key: admin });
    assert.equal(docs.status, 200);
    assert.match(docs.text, /<html/);
  });

  it("writes one JSON log line per request and per decision, and never the key", async () => {
    const before = server.logs().length;
    const decided = await call(server, "POST", "/v1/decide", {
      key: admin,
      body: exampleRequest("refund-small", { request_id: "http-log" }),
    });
    const lines = server.logs().slice(before);
    const decision = lines.find((line) => line.msg === "decision");
    assert.deepEqual(
      [
        decision?.decision_id,
        decision?.tenant_id,
        decision?.action_type,
        decision?.verdict,
        decision?.reason_codes,
      ],
      [decided.body.decision_id, "acme", "support.refund", "ALLOW", ["REFUND_SMALL_LOW_RISK"]],
    );
    assert.equal(typeof decision?.latency_ms, "number");
    const requests = lines.filter((line) => line.msg === "request");
    assert.equal(requests.length, 1);
    assert.deepEqual(
      [requests[0]?.method, requests[0]?.route, requests[0]?.status],
      ["POST", "/v1/decide", 200],
    );
    assert.equal(typeof requests[0]?.key_id, "string");
    assert.ok(!server.logText().includes(admin), "the key is never logged");
    assert.ok(!server.logText().includes("authorization"), "headers are not logged");
  });

  it("logs a query string without the values of secret-like parameters, their names kept", async () => {
    const before = server.logs().length;
    const query = `api_key=${admin}&limit=1&Token=t0ken&SIGNATURE=s1g&key=k3y&secret=s3cret&api%5Fkey=${admin}&keys=kept`;
    const answer = await call(server, "GET", `/v1/decisions?${query}`, { key: admin });
    assertProblem(answer, 422, "invalid_query");
    const line = server
      .logs()
      .slice(before)
      .find((entry) => entry.msg === "request");
    assert.equal(
      line?.url,
      "/v1/decisions?api_key=***&limit=1&Token=***&SIGNATURE=***&key=***&secret=***&api%5Fkey=***&keys=kept",
    );
    for (const secret of [admin, "t0ken", "s1g", "k3y", "s3cret"])
      assert.ok(!server.logText().includes(secret), `${secret} is not logged`);
  });
});

describe("HTTP service: keys, scopes and tenants", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it("needs a key on every route but /healthz and /readyz", async () => {
    for (const [method, path] of [
      ["POST", "/v1/decide"],
      ["GET", "/v1/decisions"],
      ["GET", "/v1/decisions/01X"],
      ["GET", "/v1/decisions/01X/explain"],
      ["POST", "/v1/decisions/01X/labels"],
      ["GET", "/v1/stats"],
      ["GET", "/v1/policy"],
      ["GET", "/metrics"],
      ["GET", "/openapi.json"],
      ["GET", "/docs/"],
    ] as const) {
      const answer = await call(server, method, path, method === "POST" ? { body: {} } : {});
      assertProblem(answer, 401, "auth_required");
      assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
    assert.equal((await call(server, "GET", "/healthz")).status, 200);
    assert.equal((await call(server, "GET", "/readyz")).status, 200);
  });

  it("refuses unknown, malformed and revoked keys with 401", async () => {
    assertProblem(await call(server, "GET", "/v1/policy", { key: "lumyn_not-a-key" }), 401, "invalid_key");
    assertProblem(await call(server, "GET", "/v1/policy", { key: "something" }), 401, "invalid_key");
    assertProblem(
      await call(server, "GET", "/v1/policy", { headers: { authorization: "Basic dXNlcjpwYXNz" } }),
      401,
      "auth_required",
    );
    const key = await server.key({ scopes: ["read"] });
    assert.equal((await call(server, "GET", "/v1/policy", { key })).status, 200);
    const [stored] = await server.lumyn.store.apiKeys.list();
    assert.ok(stored);
    await server.lumyn.store.apiKeys.revoke(stored.keyId);
    // A key read from the store is trusted for a second: a revocation takes effect within it.
    let answer = await call(server, "GET", "/v1/policy", { key });
    for (let tries = 0; answer.status === 200 && tries < 40; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await call(server, "GET", "/v1/policy", { key });
    }
    assertProblem(answer, 401, "key_revoked");
  });

  it("checks scopes per route (admin implies all)", async () => {
    const reader = await server.key({ scopes: ["read"] });
    const decider = await server.key({ scopes: ["decide"] });
    const admin = await server.key({ scopes: ["admin"] });
    const body = exampleRequest("refund-small", { request_id: "scopes-1" });
    assertProblem(await call(server, "POST", "/v1/decide", { key: reader, body }), 403, "insufficient_scope");
    const logged = server.logs().length;
    const decided = await call(server, "POST", "/v1/decide", { key: decider, body });
    assert.equal(decided.status, 200);
    const id = decided.body.decision_id;
    assertProblem(
      await call(server, "GET", `/v1/decisions/${id}`, { key: decider }),
      403,
      "insufficient_scope",
    );
    // The refused request's line names the key, as the line of the same key's decision does.
    const [allowed, refused] = server
      .logs()
      .slice(logged)
      .filter((line) => line.msg === "request");
    assert.deepEqual([allowed?.status, refused?.status], [200, 403]);
    assert.equal(typeof refused?.key_id, "string");
    assert.equal(refused?.key_id, allowed?.key_id);
    assert.equal((await call(server, "GET", `/v1/decisions/${id}`, { key: reader })).status, 200);
    assertProblem(
      await call(server, "POST", `/v1/decisions/${id}/labels`, { key: reader, body: { label: "success" } }),
      403,
      "insufficient_scope",
    );
    assert.equal(
      (await call(server, "POST", `/v1/decisions/${id}/labels`, { key: admin, body: { label: "success" } }))
        .status,
      201,
    );
    assertProblem(await call(server, "GET", "/metrics", { key: decider }), 403, "insufficient_scope");
    assert.equal((await call(server, "GET", "/openapi.json", { key: decider })).status, 200);
  });

  it("keeps a tenant-bound key to its tenant: 403 for another tenant's requests and queries, 404 for its records", async () => {
    const admin = await server.key({ scopes: ["admin"] });
    const acme = await server.key({ scopes: ["decide", "read", "label"], tenantId: "acme" });
    const globexRequest = exampleRequest("refund-small", {
      request_id: "tenant-g",
      tenant: { tenant_id: "globex" },
    });
    const refused = await call(server, "POST", "/v1/decide", { key: acme, body: globexRequest });
    assertProblem(refused, 403, "tenant_forbidden");
    assert.equal(refused.body.errors[0].pointer, "/tenant/tenant_id");
    const untenanted = exampleRequest("refund-small", { request_id: "tenant-none" });
    delete untenanted.tenant;
    assertProblem(
      await call(server, "POST", "/v1/decide", { key: acme, body: untenanted }),
      403,
      "tenant_forbidden",
    );

    const globex = await call(server, "POST", "/v1/decide", { key: admin, body: globexRequest });
    const own = await call(server, "POST", "/v1/decide", {
      key: acme,
      body: exampleRequest("refund-small", { request_id: "tenant-a" }),
    });
    assert.equal(own.status, 200);
    const globexId = globex.body.decision_id;
    assertProblem(
      await call(server, "GET", `/v1/decisions/${globexId}`, { key: acme }),
      404,
      "decision_not_found",
    );
    assertProblem(
      await call(server, "GET", `/v1/decisions/${globexId}/explain`, { key: acme }),
      404,
      "decision_not_found",
    );
    assertProblem(
      await call(server, "POST", `/v1/decisions/${globexId}/labels`, {
        key: acme,
        body: { label: "failure" },
      }),
      404,
      "decision_not_found",
    );
    assert.equal((await call(server, "GET", `/v1/decisions/${globexId}`, { key: admin })).status, 200);

    const listed = await call(server, "GET", "/v1/decisions", { key: acme });
    assert.ok(listed.body.decisions.length > 0);
    assert.ok(
      listed.body.decisions.every(
        (r: { request: { tenant: { tenant_id: string } } }) => r.request.tenant.tenant_id === "acme",
      ),
    );
    const other = await call(server, "GET", "/v1/decisions?tenant_id=globex", { key: acme });
    assertProblem(other, 403, "tenant_forbidden");
    assert.equal(other.body.errors[0].pointer, "/tenant_id");
    assertProblem(
      await call(server, "GET", "/v1/stats?tenant_id=globex", { key: acme }),
      403,
      "tenant_forbidden",
    );
    const stats = await call(server, "GET", "/v1/stats", { key: acme });
    const everything = await call(server, "GET", "/v1/stats", { key: admin });
    assert.equal(stats.body.tenant_id, "acme");
    assert.ok(stats.body.total < everything.body.total);
    assertProblem(await call(server, "GET", "/metrics", { key: acme }), 403, "tenant_forbidden");
  });

  it("answers 429 with Retry-After once a key's rate limit is reached", async () => {
    const limited = await server.key({ scopes: ["read"], rateLimitPerSecond: 0.001 });
    assert.equal((await call(server, "GET", "/v1/policy", { key: limited })).status, 200);
    const before = server.logs().length;
    const refused = await call(server, "GET", "/v1/policy", { key: limited });
    assertProblem(refused, 429, "rate_limited");
    assert.ok(Number(refused.headers.get("retry-after")) > 0);
    const logged = server
      .logs()
      .slice(before)
      .find((line) => line.msg === "request");
    assert.equal(logged?.status, 429);
    assert.equal(typeof logged?.key_id, "string", "a refused request is logged with the key it used");
    const unlimited = await server.key({ scopes: ["read"] });
    for (let i = 0; i < 20; i++)
      assert.equal((await call(server, "GET", "/v1/policy", { key: unlimited })).status, 200);
  });
});

describe("HTTP service: signatures, storage failure, loopback", () => {
  it("requires X-Lumyn-Signature over the exact body bytes when a signing secret is set", async () => {
    const secret = "test-signing-secret";
    const server = await startTestServer({ auth: false, signingSecret: secret });
    try {
      const body = JSON.stringify(exampleRequest("refund-small", { request_id: "signed" }));
      assertProblem(await call(server, "POST", "/v1/decide", { raw: body }), 401, "signature_required");
      assertProblem(
        await call(server, "POST", "/v1/decide", {
          raw: body,
          headers: { "x-lumyn-signature": `sha256:${"0".repeat(64)}` },
        }),
        401,
        "invalid_signature",
      );
      assertProblem(
        await call(server, "POST", "/v1/decide", {
          raw: `${body} `,
          headers: { "x-lumyn-signature": signBody(secret, body) },
        }),
        401,
        "invalid_signature",
      );
      const signed = await call(server, "POST", "/v1/decide", {
        raw: body,
        headers: { "x-lumyn-signature": signBody(secret, body) },
      });
      assert.equal(signed.status, 200, signed.text);
      assert.ok(!server.logText().includes(secret));
    } finally {
      await server.close();
    }
  });

  it("answers the fail-closed record (ABSTAIN, STORAGE_UNAVAILABLE) and stores nothing when the store cannot be written", async () => {
    const server = await startTestServer({ auth: false, store: { busyTimeoutMs: 20 } });
    try {
      const warm = await call(server, "POST", "/v1/decide", {
        body: exampleRequest("refund-small", { request_id: "warm" }),
      });
      assert.equal(warm.status, 200);
      const locker = new DatabaseSync(`${server.dir}/ws/lumyn.db`);
      locker.exec("BEGIN EXCLUSIVE");
      let failed: Answer;
      try {
        failed = await call(server, "POST", "/v1/decide", {
          body: exampleRequest("refund-small", { request_id: "locked" }),
        });
      } finally {
        locker.exec("ROLLBACK");
        locker.close();
      }
      assert.equal(failed.status, 200);
      assert.equal(failed.headers.get("lumyn-decision-status"), "unavailable");
      assert.deepEqual([failed.body.verdict, failed.body.reason_codes], ["ABSTAIN", ["STORAGE_UNAVAILABLE"]]);
      assertProblem(
        await call(server, "GET", `/v1/decisions/${failed.body.decision_id}`),
        404,
        "decision_not_found",
      );
      const metrics = await call(server, "GET", "/metrics");
      assert.match(metrics.text, /^lumyn_store_errors_total\{operation="put_decision"\} 1$/m);
      const retried = await call(server, "POST", "/v1/decide", {
        body: exampleRequest("refund-small", { request_id: "locked" }),
      });
      assert.equal(retried.headers.get("lumyn-decision-status"), "stored");
    } finally {
      await server.close();
    }
  });

  it("answers 503 storage_unavailable when the store cannot be read", async () => {
    const server = await startTestServer({ auth: false });
    try {
      await server.lumyn.store.close();
      assertProblem(await call(server, "GET", "/v1/decisions/01X"), 503, "storage_unavailable");
      assertProblem(await call(server, "GET", "/v1/decisions"), 503, "storage_unavailable");
      assertProblem(await call(server, "GET", "/readyz"), 503, "not_ready");
    } finally {
      await server.close();
    }
  });

  it("refuses to run without auth on an address other than loopback", async () => {
    const opened = await startTestServer({ auth: false });
    try {
      await assert.rejects(
        () => startServer({ lumyn: opened.lumyn, auth: false, host: "0.0.0.0", port: 0, log: false }),
        /only on a loopback address/,
      );
    } finally {
      await opened.close();
    }
  });
});
