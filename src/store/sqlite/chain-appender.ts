import type { DatabaseSync } from "node:sqlite";
import { type ChainKind, chainHash, decisionEntry, eventEntry, GENESIS_HASH } from "../../domain/chain.ts";

/**
 * Appends to the audit chain inside the writer's transaction. The head is read when a transaction begins
 * (under the write lock), so writers in other processes and threads extend one chain.
 */
export class ChainAppender {
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
