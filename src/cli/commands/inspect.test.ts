import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { STARTER_POLICY_HASH } from "../../assets/starter-policy.ts";
import { CLI, runCli } from "../../testing/run-cli.ts";

// init, show, explain, stats and policy validate against one workspace, as a user would chain them.
const root = mkdtempSync(join(tmpdir(), "lumyn-cli-inspect-"));
after(() => rmSync(root, { recursive: true, force: true }));
const ids: Record<string, string> = {};

before(() => {
  const init = runCli(["init", "--workspace", "ws"], { cwd: root });
  assert.equal(init.code, 0, init.stderr);
  for (const name of Object.keys(EXAMPLE_REQUESTS)) {
    const result = runCli(["decide", join("ws", "examples", `${name}.json`), "--workspace", "ws"], {
      cwd: root,
    });
    assert.equal(result.code, 0, result.stderr);
    ids[name] = JSON.parse(result.stdout).decision_id;
  }
});

describe("lumyn init", () => {
  it("writes the starter policy and examples, and keeps existing files unless --force", () => {
    assert.ok(existsSync(join(root, "ws", "policy.yml")));
    assert.match(
      readFileSync(join(root, "ws", "policy.yml"), "utf8"),
      /^# yaml-language-server: \$schema=\.\/schemas\/policy\.v1\.schema\.json\n/,
    );
    assert.ok(existsSync(join(root, "ws", "schemas", "policy.v1.schema.json")));
    assert.ok(existsSync(join(root, "ws", "lumyn.db")));
    const again = runCli(["init", "--workspace", "ws"], { cwd: root });
    assert.equal(again.code, 0);
    assert.match(again.stdout, /kept {2}ws\/policy\.yml/);
  });
});

describe("lumyn show", () => {
  it("prints the stored record, and exits 1 for an unknown id", () => {
    const shown = runCli(["show", ids["refund-small"] as string, "--workspace", "ws"], { cwd: root });
    assert.equal(shown.code, 0, shown.stderr);
    const record = JSON.parse(shown.stdout);
    assert.equal(record.verdict, "ALLOW");
    assert.equal(record.policy.policy_hash, STARTER_POLICY_HASH);
    const missing = runCli(["show", "01NOPE", "--workspace", "ws"], { cwd: root });
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "lumyn: no decision with id '01NOPE'\n");
  });
});

describe("lumyn explain", () => {
  it("shows each rule and condition with the actual value and why the verdict won", () => {
    const result = runCli(["explain", ids["refund-missing-evidence"] as string, "--workspace", "ws"], {
      cwd: root,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /verdict DENY: R001 matched with DENY\n/);
    assert.match(result.stdout, /MATCH R001 \[REQUIREMENTS\] → DENY MISSING_EVIDENCE_REFUND/);
    assert.match(result.stdout, /✓ evidence\.ticket_id == null {2}\(actual: missing\)/);
    assert.match(result.stdout, /✗ evidence\.order_id == null {2}\(actual: "82731"\)/);
    assert.match(result.stdout, /no +R030 \[ESCALATIONS\]/);
    const json = JSON.parse(
      runCli(["explain", ids["refund-large"] as string, "--workspace", "ws", "--json"], { cwd: root }).stdout,
    );
    const r030 = json.rules.find((rule: { rule_id: string }) => rule.rule_id === "R030");
    assert.deepEqual(r030.if.conditions[0], {
      key: "amount_usd_gt",
      reads: "amount_usd",
      operator: "gt",
      operand: 200,
      actual: 500,
      present: true,
      holds: true,
      pointer: "/rules/5/if/amount_usd_gt",
    });
  });
});

describe("read-only commands", () => {
  it("never create a workspace, and do not need the current policy", () => {
    const missing = runCli(["show", "01NOPE", "--workspace", "typo"], { cwd: root });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no Lumyn workspace at .*typo/);
    assert.equal(existsSync(join(root, "typo")), false);
    const policyPath = join(root, "ws", "policy.yml");
    const policy = readFileSync(policyPath, "utf8");
    writeFileSync(policyPath, "not: [a policy\n");
    try {
      assert.equal(
        runCli(["show", ids["refund-small"] as string, "--workspace", "ws"], { cwd: root }).code,
        0,
      );
      assert.equal(
        runCli(["explain", ids["refund-small"] as string, "--workspace", "ws"], { cwd: root }).code,
        0,
      );
      assert.equal(runCli(["stats", "--workspace", "ws"], { cwd: root }).code, 0);
    } finally {
      writeFileSync(policyPath, policy);
    }
  });
});

describe("lumyn stats", () => {
  it("counts by verdict, reason code and action type, as text and JSON", () => {
    const json = JSON.parse(runCli(["stats", "--workspace", "ws", "--json"], { cwd: root }).stdout);
    assert.deepEqual(json, {
      total: 4,
      by: "verdict",
      groups: { ABSTAIN: 1, ALLOW: 1, DENY: 1, ESCALATE: 1 },
    });
    const reasons = JSON.parse(
      runCli(["stats", "--workspace", "ws", "--by", "reason_code", "--since", "1h", "--json"], { cwd: root })
        .stdout,
    );
    assert.equal(reasons.total, 4);
    assert.equal(reasons.groups.REFUND_OVER_ESCALATION_LIMIT, 1);
    const text = runCli(["stats", "--workspace", "ws", "--by", "action_type"], { cwd: root });
    assert.match(text.stdout, /support\.refund\s+4\ntotal\s+4/);
    const future = JSON.parse(
      runCli(["stats", "--workspace", "ws", "--since", "2999-01-01T00:00:00Z", "--json"], { cwd: root })
        .stdout,
    );
    assert.equal(future.total, 0);
    assert.equal(runCli(["stats", "--workspace", "ws", "--by", "color"], { cwd: root }).code, 2);
    assert.equal(runCli(["stats", "--workspace", "ws", "--since", "yesterday"], { cwd: root }).code, 2);
    assert.equal(runCli(["stats", "--workspace", "ws", "--since", "99999999999999d"], { cwd: root }).code, 2);
  });
});

describe("lumyn policy validate", () => {
  it("prints id, version and hash of a valid policy", () => {
    const result = runCli(["policy", "validate", "--path", join("ws", "policy.yml")], { cwd: root });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `ok starter-policy 1.0.0 ${STARTER_POLICY_HASH} (8 rules)\n`);
  });

  it("exits 1 with every error as file:line:col, and honours a reason-code registry", () => {
    const policy = readFileSync(join(root, "ws", "policy.yml"), "utf8")
      .replace("stage: HARD_BLOCKS", "stage: HARD_BLOCK")
      .replace("verdict: ESCALATE", "verdict: ESCALTE");
    writeFileSync(join(root, "bad.yml"), policy);
    const result = runCli(["policy", "validate", "--path", "bad.yml"], { cwd: root });
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(
      lines[0] ?? "",
      /^lumyn: bad\.yml:11:20 \/defaults\/default_verdict: .*did you mean 'ESCALATE'\?\)$/,
    );
    assert.match(
      lines[1] ?? "",
      /^lumyn: bad\.yml:\d+:\d+ \/rules\/2\/stage: .*did you mean 'HARD_BLOCKS'\?\)$/,
    );

    writeFileSync(
      join(root, "registry.json"),
      JSON.stringify({ codes: [{ code: "MISSING_EVIDENCE_REFUND" }] }),
    );
    const strict = runCli(
      ["policy", "validate", "--path", join("ws", "policy.yml"), "--reason-codes", "registry.json"],
      { cwd: root },
    );
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /reason code 'NO_MATCH_DEFAULT_ESCALATE' is not in the reason-code registry/);
    assert.equal(runCli(["policy", "validate", "--path", "missing.yml"], { cwd: root }).code, 1);
    writeFileSync(join(root, "latin1.yml"), Buffer.from([0x61, 0x3a, 0x20, 0xff, 0xfe, 0x0a]));
    const latin1 = runCli(["policy", "validate", "--path", "latin1.yml"], { cwd: root });
    assert.equal(latin1.code, 1);
    assert.match(latin1.stderr, /not valid UTF-8/);
  });

  it("refuses a policy over its limits in one line, which LUMYN_POLICY_MAX_BYTES and _RULES move", () => {
    const starter = readFileSync(join(root, "ws", "policy.yml"), "utf8");
    writeFileSync(join(root, "long.yml"), `${starter}extensions: {note: "${"x".repeat(2 * 1024 * 1024)}"}\n`);
    const long = runCli(["policy", "validate", "--path", "long.yml"], { cwd: root });
    assert.equal(long.code, 1);
    assert.match(
      long.stderr,
      /^lumyn: long\.yml: policy is \d+ bytes, over the size limit of 1048576 bytes \(policy_max_bytes\) \(expected a policy of at most 1048576 bytes\)\n$/,
    );
    const raised = {
      ...process.env,
      LUMYN_POLICY_MAX_BYTES: String(4 * 1024 * 1024),
      LUMYN_POLICY_MAX_RULES: "7",
    };
    const rules = runCli(["policy", "validate", "--path", "long.yml"], { cwd: root, env: raised });
    assert.equal(rules.code, 1);
    assert.match(
      rules.stderr,
      /^lumyn: long\.yml:\d+:\d+ \/rules: policy has 8 rules, over the limit of 7 rules \(policy_max_rules\) \(expected at most 7 rules\)\n$/,
    );
    const bad = runCli(["policy", "validate", "--path", "long.yml"], {
      cwd: root,
      env: { ...process.env, LUMYN_POLICY_MAX_RULES: "lots" },
    });
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /^lumyn: LUMYN_POLICY_MAX_RULES: "lots" is not allowed \(expected a whole number from 1 to 65536\)\n$/,
    );
  });

  it("reports an alias bomb in one line", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) {
      const [name, previous] = [String.fromCharCode(97 + i), String.fromCharCode(96 + i)];
      lines.push(`${name}: &${name} [${Array(10).fill(`*${previous}`).join(", ")}]`);
    }
    writeFileSync(join(root, "bomb.yml"), `${lines.join("\n")}\n`);
    const bomb = runCli(["policy", "validate", "--path", "bomb.yml"], { cwd: root });
    assert.equal(bomb.code, 1);
    assert.equal(
      bomb.stderr,
      "lumyn: bomb.yml:5:36: document expands to more than 100000 nodes through aliases (alias expansion is bounded) (expected fewer or smaller aliases: each is a copy of its anchor's node)\n",
    );
  });
});

describe("output to a reader that stops early", () => {
  it("ends quietly instead of crashing on a closed pipe", async () => {
    const child = spawn(
      process.execPath,
      [CLI, "explain", ids["refund-large"] as string, "--workspace", "ws"],
      { cwd: root },
    );
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise((done) => child.on("close", done));
    assert.equal(stderr, "");
    assert.equal(code, 0);
  });
});

describe("lumyn demo", () => {
  it("walks a newcomer through deciding, idempotency, explaining, stats, memory and offline proof", () => {
    const result = runCli(["demo", "--workspace", "demo"], { cwd: root });
    assert.equal(result.code, 0, result.stderr);
    for (const expected of [
      /ALLOW {4}A \$20 refund/,
      /DENY {5}A refund with no ticket/,
      /ESCALATE A \$500 refund/,
      /ABSTAIN {2}A refund to a high-risk/,
      /duplicate; same id as before: true/,
      /MATCH R030/,
      /Stored so far: 4 decisions/,
      /the same refund asked again: DENY REFUND_SMALL_LOW_RISK, FAILURE_MEMORY_SIMILAR_BLOCK/,
      /\d+-byte pack: 6\/6 checks pass, replayed ESCALATE: identical/,
      /the tamper-evident log: \d+ entries chained, intact/,
    ]) {
      assert.match(result.stdout, expected);
    }
  });
});

describe("lumyn explain --policy", () => {
  it("explains a request that is not stored, and stores nothing", () => {
    const before = JSON.parse(runCli(["stats", "--workspace", "ws", "--json"], { cwd: root }).stdout).total;
    const result = runCli(
      ["explain", join("ws", "examples", "refund-large.json"), "--policy", join("ws", "policy.yml")],
      { cwd: root },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^request ws\/examples\/refund-large\.json: ESCALATE REFUND_OVER_ESCALATION_LIMIT\n/,
    );
    assert.match(result.stdout, /✓ amount_usd > 200 {2}\(actual: 500\)/);
    const json = JSON.parse(
      runCli(["explain", "-", "--policy", join("ws", "policy.yml"), "--json"], {
        cwd: root,
        input: readFileSync(join(root, "ws", "examples", "refund-small.json"), "utf8"),
      }).stdout,
    );
    assert.equal(json.verdict, "ALLOW");
    assert.equal(
      JSON.parse(runCli(["stats", "--workspace", "ws", "--json"], { cwd: root }).stdout).total,
      before,
    );
  });
});
