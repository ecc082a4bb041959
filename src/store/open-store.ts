import type { StoreLocation } from "./location.ts";
import type { MigrationOutcome } from "./postgres/schema.ts";
import { SqliteStore, type SqliteStoreOptions } from "./sqlite/sqlite-store.ts";
import type { Store } from "./store.ts";

export interface OpenStoreOptions {
  /** Ed25519 private key (PKCS#8 PEM) that signs the audit chain's head. */
  readonly signingKeyPem?: string;
  /** PostgreSQL: apply pending migrations on open (default true). */
  readonly migrate?: boolean;
  /** The embedded store's settings (writer thread, batch size …). */
  readonly sqlite?: SqliteStoreOptions;
}

/** Opens the store at a location; a failure is a StorageError that names the location (password hidden). */
export async function openStore(location: StoreLocation, options: OpenStoreOptions = {}): Promise<Store> {
  const signing = options.signingKeyPem ? { signingKeyPem: options.signingKeyPem } : {};
  if (location.kind === "sqlite") return SqliteStore.open(location.path, { ...signing, ...options.sqlite });
  // Loaded only when asked for: commands on the embedded store start without the PostgreSQL client.
  const { PostgresStore } = await import("./postgres/postgres-store.ts");
  return PostgresStore.open(location, {
    ...signing,
    ...(options.migrate !== undefined ? { migrate: options.migrate } : {}),
  });
}

/**
 * Applies a PostgreSQL store's pending migrations and says from which schema version to which (`lumyn
 * migrate`); the embedded store migrates whenever it is opened.
 */
export async function migrateStore(
  location: Extract<StoreLocation, { kind: "postgres" }>,
): Promise<MigrationOutcome> {
  const { PostgresStore } = await import("./postgres/postgres-store.ts");
  return PostgresStore.migrate(location);
}
