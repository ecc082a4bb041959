import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-lint-"));
after(() => rmSync(root, { recursive: true, force: true }));
before(() => assert.equal(runCli(["init", "--workspace", "ws"], { cwd: root }).code, 0));

const POLICY = `schema_version: policy.v1
policy_id: lintme
policy_version: "1"
defaults: { mode: enforce, default_verdict: ESCALATE, default_reason_code: NO_MATCH }
rules:
  - id: BLOCK
    stage: HARD_BLOCKS
    if: { evidence.risk_gte: 0.8 }
    then: { verdict: DENY, reason_codes: [RISKY] }
  - id: ALLOW
    stage: ALLOW_PATHS
    if: { evidence.risk_gte: 0.9 }
    then: { verdict: ALLOW, reason_codes: [OK] }
`;

describe("lumyn lint", () => {
  it("is quiet about the starter policy and its tests", () => {
    const result = runCli(["lint", "--workspace", "ws"], { cwd: root });
    assert.equal(result.code, 0, result.stdout);
    assert.equal(result.stdout, "0 errors, 0 warnings, 0 notes\n");
  });

  it("reports findings with file:line:col, severity, code and a fix; warnings fail only with --fail-on", () => {
    writeFileSync(join(root, "lintme.yml"), POLICY);
    const result = runCli(["lint", "--policy", "lintme.yml"], { cwd: root });
    assert.equal(result.code, 0, "warnings and notes alone pass");
    assert.match(
      result.stdout,
      /^lintme\.yml:10:5 {2}warning never_decides: rule ALLOW \(ALLOW\) can never change the verdict: whenever it matches, rule BLOCK \(DENY\) matches too \(fix: /m,
    );
    assert.match(result.stdout, /info {4}no_tests: /);
    assert.match(result.stdout, /0 errors, 1 warnings, 1 notes\n$/);
    assert.equal(runCli(["lint", "--policy", "lintme.yml", "--fail-on", "warning"], { cwd: root }).code, 1);
    const json = JSON.parse(runCli(["lint", "--policy", "lintme.yml", "--json"], { cwd: root }).stdout);
    assert.equal(json.findings[0].code, "never_decides");
    assert.deepEqual([json.findings[0].line, json.findings[0].column], [10, 5]);
  });

  it("exits 1 on errors, and 2 on a bad option", () => {
    writeFileSync(
      join(root, "broken.yml"),
      POLICY.replace("evidence.risk_gte: 0.9", "evidence.risk: { gt: 2, lt: 1 }"),
    );
    const result = runCli(["lint", "--policy", "broken.yml"], { cwd: root });
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /^broken\.yml:12:32 {2}error {3}never_matches: rule ALLOW can never match: on evidence\.risk, no number is > 2 and < 1/m,
    );
    assert.equal(runCli(["lint", "--policy", "broken.yml", "--fail-on", "never"], { cwd: root }).code, 2);
  });
});
