import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
before(() => assert.equal(runCli(["init", "--workspace", "ws"], { cwd: root }).code, 0));

describe("lumyn test", () => {
  it("passes the starter policy's own tests, covering every rule", () => {
    const result = runCli(["test", "--workspace", "ws", "--coverage", "--min-coverage", "100"], {
      cwd: root,
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /✓ a large refund goes to a person/);
    assert.match(result.stdout, /coverage: rules 8\/8 \(100\.0%\)/);
    assert.match(result.stdout, /\n10 passed, 0 failed\n$/);
  });

  it("shows expected against actual and the rules involved for a failing case, and exits 1", () => {
    writeFileSync(
      join(root, "ws", "wrong.test.yml"),
      `policy: policy.yml
defaults: { schema_version: decision_request.v1, subject: { type: agent, id: a }, context: { mode: digest_only, digest: "sha256:${"0".repeat(64)}" } }
cases:
  - name: large refunds are allowed (they are not)
    request: { action: { type: support.refund, intent: x, amount: { value: 500, currency: USD } }, evidence: { ticket_id: t, order_id: o, customer_id: c } }
    expect: { verdict: ALLOW, reason_codes: { contains: [REFUND_SMALL_LOW_RISK] }, matched_rules: [R050] }
  - name: from a file
    request_file: examples/refund-large.json
    expect: { verdict: ESCALATE }
`,
    );
    const junit = join(root, "report.xml");
    const result = runCli(["test", join("ws", "wrong.test.yml"), "--junit", junit], { cwd: root });
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /✗ large refunds are allowed \(they are not\)\n {6}verdict {8}expected "ALLOW", got "ESCALATE"/,
    );
    assert.match(
      result.stdout,
      /reason_codes {3}expected \{"contains":\["REFUND_SMALL_LOW_RISK"\]\}, got \["REFUND_OVER_ESCALATION_LIMIT"\]/,
    );
    assert.match(result.stdout, /MATCH R030 \[ESCALATIONS\]/);
    assert.match(result.stdout, /no +R050 \[ALLOW_PATHS\][\s\S]*✗ amount_usd <= 25 {2}\(actual: 500\)/);
    assert.match(result.stdout, /✓ from a file/);
    assert.match(result.stdout, /\n1 passed, 1 failed\n$/);
    const xml = readFileSync(junit, "utf8");
    assert.match(xml, /<testsuite name="ws\/wrong\.test\.yml" tests="2" failures="1"/);
    assert.match(xml, /<failure message="verdict, reason_codes, matched_rules">/);
    const json = JSON.parse(runCli(["test", join("ws", "wrong.test.yml"), "--json"], { cwd: root }).stdout);
    assert.deepEqual([json.passed, json.failed], [1, 1]);
    assert.deepEqual(json.files[0].cases[0].mismatches[0], {
      field: "verdict",
      expected: "ALLOW",
      actual: "ESCALATE",
    });
    rmSync(join(root, "ws", "wrong.test.yml"));
  });

  it("fails below --min-coverage and lists rules never matched", () => {
    writeFileSync(
      join(root, "ws", "thin.test.yml"),
      `policy: policy.yml
cases:
  - name: only the default
    request: { schema_version: decision_request.v1, subject: { type: agent, id: a }, action: { type: other.thing, intent: x }, context: { mode: digest_only, digest: "sha256:${"0".repeat(64)}" } }
    expect: { matched_rules: [DEFAULT] }
`,
    );
    const result = runCli(["test", join("ws", "thin.test.yml"), "--min-coverage", "50"], { cwd: root });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /R001 +REQUIREMENTS +0 cases {2}← never matched/);
    assert.match(
      result.stdout,
      /coverage of policy starter-policy 1\.0\.0: 0\.0% of rules matched, below --min-coverage 50%/,
    );
    rmSync(join(root, "ws", "thin.test.yml"));
  });

  it("fails a case whose request file is missing, and runs the others", () => {
    writeFileSync(
      join(root, "ws", "files.test.yml"),
      "policy: policy.yml\ncases:\n  - { name: missing file, request_file: nope.json, expect: { verdict: ALLOW } }\n  - { name: real file, request_file: examples/refund-large.json, expect: { verdict: ESCALATE } }\n",
    );
    const result = runCli(["test", join("ws", "files.test.yml")], { cwd: root });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /✗ missing file\n {6}request: cannot read .*nope\.json/);
    assert.match(result.stdout, /✓ real file\n1 passed, 1 failed\n$/);
    rmSync(join(root, "ws", "files.test.yml"));
  });

  it("reports a malformed test file with line:col and runs nothing", () => {
    writeFileSync(
      join(root, "bad.test.yml"),
      "policy: ws/policy.yml\ncases:\n  - name: x\n    request: {}\n    expect: { verdikt: ALLOW }\n",
    );
    const result = runCli(["test", "bad.test.yml"], { cwd: root });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^lumyn: bad\.test\.yml:5:15 \/cases\/0\/expect\/verdikt: unknown key 'verdikt' \(expected one of verdict, reason_codes, matched_rules, obligations, queries; did you mean 'verdict'\?\)/,
    );
    assert.equal(runCli(["test", "nowhere"], { cwd: root }).code, 2);
    assert.equal(runCli(["test", "--min-coverage", "200"], { cwd: root }).code, 2);
  });
});
