import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { keyId } from "../../domain/chain.ts";
import { openSignedPolicy, publisherKeyring } from "../../domain/signed-policy.ts";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-publisher-"));
after(() => rmSync(root, { recursive: true, force: true }));

const POLICY = `schema_version: policy.v1
policy_id: deny-all
policy_version: "1"
defaults: {mode: enforce, default_verdict: DENY, default_reason_code: DENIED}
rules:
  - {id: NEVER, stage: ALLOW_PATHS, if: {evidence.never_is: 1}, then: {verdict: ALLOW, reason_codes: [NEVER]}}
`;

describe("lumyn keys publisher create / policy sign", () => {
  const keys = join(root, "keys");
  const privateKey = join(keys, "policy-publisher-private.pem");
  const publicKey = join(keys, "policy-publisher-public.pem");
  const policy = join(root, "deny-all.yml");
  writeFileSync(policy, POLICY);

  it("writes a key pair (the private half readable by its owner only) and prints the public key's path and id", () => {
    const created = runCli(["keys", "publisher", "create", "--out", keys]);
    assert.equal(created.code, 0, created.stderr);
    const id = keyId(createPublicKey(readFileSync(publicKey, "utf8")));
    assert.match(created.stdout, new RegExp(`^public\\s+${publicKey}$`, "m"));
    assert.match(created.stdout, new RegExp(`^key\\s+${id}$`, "m"));
    assert.equal(statSync(privateKey).mode & 0o777, 0o600);
    const again = runCli(["keys", "publisher", "create", "--out", keys]);
    assert.equal(again.code, 2);
    assert.equal(
      again.stderr,
      `lumyn: ${privateKey} exists; remove it or choose another folder with --out\n`,
    );
  });

  it("signs a policy for one tenant: an envelope the servers' check opens for that tenant only", () => {
    const out = join(root, "deny-all.acme.json");
    const signed = runCli(["policy", "sign", policy, "--key", privateKey, "--tenant", "acme", "--out", out]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.match(signed.stdout, /^signed deny-all 1 sha256:[0-9a-f]{64} for tenant acme with key sha256:/);
    assert.match(signed.stdout, /redis-cli -x SET 'lumyn:policy:acme' </);
    const ring = publisherKeyring([createPublicKey(readFileSync(publicKey, "utf8"))]);
    const opened = openSignedPolicy(readFileSync(out, "utf8"), "acme", ring);
    assert.ok(opened.ok);
    assert.equal(opened.envelope.policy, POLICY, "the policy's text, exactly");
    const elsewhere = openSignedPolicy(readFileSync(out, "utf8"), "globex", ring);
    assert.equal(elsewhere.ok ? "ok" : elsewhere.reason, "tenant_mismatch");
    const printed = runCli(["policy", "sign", policy, "--key", privateKey, "--tenant", "*"]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(JSON.parse(printed.stdout).tenant, "*", "without --out the envelope is printed");
  });

  it("refuses, in one line and writing nothing, an invalid policy, a public or missing key, and no tenant", () => {
    const out = join(root, "never.json");
    const bad = join(root, "bad.yml");
    writeFileSync(bad, POLICY.replace("default_verdict: DENY", "default_verdict: MAYBE"));
    const invalid = runCli(["policy", "sign", bad, "--key", privateKey, "--tenant", "acme", "--out", out]);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^lumyn: .*bad\.yml:4:\d+ .*MAYBE/);
    const withPublic = runCli([
      "policy",
      "sign",
      policy,
      "--key",
      publicKey,
      "--tenant",
      "acme",
      "--out",
      out,
    ]);
    assert.equal(withPublic.code, 1);
    assert.equal(
      withPublic.stderr,
      `lumyn: ${publicKey}: this is a public key; sign with the private one (the -private.pem file)\n`,
    );
    const missing = runCli(["policy", "sign", policy, "--key", join(root, "nope.pem"), "--tenant", "acme"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^lumyn: cannot read .*nope\.pem: ENOENT[^\n]*\n$/);
    const noTenant = runCli(["policy", "sign", policy, "--key", privateKey]);
    assert.equal(noTenant.code, 2);
    assert.match(noTenant.stderr, /required option '--tenant <id>'/);
    assert.throws(() => statSync(out), "nothing was written");
  });

  it("serve reads publisher keys from flags, the environment and the config file, and refuses one it cannot use", () => {
    const folder = join(root, "config");
    mkdirSync(folder);
    writeFileSync(
      join(folder, "lumyn.config.json"),
      JSON.stringify({ policy_publisher_keys: ["keys/a.pem", "keys/b.pem"], policy_max_bytes: 65536 }),
    );
    const fromFile = runCli(["serve", "--print-config"], { cwd: folder });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const printed = JSON.parse(fromFile.stdout);
    assert.deepEqual(printed.settings.policy_publisher_keys, [
      join(folder, "keys/a.pem"),
      join(folder, "keys/b.pem"),
    ]);
    assert.equal(printed.settings.policy_max_bytes, 65536);
    const env = { ...process.env, LUMYN_POLICY_PUBLISHER_KEYS: "x.pem,y.pem" };
    const fromEnv = JSON.parse(runCli(["serve", "--print-config"], { cwd: root, env }).stdout);
    assert.deepEqual(fromEnv.settings.policy_publisher_keys, ["x.pem", "y.pem"]);
    const flags = [
      "serve",
      "--print-config",
      "--policy-publisher-key",
      "f.pem",
      "--policy-publisher-key",
      "g.pem",
    ];
    const fromFlags = JSON.parse(runCli(flags, { cwd: folder }).stdout);
    assert.deepEqual(fromFlags.settings.policy_publisher_keys, ["f.pem", "g.pem"]);
    assert.equal(fromFlags.sources.policy_publisher_keys, "flag");

    const workspace = ["--workspace", join(root, "ws")];
    const serve = (key: string) =>
      runCli(["serve", "--no-auth", "--port", "0", "--policy-publisher-key", key, ...workspace]);
    const secret = serve(privateKey);
    assert.equal(secret.code, 1);
    assert.equal(
      secret.stderr,
      `lumyn: ${privateKey}: this is a private key; give its public half (the -public.pem file)\n`,
    );
    const absent = serve(join(root, "absent.pem"));
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /^lumyn: .*absent\.pem: cannot read the public key: ENOENT[^\n]*\n$/);
    const limit = runCli(["serve", "--print-config", "--policy-max-bytes", "0"]);
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /--policy-max-bytes: "0" is not allowed \(expected a whole number from 1 to/);
  });
});
