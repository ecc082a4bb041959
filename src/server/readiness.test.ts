/**
 * /readyz and writes that stop committing while the store still answers reads: a SQLite file locked by
 * another process, a PostgreSQL row lock held by another connection. Each stall is real, and released.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { Lumyn } from "../lumyn.ts";
import { createTestDatabase, type TestDatabase } from "../testing/postgres.ts";
import { exampleRequest, startTestServer } from "../testing/server.ts";
import { startServer } from "./server.ts";

/** The stall setting of these servers: short, so that a test waits a fraction of a second for it. */
const STALL_MS = 200;
/** How long a test waits for /readyz to turn (a bound on a hang, not a speed check). */
const WAIT_LIMIT_MS = 10_000;

async function readiness(url: string): Promise<{ status: number; detail?: string; code?: string }> {
  const response = await fetch(`${url}/readyz`);
  const body = (await response.json()) as { detail?: string; code?: string };
  return { status: response.status, ...body };
}

async function untilReadiness(url: string, status: number) {
  const giveUp = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    const answer = await readiness(url);
    if (answer.status === status) return answer;
    assert.ok(Date.now() < giveUp, `/readyz stayed ${answer.status}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function decide(url: string, requestId: string, key?: string) {
  return fetch(`${url}/v1/decide`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(exampleRequest("refund-small", { request_id: requestId })),
  });
}

describe("/readyz when writes stop committing", () => {
  it("SQLite: 503 while a decision waits behind another process's lock past write_stall_ms, 200 once it commits", async () => {
    const server = await startTestServer({
      store: { writer: "thread", busyTimeoutMs: 30_000 },
      writeStallMs: STALL_MS,
    });
    const key = await server.key({ scopes: ["admin"] });
    const lock = new DatabaseSync(join(server.dir, "ws", "lumyn.db"));
    try {
      assert.equal((await readiness(server.url)).status, 200);
      lock.exec("BEGIN IMMEDIATE");
      const deciding = decide(server.url, "behind-a-lock", key);
      const stuck = await untilReadiness(server.url, 503);
      assert.equal(stuck.code, "not_ready");
      assert.match(
        stuck.detail ?? "",
        /^the store's writes are stuck: 1 waiting, none committed for \d+ ms \(write_stall_ms: 200\)$/,
      );
      lock.exec("COMMIT");
      const decided = await deciding;
      assert.deepEqual([decided.status, decided.headers.get("lumyn-decision-status")], [200, "stored"]);
      assert.equal((await readiness(server.url)).status, 200);
    } finally {
      if (lock.isTransaction) lock.exec("ROLLBACK");
      lock.close();
      await server.close();
    }
  });

  describe("PostgreSQL", () => {
    let database: TestDatabase;
    let dir: string;
    before(async () => {
      database = await createTestDatabase("readiness");
      dir = mkdtempSync(join(tmpdir(), "lumyn-readiness-"));
    });
    after(async () => {
      rmSync(dir, { recursive: true, force: true });
      await database.drop();
    });

    it("503 while a decision waits for the chain's head another connection holds, 200 once it commits", async () => {
      const opened = await Lumyn.open({ workspace: join(dir, "ws"), storeUrl: database.url });
      assert.ok(opened.ok);
      const server = await startServer({
        lumyn: opened.value,
        port: 0,
        auth: false,
        log: false,
        writeStallMs: STALL_MS,
      });
      const holder = new pg.Client({ connectionString: database.url });
      await holder.connect();
      try {
        assert.equal((await readiness(server.url)).status, 200);
        await holder.query("BEGIN");
        await holder.query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE");
        const deciding = decide(server.url, "behind-a-row-lock");
        const stuck = await untilReadiness(server.url, 503);
        assert.match(stuck.detail ?? "", /^the store's writes are stuck: 1 waiting/);
        await holder.query("ROLLBACK");
        const decided = await deciding;
        assert.deepEqual([decided.status, decided.headers.get("lumyn-decision-status")], [200, "stored"]);
        assert.equal((await readiness(server.url)).status, 200);
      } finally {
        await holder.end();
        await server.close();
      }
    });
  });
});
