/**
 * PostgreSQL goes down under a running `lumyn serve` and comes back. The database is a private cluster of
 * this test (src/testing/postgres.ts): stopping the shared server would break the tests running beside it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { createPrivateCluster, type PrivateCluster } from "../testing/postgres.ts";
import { runCli } from "../testing/run-cli.ts";
import { type ServeProcess, startServeProcess } from "../testing/serve-process.ts";
import { exampleRequest } from "../testing/server.ts";

/** How long the test waits for each step before it gives up (a bound on a hang, not a speed check). */
const RECOVERY_LIMIT_MS = 30_000;

describe("lumyn serve when PostgreSQL stops and starts again", () => {
  let cluster: PrivateCluster;
  let root: string;
  let server: ServeProcess;

  before(async () => {
    cluster = await createPrivateCluster();
    root = mkdtempSync(join(tmpdir(), "lumyn-pg-faults-"));
    server = await startServeProcess(
      ["--no-auth", "--workspace", "ws", "--store", cluster.url, "--log-level", "silent"],
      { cwd: root },
    );
  });

  after(async () => {
    try {
      assert.equal(await server?.stop(), 0, server?.stderr());
    } finally {
      // The cluster is a running PostgreSQL server: it goes even when the test failed.
      cluster?.destroy();
      rmSync(root, { recursive: true, force: true });
    }
  });

  let sent = 0;
  const decide = async () => {
    const response = await fetch(`${server.url}/v1/decide`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(exampleRequest("refund-small", { request_id: `fault-${sent++}` })),
    });
    const record = (await response.json()) as {
      decision_id: string;
      verdict: string;
      reason_codes: string[];
    };
    return { status: response.status, stored: response.headers.get("lumyn-decision-status"), record };
  };
  const ready = async () => (await fetch(`${server.url}/readyz`)).status;

  it("answers ABSTAIN STORAGE_UNAVAILABLE while the database is down, is not ready, and recovers by itself", async () => {
    // Four clients keep deciding throughout: some decisions are in flight when the database goes away.
    const answered: string[] = [];
    let unavailable = 0;
    let driving = true;
    const client = async (): Promise<void> => {
      while (driving) {
        const answer = await decide();
        assert.equal(answer.status, 200);
        if (answer.stored === "stored") answered.push(answer.record.decision_id);
        else {
          assert.equal(answer.stored, "unavailable");
          assert.equal(answer.record.verdict, "ABSTAIN");
          assert.deepEqual(answer.record.reason_codes, ["STORAGE_UNAVAILABLE"]);
          unavailable++;
        }
      }
    };
    const until = async (condition: () => boolean | Promise<boolean>, what: string): Promise<void> => {
      const giveUp = Date.now() + RECOVERY_LIMIT_MS;
      while (!(await condition())) {
        assert.ok(Date.now() < giveUp, what);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const clients = Array.from({ length: 4 }, client);

    await until(() => answered.length >= 40, "decisions are stored");
    assert.equal(await ready(), 200);
    cluster.stop();
    await until(() => unavailable >= 20, "decisions fail closed while the database is down");
    assert.equal(await ready(), 503);
    cluster.start();
    await until(async () => (await ready()) === 200, "the server reconnects to the database");
    const before = answered.length;
    await until(() => answered.length >= before + 40, "decisions are stored again");
    driving = false;
    await Promise.all(clients);

    const db = new pg.Client({ connectionString: cluster.url });
    await db.connect();
    try {
      const { rows } = await db.query(
        "SELECT decision_id FROM decisions WHERE decision_id = ANY($1::text[])",
        [answered],
      );
      assert.equal(rows.length, answered.length, "every decision answered as stored is in the database");
      const abstained = await db.query("SELECT count(*) AS n FROM decisions WHERE verdict = 'ABSTAIN'");
      assert.equal(Number(abstained.rows[0].n), 0, "fail-closed answers are not stored");
    } finally {
      await db.end();
    }
    const verified = runCli(["verify", "--json", "--workspace", "ws", "--store", cluster.url], { cwd: root });
    assert.equal(JSON.parse(verified.stdout).ok, true, verified.stderr);
  });
});
