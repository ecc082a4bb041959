import type { ChainCheckpoint, ChainKind, ChainLink, ChainPosition, Inconsistency } from "../domain/chain.ts";
import type { DecisionEvent, NewDecisionEvent, SequencedEvent } from "../domain/decision-event.ts";

/**
 * The event log and the audit chain over it. Events (labels, approvals' votes and transitions …) are
 * appended, never changed or removed; every stored decision and event is an entry of one hash chain
 * (src/domain/chain.ts), appended in the transaction that stores it.
 */
export interface AuditLog {
  /** Appends an event about a decision. */
  append(event: NewDecisionEvent): Promise<DecisionEvent>;
  /** A decision's events, in order. */
  events(decisionId: string): Promise<DecisionEvent[]>;
  /** The highest event sequence number so far (0 for none). */
  lastSeq(): Promise<number>;
  /** Events of these types after `seq`, in order, at most `limit`. */
  after(seq: number, types: readonly string[], limit: number): Promise<SequencedEvent[]>;
  /**
   * The chain, in order. Each link carries the entry's canonical bytes rebuilt from the row it names.
   * `visit` returns false to stop early.
   */
  readChain(visit: (link: ChainLink) => boolean): Promise<void>;
  /** Decisions and events that no chain entry covers (at most `limit`, default 100). */
  unchained(limit?: number): Promise<{ kind: ChainKind; id: string }[]>;
  /** The signed checkpoints of the chain's head after entry `afterSeq` (default: all), oldest first. */
  checkpoints(afterSeq?: number): Promise<ChainCheckpoint[]>;
  /**
   * Signs the chain's head now when entries were added since the last checkpoint and the store has a signing
   * key; the checkpoint made, or undefined when there was nothing to sign (or no key).
   */
  sign(): Promise<ChainCheckpoint | undefined>;
  /** Where a row is in the chain: its entry's position and hash, and the hash before it. */
  entryOf(kind: ChainKind, refId: string): Promise<ChainPosition | undefined>;
  /** The chain hashes of entries 1 to `upTo`, in order: the leaves of the log's Merkle tree. */
  hashes(upTo: number): Promise<string[]>;
  /**
   * Rows derived from what the chain covers that disagree with it (at most `limit`, default 100): decisions
   * whose indexed columns or reason codes differ from their chained record, approvals that are not the
   * version their log records, memory cases that are not their latest label.
   */
  inconsistencies(limit?: number): Promise<Inconsistency[]>;
}
