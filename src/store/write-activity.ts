import type { WriteActivity } from "./store.ts";

/**
 * What a store's writes are doing, kept by the store as it hands writes over and hears back: the writes still
 * waiting, oldest first, and when one last committed. Times are on the monotonic clock.
 */
export class WriteTracker {
  /** When each pending write was handed over, by id; a Map iterates oldest first. */
  private readonly pending = new Map<number, number>();
  private nextId = 0;
  private lastCommit: number | undefined;

  /** A write handed over; its id goes back to {@link end}. */
  begin(): number {
    const id = this.nextId++;
    this.pending.set(id, performance.now());
    return id;
  }

  /** The write is answered: committed, or failed. */
  end(id: number, committed: boolean): void {
    this.pending.delete(id);
    if (committed) this.lastCommit = performance.now();
  }

  /** A write that ran to its commit without waiting (a store writing on the calling thread). */
  committed(): void {
    this.lastCommit = performance.now();
  }

  /** Writes waiting elsewhere (a queue of the store's own) count as pending too. */
  activity(queued = 0): WriteActivity {
    const now = performance.now();
    const oldest = this.pending.values().next();
    return {
      pending: this.pending.size + queued,
      oldestPendingMs: oldest.done ? 0 : now - oldest.value,
      ...(this.lastCommit !== undefined ? { sinceLastCommitMs: now - this.lastCommit } : {}),
    };
  }
}
