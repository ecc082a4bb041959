import type { DecisionEvent } from "../../domain/decision-event.ts";
import type { MemoryCase, ScopeCount } from "../../domain/memory-case.ts";
import type { LabelWrite, MemoryCaseStore } from "../memory-cases.ts";
import { labelRow, memoryCaseOf, storedEvent } from "../rows.ts";
import { insertEvents, type PostgresConnection, SCAN_PAGE } from "./connection.ts";

export class PostgresMemoryCases implements MemoryCaseStore {
  private readonly connection: PostgresConnection;

  constructor(connection: PostgresConnection) {
    this.connection = connection;
  }

  async putLabel(label: LabelWrite): Promise<DecisionEvent | undefined> {
    const row = labelRow(label);
    const stored = await this.connection.transaction("store the label", async (client, head) => {
      const exists = await client.query("SELECT 1 FROM decisions WHERE decision_id = $1", [label.decisionId]);
      if (exists.rowCount === 0) return false;
      await insertEvents(client, head, [row.event]);
      await client.query(
        `INSERT INTO memory_cases (decision_id, tenant_id, action_type, label, summary, severity, projection, fingerprint, labelled_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (decision_id) DO UPDATE SET label = excluded.label, summary = excluded.summary,
             severity = excluded.severity, projection = excluded.projection, fingerprint = excluded.fingerprint,
             labelled_at = excluded.labelled_at`,
        [
          row.event.decisionId,
          row.tenantId,
          row.actionType,
          row.label,
          row.summary,
          row.severity,
          row.projection,
          Buffer.from(row.fingerprint.buffer, row.fingerprint.byteOffset, row.fingerprint.byteLength),
          row.event.createdAt,
        ],
      );
      return true;
    });
    return stored ? storedEvent(row.event) : undefined;
  }

  async scopes(): Promise<ScopeCount[]> {
    const { rows } = await this.connection.query(
      `SELECT tenant_id, action_type, count(*) AS count FROM memory_cases
         GROUP BY tenant_id, action_type ORDER BY tenant_id, action_type`,
    );
    return rows.map((row) => ({
      tenantId: String(row.tenant_id),
      actionType: String(row.action_type),
      count: Number(row.count),
    }));
  }

  async load(visit: (memoryCase: MemoryCase) => void): Promise<number> {
    let count = 0;
    let after = "";
    for (;;) {
      const { rows } = await this.connection.query(
        `SELECT decision_id, tenant_id, action_type, label, fingerprint FROM memory_cases
           WHERE decision_id > $1 ORDER BY decision_id LIMIT ${SCAN_PAGE}`,
        [after],
      );
      for (const row of rows) {
        visit(memoryCaseOf(row));
        count++;
      }
      if (rows.length < SCAN_PAGE) return count;
      after = String(rows.at(-1)?.decision_id);
    }
  }

  async cases(decisionIds: readonly string[]): Promise<MemoryCase[]> {
    const { rows } = await this.connection.query(
      `SELECT decision_id, tenant_id, action_type, label, fingerprint FROM memory_cases
         WHERE decision_id = ANY($1::text[]) ORDER BY decision_id`,
      [decisionIds],
    );
    return rows.map(memoryCaseOf);
  }

  async summaries(decisionIds: readonly string[]): Promise<Map<string, string>> {
    const { rows } = await this.connection.query(
      "SELECT decision_id, summary FROM memory_cases WHERE decision_id = ANY($1::text[])",
      [decisionIds],
    );
    return new Map(rows.map((row) => [String(row.decision_id), String(row.summary)]));
  }
}
