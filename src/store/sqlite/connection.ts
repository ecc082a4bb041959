import { extname } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { StorageError } from "../../core/problem.ts";
import { storageError } from "../rows.ts";
import { WriteTracker } from "../write-activity.ts";
import type { SqliteWriter, WriterArguments, WriterOperation, WriterResult } from "./writer.ts";
import type { WriterReply, WriterRequest, WriterThreadData } from "./writer-thread.ts";

/** How long reads may share one snapshot (see {@link SqliteConnection.read}). */
const MAX_SNAPSHOT_AGE_MS = 1;

/** A request before the thread's client numbers it. */
type WriterCall = WriterRequest extends infer R ? (R extends WriterRequest ? Omit<R, "id"> : never) : never;

type Call = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** The writer running in a worker thread, called with promises. */
class WriterThread {
  private readonly worker: Worker;
  private readonly calls = new Map<number, Call>();
  private nextId = 0;
  private failure: Error | undefined;

  /** `written` runs before each reply is handed on, so that what follows it can read what was written. */
  constructor(data: WriterThreadData, written: () => void) {
    const self = fileURLToPath(import.meta.url);
    this.worker = new Worker(new URL(`./writer-thread${extname(self)}`, import.meta.url), {
      workerData: data,
    });
    this.worker.on("message", (reply: WriterReply) => {
      written();
      const call = this.calls.get(reply.id);
      this.calls.delete(reply.id);
      if (reply.ok) call?.resolve(reply.value);
      else call?.reject(new Error(reply.message));
    });
    this.worker.on("error", (error) => this.fail(error));
    this.worker.on("exit", () => this.fail(new Error("the writer thread stopped")));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const call of this.calls.values()) call.reject(error);
    this.calls.clear();
  }

  call(request: WriterCall): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id });
    });
  }

  async close(): Promise<void> {
    if (!this.failure) await this.call({ op: "close" }).catch(() => undefined);
    await this.worker.terminate();
  }
}

/**
 * The embedded store's connections, shared by its aggregates: one read connection on this thread, and one
 * writer, on this thread (`inline`) or in a worker thread (`thread`). Every write is one of the writer's
 * operations, called by name through {@link write}, wherever the writer runs.
 */
export class SqliteConnection {
  readonly db: DatabaseSync;
  /** The writes handed to the writer and not yet answered, and the last commit (for readiness). */
  readonly writes = new WriteTracker();
  private readonly inline: SqliteWriter | undefined;
  private readonly thread: WriterThread | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private snapshotOpen = false;
  private snapshotOpenedAt = 0;
  private closed = false;
  private readonly beginRead;
  private readonly endRead;

  constructor(db: DatabaseSync, writer: SqliteWriter | WriterThreadData) {
    this.db = db;
    this.beginRead = db.prepare("BEGIN");
    this.endRead = db.prepare("COMMIT");
    if ("path" in writer) this.thread = new WriterThread(writer, () => this.endSnapshot());
    else this.inline = writer;
  }

  get threaded(): boolean {
    return this.thread !== undefined;
  }

  ensureOpen(): void {
    if (this.closed) throw new StorageError("the store is closed");
  }

  /** Runs one writer operation, wherever the writer is; a failure is a StorageError saying what failed. */
  async write<K extends WriterOperation>(
    action: string,
    op: K,
    ...args: WriterArguments<K>
  ): Promise<WriterResult<K>> {
    this.ensureOpen();
    if (this.inline) {
      try {
        this.endSnapshot();
        const operation = this.inline[op] as (...args: WriterArguments<K>) => WriterResult<K>;
        const result = operation.apply(this.inline, args);
        this.writes.committed();
        return result;
      } catch (error) {
        throw storageError(action, error);
      }
    }
    const id = this.writes.begin();
    try {
      const result = (await this.track((this.thread as WriterThread).call({ op, args }))) as WriterResult<K>;
      this.writes.end(id, true);
      return result;
    } catch (error) {
      this.writes.end(id, false);
      throw storageError(action, error);
    }
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    promise.then(
      () => this.inFlight.delete(promise),
      () => this.inFlight.delete(promise),
    );
    return promise;
  }

  /**
   * Runs a read in the current snapshot. Starting a read transaction costs SQLite a few system calls (WAL
   * locks, a file check), more than the read itself; so reads share one until the event loop's turn ends, a
   * write through this store completes, or it is a millisecond old (a snapshot opened late in one turn would
   * otherwise last into the next). A read therefore always sees this store's completed writes, and other
   * connections' writes at most a millisecond late.
   */
  read<T>(query: () => T): T {
    this.ensureOpen();
    return this.guarded("read from the store", () => {
      if (this.snapshotOpen && performance.now() - this.snapshotOpenedAt > MAX_SNAPSHOT_AGE_MS)
        this.endSnapshot();
      if (!this.snapshotOpen && !this.db.isTransaction) {
        this.beginRead.run();
        this.snapshotOpen = true;
        this.snapshotOpenedAt = performance.now();
        setImmediate(() => this.endSnapshot());
      }
      return query();
    });
  }

  endSnapshot(): void {
    if (!this.snapshotOpen) return;
    this.snapshotOpen = false;
    try {
      this.endRead.run();
    } catch {
      // Ending a read-only transaction fails only when the connection is gone: there is nothing to keep.
    }
  }

  private guarded<T>(action: string, work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw storageError(action, error);
    }
  }

  /** Waits for the writer's pending work, signs the head (with a signing key), then closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    this.endSnapshot();
    try {
      this.inline?.checkpoint();
    } catch {
      // Every entry is already durable; a head left unsigned now is signed at the next close or checkpoint.
    }
    await this.thread?.close();
    this.db.close();
  }
}
