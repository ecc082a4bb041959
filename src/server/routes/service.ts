import type { FastifyInstance } from "fastify";
import type { RouteContext } from "../context.ts";
import { POLICY_QUERY } from "../openapi.ts";
import { sendProblem } from "../problem.ts";
import { tenantScope } from "./decisions.ts";

/** The service's own routes: health, readiness, metrics, the active policy and the API description. */
export function registerServiceRoutes(app: FastifyInstance, { lumyn, metrics }: RouteContext): void {
  app.get("/healthz", { config: { access: "public" } }, async (_request, reply) =>
    reply.type("application/json").send('{"ok":true}'),
  );

  app.get("/readyz", { config: { access: "public" } }, async (_request, reply) => {
    try {
      await lumyn.store.ping();
    } catch (error) {
      metrics.storeError("ping");
      return sendProblem(reply, 503, "not_ready", `the store does not answer: ${(error as Error).message}`);
    }
    return reply
      .type("application/json")
      .send(JSON.stringify({ ok: true, store: "ok", policy_hash: lumyn.policy.hash }));
  });

  app.get("/metrics", { config: { access: "read" } }, async (request, reply) => {
    if (request.apiKey?.tenantId !== undefined) {
      return sendProblem(
        reply,
        403,
        "tenant_forbidden",
        "metrics count every tenant's decisions; a key bound to a tenant may not read them",
      );
    }
    return reply.type(metrics.registry.contentType).send(await metrics.text());
  });

  app.get<{ Querystring: { tenant_id?: string } }>(
    "/v1/policy",
    { config: { access: "read" }, schema: { querystring: POLICY_QUERY } },
    async (request, reply) => {
      const tenantId = tenantScope(request, reply, request.query.tenant_id);
      if (tenantId === null) return reply;
      const { model, hash } = tenantId === undefined ? lumyn.policy : lumyn.policyFor(tenantId);
      return reply.type("application/json").send(
        JSON.stringify({
          ...(tenantId !== undefined ? { tenant_id: tenantId } : {}),
          policy_id: model.policyId,
          policy_version: model.policyVersion,
          policy_hash: hash,
          mode: model.defaults.mode,
        }),
      );
    },
  );

  app.get("/openapi.json", { config: { access: "any" } }, async (_request, reply) =>
    reply.type("application/json").send(JSON.stringify(app.swagger())),
  );
}
