import { fail, ok, type Result } from "../core/problem.ts";
import {
  type Actor,
  type Approval,
  approvalAgainstLog,
  approvalEvents,
  type CommandResult,
  cancel,
  consume,
  expire,
  isOpen,
  loggedApproval,
  override,
  type VoteInput,
  vote,
} from "../domain/approval.ts";
import type { ApprovalQuery, ApprovalStore } from "../store/approvals.ts";
import type { AuditLog } from "../store/audit-log.ts";

/** The events approvals are held to. */
export type ApprovalLog = Pick<AuditLog, "events">;

/** How often a waiter looks at the store again (other processes may resolve the approval). */
const WAIT_POLL_MS = 200;
/** Attempts at a command that lost a compare-and-set to a concurrent writer before giving up. */
const MAX_ATTEMPTS = 8;

/**
 * Approvals over a store: every command reads the current version, applies the lifecycle at the current
 * time and writes the result with a compare-and-set, trying again from the new version when another
 * writer (a thread, a process, a server) got there first. So two racing votes, or a vote racing the
 * deadline, make exactly one terminal transition.
 */
export class Approvals {
  private readonly store: ApprovalStore;
  private readonly log: ApprovalLog;
  private readonly clock: () => Date;

  constructor(store: ApprovalStore, log: ApprovalLog, clock: () => Date = () => new Date()) {
    this.store = store;
    this.log = log;
    this.clock = clock;
  }

  /** An approval as stored, when its log (chained, append-only) says that is what it is. */
  get(approvalId: string): Promise<Result<Approval>> {
    return this.read(approvalId);
  }

  list(query: ApprovalQuery): Promise<Approval[]> {
    return this.store.list(query);
  }

  vote(approvalId: string, input: VoteInput): Promise<Result<Approval>> {
    return this.command(approvalId, (approval, now) => vote(approval, input, now));
  }

  override(approvalId: string, actor: Actor, justification: string): Promise<Result<Approval>> {
    return this.command(approvalId, (approval, now) => override(approval, actor, justification, now));
  }

  cancel(approvalId: string, actor: Actor, justification: string): Promise<Result<Approval>> {
    return this.command(approvalId, (approval, now) => cancel(approval, actor, justification, now));
  }

  /** Redeems an approved approval right before acting; `inputsDigest`, the action's, must be the one approved. */
  consume(approvalId: string, actor: Actor, inputsDigest: string): Promise<Result<Approval>> {
    return this.command(approvalId, (approval, now) => consume(approval, actor, inputsDigest, now));
  }

  /** Resolves every approval past its deadline (at start-up, and periodically); returns how many changed. */
  async expireDue(): Promise<number> {
    let changed = 0;
    for (;;) {
      const due = await this.store.due(this.clock().toISOString());
      let progressed = false;
      for (const approval of due) {
        const result = await this.command(approval.approval_id, (current, now) => ok(expire(current, now)));
        if (result.ok && result.value.version !== approval.version) {
          changed++;
          progressed = true;
        }
      }
      if (due.length === 0 || !progressed) return changed;
    }
  }

  /**
   * Waits until the approval is resolved (or `timeoutMs` passes), applying its deadline meanwhile; answers
   * the approval as it then is.
   */
  async wait(approvalId: string, timeoutMs: number, signal?: AbortSignal): Promise<Result<Approval>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const result = await this.command(approvalId, (approval, now) => ok(expire(approval, now)));
      if (!result.ok || !isOpen(result.value) || Date.now() >= until || signal?.aborted) return result;
      await new Promise((resolve) => setTimeout(resolve, Math.min(WAIT_POLL_MS, until - Date.now())));
    }
  }

  /**
   * An approval's row, held to its log: a row written outside Lumyn (its state or votes edited in the
   * database) is refused, so that no command acts on a forged approval. The row is read again when the log is
   * ahead of it: another writer may have moved it between the two reads.
   */
  private async read(approvalId: string): Promise<Result<Approval>> {
    for (let attempt = 0; ; attempt++) {
      const approval = await this.store.get(approvalId);
      if (!approval) return notFound(approvalId);
      const logged = loggedApproval(approvalId, await this.log.events(approval.decision_id));
      const check = approvalAgainstLog(approval, logged);
      if (check.holds) return ok(approval);
      if (check.behind && attempt === 0) continue;
      return fail("tampered", [
        {
          code: "tampered",
          message: `${check.why}: it was changed outside Lumyn, and is refused`,
          hint: "run `lumyn verify` to see what else was changed",
        },
      ]);
    }
  }

  private async command(
    approvalId: string,
    apply: (approval: Approval, now: Date) => CommandResult,
  ): Promise<Result<Approval>> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const read = await this.read(approvalId);
      if (!read.ok) return read;
      const current = read.value;
      const result = apply(current, this.clock());
      const applied = result.ok ? result.value : result.applied;
      if (applied && applied.approval !== current && applied.approval.version !== current.version) {
        const written = await this.store.update({
          approval: applied.approval,
          expectedVersion: current.version,
          events: approvalEvents(current, applied),
        });
        if (!written) continue;
      }
      return result.ok ? ok(result.value.approval) : result;
    }
    return fail("conflict", [
      {
        code: "contended",
        message: `approval ${approvalId} kept changing under this command; try again`,
      },
    ]);
  }
}

function notFound(approvalId: string): Result<never> {
  return fail("not_found", [{ code: "not_found", message: `no approval ${approvalId}` }]);
}
