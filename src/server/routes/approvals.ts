import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Routes } from "../../api/index.ts";
import type { AnswerOf } from "../../api/route.ts";
import {
  type Actor,
  type Approval,
  approvalSettingsFor,
  DEFAULT_FALLBACK,
  type EvaluatorFallback,
  evaluatorAnswer,
  evaluatorFallback,
  evaluatorRequest,
  isOpen,
  materialityOf,
  parseDuration,
  parseJsonBytes,
} from "../../index.ts";
import { mayRead } from "../auth.ts";
import { requestBody, validBody } from "../body.ts";
import type { RouteContext } from "../context.ts";
import { sendFailure, sendProblem } from "../problem.ts";
import { type RouteRequest, serve } from "../routing.ts";
import { tenantScope } from "./decisions.ts";

const MAX_WAIT_MS = 60_000;
const EVENTS_POLL_MS = 250;

/** Who calls: the key's principal and its roles. Never from a request body. */
function actorOf(request: FastifyRequest, reply: FastifyReply): Actor | undefined {
  const key = request.apiKey;
  if (!key) {
    sendProblem(
      reply,
      401,
      "identity_required",
      "approvals record who acted: call with an API key (its principal and roles are the actor's)",
    );
    return undefined;
  }
  return { id: key.principal, roles: [...key.roles] };
}

/** The approval routes, and the evaluator endpoint for an execution-authority layer. */
export function registerApprovalRoutes(
  app: FastifyInstance,
  context: RouteContext,
  fallback: EvaluatorFallback = DEFAULT_FALLBACK,
): void {
  const { lumyn } = context;
  // Long polls and event streams end when the server begins to close, so that shutdown does not wait on them.
  const shutdown = new AbortController();
  app.addHook("preClose", (done) => {
    shutdown.abort();
    done();
  });

  /** The approval if the caller may see it (another tenant's is not found); undefined once answered. */
  const visible = async (
    request: RouteRequest<"getApproval">,
    reply: FastifyReply,
  ): Promise<Approval | undefined> => {
    const found = await lumyn.approvals.get(request.params.id);
    if (found.ok && mayRead(request.apiKey, found.value.tenant_id)) return found.value;
    sendProblem(reply, 404, "approval_not_found", `no approval with id '${request.params.id}'`);
    return undefined;
  };

  const send = (reply: FastifyReply, approval: Approval) =>
    reply.type("application/json").send(JSON.stringify(approval));

  serve(app, "listApprovals", async (request, reply) => {
    const tenantId = tenantScope(request, reply, request.query.tenant_id);
    if (tenantId === null) return reply;
    const approvals = await lumyn.approvals.list({
      ...(request.query.state ? { state: request.query.state } : {}),
      ...(request.query.role ? { role: request.query.role } : {}),
      ...(tenantId ? { tenantId } : {}),
      ...(request.query.limit ? { limit: request.query.limit } : {}),
    });
    const answer: AnswerOf<Routes["listApprovals"], 200> = { approvals };
    return reply.type("application/json").send(JSON.stringify(answer));
  });

  serve(app, "getApproval", async (request, reply) => {
    const approval = await visible(request, reply);
    return approval ? send(reply, approval) : reply;
  });

  for (const decision of ["approve", "reject"] as const) {
    serve(app, decision, async (request, reply) => {
      const actor = actorOf(request, reply);
      if (!actor) return reply;
      const input = validBody(decision, request, reply, context, { noun: "body" });
      if (!input) return reply;
      if (!(await visible(request, reply))) return reply;
      const header = request.headers["idempotency-key"];
      const idempotencyKey =
        input.idempotency_key ?? (typeof header === "string" && header !== "" ? header : undefined);
      if (!idempotencyKey)
        return sendProblem(reply, 422, "idempotency_key_required", "a vote needs an idempotency key", [
          {
            code: "idempotency_key_required",
            message: "give idempotency_key or the Idempotency-Key header",
            pointer: "/idempotency_key",
          },
        ]);
      const result = await lumyn.approvals.vote(request.params.id, {
        actor,
        decision,
        justification: input.justification,
        idempotencyKey,
      });
      return result.ok ? send(reply, result.value) : sendFailure(reply, result);
    });
  }

  for (const command of ["override", "cancel"] as const) {
    serve(app, command, async (request, reply) => {
      const actor = actorOf(request, reply);
      if (!actor) return reply;
      const input = validBody(command, request, reply, context, { noun: "body" });
      if (!input || !(await visible(request, reply))) return reply;
      const result = await lumyn.approvals[command](request.params.id, actor, input.justification);
      return result.ok ? send(reply, result.value) : sendFailure(reply, result);
    });
  }

  serve(app, "consume", async (request, reply) => {
    const actor = actorOf(request, reply);
    if (!actor) return reply;
    const input = validBody("consume", request, reply, context, { noun: "body" });
    if (!input || !(await visible(request, reply))) return reply;
    const result = await lumyn.approvals.consume(request.params.id, actor, input.inputs_digest);
    return result.ok ? send(reply, result.value) : sendFailure(reply, result);
  });

  serve(app, "wait", async (request, reply) => {
    if (!(await visible(request, reply))) return reply;
    const timeoutMs = Math.min(parseDuration(request.query.timeout) ?? MAX_WAIT_MS, MAX_WAIT_MS);
    const closed = new AbortController();
    request.raw.once("close", () => closed.abort());
    const result = await lumyn.approvals.wait(
      request.params.id,
      timeoutMs,
      AbortSignal.any([closed.signal, shutdown.signal]),
    );
    if (!result.ok) return sendFailure(reply, result);
    return reply
      .header("lumyn-approval-state", result.value.state)
      .status(isOpen(result.value) ? 202 : 200)
      .type("application/json")
      .send(JSON.stringify(result.value));
  });

  serve(app, "events", async (request, reply) => {
    let approval = await visible(request, reply);
    if (!approval) return reply;
    reply.hijack();
    const stream = reply.raw;
    stream.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    let open = true;
    request.raw.once("close", () => {
      open = false;
    });
    const emit = (current: Approval) =>
      stream.write(`id: ${current.version}\nevent: approval\ndata: ${JSON.stringify(current)}\n\n`);
    try {
      emit(approval);
      // Until the approval reaches a terminal state (or the client leaves), every new version is an event.
      while (
        open &&
        !shutdown.signal.aborted &&
        !["REJECTED", "TIMED_OUT", "CANCELLED", "CONSUMED"].includes(approval.state)
      ) {
        await new Promise((resolve) => setTimeout(resolve, EVENTS_POLL_MS));
        const next = await lumyn.approvals.wait(approval.approval_id, 0);
        if (!next.ok) break;
        if (next.value.version !== approval.version) emit(next.value);
        approval = next.value;
      }
    } catch (error) {
      // The stream is already answered: say so on it, and in the log, rather than leave the client hanging.
      stream.write(`event: error\ndata: ${JSON.stringify({ code: "storage_unavailable" })}\n\n`);
      request.log.warn(
        { error: error instanceof Error ? error.message : String(error) },
        "approval events ended",
      );
    } finally {
      stream.end();
    }
    return reply;
  });

  serve(app, "evaluate", async (request, reply) => {
    const bytes = requestBody(request, reply, context);
    if (!bytes) return reply;
    const parsed = parseJsonBytes(bytes, { maxBytes: context.bodyLimit });
    if (!parsed.ok) return sendFailure(reply, parsed);
    const mapped = evaluatorRequest(parsed.value, request.apiKey);
    if (!mapped.ok) return sendFailure(reply, mapped);
    const { request: decisionRequest, requester } = mapped.value;
    const decided = await lumyn.decide(decisionRequest, requester ? { requester } : {});
    const materiality = materialityOf(parsed.value) ?? "HIGH";
    if (!decided.ok && decided.kind !== "storage") return sendFailure(reply, decided);
    if (!decided.ok || decided.value.status === "unavailable") {
      const answer = evaluatorFallback(materiality, fallback);
      request.log.warn(
        { materiality, decision: answer.decision, reason_codes: answer.reason_codes },
        "evaluator fallback: the policy could not be evaluated",
      );
      context.metrics.storeError("evaluate");
      return reply.type("application/json").send(JSON.stringify(answer));
    }
    const { record, approval } = decided.value;
    const answer = evaluatorAnswer(
      record,
      approvalSettingsFor(lumyn.loadedPolicy(record.policy.policy_hash) ?? lumyn.policy, record),
    );
    const answered: AnswerOf<Routes["evaluate"], 200> = {
      ...answer,
      ...(approval ? { approval_id: approval.approval_id } : {}),
    };
    return reply.type("application/json").send(JSON.stringify(answered));
  });
}
