import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import type { JsonObject } from "../../core/json.ts";
import { bigRefundPolicy } from "../../testing/approval-policy.ts";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-approvals-"));
after(() => rmSync(root, { recursive: true, force: true }));

const POLICY = bigRefundPolicy("{ approver_roles: [finance], quorum: 1, timeout: 2h }");

describe("lumyn approvals, approve, reject", () => {
  it("opens an approval on decide, lists it, takes a vote, waits with an exit code that says the outcome", () => {
    writeFileSync(join(root, "policy.yml"), POLICY);
    const base = EXAMPLE_REQUESTS["refund-small"]?.request as JsonObject;
    const request = (id: string) => ({
      ...base,
      request_id: id,
      subject: { type: "agent", id: "agent-7" },
      action: { ...(base.action as JsonObject), amount: { value: 900, currency: "USD" } },
    });
    writeFileSync(join(root, "big-1.json"), JSON.stringify(request("big-1")));
    writeFileSync(join(root, "big-2.json"), JSON.stringify(request("big-2")));
    const cli = (...args: string[]) => runCli([...args, "--workspace", "ws"], { cwd: root });

    const decided = cli("decide", "big-1.json", "--policy", "policy.yml");
    assert.equal(decided.code, 0, decided.stderr);
    assert.equal(JSON.parse(decided.stdout).verdict, "ESCALATE");
    const id = /approval (\S+) WAITING_FOR_HUMAN: needs 1 of \[finance\]/.exec(decided.stderr)?.[1];
    assert.ok(id, decided.stderr);
    assert.equal(cli("decide", "big-2.json", "--policy", "policy.yml").code, 0);

    const listed = cli("approvals", "list", "--state", "WAITING_FOR_HUMAN", "--role", "finance", "--json");
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout).length, 2);
    const requester = JSON.parse(listed.stdout)[0].requester;
    assert.equal(requester.principal, `os:${userInfo().username}`, "the account that ran lumyn decide asked");
    assert.equal(cli("approvals", "list", "--state", "WAITING").code, 2, "a bad state is a usage error");

    const pending = cli("approvals", "wait", id, "--timeout", "1s");
    assert.equal(pending.code, 5, "still waiting when the wait ends");

    const own = cli("approve", id, "--actor", "agent-7", "--role", "finance", "--justification", "mine");
    assert.equal(own.code, 1);
    assert.match(
      own.stderr,
      /agent-7 is the subject of this action and may not vote on it \(separation of duties\)/,
    );
    const noWhy = cli("approve", id, "--actor", "alice", "--role", "finance", "--justification", " ");
    assert.equal(noWhy.code, 1);
    assert.match(noWhy.stderr, /a justification is required/);

    const approved = cli(
      "approve",
      id,
      "--actor",
      "alice",
      "--role",
      "finance",
      "--justification",
      "verified",
      "--json",
    );
    assert.equal(approved.code, 0, approved.stderr);
    const approval = JSON.parse(approved.stdout);
    assert.equal(approval.state, "APPROVED");
    const os = `os:${userInfo().username}`;
    assert.deepEqual(
      [approval.votes[0].actor_id, approval.votes[0].asserted_by],
      ["alice", os],
      "the CLI names the actor; the account that ran it vouches for the name",
    );
    assert.deepEqual([approval.timeline.at(-1).actor, approval.timeline.at(-1).asserted_by], ["alice", os]);
    assert.equal(approval.authority.approvers[0].asserted_by, os);
    const retried = cli(
      "approve",
      id,
      "--actor",
      "alice",
      "--role",
      "finance",
      "--justification",
      "verified",
    );
    assert.equal(retried.code, 0, "the same vote again is the same answer");
    assert.equal(cli("approvals", "wait", id).code, 0, "approved: exit 0");
    const shown = cli("approvals", "show", id);
    assert.match(shown.stdout, /vote .* alice \(asserted by os:\S+\) \[finance\] approve: verified/);
    assert.match(shown.stdout, /WAITING_FOR_HUMAN → APPROVED by alice/);
    assert.match(shown.stdout, /\(tenant \S+, subject agent-7, requested by os:\S+\)/);

    const digest = JSON.parse(decided.stdout).determinism.inputs_digest;
    const unproven = cli("approvals", "consume", id, "--actor", "agent-7");
    assert.equal(unproven.code, 2, "consuming without the action's digest is a usage error");
    assert.match(
      unproven.stderr,
      /--inputs-digest is required: consuming proves which action is about to run/,
    );
    const malformed = cli("approvals", "consume", id, "--actor", "agent-7", "--inputs-digest", "abc");
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /--inputs-digest must be sha256:<64 hex digits>, not 'abc'/);
    const another = cli(
      "approvals",
      "consume",
      id,
      "--actor",
      "agent-7",
      "--inputs-digest",
      `sha256:${"0".repeat(64)}`,
    );
    assert.equal(another.code, 1);
    assert.match(another.stderr, /is not the one approved/);
    const consume = () => cli("approvals", "consume", id, "--actor", "agent-7", "--inputs-digest", digest);
    assert.equal(consume().code, 0);
    const again = consume();
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is CONSUMED, not APPROVED/);

    const other = JSON.parse(cli("approvals", "list", "--state", "WAITING_FOR_HUMAN", "--json").stdout)[0]
      .approval_id;
    const rejected = cli(
      "reject",
      other,
      "--actor",
      "bob",
      "--role",
      "finance",
      "--justification",
      "too big",
    );
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.equal(cli("approvals", "wait", other).code, 4, "rejected: exit 4");
    assert.equal(cli("approvals", "show", "01NOPE").code, 1);
  });

  it("records overrides and cancellations as asserted by the account that ran the command", () => {
    writeFileSync(join(root, "policy.yml"), POLICY);
    const base = EXAMPLE_REQUESTS["refund-small"]?.request as JsonObject;
    const cli = (...args: string[]) => runCli([...args, "--workspace", "ws-closing"], { cwd: root });
    const opened: string[] = [];
    for (const id of ["closing-1", "closing-2"]) {
      writeFileSync(
        join(root, `${id}.json`),
        JSON.stringify({
          ...base,
          request_id: id,
          subject: { type: "agent", id: "agent-7" },
          action: { ...(base.action as JsonObject), amount: { value: 900, currency: "USD" } },
        }),
      );
      const decided = cli("decide", `${id}.json`, "--policy", "policy.yml");
      assert.equal(decided.code, 0, decided.stderr);
      opened.push(/approval (\S+) WAITING_FOR_HUMAN/.exec(decided.stderr)?.[1] as string);
    }
    const os = `os:${userInfo().username}`;
    const forced = cli(
      "approvals",
      "override",
      opened[0] as string,
      "--actor",
      "ops-lead",
      "--role",
      "override",
      "--justification",
      "outage",
      "--json",
    );
    assert.equal(forced.code, 0, forced.stderr);
    const overridden = JSON.parse(forced.stdout);
    assert.deepEqual(
      [overridden.timeline.at(-1).actor, overridden.timeline.at(-1).asserted_by],
      ["ops-lead", os],
    );
    assert.deepEqual(overridden.authority.override, {
      actor_id: "ops-lead",
      asserted_by: os,
      justification: "outage",
      at: overridden.timeline.at(-1).at,
    });
    const withdrawn = cli(
      "approvals",
      "cancel",
      opened[1] as string,
      "--actor",
      "agent-7",
      "--justification",
      "not needed",
      "--json",
    );
    assert.equal(withdrawn.code, 0, withdrawn.stderr);
    const cancelled = JSON.parse(withdrawn.stdout);
    assert.deepEqual(
      [cancelled.state, cancelled.timeline.at(-1).actor, cancelled.timeline.at(-1).asserted_by],
      ["CANCELLED", "agent-7", os],
    );
  });

  it("manages webhooks: add prints a generated secret once, list never shows it, remove and deliveries", () => {
    const cli = (...args: string[]) => runCli([...args, "--workspace", "ws"], { cwd: root });
    const added = cli("webhooks", "add", "http://127.0.0.1:9/hook", "--name", "ops");
    assert.equal(added.code, 0, added.stderr);
    const id = /added webhook (\S+)/.exec(added.stdout)?.[1] as string;
    const secret = /: (\S+)\n$/.exec(added.stdout)?.[1] as string;
    assert.ok(id && secret && secret.length >= 32);
    const listed = cli("webhooks", "list");
    assert.match(listed.stdout, new RegExp(`${id}  http://127.0.0.1:9/hook  \\(ops\\)`));
    assert.ok(!listed.stdout.includes(secret) && !cli("webhooks", "list", "--json").stdout.includes(secret));
    assert.equal(cli("webhooks", "deliveries").stdout, "no deliveries\n");
    const tokened = cli(
      "webhooks",
      "add",
      "https://user:pw@hooks.example.com/in?token=abc",
      "--secret",
      "s".repeat(20),
    );
    assert.match(tokened.stdout, /→ https:\/\/user:\*\*\*@hooks\.example\.com\/in\?…/);
    assert.ok(!cli("webhooks", "list").stdout.includes("token=abc"), "tokens in URLs are not shown");
    const bad = cli("webhooks", "add", "ftp://example.com/x");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /must be http or https/);
    assert.equal(cli("webhooks", "add", "http://x.example", "--secret", "short").code, 1);
    assert.equal(cli("webhooks", "remove", id).code, 0);
    assert.equal(cli("webhooks", "remove", id).code, 1);
  });
});
