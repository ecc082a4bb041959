import type { DecisionEvent } from "../../domain/decision-event.ts";
import type { Label, MemoryCase, ScopeCount } from "../../domain/memory-case.ts";
import type { LabelWrite, MemoryCaseStore } from "../memory-cases.ts";
import { labelRow, memoryCaseOf, storedEvent } from "../rows.ts";
import type { SqliteConnection } from "./connection.ts";

export class SqliteMemoryCases implements MemoryCaseStore {
  private readonly connection: SqliteConnection;
  private readonly statements;

  constructor(connection: SqliteConnection) {
    this.connection = connection;
    const db = connection.db;
    this.statements = {
      scopes: db.prepare(
        "SELECT tenant_id, action_type, count(*) AS count FROM memory_cases GROUP BY tenant_id, action_type ORDER BY tenant_id, action_type",
      ),
      // In storage order: reading through the primary key's index instead would cost a seek per case.
      all: db.prepare("SELECT decision_id, tenant_id, action_type, label, fingerprint FROM memory_cases"),
      summary: db.prepare("SELECT summary FROM memory_cases WHERE decision_id = ?"),
      case: db.prepare(
        "SELECT decision_id, tenant_id, action_type, label, fingerprint FROM memory_cases WHERE decision_id = ?",
      ),
    };
  }

  async putLabel(label: LabelWrite): Promise<DecisionEvent | undefined> {
    const row = labelRow(label);
    const stored = await this.connection.write("store the label", "putLabel", row);
    return stored ? storedEvent(row.event) : undefined;
  }

  async scopes(): Promise<ScopeCount[]> {
    return this.connection.read(() =>
      this.statements.scopes.all().map((row) => ({
        tenantId: String(row.tenant_id),
        actionType: String(row.action_type),
        count: Number(row.count),
      })),
    );
  }

  async load(visit: (memoryCase: MemoryCase) => void): Promise<number> {
    let count = 0;
    this.connection.read(() => {
      // Rows as arrays: a million cases load faster without an object per row.
      const statement = this.statements.all;
      statement.setReturnArrays(true);
      for (const row of statement.iterate() as unknown as Iterable<
        [string, string, string, Label, Uint8Array]
      >) {
        const [decisionId, tenantId, actionType, label, bytes] = row;
        visit({
          decisionId,
          tenantId,
          actionType,
          label,
          vector: new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        });
        count++;
      }
    });
    return count;
  }

  async cases(decisionIds: readonly string[]): Promise<MemoryCase[]> {
    const cases: MemoryCase[] = [];
    this.connection.read(() => {
      for (const id of decisionIds) {
        const row = this.statements.case.get(id);
        if (row) cases.push(memoryCaseOf(row));
      }
    });
    return cases;
  }

  async summaries(decisionIds: readonly string[]): Promise<Map<string, string>> {
    const summaries = new Map<string, string>();
    this.connection.read(() => {
      for (const id of decisionIds) {
        const row = this.statements.summary.get(id);
        if (row) summaries.set(id, String(row.summary));
      }
    });
    return summaries;
  }
}
