import type { DatabaseSync } from "node:sqlite";
import { timestamp } from "../../core/ids.ts";
import {
  type ChainCheckpoint,
  type ChainedPolicy,
  DEFAULT_CHECKPOINT_EVERY,
  type SigningKey,
  signCheckpoint,
  signingKeyFromPem,
} from "../../domain/chain.ts";
import type { NewPolicyEvent } from "../../domain/policy-registry.ts";
import type { Webhook } from "../../domain/webhook.ts";
import {
  type ApiKeyRow,
  type ApprovalRow,
  type DecisionRow,
  type DeliveryRow,
  type EventRow,
  frontierOf,
  type LabelRow,
  type PolicyEventRow,
  policyEventRow,
} from "../rows.ts";
import type { ChainOptions } from "../store.ts";
import { ChainAppender } from "./chain-appender.ts";

/**
 * Everything that writes to the embedded store, on one connection. It runs on the main thread (`inline`) or
 * in a worker thread (`thread`, see writer-thread.ts); either way there is one writer per store, so the
 * idempotency check and the insert of a batch happen in one transaction.
 *
 * Each public method is one write operation, and its name and arguments are the writer thread's protocol
 * ({@link WriterOperation}): a new write is a new method here, nothing else. Arguments and results are plain
 * data, since they cross to the worker thread.
 */

export type RowOutcome =
  | { readonly status: "stored" }
  | { readonly status: "duplicate"; readonly json: string }
  | { readonly status: "conflict"; readonly existingDecisionId: string }
  /** This row could not be written (and nothing of it was); the rest of the batch is unaffected. */
  | { readonly status: "failed"; readonly message: string };

export class SqliteWriter {
  private readonly db: DatabaseSync;
  private readonly chain: ChainAppender;
  private readonly signingKey: SigningKey | undefined;
  private readonly checkpointEvery: number;
  private readonly statements;

  constructor(db: DatabaseSync, options: ChainOptions = {}) {
    this.db = db;
    this.chain = new ChainAppender(db);
    this.signingKey = options.signingKeyPem ? signingKeyFromPem(options.signingKeyPem) : undefined;
    this.checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.statements = prepareStatements(db);
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

  /** Writes the next version of an approval over `expectedVersion`, with its events; false when stale. */
  updateApproval(row: ApprovalRow, expectedVersion: number): boolean {
    return this.transaction(() => {
      const { changes } = this.statements.nextApproval.run(
        row.state,
        row.version,
        row.deadline,
        row.updatedAt,
        row.json,
        row.approvalId,
        expectedVersion,
      );
      if (Number(changes) !== 1) return false;
      for (const event of row.events) this.insertEvent(event);
      return true;
    });
  }

  /** Keeps a policy's text by hash, once: the first time, it becomes an entry of the audit chain too. */
  putPolicy(row: ChainedPolicy): void {
    this.transaction(() => {
      const { changes } = this.statements.insertPolicy.run(
        row.policyHash,
        row.policyId,
        row.policyVersion,
        row.text,
        row.createdAt,
      );
      if (Number(changes) === 1) this.chain.appendRow(row.policyHash, { kind: "policy", policy: row });
    });
  }

  /** The label event and the decision's memory case, together; false when there is no such decision. */
  putLabel(row: LabelRow): boolean {
    return this.transaction(() => {
      if (!this.statements.decisionExists.get(row.event.decisionId)) return false;
      this.insertEvent(row.event);
      this.statements.upsertCase.run(
        row.event.decisionId,
        row.tenantId,
        row.actionType,
        row.label,
        row.summary,
        row.severity,
        row.projection,
        row.fingerprint,
        row.event.createdAt,
      );
      return true;
    });
  }

  appendEvent(row: EventRow): void {
    this.transaction(() => this.insertEvent(row));
  }

  putWebhook(webhook: Webhook): void {
    const { webhookId, url, secret, name, createdAt, cursorSeq } = webhook;
    this.statements.putWebhook.run(webhookId, url, secret, name, createdAt, cursorSeq);
  }

  /** False when there is no such webhook. */
  deleteWebhook(webhookId: string): boolean {
    return Number(this.statements.deleteWebhook.run(webhookId).changes) === 1;
  }

  /** Takes the delivery lease when it is free, expired or already this holder's; false when refused. */
  claimWebhook(webhookId: string, holder: string, until: string, now: string): boolean {
    return Number(this.statements.claimWebhook.run(holder, until, webhookId, now, holder).changes) === 1;
  }

  recordDelivery(row: DeliveryRow): void {
    this.transaction(() => {
      this.statements.logDelivery.run(
        row.webhookId,
        row.eventId,
        row.attempt,
        row.outcome,
        row.httpStatus,
        row.error,
        row.at,
      );
      this.statements.webhookProgress.run(row.cursorSeq, row.attempts, row.nextAttemptAt, row.webhookId);
    });
  }

  putApiKey(row: ApiKeyRow): void {
    this.statements.insertApiKey.run(
      row.keyId,
      row.keyHash,
      row.name,
      row.principal,
      row.scopesJson,
      row.tenantId,
      row.rolesJson,
      row.rateLimitPerSecond,
      row.createdAt,
    );
  }

  /** True when the key exists (revoked now or before). */
  revokeApiKey(keyId: string, revokedAt: string): boolean {
    this.statements.revokeApiKey.run(revokedAt, keyId);
    return this.statements.apiKeyExists.get(keyId) !== undefined;
  }

  /**
   * Appends to a tenant's registry history, reading the tenant's active version under the write lock so that
   * the read and the append are one step against every other writer of the file (the registry's
   * compare-and-set, {@link policyEventRow}). Undefined, and nothing written, when the compare-and-set fails.
   */
  appendPolicyEvent(
    event: NewPolicyEvent,
  ): { readonly seq: number; readonly row: PolicyEventRow } | undefined {
    return this.transaction(() => {
      const latest = this.statements.activePolicy.get(event.tenantId);
      const row = policyEventRow(event, latest === undefined ? null : (latest.active_hash as string | null));
      if (!row) return undefined;
      const { lastInsertRowid } = this.statements.insertPolicyEvent.run(
        row.tenantId,
        row.type,
        row.policyHash,
        row.activeHash,
        row.detailJson,
        row.createdAt,
      );
      const seq = Number(lastInsertRowid);
      this.chain.appendRow(String(seq), { kind: "policy_event", policyEvent: { ...row, seq } });
      return { seq, row };
    });
  }

  /** Signs the chain's head when entries were added since the last checkpoint (a store does on close). */
  checkpoint(): ChainCheckpoint | undefined {
    if (!this.signingKey) return undefined;
    return this.transaction(() => this.signHead());
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
    const statements = this.statements;
    if (row.requestId !== null) {
      const existing = statements.findRequest.get(row.tenantId, row.requestId);
      if (existing) {
        const existingId = String(existing.decision_id);
        if (existing.inputs_digest !== row.inputsDigest)
          return { status: "conflict", existingDecisionId: existingId };
        return { status: "duplicate", json: String(statements.recordJson.get(existingId)?.record_json) };
      }
    }
    statements.insertDecision.run(
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
      statements.insertReason.run(row.decisionId, position, row.reasonCodes[position] as string);
    }
    this.chain.appendRow(row.decisionId, { kind: "decision", recordJson: row.json });
    const approval = row.approval;
    if (approval) {
      statements.insertApproval.run(
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
      for (const event of approval.events) this.insertEvent(event);
    }
    return { status: "stored" };
  }

  private insertEvent(row: EventRow): void {
    this.statements.insertEvent.run(row.eventId, row.decisionId, row.type, row.createdAt, row.dataJson);
    this.chain.appendRow(row.eventId, { kind: "event", event: row });
  }

  private signHead(): ChainCheckpoint | undefined {
    const key = this.signingKey;
    const last = this.statements.lastCheckpoint.get();
    if (!key || this.chain.seq <= Number(last?.seq ?? 0)) return undefined;
    // The tree grows from the last checkpoint's frontier: only the entries since are read.
    const frontier = frontierOf(last?.frontier_json);
    const leaves = this.statements.chainHashes.iterate(frontier.size, this.chain.seq);
    for (const row of leaves) frontier.append(String(row.hash));
    const checkpoint = signCheckpoint(
      key,
      this.chain.seq,
      this.chain.hash,
      frontier.root(),
      timestamp(new Date()),
    );
    this.statements.insertCheckpoint.run(
      checkpoint.seq,
      checkpoint.headHash,
      checkpoint.treeRoot ?? null,
      JSON.stringify(frontier.state()),
      checkpoint.keyId,
      checkpoint.signature,
      checkpoint.signedAt,
    );
    return checkpoint;
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

/** The writer's operations: its public methods, called by name with their arguments (see writer-thread.ts). */
export type WriterOperation = {
  [K in keyof SqliteWriter]: SqliteWriter[K] extends (...args: never[]) => unknown ? K : never;
}[keyof SqliteWriter];

export type WriterArguments<K extends WriterOperation> = Parameters<SqliteWriter[K]>;
export type WriterResult<K extends WriterOperation> = ReturnType<SqliteWriter[K]>;

function prepareStatements(db: DatabaseSync) {
  return {
    lastCheckpoint: db.prepare("SELECT seq, frontier_json FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"),
    chainHashes: db.prepare("SELECT hash FROM audit_chain WHERE seq > ? AND seq <= ? ORDER BY seq"),
    insertCheckpoint: db.prepare(
      `INSERT INTO audit_checkpoints (seq, head_hash, tree_root, frontier_json, key_id, signature, signed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING`,
    ),
    findRequest: db.prepare(
      "SELECT decision_id, inputs_digest FROM decisions WHERE tenant_id = ? AND request_id = ?",
    ),
    insertDecision: db.prepare(
      `INSERT INTO decisions (decision_id, created_at, tenant_id, subject_id, action_type, verdict, policy_hash,
         inputs_digest, request_id, record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertReason: db.prepare(
      "INSERT INTO decision_reason_codes (decision_id, position, reason_code) VALUES (?, ?, ?)",
    ),
    recordJson: db.prepare("SELECT record_json FROM decisions WHERE decision_id = ?"),
    insertPolicy: db.prepare(
      `INSERT INTO policy_snapshots (policy_hash, policy_id, policy_version, policy_text, created_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (policy_hash) DO NOTHING`,
    ),
    decisionExists: db.prepare("SELECT 1 AS found FROM decisions WHERE decision_id = ?"),
    upsertCase: db.prepare(
      `INSERT INTO memory_cases (decision_id, tenant_id, action_type, label, summary, severity, projection, fingerprint, labelled_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (decision_id) DO UPDATE SET label = excluded.label, summary = excluded.summary, severity = excluded.severity,
           projection = excluded.projection, fingerprint = excluded.fingerprint, labelled_at = excluded.labelled_at`,
    ),
    insertEvent: db.prepare(
      "INSERT INTO decision_events (event_id, decision_id, type, created_at, data_json) VALUES (?, ?, ?, ?, ?)",
    ),
    insertApproval: db.prepare(
      `INSERT INTO approvals (approval_id, decision_id, tenant_id, state, version, deadline, created_at, updated_at,
         approval_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    nextApproval: db.prepare(
      `UPDATE approvals SET state = ?, version = ?, deadline = ?, updated_at = ?, approval_json = ?
         WHERE approval_id = ? AND version = ?`,
    ),
    putWebhook: db.prepare(
      `INSERT INTO webhooks (webhook_id, url, secret, name, created_at, cursor_seq, attempts) VALUES (?, ?, ?, ?, ?, ?, 0)`,
    ),
    deleteWebhook: db.prepare("DELETE FROM webhooks WHERE webhook_id = ?"),
    claimWebhook: db.prepare(
      `UPDATE webhooks SET lease_holder = ?, lease_until = ?
         WHERE webhook_id = ? AND (lease_until IS NULL OR lease_until <= ? OR lease_holder = ?)`,
    ),
    logDelivery: db.prepare(
      `INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, outcome, http_status, error, at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    webhookProgress: db.prepare(
      "UPDATE webhooks SET cursor_seq = ?, attempts = ?, next_attempt_at = ? WHERE webhook_id = ?",
    ),
    insertApiKey: db.prepare(
      `INSERT INTO api_keys (key_id, key_hash, name, principal, scopes_json, tenant_id, roles_json, rate_limit_per_second, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    revokeApiKey: db.prepare("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"),
    apiKeyExists: db.prepare("SELECT 1 AS found FROM api_keys WHERE key_id = ?"),
    activePolicy: db.prepare(
      "SELECT active_hash FROM policy_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1",
    ),
    insertPolicyEvent: db.prepare(
      "INSERT INTO policy_events (tenant_id, type, policy_hash, active_hash, detail_json, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    ),
  };
}
