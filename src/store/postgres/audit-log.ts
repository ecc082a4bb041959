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
import { insertEvents, type PostgresConnection } from "./connection.ts";
import { SCAN_PAGE } from "./decisions.ts";

export class PostgresAuditLog implements AuditLog {
  private readonly connection: PostgresConnection;

  constructor(connection: PostgresConnection) {
    this.connection = connection;
  }

  async append(event: NewDecisionEvent): Promise<DecisionEvent> {
    const row = eventRow(event);
    await this.connection.transaction("append the event", (client, head) =>
      insertEvents(client, head, [row]),
    );
    return storedEvent(row);
  }

  async events(decisionId: string): Promise<DecisionEvent[]> {
    const { rows } = await this.connection.query(
      "SELECT event_id, decision_id, type, created_at, data_json FROM decision_events WHERE decision_id = $1 ORDER BY seq",
      [decisionId],
    );
    return rows.map(eventOf);
  }

  async lastSeq(): Promise<number> {
    const { rows } = await this.connection.query("SELECT coalesce(max(seq), 0) AS seq FROM decision_events");
    return Number(rows[0]?.seq ?? 0);
  }

  // Events are inserted under the chain head's lock (see PostgresConnection.transaction), so their sequence
  // numbers commit in order: a reader never sees a number before a smaller one that is still to come.
  async after(seq: number, types: readonly string[], limit: number): Promise<SequencedEvent[]> {
    const { rows } = await this.connection.query(
      `SELECT seq, event_id, decision_id, type, created_at, data_json FROM decision_events
         WHERE seq > $1 AND type = ANY($2) ORDER BY seq LIMIT $3`,
      [seq, [...types], limit],
    );
    return rows.map(sequencedEventOf);
  }

  async readChain(visit: (link: ChainLink) => boolean): Promise<void> {
    let after = 0;
    for (;;) {
      const { rows } = await this.connection.query(
        `SELECT c.seq, c.kind, c.ref_id, c.hash, d.record_json, e.decision_id, e.type, e.created_at, e.data_json
           FROM audit_chain c
           LEFT JOIN decisions d ON c.kind = 'decision' AND d.decision_id = c.ref_id
           LEFT JOIN decision_events e ON c.kind = 'event' AND e.event_id = c.ref_id
           WHERE c.seq > $1 ORDER BY c.seq LIMIT ${SCAN_PAGE}`,
        [after],
      );
      for (const row of rows) {
        const link = chainLink(
          Number(row.seq),
          row.kind as ChainKind,
          String(row.ref_id),
          String(row.hash),
          row.record_json === null ? null : String(row.record_json),
          {
            decisionId: row.decision_id === null ? null : String(row.decision_id),
            type: row.type,
            createdAt: row.created_at,
            dataJson: row.data_json,
          },
        );
        if (!visit(link)) return;
      }
      if (rows.length < SCAN_PAGE) return;
      after = Number(rows.at(-1)?.seq);
    }
  }

  async unchained(limit = 100): Promise<{ kind: ChainKind; id: string }[]> {
    const { rows } = await this.connection.query(
      `SELECT 'decision' AS kind, decision_id AS id FROM decisions d
         WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = d.decision_id AND c.kind = 'decision')
       UNION ALL SELECT 'event', event_id FROM decision_events e
         WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = e.event_id AND c.kind = 'event')
       LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({ kind: row.kind as ChainKind, id: String(row.id) }));
  }

  async checkpoints(): Promise<ChainCheckpoint[]> {
    const { rows } = await this.connection.query(
      `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq`,
    );
    return rows.map(checkpointOf);
  }
}
