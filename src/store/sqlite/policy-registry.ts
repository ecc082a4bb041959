import { timestamp } from "../../core/ids.ts";
import type { NewPolicyEvent, PolicyEvent, PolicySnapshot } from "../../domain/policy-registry.ts";
import type { PolicyRegistryStore } from "../policy-registry.ts";
import { appendedPolicyEvent, policyEventOf, snapshotOf } from "../rows.ts";
import type { SqliteConnection } from "./connection.ts";

export class SqlitePolicyRegistry implements PolicyRegistryStore {
  private readonly connection: SqliteConnection;
  private readonly statements;

  constructor(connection: SqliteConnection) {
    this.connection = connection;
    const db = connection.db;
    this.statements = {
      snapshot: db.prepare(
        "SELECT policy_hash, policy_id, policy_version, policy_text FROM policy_snapshots WHERE policy_hash = ?",
      ),
      all: db.prepare(
        "SELECT seq, tenant_id, type, policy_hash, detail_json, created_at FROM policy_events ORDER BY seq",
      ),
      ofTenant: db.prepare(
        "SELECT seq, tenant_id, type, policy_hash, detail_json, created_at FROM policy_events WHERE tenant_id = ? ORDER BY seq",
      ),
      active: db.prepare(
        "SELECT tenant_id, active_hash FROM policy_events WHERE seq IN (SELECT max(seq) FROM policy_events GROUP BY tenant_id) ORDER BY tenant_id",
      ),
    };
  }

  async putSnapshot(snapshot: PolicySnapshot): Promise<void> {
    await this.connection.write("store the policy snapshot", "putPolicy", {
      ...snapshot,
      createdAt: timestamp(new Date()),
    });
  }

  async getSnapshot(policyHash: string): Promise<PolicySnapshot | undefined> {
    const row = this.connection.read(() => this.statements.snapshot.get(policyHash));
    return row ? snapshotOf(row) : undefined;
  }

  async append(event: NewPolicyEvent): Promise<PolicyEvent | undefined> {
    const appended = await this.connection.write("write the policy event", "appendPolicyEvent", event);
    return appended && appendedPolicyEvent(appended.row, appended.seq, event.detail);
  }

  async history(tenantId?: string): Promise<PolicyEvent[]> {
    const rows = this.connection.read(() =>
      tenantId === undefined ? this.statements.all.all() : this.statements.ofTenant.all(tenantId),
    );
    return rows.map(policyEventOf);
  }

  async active(): Promise<Map<string, string>> {
    const rows = this.connection.read(() => this.statements.active.all());
    return new Map(
      rows
        .filter((row) => row.active_hash !== null)
        .map((row) => [String(row.tenant_id), String(row.active_hash)]),
    );
  }
}
