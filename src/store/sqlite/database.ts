import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { ChainKind } from "../../domain/chain.ts";
import { ChainAppender } from "./chain-appender.ts";
import { MIGRATIONS } from "./schema.ts";

/** Opens (creating when missing) the database file with Lumyn's settings and applies pending migrations. */
export function openDatabase(path: string, busyTimeoutMs: number): DatabaseSync {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs });
  try {
    // wal_autocheckpoint stays at SQLite's default (~4 MB of WAL): the commit that crosses it runs the
    // checkpoint, and every decision waiting on that commit waits for it too, so a larger WAL made the tail
    // latency worse without adding throughput (docs/benchmarks.md). mmap_size: pages are read from a memory
    // map rather than copied in by a system call each, which speeds up reads of whole history (verify,
    // backtest).
    db.exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 1000; PRAGMA mmap_size = 1073741824;",
    );
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * The `user_version` after the migration that creates the audit chain; rows stored before it are chained
 * when it is applied. Found by content, so that it holds wherever that migration sits in the list.
 */
const CHAIN_MIGRATION = MIGRATIONS.findIndex((sql) => sql.includes("CREATE TABLE audit_chain")) + 1;
/** The `user_version` after the migration that brings policy snapshots and registry events into the chain. */
const POLICY_CHAIN_MIGRATION = MIGRATIONS.findIndex((sql) => sql.includes("ADD COLUMN tree_root")) + 1;

function userVersion(db: DatabaseSync): number {
  return Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
}

function migrate(db: DatabaseSync): void {
  if (userVersion(db) >= MIGRATIONS.length) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    // Read again under the write lock: another connection may have migrated meanwhile.
    for (let version = userVersion(db); version < MIGRATIONS.length; version++) {
      db.exec(MIGRATIONS[version] as string);
      if (version + 1 === CHAIN_MIGRATION) chainExistingRows(db);
      if (version + 1 === POLICY_CHAIN_MIGRATION) chainPolicyRows(db);
      db.exec(`PRAGMA user_version = ${version + 1}`);
    }
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

/** Decisions and events stored before the chain existed join it in storage order, once, on upgrade. */
function chainExistingRows(db: DatabaseSync): void {
  const rows = db
    .prepare(
      `SELECT 'decision' AS kind, decision_id AS id, created_at, rowid AS position FROM decisions
       UNION ALL SELECT 'event', event_id, created_at, seq FROM decision_events
       ORDER BY created_at, kind, position`,
    )
    .all();
  const chain = new ChainAppender(db);
  chain.begin();
  for (const row of rows) chain.append(row.kind as ChainKind, String(row.id));
}

/** Policy snapshots and registry events stored before they were chained join the chain, once, on upgrade. */
function chainPolicyRows(db: DatabaseSync): void {
  const rows = db
    .prepare(
      `SELECT 'policy' AS kind, policy_hash AS id, created_at, 0 AS position FROM policy_snapshots
       UNION ALL SELECT 'policy_event', CAST(seq AS TEXT), created_at, seq FROM policy_events
       ORDER BY created_at, kind, position, id`,
    )
    .all();
  const chain = new ChainAppender(db);
  chain.begin();
  for (const row of rows) chain.append(row.kind as ChainKind, String(row.id));
}
