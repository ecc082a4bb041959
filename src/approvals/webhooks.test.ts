import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { signBody } from "../core/digest.ts";
import type { JsonObject, JsonValue } from "../core/json.ts";
import { Lumyn } from "../lumyn.ts";
import { bigRefundPolicy } from "../testing/approval-policy.ts";
import { addWebhook, WebhookDispatcher } from "./webhooks.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-webhooks-"));
after(() => rmSync(root, { recursive: true, force: true }));

const POLICY = bigRefundPolicy("{ approver_roles: [finance] }");

interface Received {
  readonly body: string;
  readonly signature: string | undefined;
  readonly eventId: string | undefined;
  readonly attempt: string | undefined;
}

/** A real HTTP receiver that fails its first `failures` requests with 503. */
async function receiver(failures: number) {
  const received: Received[] = [];
  let answered = 0;
  const server = createServer((request: IncomingMessage, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      const header = (name: string) => {
        const value = request.headers[name];
        return typeof value === "string" ? value : undefined;
      };
      received.push({
        body,
        signature: header("x-lumyn-signature"),
        eventId: header("x-lumyn-event-id"),
        attempt: header("x-lumyn-delivery-attempt"),
      });
      response.statusCode = answered++ < failures ? 503 : 204;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/lumyn`, received, close: () => server.close() };
}

describe("approval webhooks", () => {
  it("delivers each transition in order, signed, retrying a failing receiver with backoff, and logs every attempt", async () => {
    const hook = await receiver(2);
    writeFileSync(join(root, "policy.yml"), POLICY);
    const opened = await Lumyn.open({ workspace: join(root, "ws"), policyPath: join(root, "policy.yml") });
    assert.ok(opened.ok);
    const lumyn = opened.value;
    try {
      const secret = "a-shared-secret-of-the-receiver";
      const added = await addWebhook(lumyn.store, { url: hook.url, secret, name: "ops" });
      assert.ok(added.ok);
      assert.equal((await addWebhook(lumyn.store, { url: "ftp://example.com" })).ok, false);
      assert.equal((await addWebhook(lumyn.store, { url: "not a url" })).ok, false);

      const base = EXAMPLE_REQUESTS["refund-small"]?.request as JsonObject;
      const decided = await lumyn.decide({
        ...base,
        request_id: "w-1",
        action: { ...(base.action as JsonObject), amount: { value: 900, currency: "USD" } },
      } as JsonValue);
      assert.ok(decided.ok && decided.value.approval);
      const approvalId = decided.value.approval.approval_id;
      const voted = await lumyn.approvals.vote(approvalId, {
        actor: { id: "alice", roles: ["finance"] },
        decision: "approve",
        justification: "ok",
        idempotencyKey: "k",
      });
      assert.ok(voted.ok);

      const dispatcher = new WebhookDispatcher(lumyn.store, { retryBaseMs: 1 });
      for (let pass = 0; pass < 100 && hook.received.length < 4; pass++) {
        await dispatcher.deliverDue();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const bodies = hook.received.map((r) => JSON.parse(r.body));
      assert.deepEqual(
        bodies.map((b) => b.data.to),
        ["WAITING_FOR_HUMAN", "WAITING_FOR_HUMAN", "WAITING_FOR_HUMAN", "APPROVED"],
        "the failed first event is retried until delivered, before the next one",
      );
      assert.deepEqual(
        hook.received.map((r) => r.attempt),
        ["1", "2", "3", "1"],
      );
      for (const r of hook.received) {
        assert.equal(r.signature, signBody(secret, r.body), "signed with the webhook's secret");
        assert.equal(r.eventId, JSON.parse(r.body).event_id);
      }
      assert.equal(bodies[3].data.approval_id, approvalId);

      const log = await lumyn.store.webhooks.deliveries({});
      assert.deepEqual(
        log.map((d) => [d.outcome, d.attempt, d.httpStatus]),
        [
          ["delivered", 1, 204],
          ["delivered", 3, 204],
          ["failed", 2, 503],
          ["failed", 1, 503],
        ],
      );
      await dispatcher.deliverDue();
      assert.equal(hook.received.length, 4, "nothing is delivered twice");
    } finally {
      hook.close();
      await lumyn.close();
    }
  });

  it("abandons an event after its last attempt, logs it, and moves on; one process at a time holds a webhook", async () => {
    const opened = await Lumyn.open({ workspace: join(root, "ws-2") });
    assert.ok(opened.ok);
    const lumyn = opened.value;
    try {
      const added = await addWebhook(lumyn.store, { url: "http://127.0.0.1:9/nobody-listens" });
      assert.ok(added.ok);
      const decided = await lumyn.decide(EXAMPLE_REQUESTS["refund-small"]?.request as JsonValue);
      assert.ok(decided.ok);
      await lumyn.store.log.append({
        decisionId: decided.value.record.decision_id,
        type: "approval_transition",
        data: { to: "CANCELLED" },
      });
      const dispatcher = new WebhookDispatcher(lumyn.store, { retryBaseMs: 1, maxAttempts: 2, holder: "a" });
      await dispatcher.deliverDue();
      await new Promise((resolve) => setTimeout(resolve, 5));
      await dispatcher.deliverDue();
      const log = await lumyn.store.webhooks.deliveries({ webhookId: added.value.webhookId });
      assert.deepEqual(
        log.map((d) => [d.outcome, d.attempt]),
        [
          ["abandoned", 2],
          ["failed", 1],
        ],
      );
      assert.match(log[1]?.error ?? "", /fetch failed|ECONNREFUSED|TypeError/);
      const [webhook] = await lumyn.store.webhooks.list();
      assert.equal(webhook?.attempts, 0, "the abandoned event is behind the cursor");

      const now = new Date().toISOString();
      const later = new Date(Date.now() + 60_000).toISOString();
      assert.equal(
        await lumyn.store.webhooks.claim(added.value.webhookId, "b", later, now),
        false,
        "a holds it",
      );
      assert.equal(
        await lumyn.store.webhooks.claim(added.value.webhookId, "a", later, now),
        true,
        "a renews it",
      );
      assert.equal(
        await lumyn.store.webhooks.claim(added.value.webhookId, "b", later, later),
        true,
        "expired: b takes it",
      );
    } finally {
      await lumyn.close();
    }
  });
});
