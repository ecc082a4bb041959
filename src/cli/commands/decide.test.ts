import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-decide-"));
after(() => rmSync(root, { recursive: true, force: true }));
const requestFile = join(root, "request.json");
writeFileSync(requestFile, JSON.stringify(EXAMPLE_REQUESTS["refund-large"]?.request));

describe("lumyn decide", () => {
  it("loads no package at start: its cold start is the bundle (the server's libraries load with serve)", () => {
    const loaded = join(root, "loaded.txt");
    const preload = join(root, "record-requires.cjs");
    writeFileSync(
      preload,
      `const Module = require("node:module");
const { appendFileSync } = require("node:fs");
const load = Module._load;
Module._load = function (request, ...rest) {
  if (!Module.isBuiltin(request) && !request.startsWith(".") && !request.startsWith("/"))
    appendFileSync(process.env.LUMYN_LOADED, request + "\\n");
  return load.call(this, request, ...rest);
};
`,
    );
    writeFileSync(loaded, "");
    const result = runCli(["decide", requestFile, "--workspace", "ws-cold"], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: `--require ${preload}`, LUMYN_LOADED: loaded },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(readFileSync(loaded, "utf8").split("\n").filter(Boolean), []);
  });

  it("prints the stored record and creates a missing workspace", () => {
    const result = runCli(["decide", requestFile, "--workspace", "ws"], { cwd: root });
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.equal(record.verdict, "ESCALATE");
    assert.deepEqual(record.reason_codes, ["REFUND_OVER_ESCALATION_LIMIT"]);
    assert.match(record.determinism.inputs_digest, /^sha256:[0-9a-f]{64}$/);
    const db = new DatabaseSync(join(root, "ws", "lumyn.db"), { readOnly: true });
    const row = db.prepare("SELECT verdict FROM decisions WHERE decision_id = ?").get(record.decision_id);
    db.close();
    assert.equal(row?.verdict, "ESCALATE");
  });

  it("reads standard input and writes --out whole, --pretty indented", () => {
    const out = join(root, "record.json");
    const result = runCli(["decide", "-", "--workspace", "ws", "--out", out, "--pretty"], {
      cwd: root,
      input: readFileSync(requestFile, "utf8"),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "");
    const text = readFileSync(out, "utf8");
    assert.match(text, /^\{\n {2}"created_at"/);
    assert.equal(JSON.parse(text).verdict, "ESCALATE");
  });

  it("decides alike with every fast path off (LUMYN_PLAIN=all), and refuses a name it does not know", () => {
    const decideWith = (plain: string | undefined, workspace: string) =>
      runCli(["decide", requestFile, "--workspace", workspace], {
        cwd: root,
        env: { ...process.env, LUMYN_PLAIN: plain },
      });
    const fast = decideWith(undefined, "ws-fast");
    const plain = decideWith("all", "ws-plain");
    assert.equal(plain.code, 0, plain.stderr);
    const [a, b] = [JSON.parse(fast.stdout), JSON.parse(plain.stdout)];
    assert.deepEqual(
      [b.verdict, b.reason_codes, b.determinism.inputs_digest],
      [a.verdict, a.reason_codes, a.determinism.inputs_digest],
    );

    const unknown = decideWith("json-reader, similarity-kernel", "ws-plain");
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stdout, "");
    assert.match(
      unknown.stderr,
      /^lumyn: LUMYN_PLAIN names 'json-reader', which is no fast path \(expected all, or a comma-separated list of json-readers, similarity-kernel, .*; did you mean 'json-readers'\?\)\n$/,
    );
  });

  it("uses --policy instead of the workspace policy", () => {
    const policy = join(root, "deny-all.yml");
    writeFileSync(
      policy,
      'schema_version: policy.v1\npolicy_id: deny-all\npolicy_version: "2"\ndefaults: {mode: advisory, default_verdict: DENY, default_reason_code: NOPE}\nrules:\n  - {id: X, stage: ALLOW_PATHS, if: {evidence.never_is: 1}, then: {verdict: ALLOW, reason_codes: [NEVER]}}\n',
    );
    const result = runCli(["decide", requestFile, "--workspace", "ws2", "--policy", policy], { cwd: root });
    assert.equal(result.code, 0, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.deepEqual(
      [record.verdict, record.reason_codes, record.policy.policy_id, record.policy.mode],
      ["DENY", ["NOPE"], "deny-all", "advisory"],
    );
  });

  it("exits 1 with one clear line per problem for bad requests, and stores nothing", () => {
    writeFileSync(
      join(root, "bad.json"),
      '{"schema_version": "decision_request.v1", "subject": {"type": "robot", "id": "a"}, "action": {"type": "x", "intent": "y"}, "context": {"mode": "digest_only", "digest": "nope"}}',
    );
    const result = runCli(["decide", "bad.json", "--workspace", "ws3"], { cwd: root });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    const lines = result.stderr.trim().split("\n");
    assert.deepEqual(lines.map((line) => line.split(":")[1]?.trim().split(" ")[0]).sort(), [
      "/context/digest",
      "/subject/type",
    ]);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");

    writeFileSync(join(root, "broken.json"), '{"schema_version": "decision_request.v1",\n  "subject": }');
    const broken = runCli(["decide", "broken.json", "--workspace", "ws3"], { cwd: root });
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^lumyn: broken\.json:2:14: invalid JSON/);
    const db = new DatabaseSync(join(root, "ws3", "lumyn.db"), { readOnly: true });
    assert.equal((db.prepare("SELECT count(*) AS n FROM decisions").get() as { n: number }).n, 0);
    db.close();
  });

  it("refuses integers of more than 4,300 digits with the member's pointer, whichever JSON reader reads them", () => {
    const request = JSON.stringify(EXAMPLE_REQUESTS["refund-large"]?.request).replace(
      '"evidence":{',
      `"evidence":{"big":${"9".repeat(1_000_000)},`,
    );
    writeFileSync(join(root, "digits.json"), request);
    for (const plain of [undefined, "json-readers"]) {
      const result = runCli(["decide", "digits.json", "--workspace", "ws-digits"], {
        cwd: root,
        env: { ...process.env, LUMYN_PLAIN: plain },
      });
      assert.equal(result.code, 1, `LUMYN_PLAIN=${plain}`);
      assert.equal(
        result.stderr,
        "lumyn: digits.json /evidence/big: integer of 1000000 digits, over the limit of 4300 digits (expected an integer of at most 4300 digits, Python's limit, or the number as a string)\n",
      );
    }
    assert.ok(!existsSync(join(root, "ws-digits", "lumyn.db")), "refused before any store is opened");
  });

  it("refuses requests over --max-bytes (1 MiB by default) before reading them as JSON", () => {
    const small = runCli(["decide", requestFile, "--workspace", "ws", "--max-bytes", "100"], { cwd: root });
    assert.equal(small.code, 1);
    assert.match(
      small.stderr,
      /^lumyn: .*request\.json: JSON document is \d+ bytes, over the limit of 100 bytes\n$/,
    );
    const huge = `{"pad": "${"x".repeat(1024 * 1024)}"}`;
    const result = runCli(["decide", "-", "--workspace", "ws"], { cwd: root, input: huge });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /over the limit of 1048576 bytes/);
    assert.equal(runCli(["decide", requestFile, "--max-bytes", "lots"], { cwd: root }).code, 2);
  });

  it("exits 2 on usage errors and 3 when the store cannot be opened", () => {
    assert.equal(runCli(["decide", "--bogus"], { cwd: root }).code, 2);
    assert.equal(runCli(["frobnicate"], { cwd: root }).code, 2);
    writeFileSync(join(root, "a-file"), "");
    const storage = runCli(["decide", requestFile, "--workspace", "a-file"], { cwd: root });
    assert.equal(storage.code, 3, storage.stderr);
    assert.match(storage.stderr, /^lumyn: /);
  });

  it("answers ABSTAIN / STORAGE_UNAVAILABLE, exit 3, when the database cannot be opened", () => {
    runCli(["init", "--workspace", "broken-db"], { cwd: root });
    rmSync(join(root, "broken-db", "lumyn.db"));
    mkdirSync(join(root, "broken-db", "lumyn.db"));
    const result = runCli(["decide", requestFile, "--workspace", "broken-db"], { cwd: root });
    assert.equal(result.code, 3, result.stderr);
    const record = JSON.parse(result.stdout);
    assert.deepEqual([record.verdict, record.reason_codes], ["ABSTAIN", ["STORAGE_UNAVAILABLE"]]);
    assert.match(result.stderr, /was not stored/);
  });

  it("checks --out before deciding, so nothing is stored for an answer that cannot be written", () => {
    const result = runCli(
      ["decide", requestFile, "--workspace", "ws-out", "--out", join(root, "missing", "x.json")],
      { cwd: root },
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^lumyn: --out .*cannot write there/);
    assert.equal(existsSync(join(root, "ws-out")), false);
  });
});
