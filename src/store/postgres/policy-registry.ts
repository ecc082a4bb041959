import { timestamp } from "../../core/ids.ts";
import type { NewPolicyEvent, PolicyEvent, PolicySnapshot } from "../../domain/policy-registry.ts";
import type { PolicyRegistryStore } from "../policy-registry.ts";
import { Conditions, POSTGRES_PLACEHOLDER } from "../queries.ts";
import { appendedPolicyEvent, policyEventOf, policyEventRow, snapshotOf } from "../rows.ts";
import { appendChain, type PostgresConnection } from "./connection.ts";

export class PostgresPolicyRegistry implements PolicyRegistryStore {
  private readonly connection: PostgresConnection;

  constructor(connection: PostgresConnection) {
    this.connection = connection;
  }

  /** Keeps a policy's text by hash, once: the first time, it becomes an entry of the audit chain too. */
  async putSnapshot(snapshot: PolicySnapshot): Promise<void> {
    const policy = { ...snapshot, createdAt: timestamp(new Date()) };
    await this.connection.transaction("store the policy snapshot", async (client, head) => {
      const inserted = await client.query(
        `INSERT INTO policy_snapshots (policy_hash, policy_id, policy_version, policy_text, created_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (policy_hash) DO NOTHING`,
        [policy.policyHash, policy.policyId, policy.policyVersion, policy.text, policy.createdAt],
      );
      if (inserted.rowCount === 1)
        await appendChain(client, head, [{ id: policy.policyHash, row: { kind: "policy", policy } }]);
    });
  }

  async getSnapshot(policyHash: string): Promise<PolicySnapshot | undefined> {
    const { rows } = await this.connection.query(
      "SELECT policy_hash, policy_id, policy_version, policy_text FROM policy_snapshots WHERE policy_hash = $1",
      [policyHash],
    );
    return rows[0] ? snapshotOf(rows[0]) : undefined;
  }

  /**
   * Appends under the chain head's lock, which every writer of the log takes first: reading the tenant's
   * active version and appending over it is one step (the compare-and-set of activations), and the event
   * joins the chain in the same transaction.
   */
  append(event: NewPolicyEvent): Promise<PolicyEvent | undefined> {
    return this.connection.transaction("change the policy registry", async (client, head) => {
      const latest = await client.query(
        "SELECT active_hash FROM policy_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
        [event.tenantId],
      );
      const row = policyEventRow(event, (latest.rows[0]?.active_hash as string | null | undefined) ?? null);
      if (!row) return undefined;
      const inserted = await client.query(
        `INSERT INTO policy_events (tenant_id, type, policy_hash, active_hash, detail_json, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
        [row.tenantId, row.type, row.policyHash, row.activeHash, row.detailJson, row.createdAt],
      );
      const seq = Number(inserted.rows[0]?.seq);
      await appendChain(client, head, [
        { id: String(seq), row: { kind: "policy_event", policyEvent: { ...row, seq } } },
      ]);
      return appendedPolicyEvent(row, seq, event.detail);
    });
  }

  async history(tenantId?: string): Promise<PolicyEvent[]> {
    const conditions = new Conditions(POSTGRES_PLACEHOLDER).add("tenant_id = ?", tenantId);
    const { rows } = await this.connection.query(
      `SELECT seq, tenant_id, type, policy_hash, detail_json, created_at FROM policy_events ${conditions.where()} ORDER BY seq`,
      conditions.params,
    );
    return rows.map(policyEventOf);
  }

  async active(): Promise<Map<string, string>> {
    const { rows } = await this.connection.query(
      "SELECT DISTINCT ON (tenant_id) tenant_id, active_hash FROM policy_events ORDER BY tenant_id, seq DESC",
    );
    return new Map(
      rows
        .filter((row) => row.active_hash !== null)
        .map((row) => [String(row.tenant_id), String(row.active_hash)]),
    );
  }
}
