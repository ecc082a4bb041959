import type { PoolClient } from "pg";
import { StorageError } from "../../core/problem.ts";
import { chainedPolicyEventOf, chainedPolicyOf } from "../rows.ts";
import { appendChain, type ChainItem, lockHead, moveHead } from "./connection.ts";
import { type MigrationOutcome, POSTGRES_MIGRATIONS } from "./schema.ts";

/** The number of the migration that brings policy snapshots and registry events into the chain. */
const POLICY_CHAIN_MIGRATION =
  POSTGRES_MIGRATIONS.findIndex((sql) => sql.includes("ADD COLUMN tree_root")) + 1;

/** A key for `pg_advisory_lock`, per schema: migrators of other schemas in the same database do not wait. */
const LOCK_KEY_SQL = "hashtext('lumyn migrate ' || coalesce($1, current_schema(), ''))";

const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS lumyn_schema_migrations (
  version    INTEGER PRIMARY KEY,
  applied_at TEXT NOT NULL
)`;

/** The schema version of the store the client is connected to (0 when it has no Lumyn tables). */
export async function schemaVersion(client: PoolClient): Promise<number> {
  const exists = await client.query<{ found: boolean }>(
    "SELECT to_regclass('lumyn_schema_migrations') IS NOT NULL AS found",
  );
  if (!exists.rows[0]?.found) return 0;
  const result = await client.query<{ version: number | null }>(
    "SELECT max(version) AS version FROM lumyn_schema_migrations",
  );
  return Number(result.rows[0]?.version ?? 0);
}

/**
 * Applies the pending migrations, each in its own transaction. Servers starting at once may all call this:
 * an advisory lock lets one migrate while the others wait, then find nothing left to do.
 */
export async function migrate(client: PoolClient, schema: string | undefined): Promise<MigrationOutcome> {
  const lockKey = [schema ?? null];
  await client.query(`SELECT pg_advisory_lock(${LOCK_KEY_SQL})`, lockKey);
  try {
    // Under the lock: two processes creating the same schema at once would otherwise collide.
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(VERSION_TABLE);
    const from = await schemaVersion(client);
    for (let version = from; version < POSTGRES_MIGRATIONS.length; version++) {
      await client.query("BEGIN");
      try {
        await client.query(POSTGRES_MIGRATIONS[version] as string);
        if (version + 1 === POLICY_CHAIN_MIGRATION) await chainPolicyRows(client);
        await client.query("INSERT INTO lumyn_schema_migrations (version, applied_at) VALUES ($1, $2)", [
          version + 1,
          new Date().toISOString(),
        ]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK");
        throw error;
      }
    }
    return { from, to: Math.max(from, POSTGRES_MIGRATIONS.length) };
  } finally {
    await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY_SQL})`, lockKey);
  }
}

/** Refuses a store whose schema is behind this code's (when migrations are not applied at open). */
export async function requireCurrentSchema(client: PoolClient): Promise<void> {
  const version = await schemaVersion(client);
  if (version < POSTGRES_MIGRATIONS.length) {
    throw new StorageError(
      `the database is at schema version ${version}, this Lumyn needs ${POSTGRES_MIGRATIONS.length}: run \`lumyn migrate\``,
    );
  }
}

/** Policy snapshots and registry events stored before they were chained join the chain, once, on upgrade. */
async function chainPolicyRows(client: PoolClient): Promise<void> {
  const head = await lockHead(client);
  const { rows } = await client.query(
    `SELECT 'policy' AS kind, policy_hash AS id, policy_hash, policy_id, policy_version, policy_text, created_at,
         0 AS seq, NULL AS tenant_id, NULL AS type, NULL AS active_hash, NULL AS detail_json
       FROM policy_snapshots
     UNION ALL SELECT 'policy_event', CAST(seq AS TEXT), policy_hash, NULL, NULL, NULL, created_at,
         seq, tenant_id, type, active_hash, detail_json
       FROM policy_events
     ORDER BY created_at, kind, seq, id`,
  );
  const items: ChainItem[] = rows.map((row) =>
    row.kind === "policy"
      ? { id: String(row.id), row: { kind: "policy", policy: chainedPolicyOf(row) } }
      : { id: String(row.id), row: { kind: "policy_event", policyEvent: chainedPolicyEventOf(row) } },
  );
  if (items.length === 0) return;
  await appendChain(client, head, items);
  await client.query(moveHead(head));
}
