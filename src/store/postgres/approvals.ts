import type { Approval } from "../../domain/approval.ts";
import type { ApprovalChange, ApprovalQuery, ApprovalStore } from "../approvals.ts";
import { Conditions, DEFAULT_PAGE_SIZE, POSTGRES_PLACEHOLDER, pageLimit } from "../queries.ts";
import { approvalOf, approvalRow } from "../rows.ts";
import { insertEvents, type PostgresConnection } from "./connection.ts";

export class PostgresApprovals implements ApprovalStore {
  private readonly connection: PostgresConnection;

  constructor(connection: PostgresConnection) {
    this.connection = connection;
  }

  async get(approvalId: string): Promise<Approval | undefined> {
    const { rows } = await this.connection.query(
      "SELECT approval_json FROM approvals WHERE approval_id = $1",
      [approvalId],
    );
    return rows[0] ? approvalOf(rows[0].approval_json) : undefined;
  }

  async findByDecision(decisionId: string): Promise<Approval | undefined> {
    const { rows } = await this.connection.query(
      "SELECT approval_json FROM approvals WHERE decision_id = $1",
      [decisionId],
    );
    return rows[0] ? approvalOf(rows[0].approval_json) : undefined;
  }

  async list(query: ApprovalQuery): Promise<Approval[]> {
    const conditions = new Conditions(POSTGRES_PLACEHOLDER)
      .add("state = ?", query.state)
      .add("tenant_id = ?", query.tenantId)
      // An array holds a string it contains (jsonb @> with a scalar on the right).
      .add("(approval_json::jsonb -> 'approver_roles') @> to_jsonb(?::text)", query.role);
    const { rows } = await this.connection.query(
      `SELECT approval_json FROM approvals ${conditions.where()}
         ORDER BY created_at DESC, approval_id DESC LIMIT ${conditions.next(pageLimit(query.limit))}`,
      conditions.params,
    );
    return rows.map((row) => approvalOf(row.approval_json));
  }

  update(change: ApprovalChange): Promise<boolean> {
    const row = approvalRow(change.approval, change.events);
    return this.connection.transaction("update the approval", async (client, head) => {
      const updated = await client.query(
        `UPDATE approvals SET state = $1, version = $2, deadline = $3, updated_at = $4, approval_json = $5
           WHERE approval_id = $6 AND version = $7`,
        [
          row.state,
          row.version,
          row.deadline,
          row.updatedAt,
          row.json,
          row.approvalId,
          change.expectedVersion,
        ],
      );
      if (updated.rowCount !== 1) return false;
      await insertEvents(client, head, row.events);
      return true;
    });
  }

  async due(now: string, limit = DEFAULT_PAGE_SIZE): Promise<Approval[]> {
    const { rows } = await this.connection.query(
      `SELECT approval_json FROM approvals
         WHERE state IN ('WAITING_FOR_HUMAN', 'APPROVED', 'OVERRIDDEN') AND deadline <= $1 ORDER BY deadline LIMIT $2`,
      [now, limit],
    );
    return rows.map((row) => approvalOf(row.approval_json));
  }
}
