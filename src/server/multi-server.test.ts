/**
 * Many servers, one truth: three `lumyn serve` processes against one PostgreSQL database, driven at once,
 * behave as one service.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../testing/postgres.ts";
import { runCli } from "../testing/run-cli.ts";
import { type ServeProcess, startServeProcess } from "../testing/serve-process.ts";
import { exampleRequest } from "../testing/server.ts";

const POLICY = `schema_version: policy.v1
policy_id: payouts-with-approval
policy_version: "1"
defaults: { mode: enforce, default_verdict: ALLOW, default_reason_code: SMALL }
rules:
  - id: QUICK
    stage: ESCALATIONS
    if: { amount_usd: { gt: 5000 } }
    then:
      verdict: ESCALATE
      reason_codes: [QUICK]
      approval: { approver_roles: [finance], quorum: 1, timeout: 1s }
  - id: BIG
    stage: ESCALATIONS
    if: { amount_usd: { gt: 500 } }
    then:
      verdict: ESCALATE
      reason_codes: [BIG]
      approval: { approver_roles: [finance], quorum: 1, timeout: 1h }
`;

async function call(server: ServeProcess, method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

describe("three lumyn serve processes on one PostgreSQL database", () => {
  let database: TestDatabase;
  let root: string;
  let workspace: string;
  let servers: ServeProcess[] = [];
  let agent: string;
  let alice: string;
  let carol: string;
  let db: pg.Client;

  const cli = (args: readonly string[]) => {
    const result = runCli([...args, "--workspace", workspace, "--store", database.url], { cwd: root });
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };
  const createKey = (name: string, scopes: string, roles = ""): string =>
    JSON.parse(cli(["keys", "create", "--name", name, "--scopes", scopes, "--roles", roles, "--json"])).key;
  const payout = (requestId: string, amount: number) =>
    exampleRequest("refund-small", {
      request_id: requestId,
      subject: { type: "agent", id: "agent-7" },
      action: { type: "support.refund", intent: "refund", amount: { value: amount, currency: "USD" } },
    });
  const transitions = async (decisionId: string): Promise<string[]> => {
    const { rows } = await db.query(
      "SELECT data_json FROM decision_events WHERE decision_id = $1 AND type = 'approval_transition' ORDER BY seq",
      [decisionId],
    );
    return rows.map((row) => JSON.parse(row.data_json).to);
  };

  before(async () => {
    database = await createTestDatabase("servers");
    root = mkdtempSync(join(tmpdir(), "lumyn-multi-server-"));
    workspace = join(root, "ws");
    cli(["init"]);
    writeFileSync(join(root, "policy.yml"), POLICY);
    agent = createKey("agent-7", "decide,read");
    alice = createKey("alice", "approve,read", "finance");
    carol = createKey("carol", "approve,read", "finance");
    servers = await Promise.all(
      [1, 2, 3].map(() =>
        startServeProcess(
          [
            "--workspace",
            workspace,
            "--store",
            database.url,
            "--policy",
            "policy.yml",
            "--log-level",
            "warn",
          ],
          { cwd: root },
        ),
      ),
    );
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });

  after(async () => {
    await db?.end();
    try {
      const codes = await Promise.all(servers.map((server) => server.stop()));
      assert.deepEqual(codes, [0, 0, 0], servers.map((server) => server.stderr()).join("\n"));
    } finally {
      await database?.drop();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("stores one record for a request_id sent to two processes at once", async () => {
    const pairs = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const body = payout(`same-${i}`, 20);
        const first = servers[i % 3] as ServeProcess;
        const second = servers[(i + 1) % 3] as ServeProcess;
        return Promise.all([
          call(first, "POST", "/v1/decide", agent, body),
          call(second, "POST", "/v1/decide", agent, body),
        ]);
      }),
    );
    for (const [a, b] of pairs) {
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      assert.equal(
        a.body.decision_id,
        b.body.decision_id,
        "both processes answer with the one stored record",
      );
      assert.deepEqual(
        [a.headers.get("lumyn-decision-status"), b.headers.get("lumyn-decision-status")].sort(),
        ["duplicate", "stored"],
      );
    }
    const { rows } = await db.query("SELECT count(*) AS n FROM decisions WHERE request_id LIKE 'same-%'");
    assert.equal(Number(rows[0].n), 30);
  });

  it("lets only one of two processes resolve an approval, whichever vote arrives first", async () => {
    for (let i = 0; i < 5; i++) {
      const opened = await call(
        servers[0] as ServeProcess,
        "POST",
        "/v1/decide",
        agent,
        payout(`vote-${i}`, 900),
      );
      assert.equal(opened.body.verdict, "ESCALATE");
      const id = opened.headers.get("lumyn-approval-id");
      assert.ok(id);
      const votes = await Promise.all([
        call(servers[1] as ServeProcess, "POST", `/v1/approvals/${id}/approve`, alice, {
          justification: "verified",
          idempotency_key: `alice-${i}`,
        }),
        call(servers[2] as ServeProcess, "POST", `/v1/approvals/${id}/reject`, carol, {
          justification: "not verified",
          idempotency_key: `carol-${i}`,
        }),
      ]);
      const winners = votes.filter((vote) => vote.status === 200);
      assert.equal(winners.length, 1, JSON.stringify(votes.map((vote) => [vote.status, vote.body])));
      assert.equal(votes.find((vote) => vote.status !== 200)?.status, 409);
      const state = winners[0]?.body.state;
      assert.ok(state === "APPROVED" || state === "REJECTED");
      const read = await call(servers[0] as ServeProcess, "GET", `/v1/approvals/${id}`, alice);
      assert.equal(read.body.state, state);
      assert.equal(read.body.votes.length, 1);
      assert.deepEqual(await transitions(opened.body.decision_id), ["WAITING_FOR_HUMAN", state]);
    }
  });

  it("times an approval out once, however many processes notice the deadline", async () => {
    const opened = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        call(servers[i % 3] as ServeProcess, "POST", "/v1/decide", agent, payout(`quick-${i}`, 9_000)),
      ),
    );
    // Past the 1 s deadline: every process that looks at an approval now tries to time it out.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    for (const answer of opened) {
      const id = answer.headers.get("lumyn-approval-id");
      const waits = await Promise.all(
        servers.map((server) => call(server, "GET", `/v1/approvals/${id}/wait?timeout=1s`, alice)),
      );
      assert.deepEqual(
        waits.map((wait) => [wait.status, wait.body.state]),
        Array(3).fill([200, "TIMED_OUT"]),
      );
      assert.deepEqual(await transitions(answer.body.decision_id), ["WAITING_FOR_HUMAN", "TIMED_OUT"]);
    }
  });

  it("keeps one audit chain over everything the three processes wrote, and lumyn verify checks it", async () => {
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        call(servers[i % 3] as ServeProcess, "POST", "/v1/decide", agent, payout(`flood-${i}`, 10 + i)),
      ),
    );
    const report = JSON.parse(cli(["verify", "--json"]));
    const { rows } = await db.query(
      `SELECT (SELECT count(*) FROM decisions) + (SELECT count(*) FROM decision_events)
            + (SELECT count(*) FROM policy_snapshots) + (SELECT count(*) FROM policy_events) AS n`,
    );
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.equal(
      report.length,
      Number(rows[0].n),
      "every decision, event, policy snapshot and registry event of every process is chained",
    );
  });
});
