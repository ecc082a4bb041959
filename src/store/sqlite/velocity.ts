import type { VelocityMeasure, VelocityQuery } from "../../domain/velocity.ts";
import type { VelocityStore } from "../velocity.ts";
import type { SqliteConnection } from "./connection.ts";

/** Velocity measures by SQL over the embedded store's decisions. */
export class SqliteVelocity implements VelocityStore {
  private readonly connection: SqliteConnection;

  constructor(connection: SqliteConnection) {
    this.connection = connection;
  }

  async measure(query: VelocityQuery): Promise<number> {
    const params: (string | number | null)[] = [query.tenantId, query.since, query.until];
    const filters: string[] = [];
    const value = query.groupValue;
    if (query.groupBy.join(".") === "subject.id" && typeof value === "string") {
      // The subject has its own column: no record needs parsing to find the group.
      filters.push("subject_id = ?");
      params.push(value);
    } else if (query.groupBy.length > 0) {
      filters.push("json_extract(record_json, ?) = ?");
      params.push(
        requestJsonPath(query.groupBy),
        typeof value === "boolean" ? Number(value) : (value ?? null),
      );
    }
    for (const [column, values] of [
      ["verdict", query.verdicts],
      ["action_type", query.actionTypes],
    ] as const) {
      if (values === undefined) continue;
      filters.push(`${column} IN (${values.map(() => "?").join(", ")})`);
      params.push(...values);
    }
    const sql = `SELECT ${velocityAggregate(query.measure)} AS value FROM decisions
      WHERE tenant_id = ? AND created_at >= ? AND created_at < ?${filters.map((f) => ` AND ${f}`).join("")}`;
    const db = this.connection.db;
    const row = this.connection.read(() => db.prepare(sql).get(...params));
    return Number(row?.value ?? 0);
  }
}

/** A SQLite JSON path into a stored record's request; segments are validated names (letters, digits, `_`, `-`). */
function requestJsonPath(segments: readonly string[]): string {
  return `$.request${segments.map((segment) => `."${segment}"`).join("")}`;
}

/** A number at a path of the record, or NULL when it holds anything else (a string is never coerced). */
function numberAt(path: string): string {
  return `CASE WHEN json_type(record_json, '${path}') IN ('integer', 'real') THEN json_extract(record_json, '${path}') END`;
}

function velocityAggregate(measure: VelocityMeasure): string {
  switch (measure.kind) {
    case "count":
      return "count(*)";
    case "sum_path":
      return `total(${numberAt(requestJsonPath(measure.segments))})`;
    case "sum_amount_usd": {
      // As amount_usd derives it (engine/normalize.ts): the amount itself in USD, else times the FX rate.
      const value = numberAt("$.request.action.amount.value");
      const rate = numberAt("$.request.evidence.fx_rate_to_usd");
      return `total(CASE WHEN json_extract(record_json, '$.request.action.amount.currency') = 'USD' THEN ${value}
        WHEN json_type(record_json, '$.request.action.amount.currency') = 'text' THEN ${value} * ${rate} END)`;
    }
  }
}
