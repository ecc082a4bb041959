import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Routes } from "../../api/index.ts";
import type { AnswerOf } from "../../api/route.ts";
import {
  type DecisionRecord,
  explanationJson,
  packDecision,
  parseJsonBytes,
  stringify,
  tenantOf,
} from "../../index.ts";
import { mayRead, requesterOf, tenantMismatch } from "../auth.ts";
import { requestBody, validBody } from "../body.ts";
import type { RouteContext } from "../context.ts";
import { sendFailure, sendProblem } from "../problem.ts";
import { type RouteRequest, serve } from "../routing.ts";

/** The decision routes: decide, read, explain, label, list and count. */
export function registerDecisionRoutes(app: FastifyInstance, context: RouteContext): void {
  const { lumyn, metrics } = context;

  serve(app, "decide", async (request, reply) => {
    const body = requestBody(request, reply, context);
    if (!body) return reply;
    const started = performance.now();
    const parsed = parseJsonBytes(body, { maxBytes: context.bodyLimit });
    if (!parsed.ok) return sendFailure(reply, parsed);
    const forbidden = tenantMismatch(request.apiKey, parsed.value);
    if (forbidden) return sendProblem(reply, 403, forbidden.code, forbidden.message, [forbidden]);
    const decided = await lumyn.decide(
      parsed.value,
      request.apiKey ? { requester: requesterOf(request.apiKey) } : {},
    );
    if (!decided.ok) return sendFailure(reply, decided);
    const { record, status, json } = decided.value;
    const seconds = (performance.now() - started) / 1000;
    metrics.decision(record.verdict, status, record.reason_codes, seconds);
    if (status === "unavailable") metrics.storeError("put_decision");
    request.log.info(
      {
        decision_id: record.decision_id,
        tenant_id: tenantOf(record.request),
        action_type: record.request.action.type,
        verdict: record.verdict,
        reason_codes: record.reason_codes,
        status,
        latency_ms: Math.round(seconds * 1e5) / 100,
      },
      "decision",
    );
    if (decided.value.approval) reply.header("lumyn-approval-id", decided.value.approval.approval_id);
    return reply.header("lumyn-decision-status", status).type("application/json").send(json);
  });

  serve(app, "getDecision", async (request, reply) => {
    // The stored text is the record's canonical JSON already: sent as it is, never parsed.
    const stored = await lumyn.store.decisions.getJson(request.params.id);
    if (
      !stored ||
      (request.apiKey?.tenantId !== undefined && !mayRead(request.apiKey, recordTenant(stored.json)))
    )
      return decisionNotFound(reply, request.params.id);
    return reply.type("application/json").send(stored.json);
  });

  serve(app, "explain", async (request, reply) => {
    const explained = await lumyn.explain(request.params.id);
    if (!explained.ok) return sendFailure(reply, explained);
    const { record, explanation } = explained.value;
    if (!mayRead(request.apiKey, tenantOf(record.request))) return decisionNotFound(reply, request.params.id);
    return reply
      .type("application/json")
      .send(stringify({ decision_id: record.decision_id, ...explanationJson(explanation) }));
  });

  serve(app, "pack", async (request, reply) => {
    const record = await readableRecord(request, reply, context);
    if (!record) return reply;
    const packed = await packDecision(lumyn.store, record.decision_id);
    if (!packed.ok) return sendFailure(reply, packed);
    return reply
      .type("application/zip")
      .header("content-disposition", `attachment; filename="${record.decision_id}.zip"`)
      .send(Buffer.from(packed.value.bytes));
  });

  serve(app, "label", async (request, reply) => {
    const input = validBody("label", request, reply, context, { noun: "label" });
    if (!input) return reply;
    const record = await readableRecord(request, reply, context);
    if (!record) return reply;
    const { label, summary, severity } = input;
    const labelled = await lumyn.label(record.decision_id, label, {
      ...(summary !== undefined ? { summary } : {}),
      ...(severity !== undefined ? { severity } : {}),
    });
    if (!labelled.ok) return sendFailure(reply, labelled);
    const event = labelled.value;
    return reply
      .code(201)
      .type("application/json")
      .send(
        stringify({
          event_id: event.eventId,
          decision_id: event.decisionId,
          type: event.type,
          created_at: event.createdAt,
          data: event.data,
        }),
      );
  });

  serve(app, "listDecisions", async (request, reply) => {
    const query = request.query;
    const tenantId = tenantScope(request, reply, query.tenant_id);
    if (tenantId === null) return reply;
    const window = timeWindow(reply, query);
    if (!window) return reply;
    const page = await lumyn.store.decisions.list({
      ...optional("verdict", query.verdict),
      ...optional("reasonCode", query.reason_code),
      ...optional("actionType", query.action_type),
      ...optional("subjectId", query.subject_id),
      ...optional("tenantId", tenantId),
      ...window,
      ...optional("limit", query.limit),
      ...optional("cursor", query.cursor),
    });
    // The stored texts are the records' canonical JSON already: sent as they are, parsed only to hold a
    // tenant's listing to the tenant its records name (the column that found them can be edited).
    const shown =
      tenantId === undefined
        ? page.decisions
        : page.decisions.filter((decision) => recordTenant(decision.json) === tenantId);
    if (shown.length < page.decisions.length)
      request.log.warn(
        {
          tenant_id: tenantId,
          decision_ids: page.decisions.filter((d) => !shown.includes(d)).map((d) => d.decisionId),
        },
        "decisions whose tenant column differs from their record were left out: run `lumyn verify`",
      );
    const records = shown.map((decision) => decision.json).join(",");
    const next = page.nextCursor ? `,"next_cursor":${JSON.stringify(page.nextCursor)}` : "";
    return reply.type("application/json").send(`{"decisions":[${records}]${next}}`);
  });

  serve(app, "stats", async (request, reply) => {
    const query = request.query;
    const tenantId = tenantScope(request, reply, query.tenant_id);
    if (tenantId === null) return reply;
    const window = timeWindow(reply, query);
    if (!window) return reply;
    const stats = await lumyn.stats({ by: query.by, ...optional("tenantId", tenantId), ...window });
    const groups: Record<string, number> = {};
    for (const group of stats.groups) groups[group.key] = group.count;
    const answer: AnswerOf<Routes["stats"], 200> = {
      total: stats.total,
      by: query.by,
      ...window,
      ...optional("tenant_id", tenantId),
      groups,
    };
    return reply.type("application/json").send(JSON.stringify(answer));
  });
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * A stored record the caller may see; undefined once a 404 has been sent. A record of another tenant is
 * "not found" too, so that ids cannot be probed across tenants.
 */
async function readableRecord(
  request: RouteRequest<"pack" | "label">,
  reply: FastifyReply,
  { lumyn }: RouteContext,
): Promise<DecisionRecord | undefined> {
  const shown = await lumyn.show(request.params.id);
  if (shown.ok && mayRead(request.apiKey, tenantOf(shown.value.request))) return shown.value;
  decisionNotFound(reply, request.params.id);
  return undefined;
}

/**
 * The tenant a stored record belongs to, read from the record itself (what the audit log covers), not from
 * the indexed column a database administrator could edit to hand it to another tenant.
 */
function recordTenant(json: string): string {
  return tenantOf((JSON.parse(json) as DecisionRecord).request);
}

function decisionNotFound(reply: FastifyReply, decisionId: string): FastifyReply {
  return sendProblem(reply, 404, "decision_not_found", `no decision with id '${decisionId}'`);
}

/**
 * The tenant a list or count is limited to: the key's tenant for a tenant-bound key (naming another is 403),
 * else the one asked for. `null` once a problem has been sent.
 */
export function tenantScope(
  request: FastifyRequest,
  reply: FastifyReply,
  asked: string | undefined,
): string | undefined | null {
  const bound = request.apiKey?.tenantId;
  if (bound === undefined) return asked;
  if (asked !== undefined && asked !== bound) {
    sendProblem(reply, 403, "tenant_forbidden", `this key is bound to tenant '${bound}', not '${asked}'`, [
      { code: "tenant_forbidden", message: `tenant '${asked}' is not this key's`, pointer: "/tenant_id" },
    ]);
    return null;
  }
  return bound;
}

/**
 * `since` / `until` as stored `created_at` values (UTC, whole seconds). Both round up: `created_at` has
 * whole seconds, so a record at 10:00:00 is before since=10:00:00.5 and before until=10:00:00.5.
 */
function timeWindow(
  reply: FastifyReply,
  query: { readonly since?: string; readonly until?: string },
): { since?: string; until?: string } | undefined {
  const window: { since?: string; until?: string } = {};
  for (const name of ["since", "until"] as const) {
    const value = query[name];
    if (value === undefined) continue;
    const time = parseTime(value);
    if (time === undefined) {
      sendProblem(reply, 422, "invalid_query", `${name} '${value}' is not a valid time`, [
        {
          code: "time",
          message: `'${value}' is not a valid time`,
          pointer: `/${name}`,
          expected: "e.g. 2026-05-01T00:00:00Z",
        },
      ]);
      return undefined;
    }
    window[name] = `${new Date(Math.ceil(time / 1000) * 1000).toISOString().slice(0, 19)}Z`;
  }
  return window;
}

const TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch of an ISO 8601 time with a zone; undefined for impossible dates (Feb 31). */
function parseTime(value: string): number | undefined {
  const match = TIME.exec(value);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
  const local = new Date(Date.UTC(year as number, (month as number) - 1, day, hour, minute, second));
  if (
    local.getUTCFullYear() !== year ||
    local.getUTCMonth() !== (month as number) - 1 ||
    local.getUTCDate() !== day ||
    local.getUTCHours() !== hour ||
    local.getUTCMinutes() !== minute
  ) {
    return undefined;
  }
  const fraction = match[7] ? Number(match[7]) * 1000 : 0;
  const offset = match[8] ? (match[8] === "-" ? -1 : 1) * (Number(match[9]) * 60 + Number(match[10])) : 0;
  return local.getTime() + fraction - offset * 60_000;
}
