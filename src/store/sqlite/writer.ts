import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { timestamp } from "../../core/ids.ts";
import {
  type ChainCheckpoint,
  type ChainKind,
  chainHash,
  DEFAULT_CHECKPOINT_EVERY,
  decisionEntry,
  eventEntry,
  GENESIS_HASH,
  type SigningKey,
  signCheckpoint,
  signingKeyFromPem,
} from "../../domain/chain.ts";
import type { ApprovalRow, DecisionRow, EventRow } from "../rows.ts";
import { MIGRATIONS } from "./schema.ts";

/**
 * Everything that writes to the embedded store, on one connection. It runs on the main thread (`inline`) or
 * in a worker thread (`thread`, see writer-thread.ts); either way there is one writer per store, so the
 * idempotency check and the insert of a batch happen in one transaction.
 */

export type { ApprovalRow, DecisionRow, EventRow };

/** A change to webhooks, as the writer applies it (plain data, to cross to a worker thread). */
export type WebhookWrite =
  | {
      readonly kind: "put";
      readonly webhookId: string;
      readonly url: string;
      readonly secret: string;
      readonly name: string;
      readonly createdAt: string;
      readonly cursorSeq: number;
    }
  | { readonly kind: "delete"; readonly webhookId: string }
  | {
      readonly kind: "claim";
      readonly webhookId: string;
      readonly holder: string;
      readonly until: string;
      readonly now: string;
    }
  | {
      readonly kind: "record";
      readonly webhookId: string;
      readonly eventId: string;
      readonly attempt: number;
      readonly outcome: string;
      readonly httpStatus: number | null;
      readonly error: string | null;
      readonly at: string;
      readonly cursorSeq: number;
      readonly attempts: number;
      readonly nextAttemptAt: string | null;
    };

export type RowOutcome =
  | { readonly status: "stored" }
  | { readonly status: "duplicate"; readonly json: string }
  | { readonly status: "conflict"; readonly existingDecisionId: string }
  /** This row could not be written (and nothing of it was); the rest of the batch is unaffected. */
  | { readonly status: "failed"; readonly message: string };

export interface PolicyRow {
  readonly policyHash: string;
  readonly policyId: string;
  readonly policyVersion: string;
  readonly text: string;
  readonly createdAt: string;
}

export interface LabelRow {
  readonly event: EventRow;
  readonly tenantId: string;
  readonly actionType: string;
  readonly label: string;
  readonly summary: string;
  readonly severity: number | null;
  readonly projection: string;
  readonly fingerprint: Uint8Array;
}

/** An API key as the writer stores it (scopes and roles already JSON). */
export interface ApiKeyRow {
  readonly keyId: string;
  readonly keyHash: string;
  readonly name: string;
  readonly scopesJson: string;
  readonly tenantId: string | null;
  readonly rolesJson: string;
  readonly rateLimitPerSecond: number | null;
  readonly createdAt: string;
}

/** Opens (creating when missing) the database file with Lumyn's settings and applies pending migrations. */
export function openDatabase(path: string, busyTimeoutMs: number): DatabaseSync {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs });
  try {
    // wal_autocheckpoint stays at SQLite's default (~4 MB of WAL): the commit that crosses it runs the
    // checkpoint, and every decision waiting on that commit waits for it too. At ~40 MB, throughput was the
    // same within noise but each checkpoint held the writer for tens of ms (p99 of scenario 6: 40 ms at 4 MB,
    // 70–100 ms at 40 MB; of HTTP decide: 19–25 ms against 35–43 ms).
    // mmap_size: pages are read from a memory map rather than copied in by a system call each, which speeds up
    // reads of whole history (verify, backtest) by about a quarter.
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

/**
 * Appends to the audit chain inside the writer's transaction. The head is read when a transaction begins
 * (under the write lock), so writers in other processes and threads extend one chain.
 */
class ChainAppender {
  private readonly readHead;
  private readonly insert;
  private readonly recordJson;
  private readonly eventRow;
  seq = 0;
  hash = GENESIS_HASH;

  constructor(db: DatabaseSync) {
    this.readHead = db.prepare("SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1");
    this.insert = db.prepare("INSERT INTO audit_chain (seq, kind, ref_id, hash) VALUES (?, ?, ?, ?)");
    this.recordJson = db.prepare("SELECT record_json FROM decisions WHERE decision_id = ?");
    this.eventRow = db.prepare(
      "SELECT event_id, decision_id, type, created_at, data_json FROM decision_events WHERE event_id = ?",
    );
  }

  begin(): void {
    const head = this.readHead.get();
    this.seq = head ? Number(head.seq) : 0;
    this.hash = head ? String(head.hash) : GENESIS_HASH;
  }

  /** Chains a row already written in this transaction, from its stored bytes. */
  append(kind: ChainKind, id: string): void {
    const seq = this.seq + 1;
    let entry: string;
    if (kind === "decision") entry = decisionEntry(seq, String(this.recordJson.get(id)?.record_json));
    else {
      const row = this.eventRow.get(id);
      entry = eventEntry(seq, {
        eventId: String(row?.event_id),
        decisionId: String(row?.decision_id),
        type: String(row?.type),
        createdAt: String(row?.created_at),
        dataJson: String(row?.data_json),
      });
    }
    this.appendEntry(kind, id, entry);
  }

  appendEntry(kind: ChainKind, id: string, entry: string): void {
    const seq = this.seq + 1;
    const hash = chainHash(this.hash, entry);
    this.insert.run(seq, kind, id, hash);
    this.seq = seq;
    this.hash = hash;
  }
}

export interface ChainOptions {
  /** Ed25519 private key (PKCS#8 PEM): when given, the chain's head is signed (see {@link DEFAULT_CHECKPOINT_EVERY}). */
  readonly signingKeyPem?: string;
  /** Sign the head each time the chain crosses a multiple of this many entries. */
  readonly checkpointEvery?: number;
}

export class SqliteWriter {
  private readonly db: DatabaseSync;
  private readonly findRequest;
  private readonly insertDecision;
  private readonly insertReason;
  private readonly getJson;
  private readonly insertPolicy;
  private readonly insertEvent;
  private readonly decisionExists;
  private readonly upsertCase;
  private readonly chain: ChainAppender;
  private readonly signingKey: SigningKey | undefined;
  private readonly checkpointEvery: number;
  private readonly lastCheckpoint;
  private readonly insertCheckpoint;

  private readonly insertApproval;
  private readonly nextApproval;
  private readonly webhookStatements;
  private readonly insertApiKey;
  private readonly revokeKey;
  private readonly apiKeyExists;

  constructor(db: DatabaseSync, options: ChainOptions = {}) {
    this.db = db;
    this.chain = new ChainAppender(db);
    this.signingKey = options.signingKeyPem ? signingKeyFromPem(options.signingKeyPem) : undefined;
    this.checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.lastCheckpoint = db.prepare("SELECT max(seq) AS seq FROM audit_checkpoints");
    this.insertCheckpoint = db.prepare(
      `INSERT INTO audit_checkpoints (seq, head_hash, key_id, signature, signed_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (seq) DO NOTHING`,
    );
    this.findRequest = db.prepare(
      "SELECT decision_id, inputs_digest FROM decisions WHERE tenant_id = ? AND request_id = ?",
    );
    this.insertDecision = db.prepare(
      `INSERT INTO decisions (decision_id, created_at, tenant_id, subject_id, action_type, verdict, policy_hash,
         inputs_digest, request_id, record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertReason = db.prepare(
      "INSERT INTO decision_reason_codes (decision_id, position, reason_code) VALUES (?, ?, ?)",
    );
    this.getJson = db.prepare("SELECT record_json FROM decisions WHERE decision_id = ?");
    this.insertPolicy = db.prepare(
      `INSERT INTO policy_snapshots (policy_hash, policy_id, policy_version, policy_text, created_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (policy_hash) DO NOTHING`,
    );
    this.decisionExists = db.prepare("SELECT 1 AS found FROM decisions WHERE decision_id = ?");
    this.upsertCase = db.prepare(
      `INSERT INTO memory_cases (decision_id, tenant_id, action_type, label, summary, severity, projection, fingerprint, labelled_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (decision_id) DO UPDATE SET label = excluded.label, summary = excluded.summary, severity = excluded.severity,
           projection = excluded.projection, fingerprint = excluded.fingerprint, labelled_at = excluded.labelled_at`,
    );
    this.insertEvent = db.prepare(
      "INSERT INTO decision_events (event_id, decision_id, type, created_at, data_json) VALUES (?, ?, ?, ?, ?)",
    );
    this.insertApproval = db.prepare(
      `INSERT INTO approvals (approval_id, decision_id, tenant_id, state, version, deadline, created_at, updated_at,
         approval_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.nextApproval = db.prepare(
      `UPDATE approvals SET state = ?, version = ?, deadline = ?, updated_at = ?, approval_json = ?
         WHERE approval_id = ? AND version = ?`,
    );
    this.webhookStatements = {
      put: db.prepare(
        `INSERT INTO webhooks (webhook_id, url, secret, name, created_at, cursor_seq, attempts) VALUES (?, ?, ?, ?, ?, ?, 0)`,
      ),
      delete: db.prepare("DELETE FROM webhooks WHERE webhook_id = ?"),
      claim: db.prepare(
        `UPDATE webhooks SET lease_holder = ?, lease_until = ?
           WHERE webhook_id = ? AND (lease_until IS NULL OR lease_until <= ? OR lease_holder = ?)`,
      ),
      log: db.prepare(
        `INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, outcome, http_status, error, at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      progress: db.prepare(
        "UPDATE webhooks SET cursor_seq = ?, attempts = ?, next_attempt_at = ? WHERE webhook_id = ?",
      ),
    };
    this.insertApiKey = db.prepare(
      `INSERT INTO api_keys (key_id, key_hash, name, scopes_json, tenant_id, roles_json, rate_limit_per_second, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.revokeKey = db.prepare("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL");
    this.apiKeyExists = db.prepare("SELECT 1 AS found FROM api_keys WHERE key_id = ?");
  }

  /**
   * Writes a batch in one transaction (one fsync). When a row fails, the batch is written again with a
   * savepoint per row, so that row fails alone; when the transaction itself fails (lock, disk) nothing is
   * kept and it throws.
   */
  writeDecisions(rows: readonly DecisionRow[]): RowOutcome[] {
    try {
      return this.transaction(() => rows.map((row) => this.writeDecision(row)));
    } catch {
      return this.writeDecisionsOneByOne(rows);
    }
  }

  private writeDecisionsOneByOne(rows: readonly DecisionRow[]): RowOutcome[] {
    return this.transaction(() =>
      rows.map((row) => {
        this.db.exec("SAVEPOINT decision_row");
        const head = { seq: this.chain.seq, hash: this.chain.hash };
        try {
          const outcome = this.writeDecision(row);
          this.db.exec("RELEASE decision_row");
          return outcome;
        } catch (error) {
          this.db.exec("ROLLBACK TO decision_row; RELEASE decision_row");
          this.chain.seq = head.seq;
          this.chain.hash = head.hash;
          return { status: "failed", message: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
  }

  private writeDecision(row: DecisionRow): RowOutcome {
    if (row.requestId !== null) {
      const existing = this.findRequest.get(row.tenantId, row.requestId);
      if (existing) {
        const existingId = String(existing.decision_id);
        if (existing.inputs_digest !== row.inputsDigest)
          return { status: "conflict", existingDecisionId: existingId };
        return { status: "duplicate", json: String(this.getJson.get(existingId)?.record_json) };
      }
    }
    this.insertDecision.run(
      row.decisionId,
      row.createdAt,
      row.tenantId,
      row.subjectId,
      row.actionType,
      row.verdict,
      row.policyHash,
      row.inputsDigest,
      row.requestId,
      row.json,
    );
    for (let position = 0; position < row.reasonCodes.length; position++) {
      this.insertReason.run(row.decisionId, position, row.reasonCodes[position] as string);
    }
    this.chain.appendEntry("decision", row.decisionId, decisionEntry(this.chain.seq + 1, row.json));
    const approval = row.approval;
    if (approval) {
      this.insertApproval.run(
        approval.approvalId,
        approval.decisionId,
        approval.tenantId,
        approval.state,
        approval.version,
        approval.deadline,
        approval.createdAt,
        approval.updatedAt,
        approval.json,
      );
      for (const event of approval.events) this.insertEventRow(event);
    }
    return { status: "stored" };
  }

  /** Writes the next version of an approval over `expectedVersion`, with its events; false when stale. */
  updateApproval(row: ApprovalRow, expectedVersion: number): boolean {
    return this.transaction(() => {
      const { changes } = this.nextApproval.run(
        row.state,
        row.version,
        row.deadline,
        row.updatedAt,
        row.json,
        row.approvalId,
        expectedVersion,
      );
      if (Number(changes) !== 1) return false;
      for (const event of row.events) this.insertEventRow(event);
      return true;
    });
  }

  putPolicy(row: PolicyRow): void {
    this.insertPolicy.run(row.policyHash, row.policyId, row.policyVersion, row.text, row.createdAt);
  }

  /** The label event and the decision's memory case, together; false when there is no such decision. */
  putLabel(row: LabelRow): boolean {
    return this.transaction(() => {
      if (!this.decisionExists.get(row.event.decisionId)) return false;
      this.insertEventRow(row.event);
      const { event } = row;
      this.upsertCase.run(
        event.decisionId,
        row.tenantId,
        row.actionType,
        row.label,
        row.summary,
        row.severity,
        row.projection,
        row.fingerprint,
        event.createdAt,
      );
      return true;
    });
  }

  appendEvent(row: EventRow): void {
    this.transaction(() => this.insertEventRow(row));
  }

  private insertEventRow(row: EventRow): void {
    this.insertEvent.run(row.eventId, row.decisionId, row.type, row.createdAt, row.dataJson);
    this.chain.appendEntry("event", row.eventId, eventEntry(this.chain.seq + 1, row));
  }

  /** Applies a webhook change; true when it changed a row (a claim that was refused changes none). */
  writeWebhook(change: WebhookWrite): boolean {
    const statements = this.webhookStatements;
    switch (change.kind) {
      case "put":
        statements.put.run(
          change.webhookId,
          change.url,
          change.secret,
          change.name,
          change.createdAt,
          change.cursorSeq,
        );
        return true;
      case "delete":
        return Number(statements.delete.run(change.webhookId).changes) === 1;
      case "claim":
        return (
          Number(
            statements.claim.run(change.holder, change.until, change.webhookId, change.now, change.holder)
              .changes,
          ) === 1
        );
      case "record":
        return this.transaction(() => {
          statements.log.run(
            change.webhookId,
            change.eventId,
            change.attempt,
            change.outcome,
            change.httpStatus,
            change.error,
            change.at,
          );
          statements.progress.run(change.cursorSeq, change.attempts, change.nextAttemptAt, change.webhookId);
          return true;
        });
    }
  }

  /** Signs the chain's head when entries were added since the last checkpoint (a store does on close). */
  checkpoint(): ChainCheckpoint | undefined {
    if (!this.signingKey) return undefined;
    return this.transaction(() => this.signHead());
  }

  private signHead(): ChainCheckpoint | undefined {
    const key = this.signingKey;
    const last = Number(this.lastCheckpoint.get()?.seq ?? 0);
    if (!key || this.chain.seq <= last) return undefined;
    const checkpoint = signCheckpoint(key, this.chain.seq, this.chain.hash, timestamp(new Date()));
    this.insertCheckpoint.run(
      checkpoint.seq,
      checkpoint.headHash,
      checkpoint.keyId,
      checkpoint.signature,
      checkpoint.signedAt,
    );
    return checkpoint;
  }

  putApiKey(row: ApiKeyRow): void {
    this.insertApiKey.run(
      row.keyId,
      row.keyHash,
      row.name,
      row.scopesJson,
      row.tenantId,
      row.rolesJson,
      row.rateLimitPerSecond,
      row.createdAt,
    );
  }

  /** True when the key exists (revoked now or before). */
  revokeApiKey(keyId: string, revokedAt: string): boolean {
    this.revokeKey.run(revokedAt, keyId);
    return this.apiKeyExists.get(keyId) !== undefined;
  }

  private transaction<T>(work: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      this.chain.begin();
      const start = this.chain.seq;
      const result = work();
      const every = this.checkpointEvery;
      if (Math.floor(this.chain.seq / every) > Math.floor(start / every)) this.signHead();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      try {
        this.db.exec("ROLLBACK");
      } catch {
        // The transaction may already be gone (e.g. SQLITE_FULL rolls back by itself); nothing more to undo.
      }
      throw error;
    }
  }
}
