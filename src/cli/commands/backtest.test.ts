import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-backtest-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A candidate that allows everything: one rule that never matches, and ALLOW by default. */
const ALLOW_ALL = `schema_version: policy.v1
policy_id: allow-all
policy_version: "2.0.0"
defaults: { mode: enforce, default_verdict: ALLOW, default_reason_code: ALLOW_BY_DEFAULT }
rules:
  - id: NEVER
    stage: HARD_BLOCKS
    when: { action_type: nothing.ever }
    then: { verdict: DENY, reason_codes: [NEVER] }
`;
const ids: Record<string, string> = {};

function cli(...args: string[]) {
  return runCli(args, { cwd: root });
}

before(() => {
  assert.equal(cli("init", "--workspace", "ws").code, 0);
  for (const name of Object.keys(EXAMPLE_REQUESTS)) {
    const decided = cli("decide", join("ws", "examples", `${name}.json`), "--workspace", "ws");
    const record = JSON.parse(decided.stdout);
    ids[record.verdict] = record.decision_id;
  }
  assert.equal(cli("label", ids.ALLOW as string, "--label", "failure", "--workspace", "ws").code, 0);
  const request = JSON.parse(readFileSync(join(root, "ws", "examples", "refund-small.json"), "utf8"));
  writeFileSync(join(root, "look-alike.json"), JSON.stringify({ ...request, request_id: "look-alike" }));
  const lookAlike = JSON.parse(cli("decide", "look-alike.json", "--workspace", "ws").stdout);
  assert.deepEqual(lookAlike.reason_codes, ["REFUND_SMALL_LOW_RISK", "FAILURE_MEMORY_SIMILAR_BLOCK"]);
  ids.memory = lookAlike.decision_id;
  writeFileSync(join(root, "allow-all.yml"), ALLOW_ALL);
  writeFileSync(
    join(root, "requests.jsonl"),
    `${Object.values(EXAMPLE_REQUESTS)
      .map((example) => JSON.stringify(example.request))
      .join("\n")}\n`,
  );
});

function backtest(...args: string[]) {
  const result = cli("backtest", "--workspace", "ws", "--policy", "allow-all.yml", "--json", ...args);
  return { ...result, report: result.stdout ? JSON.parse(result.stdout) : undefined };
}

describe("lumyn backtest", () => {
  it("re-decides history under the candidate with memory as recorded: a known transition matrix", () => {
    const { code, report, stderr } = backtest();
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "", "no progress bar when stderr is not a terminal");
    assert.equal(report.total, 5);
    assert.deepEqual(report.matrix, {
      ALLOW: { ALLOW: 1, DENY: 0, ESCALATE: 0, ABSTAIN: 0 },
      DENY: { ALLOW: 1, DENY: 1, ESCALATE: 0, ABSTAIN: 0 },
      ESCALATE: { ALLOW: 1, DENY: 0, ESCALATE: 0, ABSTAIN: 0 },
      ABSTAIN: { ALLOW: 1, DENY: 0, ESCALATE: 0, ABSTAIN: 0 },
    });
    assert.deepEqual(report.reason_codes.gained, { ALLOW_BY_DEFAULT: 5 });
    assert.deepEqual(report.reason_codes.lost, {
      MISSING_EVIDENCE_REFUND: 1,
      PAYMENT_INSTRUMENT_HIGH_RISK: 1,
      REFUND_OVER_ESCALATION_LIMIT: 1,
      REFUND_SMALL_LOW_RISK: 2,
    });
    assert.deepEqual(
      report.top_changed
        .slice(0, 3)
        .map((change: { id: string; from: string; to: string }) => [change.id, change.from, change.to]),
      [
        [ids.ABSTAIN, "ABSTAIN", "ALLOW"],
        [ids.DENY, "DENY", "ALLOW"],
        [ids.ESCALATE, "ESCALATE", "ALLOW"],
      ],
      "loosened verdicts first, the most loosened first",
    );
  });

  it("prints a matrix for people and gates CI with --fail-on", () => {
    const text = cli(
      "backtest",
      "--workspace",
      "ws",
      "--policy",
      "allow-all.yml",
      "--fail-on",
      "DENY>ALLOW,ALLOW>DENY",
    );
    assert.equal(text.code, 1);
    assert.match(
      text.stdout,
      /^re-decided 5 stored decisions under allow-all 2\.0\.0 \(sha256:\w+\)\nchanged 5 \(100\.0%\)\n/,
    );
    assert.match(text.stdout, /\nDENY +1 +1 +0 +0\n/);
    assert.match(text.stdout, /\nfail-on DENY>ALLOW,ALLOW>DENY: DENY>ALLOW 1\n$/);
    const any = backtest("--fail-on", "*>ALLOW");
    assert.equal(any.code, 1);
    assert.deepEqual(
      any.report.fail_on.triggered.map((t: { from: string }) => t.from),
      ["DENY", "ESCALATE", "ABSTAIN"],
    );
    assert.equal(backtest("--fail-on", "ALLOW>DENY").code, 0);
  });

  it("selects by time, tenant and limit", () => {
    assert.equal(backtest("--limit", "2").report.total, 2);
    assert.equal(backtest("--tenant", "globex").report.total, 0);
    assert.equal(backtest("--tenant", "acme").report.total, 5);
    assert.equal(backtest("--since", "2999-01-01T00:00:00Z").report.total, 0);
    assert.equal(backtest("--until", "2000-01-01T00:00:00Z").report.total, 0);
    assert.equal(backtest("--since", "1h").report.total, 5);
  });

  it("runs a file of requests against the workspace policy or --baseline", () => {
    const { code, report } = backtest("--requests", "requests.jsonl");
    assert.equal(code, 0);
    assert.equal(report.total, 4);
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(report.matrix).map(([from, row]) => [from, (row as Record<string, number>).ALLOW]),
      ),
      { ALLOW: 1, DENY: 1, ESCALATE: 1, ABSTAIN: 1 },
    );
    const same = backtest("--requests", "requests.jsonl", "--baseline", "allow-all.yml");
    assert.equal(same.report.changed, 0);
  });

  it("refuses bad input with a pointed error and changes nothing", () => {
    const head = JSON.parse(cli("verify", "--workspace", "ws", "--json").stdout);
    const badGate = cli(
      "backtest",
      "--workspace",
      "ws",
      "--policy",
      "allow-all.yml",
      "--fail-on",
      "DENY>MAYBE",
    );
    assert.equal(badGate.code, 2);
    assert.match(badGate.stderr, /^lumyn: 'DENY>MAYBE' is not a verdict change \(expected FROM>TO/);
    writeFileSync(
      join(root, "broken.yml"),
      ALLOW_ALL.replace("default_verdict: ALLOW", "default_verdict: ALOW"),
    );
    const badPolicy = cli("backtest", "--workspace", "ws", "--policy", "broken.yml");
    assert.equal(badPolicy.code, 1);
    assert.match(badPolicy.stderr, /^lumyn: broken\.yml:4:\d+ \/defaults\/default_verdict: /);
    writeFileSync(
      join(root, "bad.jsonl"),
      `${JSON.stringify(EXAMPLE_REQUESTS["refund-small"]?.request)}\n{"schema_version": 1}\n`,
    );
    const badLine = cli(
      "backtest",
      "--workspace",
      "ws",
      "--policy",
      "allow-all.yml",
      "--requests",
      "bad.jsonl",
    );
    assert.equal(badLine.code, 1);
    assert.match(badLine.stderr, /^lumyn: bad\.jsonl:2 \/subject: 'subject' is required/);
    assert.equal(
      cli("backtest", "--workspace", "ws", "--policy", "allow-all.yml", "--baseline", "allow-all.yml").code,
      2,
    );
    assert.equal(cli("backtest", "--workspace", "ws", "--policy", "allow-all.yml", "--limit", "0").code, 2);
    assert.equal(
      cli("backtest", "--workspace", "ws", "--policy", "allow-all.yml", "--requests", "missing.jsonl").code,
      2,
    );
    assert.equal(cli("backtest", "--workspace", "nowhere", "--policy", "allow-all.yml").code, 1);
    assert.deepEqual(JSON.parse(cli("verify", "--workspace", "ws", "--json").stdout), head);
  });
});
