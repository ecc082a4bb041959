import type { FastifyInstance } from "fastify";
import type { Routes } from "../../api/index.ts";
import type { AnswerOf } from "../../api/route.ts";
import type { RouteContext } from "../context.ts";
import { sendProblem } from "../problem.ts";
import { serve } from "../routing.ts";
import { tenantScope } from "./decisions.ts";

/** The service's own routes: health, readiness, metrics, the active policy and the API description. */
export function registerServiceRoutes(
  app: FastifyInstance,
  { lumyn, metrics, writeStallMs }: RouteContext,
): void {
  serve(app, "healthz", async (_request, reply) => reply.type("application/json").send('{"ok":true}'));

  serve(app, "readyz", async (_request, reply) => {
    try {
      await lumyn.store.ping();
    } catch (error) {
      metrics.storeError("ping");
      return sendProblem(reply, 503, "not_ready", `the store does not answer: ${(error as Error).message}`);
    }
    // Writes waiting is normal under load; waiting with no commit for that long is not. The younger of the
    // two ages counts, so that a write queued after a quiet hour is not taken for a stall.
    const writes = lumyn.store.writeActivity();
    const stalledMs =
      writes.pending > 0
        ? Math.min(writes.oldestPendingMs, writes.sinceLastCommitMs ?? Number.POSITIVE_INFINITY)
        : 0;
    if (stalledMs > writeStallMs) {
      return sendProblem(
        reply,
        503,
        "not_ready",
        `the store's writes are stuck: ${writes.pending} waiting, none committed for ${Math.round(stalledMs)} ms (write_stall_ms: ${writeStallMs})`,
      );
    }
    const answer: AnswerOf<Routes["readyz"], 200> = { ok: true, store: "ok", policy_hash: lumyn.policy.hash };
    return reply.type("application/json").send(JSON.stringify(answer));
  });

  serve(app, "metrics", async (request, reply) => {
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

  serve(app, "policy", async (request, reply) => {
    const tenantId = tenantScope(request, reply, request.query.tenant_id);
    if (tenantId === null) return reply;
    const { model, hash } = tenantId === undefined ? lumyn.policy : lumyn.policyFor(tenantId);
    const answer: AnswerOf<Routes["policy"], 200> = {
      ...(tenantId !== undefined ? { tenant_id: tenantId } : {}),
      policy_id: model.policyId,
      policy_version: model.policyVersion,
      policy_hash: hash,
      mode: model.defaults.mode,
    };
    return reply.type("application/json").send(JSON.stringify(answer));
  });

  serve(app, "openApi", async (_request, reply) =>
    reply.type("application/json").send(JSON.stringify(app.swagger())),
  );
}
