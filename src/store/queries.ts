/**
 * SQL that both backends run, written once: the filters of decision listings, scans and stats, and the
 * limits of pages. A dialect only says how a parameter is written (`?` in SQLite, `$n` in PostgreSQL).
 */
import type { DecisionQuery, DecisionScan, StatsQuery } from "./decisions.ts";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

/** A page's size: the default when unset, at least 1 and at most {@link MAX_PAGE_SIZE}. */
export function pageLimit(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
}

/** How a dialect writes the n-th parameter of a statement (1-based). */
export type Placeholder = (n: number) => string;

export const SQLITE_PLACEHOLDER: Placeholder = () => "?";
export const POSTGRES_PLACEHOLDER: Placeholder = (n) => `$${n}`;

/** A WHERE clause built from optional conditions; `?` in a condition becomes the dialect's next parameter. */
export class Conditions {
  readonly params: unknown[] = [];
  private readonly conditions: string[] = [];
  private readonly placeholder: Placeholder;

  constructor(placeholder: Placeholder) {
    this.placeholder = placeholder;
  }

  /** Adds `sql` (one `?`) with its value; nothing when the value is undefined (the filter is not asked for). */
  add(sql: string, value: unknown): this {
    if (value === undefined) return this;
    this.params.push(value);
    this.conditions.push(sql.replace("?", this.placeholder(this.params.length)));
    return this;
  }

  /** The next parameter's placeholder, for values bound outside a condition (a LIMIT). */
  next(value: unknown): string {
    this.params.push(value);
    return this.placeholder(this.params.length);
  }

  where(): string {
    return this.conditions.length > 0 ? `WHERE ${this.conditions.join(" AND ")}` : "";
  }
}

/** The filters of a listing, scan or stats query over `decisions d`. */
export function decisionConditions(
  query: DecisionQuery | StatsQuery | DecisionScan,
  placeholder: Placeholder,
): Conditions {
  const conditions = new Conditions(placeholder);
  if ("verdict" in query) conditions.add("d.verdict = ?", query.verdict);
  if ("actionType" in query) conditions.add("d.action_type = ?", query.actionType);
  if ("subjectId" in query) conditions.add("d.subject_id = ?", query.subjectId);
  if ("reasonCode" in query)
    conditions.add(
      "EXISTS (SELECT 1 FROM decision_reason_codes rc WHERE rc.decision_id = d.decision_id AND rc.reason_code = ?)",
      query.reasonCode,
    );
  conditions.add("d.tenant_id = ?", query.tenantId);
  conditions.add("d.created_at >= ?", query.since);
  conditions.add("d.created_at < ?", query.until);
  return conditions;
}

/** One page of decisions, newest first, with one row more than the page to tell whether another follows. */
export function listDecisionsSql(
  query: DecisionQuery,
  placeholder: Placeholder,
): { sql: string; params: unknown[]; limit: number } {
  const limit = pageLimit(query.limit);
  const conditions = decisionConditions(query, placeholder).add(
    "d.decision_id < ?",
    query.cursor || undefined,
  );
  const sql = `SELECT d.decision_id, d.record_json FROM decisions d ${conditions.where()}
    ORDER BY d.decision_id DESC LIMIT ${conditions.next(limit + 1)}`;
  return { sql, params: conditions.params, limit };
}

/** The count of decisions in the window, and the counts per value of the dimension, largest first. */
export function statsSql(
  query: StatsQuery,
  placeholder: Placeholder,
): { totalSql: string; groupSql: string; params: unknown[] } {
  const conditions = decisionConditions(query, placeholder);
  const where = conditions.where();
  const groups =
    query.by === "reason_code"
      ? `SELECT r.reason_code AS key, count(*) AS count FROM decision_reason_codes r
           JOIN decisions d ON d.decision_id = r.decision_id ${where} GROUP BY r.reason_code`
      : `SELECT d.${query.by} AS key, count(*) AS count FROM decisions d ${where} GROUP BY d.${query.by}`;
  return {
    totalSql: `SELECT count(*) AS total FROM decisions d ${where}`,
    groupSql: `${groups} ORDER BY count DESC, key ASC`,
    params: conditions.params,
  };
}

/**
 * Stored rows that no chain entry covers (inserted behind the log's back), the same in both dialects:
 * decisions, events, policy snapshots and registry events.
 */
export const UNCHAINED_ROWS = `
  SELECT 'decision' AS kind, decision_id AS id FROM decisions d
    WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = d.decision_id AND c.kind = 'decision')
  UNION ALL SELECT 'event', event_id FROM decision_events e
    WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = e.event_id AND c.kind = 'event')
  UNION ALL SELECT 'policy', policy_hash FROM policy_snapshots p
    WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = p.policy_hash AND c.kind = 'policy')
  UNION ALL SELECT 'policy_event', CAST(seq AS TEXT) FROM policy_events r
    WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.ref_id = CAST(r.seq AS TEXT) AND c.kind = 'policy_event')`;

/** Each approval with the data of its latest `approval_version` event and its latest transition's state. */
export function approvalsWithLog(jsonField: (column: string, path: string) => string): string {
  const latest = (type: string, select: string) =>
    `(SELECT ${select} FROM decision_events e WHERE e.decision_id = a.decision_id AND e.type = '${type}'
       AND ${jsonField("e.data_json", "approval_id")} = a.approval_id ORDER BY e.seq DESC LIMIT 1)`;
  return `SELECT a.approval_id, a.decision_id, a.tenant_id, a.state, a.version, a.deadline, a.approval_json,
      ${latest("approval_version", "e.data_json")} AS version_data,
      ${latest("approval_transition", jsonField("e.data_json", "to"))} AS transition_to
    FROM approvals a`;
}

/** Each memory case with its decision's tenant and action type, and its latest label event. */
export const MEMORY_CASES_WITH_LOG = `
  SELECT m.decision_id, m.tenant_id, m.action_type, m.label, m.summary, m.severity, m.projection, m.fingerprint,
      m.labelled_at, d.tenant_id AS decision_tenant_id, d.action_type AS decision_action_type,
      (SELECT e.data_json FROM decision_events e WHERE e.decision_id = m.decision_id AND e.type = 'label'
         ORDER BY e.seq DESC LIMIT 1) AS event_data,
      (SELECT e.created_at FROM decision_events e WHERE e.decision_id = m.decision_id AND e.type = 'label'
         ORDER BY e.seq DESC LIMIT 1) AS event_created_at
    FROM memory_cases m LEFT JOIN decisions d ON d.decision_id = m.decision_id`;
