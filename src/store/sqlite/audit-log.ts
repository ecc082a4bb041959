import type { ChainCheckpoint, ChainKind, ChainLink } from "../../domain/chain.ts";
import type { DecisionEvent, NewDecisionEvent, SequencedEvent } from "../../domain/decision-event.ts";
import type { AuditLog } from "../audit-log.ts";
import {
  CHECKPOINT_COLUMNS,
  chainLink,
  checkpointOf,
  eventOf,
  eventRow,
  sequencedEventOf,
  storedEvent,
} from "../rows.ts";
import type { SqliteConnection } from "./connection.ts";

export class SqliteAuditLog implements AuditLog {
  private readonly connection: SqliteConnection;
  private readonly statements;

  constructor(connection: SqliteConnection) {
    this.connection = connection;
    const db = connection.db;
    this.statements = {
      events: db.prepare(
        "SELECT event_id, decision_id, type, created_at, data_json FROM decision_events WHERE decision_id = ? ORDER BY seq",
      ),
      lastSeq: db.prepare("SELECT max(seq) AS seq FROM decision_events"),
      chain: db.prepare(
        // Scalar subqueries per kind read faster than outer joins here (one index probe a row, not two).
        `SELECT c.seq, c.kind, c.ref_id, c.hash,
           CASE c.kind WHEN 'decision' THEN (SELECT record_json FROM decisions WHERE decision_id = c.ref_id) END,
           CASE c.kind WHEN 'event' THEN (SELECT decision_id FROM decision_events WHERE event_id = c.ref_id) END,
           CASE c.kind WHEN 'event' THEN (SELECT type FROM decision_events WHERE event_id = c.ref_id) END,
           CASE c.kind WHEN 'event' THEN (SELECT created_at FROM decision_events WHERE event_id = c.ref_id) END,
           CASE c.kind WHEN 'event' THEN (SELECT data_json FROM decision_events WHERE event_id = c.ref_id) END
         FROM audit_chain c ORDER BY c.seq`,
      ),
      unchained: db.prepare(
        `SELECT 'decision' AS kind, decision_id AS id FROM decisions d
           WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = d.decision_id AND c.kind = 'decision')
         UNION ALL SELECT 'event', event_id FROM decision_events e
           WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = e.event_id AND c.kind = 'event')
         LIMIT ?`,
      ),
      checkpoints: db.prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq`),
    };
  }

  async append(event: NewDecisionEvent): Promise<DecisionEvent> {
    const row = eventRow(event);
    await this.connection.write("append the event", "appendEvent", row);
    return storedEvent(row);
  }

  async events(decisionId: string): Promise<DecisionEvent[]> {
    return this.connection.read(() => this.statements.events.all(decisionId)).map(eventOf);
  }

  async lastSeq(): Promise<number> {
    return Number(this.connection.read(() => this.statements.lastSeq.get())?.seq ?? 0);
  }

  async after(seq: number, types: readonly string[], limit: number): Promise<SequencedEvent[]> {
    if (types.length === 0) return [];
    const sql = `SELECT seq, event_id, decision_id, type, created_at, data_json FROM decision_events
      WHERE seq > ? AND type IN (${types.map(() => "?").join(", ")}) ORDER BY seq LIMIT ?`;
    const db = this.connection.db;
    return this.connection.read(() => db.prepare(sql).all(seq, ...types, limit)).map(sequencedEventOf);
  }

  async readChain(visit: (link: ChainLink) => boolean): Promise<void> {
    this.connection.read(() => {
      const statement = this.statements.chain;
      statement.setReturnArrays(true);
      type Row = [
        number,
        ChainKind,
        string,
        string,
        string | null,
        string | null,
        string | null,
        string | null,
        string | null,
      ];
      for (const row of statement.iterate() as unknown as Iterable<Row>) {
        const [seq, kind, refId, hash, recordJson, decisionId, type, createdAt, dataJson] = row;
        const link = chainLink(seq, kind, refId, hash, recordJson, { decisionId, type, createdAt, dataJson });
        if (!visit(link)) break;
      }
    });
  }

  async unchained(limit = 100): Promise<{ kind: ChainKind; id: string }[]> {
    const rows = this.connection.read(() => this.statements.unchained.all(limit));
    return rows.map((row) => ({ kind: row.kind as ChainKind, id: String(row.id) }));
  }

  async checkpoints(): Promise<ChainCheckpoint[]> {
    return this.connection.read(() => this.statements.checkpoints.all()).map(checkpointOf);
  }
}
