import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { digestJson } from "../core/digest.ts";
import type { JsonObject } from "../core/json.ts";
import type { ApprovalSettings } from "./approval.ts";
import {
  type Actor,
  APPROVAL_STATES,
  type Approval,
  type CommandResult,
  cancel,
  consume,
  expire,
  openApproval,
  override,
  TIMEOUT_ACTOR,
  TRANSITIONS,
  vote,
} from "./approval.ts";
import { identityKey, sameIdentity } from "./identity.ts";

const T0 = new Date("2026-11-25T10:00:00Z");
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);
const SETTINGS: ApprovalSettings = {
  approverRoles: ["finance"],
  quorum: 2,
  timeout: "30m",
  timeoutMs: 30 * 60_000,
  onTimeout: "ESCALATE",
  escalationRoles: ["cfo"],
  separationOfDuties: true,
};

function open(settings: ApprovalSettings = SETTINGS): Approval {
  return openApproval(
    {
      approvalId: "ap-1",
      decisionId: "d-1",
      tenantId: "acme",
      inputsDigest: "sha256:in",
      recordDigest: "sha256:rec",
      policyHash: "sha256:pol",
      requesterId: "agent-7",
      requester: { principal: "support-bot", keyId: "01KEY" },
      settings,
    },
    T0,
  );
}

const alice: Actor = { id: "alice", roles: ["finance"] };
const bob: Actor = { id: "bob", roles: ["finance", "auditor"] };
const carol: Actor = { id: "carol", roles: ["cfo"] };

function applied(result: CommandResult): Approval {
  assert.ok(result.ok, result.ok ? "" : JSON.stringify(result.problems));
  return result.value.approval;
}

function refusal(result: CommandResult): [string, string | undefined] {
  assert.ok(!result.ok, "expected a refusal");
  return [result.kind, result.problems[0]?.code];
}

describe("approval lifecycle", () => {
  it("approves at quorum, with an authority record that names every approver and proves itself", () => {
    let approval = open();
    approval = applied(
      vote(
        approval,
        { actor: alice, decision: "approve", justification: "ok", idempotencyKey: "k1" },
        minutes(1),
      ),
    );
    assert.equal(approval.state, "WAITING_FOR_HUMAN", "one approval of two");
    approval = applied(
      vote(
        approval,
        { actor: bob, decision: "approve", justification: "fine", idempotencyKey: "k2" },
        minutes(2),
      ),
    );
    assert.equal(approval.state, "APPROVED");
    assert.equal(approval.outcome, "ALLOW");
    const authority = approval.authority as JsonObject;
    assert.equal(authority.schema_version, "authority_record.v1");
    assert.deepEqual(
      (authority.approvers as JsonObject[]).map((a) => [a.actor_id, a.decision, a.justification]),
      [
        ["alice", "approve", "ok"],
        ["bob", "approve", "fine"],
      ],
    );
    const { authority_digest, ...body } = authority;
    assert.equal(authority_digest, digestJson(body));
    const consumed = applied(consume(approval, { id: "agent-7", roles: [] }, "sha256:in", minutes(3)));
    assert.equal(consumed.state, "CONSUMED");
    assert.deepEqual(refusal(consume(consumed, { id: "agent-7", roles: [] }, "sha256:in", minutes(4))), [
      "conflict",
      "not_approved",
    ]);
  });

  it("enforces roles, separation of duties, one vote per approver, justifications and idempotency keys", () => {
    const approval = open();
    const cast = (
      actor: Actor,
      key: string,
      justification = "because",
      decision: "approve" | "reject" = "approve",
    ) => vote(approval, { actor, decision, justification, idempotencyKey: key }, minutes(1));
    assert.deepEqual(refusal(cast(carol, "k")), ["forbidden", "not_an_approver"]);
    assert.deepEqual(refusal(cast({ id: "agent-7", roles: ["finance"] }, "k")), [
      "forbidden",
      "separation_of_duties",
    ]);
    assert.deepEqual(refusal(cast(alice, "k", "  ")), ["invalid_request", "justification_required"]);
    const once = applied(cast(alice, "k1"));
    const retried = vote(
      once,
      { actor: alice, decision: "approve", justification: "because", idempotencyKey: "k1" },
      minutes(2),
    );
    assert.ok(retried.ok && retried.value.replayed && retried.value.approval === once);
    assert.deepEqual(
      refusal(
        vote(
          once,
          { actor: alice, decision: "reject", justification: "no", idempotencyKey: "k1" },
          minutes(2),
        ),
      ),
      ["conflict", "idempotency_conflict"],
    );
    assert.deepEqual(
      refusal(
        vote(
          once,
          { actor: alice, decision: "approve", justification: "again", idempotencyKey: "k9" },
          minutes(2),
        ),
      ),
      ["conflict", "already_voted"],
    );
    const rejected = applied(
      vote(
        once,
        { actor: bob, decision: "reject", justification: "too big", idempotencyKey: "k2" },
        minutes(2),
      ),
    );
    assert.deepEqual([rejected.state, rejected.outcome], ["REJECTED", "DENY"]);
    assert.deepEqual(
      refusal(
        vote(
          rejected,
          { actor: carol, decision: "approve", justification: "x", idempotencyKey: "k3" },
          minutes(3),
        ),
      ),
      ["conflict", "closed"],
    );
  });

  it("escalates once on timeout, then fails closed; a vote after the deadline applies the timeout and is refused", () => {
    const approval = applied(
      vote(
        open(),
        { actor: alice, decision: "approve", justification: "ok", idempotencyKey: "k1" },
        minutes(1),
      ),
    );
    const late = vote(
      approval,
      { actor: bob, decision: "approve", justification: "ok", idempotencyKey: "k2" },
      minutes(31),
    );
    assert.deepEqual(refusal(late), ["conflict", "escalated"]);
    const escalated = late.applied?.approval as Approval;
    assert.deepEqual(
      [escalated.state, escalated.approver_roles, escalated.deadline],
      ["WAITING_FOR_HUMAN", ["cfo"], minutes(61).toISOString()],
    );
    assert.deepEqual(
      escalated.timeline.slice(-2).map((t) => [t.from, t.to, t.actor]),
      [
        ["WAITING_FOR_HUMAN", "ESCALATED", TIMEOUT_ACTOR],
        ["ESCALATED", "WAITING_FOR_HUMAN", TIMEOUT_ACTOR],
      ],
    );
    const half = applied(
      vote(
        escalated,
        { actor: carol, decision: "approve", justification: "cfo ok", idempotencyKey: "k3" },
        minutes(40),
      ),
    );
    assert.equal(
      half.state,
      "WAITING_FOR_HUMAN",
      "the first round's approval does not count after escalating",
    );
    const timedOut = expire(half, minutes(61)).approval;
    assert.deepEqual([timedOut.state, timedOut.outcome], ["TIMED_OUT", "DENY"]);
    assert.equal(
      timedOut.timeline.at(-1)?.actor,
      TIMEOUT_ACTOR,
      "a timeout is never recorded as a human rejection",
    );
    assert.deepEqual(
      timedOut.authority?.approvers,
      [
        {
          actor_id: "carol",
          roles: ["cfo"],
          decision: "approve",
          justification: "cfo ok",
          at: minutes(40).toISOString(),
          round: 1,
        },
        {
          actor_id: "alice",
          roles: ["finance"],
          decision: "approve",
          justification: "ok",
          at: minutes(1).toISOString(),
          round: 0,
        },
      ].sort((a, b) => a.round - b.round),
    );
  });

  it("keeps the requester and the subject from voting and overriding, look-alikes of them included", () => {
    const approval = open();
    const voteAs = (id: string) =>
      vote(
        approval,
        { actor: { id, roles: ["finance"] }, decision: "approve", justification: "ok", idempotencyKey: id },
        minutes(1),
      );
    for (const id of [
      "support-bot",
      "Support-Bot",
      "support-bot ",
      "agent-7",
      "AGENT-7",
      "agent\u20107",
      "\uff41gent-7",
    ])
      assert.deepEqual(refusal(voteAs(id)), ["forbidden", "separation_of_duties"], JSON.stringify(id));
    const lookalike = voteAs("Support-Bot");
    assert.ok(!lookalike.ok);
    assert.equal(
      lookalike.problems[0]?.message,
      "Support-Bot reads as support-bot, the requester of this action, and may not vote on it (separation of duties)",
    );
    const subject = voteAs("agent-7");
    assert.ok(!subject.ok);
    assert.equal(
      subject.problems[0]?.message,
      "agent-7 is the subject of this action and may not vote on it (separation of duties)",
    );
    assert.deepEqual(
      refusal(override(approval, { id: "support-bot", roles: ["override"] }, "urgent", minutes(1))),
      ["forbidden", "separation_of_duties"],
    );
    assert.deepEqual(
      refusal(override(approval, { id: "Agent-7", roles: ["override"] }, "urgent", minutes(1))),
      ["forbidden", "separation_of_duties"],
    );
    for (const id of ["support-bot", "Support-Bot", "agent-7", "Agent-7"])
      assert.equal(applied(cancel(approval, { id, roles: [] }, "withdrawn", minutes(1))).state, "CANCELLED");

    const waived = open({ ...SETTINGS, quorum: 1, separationOfDuties: false });
    assert.equal(
      applied(override(waived, { id: "support-bot", roles: ["override"] }, "mine", minutes(1))).state,
      "OVERRIDDEN",
      "a policy that waives separation of duties lets the requester through",
    );

    const once = applied(
      vote(
        approval,
        { actor: alice, decision: "approve", justification: "ok", idempotencyKey: "a" },
        minutes(1),
      ),
    );
    const twice = vote(
      once,
      {
        actor: { id: "Alice", roles: ["finance"] },
        decision: "approve",
        justification: "ok",
        idempotencyKey: "b",
      },
      minutes(2),
    );
    assert.deepEqual(refusal(twice), ["conflict", "already_voted"], "one person, one vote, however spelt");
  });

  it("records an override as an override, and binds consumption to the exact action and the deadline", () => {
    const approval = open({ ...SETTINGS, onTimeout: "DENY", escalationRoles: [] });
    assert.deepEqual(refusal(override(approval, alice, "urgent", minutes(1))), [
      "forbidden",
      "not_an_overrider",
    ]);
    const asserted = applied(
      vote(
        open({ ...SETTINGS, quorum: 1 }),
        {
          actor: { id: "alice", roles: ["finance"], assertedBy: "os:ops" },
          decision: "approve",
          justification: "ok",
          idempotencyKey: "k",
        },
        minutes(1),
      ),
    );
    assert.deepEqual(
      [asserted.votes[0]?.asserted_by, asserted.timeline.at(-1)?.asserted_by],
      ["os:ops", "os:ops"],
      "a named actor is recorded with who vouched for the name",
    );
    assert.equal(((asserted.authority as JsonObject).approvers as JsonObject[])[0]?.asserted_by, "os:ops");
    const forced = applied(override(approval, { id: "ops-lead", roles: ["override"] }, "outage", minutes(1)));
    assert.deepEqual([forced.state, forced.outcome], ["OVERRIDDEN", "ALLOW"]);
    assert.deepEqual(forced.authority?.approvers, []);
    assert.deepEqual(forced.authority?.override, {
      actor_id: "ops-lead",
      justification: "outage",
      at: minutes(1).toISOString(),
    });
    assert.deepEqual(refusal(consume(forced, alice, "sha256:other", minutes(2))), [
      "conflict",
      "different_action",
    ]);
    assert.deepEqual(
      refusal(consume(forced, alice, " ", minutes(31))),
      ["invalid_request", "inputs_digest_required"],
      "without the action's digest nothing is consumed, nor changed",
    );
    assert.equal(consume(forced, alice, "", minutes(31)).applied, undefined);
    const expired = consume(forced, alice, "sha256:in", minutes(31));
    assert.deepEqual(refusal(expired), ["conflict", "expired"]);
    assert.deepEqual(
      [expired.applied?.approval.state, expired.applied?.approval.outcome],
      ["TIMED_OUT", "DENY"],
      "not used in time: the action may no longer happen",
    );
    assert.deepEqual(refusal(cancel(open(), carol, "not mine to stop", minutes(1))), [
      "forbidden",
      "not_a_canceller",
    ]);
    const cancelled = applied(cancel(open(), { id: "agent-7", roles: [] }, "agent withdrew", minutes(1)));
    assert.deepEqual([cancelled.state, cancelled.outcome], ["CANCELLED", "DENY"]);
  });

  it("keeps every invariant under random sequences of votes, overrides, cancels, consumes and time", () => {
    const actors: Actor[] = [
      alice,
      bob,
      carol,
      { id: "Alice", roles: ["finance"] },
      { id: "agent-7", roles: ["finance"] },
      { id: "Agent\u20107", roles: ["finance", "override"] },
      { id: "support-bot", roles: ["finance", "override"] },
      { id: "ops", roles: ["override"] },
    ];
    const command = fc.oneof(
      fc.record({
        kind: fc.constant("vote" as const),
        actor: fc.integer({ min: 0, max: actors.length - 1 }),
        decision: fc.constantFrom("approve" as const, "reject" as const),
        key: fc.integer({ min: 0, max: 6 }),
        justification: fc.constantFrom("ok", "", "fine"),
      }),
      fc.record({ kind: fc.constant("wait" as const), minutes: fc.integer({ min: 1, max: 40 }) }),
      fc.record({
        kind: fc.constantFrom("override" as const, "cancel" as const, "consume" as const),
        actor: fc.integer({ min: 0, max: actors.length - 1 }),
      }),
    );
    const settings = fc.record({
      quorum: fc.integer({ min: 1, max: 3 }),
      onTimeout: fc.constantFrom("DENY" as const, "ESCALATE" as const),
      separationOfDuties: fc.boolean(),
    });
    fc.assert(
      fc.property(settings, fc.array(command, { maxLength: 40 }), (chosen, commands) => {
        let approval = open({ ...SETTINGS, ...chosen });
        let clock = 0;
        let consumed = 0;
        for (const c of commands) {
          const before = approval;
          const now = minutes(clock);
          let result: CommandResult | undefined;
          if (c.kind === "wait") {
            clock += c.minutes;
            approval = expire(approval, minutes(clock)).approval;
          } else {
            const actor = actors[c.actor] as Actor;
            result =
              c.kind === "vote"
                ? vote(
                    approval,
                    {
                      actor,
                      decision: c.decision,
                      justification: c.justification,
                      idempotencyKey: `k${c.key}`,
                    },
                    now,
                  )
                : c.kind === "override"
                  ? override(approval, actor, "why", now)
                  : c.kind === "cancel"
                    ? cancel(approval, actor, "why", now)
                    : consume(approval, actor, "sha256:in", now);
            if (result.ok) approval = result.value.approval;
            else if (result.applied) approval = result.applied.approval;
            if (c.kind === "consume" && result.ok) consumed++;
          }
          if (approval !== before)
            assert.ok(approval.version > before.version, "every change bumps the version");
          if (TRANSITIONS[before.state].length === 0)
            assert.equal(approval, before, "terminal states are final");
        }
        assert.ok(APPROVAL_STATES.includes(approval.state));
        for (const step of approval.timeline.slice(1))
          assert.ok(
            step.from !== null && TRANSITIONS[step.from].includes(step.to),
            `${step.from} → ${step.to}`,
          );
        assert.ok(consumed <= 1, "consumed at most once");
        const round = approval.votes.filter((v) => v.round === approval.escalations);
        assert.equal(
          new Set(round.map((v) => identityKey(v.actor_id))).size,
          round.length,
          "one vote per approver and round, however spelt",
        );
        const requesterSide = (id: string) => sameIdentity(id, "agent-7") || sameIdentity(id, "support-bot");
        for (const v of approval.votes) {
          assert.notEqual(v.justification.trim(), "");
          if (chosen.separationOfDuties) assert.ok(!requesterSide(v.actor_id), `${v.actor_id} voted`);
        }
        if (chosen.separationOfDuties)
          for (const step of approval.timeline)
            if (step.to === "OVERRIDDEN") assert.ok(!requesterSide(step.actor), `${step.actor} overrode`);
        const resolvedBy = approval.timeline.find((t) =>
          ["APPROVED", "REJECTED", "TIMED_OUT", "OVERRIDDEN", "CANCELLED"].includes(t.to),
        );
        assert.equal(
          approval.outcome !== undefined,
          resolvedBy !== undefined,
          "an outcome exactly when resolved",
        );
        if (resolvedBy?.to === "APPROVED") {
          const approvers = round.filter((v) => v.decision === "approve");
          assert.ok(approvers.length >= chosen.quorum, "approved only at quorum");
        }
        if (resolvedBy?.to === "TIMED_OUT") assert.equal(resolvedBy.actor, TIMEOUT_ACTOR);
        if (approval.authority) {
          const { authority_digest, ...body } = approval.authority;
          assert.equal(authority_digest, digestJson(body));
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});
