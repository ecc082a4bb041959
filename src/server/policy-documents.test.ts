/**
 * "Redis announces; it does not decide": `lumyn serve` processes against a real Redis, attacked and fed by
 * whoever can write to it. Only a document a trusted publisher signed for the tenant changes an answer; the
 * checks run beside the event loop, so decisions keep flowing while a huge document arrives.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import type { JsonObject } from "../core/json.ts";
import { signingKeyFromPem } from "../domain/chain.ts";
import { POLICY_KEY_PREFIX, signedPolicyJson, signPolicy } from "../domain/signed-policy.ts";
import { eventually, redisForTests, type TestRedis } from "../testing/redis.ts";
import { runCli } from "../testing/run-cli.ts";
import { type ServeProcess, startServeProcess } from "../testing/serve-process.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-publisher-"));
const { redis, skip } = await redisForTests();
const servers: ServeProcess[] = [];
after(async () => {
  for (const server of servers) await server.stop();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

const ALLOW_ALL = `schema_version: policy.v1
policy_id: allow-all
policy_version: "1"
defaults: {mode: enforce, default_verdict: ALLOW, default_reason_code: ALLOWED}
rules:
  - {id: EVERYTHING, stage: ALLOW_PATHS, if: {amount_usd_gte: 0}, then: {verdict: ALLOW, reason_codes: [ALLOWED]}}
`;

const keysDir = join(root, "keys");
const created = runCli(["keys", "publisher", "create", "--out", keysDir]);
const publicKey = join(keysDir, "policy-publisher-public.pem");
const privateKey = join(keysDir, "policy-publisher-private.pem");

let requests = 0;
/** The starter policy's risky refund (a flagged card): ABSTAIN, unless a policy allowing everything applies. */
async function riskyVerdict(server: ServeProcess, tenant: string): Promise<string> {
  const request = {
    ...(EXAMPLE_REQUESTS["refund-risky-card"]?.request as JsonObject),
    request_id: `risky-${++requests}`,
    tenant: { tenant_id: tenant },
  };
  const response = await fetch(`${server.url}/v1/decide`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  assert.equal(response.status, 200);
  return ((await response.json()) as { verdict: string }).verdict;
}

async function serve(
  workspace: string,
  redisUrl: string,
  keys: readonly string[],
  flags: readonly string[] = [],
): Promise<ServeProcess> {
  const server = await startServeProcess([
    "--no-auth",
    "--workspace",
    workspace,
    "--redis",
    redisUrl,
    ...keys.flatMap((key) => ["--policy-publisher-key", key]),
    ...flags,
  ]);
  servers.push(server);
  return server;
}

async function metric(server: ServeProcess, series: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

const rejectedBy = async (all: readonly ServeProcess[], reason: string): Promise<number> => {
  let total = 0;
  for (const server of all) total += await metric(server, `lumyn_policy_rejected_total{reason="${reason}"}`);
  return total;
};

describe("policy documents in Redis", { skip }, () => {
  it("the attack: an unsigned allow-all document on lumyn:policy:* changes no answer; signed, it switches both servers", async () => {
    assert.equal(created.code, 0, created.stderr);
    const url = (redis as TestRedis).url;
    const workspace = join(root, "fleet");
    const fleet = [await serve(workspace, url, [publicKey]), await serve(workspace, url, [publicKey])];
    const tenants = ["acme", "globex", "initech"];
    for (const server of fleet)
      for (const tenant of tenants) assert.equal(await riskyVerdict(server, tenant), "ABSTAIN");

    const client = (redis as TestRedis).client();
    try {
      await client.set(`${POLICY_KEY_PREFIX}*`, ALLOW_ALL);
      await eventually(async () => (await rejectedBy(fleet, "unsigned")) === 1, "the document is rejected");
      // The attack switched every tenant within 2 s: watch for longer than that.
      const until = Date.now() + 2_500;
      while (Date.now() < until) {
        for (const server of fleet)
          for (const tenant of tenants) assert.equal(await riskyVerdict(server, tenant), "ABSTAIN");
      }

      const envelope = join(root, "allow-all.signed.json");
      writeFileSync(join(root, "allow-all.yml"), ALLOW_ALL);
      const sign = ["policy", "sign", join(root, "allow-all.yml"), "--key", privateKey, "--tenant", "*"];
      const signed = runCli([...sign, "--out", envelope]);
      assert.equal(signed.code, 0, signed.stderr);
      await client.set(`${POLICY_KEY_PREFIX}*`, readFileSync(envelope));
      await eventually(async () => {
        for (const server of fleet)
          for (const tenant of tenants) if ((await riskyVerdict(server, tenant)) !== "ALLOW") return false;
        return true;
      }, "both servers decide every tenant under the signed policy");
      assert.equal(
        (await metric(fleet[0] as ServeProcess, 'lumyn_policy_switches_total{tenant="*"}')) +
          (await metric(fleet[1] as ServeProcess, 'lumyn_policy_switches_total{tenant="*"}')),
        2,
        "each server switched once",
      );
      const history = runCli(["policy", "history", "--tenant", "*", "--json", "--workspace", workspace]);
      const events = (JSON.parse(history.stdout) as { events: { type: string; detail: JsonObject }[] })
        .events;
      const keyId = /key\s+(sha256:[0-9a-f]{64})/.exec(created.stdout)?.[1];
      assert.deepEqual(
        events.map((event) => [event.type, event.detail.reason ?? event.detail.principal]),
        [
          ["rejected", "unsigned"],
          ["published", `publisher:${keyId}`],
          ["activated", `publisher:${keyId}`],
        ],
        "one server handled each document",
      );
    } finally {
      await client.del(`${POLICY_KEY_PREFIX}*`);
      client.disconnect();
    }
  });

  it("a server with no publisher key (the default) applies nothing from Redis, signed or not", async () => {
    // Another database of the same Redis: its own keys, claims and notifications.
    const url = `${(redis as TestRedis).url}/1`;
    const server = await serve(join(root, "no-keys"), url, []);
    const client = (redis as TestRedis).client();
    try {
      await client.select(1);
      await client.set(`${POLICY_KEY_PREFIX}*`, ALLOW_ALL);
      await eventually(async () => (await rejectedBy([server], "no_publisher_key")) === 1, "rejected");
      const envelope = signPolicy(
        signingKeyFromPem(readFileSync(privateKey, "utf8")),
        "*",
        ALLOW_ALL,
        new Date().toISOString(),
      );
      await client.set(`${POLICY_KEY_PREFIX}*`, JSON.stringify(signedPolicyJson(envelope)));
      await eventually(async () => (await rejectedBy([server], "no_publisher_key")) === 2, "rejected");
      assert.equal(await riskyVerdict(server, "acme"), "ABSTAIN");
    } finally {
      await client.del(`${POLICY_KEY_PREFIX}*`);
      client.disconnect();
    }
  });

  it("holds a signed document to the server's policy limits", async () => {
    const url = `${(redis as TestRedis).url}/3`;
    // The starter policy has 8 rules: the server's own policy is within the limit.
    const workspace = join(root, "limits");
    const server = await serve(workspace, url, [publicKey], ["--policy-max-rules", "8"]);
    const client = (redis as TestRedis).client();
    try {
      await client.select(3);
      let rules = "";
      for (let i = 0; i < 8; i++)
        rules += `  - {id: MORE_${i}, stage: HARD_BLOCKS, if: {amount_usd_gt: ${i}}, then: {verdict: DENY, reason_codes: [X]}}\n`;
      const envelope = signPolicy(
        signingKeyFromPem(readFileSync(privateKey, "utf8")),
        "acme",
        `${ALLOW_ALL}${rules}`,
        new Date().toISOString(),
      );
      await client.set(`${POLICY_KEY_PREFIX}acme`, JSON.stringify(signedPolicyJson(envelope)));
      await eventually(async () => (await rejectedBy([server], "invalid_policy")) === 1, "rejected");
      const history = runCli(["policy", "history", "--tenant", "acme", "--json", "--workspace", workspace]);
      const events = (JSON.parse(history.stdout) as { events: { type: string; detail: JsonObject }[] })
        .events;
      assert.deepEqual(
        events.map((event) => [
          event.type,
          (event.detail.problems as { code: string; message: string }[]).map((problem) => problem.message),
        ]),
        [["rejected", ["policy has 9 rules, over the limit of 8 rules (policy_max_rules)"]]],
      );
      assert.equal(await riskyVerdict(server, "acme"), "ABSTAIN");
    } finally {
      await client.del(`${POLICY_KEY_PREFIX}acme`);
      client.disconnect();
    }
  });

  it("keeps answering while a 50 MB document is refused and a 1 MiB one is checked", async (t) => {
    const url = `${(redis as TestRedis).url}/2`;
    const server = await serve(join(root, "loop"), url, [publicKey]);
    const client = (redis as TestRedis).client();
    await client.select(2);
    /** Round trips of /healthz and of a decision, one after the other, for as long as `work` runs. */
    const probe = async (work: () => Promise<void>) => {
      let finished = false;
      const working = work().finally(() => {
        finished = true;
      });
      const health: number[] = [];
      const decisions: number[] = [];
      while (!finished) {
        let started = performance.now();
        await fetch(`${server.url}/healthz`).then((response) => response.text());
        health.push(performance.now() - started);
        started = performance.now();
        await riskyVerdict(server, "acme");
        decisions.push(performance.now() - started);
      }
      await working;
      const summary = (values: number[]) => {
        const sorted = [...values].sort((a, b) => a - b);
        const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number;
        return { n: sorted.length, p99: p99.toFixed(1), max: (sorted.at(-1) as number).toFixed(1) };
      };
      return { health: summary(health), decisions: summary(decisions) };
    };
    try {
      const started = performance.now();
      const whileHuge = await probe(async () => {
        await client.set(`${POLICY_KEY_PREFIX}acme`, Buffer.alloc(50 * 1024 * 1024, "a"));
        await eventually(async () => (await rejectedBy([server], "too_large")) === 1, "refused", 60_000);
      });
      t.diagnostic(
        `50 MB set and refused in ${(performance.now() - started).toFixed(0)} ms; /healthz ${JSON.stringify(whileHuge.health)} ms, decisions ${JSON.stringify(whileHuge.decisions)} ms`,
      );

      // Just under the limit, signed, and wrong only at its end: the whole of it is parsed and validated.
      let rules = "";
      for (let i = 0; rules.length < 820 * 1024; i++)
        rules += `  - {id: R${i}, stage: HARD_BLOCKS, if: {evidence.score_${i}_gt: ${i}}, then: {verdict: DENY, reason_codes: [CODE_${i}]}}\n`;
      const big = `${ALLOW_ALL}${rules}  - {id: LAST, stage: HARD_BLOCKS, if: {amount_usd_gt: 1}, then: {verdict: MAYBE, reason_codes: [X]}}\n`;
      const envelope = JSON.stringify(
        signedPolicyJson(
          signPolicy(
            signingKeyFromPem(readFileSync(privateKey, "utf8")),
            "acme",
            big,
            new Date().toISOString(),
          ),
        ),
      );
      assert.ok(envelope.length < 1024 * 1024);
      const checkStarted = performance.now();
      const whileChecked = await probe(async () => {
        await client.set(`${POLICY_KEY_PREFIX}acme`, envelope);
        await eventually(
          async () => (await rejectedBy([server], "invalid_policy")) === 1,
          "rejected",
          60_000,
        );
      });
      t.diagnostic(
        `${(envelope.length / 1024).toFixed(0)} KiB signed document set, checked and rejected in ${(performance.now() - checkStarted).toFixed(0)} ms; /healthz ${JSON.stringify(whileChecked.health)} ms, decisions ${JSON.stringify(whileChecked.decisions)} ms`,
      );
      for (const measured of [whileHuge, whileChecked]) {
        assert.ok(
          Number(measured.health.max) < 1_000,
          `/healthz answered within 1 s: ${measured.health.max} ms`,
        );
        assert.ok(
          Number(measured.decisions.max) < 1_000,
          `decisions within 1 s: ${measured.decisions.max} ms`,
        );
      }
      assert.equal(await riskyVerdict(server, "acme"), "ABSTAIN");
    } finally {
      await client.del(`${POLICY_KEY_PREFIX}acme`);
      client.disconnect();
    }
  });
});
