import { sha256 } from "../core/digest.ts";
import { newDecisionId } from "../core/ids.ts";
import type { JsonObject } from "../core/json.ts";
import { fail, ok, type Result } from "../core/problem.ts";
import { tenantOf } from "../core/tenant.ts";
import type { ApprovalSettings } from "../domain/approval.ts";
import {
  type Actor,
  type Applied,
  type Approval,
  type CommandResult,
  cancel,
  consume,
  expire,
  isOpen,
  openApproval,
  override,
  type VoteInput,
  vote,
} from "../domain/approval.ts";
import type { NewDecisionEvent } from "../domain/decision-event.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import type { Policy } from "../policy/policy.ts";
import type { ApprovalQuery } from "../store/approvals.ts";
import type { ApprovalOpening } from "../store/decisions.ts";
import type { Store } from "../store/store.ts";

/** How often a waiter looks at the store again (other processes may resolve the approval). */
const WAIT_POLL_MS = 200;
/** Attempts at a command that lost a compare-and-set to a concurrent writer before giving up. */
const MAX_ATTEMPTS = 8;

/**
 * The approval settings that apply to a decision: those of the first matched ESCALATE rule that has some,
 * else the policy's defaults. None unless the verdict is ESCALATE.
 */
export function approvalSettingsFor(policy: Policy, record: DecisionRecord): ApprovalSettings | undefined {
  if (record.verdict !== "ESCALATE") return undefined;
  for (const matched of record.matched_rules) {
    const rule = policy.model.rules.find((candidate) => candidate.id === matched.rule_id);
    if (rule?.verdict === "ESCALATE" && rule.approval) return rule.approval;
  }
  return policy.model.defaults.approval;
}

/** The approval an ESCALATE opens (stored with its record), or undefined when the policy asks for none. */
export function approvalOpening(
  record: DecisionRecord,
  recordJson: string,
  policy: Policy,
  now: Date,
): ApprovalOpening | undefined {
  const settings = approvalSettingsFor(policy, record);
  if (!settings) return undefined;
  const subject = record.request.subject as JsonObject | undefined;
  const approval = openApproval(
    {
      approvalId: newDecisionId(),
      decisionId: record.decision_id,
      tenantId: tenantOf(record.request),
      inputsDigest: record.determinism.inputs_digest,
      recordDigest: sha256(recordJson),
      policyHash: record.policy.policy_hash,
      requesterId: typeof subject?.id === "string" ? subject.id : null,
      settings,
    },
    now,
  );
  return { approval, events: eventsOf(undefined, { approval, transitions: approval.timeline }) };
}

/** Every change as events of the decision: votes cast, transitions made, the authority record written. */
function eventsOf(before: Approval | undefined, applied: Applied): NewDecisionEvent[] {
  const { approval } = applied;
  const event = (type: string, data: JsonObject, at: string): NewDecisionEvent => ({
    decisionId: approval.decision_id,
    type,
    data: { approval_id: approval.approval_id, ...data },
    createdAt: at,
  });
  const events: NewDecisionEvent[] = [];
  for (const cast of approval.votes.slice(before?.votes.length ?? 0)) {
    const { idempotency_key: _key, ...recorded } = cast;
    events.push(event("approval_vote", { ...recorded }, cast.at));
  }
  for (const transition of applied.transitions)
    events.push(event("approval_transition", { ...transition }, transition.at));
  if (approval.authority && !before?.authority)
    events.push(event("approval_authority", approval.authority, String(approval.authority.resolved_at)));
  return events;
}

/**
 * Approvals over a store: every command reads the current version, applies the lifecycle at the current
 * time and writes the result with a compare-and-set, trying again from the new version when another
 * writer (a thread, a process, a server) got there first. So two racing votes, or a vote racing the
 * deadline, make exactly one terminal transition.
 */
export class Approvals {
  private readonly store: Store;
  private readonly clock: () => Date;

  constructor(store: Store, clock: () => Date = () => new Date()) {
    this.store = store;
    this.clock = clock;
  }

  async get(approvalId: string): Promise<Result<Approval>> {
    const approval = await this.store.approvals.get(approvalId);
    return approval ? ok(approval) : notFound(approvalId);
  }

  list(query: ApprovalQuery): Promise<Approval[]> {
    return this.store.approvals.list(query);
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

  /** Redeems an approved approval right before acting; `inputsDigest`, when given, must be the one approved. */
  consume(approvalId: string, actor: Actor, inputsDigest?: string): Promise<Result<Approval>> {
    return this.command(approvalId, (approval, now) => consume(approval, actor, inputsDigest, now));
  }

  /** Resolves every approval past its deadline (at start-up, and periodically); returns how many changed. */
  async expireDue(): Promise<number> {
    let changed = 0;
    for (;;) {
      const due = await this.store.approvals.due(this.clock().toISOString());
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

  private async command(
    approvalId: string,
    apply: (approval: Approval, now: Date) => CommandResult,
  ): Promise<Result<Approval>> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.store.approvals.get(approvalId);
      if (!current) return notFound(approvalId);
      const result = apply(current, this.clock());
      const applied = result.ok ? result.value : result.applied;
      if (applied && applied.approval !== current && applied.approval.version !== current.version) {
        const written = await this.store.approvals.update({
          approval: applied.approval,
          expectedVersion: current.version,
          events: eventsOf(current, applied),
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
