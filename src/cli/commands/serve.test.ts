import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { runCli } from "../../testing/run-cli.ts";
import { startServeProcess } from "../../testing/serve-process.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-serve-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Starts `lumyn serve` in the tests' folder and resolves with its URL once it listens. */
const serve = (
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  stdout?: NonNullable<Parameters<typeof startServeProcess>[1]>["stdout"],
) => startServeProcess(args, { cwd: root, env, ...(stdout ? { stdout } : {}) });

describe("lumyn serve", () => {
  it("prints the effective settings with their sources, flags over environment over config file, secrets hidden", () => {
    writeFileSync(
      join(root, "lumyn.config.json"),
      JSON.stringify({
        port: 9000,
        host: "127.0.0.2",
        workspace: "from-file",
        signing_secret: "file-secret",
      }),
    );
    const result = runCli(["serve", "--print-config", "--port", "9100"], { cwd: root });
    rmSync(join(root, "lumyn.config.json"));
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout);
    assert.equal(printed.settings.port, 9100);
    assert.equal(printed.sources.port, "flag");
    assert.equal(printed.settings.host, "127.0.0.2");
    assert.equal(printed.sources.host, "file");
    assert.equal(printed.settings.workspace, join(root, "from-file"));
    assert.equal(printed.settings.signing_secret, "(hidden)");
    assert.ok(!result.stdout.includes("file-secret"));

    const fromEnv = runCli(["serve", "--print-config"], { cwd: root });
    assert.equal(JSON.parse(fromEnv.stdout).sources.auth, "default");
    assert.deepEqual(
      [
        JSON.parse(fromEnv.stdout).settings.policy_max_bytes,
        JSON.parse(fromEnv.stdout).settings.policy_max_rules,
      ],
      [1048576, 10000],
    );
  });

  it("holds its policy file to the policy limits: a policy over them stops the start, in one line", () => {
    const refused = runCli(
      ["serve", "--no-auth", "--port", "0", "--workspace", "ws-limits", "--policy-max-rules", "7"],
      { cwd: root },
    );
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^lumyn: .*policy\.yml:\d+:\d+ \/rules: policy has 8 rules, over the limit of 7 rules \(policy_max_rules\)/,
    );
    assert.equal(refused.stderr.trim().split("\n").length, 1);
  });

  it("reports bad settings with where they come from, and refuses --no-auth off loopback", () => {
    const path = join(root, "bad.json");
    writeFileSync(path, JSON.stringify({ port: "eighty", prt: 1 }));
    const result = runCli(["serve", "--config", "bad.json", "--log-level", "loud"], { cwd: root });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--log-level: "loud" is not allowed \(expected one of fatal/);
    assert.match(result.stderr, /bad\.json \/port: port: "eighty" is not allowed/);
    assert.match(result.stderr, /bad\.json \/prt: unknown setting 'prt'.*did you mean 'port'/);
    const open = runCli(
      ["serve", "--no-auth", "--host", "0.0.0.0", "--port", "0", "--workspace", "ws-open"],
      {
        cwd: root,
      },
    );
    assert.equal(open.code, 2);
    assert.match(open.stderr, /only on a loopback address/);
  });

  it("exits 2 with the reason when the port is taken", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const result = runCli(["serve", "--no-auth", "--port", String(port), "--workspace", "ws-taken"], {
        cwd: root,
      });
      assert.equal(result.code, 2);
      assert.match(result.stderr, /^lumyn: cannot serve: .*EADDRINUSE/);
    } finally {
      taken.close();
    }
  });

  it("refuses to start on a LUMYN_PLAIN name it does not know, and says which fast paths are off", async () => {
    const refused = runCli(["serve", "--no-auth", "--port", "0", "--workspace", "ws-plain"], {
      cwd: root,
      env: { ...process.env, LUMYN_PLAIN: "simd" },
    });
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /^lumyn: LUMYN_PLAIN names 'simd', which is no fast path \(expected all, or a comma-separated list of json-readers, similarity-kernel, /,
    );
    const { url, stderr, stop } = await serve(["--no-auth", "--workspace", "ws-plain"], {
      LUMYN_PLAIN: "similarity-kernel,json-readers",
    });
    try {
      assert.match(stderr(), /fast paths off: json-readers, similarity-kernel\)/);
      const response = await fetch(`${url}/v1/decide`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(EXAMPLE_REQUESTS["refund-small"]?.request),
      });
      assert.equal(response.status, 200);
    } finally {
      await stop();
    }
  });

  it("on SIGTERM finishes in-flight decisions, writes out the log and closes the store: every answered decision is stored, whole, and logged", async () => {
    const logFile = join(root, "shutdown.log");
    const { child, url, exited, stderr } = await serve(
      ["--no-auth", "--workspace", "ws-shutdown"],
      {},
      {
        file: logFile,
      },
    );
    const template = EXAMPLE_REQUESTS["refund-small"]?.request as Record<string, unknown>;
    const answered: string[] = [];
    let sent = 0;
    let stopped = false;
    const worker = async (): Promise<void> => {
      while (!stopped) {
        const body = JSON.stringify({ ...template, request_id: `shutdown-${sent++}` });
        try {
          const response = await fetch(`${url}/v1/decide`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          });
          const text = await response.text();
          if (response.status === 200 && response.headers.get("lumyn-decision-status") === "stored") {
            answered.push(JSON.parse(text).decision_id);
          }
        } catch {
          stopped = true;
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    while (answered.length < 200) await new Promise((resolve) => setImmediate(resolve));
    child.kill("SIGTERM");
    const code = await exited;
    stopped = true;
    await Promise.all(workers);
    assert.equal(code, 0, stderr());
    assert.match(stderr(), /SIGTERM: finishing in-flight requests/);

    const db = new DatabaseSync(join(root, "ws-shutdown", "lumyn.db"), { readOnly: true });
    const rows = db.prepare("SELECT decision_id, record_json FROM decisions").all() as {
      decision_id: string;
      record_json: string;
    }[];
    const reasons = db
      .prepare("SELECT decision_id, count(*) AS n FROM decision_reason_codes GROUP BY decision_id")
      .all() as {
      decision_id: string;
      n: number;
    }[];
    db.close();
    const stored = new Set(rows.map((row) => row.decision_id));
    const missing = answered.filter((id) => !stored.has(id));
    assert.deepEqual(missing, [], "every answered decision is stored");
    const reasonCounts = new Map(reasons.map((row) => [row.decision_id, row.n]));
    for (const row of rows) {
      const record = JSON.parse(row.record_json);
      assert.equal(record.decision_id, row.decision_id);
      assert.equal(reasonCounts.get(row.decision_id), record.reason_codes.length, "no half-stored record");
    }
    assert.ok(answered.length >= 200);
    const logged = new Set(
      readFileSync(logFile, "utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
        .filter((line) => line.msg === "decision")
        .map((line) => line.decision_id),
    );
    assert.deepEqual(
      answered.filter((id) => !logged.has(id)),
      [],
      "every answered decision's log line is written before the process exits",
    );
  });

  it("anchors the log outside the store with --checkpoint-dir: each new checkpoint a file verify holds the log to", async () => {
    const refused = runCli(
      ["serve", "--no-auth", "--workspace", "ws-unsigned", "--checkpoint-dir", "anchors"],
      {
        cwd: root,
      },
    );
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /^lumyn: checkpoint_dir \(.*anchors\) needs a signed log.*lumyn keys signing create/,
    );

    assert.equal(runCli(["init", "--workspace", "ws-anchored"], { cwd: root }).code, 0);
    assert.equal(runCli(["keys", "signing", "create", "--workspace", "ws-anchored"], { cwd: root }).code, 0);
    const anchors = join(root, "anchors");
    const args = ["--no-auth", "--workspace", "ws-anchored", "--checkpoint-dir", "anchors"];
    const server = await serve([...args, "--checkpoint-interval", "1"]);
    const decideSome = async (from: number) => {
      for (let i = from; i < from + 3; i++) {
        const response = await fetch(`${server.url}/v1/decide`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ ...EXAMPLE_REQUESTS["refund-small"]?.request, request_id: `anchored-${i}` }),
        });
        assert.equal(response.status, 200);
      }
    };
    await decideSome(0);
    const files = () => readdirSync(anchors).sort();
    const deadline = Date.now() + 10_000;
    while (files().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      files(),
      ["checkpoint-000000000004.json"],
      "signed within the interval: a snapshot, 3 decisions",
    );
    await decideSome(3);
    assert.equal(await server.stop(), 0);
    assert.deepEqual(
      files(),
      ["checkpoint-000000000004.json", "checkpoint-000000000007.json"],
      "and the head once more on the way out",
    );
    const anchored = JSON.parse(readFileSync(join(anchors, "checkpoint-000000000007.json"), "utf8"));
    assert.equal(anchored.schema_version, "lumyn_chain_checkpoint.v2");

    const verify = (...extra: string[]) =>
      runCli(["verify", "--workspace", "ws-anchored", "--json", "--checkpoint", "anchors", ...extra], {
        cwd: root,
      });
    const intact = verify();
    assert.equal(intact.code, 0, intact.stdout + intact.stderr);
    assert.equal(JSON.parse(intact.stdout).checkpoints.anchors, 2);

    // An administrator cuts the last decision and every checkpoint row: the anchors outside still show the cut.
    const db = new DatabaseSync(join(root, "ws-anchored", "lumyn.db"));
    db.exec(`DROP TRIGGER audit_chain_no_delete;
      DELETE FROM decision_reason_codes WHERE decision_id = (SELECT ref_id FROM audit_chain WHERE seq = 7);
      DELETE FROM decisions WHERE decision_id = (SELECT ref_id FROM audit_chain WHERE seq = 7);
      DELETE FROM audit_chain WHERE seq = 7; DELETE FROM audit_checkpoints;`);
    db.close();
    const cut = verify();
    assert.equal(cut.code, 1);
    assert.deepEqual(
      [JSON.parse(cut.stdout).broken.reason, JSON.parse(cut.stdout).broken.seq],
      ["truncated", 7],
    );
  });

  it("keeps serving when its log on stdout breaks, and says so once on stderr", async () => {
    const served = await serve(["--no-auth", "--workspace", "ws-broken-log"], {}, "pipe");
    served.child.stdout?.destroy();
    const template = EXAMPLE_REQUESTS["refund-small"]?.request as Record<string, unknown>;
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${served.url}/v1/decide`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...template, request_id: `broken-log-${i}` }),
      });
      await response.text();
      statuses.push(response.status);
    }
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal(await served.stop(), 0, served.stderr());
    assert.equal(served.stderr().match(/the log on stdout failed/g)?.length, 1, served.stderr());
  });
});

describe("lumyn keys", () => {
  it("creates a key shown once, lists it without the key, revokes it, and a served route honours that", async () => {
    const created = runCli(
      [
        "keys",
        "create",
        "--scopes",
        "read,decide",
        "--tenant",
        "acme",
        "--roles",
        "lead",
        "--name",
        "bot",
        "--rate-limit",
        "50",
        "--workspace",
        "ws-keys",
      ],
      { cwd: root },
    );
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^lumyn_[A-Za-z0-9_-]{43}$/);
    assert.match(
      created.stderr,
      /created key (\w+) \(principal bot, scopes read,decide, tenant acme, roles lead, 50\/s\); this is the only time it is shown/,
    );

    const listed = runCli(["keys", "list", "--workspace", "ws-keys", "--json"], { cwd: root });
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(!listed.stdout.includes(key));
    const [entry] = JSON.parse(listed.stdout).keys;
    assert.deepEqual(
      [
        entry.name,
        entry.principal,
        entry.scopes,
        entry.tenant_id,
        entry.roles,
        entry.rate_limit_per_second,
        entry.revoked_at,
      ],
      ["bot", "bot", ["read", "decide"], "acme", ["lead"], 50, null],
    );

    const { child, url, exited } = await serve(["--workspace", "ws-keys", "--log-level", "silent"]);
    try {
      const policy = await fetch(`${url}/v1/policy`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(policy.status, 200);
      const revoked = runCli(["keys", "revoke", entry.key_id, "--workspace", "ws-keys"], { cwd: root });
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal(revoked.stdout, `revoked ${entry.key_id}\n`);
      // A key read from the store is trusted for a second: a revocation takes effect within it.
      let after = await fetch(`${url}/v1/policy`, { headers: { authorization: `Bearer ${key}` } });
      for (let tries = 0; after.status === 200 && tries < 40; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        after = await fetch(`${url}/v1/policy`, { headers: { authorization: `Bearer ${key}` } });
      }
      assert.equal(after.status, 401);
      assert.equal(((await after.json()) as { code: string }).code, "key_revoked");
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
    assert.match(runCli(["keys", "list", "--workspace", "ws-keys"], { cwd: root }).stdout, /revoked \d{4}-/);
  });

  it("gives each key a principal: its name, else its id, or --principal, which keys of one holder share", () => {
    const create = (...args: string[]) =>
      runCli(["keys", "create", "--scopes", "approve", ...args, "--workspace", "ws-principals", "--json"], {
        cwd: root,
      });
    const made = [
      create("--name", "alice-laptop", "--principal", "alice"),
      create("--name", "alice-phone", "--principal", "alice"),
      create("--name", "bob"),
      create(),
    ].map((answer) => {
      assert.equal(answer.code, 0, answer.stderr);
      return JSON.parse(answer.stdout) as { key_id: string; principal: string };
    });
    assert.deepEqual(
      made.map((key) => key.principal),
      ["alice", "alice", "bob", made[3]?.key_id],
    );
    const listed = runCli(["keys", "list", "--workspace", "ws-principals"], { cwd: root });
    assert.match(listed.stdout, /active {2}principal alice, scopes approve, all tenants {2}alice-phone/);
    for (const args of [
      ["--principal", " "],
      ["--principal", "system:timeout"],
      ["--principal", "System:ops"],
      ["--name", "\uff53ystem:timeout"],
    ]) {
      const refused = create(...args);
      assert.equal(refused.code, 2, `${args.join(" ")}: ${refused.stderr}`);
      assert.match(refused.stderr, /--(principal|name) .*(must name who holds the key|is reserved)/);
    }
  });

  it("refuses unknown scopes (exit 2) and unknown ids (exit 1)", () => {
    const unknown = runCli(["keys", "create", "--scopes", "reed", "--workspace", "ws-keys"], { cwd: root });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown scope 'reed'.*did you mean 'read'/);
    assert.equal(
      runCli(["keys", "create", "--scopes", "read", "--rate-limit", "-1", "--workspace", "ws-keys"], {
        cwd: root,
      }).code,
      2,
    );
    const missing = runCli(["keys", "revoke", "01NOPE", "--workspace", "ws-keys"], { cwd: root });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no key with id '01NOPE'/);
  });
});
