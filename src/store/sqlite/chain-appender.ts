import type { DatabaseSync, StatementSync } from "node:sqlite";
import { type ChainedRow, type ChainKind, chainEntry, chainHash, GENESIS_HASH } from "../../domain/chain.ts";
import { chainedPolicyEventOf, chainedPolicyOf } from "../rows.ts";

const STORED_ROW: Record<ChainKind, string> = {
  decision: "SELECT record_json FROM decisions WHERE decision_id = ?",
  event: "SELECT event_id, decision_id, type, created_at, data_json FROM decision_events WHERE event_id = ?",
  policy:
    "SELECT policy_hash, policy_id, policy_version, policy_text, created_at FROM policy_snapshots WHERE policy_hash = ?",
  policy_event:
    "SELECT seq, tenant_id, type, policy_hash, active_hash, detail_json, created_at FROM policy_events WHERE seq = ?",
};

/**
 * Appends to the audit chain inside the writer's transaction. The head is read when a transaction begins
 * (under the write lock), so writers in other processes and threads extend one chain.
 */
export class ChainAppender {
  private readonly readHead;
  private readonly insert;
  private readonly db: DatabaseSync;
  // Prepared at first use: a migration chains the kinds that exist at its step, before later tables do.
  private readonly rowStatements = new Map<ChainKind, StatementSync>();
  seq = 0;
  hash = GENESIS_HASH;

  constructor(db: DatabaseSync) {
    this.db = db;
    this.readHead = db.prepare("SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1");
    this.insert = db.prepare("INSERT INTO audit_chain (seq, kind, ref_id, hash) VALUES (?, ?, ?, ?)");
  }

  begin(): void {
    const head = this.readHead.get();
    this.seq = head ? Number(head.seq) : 0;
    this.hash = head ? String(head.hash) : GENESIS_HASH;
  }

  /** Chains a row already stored (rows written before their kind was chained), from its stored bytes. */
  append(kind: ChainKind, id: string): void {
    this.appendRow(id, this.storedRow(kind, id));
  }

  /** Chains a row written in this transaction, from the values written. */
  appendRow(id: string, row: ChainedRow): void {
    const seq = this.seq + 1;
    const hash = chainHash(this.hash, chainEntry(seq, row));
    this.insert.run(seq, row.kind, id, hash);
    this.seq = seq;
    this.hash = hash;
  }

  private storedRow(kind: ChainKind, id: string): ChainedRow {
    let statement = this.rowStatements.get(kind);
    if (!statement) {
      statement = this.db.prepare(STORED_ROW[kind]);
      this.rowStatements.set(kind, statement);
    }
    const row = statement.get(id) ?? {};
    switch (kind) {
      case "decision":
        return { kind, recordJson: String(row.record_json) };
      case "event":
        return {
          kind,
          event: {
            eventId: String(row.event_id),
            decisionId: String(row.decision_id),
            type: String(row.type),
            createdAt: String(row.created_at),
            dataJson: String(row.data_json),
          },
        };
      case "policy":
        return { kind, policy: chainedPolicyOf(row) };
      case "policy_event":
        return { kind, policyEvent: chainedPolicyEventOf(row) };
    }
  }
}
