import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-memory-"));
after(() => rmSync(root, { recursive: true, force: true }));
let first = "";

before(() => {
  assert.equal(runCli(["init", "--workspace", "ws"], { cwd: root }).code, 0);
  first = JSON.parse(
    runCli(["decide", join("ws", "examples", "refund-small.json"), "--workspace", "ws"], { cwd: root })
      .stdout,
  ).decision_id;
});

describe("lumyn label and lumyn memory", () => {
  it("labels a decision, and the next one like it is blocked and explained", () => {
    const labelled = runCli(
      [
        "label",
        first,
        "--label",
        "failure",
        "--summary",
        "fraud ring 7",
        "--severity",
        "4",
        "--workspace",
        "ws",
      ],
      { cwd: root },
    );
    assert.equal(labelled.code, 0, labelled.stderr);
    assert.equal(labelled.stdout, `labelled ${first} failure: fraud ring 7\n`);
    const request = JSON.parse(readFileSync(join(root, "ws", "examples", "refund-small.json"), "utf8"));
    writeFileSync(join(root, "again.json"), JSON.stringify({ ...request, request_id: "again" }));
    const record = JSON.parse(runCli(["decide", "again.json", "--workspace", "ws"], { cwd: root }).stdout);
    assert.equal(record.verdict, "DENY");
    assert.equal(record.reason_codes.at(-1), "FAILURE_MEMORY_SIMILAR_BLOCK");
    const explained = runCli(["explain", record.decision_id, "--workspace", "ws"], { cwd: root });
    assert.match(
      explained.stdout,
      /memory: failure similarity 1\.000, success similarity 0\.000\n {2}1\.000 failure .* {2}fraud ring 7\n {2}memory changed the verdict to DENY \(FAILURE_MEMORY_SIMILAR_BLOCK\)/,
    );
    const json = JSON.parse(
      runCli(["explain", record.decision_id, "--workspace", "ws", "--json"], { cwd: root }).stdout,
    );
    assert.deepEqual(
      [json.memory.effect, json.memory.reason_codes, json.memory.neighbours[0].summary],
      ["DENY", ["FAILURE_MEMORY_SIMILAR_BLOCK"], "fraud ring 7"],
    );
    const similar = runCli(["memory", "similar", record.decision_id, "--workspace", "ws"], { cwd: root });
    assert.match(similar.stdout, new RegExp(`^1\\.000  failure  ${first}  fraud ring 7\\n$`));
    const stats = JSON.parse(
      runCli(["memory", "stats", "--workspace", "ws", "--json"], { cwd: root }).stdout,
    );
    assert.deepEqual(stats.scopes, [
      { tenant_id: "acme", action_type: "support.refund", failure: 1, success: 0 },
    ]);
  });

  it("refuses unknown ids, labels and severities, changing nothing", () => {
    const unknown = runCli(["label", "01NOPE", "--label", "failure", "--workspace", "ws"], { cwd: root });
    assert.deepEqual([unknown.code, unknown.stderr], [1, "lumyn: no decision with id '01NOPE'\n"]);
    const label = runCli(["label", first, "--label", "fraud", "--workspace", "ws"], { cwd: root });
    assert.deepEqual(
      [label.code, label.stderr],
      [1, "lumyn: unknown label 'fraud' (expected failure or success)\n"],
    );
    assert.equal(
      runCli(["label", first, "--label", "failure", "--severity", "9", "--workspace", "ws"], { cwd: root })
        .code,
      1,
    );
    assert.equal(
      runCli(["label", first, "--label", "failure", "--severity", "high", "--workspace", "ws"], { cwd: root })
        .code,
      2,
    );
    assert.equal(runCli(["label", first, "--workspace", "ws"], { cwd: root }).code, 2);
    const stats = JSON.parse(
      runCli(["memory", "stats", "--workspace", "ws", "--json"], { cwd: root }).stdout,
    );
    assert.equal(stats.scopes[0].failure, 1);
  });
});
