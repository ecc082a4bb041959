import type { VelocityMeasure, VelocityQuery } from "../../domain/velocity.ts";
import type { VelocityStore } from "../velocity.ts";
import type { PostgresConnection } from "./connection.ts";

/** Velocity measures by SQL over PostgreSQL's decisions. */
export class PostgresVelocity implements VelocityStore {
  private readonly connection: PostgresConnection;

  constructor(connection: PostgresConnection) {
    this.connection = connection;
  }

  async measure(query: VelocityQuery): Promise<number> {
    const params: unknown[] = [query.tenantId, query.since, query.until];
    const filters: string[] = [];
    const value = query.groupValue;
    if (query.groupBy.join(".") === "subject.id" && typeof value === "string") {
      params.push(value);
      filters.push(`subject_id = $${params.length}`);
    } else if (query.groupBy.length > 0) {
      // jsonb equality: the same JSON value (numbers by value, so 1 equals 1.0, as in the embedded store).
      params.push(["request", ...query.groupBy], value === undefined ? null : JSON.stringify(value));
      filters.push(`(record_json::jsonb #> $${params.length - 1}::text[]) = $${params.length}::jsonb`);
    }
    for (const [column, values] of [
      ["verdict", query.verdicts],
      ["action_type", query.actionTypes],
    ] as const) {
      if (values === undefined) continue;
      params.push([...values]);
      filters.push(`${column} = ANY($${params.length})`);
    }
    const { rows } = await this.connection.query(
      `SELECT ${velocityAggregate(query.measure, params)} AS value FROM decisions
         WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3${filters.map((f) => ` AND ${f}`).join("")}`,
      params,
    );
    return Number(rows[0]?.value ?? 0);
  }
}

/** A number at a request path of the record, or NULL when it holds anything else (a string is never coerced). */
function numberAt(path: string): string {
  return `CASE WHEN jsonb_typeof(record_json::jsonb #> ${path}) = 'number' THEN (record_json::jsonb #>> ${path})::double precision END`;
}

/** The SQL of a velocity measure (as the embedded store's); paths are bound as parameters appended to `params`. */
function velocityAggregate(measure: VelocityMeasure, params: unknown[]): string {
  const path = (segments: readonly string[]): string => {
    params.push(["request", ...segments]);
    return `$${params.length}::text[]`;
  };
  switch (measure.kind) {
    case "count":
      return "count(*)";
    case "sum_path":
      return `coalesce(sum(${numberAt(path(measure.segments))}), 0)`;
    case "sum_amount_usd": {
      // As amount_usd derives it (engine/normalize.ts): the amount itself in USD, else times the FX rate.
      const value = numberAt(path(["action", "amount", "value"]));
      const rate = numberAt(path(["evidence", "fx_rate_to_usd"]));
      const currency = path(["action", "amount", "currency"]);
      return `coalesce(sum(CASE WHEN (record_json::jsonb #>> ${currency}) = 'USD' THEN ${value}
        WHEN jsonb_typeof(record_json::jsonb #> ${currency}) = 'string' THEN ${value} * ${rate} END), 0)`;
    }
  }
}
