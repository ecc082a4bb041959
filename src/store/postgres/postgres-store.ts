import { storageError } from "../rows.ts";
import type { ChainOptions, Store, WriteActivity } from "../store.ts";
import { PostgresApiKeys } from "./api-keys.ts";
import { PostgresApprovals } from "./approvals.ts";
import { PostgresAuditLog } from "./audit-log.ts";
import {
  checkout,
  createPool,
  ignore,
  type PoolOptions,
  PostgresConnection,
  type PostgresLocation,
} from "./connection.ts";
import { PostgresDecisions } from "./decisions.ts";
import { PostgresMemoryCases } from "./memory-cases.ts";
import { migrate, requireCurrentSchema } from "./migrate.ts";
import { PostgresPolicyRegistry } from "./policy-registry.ts";
import type { MigrationOutcome } from "./schema.ts";
import { PostgresVelocity } from "./velocity.ts";
import { PostgresWebhooks } from "./webhooks.ts";

export interface PostgresStoreOptions extends ChainOptions, PoolOptions {
  /** Apply pending migrations on open (default true); when false, a store behind the code refuses to open. */
  readonly migrate?: boolean;
  /** Most decisions written in one transaction. */
  readonly maxBatch?: number;
  /** Decisions waiting for a transaction before new ones fail at once (fail-closed, not an unbounded queue). */
  readonly maxQueued?: number;
}

/**
 * The PostgreSQL store: the embedded store's tables in a database that several `lumyn serve` processes share.
 * Every write transaction first locks the chain's head row, so the audit chain stays one chain across
 * processes.
 */
export class PostgresStore implements Store {
  readonly location: PostgresLocation;
  readonly decisions: PostgresDecisions;
  readonly log: PostgresAuditLog;
  readonly memory: PostgresMemoryCases;
  readonly approvals: PostgresApprovals;
  readonly apiKeys: PostgresApiKeys;
  readonly webhooks: PostgresWebhooks;
  readonly policies: PostgresPolicyRegistry;
  readonly velocity: PostgresVelocity;
  private readonly connection: PostgresConnection;

  private constructor(
    location: PostgresLocation,
    connection: PostgresConnection,
    options: PostgresStoreOptions,
  ) {
    this.location = location;
    this.connection = connection;
    this.decisions = new PostgresDecisions(connection, options);
    this.log = new PostgresAuditLog(connection);
    this.memory = new PostgresMemoryCases(connection);
    this.approvals = new PostgresApprovals(connection);
    this.apiKeys = new PostgresApiKeys(connection);
    this.webhooks = new PostgresWebhooks(connection);
    this.policies = new PostgresPolicyRegistry(connection);
    this.velocity = new PostgresVelocity(connection);
  }

  /** Connects, applies pending migrations (unless disabled) and checks the schema is one this code knows. */
  static async open(location: PostgresLocation, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = createPool(location, options);
    try {
      const client = await checkout(pool);
      try {
        if (options.migrate !== false) await migrate(client, location.schema);
        else await requireCurrentSchema(client);
      } finally {
        client.removeListener("error", ignore);
        client.release();
      }
      return new PostgresStore(location, new PostgresConnection(pool, options), options);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw storageError(`open the store at ${location.display}`, error);
    }
  }

  /** Applies pending migrations and reports the versions (what `lumyn migrate` does). */
  static async migrate(location: PostgresLocation): Promise<MigrationOutcome> {
    const pool = createPool(location, {});
    try {
      const client = await checkout(pool);
      try {
        return await migrate(client, location.schema);
      } finally {
        client.removeListener("error", ignore);
        client.release();
      }
    } catch (error) {
      throw storageError(`migrate the store at ${location.display}`, error);
    } finally {
      await pool.end().catch(() => undefined);
    }
  }

  async ping(): Promise<void> {
    await this.connection.query("SELECT 1");
  }

  writeActivity(): WriteActivity {
    return this.connection.writes.activity(this.decisions.queued);
  }

  /** Writes what is queued, signs the head (with a signing key), then closes the pool. */
  async close(): Promise<void> {
    await this.decisions.drained();
    await this.connection.close();
  }
}
