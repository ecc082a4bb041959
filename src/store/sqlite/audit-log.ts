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
           CASE c.kind WHEN 'event' THEN (SELECT data_json FROM decision_events WHERE event_id = c.ref_id) END,
           CASE c.kind WHEN 'policy' THEN (SELECT json_object('policy_hash', policy_hash, 'policy_id', policy_id,
             'policy_version', policy_version, 'policy_text', policy_text, 'created_at', created_at)
             FROM policy_snapshots WHERE policy_hash = c.ref_id) END,
           CASE c.kind WHEN 'policy_event' THEN (SELECT json_object('seq', seq, 'tenant_id', tenant_id, 'type', type,
             'policy_hash', policy_hash, 'active_hash', active_hash, 'detail_json', detail_json, 'created_at', created_at)
             FROM policy_events WHERE seq = CAST(c.ref_id AS INTEGER)) END
         FROM audit_chain c ORDER BY c.seq`,
      ),
      unchained: db.prepare(`${UNCHAINED_ROWS} LIMIT ?`),
      checkpoints: db.prepare(
        `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq > ? ORDER BY seq`,
      ),
      entryOf: db.prepare(
        `SELECT c.seq, c.hash, (SELECT p.hash FROM audit_chain p WHERE p.seq = c.seq - 1) AS previous
           FROM audit_chain c WHERE c.ref_id = ? AND c.kind = ?`,
      ),
      hashes: db.prepare("SELECT hash FROM audit_chain WHERE seq <= ? ORDER BY seq"),
      strayDecisions: db.prepare(
        `SELECT decision_id, field FROM (${DECISION_COLUMNS_AGAINST_RECORD}) WHERE field IS NOT NULL LIMIT ?`,
      ),
      approvals: db.prepare(approvalsWithLog((column, key) => `json_extract(${column}, '$.${key}')`)),
      memoryCases: db.prepare(MEMORY_CASES_WITH_LOG),
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
        string | null,
        string | null,
      ];
      for (const row of statement.iterate() as unknown as Iterable<Row>) {
        const [
          seq,
          kind,
          refId,
          hash,
          recordJson,
          decisionId,
          type,
          createdAt,
          dataJson,
          policy,
          policyEvent,
        ] = row;
        let stored: ChainedRow | undefined;
        if (recordJson !== null) stored = { kind: "decision", recordJson };
        else if (decisionId !== null)
          stored = {
            kind: "event",
            event: {
              eventId: refId,
              decisionId,
              type: String(type),
              createdAt: String(createdAt),
              dataJson: String(dataJson),
            },
          };
        else if (policy !== null) stored = { kind: "policy", policy: chainedPolicyOf(JSON.parse(policy)) };
        else if (policyEvent !== null)
          stored = { kind: "policy_event", policyEvent: chainedPolicyEventOf(JSON.parse(policyEvent)) };
        const link = chainLink(seq, kind, refId, hash, stored);
        if (!visit(link)) break;
      }
    });
  }

  async unchained(limit = 100): Promise<{ kind: ChainKind; id: string }[]> {
    const rows = this.connection.read(() => this.statements.unchained.all(limit));
    return rows.map((row) => ({ kind: row.kind as ChainKind, id: String(row.id) }));
  }

  async checkpoints(afterSeq = 0): Promise<ChainCheckpoint[]> {
    return this.connection.read(() => this.statements.checkpoints.all(afterSeq)).map(checkpointOf);
  }

  sign(): Promise<ChainCheckpoint | undefined> {
    return this.connection.write("sign the chain's head", "checkpoint");
  }

  async entryOf(kind: ChainKind, refId: string): Promise<ChainPosition | undefined> {
    const row = this.connection.read(() => this.statements.entryOf.get(refId, kind));
    return row && chainPosition(row);
  }

  async hashes(upTo: number): Promise<string[]> {
    const statement = this.statements.hashes;
    return this.connection.read(() => {
      statement.setReturnArrays(true);
      return (statement.all(upTo) as unknown as [string][]).map(([hash]) => hash);
    });
  }

  async inconsistencies(limit = 100): Promise<Inconsistency[]> {
    return this.connection.read(() => {
      const found: Inconsistency[] = this.statements.strayDecisions.all(limit).map((row) => ({
        kind: "decision",
        id: String(row.decision_id),
        message: `decision ${row.decision_id}: its ${row.field} differs from its chained record`,
      }));
      for (const rows of [
        { statement: this.statements.approvals, check: approvalInconsistency },
        { statement: this.statements.memoryCases, check: memoryCaseInconsistency },
      ]) {
        for (const row of rows.statement.iterate()) {
          if (found.length >= limit) return found;
          const inconsistency = rows.check(row);
          if (inconsistency) found.push(inconsistency);
        }
      }
      return found;
    });
  }
}

/**
 * Each decision with the first of its indexed columns (or its reason codes) that differs from its record's
 * JSON, as src/domain/decision-record.ts derives them (NULL when all agree). SQLite reads the JSON in C, so
 * verifying a large log stays a single pass.
 */
const DECISION_COLUMNS_AGAINST_RECORD = `
  SELECT d.decision_id, CASE
    WHEN d.created_at IS NOT json_extract(d.record_json, '$.created_at') THEN 'created_at'
    WHEN d.verdict IS NOT json_extract(d.record_json, '$.verdict') THEN 'verdict'
    WHEN d.policy_hash IS NOT json_extract(d.record_json, '$.policy.policy_hash') THEN 'policy_hash'
    WHEN d.inputs_digest IS NOT json_extract(d.record_json, '$.determinism.inputs_digest') THEN 'inputs_digest'
    WHEN d.action_type IS NOT json_extract(d.record_json, '$.request.action.type') THEN 'action_type'
    WHEN d.subject_id IS NOT (CASE WHEN json_type(d.record_json, '$.request.subject.id') = 'text'
      THEN json_extract(d.record_json, '$.request.subject.id') END) THEN 'subject_id'
    WHEN d.request_id IS NOT (CASE WHEN json_type(d.record_json, '$.request.request_id') = 'text'
      THEN json_extract(d.record_json, '$.request.request_id') END) THEN 'request_id'
    WHEN d.tenant_id IS NOT coalesce(
      nullif(CASE WHEN json_type(d.record_json, '$.request.tenant.tenant_id') = 'text'
        THEN json_extract(d.record_json, '$.request.tenant.tenant_id') END, ''),
      nullif(CASE WHEN json_type(d.record_json, '$.request.subject.tenant_id') = 'text'
        THEN json_extract(d.record_json, '$.request.subject.tenant_id') END, ''),
      '${GLOBAL_TENANT}') THEN 'tenant_id'
    WHEN (SELECT json_group_array(reason_code) FROM (SELECT reason_code FROM decision_reason_codes c
        WHERE c.decision_id = d.decision_id ORDER BY c.position))
      IS NOT json_extract(d.record_json, '$.reason_codes') THEN 'reason_codes'
  END AS field
  FROM decisions d`;
