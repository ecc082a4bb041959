import type { Approval } from "../../domain/approval.ts";
import type { ApprovalChange, ApprovalQuery, ApprovalStore } from "../approvals.ts";
import { DEFAULT_PAGE_SIZE, pageLimit } from "../queries.ts";
import { approvalOf, approvalRow } from "../rows.ts";
import type { SqliteConnection } from "./connection.ts";

export class SqliteApprovals implements ApprovalStore {
  private readonly connection: SqliteConnection;
  private readonly statements;

  constructor(connection: SqliteConnection) {
    this.connection = connection;
    const db = connection.db;
    this.statements = {
      get: db.prepare("SELECT approval_json FROM approvals WHERE approval_id = ?"),
      byDecision: db.prepare("SELECT approval_json FROM approvals WHERE decision_id = ?"),
      due: db.prepare(
        `SELECT approval_json FROM approvals
         WHERE state IN ('WAITING_FOR_HUMAN', 'APPROVED', 'OVERRIDDEN') AND deadline <= ? ORDER BY deadline LIMIT ?`,
      ),
    };
  }

  async get(approvalId: string): Promise<Approval | undefined> {
    const row = this.connection.read(() => this.statements.get.get(approvalId));
    return row ? approvalOf(row.approval_json) : undefined;
  }

  async findByDecision(decisionId: string): Promise<Approval | undefined> {
    const row = this.connection.read(() => this.statements.byDecision.get(decisionId));
    return row ? approvalOf(row.approval_json) : undefined;
  }

  async list(query: ApprovalQuery): Promise<Approval[]> {
    const limit = pageLimit(query.limit);
    const where: string[] = [];
    const params: string[] = [];
    if (query.state) {
      where.push("state = ?");
      params.push(query.state);
    }
    if (query.tenantId) {
      where.push("tenant_id = ?");
      params.push(query.tenantId);
    }
    const sql = `SELECT approval_json FROM approvals ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at DESC, approval_id DESC`;
    const approvals: Approval[] = [];
    const db = this.connection.db;
    this.connection.read(() => {
      for (const row of db.prepare(sql).iterate(...params)) {
        const approval = approvalOf(row.approval_json);
        if (query.role && !approval.approver_roles.includes(query.role)) continue;
        approvals.push(approval);
        if (approvals.length === limit) break;
      }
    });
    return approvals;
  }

  update(change: ApprovalChange): Promise<boolean> {
    const row = approvalRow(change.approval, change.events);
    return this.connection.write("update the approval", "updateApproval", row, change.expectedVersion);
  }

  async due(now: string, limit = DEFAULT_PAGE_SIZE): Promise<Approval[]> {
    const rows = this.connection.read(() => this.statements.due.all(now, limit));
    return rows.map((row) => approvalOf(row.approval_json));
  }
}
