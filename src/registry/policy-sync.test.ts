import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import type { JsonObject, JsonValue } from "../core/json.ts";
import { keyId, type SigningKey } from "../domain/chain.ts";
import type { PolicyEvent } from "../domain/policy-registry.ts";
import { signedPolicyJson, signPolicy } from "../domain/signed-policy.ts";
import { Lumyn } from "../lumyn.ts";
import { type RunningServer, startServer } from "../server/server.ts";
import { eventually, redisForTests, type TestRedis } from "../testing/redis.ts";
import { activatePolicy, publishPolicy } from "./policy-registry.ts";
import { announcePolicyChange, POLICY_KEY_PREFIX, PolicySync, type SyncLog } from "./policy-sync.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-sync-"));
const { redis, skip } = await redisForTests();
after(async () => {
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

function verdictPolicy(id: string, verdict: string): string {
  return `schema_version: policy.v1
policy_id: ${id}
policy_version: "1"
defaults: {mode: enforce, default_verdict: ${verdict}, default_reason_code: ${id.toUpperCase().replaceAll("-", "_")}}
rules:
  - {id: NEVER, stage: ALLOW_PATHS, if: {evidence.never_is: 1}, then: {verdict: ALLOW, reason_codes: [NEVER]}}
`;
}

function publisherKey(): SigningKey & { readonly publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey, keyId: keyId(createPublicKey(privateKey)) };
}

/** The servers' trusted publisher, and one they do not know. */
const publisher = publisherKey();
const stranger = publisherKey();

/** A policy as a publisher sends it: the envelope of `lumyn policy sign`. */
function signed(
  tenant: string,
  policy: string,
  options: { signedAt?: string; key?: SigningKey } = {},
): string {
  const envelope = signPolicy(
    options.key ?? publisher,
    tenant,
    policy,
    options.signedAt ?? new Date().toISOString(),
  );
  return JSON.stringify(signedPolicyJson(envelope));
}

function requestOf(tenant: string, requestId: string): JsonValue {
  const request = structuredClone(EXAMPLE_REQUESTS["refund-small"]?.request) as JsonObject;
  return { ...request, request_id: requestId, tenant: { tenant_id: tenant } };
}

class MemoryLog implements SyncLog {
  readonly lines: { level: string; message: string; object: object }[] = [];
  info(object: object, message: string): void {
    this.lines.push({ level: "info", message, object });
  }
  warn(object: object, message: string): void {
    this.lines.push({ level: "warn", message, object });
  }
  error(object: object, message: string): void {
    this.lines.push({ level: "error", message, object });
  }
}

interface Gateway {
  readonly lumyn: Lumyn;
  readonly sync: PolicySync;
  readonly log: MemoryLog;
}

let workspaceCount = 0;

/** Three gateways on one store, as three servers behind a load balancer would be. */
async function gateways(
  redisUrl: string,
  pollMs = 600_000,
  options: { publisherKeys?: readonly KeyObject[]; maxDocumentBytes?: number } = {},
): Promise<Gateway[]> {
  const workspace = join(root, `ws-${++workspaceCount}`);
  const opened: Gateway[] = [];
  for (let i = 0; i < 3; i++) {
    const lumyn = await Lumyn.open({ workspace });
    assert.ok(lumyn.ok);
    const log = new MemoryLog();
    const sync = await PolicySync.start({
      lumyn: lumyn.value,
      log,
      redisUrl,
      pollMs,
      publisherKeys: options.publisherKeys ?? [publisher.publicKey],
      ...(options.maxDocumentBytes ? { maxDocumentBytes: options.maxDocumentBytes } : {}),
    });
    opened.push({ lumyn: lumyn.value, sync, log });
  }
  return opened;
}

const rejections = async (gateway: Gateway, tenant: string): Promise<PolicyEvent[]> =>
  (await gateway.lumyn.store.policies.history(tenant)).filter((event) => event.type === "rejected");

async function closeAll(all: readonly Gateway[]): Promise<void> {
  for (const gateway of all) {
    await gateway.sync.close();
    await gateway.lumyn.close();
  }
}

const activeEverywhere = (all: readonly Gateway[], tenant: string, hash: string) => () =>
  all.every((gateway) => gateway.lumyn.policyFor(tenant).hash === hash);

describe("policy hot reload over Redis", { skip }, () => {
  let server: TestRedis;
  before(() => {
    server = redis as TestRedis;
  });

  it("switches every server when an activation is announced", async () => {
    const all = await gateways(server.url);
    try {
      const [first] = all as [Gateway];
      const published = await publishPolicy(first.lumyn.store, "globex", verdictPolicy("deny-all", "DENY"), {
        source: { by: "test" },
      });
      assert.ok(published.ok);
      const activated = await activatePolicy(first.lumyn.store, "globex", published.value.policyHash, {
        by: "test",
      });
      assert.ok(activated.ok);
      await announcePolicyChange(server.url, activated.value);
      await eventually(
        activeEverywhere(all, "globex", published.value.policyHash),
        "every server decides globex under the new version",
      );
      for (const [i, gateway] of all.entries()) {
        const decided = await gateway.lumyn.decide(requestOf("globex", `g-${i}`));
        assert.ok(decided.ok);
        assert.equal(decided.value.record.verdict, "DENY");
      }
      assert.equal(
        all[0]?.lumyn.policyFor("acme").hash,
        STARTER_POLICY_HASH,
        "other tenants keep the default",
      );
    } finally {
      await closeAll(all);
    }
  });

  it("adopts a publisher's signed document once, with its key as the principal, and rejects an invalid one everywhere", async () => {
    const all = await gateways(server.url);
    const client = server.client();
    try {
      const [first] = all as [Gateway];
      // JSON is YAML too: an operator may write either.
      const document =
        '{"schema_version": "policy.v1", "policy_id": "escalate-all", "policy_version": "1", "defaults": {"mode": "enforce", "default_verdict": "ESCALATE", "default_reason_code": "HOLD"}, "rules": [{"id": "NEVER", "stage": "ALLOW_PATHS", "if": {"evidence.never_is": 1}, "then": {"verdict": "ALLOW", "reason_codes": ["NEVER"]}}]}';
      await client.set(`${POLICY_KEY_PREFIX}initech`, signed("initech", document));
      let hash = "";
      await eventually(async () => {
        hash = (await first.lumyn.store.policies.active()).get("initech") ?? "";
        return hash !== "" && activeEverywhere(all, "initech", hash)();
      }, "every server adopts the operator's document");
      const history = await first.lumyn.store.policies.history("initech");
      assert.deepEqual(
        history.map((event) => [event.type, event.detail.by, event.detail.principal, event.detail.key_id]),
        [
          ["published", "redis", `publisher:${publisher.keyId}`, publisher.keyId],
          ["activated", "redis", `publisher:${publisher.keyId}`, publisher.keyId],
        ],
        "one server handled it: published and activated once, by the key that signed it",
      );

      await client.set(`${POLICY_KEY_PREFIX}initech`, signed("initech", verdictPolicy("broken", "MAYBE")));
      await eventually(
        async () => (await first.lumyn.store.policies.history("initech")).some((e) => e.type === "rejected"),
        "the invalid document is recorded as rejected",
      );
      const rejected = await rejections(first, "initech");
      assert.equal(rejected.length, 1);
      assert.equal(rejected[0]?.detail.reason, "invalid_policy");
      const problems = rejected[0]?.detail.problems as JsonObject[];
      assert.ok(
        problems.some(
          (problem) => problem.file === `redis ${POLICY_KEY_PREFIX}initech` && problem.line === 4,
        ),
      );
      assert.ok(
        all.some((gateway) =>
          gateway.log.lines.some(
            (line) =>
              line.level === "error" &&
              /rejected a policy document from Redis \(invalid_policy\)/.test(line.message) &&
              (line.object as JsonObject).tenant === "initech",
          ),
        ),
      );
      for (const gateway of all) {
        assert.equal(gateway.lumyn.policyFor("initech").hash, hash, "the last good policy stays active");
        const decided = await gateway.lumyn.decide(requestOf("initech", `i-${Math.random()}`));
        assert.ok(decided.ok);
        assert.equal(decided.value.record.verdict, "ESCALATE");
      }
    } finally {
      client.disconnect();
      await closeAll(all);
    }
  });

  it("rejects what no trusted publisher signed for the tenant, each with its reason, and keeps the last good policy", async () => {
    const all = await gateways(server.url, 600_000, { maxDocumentBytes: 64 * 1024 });
    const client = server.client();
    const key = `${POLICY_KEY_PREFIX}acme`;
    try {
      const [first] = all as [Gateway];
      const good = signed("acme", verdictPolicy("deny-all", "DENY"));
      await client.set(key, good);
      let hash = "";
      await eventually(async () => {
        hash = (await first.lumyn.store.policies.active()).get("acme") ?? "";
        return hash !== "" && activeEverywhere(all, "acme", hash)();
      }, "every server adopts the signed document");

      const allowAll = verdictPolicy("allow-all", "ALLOW");
      const goodJson = JSON.parse(good) as JsonObject;
      const cases: [string, string][] = [
        ["unsigned", allowAll],
        ["invalid_envelope", JSON.stringify({ ...goodJson, signed_at: undefined })],
        ["unknown_key", signed("acme", allowAll, { key: stranger })],
        ["bad_signature", JSON.stringify({ ...goodJson, policy: allowAll })],
        ["tenant_mismatch", signed("globex", allowAll)],
        ["stale", signed("acme", allowAll, { signedAt: "2020-01-01T00:00:00Z" })],
        ["too_large", signed("acme", `${allowAll}${"#".repeat(80 * 1024)}\n`)],
        ["invalid_policy", signed("acme", verdictPolicy("broken", "MAYBE"))],
      ];
      for (const [n, [reason, document]] of cases.entries()) {
        await client.set(key, document);
        await eventually(
          async () => (await rejections(first, "acme")).length === n + 1,
          `the ${reason} document is rejected`,
        );
        const event = (await rejections(first, "acme")).at(-1) as PolicyEvent;
        assert.equal(event.detail.reason, reason);
        assert.equal(event.detail.by, "redis");
        const problems = event.detail.problems as JsonObject[];
        assert.ok(problems.length > 0 && problems.every((problem) => problem.file === `redis ${key}`));
        assert.ok(
          all.some((gateway) =>
            gateway.log.lines.some(
              (line) =>
                line.level === "error" &&
                line.message.includes(`(${reason})`) &&
                (line.object as JsonObject).tenant === "acme" &&
                (line.object as JsonObject).reason === reason,
            ),
          ),
          `one log line says ${reason} and the tenant`,
        );
        for (const gateway of all) assert.equal(gateway.lumyn.policyFor("acme").hash, hash);
      }
      const tooLarge = (await rejections(first, "acme")).find((event) => event.detail.reason === "too_large");
      assert.equal(typeof tooLarge?.detail.size, "number", "an oversized document is known by its size");
      assert.equal((await first.lumyn.store.policies.active()).get("acme"), hash);
      for (const gateway of all) {
        const decided = await gateway.lumyn.decide(requestOf("acme", `a-${Math.random()}`));
        assert.ok(decided.ok);
        assert.equal(decided.value.record.verdict, "DENY", "decided under the last good policy");
      }
    } finally {
      client.disconnect();
      await closeAll(all);
    }
  });

  it("rejects every document, signed or not, when no publisher key is configured", async () => {
    const all = await gateways(server.url, 600_000, { publisherKeys: [] });
    const client = server.client();
    try {
      const [first] = all as [Gateway];
      await client.set(`${POLICY_KEY_PREFIX}*`, signed("*", verdictPolicy("allow-all", "ALLOW")));
      await eventually(async () => (await rejections(first, "*")).length === 1, "the document is rejected");
      assert.equal((await rejections(first, "*"))[0]?.detail.reason, "no_publisher_key");
      assert.deepEqual(await first.lumyn.store.policies.active(), new Map());
      for (const gateway of all) assert.equal(gateway.lumyn.policyFor("acme").hash, STARTER_POLICY_HASH);
    } finally {
      await client.del(`${POLICY_KEY_PREFIX}*`);
      client.disconnect();
      await closeAll(all);
    }
  });

  it("keeps deciding while Redis is down, catches up from the store, and hears announcements again when it returns", async () => {
    const all = await gateways(server.url, 200);
    try {
      const [first] = all as [Gateway];
      const versions: string[] = [];
      for (const verdict of ["DENY", "ESCALATE"]) {
        const published = await publishPolicy(
          first.lumyn.store,
          "hooli",
          verdictPolicy(`v-${verdict}`, verdict),
          {
            source: { by: "test" },
          },
        );
        assert.ok(published.ok);
        versions.push(published.value.policyHash);
      }
      await server.stop();
      for (const [i, gateway] of all.entries()) {
        const decided = await gateway.lumyn.decide(requestOf("hooli", `down-${i}`));
        assert.ok(decided.ok, "decisions continue under the last good policy");
        assert.equal(decided.value.record.verdict, "ALLOW");
      }
      const activated = await activatePolicy(first.lumyn.store, "hooli", versions[0] as string, {
        by: "test",
      });
      assert.ok(activated.ok);
      await assert.rejects(() => announcePolicyChange(server.url, activated.value));
      await eventually(
        activeEverywhere(all, "hooli", versions[0] as string),
        "every server finds the activation in the store without Redis",
      );
      assert.ok(first.log.lines.some((line) => /Redis connection lost/.test(line.message)));

      await server.resume();
      await eventually(
        () => all.every((gateway) => gateway.log.lines.some((line) => /Redis is back/.test(line.message))),
        "every server reconnects",
      );
    } finally {
      await closeAll(all);
    }
    // Announcements again: with a poll too slow to matter, only Redis can make the servers switch.
    const slow = await gateways(server.url);
    try {
      const [first] = slow as [Gateway];
      const published = await publishPolicy(first.lumyn.store, "hooli", verdictPolicy("after", "DENY"), {
        source: { by: "test" },
      });
      assert.ok(published.ok);
      const activated = await activatePolicy(first.lumyn.store, "hooli", published.value.policyHash, {
        by: "test",
      });
      assert.ok(activated.ok);
      await announcePolicyChange(server.url, activated.value);
      await eventually(
        activeEverywhere(slow, "hooli", published.value.policyHash),
        "the announcement arrives",
      );
    } finally {
      await closeAll(slow);
    }
  });

  it("serves with --redis: counts switches and rejections in /metrics, and refuses to start when Redis is unreachable", async () => {
    const workspace = join(root, "served");
    const lumyn = await Lumyn.open({ workspace });
    assert.ok(lumyn.ok);
    let running: RunningServer | undefined;
    const client = server.client();
    try {
      running = await startServer({
        lumyn: lumyn.value,
        port: 0,
        auth: false,
        log: false,
        redisUrl: server.url,
        policyPublisherKeys: [publisher.publicKey],
      });
      await client.set(`${POLICY_KEY_PREFIX}umbrella`, signed("umbrella", verdictPolicy("umbrella", "DENY")));
      await client.set(`${POLICY_KEY_PREFIX}wayne`, "rules: [");
      await eventually(async () => {
        const metrics = await (await fetch(`${running?.url}/metrics`)).text();
        return (
          /lumyn_policy_switches_total\{tenant="umbrella"\} 1/.test(metrics) &&
          /lumyn_policy_rejected_total\{reason="unsigned"\} 1/.test(metrics) &&
          /lumyn_policy_rejected_total\{reason="bad_signature"\} 0/.test(metrics)
        );
      }, "the metrics count the switch and the rejection by its reason");
    } finally {
      client.disconnect();
      if (running) await running.close();
      else await lumyn.value.close();
    }
    const again = await Lumyn.open({ workspace });
    assert.ok(again.ok);
    await assert.rejects(
      () =>
        startServer({
          lumyn: again.value,
          port: 0,
          auth: false,
          log: false,
          redisUrl: "redis://127.0.0.1:1",
        }),
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/,
    );
    await again.value.close();
  });
});
