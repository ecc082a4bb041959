import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { verifyStoreChain } from "../audit/verify.ts";
import { digestJson, sha256 } from "../core/digest.ts";
import type { JsonObject, JsonValue } from "../core/json.ts";
import { type Actor, TIMEOUT_ACTOR, TRANSITIONS } from "../domain/approval.ts";
import { sameIdentity } from "../domain/identity.ts";
import { Lumyn } from "../lumyn.ts";
import { bigRefundPolicy } from "../testing/approval-policy.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-approvals-"));
after(() => rmSync(root, { recursive: true, force: true }));

const POLICY = bigRefundPolicy(
  "{ approver_roles: [finance], quorum: 2, timeout: 30m, on_timeout: ESCALATE, escalation_roles: [cfo] }",
);

let workspaces = 0;
function workspace(): { dir: string; policyPath: string } {
  const dir = join(root, `ws-${++workspaces}`);
  const policyPath = join(root, `policy-${workspaces}.yml`);
  writeFileSync(policyPath, POLICY);
  return { dir, policyPath };
}

/** A clock the test moves, shared by every Lumyn it opens. */
function testClock(start = "2026-11-25T09:00:00Z") {
  let now = Date.parse(start);
  return { now: () => new Date(now), advance: (minutes: number) => (now += minutes * 60_000) };
}

async function open(ws: { dir: string; policyPath: string }, clock: () => Date): Promise<Lumyn> {
  const opened = await Lumyn.open({ workspace: ws.dir, policyPath: ws.policyPath, clock });
  assert.ok(opened.ok, opened.ok ? "" : JSON.stringify(opened.problems));
  return opened.value;
}

const base = EXAMPLE_REQUESTS["refund-small"]?.request as JsonObject;
const refund = (requestId: string, amount: number): JsonValue =>
  ({
    ...base,
    request_id: requestId,
    subject: { type: "agent", id: "agent-7" },
    action: { ...(base.action as JsonObject), amount: { value: amount, currency: "USD" } },
  }) as JsonValue;

const alice: Actor = { id: "alice", roles: ["finance"] };
const bob: Actor = { id: "bob", roles: ["finance"] };
const carol: Actor = { id: "carol", roles: ["cfo"] };

describe("approvals through Lumyn and the SQLite store", () => {
  it("opens an approval with an ESCALATE, records every vote and transition in the chain, and is consumed once", async () => {
    const clock = testClock();
    const lumyn = await open(workspace(), clock.now);
    const small = await lumyn.decide(refund("r-1", 20));
    assert.ok(small.ok && small.value.approval === undefined, "an ALLOW opens nothing");
    const big = await lumyn.decide(refund("r-2", 900), { requester: { principal: "support-bot" } });
    assert.ok(big.ok);
    const approval = big.value.approval;
    assert.ok(approval, "the ESCALATE opened an approval");
    assert.deepEqual(
      [approval.requester, approval.requester_id],
      [{ principal: "support-bot" }, "agent-7"],
      "who asked, beside the subject the action is for",
    );
    assert.equal(approval.inputs_digest, big.value.record.determinism.inputs_digest);
    assert.equal(approval.record_digest, sha256(big.value.json), "the digest of the record as stored");
    const repeated = await lumyn.decide(refund("r-2", 900));
    assert.ok(repeated.ok && repeated.value.approval?.approval_id === approval.approval_id);

    clock.advance(5);
    const first = await lumyn.approvals.vote(approval.approval_id, {
      actor: alice,
      decision: "approve",
      justification: "customer verified",
      idempotencyKey: "a-1",
    });
    assert.ok(first.ok && first.value.state === "WAITING_FOR_HUMAN");
    const second = await lumyn.approvals.vote(approval.approval_id, {
      actor: bob,
      decision: "approve",
      justification: "within budget",
      idempotencyKey: "b-1",
    });
    assert.ok(second.ok && second.value.state === "APPROVED");
    const authority = second.value.authority as JsonObject;
    const { authority_digest, ...body } = authority;
    assert.equal(authority_digest, digestJson(body));
    assert.equal(authority.record_digest, approval.record_digest);

    const agent = { id: "agent-7", roles: [] };
    const unproven = await lumyn.approvals.consume(approval.approval_id, agent, "");
    assert.ok(!unproven.ok && unproven.problems[0]?.code === "inputs_digest_required");
    const other = await lumyn.approvals.consume(approval.approval_id, agent, `sha256:${"0".repeat(64)}`);
    assert.ok(!other.ok && other.problems[0]?.code === "different_action");
    const consumed = await lumyn.approvals.consume(approval.approval_id, agent, approval.inputs_digest);
    assert.ok(consumed.ok && consumed.value.state === "CONSUMED");
    const twice = await lumyn.approvals.consume(
      approval.approval_id,
      { id: "agent-7", roles: [] },
      approval.inputs_digest,
    );
    assert.ok(!twice.ok && twice.kind === "conflict");

    const events = await lumyn.store.log.events(big.value.record.decision_id);
    assert.deepEqual(
      events.map((e) => [e.type, e.data.to ?? e.data.actor_id ?? e.data.version ?? ""]),
      [
        ["approval_transition", "WAITING_FOR_HUMAN"],
        ["approval_version", 1],
        ["approval_vote", "alice"],
        ["approval_version", 2],
        ["approval_vote", "bob"],
        ["approval_transition", "APPROVED"],
        ["approval_authority", ""],
        ["approval_version", 3],
        ["approval_transition", "CONSUMED"],
        ["approval_version", 4],
      ],
    );
    assert.equal((await verifyStoreChain(lumyn.store)).broken, undefined);
    assert.equal(
      await lumyn.store.decisions.get(big.value.record.decision_id).then((r) => r?.verdict),
      "ESCALATE",
    );
    await lumyn.close();
  });

  it("resolves what fell due while nothing ran, at start: escalates once, then fails closed as system:timeout", async () => {
    const clock = testClock();
    const ws = workspace();
    let lumyn = await open(ws, clock.now);
    const big = await lumyn.decide(refund("r-1", 900));
    assert.ok(big.ok && big.value.approval);
    const id = big.value.approval.approval_id;
    await lumyn.close();

    clock.advance(31);
    lumyn = await open(ws, clock.now);
    const escalated = await lumyn.approvals.get(id);
    assert.ok(escalated.ok);
    assert.deepEqual([escalated.value.state, escalated.value.approver_roles], ["WAITING_FOR_HUMAN", ["cfo"]]);
    const early = await lumyn.approvals.vote(id, {
      actor: alice,
      decision: "approve",
      justification: "x",
      idempotencyKey: "a",
    });
    assert.ok(!early.ok && early.kind === "forbidden", "after escalating, only the escalation roles vote");
    await lumyn.close();

    clock.advance(31);
    lumyn = await open(ws, clock.now);
    const closed = await lumyn.approvals.get(id);
    assert.ok(closed.ok);
    assert.deepEqual([closed.value.state, closed.value.outcome], ["TIMED_OUT", "DENY"]);
    assert.equal(closed.value.timeline.at(-1)?.actor, TIMEOUT_ACTOR);
    const late = await lumyn.approvals.vote(id, {
      actor: carol,
      decision: "approve",
      justification: "x",
      idempotencyKey: "c",
    });
    assert.ok(!late.ok && late.kind === "conflict");
    await lumyn.close();
  });

  it("lets exactly one of two racing processes resolve an approval", async () => {
    const clock = testClock();
    const ws = workspace();
    const first = await open(ws, clock.now);
    const second = await open(ws, clock.now);
    const big = await first.decide(refund("r-1", 900));
    assert.ok(big.ok && big.value.approval);
    const id = big.value.approval.approval_id;
    await first.approvals.vote(id, {
      actor: alice,
      decision: "approve",
      justification: "ok",
      idempotencyKey: "a",
    });
    const results = await Promise.all([
      first.approvals.vote(id, { actor: bob, decision: "approve", justification: "ok", idempotencyKey: "b" }),
      second.approvals.vote(id, {
        actor: { id: "dave", roles: ["finance"] },
        decision: "reject",
        justification: "no",
        idempotencyKey: "d",
      }),
    ]);
    assert.equal(results.filter((r) => r.ok).length, 1, "one vote wins, the other finds the approval closed");
    const final = await second.approvals.get(id);
    assert.ok(final.ok);
    const terminal = final.value.timeline.filter((t) => t.to === "APPROVED" || t.to === "REJECTED");
    assert.equal(terminal.length, 1);
    await first.close();
    await second.close();
  });

  it("keeps every invariant under random votes, time and restarts against the real store", async () => {
    const actors: Actor[] = [
      alice,
      bob,
      carol,
      { id: "agent-7", roles: ["finance"] },
      { id: "Agent-7 ", roles: ["finance", "override"] },
      { id: "ops", roles: ["override"] },
    ];
    const command = fc.oneof(
      fc.record({
        kind: fc.constant("vote" as const),
        actor: fc.integer({ min: 0, max: actors.length - 1 }),
        decision: fc.constantFrom("approve" as const, "reject" as const),
        key: fc.integer({ min: 0, max: 4 }),
      }),
      fc.record({ kind: fc.constant("wait" as const), minutes: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant("restart" as const) }),
      fc.record({
        kind: fc.constantFrom("override" as const, "consume" as const),
        actor: fc.integer({ min: 0, max: actors.length - 1 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 12 }), async (commands) => {
        const clock = testClock();
        const ws = workspace();
        let lumyn = await open(ws, clock.now);
        const big = await lumyn.decide(refund("r-1", 900));
        assert.ok(big.ok && big.value.approval);
        const id = big.value.approval.approval_id;
        let consumed = 0;
        try {
          for (const c of commands) {
            if (c.kind === "wait") clock.advance(c.minutes);
            else if (c.kind === "restart") {
              await lumyn.close();
              lumyn = await open(ws, clock.now);
            } else {
              const actor = actors[c.actor] as Actor;
              const result =
                c.kind === "vote"
                  ? await lumyn.approvals.vote(id, {
                      actor,
                      decision: c.decision,
                      justification: "j",
                      idempotencyKey: `k${c.key}`,
                    })
                  : c.kind === "override"
                    ? await lumyn.approvals.override(id, actor, "j")
                    : await lumyn.approvals.consume(id, actor, big.value.record.determinism.inputs_digest);
              if (c.kind === "consume" && result.ok) consumed++;
            }
          }
          const stored = await lumyn.approvals.get(id);
          assert.ok(stored.ok);
          const approval = stored.value;
          for (const step of approval.timeline.slice(1))
            assert.ok(
              step.from !== null && TRANSITIONS[step.from].includes(step.to),
              `${step.from} → ${step.to}`,
            );
          assert.ok(consumed <= 1);
          for (const v of approval.votes)
            assert.ok(!sameIdentity(v.actor_id, "agent-7"), `separation of duties: ${v.actor_id} voted`);
          for (const step of approval.timeline)
            if (step.to === "OVERRIDDEN")
              assert.ok(!sameIdentity(step.actor, "agent-7"), `separation of duties: ${step.actor} overrode`);
          const events = await lumyn.store.log.events(big.value.record.decision_id);
          assert.equal(
            events.filter((e) => e.type === "approval_transition").length,
            approval.timeline.length,
            "every transition is an event",
          );
          assert.equal(events.filter((e) => e.type === "approval_vote").length, approval.votes.length);
          assert.equal((await verifyStoreChain(lumyn.store)).broken, undefined);
        } finally {
          await lumyn.close();
        }
      }),
      { numRuns: 25, seed: 11 },
    );
  });
});
