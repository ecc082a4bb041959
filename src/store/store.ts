import type { ApiKeyStore } from "./api-keys.ts";
import type { ApprovalStore } from "./approvals.ts";
import type { AuditLog } from "./audit-log.ts";
import type { DecisionStore } from "./decisions.ts";
import type { MemoryCaseStore } from "./memory-cases.ts";
import type { PolicyRegistryStore } from "./policy-registry.ts";
import type { VelocityStore } from "./velocity.ts";
import type { WebhookStore } from "./webhooks.ts";

/**
 * Where everything Lumyn keeps lives: one small interface per aggregate, each with its own conformance suite
 * (src/store/conformance/) that every backend runs. Asynchronous from the start: the PostgreSQL backend is
 * network I/O, and the embedded backend batches concurrent writes into one transaction (group commit).
 */
export interface Store {
  readonly decisions: DecisionStore;
  readonly log: AuditLog;
  readonly memory: MemoryCaseStore;
  readonly approvals: ApprovalStore;
  readonly apiKeys: ApiKeyStore;
  readonly webhooks: WebhookStore;
  readonly policies: PolicyRegistryStore;
  readonly velocity: VelocityStore;
  /** Store reachable and writable enough to answer (for readiness checks). */
  ping(): Promise<void>;
  /**
   * What this store's writes are doing (for readiness checks): a store that answers reads may still have
   * writes stuck behind a lock or a dead connection, which only their age shows.
   */
  writeActivity(): WriteActivity;
  /** Writes what is queued, signs the chain's head (with a signing key), then closes. */
  close(): Promise<void>;
}

/** Writes this store object has been handed and not yet answered, and its last commit. */
export interface WriteActivity {
  /** Writes handed to the store (queued or in a transaction) and not yet committed or failed. */
  readonly pending: number;
  /** How long the oldest write in a transaction has waited, in ms (0 when none has). */
  readonly oldestPendingMs: number;
  /** How long ago this store last committed a write, in ms; absent before its first. */
  readonly sinceLastCommitMs?: number;
}

/** How a store signs its audit chain's head (both backends take these options). */
export interface ChainOptions {
  /** Ed25519 private key (PKCS#8 PEM): when given, the chain's head is signed (see DEFAULT_CHECKPOINT_EVERY). */
  readonly signingKeyPem?: string;
  /** Sign the head each time the chain crosses a multiple of this many entries. */
  readonly checkpointEvery?: number;
}
