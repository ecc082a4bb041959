import type { DatabaseSync } from "node:sqlite";
import { signingKeyFromPem } from "../../domain/chain.ts";
import { storageError } from "../rows.ts";
import type { ChainOptions, Store, WriteActivity } from "../store.ts";
import { SqliteApiKeys } from "./api-keys.ts";
import { SqliteApprovals } from "./approvals.ts";
import { SqliteAuditLog } from "./audit-log.ts";
import { SqliteConnection } from "./connection.ts";
import { openDatabase } from "./database.ts";
import { DEFAULT_MAX_BATCH, SqliteDecisions } from "./decisions.ts";
import { SqliteMemoryCases } from "./memory-cases.ts";
import { SqlitePolicyRegistry } from "./policy-registry.ts";
import { SqliteVelocity } from "./velocity.ts";
import { SqliteWebhooks } from "./webhooks.ts";
import { SqliteWriter } from "./writer.ts";

export interface SqliteStoreOptions extends ChainOptions {
  /** How long a write waits for another process's lock before failing (ms). */
  readonly busyTimeoutMs?: number;
  /** Most decisions written in one transaction. */
  readonly maxBatch?: number;
  /**
   * Where writes run: `inline` on the calling thread (no start-up cost: the CLI), or `thread` in a worker
   * thread that commits while the main thread keeps deciding (throughput: servers and batch jobs).
   */
  readonly writer?: "inline" | "thread";
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * The embedded default store: one SQLite file through `node:sqlite`, in WAL mode with `synchronous=FULL`, so
 * a record is on disk before `decisions.put` resolves. Reads use their own connection; WAL lets them run
 * beside the writer.
 */
export class SqliteStore implements Store {
  readonly path: string;
  readonly decisions: SqliteDecisions;
  readonly log: SqliteAuditLog;
  readonly memory: SqliteMemoryCases;
  readonly approvals: SqliteApprovals;
  readonly apiKeys: SqliteApiKeys;
  readonly webhooks: SqliteWebhooks;
  readonly policies: SqlitePolicyRegistry;
  readonly velocity: SqliteVelocity;
  private readonly connection: SqliteConnection;
  private readonly pingStatement;

  private constructor(path: string, db: DatabaseSync, options: SqliteStoreOptions) {
    this.path = path;
    const chain: ChainOptions = {
      ...(options.signingKeyPem ? { signingKeyPem: options.signingKeyPem } : {}),
      ...(options.checkpointEvery ? { checkpointEvery: options.checkpointEvery } : {}),
    };
    if (options.writer === "thread") {
      // A bad key fails the open here, as it does inline, rather than every write in the thread.
      if (options.signingKeyPem) signingKeyFromPem(options.signingKeyPem);
      this.connection = new SqliteConnection(db, {
        path,
        busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
        ...chain,
      });
    } else {
      this.connection = new SqliteConnection(db, new SqliteWriter(db, chain));
    }
    this.decisions = new SqliteDecisions(this.connection, options.maxBatch ?? DEFAULT_MAX_BATCH);
    this.log = new SqliteAuditLog(this.connection);
    this.memory = new SqliteMemoryCases(this.connection);
    this.approvals = new SqliteApprovals(this.connection);
    this.apiKeys = new SqliteApiKeys(this.connection);
    this.webhooks = new SqliteWebhooks(this.connection);
    this.policies = new SqlitePolicyRegistry(this.connection);
    this.velocity = new SqliteVelocity(this.connection);
    this.pingStatement = db.prepare("SELECT 1");
  }

  /** Opens (creating when missing) the database file and applies pending migrations. */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let db: DatabaseSync | undefined;
    try {
      db = openDatabase(path, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
      return new SqliteStore(path, db, options);
    } catch (error) {
      db?.close();
      throw storageError(`open the store at ${path}`, error);
    }
  }

  async ping(): Promise<void> {
    this.connection.read(() => this.pingStatement.get());
  }

  writeActivity(): WriteActivity {
    return this.connection.writes.activity(this.decisions.queued);
  }

  /** Writes what is queued, waits for the writer, signs the head (with a signing key), then closes. */
  async close(): Promise<void> {
    this.decisions.flush();
    await this.connection.close();
  }
}
