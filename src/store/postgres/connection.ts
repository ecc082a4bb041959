import pg from "pg";
import { timestamp } from "../../core/ids.ts";
import { StorageError } from "../../core/problem.ts";
import {
  type ChainCheckpoint,
  type ChainedRow,
  chainEntry,
  chainHash,
  DEFAULT_CHECKPOINT_EVERY,
  type SigningKey,
  signCheckpoint,
  signingKeyFromPem,
} from "../../domain/chain.ts";
import type { StoreLocation } from "../location.ts";
import { type EventRow, frontierOf, storageError } from "../rows.ts";
import type { ChainOptions } from "../store.ts";
import { WriteTracker } from "../write-activity.ts";

export type PostgresLocation = Extract<StoreLocation, { kind: "postgres" }>;

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Rows read per round trip when whole history is walked (chain, memory, backtests): memory stays bounded. */
export const SCAN_PAGE = 2_000;
/** A statement that runs longer than this is cancelled: a stuck server must not hold the chain's head forever. */
const STATEMENT_TIMEOUT_MS = 30_000;

/** The chain's head, as the transaction that holds its lock moves it. */
export interface Head {
  seq: number;
  hash: string;
}

/**
 * The PostgreSQL store's pool, shared by its aggregates. Every write that adds to the audit chain runs in a
 * {@link transaction} that first locks the chain's head row, so the chain stays one chain across processes.
 */
export class PostgresConnection {
  readonly pool: pg.Pool;
  /** The writes sent and not yet answered, and the last commit (for readiness). */
  readonly writes = new WriteTracker();
  private readonly signingKey: SigningKey | undefined;
  private readonly checkpointEvery: number;
  private closed = false;

  constructor(pool: pg.Pool, options: ChainOptions) {
    this.pool = pool;
    this.signingKey = options.signingKeyPem ? signingKeyFromPem(options.signingKeyPem) : undefined;
    this.checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  }

  get signs(): boolean {
    return this.signingKey !== undefined;
  }

  ensureOpen(): void {
    if (this.closed) throw new StorageError("the store is closed");
  }

  async query<R extends pg.QueryResultRow>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    this.ensureOpen();
    try {
      return await this.pool.query<R>(sql, params as unknown[]);
    } catch (error) {
      throw storageError("read from the store", error);
    }
  }

  /** One write statement outside the chain; returns how many rows it changed. */
  async write(action: string, sql: string, params: readonly unknown[]): Promise<number> {
    return (await this.writeReturning(action, sql, params)).rowCount ?? 0;
  }

  /** One write statement outside the chain, with the rows it returns. */
  async writeReturning<R extends pg.QueryResultRow>(
    action: string,
    sql: string,
    params: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    this.ensureOpen();
    const id = this.writes.begin();
    try {
      const result = await this.pool.query<R>(sql, params as unknown[]);
      this.writes.end(id, true);
      return result;
    } catch (error) {
      this.writes.end(id, false);
      throw storageError(action, error);
    }
  }

  /** Runs `work` in a transaction on one connection (rolled back when it throws). */
  async session<T>(action: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.ensureOpen();
    // From the wait for a connection on: a pool exhausted by stuck transactions is a stall too.
    const id = this.writes.begin();
    let client: pg.PoolClient;
    try {
      client = await checkout(this.pool);
    } catch (error) {
      this.writes.end(id, false);
      throw storageError(action, error);
    }
    let broken = false;
    let committed = false;
    try {
      const result = await work(client);
      committed = true;
      return result;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch {
        // The connection is gone with its transaction; the pool must not hand it out again.
        broken = true;
      }
      throw storageError(action, error);
    } finally {
      this.writes.end(id, committed);
      client.removeListener("error", ignore);
      client.release(broken);
    }
  }

  /** Runs `work` in a transaction that holds the chain's head; commits the head `work` moved. */
  transaction<T>(action: string, work: (client: pg.PoolClient, head: Head) => Promise<T>): Promise<T> {
    return this.session(action, async (client) => {
      const head = await beginAndLockHead(client);
      const start = head.seq;
      const result = await work(client, head);
      if (head.seq === start) await client.query("COMMIT");
      else {
        const every = this.checkpointEvery;
        if (Math.floor(head.seq / every) > Math.floor(start / every)) await this.signHead(client, head);
        await client.query(`${moveHead(head)}; COMMIT`);
      }
      return result;
    });
  }

  /** Signs the chain's head when entries were added since the last checkpoint (in the caller's transaction). */
  async signHead(client: pg.PoolClient, head: Head): Promise<ChainCheckpoint | undefined> {
    const key = this.signingKey;
    if (!key) return undefined;
    const last = await client.query<{ seq: string; frontier_json: string | null }>(
      "SELECT seq, frontier_json FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
    );
    if (head.seq <= Number(last.rows[0]?.seq ?? 0)) return undefined;
    // The tree grows from the last checkpoint's frontier: only the entries since are read.
    const frontier = frontierOf(last.rows[0]?.frontier_json);
    for (let after = frontier.size; after < head.seq; after = frontier.size) {
      const page = await client.query<{ hash: string }>(
        `SELECT hash FROM audit_chain WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT ${SCAN_PAGE}`,
        [after, head.seq],
      );
      for (const row of page.rows) frontier.append(row.hash);
      if (page.rows.length === 0) throw new StorageError(`the audit chain has no entry ${after + 1}`);
    }
    const checkpoint = signCheckpoint(key, head.seq, head.hash, frontier.root(), timestamp(new Date()));
    await client.query(
      `INSERT INTO audit_checkpoints (seq, head_hash, tree_root, frontier_json, key_id, signature, signed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (seq) DO NOTHING`,
      [
        checkpoint.seq,
        checkpoint.headHash,
        checkpoint.treeRoot,
        JSON.stringify(frontier.state()),
        checkpoint.keyId,
        checkpoint.signature,
        checkpoint.signedAt,
      ],
    );
    return checkpoint;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.signingKey) {
      // Every entry is already durable; a head left unsigned now is signed at the next close or checkpoint.
      await this.transaction("sign the chain's head", (client, head) => this.signHead(client, head)).catch(
        () => undefined,
      );
    }
    this.closed = true;
    await this.pool.end();
  }
}

export interface PoolOptions {
  /** How long to wait for a connection (ms). */
  readonly connectTimeoutMs?: number;
}

export function createPool(location: PostgresLocation, options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: location.connectionString,
    max: location.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: "lumyn",
    ...(location.schema !== undefined ? { options: `-c search_path=${location.schema}` } : {}),
  });
  // An idle connection the server drops (restart, failover) is removed from the pool; the next query opens
  // a new one. Without a listener the error would end the process.
  pool.on("error", ignore);
  return pool;
}

export function ignore(): void {}

/**
 * A connection taken from the pool for a transaction. A connection that breaks between two of its queries
 * emits an error that no query receives: it is ignored here (the next query fails and the transaction with
 * it), since unhandled it would end the process.
 */
export async function checkout(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect();
  client.on("error", ignore);
  return client;
}

/** Opens a transaction and locks the chain's head in it, in one round trip. */
async function beginAndLockHead(client: pg.PoolClient): Promise<Head> {
  const results = (await client.query(`BEGIN; ${LOCK_HEAD}`)) as unknown as pg.QueryResult<{
    seq: string;
    hash: string;
  }>[];
  return headOf(results[1]);
}

const LOCK_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";

/** Locks the chain's head in the transaction the client is in (a migration's). */
export async function lockHead(client: pg.PoolClient): Promise<Head> {
  return headOf(await client.query<{ seq: string; hash: string }>(LOCK_HEAD));
}

function headOf(result: pg.QueryResult<{ seq: string; hash: string }> | undefined): Head {
  const row = result?.rows[0];
  if (!row) throw new StorageError("the audit chain's head row is missing");
  return { seq: Number(row.seq), hash: row.hash };
}

const CHAIN_HASH = /^sha256:[0-9a-f]{64}$/;

/**
 * The statement that moves the head, with its values written in: it is sent with COMMIT in one round trip
 * (a statement with parameters cannot share a message with another). Both values are ours and checked.
 */
export function moveHead(head: Head): string {
  if (!Number.isSafeInteger(head.seq) || !CHAIN_HASH.test(head.hash))
    throw new StorageError(`the audit chain's head is malformed: ${head.seq} ${head.hash}`);
  return `UPDATE audit_head SET seq = ${head.seq}, hash = '${head.hash}' WHERE id = 1`;
}

/** A row to chain, with the id its entry names it by. */
export interface ChainItem {
  readonly id: string;
  readonly row: ChainedRow;
}

/** The chain rows that follow `head` for these items, in order; moves `head` past them. */
export function chainEntries(head: Head, items: readonly ChainItem[]) {
  const rows = { seqs: [] as number[], kinds: [] as string[], ids: [] as string[], hashes: [] as string[] };
  for (const { id, row } of items) {
    const seq = head.seq + 1;
    head.hash = chainHash(head.hash, chainEntry(seq, row));
    head.seq = seq;
    rows.seqs.push(seq);
    rows.kinds.push(row.kind);
    rows.ids.push(id);
    rows.hashes.push(head.hash);
  }
  return rows;
}

/** Appends rows to the chain (in the caller's transaction, which holds the head), moving `head`. */
export async function appendChain(
  client: pg.PoolClient,
  head: Head,
  items: readonly ChainItem[],
): Promise<void> {
  if (items.length === 0) return;
  const rows = chainEntries(head, items);
  await client.query(
    "INSERT INTO audit_chain (seq, kind, ref_id, hash) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])",
    [rows.seqs, rows.kinds, rows.ids, rows.hashes],
  );
}

/** Inserts events and chains them, in the caller's transaction (which holds the head). */
export async function insertEvents(
  client: pg.PoolClient,
  head: Head,
  events: readonly EventRow[],
): Promise<void> {
  if (events.length === 0) return;
  await client.query(
    `INSERT INTO decision_events (event_id, decision_id, type, created_at, data_json)
       SELECT event_id, decision_id, type, created_at, data_json
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         WITH ORDINALITY AS e (event_id, decision_id, type, created_at, data_json, n)
       ORDER BY n`,
    [
      events.map((e) => e.eventId),
      events.map((e) => e.decisionId),
      events.map((e) => e.type),
      events.map((e) => e.createdAt),
      events.map((e) => e.dataJson),
    ],
  );
  await appendChain(
    client,
    head,
    events.map((event) => ({ id: event.eventId, row: { kind: "event", event } })),
  );
}
