import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { verifyStoreChain } from "../../audit/verify.ts";
import { StorageError } from "../../core/problem.ts";
import { createTestDatabase, type TestDatabase } from "../../testing/postgres.ts";
import { makeRecord } from "../conformance/backend.conformance.ts";
import { storeConformance } from "../conformance/store.conformance.ts";
import { parseStoreLocation, type StoreLocation } from "../location.ts";
import { PostgresStore } from "./postgres-store.ts";
import { POSTGRES_MIGRATIONS } from "./schema.ts";

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase("store");
});
after(() => database.drop());

let count = 0;
/** A location in a new schema of the test database: every test starts from an empty store. */
function freshLocation(schema = `s${++count}`): Extract<StoreLocation, { kind: "postgres" }> {
  const location = parseStoreLocation(`${database.url}?schema=${schema}`);
  assert.ok(location.ok && location.value.kind === "postgres");
  return location.value;
}

storeConformance({
  name: "postgres",
  open: (options = {}) =>
    // A signing store reopens the same schema (the test closes it, then checks what closing signed).
    PostgresStore.open(options.signingKeyPem ? freshLocation("signed") : freshLocation(), options),
});

describe("PostgresStore", () => {
  it("keeps one chain and one record per request_id when two stores (two servers) write at once", async () => {
    const location = freshLocation();
    const [one, two] = await Promise.all([PostgresStore.open(location), PostgresStore.open(location)]);
    try {
      const writes = Array.from({ length: 200 }, (_, i) =>
        (i % 2 === 0 ? one : two).decisions.put(makeRecord({ requestId: `two-writers-${i % 150}` })),
      );
      const results = await Promise.all(writes);
      assert.equal(results.filter((result) => result.status === "stored").length, 150);
      assert.equal(results.filter((result) => result.status === "duplicate").length, 50);
      const report = await verifyStoreChain(one);
      assert.equal(report.broken, undefined);
      assert.equal(report.length, 150);
      assert.deepEqual(await verifyStoreChain(two), report);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it("migrates once when several processes start at once, and records each version", async () => {
    const location = freshLocation();
    const outcomes = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.migrate(location)));
    assert.deepEqual(
      outcomes.map((outcome) => outcome.to),
      Array(4).fill(POSTGRES_MIGRATIONS.length),
    );
    assert.equal(outcomes.filter((outcome) => outcome.from === 0).length, 1, "one migrator did the work");
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT version FROM ${location.schema}.lumyn_schema_migrations`);
      assert.deepEqual(
        rows.map((row) => row.version),
        POSTGRES_MIGRATIONS.map((_, i) => i + 1),
      );
    } finally {
      await client.end();
    }
  });

  it("refuses to open a store behind the code when migrations are disabled", async () => {
    await assert.rejects(
      () => PostgresStore.open(freshLocation(), { migrate: false }),
      (error: Error) =>
        error instanceof StorageError && /schema version 0.*lumyn migrate/.test(error.message),
    );
  });

  it("reads a key written without a principal (by a process not yet upgraded) with its name, else its id", async () => {
    const location = freshLocation();
    const store = await PostgresStore.open(location);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(`SET search_path TO ${location.schema}`);
      for (const [keyId, name] of [
        ["01OLDNAMED", "alice"],
        ["01OLDUNNAMED", ""],
      ] as const)
        await client.query(
          `INSERT INTO api_keys (key_id, key_hash, name, scopes_json, roles_json, created_at)
           VALUES ($1, $2, $3, '["approve"]', '["finance"]', '2026-01-01T00:00:00Z')`,
          [keyId, `sha256:${keyId.padEnd(64, "0")}`, name],
        );
      assert.deepEqual(
        (await store.apiKeys.list()).map((key) => [key.keyId, key.principal]),
        [
          ["01OLDNAMED", "alice"],
          ["01OLDUNNAMED", "01OLDUNNAMED"],
        ],
      );
    } finally {
      await client.end();
      await store.close();
    }
  });

  it("refuses to change or delete events and chain entries", async () => {
    const location = freshLocation();
    const store = await PostgresStore.open(location);
    const record = makeRecord();
    await store.decisions.put(record);
    await store.log.append({ decisionId: record.decision_id, type: "label", data: {} });
    await store.close();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(`SET search_path TO ${location.schema}`);
      await assert.rejects(() => client.query("UPDATE decision_events SET type = 'x'"), /append-only/);
      await assert.rejects(() => client.query("DELETE FROM decision_events"), /append-only/);
      await assert.rejects(() => client.query("TRUNCATE audit_chain CASCADE"), /append-only/);
    } finally {
      await client.end();
    }
  });

  it("reports an unreachable server as a StorageError that names the server without its password", async () => {
    const parsed = parseStoreLocation("postgres://lumyn:s3cret@127.0.0.1:1/nowhere");
    assert.ok(parsed.ok && parsed.value.kind === "postgres");
    const location = parsed.value;
    await assert.rejects(
      () => PostgresStore.open(location, { connectTimeoutMs: 2_000 }),
      (error: Error) =>
        error instanceof StorageError &&
        error.message.includes("lumyn:***@127.0.0.1:1") &&
        !error.message.includes("s3cret"),
    );
  });
});
