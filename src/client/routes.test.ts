import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ROUTES, type RouteName } from "../api/index.ts";
import { bigRefundPolicy } from "../testing/approval-policy.ts";
import { type OpenApiDocument, schemaChecker } from "../testing/openapi.ts";
import { exampleRequest, startTestServer, type TestServer } from "../testing/server.ts";
import { LumynClient } from "./index.ts";

/** One request the client made, and what it was answered. */
interface Exchange {
  readonly route: RouteName;
  readonly status: number;
  readonly type: string;
  readonly json?: unknown;
}

/** The route of src/api a request is for, if there is one. */
function routeOf(method: string, path: string): RouteName | undefined {
  return (Object.keys(ROUTES) as RouteName[]).find(
    (name) =>
      ROUTES[name].method === method &&
      new RegExp(`^${ROUTES[name].url.replace(/:\w+/g, "[^/]+")}$`).test(path),
  );
}

describe("lumyn/client and the routes of src/api", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ policy: bigRefundPolicy("{ approver_roles: [finance] }") });
  });
  after(() => server.close());

  it("has a method for every route, calls no route that is not defined, and gets the answers the document describes", async () => {
    const exchanges: Exchange[] = [];
    const recording: typeof fetch = async (input, init) => {
      const method = init?.method ?? "GET";
      const path = new URL(String(input)).pathname;
      const route = routeOf(method, path);
      assert.ok(route, `the client called ${method} ${path}, which no route of src/api defines`);
      const response = await fetch(input, init);
      const type = response.headers.get("content-type") ?? "";
      exchanges.push({
        route,
        status: response.status,
        type,
        ...(type.startsWith("application/json") ? { json: await response.clone().json() } : {}),
      });
      return response;
    };
    const called = new Set<string>();
    const client = async (name: string, roles: string[]) => {
      const key = await server.key({ scopes: ["admin"], name, roles });
      return new Proxy(new LumynClient({ baseUrl: server.url, apiKey: key, fetch: recording }), {
        get(target, method, receiver) {
          const value = Reflect.get(target, method, receiver);
          if (typeof value !== "function") return value;
          called.add(String(method));
          return value.bind(target);
        },
      });
    };
    // The agent asks; people with other keys decide (separation of duties keeps the requester out).
    const lumyn = await client("agent-7", []);
    const approver = await client("alice", ["finance", "override"]);

    assert.equal(await lumyn.healthy(), true);
    assert.equal(await lumyn.ready(), true);
    const document = (await lumyn.openApi()) as unknown as OpenApiDocument;
    assert.equal((await lumyn.policy()).policy_id, "big-refunds");
    assert.match(await lumyn.metrics(), /^# HELP lumyn_/m);

    const escalate = async (requestId: string) => {
      const decided = await lumyn.decide(
        exampleRequest("refund-small", {
          request_id: requestId,
          action: { type: "support.refund", intent: "refund", amount: { value: 900, currency: "USD" } },
        }),
      );
      assert.ok(decided.approvalId, "the ESCALATE opened an approval");
      return { record: decided.record, approvalId: decided.approvalId };
    };
    const first = await escalate("routes-1");
    const id = first.record.decision_id;
    assert.deepEqual(await lumyn.getDecision(id), first.record);
    assert.equal((await lumyn.explain(id)).verdict, "ESCALATE");
    assert.ok((await lumyn.pack(id)).length > 0);
    assert.equal((await lumyn.listDecisions({ limit: 1 })).decisions.length, 1);
    for await (const record of lumyn.decisions({ verdict: "ESCALATE" }))
      assert.equal(record.verdict, "ESCALATE");
    assert.equal((await lumyn.stats({ by: "verdict" })).groups.ESCALATE, 1);

    assert.equal((await lumyn.listApprovals({ state: "WAITING_FOR_HUMAN" })).length, 1);
    assert.equal((await lumyn.getApproval(first.approvalId)).state, "WAITING_FOR_HUMAN");
    assert.equal((await lumyn.waitForApproval(first.approvalId, 1)).state, "WAITING_FOR_HUMAN");
    for await (const approval of lumyn.approvalEvents(first.approvalId)) {
      assert.equal(approval.state, "WAITING_FOR_HUMAN");
      break;
    }
    const vote = { justification: "checked", idempotencyKey: "routes-vote-1" };
    assert.equal((await approver.vote(first.approvalId, "approve", vote)).state, "APPROVED");
    assert.equal(
      (await lumyn.consume(first.approvalId, first.record.determinism.inputs_digest)).state,
      "CONSUMED",
    );
    const rejected = await escalate("routes-2");
    const reject = { justification: "no", idempotencyKey: "routes-vote-2" };
    assert.equal((await approver.vote(rejected.approvalId, "reject", reject)).state, "REJECTED");
    assert.equal(
      (await approver.override((await escalate("routes-3")).approvalId, "outage")).state,
      "OVERRIDDEN",
    );
    assert.equal(
      (await lumyn.cancel((await escalate("routes-4")).approvalId, "not needed")).state,
      "CANCELLED",
    );
    const answer = await lumyn.evaluate({
      instance: { instance_id: "run-1", workflow_id: "payout", materiality: "LOW" },
      context: { domain: "payments.payout" },
      identity: { actor_id: "payout-agent" },
    });
    assert.equal(answer.decision, "ALLOW");
    // Last: a label feeds memory, which would change how the look-alike requests above are decided.
    assert.equal((await lumyn.label(id, { label: "success" })).type, "label");

    const methods = Object.getOwnPropertyNames(LumynClient.prototype).filter(
      (name) => name !== "constructor",
    );
    assert.deepEqual([...called].sort(), methods.sort(), "every method of the client is exercised above");

    const reached = new Set<RouteName>();
    const check = schemaChecker(document);
    for (const exchange of exchanges) {
      const name = exchange.route;
      reached.add(name);
      const path = ROUTES[name].url.replace(/:(\w+)/g, "{$1}");
      const operation = document.paths[path]?.[ROUTES[name].method.toLowerCase()];
      const media = operation?.responses[String(exchange.status)]?.content ?? {};
      const documented = Object.keys(media).find((type) => exchange.type.startsWith(type));
      assert.ok(
        documented,
        `${name} answered ${exchange.status} ${exchange.type}, which the document does not describe`,
      );
      const schema = media[documented]?.schema;
      if (exchange.json !== undefined && schema)
        assert.deepEqual(
          check(schema, exchange.json),
          [],
          `${name} answered ${exchange.status} off its schema`,
        );
    }
    assert.deepEqual([...reached].sort(), Object.keys(ROUTES).sort(), "every route of src/api is called");
  });
});
