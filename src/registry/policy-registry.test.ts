import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import { verifyStoreChain } from "../audit/verify.ts";
import type { JsonObject, JsonValue } from "../core/json.ts";
import { DEFAULT_POLICY_TENANT } from "../domain/policy-registry.ts";
import { explainDecision, Lumyn } from "../lumyn.ts";
import { call } from "../testing/http.ts";
import { startTestServer } from "../testing/server.ts";
import { approveChange, fourEyesRequired, openRequests, rejectChange, setFourEyes } from "./change-review.ts";
import { activatePolicy, publishPolicy, recordRejection, rollbackPolicy } from "./policy-registry.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-registry-"));
after(() => rmSync(root, { recursive: true, force: true }));
let count = 0;

function verdictPolicy(id: string, verdict: string): string {
  return `schema_version: policy.v1
policy_id: ${id}
policy_version: "1"
defaults: {mode: enforce, default_verdict: ${verdict}, default_reason_code: ${id.toUpperCase().replaceAll("-", "_")}}
rules:
  - {id: NEVER, stage: ALLOW_PATHS, if: {evidence.never_is: 1}, then: {verdict: ALLOW, reason_codes: [NEVER]}}
`;
}

async function open(options: { policyPath?: string } = {}) {
  const opened = await Lumyn.open({ workspace: join(root, `ws-${++count}`), ...options });
  assert.ok(opened.ok, opened.ok ? "" : JSON.stringify(opened.problems));
  return opened.value;
}

function requestOf(tenant: string, requestId: string): JsonValue {
  const request = structuredClone(EXAMPLE_REQUESTS["refund-small"]?.request) as JsonObject;
  return { ...request, request_id: requestId, tenant: { tenant_id: tenant } };
}

const cli = { by: "test" };

describe("policy registry", () => {
  it("decides each tenant under its active version and the others under the default; records pin the version", async () => {
    const lumyn = await open();
    try {
      const published = await publishPolicy(lumyn.store, "globex", verdictPolicy("deny-all", "DENY"), {
        source: cli,
      });
      assert.ok(published.ok);
      assert.equal(published.value.changed, true);
      assert.equal(
        (await lumyn.decide(requestOf("globex", "g-0"))).ok &&
          lumyn.policyFor("globex").hash === STARTER_POLICY_HASH,
        true,
        "publishing alone activates nothing",
      );
      const activated = await activatePolicy(
        lumyn.store,
        "globex",
        published.value.policyHash.slice(7, 19),
        cli,
      );
      assert.ok(activated.ok);
      assert.ok((await lumyn.reloadPolicies()).ok);
      const globex = await lumyn.decide(requestOf("globex", "g-1"));
      const acme = await lumyn.decide(requestOf("acme", "a-1"));
      assert.ok(globex.ok && acme.ok);
      assert.equal(globex.value.record.verdict, "DENY");
      assert.equal(globex.value.record.policy.policy_hash, published.value.policyHash);
      assert.equal(acme.value.record.verdict, "ALLOW");
      assert.equal(acme.value.record.policy.policy_hash, STARTER_POLICY_HASH);
      for (const record of [globex.value.record, acme.value.record]) {
        const explained = await explainDecision(lumyn.store, record.decision_id);
        assert.ok(explained.ok, "explained from the stored snapshot of the version the record names");
        assert.equal(explained.value.explanation.verdict, record.verdict);
      }
    } finally {
      await lumyn.close();
    }
  });

  it("refuses an invalid policy with file:line:col and stores nothing", async () => {
    const lumyn = await open();
    try {
      const text = verdictPolicy("bad", "MAYBE");
      const published = await publishPolicy(lumyn.store, "globex", text, { file: "bad.yml", source: cli });
      assert.equal(published.ok, false);
      assert.ok(!published.ok && published.problems.some((p) => p.file === "bad.yml" && p.line === 4));
      assert.deepEqual(await lumyn.store.policies.history(), []);
      assert.ok(!published.ok);
      await recordRejection(lumyn.store, "globex", { by: "redis" }, published.problems);
      const history = await lumyn.store.policies.history("globex");
      assert.deepEqual(
        history.map((event) => event.type),
        ["rejected"],
        "a rejection from Redis is kept in the history, and activates nothing",
      );
      assert.deepEqual(await lumyn.store.policies.active(), new Map());
    } finally {
      await lumyn.close();
    }
  });

  it("rolls back to the version active before, one activation at a time", async () => {
    const lumyn = await open();
    try {
      const hashes: string[] = [];
      for (const verdict of ["DENY", "ESCALATE", "ABSTAIN"]) {
        const published = await publishPolicy(lumyn.store, "acme", verdictPolicy(`p-${verdict}`, verdict), {
          source: cli,
        });
        assert.ok(published.ok);
        hashes.push(published.value.policyHash);
        assert.ok((await activatePolicy(lumyn.store, "acme", published.value.policyHash, cli)).ok);
      }
      const again = await activatePolicy(lumyn.store, "acme", hashes[2] as string, cli);
      assert.ok(again.ok && !again.value.changed, "activating the active version changes nothing");
      const first = await rollbackPolicy(lumyn.store, "acme", cli);
      assert.ok(first.ok);
      assert.equal(first.value.policyHash, hashes[1]);
      const second = await rollbackPolicy(lumyn.store, "acme", cli);
      assert.ok(second.ok);
      assert.equal(second.value.policyHash, hashes[0]);
      const third = await rollbackPolicy(lumyn.store, "acme", cli);
      assert.ok(!third.ok && third.problems[0]?.code === "nothing_to_roll_back");
      assert.ok((await lumyn.reloadPolicies()).ok);
      const decided = await lumyn.decide(requestOf("acme", "r-1"));
      assert.ok(decided.ok);
      assert.equal(decided.value.record.verdict, "DENY");
      const unknown = await activatePolicy(lumyn.store, "acme", "ffff", cli);
      assert.ok(!unknown.ok && unknown.problems[0]?.code === "version_not_found");
      const elsewhere = await activatePolicy(lumyn.store, "globex", hashes[0] as string, cli);
      assert.ok(!elsewhere.ok, "a version is activated only for a tenant it was published for");
    } finally {
      await lumyn.close();
    }
  });

  it("with four-eyes review, an activation waits for another principal, look-alikes of the requester refused", async () => {
    const lumyn = await open();
    const alice = { by: "cli", principal: "os:alice" };
    const bob = { by: "cli", principal: "os:bob" };
    try {
      const published = await Promise.all(
        ["DENY", "ABSTAIN"].map((verdict) =>
          publishPolicy(lumyn.store, "acme", verdictPolicy(`p-${verdict}`, verdict), { source: alice }),
        ),
      );
      const [deny, abstain] = published.map((p) => {
        assert.ok(p.ok);
        return p.value.policyHash;
      });
      assert.ok((await activatePolicy(lumyn.store, "acme", deny as string, alice)).ok);
      assert.deepEqual(await setFourEyes(lumyn.store, "acme", true, alice), { changed: true });

      const asked = await activatePolicy(lumyn.store, "acme", abstain as string, alice);
      assert.ok(asked.ok && asked.value.request);
      assert.equal(asked.value.changed, false);
      const seq = asked.value.request.seq;
      assert.equal(
        (await lumyn.store.policies.active()).get("acme"),
        deny,
        "nothing is live before approval",
      );
      for (const lookAlike of ["os:alice", "OS:Alice ", "os:\u0430lice"]) {
        const self = await approveChange(lumyn.store, "acme", seq, { by: "cli", principal: lookAlike });
        assert.ok(!self.ok && self.kind === "forbidden", lookAlike);
        assert.equal(!self.ok && self.problems[0]?.code, "separation_of_duties");
      }
      const approved = await approveChange(lumyn.store, "acme", seq, bob);
      assert.ok(approved.ok, approved.ok ? "" : JSON.stringify(approved.problems));
      assert.equal((await lumyn.store.policies.active()).get("acme"), abstain);
      const history = await lumyn.store.policies.history("acme");
      const activated = history.at(-1);
      assert.deepEqual(
        [
          activated?.type,
          activated?.detail.principal,
          activated?.detail.requested_by,
          activated?.detail.request,
        ],
        ["activated", "os:bob", "os:alice", seq],
      );
      const twice = await approveChange(lumyn.store, "acme", seq, bob);
      assert.ok(!twice.ok && twice.problems[0]?.code === "request_not_found");

      // A request made against a version that is no longer active is not applied over the new one.
      const stale = await activatePolicy(lumyn.store, "acme", deny as string, alice);
      assert.ok(stale.ok && stale.value.request);
      const rollback = await rollbackPolicy(lumyn.store, "acme", bob);
      assert.ok(rollback.ok, "a rollback is not reviewed");
      const late = await approveChange(lumyn.store, "acme", stale.value.request.seq, bob);
      assert.ok(!late.ok && late.problems[0]?.code === "registry_changed");
      assert.ok((await rejectChange(lumyn.store, "acme", stale.value.request.seq, alice, "superseded")).ok);
      assert.deepEqual(openRequests(await lumyn.store.policies.history("acme")), []);

      // Turning review off is itself reviewed.
      const off = await setFourEyes(lumyn.store, "acme", false, alice);
      assert.ok(off.request && !off.changed);
      assert.ok(fourEyesRequired(await lumyn.store.policies.history("acme")));
      assert.ok((await approveChange(lumyn.store, "acme", off.request.seq, bob)).ok);
      assert.equal(fourEyesRequired(await lumyn.store.policies.history("acme")), false);
      const direct = await activatePolicy(lumyn.store, "acme", abstain as string, alice);
      assert.ok(direct.ok && direct.value.changed && !direct.value.request);
      assert.equal(
        (await verifyStoreChain(lumyn.store)).broken,
        undefined,
        "every registry event is chained",
      );
    } finally {
      await lumyn.close();
    }
  });

  it("lets the registry's default replace the workspace policy, but not a policy file the caller chose", async () => {
    const lumyn = await open();
    const workspace = lumyn.workspace.dir;
    try {
      const published = await publishPolicy(
        lumyn.store,
        DEFAULT_POLICY_TENANT,
        verdictPolicy("escalate-all", "ESCALATE"),
        { source: cli },
      );
      assert.ok(published.ok);
      assert.ok(
        (await activatePolicy(lumyn.store, DEFAULT_POLICY_TENANT, published.value.policyHash, cli)).ok,
      );
    } finally {
      await lumyn.close();
    }
    const reopened = await Lumyn.open({ workspace });
    assert.ok(reopened.ok);
    const decided = await reopened.value.decide(requestOf("initech", "d-1"));
    await reopened.value.close();
    assert.ok(decided.ok);
    assert.equal(decided.value.record.verdict, "ESCALATE");
    const withFile = await Lumyn.open({ workspace, policyPath: join(workspace, "policy.yml") });
    assert.ok(withFile.ok);
    const fromFile = await withFile.value.decide(requestOf("initech", "d-2"));
    await withFile.value.close();
    assert.ok(fromFile.ok);
    assert.equal(fromFile.value.record.policy.policy_hash, STARTER_POLICY_HASH);
  });

  it("switches a running server without Redis at its next poll of the store, and answers over HTTP per tenant", async () => {
    const server = await startTestServer({ auth: false, policyPollMs: 50 });
    try {
      const published = await publishPolicy(server.lumyn.store, "globex", verdictPolicy("deny-all", "DENY"), {
        source: cli,
      });
      assert.ok(published.ok);
      assert.ok((await activatePolicy(server.lumyn.store, "globex", published.value.policyHash, cli)).ok);
      const deadline = Date.now() + 15_000;
      let answer = await call(server, "POST", "/v1/decide", { body: requestOf("globex", "h-0") });
      for (let n = 1; answer.body.verdict !== "DENY" && Date.now() < deadline; n++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        answer = await call(server, "POST", "/v1/decide", { body: requestOf("globex", `h-${n}`) });
      }
      assert.equal(answer.body.verdict, "DENY");
      assert.equal(answer.body.policy.policy_hash, published.value.policyHash);
      const other = await call(server, "POST", "/v1/decide", { body: requestOf("acme", "h-acme") });
      assert.equal(other.body.verdict, "ALLOW");
      assert.ok(server.logs().some((line) => line.msg === "policy switched" && line.tenant === "globex"));
      const shown = await call(server, "GET", "/v1/policy?tenant_id=globex");
      assert.deepEqual(
        [shown.body.tenant_id, shown.body.policy_id, shown.body.policy_hash],
        ["globex", "deny-all", published.value.policyHash],
      );
      assert.equal((await call(server, "GET", "/v1/policy")).body.policy_hash, STARTER_POLICY_HASH);
    } finally {
      await server.close();
    }
  });
});
