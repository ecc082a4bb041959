import { GLOBAL_TENANT } from "../../core/tenant.ts";
import type {
  ChainCheckpoint,
  ChainedRow,
  ChainKind,
  ChainLink,
  ChainPosition,
  Inconsistency,
} from "../../domain/chain.ts";
import type { DecisionEvent, NewDecisionEvent, SequencedEvent } from "../../domain/decision-event.ts";
import type { AuditLog } from "../audit-log.ts";
import { approvalsWithLog, MEMORY_CASES_WITH_LOG, UNCHAINED_ROWS } from "../queries.ts";
import {
  approvalInconsistency,
  CHECKPOINT_COLUMNS,
  chainedPolicyEventOf,
  chainedPolicyOf,
  chainLink,
  chainPosition,
  checkpointOf,
  eventOf,
  eventRow,
  memoryCaseInconsistency,
  sequencedEventOf,
  storedEvent,
} from "../rows.ts";
import { insertEvents, type PostgresConnection, SCAN_PAGE } from "./connection.ts";

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
        `SELECT c.seq, c.kind, c.ref_id, c.hash, d.record_json, e.decision_id, e.type, e.created_at, e.data_json,
             p.policy_hash, p.policy_id, p.policy_version, p.policy_text, p.created_at AS policy_created_at,
             r.seq AS event_seq, r.tenant_id, r.type AS event_type, r.policy_hash AS event_policy_hash,
             r.active_hash, r.detail_json, r.created_at AS event_created_at
           FROM audit_chain c
           LEFT JOIN decisions d ON c.kind = 'decision' AND d.decision_id = c.ref_id
           LEFT JOIN decision_events e ON c.kind = 'event' AND e.event_id = c.ref_id
           LEFT JOIN policy_snapshots p ON c.kind = 'policy' AND p.policy_hash = c.ref_id
           LEFT JOIN policy_events r ON c.kind = 'policy_event' AND CAST(r.seq AS TEXT) = c.ref_id
           WHERE c.seq > $1 ORDER BY c.seq LIMIT ${SCAN_PAGE}`,
        [after],
      );
      for (const row of rows) {
        const link = chainLink(
          Number(row.seq),
          row.kind as ChainKind,
          String(row.ref_id),
          String(row.hash),
          storedRow(row),
        );
        if (!visit(link)) return;
      }
      if (rows.length < SCAN_PAGE) return;
      after = Number(rows.at(-1)?.seq);
    }
  }

  async unchained(limit = 100): Promise<{ kind: ChainKind; id: string }[]> {
    const { rows } = await this.connection.query(`${UNCHAINED_ROWS} LIMIT $1`, [limit]);
    return rows.map((row) => ({ kind: row.kind as ChainKind, id: String(row.id) }));
  }

  async checkpoints(afterSeq = 0): Promise<ChainCheckpoint[]> {
    const { rows } = await this.connection.query(
      `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq > $1 ORDER BY seq`,
      [afterSeq],
    );
    return rows.map(checkpointOf);
  }

  sign(): Promise<ChainCheckpoint | undefined> {
    return this.connection.transaction("sign the chain's head", (client, head) =>
      this.connection.signHead(client, head),
    );
  }

  async entryOf(kind: ChainKind, refId: string): Promise<ChainPosition | undefined> {
    const { rows } = await this.connection.query(
      `SELECT c.seq, c.hash, (SELECT p.hash FROM audit_chain p WHERE p.seq = c.seq - 1) AS previous
         FROM audit_chain c WHERE c.ref_id = $1 AND c.kind = $2`,
      [refId, kind],
    );
    return rows[0] && chainPosition(rows[0]);
  }

  async hashes(upTo: number): Promise<string[]> {
    const hashes: string[] = [];
    while (hashes.length < upTo) {
      const { rows } = await this.connection.query(
        `SELECT hash FROM audit_chain WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT ${SCAN_PAGE}`,
        [hashes.length, upTo],
      );
      if (rows.length === 0) break;
      for (const row of rows) hashes.push(String(row.hash));
    }
    return hashes;
  }

  async inconsistencies(limit = 100): Promise<Inconsistency[]> {
    const strays = await this.connection.query(
      `SELECT decision_id, field FROM (${DECISION_COLUMNS_AGAINST_RECORD}) checked WHERE field IS NOT NULL LIMIT $1`,
      [limit],
    );
    const found: Inconsistency[] = strays.rows.map((row) => ({
      kind: "decision",
      id: String(row.decision_id),
      message: `decision ${row.decision_id}: its ${row.field} differs from its chained record`,
    }));
    for (const { sql, check } of [
      {
        sql: approvalsWithLog((column, key) => `(${column}::jsonb ->> '${key}')`),
        check: approvalInconsistency,
      },
      { sql: MEMORY_CASES_WITH_LOG, check: memoryCaseInconsistency },
    ]) {
      for (let offset = 0; found.length < limit; offset += SCAN_PAGE) {
        const { rows } = await this.connection.query(`${sql} ORDER BY 1 LIMIT ${SCAN_PAGE} OFFSET ${offset}`);
        for (const row of rows) {
          const inconsistency = check(row);
          if (inconsistency && found.length < limit) found.push(inconsistency);
        }
        if (rows.length < SCAN_PAGE) break;
      }
    }
    return found;
  }
}

/** The row a chain entry names, from the columns the walk joins (none when that row is gone). */
function storedRow(row: Record<string, unknown>): ChainedRow | undefined {
  if (row.record_json !== null) return { kind: "decision", recordJson: String(row.record_json) };
  if (row.decision_id !== null)
    return {
      kind: "event",
      event: {
        eventId: String(row.ref_id),
        decisionId: String(row.decision_id),
        type: String(row.type),
        createdAt: String(row.created_at),
        dataJson: String(row.data_json),
      },
    };
  if (row.policy_hash !== null)
    return { kind: "policy", policy: chainedPolicyOf({ ...row, created_at: row.policy_created_at }) };
  if (row.event_seq !== null)
    return {
      kind: "policy_event",
      policyEvent: chainedPolicyEventOf({
        seq: row.event_seq,
        tenant_id: row.tenant_id,
        type: row.event_type,
        policy_hash: row.event_policy_hash,
        active_hash: row.active_hash,
        detail_json: row.detail_json,
        created_at: row.event_created_at,
      }),
    };
  return undefined;
}

/**
 * Each decision with the first of its indexed columns (or its reason codes) that differs from its record's
 * JSON, as src/domain/decision-record.ts derives them (NULL when all agree).
 */
const DECISION_COLUMNS_AGAINST_RECORD = `
  SELECT d.decision_id, CASE
    WHEN d.created_at IS DISTINCT FROM r ->> 'created_at' THEN 'created_at'
    WHEN d.verdict IS DISTINCT FROM r ->> 'verdict' THEN 'verdict'
    WHEN d.policy_hash IS DISTINCT FROM r #>> '{policy,policy_hash}' THEN 'policy_hash'
    WHEN d.inputs_digest IS DISTINCT FROM r #>> '{determinism,inputs_digest}' THEN 'inputs_digest'
    WHEN d.action_type IS DISTINCT FROM r #>> '{request,action,type}' THEN 'action_type'
    WHEN d.subject_id IS DISTINCT FROM (CASE WHEN jsonb_typeof(r #> '{request,subject,id}') = 'string'
      THEN r #>> '{request,subject,id}' END) THEN 'subject_id'
    WHEN d.request_id IS DISTINCT FROM (CASE WHEN jsonb_typeof(r #> '{request,request_id}') = 'string'
      THEN r #>> '{request,request_id}' END) THEN 'request_id'
    WHEN d.tenant_id IS DISTINCT FROM coalesce(
      nullif(CASE WHEN jsonb_typeof(r #> '{request,tenant,tenant_id}') = 'string'
        THEN r #>> '{request,tenant,tenant_id}' END, ''),
      nullif(CASE WHEN jsonb_typeof(r #> '{request,subject,tenant_id}') = 'string'
        THEN r #>> '{request,subject,tenant_id}' END, ''),
      '${GLOBAL_TENANT}') THEN 'tenant_id'
    WHEN (SELECT coalesce(jsonb_agg(c.reason_code ORDER BY c.position), '[]'::jsonb) FROM decision_reason_codes c
        WHERE c.decision_id = d.decision_id) IS DISTINCT FROM r -> 'reason_codes' THEN 'reason_codes'
  END AS field
  FROM decisions d, LATERAL (SELECT d.record_json::jsonb AS r) parsed`;
