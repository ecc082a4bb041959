import { digestJson } from "../core/digest.ts";
import { parseDuration } from "../core/duration.ts";
import type { JsonObject } from "../core/json.ts";
import { fail, ok, type Problem, type ProblemKind, type Result } from "../core/problem.ts";
import type { DecisionEvent, NewDecisionEvent } from "./decision-event.ts";
import { sameIdentity } from "./identity.ts";

/**
 * Who must approve an ESCALATE, how many, and by when: a rule's `then.approval`, or `defaults.approval` for
 * any ESCALATE whose rule has none (memory's escalations included).
 */
export interface ApprovalSettings {
  readonly approverRoles: readonly string[];
  /** Distinct approvers needed. */
  readonly quorum: number;
  /** How long people have, as written (`30m`) and in milliseconds. */
  readonly timeout: string;
  readonly timeoutMs: number;
  /** What a timeout does: DENY (fail closed), or ESCALATE once to `escalationRoles` with a fresh deadline. */
  readonly onTimeout: "DENY" | "ESCALATE";
  readonly escalationRoles: readonly string[];
  /** Neither the requester nor the subject may vote on or override the action. */
  readonly separationOfDuties: boolean;
}

/** The settings as the policy writes them, with the defaults filled in. */
export function approvalJson(settings: ApprovalSettings): JsonObject {
  return {
    approver_roles: [...settings.approverRoles],
    quorum: settings.quorum,
    timeout: settings.timeout,
    on_timeout: settings.onTimeout,
    escalation_roles: [...settings.escalationRoles],
    separation_of_duties: settings.separationOfDuties,
  };
}

/**
 * The life of an approval, as pure functions of (approval, command, now): no I/O, no clock. The store keeps
 * each new version with a compare-and-set on `version`, so that of two racing commands exactly one applies.
 *
 * Policy advises, the engine enforces, people stay accountable: every move is a transition with its actor,
 * and a resolution writes an authority record (`authority_record.v1`) with its own digest.
 */
export const APPROVAL_STATES = [
  "WAITING_FOR_HUMAN",
  "ESCALATED",
  "APPROVED",
  "REJECTED",
  "TIMED_OUT",
  "OVERRIDDEN",
  "CANCELLED",
  "CONSUMED",
] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

/**
 * Every move there is; any other is refused. ESCALATED is passed through on the way back to waiting (new
 * roles, fresh deadline). An approval that is not consumed by its deadline times out.
 */
export const TRANSITIONS: Readonly<Record<ApprovalState, readonly ApprovalState[]>> = {
  WAITING_FOR_HUMAN: ["APPROVED", "REJECTED", "TIMED_OUT", "ESCALATED", "OVERRIDDEN", "CANCELLED"],
  ESCALATED: ["WAITING_FOR_HUMAN"],
  APPROVED: ["CONSUMED", "TIMED_OUT"],
  OVERRIDDEN: ["CONSUMED", "TIMED_OUT"],
  REJECTED: [],
  TIMED_OUT: [],
  CANCELLED: [],
  CONSUMED: [],
};

export const TIMEOUT_ACTOR = "system:timeout";
/** The role that may force an approval through, recorded as an override and never as an approval. */
export const OVERRIDE_ROLE = "override";

/** Who acts: identity and roles come from the caller's key or identity, never from a request body. */
export interface Actor {
  readonly id: string;
  readonly roles: readonly string[];
  /**
   * Who vouched for `id` when the caller named it rather than proved it with a key: `os:<user>` for the CLI,
   * whose store access lets it name anyone. Recorded with every vote and step the actor takes.
   */
  readonly assertedBy?: string;
}

/** Who asked for the decision that opens an approval: recorded in it as its requester. */
export interface Requester {
  /** The principal of the key that asked (`os:<user>` for the CLI). */
  readonly principal: string;
  /** The key it asked with. */
  readonly keyId?: string;
  /**
   * Who asserted the subject's identity for someone else, when the caller named another actor than itself
   * (`key:<key_id>`: a key with the `delegate` scope).
   */
  readonly subjectAssertedBy?: string;
}

/** The requester as an approval records it. */
export interface RequesterRecord {
  readonly principal: string;
  readonly key_id?: string;
  readonly subject_asserted_by?: string;
}

export interface Vote {
  readonly actor_id: string;
  /** Who vouched for actor_id, when it was named rather than proved (see {@link Actor}). */
  readonly asserted_by?: string;
  readonly roles: string[];
  readonly decision: "approve" | "reject";
  readonly justification: string;
  readonly at: string;
  readonly idempotency_key: string;
  /** 0 before an escalation, 1 after: only the current round's votes count. */
  readonly round: number;
}

export interface Transition {
  readonly from: ApprovalState | null;
  readonly to: ApprovalState;
  readonly at: string;
  readonly actor: string;
  /** Who vouched for the actor, when it was named rather than proved (see {@link Actor}). */
  readonly asserted_by?: string;
  readonly justification?: string;
}

/** A transition's who, when and why. */
type Step = Omit<Transition, "from" | "to">;

export interface Approval {
  readonly approval_id: string;
  readonly decision_id: string;
  readonly tenant_id: string;
  /** The exact action approved: the decision's inputs digest, checked again when the approval is consumed. */
  readonly inputs_digest: string;
  /** sha256 of the decision record's canonical JSON. */
  readonly record_digest: string;
  readonly policy_hash: string;
  /** The subject the action is for (the request's `subject.id`), who may not approve it under separation of duties. */
  readonly requester_id: string | null;
  /**
   * Who asked for the decision, as its caller proved it (the key's principal), who may not approve it either;
   * absent when the caller named no one (and in approvals opened before requesters were recorded).
   */
  readonly requester?: RequesterRecord;
  readonly settings: JsonObject;
  readonly state: ApprovalState;
  /** Bumped by every change; the store writes a change only over the version it was computed from. */
  readonly version: number;
  /** Roles that may vote now (the escalation roles after an escalation). */
  readonly approver_roles: string[];
  readonly quorum: number;
  readonly deadline: string;
  readonly escalations: number;
  /** Every vote, of every round (an escalation starts a new round). */
  readonly votes: Vote[];
  readonly timeline: Transition[];
  readonly created_at: string;
  readonly outcome?: "ALLOW" | "DENY";
  readonly authority?: JsonObject;
}

/** What a command did: the new version (or the same one), and the transitions it made. */
export interface Applied {
  readonly approval: Approval;
  readonly transitions: readonly Transition[];
  /** A retried vote that was already counted: nothing changed. */
  readonly replayed?: boolean;
}

/**
 * The result of a command. A command refused because the deadline had passed still times the approval
 * out: `applied` then carries that change, which must be stored, alongside the refusal.
 */
export type CommandResult = Result<Applied> & { readonly applied?: Applied };

export interface OpenInput {
  readonly approvalId: string;
  readonly decisionId: string;
  readonly tenantId: string;
  readonly inputsDigest: string;
  readonly recordDigest: string;
  readonly policyHash: string;
  readonly requesterId: string | null;
  readonly requester?: Requester;
  readonly settings: ApprovalSettings;
}

export function openApproval(input: OpenInput, now: Date): Approval {
  const at = now.toISOString();
  return {
    approval_id: input.approvalId,
    decision_id: input.decisionId,
    tenant_id: input.tenantId,
    inputs_digest: input.inputsDigest,
    record_digest: input.recordDigest,
    policy_hash: input.policyHash,
    requester_id: input.requesterId,
    ...(input.requester
      ? {
          requester: {
            principal: input.requester.principal,
            ...(input.requester.keyId !== undefined ? { key_id: input.requester.keyId } : {}),
            ...(input.requester.subjectAssertedBy !== undefined
              ? { subject_asserted_by: input.requester.subjectAssertedBy }
              : {}),
          },
        }
      : {}),
    settings: approvalJson(input.settings),
    state: "WAITING_FOR_HUMAN",
    version: 1,
    approver_roles: [...input.settings.approverRoles],
    quorum: input.settings.quorum,
    deadline: new Date(now.getTime() + input.settings.timeoutMs).toISOString(),
    escalations: 0,
    votes: [],
    timeline: [{ from: null, to: "WAITING_FOR_HUMAN", at, actor: "system:decision" }],
    created_at: at,
  };
}

export function isOpen(approval: Approval): boolean {
  return approval.state === "WAITING_FOR_HUMAN";
}

/**
 * Applies what the clock says: an open approval past its deadline escalates (once, when the policy says so)
 * or times out (fail closed); an approved one not consumed by then times out. Unchanged otherwise.
 */
export function expire(approval: Approval, now: Date): Applied {
  if (now.getTime() < Date.parse(approval.deadline)) return { approval, transitions: [] };
  const at = now.toISOString();
  if (isOpen(approval)) {
    const settings = approval.settings;
    if (settings.on_timeout === "ESCALATE" && approval.escalations === 0) {
      const timeoutMs = parseDuration(String(settings.timeout)) ?? 0;
      const transitions: Transition[] = [
        { from: "WAITING_FOR_HUMAN", to: "ESCALATED", at, actor: TIMEOUT_ACTOR },
        { from: "ESCALATED", to: "WAITING_FOR_HUMAN", at, actor: TIMEOUT_ACTOR },
      ];
      return {
        approval: {
          ...approval,
          version: approval.version + 1,
          approver_roles: [...(settings.escalation_roles as string[])],
          deadline: new Date(now.getTime() + timeoutMs).toISOString(),
          escalations: 1,
          timeline: [...approval.timeline, ...transitions],
        },
        transitions,
      };
    }
    return resolve(approval, "TIMED_OUT", "DENY", { actor: TIMEOUT_ACTOR, at });
  }
  if (approval.state === "APPROVED" || approval.state === "OVERRIDDEN") {
    // Not used in time: the action may no longer happen, whatever was decided before.
    const moved = move(approval, "TIMED_OUT", {
      actor: TIMEOUT_ACTOR,
      at,
      justification: "not used before the deadline",
    });
    return { ...moved, approval: { ...moved.approval, outcome: "DENY" } };
  }
  return { approval, transitions: [] };
}

export interface VoteInput {
  readonly actor: Actor;
  readonly decision: "approve" | "reject";
  readonly justification: string;
  /** The same key with the same vote returns the same answer; with a different vote it is a conflict. */
  readonly idempotencyKey: string;
}

/** A vote: one per approver, a justification always; one rejection rejects, `quorum` approvals approve. */
export function vote(approval: Approval, input: VoteInput, now: Date): CommandResult {
  const earlier = approval.votes.find((v) => v.idempotency_key === input.idempotencyKey);
  if (earlier) {
    const same =
      earlier.actor_id === input.actor.id &&
      earlier.decision === input.decision &&
      earlier.justification === input.justification;
    return same
      ? ok({ approval, transitions: [], replayed: true })
      : refuse(
          "conflict",
          "idempotency_conflict",
          `idempotency key '${input.idempotencyKey}' was used for a different vote`,
        );
  }
  const checked = precheck(approval, input.actor, input.justification, now);
  if (checked) return checked;
  if (!input.actor.roles.some((role) => approval.approver_roles.includes(role)))
    return refuse(
      "forbidden",
      "not_an_approver",
      `${input.actor.id} holds none of the approver roles (${approval.approver_roles.join(", ")})`,
    );
  const separated = separation(approval, input.actor, "vote on");
  if (separated) return separated;
  const voted = approval.votes.find(
    (v) => v.round === approval.escalations && sameIdentity(v.actor_id, input.actor.id),
  );
  if (voted)
    return refuse(
      "conflict",
      "already_voted",
      voted.actor_id === input.actor.id
        ? `${input.actor.id} has already voted on this approval`
        : `${input.actor.id} reads as ${voted.actor_id}, who has already voted on this approval`,
    );
  const at = now.toISOString();
  const cast: Vote = {
    actor_id: input.actor.id,
    ...(input.actor.assertedBy !== undefined ? { asserted_by: input.actor.assertedBy } : {}),
    roles: [...input.actor.roles],
    decision: input.decision,
    justification: input.justification,
    at,
    idempotency_key: input.idempotencyKey,
    round: approval.escalations,
  };
  const withVote: Approval = { ...approval, votes: [...approval.votes, cast] };
  if (input.decision === "reject")
    return ok(resolve(withVote, "REJECTED", "DENY", stepOf(input.actor, at, input.justification)));
  const approvals = withVote.votes.filter(
    (v) => v.round === approval.escalations && v.decision === "approve",
  ).length;
  if (approvals >= approval.quorum)
    return ok(resolve(withVote, "APPROVED", "ALLOW", stepOf(input.actor, at, input.justification)));
  return ok({ approval: { ...withVote, version: approval.version + 1 }, transitions: [] });
}

/**
 * An actor with the override role forces the action through: recorded as an override, never as a vote. Not
 * the requester nor the subject, under separation of duties: forcing one's own request is approving it.
 */
export function override(approval: Approval, actor: Actor, justification: string, now: Date): CommandResult {
  const checked = precheck(approval, actor, justification, now);
  if (checked) return checked;
  if (!actor.roles.includes(OVERRIDE_ROLE))
    return refuse("forbidden", "not_an_overrider", `${actor.id} does not hold the '${OVERRIDE_ROLE}' role`);
  const separated = separation(approval, actor, "override");
  if (separated) return separated;
  return ok(resolve(approval, "OVERRIDDEN", "ALLOW", stepOf(actor, now.toISOString(), justification)));
}

/**
 * Withdraws an open approval (the action will not happen): the requester itself, or someone who could have
 * rejected it (an approver role) or forced it (the override role).
 */
export function cancel(approval: Approval, actor: Actor, justification: string, now: Date): CommandResult {
  const checked = precheck(approval, actor, justification, now);
  if (checked) return checked;
  const mayCancel =
    requesterRole(approval, actor) !== undefined ||
    actor.roles.includes(OVERRIDE_ROLE) ||
    actor.roles.some((role) => approval.approver_roles.includes(role));
  if (!mayCancel)
    return refuse(
      "forbidden",
      "not_a_canceller",
      `${actor.id} neither requested this action nor holds an approver or the '${OVERRIDE_ROLE}' role`,
    );
  return ok(resolve(approval, "CANCELLED", "DENY", stepOf(actor, now.toISOString(), justification)));
}

/**
 * Redeems an approved approval right before the action: re-checks the state, the deadline and that the
 * action is the one approved, which the caller proves with the inputs digest of the action it is about to
 * run. A second consume is a conflict, so one approval never executes twice.
 */
export function consume(approval: Approval, actor: Actor, inputsDigest: string, now: Date): CommandResult {
  if (inputsDigest.trim() === "")
    return refuse(
      "invalid_request",
      "inputs_digest_required",
      "consuming needs the inputs_digest of the action about to run (its decision's determinism.inputs_digest)",
    );
  const expired = expire(approval, now);
  if (expired.transitions.length > 0)
    return {
      ...refuse(
        "conflict",
        "expired",
        `approval ${approval.approval_id} passed its deadline (${approval.deadline})`,
      ),
      applied: expired,
    };
  if (approval.state !== "APPROVED" && approval.state !== "OVERRIDDEN")
    return refuse(
      "conflict",
      "not_approved",
      `approval ${approval.approval_id} is ${approval.state}, not APPROVED`,
    );
  if (inputsDigest !== approval.inputs_digest)
    return refuse(
      "conflict",
      "different_action",
      `the action's inputs digest ${inputsDigest} is not the one approved (${approval.inputs_digest})`,
    );
  return ok(move(approval, "CONSUMED", stepOf(actor, now.toISOString())));
}

/**
 * Which side of the request an actor is on, if any: the requester (the principal that asked) or the subject
 * the action is for. Names are compared as people read them, so that a look-alike (`Support-Agent-17`, a
 * trailing space, a Unicode hyphen) is the same identity.
 */
function requesterRole(
  approval: Approval,
  actor: Actor,
): { readonly name: string; readonly role: string } | undefined {
  const principal = approval.requester?.principal;
  if (principal !== undefined && sameIdentity(actor.id, principal))
    return { name: principal, role: "the requester of this action" };
  const subject = approval.requester_id;
  if (subject !== null && sameIdentity(actor.id, subject))
    return { name: subject, role: "the subject of this action" };
  return undefined;
}

/** The refusal of an actor on the request's side under separation of duties (unless the policy waives it). */
function separation(approval: Approval, actor: Actor, deed: string): CommandResult | undefined {
  if (approval.settings.separation_of_duties === false) return undefined;
  const side = requesterRole(approval, actor);
  if (!side) return undefined;
  const who =
    side.name === actor.id
      ? `${actor.id} is ${side.role}`
      : `${actor.id} reads as ${side.name}, ${side.role},`;
  return refuse("forbidden", "separation_of_duties", `${who} and may not ${deed} it (separation of duties)`);
}

/** Refusals every human command shares: an empty justification, a passed deadline, a closed approval. */
function precheck(
  approval: Approval,
  actor: Actor,
  justification: string,
  now: Date,
): CommandResult | undefined {
  if (justification.trim() === "")
    return refuse("invalid_request", "justification_required", "a justification is required");
  if (actor.id.trim() === "") return refuse("invalid_request", "actor_required", "an actor id is required");
  const expired = expire(approval, now);
  if (expired.transitions.length > 0 && !isOpen(expired.approval))
    return {
      ...refuse("conflict", "closed", `approval ${approval.approval_id} timed out at ${approval.deadline}`),
      applied: expired,
    };
  if (!isOpen(approval))
    return refuse("conflict", "closed", `approval ${approval.approval_id} is ${approval.state}`);
  if (expired.transitions.length > 0)
    return {
      ...refuse(
        "conflict",
        "escalated",
        `approval ${approval.approval_id} passed its deadline and was escalated to ${expired.approval.approver_roles.join(", ")}: vote again`,
      ),
      applied: expired,
    };
  return undefined;
}

function stepOf(actor: Actor, at: string, justification?: string): Step {
  return {
    actor: actor.id,
    ...(actor.assertedBy !== undefined ? { asserted_by: actor.assertedBy } : {}),
    at,
    ...(justification !== undefined ? { justification } : {}),
  };
}

function refuse(kind: ProblemKind, code: string, message: string): Result<Applied> {
  const problem: Problem = { code, message };
  return fail(kind, [problem]);
}

function move(approval: Approval, to: ApprovalState, step: Step): Applied {
  if (!TRANSITIONS[approval.state].includes(to))
    throw new Error(`approval ${approval.approval_id}: ${approval.state} → ${to} is not a transition`);
  const transition: Transition = { from: approval.state, to, ...step };
  return {
    approval: {
      ...approval,
      state: to,
      version: approval.version + 1,
      timeline: [...approval.timeline, transition],
    },
    transitions: [transition],
  };
}

/** Closes an open approval with an outcome and writes its authority record. */
function resolve(
  approval: Approval,
  to: "APPROVED" | "REJECTED" | "TIMED_OUT" | "OVERRIDDEN" | "CANCELLED",
  outcome: "ALLOW" | "DENY",
  step: Step,
): Applied {
  const moved = move(approval, to, step);
  const record: JsonObject = {
    schema_version: "authority_record.v1",
    approval_id: approval.approval_id,
    decision_id: approval.decision_id,
    record_digest: approval.record_digest,
    inputs_digest: approval.inputs_digest,
    policy_hash: approval.policy_hash,
    state: to,
    outcome,
    approvers: approval.votes.map((v) => ({
      actor_id: v.actor_id,
      ...(v.asserted_by !== undefined ? { asserted_by: v.asserted_by } : {}),
      roles: v.roles,
      decision: v.decision,
      justification: v.justification,
      at: v.at,
      round: v.round,
    })),
    ...(to === "OVERRIDDEN"
      ? {
          override: {
            actor_id: step.actor,
            ...(step.asserted_by !== undefined ? { asserted_by: step.asserted_by } : {}),
            justification: step.justification ?? "",
            at: step.at,
          },
        }
      : {}),
    timeline: moved.approval.timeline.map((t) => ({ ...t }) as JsonObject),
    resolved_at: step.at,
  };
  const authority = { ...record, authority_digest: digestJson(record) };
  return { ...moved, approval: { ...moved.approval, outcome, authority } };
}

/** An approval opened by a decision, and the events that open it. */
export interface ApprovalOpening {
  readonly approval: Approval;
  readonly events: readonly NewDecisionEvent[];
}

/** Every change as events of the decision: votes cast, transitions made, the authority record written. */
export function approvalEvents(before: Approval | undefined, applied: Applied): NewDecisionEvent[] {
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
  // Last: the version this change made, by digest, so that the stored approval can be held to its log.
  events.push(
    event(
      "approval_version",
      { version: approval.version, state: approval.state, approval_digest: approvalDigest(approval) },
      events.at(-1)?.createdAt ?? approval.created_at,
    ),
  );
  return events;
}

/** sha256 of an approval's canonical JSON: what its store row holds, and what its log records it was. */
export function approvalDigest(approval: Approval): string {
  return digestJson(approval as unknown as JsonObject);
}

/** What an approval's log says of its versions: the latest one it recorded, or its last transition. */
export interface LoggedApproval {
  /** The latest `approval_version` event's data (absent for approvals from before versions were logged). */
  readonly version?: { readonly version: number; readonly state: string; readonly digest: string };
  /** The state the last `approval_transition` event moved it to. */
  readonly lastTransitionTo?: string;
}

/** What the decision's events say of one of its approvals. */
export function loggedApproval(approvalId: string, events: readonly DecisionEvent[]): LoggedApproval {
  let version: LoggedApproval["version"];
  let lastTransitionTo: string | undefined;
  for (const { type, data } of events) {
    if (data.approval_id !== approvalId) continue;
    if (type === "approval_version")
      version = {
        version: Number(data.version),
        state: String(data.state),
        digest: String(data.approval_digest),
      };
    else if (type === "approval_transition") lastTransitionTo = String(data.to);
  }
  return { ...(version ? { version } : {}), ...(lastTransitionTo ? { lastTransitionTo } : {}) };
}

/**
 * Whether a stored approval is the one its log (chained, append-only) says it is: `behind` when the row is
 * an older version than the log's latest (read again: another writer may have moved it meanwhile), or why
 * it was changed outside Lumyn. Approvals opened before versions were logged are held to their last
 * transition's state.
 */
export function approvalAgainstLog(
  approval: Approval,
  logged: LoggedApproval,
): { readonly holds: true } | { readonly holds: false; readonly behind: boolean; readonly why: string } {
  const id = approval.approval_id;
  const version = logged.version;
  if (version === undefined) {
    if (logged.lastTransitionTo === undefined || logged.lastTransitionTo === approval.state)
      return { holds: true };
    return {
      holds: false,
      behind: false,
      why: `approval ${id} is ${approval.state}, but its log's last transition is to ${logged.lastTransitionTo}`,
    };
  }
  if (approval.version < version.version)
    return {
      holds: false,
      behind: true,
      why: `approval ${id} is at version ${approval.version}, but its log has reached version ${version.version} (${version.state})`,
    };
  if (approval.version > version.version)
    return {
      holds: false,
      behind: false,
      why: `approval ${id} is at version ${approval.version}, which its log never recorded (its latest is ${version.version}, ${version.state})`,
    };
  if (approvalDigest(approval) !== version.digest)
    return {
      holds: false,
      behind: false,
      why: `approval ${id} (version ${approval.version}, ${approval.state}) differs from the version its log recorded (${version.state})`,
    };
  return { holds: true };
}
