import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { Lumyn } from "../../lumyn.ts";
import { approveChange } from "../../registry/change-review.ts";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-registry-"));
after(() => rmSync(root, { recursive: true, force: true }));

function policyFile(name: string, verdict: string): string {
  const path = join(root, `${name}.yml`);
  writeFileSync(
    path,
    `schema_version: policy.v1\npolicy_id: ${name}\npolicy_version: "1"\ndefaults: {mode: enforce, default_verdict: ${verdict}, default_reason_code: ${name.toUpperCase()}}\nrules:\n  - {id: NEVER, stage: ALLOW_PATHS, if: {evidence.never_is: 1}, then: {verdict: ALLOW, reason_codes: [NEVER]}}\n`,
  );
  return path;
}

function requestFile(tenant: string, requestId: string): string {
  const path = join(root, `${requestId}.json`);
  const request = EXAMPLE_REQUESTS["refund-small"]?.request as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({ ...request, request_id: requestId, tenant: { tenant_id: tenant } }));
  return path;
}

const ws = ["--workspace", join(root, "ws")];

describe("lumyn policy publish / activate / rollback / history", () => {
  it("publishes versions, switches a tenant's decisions, rolls back and keeps the history", () => {
    const deny = runCli([
      "policy",
      "publish",
      policyFile("denyall", "DENY"),
      "--tenant",
      "globex",
      "--json",
      ...ws,
    ]);
    assert.equal(deny.code, 0, deny.stderr);
    const denyHash = JSON.parse(deny.stdout).policy_hash as string;
    const escalate = runCli([
      "policy",
      "publish",
      policyFile("escalateall", "ESCALATE"),
      "--tenant",
      "globex",
      ...ws,
    ]);
    assert.equal(escalate.code, 0, escalate.stderr);
    assert.match(escalate.stdout, /^published escalateall 1 sha256:/);
    const escalateHash = /sha256:[0-9a-f]{64}/.exec(escalate.stdout)?.[0] as string;

    assert.equal(runCli(["policy", "activate", denyHash, "--tenant", "globex", ...ws]).code, 0);
    const activated = runCli(["policy", "activate", escalateHash.slice(7, 20), "--tenant", "globex", ...ws]);
    assert.equal(activated.code, 0, activated.stderr);
    assert.match(activated.stdout, /^activated sha256:\S+ for tenant globex \(was sha256:/);

    const decided = runCli(["decide", requestFile("globex", "g-1"), ...ws]);
    assert.equal(JSON.parse(decided.stdout).verdict, "ESCALATE");
    const other = runCli(["decide", requestFile("acme", "a-1"), ...ws]);
    assert.equal(JSON.parse(other.stdout).verdict, "ALLOW", "a tenant without a version gets the default");

    const rolledBack = runCli(["policy", "rollback", "--tenant", "globex", ...ws]);
    assert.equal(rolledBack.code, 0, rolledBack.stderr);
    const record = JSON.parse(runCli(["decide", requestFile("globex", "g-2"), ...ws]).stdout);
    assert.deepEqual([record.verdict, record.policy.policy_hash], ["DENY", denyHash]);
    const explained = runCli(["explain", JSON.parse(decided.stdout).decision_id, "--json", ...ws]);
    assert.equal(explained.code, 0, explained.stderr);

    const history = JSON.parse(runCli(["policy", "history", "--json", ...ws]).stdout);
    assert.deepEqual(history.active, { globex: denyHash });
    assert.deepEqual(
      history.events.map((event: { type: string }) => event.type),
      ["published", "published", "activated", "activated", "rolled_back"],
    );
    for (const event of history.events as { detail: { by: string; principal: string } }[])
      assert.deepEqual([event.detail.by, event.detail.principal], ["cli", `os:${userInfo().username}`]);
    const text = runCli(["policy", "history", "--tenant", "globex", ...ws]);
    assert.match(text.stdout, /active for globex: sha256:/);
    assert.match(text.stdout, new RegExp(`rolled_back .*\\(by cli os:${userInfo().username}\\)`));
  });

  it("four-eyes: activate opens a request, its requester cannot approve it, another principal can", async () => {
    const four = ["--workspace", join(root, "ws-four-eyes")];
    const me = `os:${userInfo().username}`;
    const publish = (name: string, verdict: string) => {
      const published = runCli([
        "policy",
        "publish",
        policyFile(name, verdict),
        "--tenant",
        "acme",
        "--json",
        ...four,
      ]);
      assert.equal(published.code, 0, published.stderr);
      return JSON.parse(published.stdout).policy_hash as string;
    };
    const first = publish("firstdeny", "DENY");
    assert.equal(runCli(["policy", "activate", first, "--tenant", "acme", ...four]).code, 0);
    const on = runCli(["policy", "four-eyes", "on", "--tenant", "acme", ...four]);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /four-eyes review is on for tenant acme/);

    const second = publish("secondescalate", "ESCALATE");
    const asked = runCli(["policy", "activate", second, "--tenant", "acme", ...four]);
    assert.equal(asked.code, 0, asked.stderr);
    const seq = Number(/change request #(\d+)/.exec(asked.stdout)?.[1]);
    assert.match(asked.stdout, new RegExp(`lumyn policy approve ${seq} --tenant acme`));
    const listed = JSON.parse(runCli(["policy", "requests", "--tenant", "acme", "--json", ...four]).stdout);
    assert.deepEqual(listed.requests, [
      {
        seq,
        change: "activate",
        policy_hash: second,
        expected_active: first,
        requested_by: me,
        created_at: listed.requests[0].created_at,
      },
    ]);
    assert.equal(listed.four_eyes, true);

    const self = runCli(["policy", "approve", String(seq), "--tenant", "acme", ...four]);
    assert.equal(self.code, 1);
    assert.match(
      self.stderr,
      new RegExp(`made by ${me}; ${me} reads as the same principal, and another must approve it`),
    );
    const decided = runCli(["decide", requestFile("acme", "four-1"), ...four]);
    assert.equal(JSON.parse(decided.stdout).verdict, "DENY", "the requested version is not live");

    // Another principal (here through the library, as a second operator's process would be).
    const opened = await Lumyn.open({ workspace: join(root, "ws-four-eyes") });
    assert.ok(opened.ok);
    const approved = await approveChange(opened.value.store, "acme", seq, {
      by: "cli",
      principal: "os:reviewer",
    });
    await opened.value.close();
    assert.ok(approved.ok);
    const after = runCli(["decide", requestFile("acme", "four-2"), ...four]);
    assert.equal(JSON.parse(after.stdout).verdict, "ESCALATE");

    const off = runCli(["policy", "four-eyes", "off", "--tenant", "acme", ...four]);
    assert.match(off.stdout, /opened change request #\d+ to turn four-eyes review off/);
    const offSeq = /#(\d+)/.exec(off.stdout)?.[1] as string;
    const withdrawn = runCli([
      "policy",
      "reject",
      `#${offSeq}`,
      "--tenant",
      "acme",
      "--reason",
      "not yet",
      ...four,
    ]);
    assert.equal(withdrawn.code, 0, withdrawn.stderr);
    assert.match(withdrawn.stdout, /rejected request #\d+ of os:\S+ for tenant acme: nothing changed/);
    const none = runCli(["policy", "requests", "--tenant", "acme", ...four]);
    assert.equal(none.stdout, "no open change requests for tenant acme\n");
    const history = JSON.parse(runCli(["policy", "history", "--tenant", "acme", "--json", ...four]).stdout);
    assert.deepEqual(
      history.events.map((event: { type: string }) => event.type),
      [
        "published",
        "activated",
        "settings",
        "published",
        "change_requested",
        "activated",
        "change_requested",
        "change_rejected",
      ],
    );

    const badNumber = runCli(["policy", "approve", "seven", "--tenant", "acme", ...four]);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /'seven' is not a change request number/);
    const unknown = runCli(["policy", "approve", "999", "--tenant", "acme", ...four]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /tenant 'acme' has no open change request #999/);
    const badState = runCli(["policy", "four-eyes", "maybe", "--tenant", "acme", ...four]);
    assert.equal(badState.code, 2);
  });

  it("refuses an invalid policy with file:line:col, exit 1, and publishes nothing", () => {
    const workspace = ["--workspace", join(root, "ws-bad")];
    const bad = runCli(["policy", "publish", policyFile("bad", "MAYBE"), ...workspace]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad\.yml:4:\d+/);
    assert.equal(bad.stderr.includes("    at "), false, "no stack trace");
    const history = runCli(["policy", "history", ...workspace]);
    assert.match(history.stdout, /no policy versions published yet/);
    const unknown = runCli(["policy", "activate", "abcdef", ...workspace]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no version 'abcdef' was published for tenant '\*'/);
    const nothing = runCli(["policy", "rollback", ...workspace]);
    assert.notEqual(nothing.code, 0);
    assert.match(nothing.stderr, /nothing to roll back/);
  });

  it("reports an unreachable or malformed Redis: serve exits 3 or 2, activate still activates and warns", () => {
    const workspace = ["--workspace", join(root, "ws-redis")];
    const unreachable = runCli([
      "serve",
      "--no-auth",
      "--port",
      "0",
      "--redis",
      "redis://127.0.0.1:1",
      ...workspace,
    ]);
    assert.equal(unreachable.code, 3, unreachable.stderr);
    assert.match(unreachable.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    const malformed = runCli(["serve", "--no-auth", "--redis", "http://example", ...workspace]);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /--redis: the value is not allowed \(expected a Redis URL/);
    const published = runCli([
      "policy",
      "publish",
      policyFile("holdall", "ESCALATE"),
      "--json",
      ...workspace,
    ]);
    const hash = JSON.parse(published.stdout).policy_hash as string;
    const activated = runCli(["policy", "activate", hash, "--redis", "redis://127.0.0.1:1", ...workspace]);
    assert.equal(activated.code, 0, activated.stderr);
    assert.match(
      activated.stderr,
      /warning: could not announce on Redis .* servers switch at their next poll/,
    );
    const decided = runCli(["decide", requestFile("initech", "i-1"), ...workspace]);
    assert.equal(
      JSON.parse(decided.stdout).verdict,
      "ESCALATE",
      "the registry's default replaces policy.yml",
    );
  });
});
