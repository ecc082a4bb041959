import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { POSTGRES_MIGRATIONS } from "../../store/postgres/schema.ts";
import { createTestDatabase, type TestDatabase } from "../../testing/postgres.ts";
import { runCli } from "../../testing/run-cli.ts";
import { startServeProcess } from "../../testing/serve-process.ts";

const UNREACHABLE = "postgres://lumyn:s3cret@127.0.0.1:1/lumyn";

describe("lumyn migrate and --store", () => {
  let database: TestDatabase;
  let root: string;
  before(async () => {
    database = await createTestDatabase("cli");
    root = mkdtempSync(join(tmpdir(), "lumyn-cli-store-"));
  });
  after(async () => {
    await database.drop();
    rmSync(root, { recursive: true, force: true });
  });

  it("applies the migrations once and then reports the store up to date", () => {
    const first = runCli(["migrate", "--store", database.url, "--json"], { cwd: root });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), {
      store: database.url,
      from: 0,
      to: POSTGRES_MIGRATIONS.length,
    });
    const again = runCli(["migrate", "--store", database.url], { cwd: root });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /is up to date \(schema version \d+\)/);
  });

  it("decides into the store LUMYN_STORE names and reads it back with the other commands", () => {
    const env = { ...process.env, LUMYN_STORE: database.url };
    const run = (args: string[]) => {
      const result = runCli([...args, "--workspace", "ws-env"], { cwd: root, env });
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    run(["init"]);
    const record = JSON.parse(run(["decide", join(root, "ws-env", "examples", "refund-small.json")]));
    assert.equal(existsSync(join(root, "ws-env", "lumyn.db")), false, "no SQLite file beside PostgreSQL");
    assert.equal(JSON.parse(run(["show", record.decision_id])).decision_id, record.decision_id);
    assert.match(run(["stats"]), /total\s+1/);
    assert.equal(JSON.parse(run(["verify", "--json"])).ok, true);
  });

  it("exits 3 with a clear message, password hidden, for malformed and unreachable stores, and writes nothing", () => {
    for (const [url, message] of [
      ["postgres://lumyn:s3cret@[::1/x", /not a valid URL/],
      ["mysql://lumyn:s3cret@db/x", /unsupported scheme 'mysql'/],
      ["postgres://lumyn:s3cret@db/x?pool_max=0", /pool_max '0' is not allowed/],
      [UNREACHABLE, /could not .* at postgres:\/\/lumyn:\*\*\*@127\.0\.0\.1:1\/lumyn: connect ECONNREFUSED/],
    ] as const) {
      for (const args of [
        ["migrate", "--store", url],
        ["init", "--workspace", "ws-never", "--store", url],
        ["serve", "--no-auth", "--port", "0", "--workspace", "ws-never", "--store", url],
      ]) {
        const result = runCli(args, { cwd: root });
        assert.equal(result.code, 3, `${args.join(" ")}: ${result.stderr}`);
        assert.match(result.stderr, message);
        assert.ok(!result.stderr.includes("s3cret"), result.stderr);
        assert.ok(!result.stderr.includes("    at "), "no stack trace");
      }
    }
    assert.equal(existsSync(join(root, "ws-never")), false);
  });

  it("refuses to serve a database behind the code with --no-migrate, until lumyn migrate", async () => {
    const store = `${database.url}?schema=behind`;
    const refused = runCli(["serve", "--no-auth", "--port", "0", "--no-migrate", "--store", store], {
      cwd: root,
    });
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /schema version 0, this Lumyn needs \d+: run `lumyn migrate`/);
    assert.equal(runCli(["migrate", "--store", store], { cwd: root }).code, 0);
    const server = await startServeProcess(["--no-auth", "--no-migrate", "--store", store], { cwd: root });
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    assert.equal(await server.stop(), 0);
  });

  it("prints the store with its password hidden, and --no-migrate as a flag", () => {
    const result = runCli(["serve", "--print-config", "--store", UNREACHABLE, "--no-migrate"], { cwd: root });
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout);
    assert.equal(printed.settings.store, "postgres://lumyn:***@127.0.0.1:1/lumyn");
    assert.equal(printed.settings.migrate, false);
    assert.equal(printed.sources.migrate, "flag");
    assert.ok(!result.stdout.includes("s3cret"));
  });
});
