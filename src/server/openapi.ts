import { VERDICTS } from "../core/verdict.ts";
import { VERSION } from "../core/version.ts";
import { APPROVAL_STATES } from "../domain/approval.ts";
import requestSchema from "../schemas/decision_request.v1.schema.json" with { type: "json" };
import { STATS_DIMENSIONS } from "../store/decisions.ts";
import { MAX_PAGE_SIZE } from "../store/queries.ts";
import { SCOPES } from "./api-keys.ts";

/**
 * The query-string schemas: the routes validate with them and the OpenAPI document describes them, so the two
 * cannot disagree.
 */
const TIME = {
  type: "string",
  pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$",
  description: "ISO 8601 date and time with a zone, e.g. 2026-05-01T00:00:00Z",
};

export const LIST_QUERY = {
  type: "object",
  additionalProperties: false,
  properties: {
    verdict: { type: "string", enum: [...VERDICTS] },
    reason_code: { type: "string", pattern: "^[A-Z0-9_]+$" },
    action_type: { type: "string", minLength: 1 },
    subject_id: { type: "string", minLength: 1 },
    tenant_id: { type: "string", minLength: 1 },
    since: { ...TIME, description: `inclusive lower bound on created_at; ${TIME.description}` },
    until: { ...TIME, description: `exclusive upper bound on created_at; ${TIME.description}` },
    limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_SIZE, default: 50 },
    cursor: {
      type: "string",
      pattern: "^[0-9A-HJKMNP-TV-Z]{26}$",
      description: "next_cursor of the previous page",
    },
  },
} as const;

export const STATS_QUERY = {
  type: "object",
  additionalProperties: false,
  properties: {
    by: { type: "string", enum: [...STATS_DIMENSIONS], default: "verdict" },
    since: LIST_QUERY.properties.since,
    until: LIST_QUERY.properties.until,
    tenant_id: LIST_QUERY.properties.tenant_id,
  },
} as const;

export const POLICY_QUERY = {
  type: "object",
  additionalProperties: false,
  properties: {
    tenant_id: {
      ...LIST_QUERY.properties.tenant_id,
      description: "The tenant whose policy to show: its active registry version, else the default",
    },
  },
} as const;

export const LABEL_BODY = {
  type: "object",
  additionalProperties: false,
  required: ["label"],
  properties: {
    label: { type: "string", enum: ["failure", "success"] },
    summary: {
      type: "string",
      description: "what happened; shown beside the decision when it is a neighbour",
    },
    severity: { type: "integer", minimum: 1, maximum: 5 },
  },
} as const;

export const APPROVALS_QUERY = {
  type: "object",
  additionalProperties: false,
  properties: {
    state: { type: "string", enum: [...APPROVAL_STATES] },
    role: { type: "string", minLength: 1, description: "only approvals this role may vote on now" },
    tenant_id: { type: "string", minLength: 1 },
    limit: { type: "integer", minimum: 1, maximum: 500, default: 50 },
  },
} as const;

export const WAIT_QUERY = {
  type: "object",
  additionalProperties: false,
  properties: {
    timeout: {
      type: "string",
      pattern: "^[1-9][0-9]{0,6}[sm]$",
      default: "30s",
      description: "how long to hold the request open while the approval waits, at most 60s",
    },
  },
} as const;

export const VOTE_BODY = {
  type: "object",
  additionalProperties: false,
  required: ["justification"],
  properties: {
    justification: { type: "string", minLength: 1, pattern: "\\S", description: "why (recorded)" },
    idempotency_key: {
      type: "string",
      minLength: 1,
      maxLength: 200,
      description:
        "a retried vote with the same key answers the same; also accepted as the Idempotency-Key header",
    },
  },
} as const;

export const JUSTIFICATION_BODY = {
  type: "object",
  additionalProperties: false,
  required: ["justification"],
  properties: { justification: VOTE_BODY.properties.justification },
} as const;

export const CONSUME_BODY = {
  type: "object",
  additionalProperties: false,
  properties: {
    inputs_digest: {
      type: "string",
      pattern: "^sha256:[0-9a-f]{64}$",
      description: "the action's inputs_digest: refused unless it is the one approved",
    },
  },
} as const;

/** The request schema with its `$defs` moved to `components.schemas` (where OpenAPI references resolve). */
function requestComponents(): Record<string, unknown> {
  const { $defs, $schema: _dialect, $id: _id, ...schema } = requestSchema as Record<string, unknown>;
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (value === null || typeof value !== "object") return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        key,
        key === "$ref" && typeof inner === "string"
          ? inner.replace("#/$defs/", "#/components/schemas/")
          : rewrite(inner),
      ]),
    );
  };
  return {
    DecisionRequest: rewrite(schema),
    ...(rewrite($defs ?? {}) as Record<string, unknown>),
  };
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ref("Problem") } },
});
const json = (description: string, schema: unknown) => ({
  description,
  content: { "application/json": { schema } },
});
const AUTH_ERRORS = {
  "401": problem("no key, an unknown or revoked key (`auth_required`, `invalid_key`, `key_revoked`)"),
  "403": problem("the key lacks the route's scope, or is bound to another tenant"),
  "429": problem("the key's rate limit is reached; `Retry-After` says when to try again"),
};
const queryParameters = (schema: { properties: Record<string, unknown> }) =>
  Object.entries(schema.properties).map(([name, parameter]) => ({ name, in: "query", schema: parameter }));
const idParameter = { name: "id", in: "path", required: true, schema: { type: "string" } };
const scope = (name: string) => `Scope: \`${name}\`.`;

const approvalId = { ...idParameter, description: "the approval's id" };
const approvalJson = json("the approval", ref("Approval"));
const CHANGE_ERRORS = {
  "400": problem("malformed JSON"),
  ...AUTH_ERRORS,
  "404": problem("no such approval (or one of another tenant)"),
  "409": problem(
    "closed, already voted, consumed, expired, or the idempotency key was used for another vote",
  ),
  "415": problem("the body is not application/json"),
  "422": problem("an invalid body"),
};

function approvalPaths(): Record<string, unknown> {
  const change = (summary: string, scopeName: string, body: unknown, extra = "") => ({
    post: {
      summary,
      description: `${scope(scopeName)} The actor and its roles are the calling key's name and roles.${extra}`,
      parameters: [approvalId],
      requestBody: { required: true, content: { "application/json": { schema: body } } },
      responses: { "200": approvalJson, ...CHANGE_ERRORS },
    },
  });
  return {
    "/v1/approvals": {
      get: {
        summary: "Approvals, newest first",
        description: scope("read"),
        parameters: queryParameters(APPROVALS_QUERY),
        responses: {
          "200": json("the approvals", {
            type: "object",
            properties: { approvals: { type: "array", items: ref("Approval") } },
          }),
          ...AUTH_ERRORS,
        },
      },
    },
    "/v1/approvals/{id}": {
      get: {
        summary: "An approval: state, votes, timeline, authority record",
        description: scope("read"),
        parameters: [approvalId],
        responses: { "200": approvalJson, ...AUTH_ERRORS, "404": problem("no such approval") },
      },
    },
    "/v1/approvals/{id}/approve": change("Approve (one vote; quorum approves)", "approve", VOTE_BODY),
    "/v1/approvals/{id}/reject": change("Reject (one rejection rejects)", "approve", VOTE_BODY),
    "/v1/approvals/{id}/override": change(
      "Force through (needs the override role)",
      "approve",
      JUSTIFICATION_BODY,
    ),
    "/v1/approvals/{id}/cancel": change("Withdraw a waiting approval", "approve", JUSTIFICATION_BODY),
    "/v1/approvals/{id}/consume": change(
      "Redeem an approved approval right before acting, once",
      "decide",
      CONSUME_BODY,
      " A second consume, or one after the deadline, is 409.",
    ),
    "/v1/approvals/{id}/wait": {
      get: {
        summary:
          "Long poll: answers when the approval is resolved, or when the timeout passes (202, still waiting)",
        description: scope("read"),
        parameters: [approvalId, ...queryParameters(WAIT_QUERY)],
        responses: {
          "200": approvalJson,
          "202": approvalJson,
          ...AUTH_ERRORS,
          "404": problem("no such approval"),
        },
      },
    },
    "/v1/approvals/{id}/events": {
      get: {
        summary: "Server-sent events: the approval now, then each new version until it is final",
        description: scope("read"),
        parameters: [approvalId],
        responses: {
          "200": {
            description: "text/event-stream of `approval` events",
            content: { "text/event-stream": {} },
          },
        },
      },
    },
    "/v1/evaluate": {
      post: {
        summary: "Policy evaluator for an execution-authority layer (Gantral's evaluator input)",
        description: `${scope("decide")} Maps the input onto a decision request (docs/approvals.md), decides and stores it; ESCALATE answers REQUIRE_HUMAN, ABSTAIN answers DENY.`,
        requestBody: { required: true, content: { "application/json": { schema: { type: "object" } } } },
        responses: {
          "200": json("the evaluator answer", {
            type: "object",
            properties: {
              decision: { enum: ["ALLOW", "REQUIRE_HUMAN", "DENY"] },
              approver_roles: { type: "array", items: { type: "string" } },
              timeout: { type: ["string", "null"] },
              escalation_roles: { type: "array", items: { type: "string" } },
              decision_id: { type: ["string", "null"] },
              reason_codes: { type: "array", items: { type: "string" } },
              approval_id: { type: "string" },
            },
          }),
          "400": problem("malformed JSON"),
          ...AUTH_ERRORS,
          "422": problem("an invalid evaluator input (each problem with its JSON pointer)"),
        },
      },
    },
  };
}

/** The OpenAPI 3.1 description of every route, served at `/openapi.json` and browsable at `/docs`. */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "Lumyn decision service",
      version: VERSION,
      description:
        "Ask before an agent acts: POST a decision request, get a durable decision record (ALLOW, DENY, ESCALATE or ABSTAIN with reason codes). Every error is an RFC 9457 problem document with a stable `code`.",
    },
    security: [{ bearer: [] }],
    paths: {
      "/v1/decide": {
        post: {
          summary: "Decide a request and store its record",
          description: `${scope("decide")} Idempotent on (tenant, request_id): a repeat returns the stored record (header \`lumyn-decision-status: duplicate\`); the same request_id with a different body is 409. When the store cannot be written the answer is the fail-closed record (ABSTAIN, STORAGE_UNAVAILABLE; \`lumyn-decision-status: unavailable\`). With a signing secret configured, \`X-Lumyn-Signature: sha256:<hex HMAC-SHA256 of the body>\` is required.`,
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref("DecisionRequest") } },
          },
          responses: {
            "200": json("the decision record (decision_record.v1)", ref("DecisionRecord")),
            "400": problem("malformed JSON (with line and column)"),
            ...AUTH_ERRORS,
            "409": problem("the request_id was used for a different request"),
            "413": problem("the body is over the limit"),
            "415": problem("the body is not application/json"),
            "422": problem("the request does not match decision_request.v1 (a pointer per problem)"),
          },
        },
      },
      "/v1/decisions": {
        get: {
          summary: "List decisions, newest first",
          description: `${scope("read")} Cursor pagination that stays stable while decisions arrive.`,
          parameters: queryParameters(LIST_QUERY),
          responses: {
            "200": json("a page", {
              type: "object",
              required: ["decisions"],
              properties: {
                decisions: { type: "array", items: ref("DecisionRecord") },
                next_cursor: { type: "string" },
              },
            }),
            ...AUTH_ERRORS,
            "422": problem("an invalid query parameter (pointer `/<name>`)"),
          },
        },
      },
      "/v1/decisions/{id}": {
        get: {
          summary: "A stored decision record",
          description: scope("read"),
          parameters: [idParameter],
          responses: {
            "200": json("the record", ref("DecisionRecord")),
            ...AUTH_ERRORS,
            "404": problem("no such decision (or one of another tenant)"),
          },
        },
      },
      "/v1/decisions/{id}/explain": {
        get: {
          summary: "Why a stored decision got its verdict, rule by rule",
          description: scope("read"),
          parameters: [idParameter],
          responses: {
            "200": json("each rule, each condition with the value it saw, and why the verdict won", {
              type: "object",
            }),
            ...AUTH_ERRORS,
            "404": problem("no such decision"),
          },
        },
      },
      "/v1/decisions/{id}/pack": {
        get: {
          summary: "A stored decision as a decision pack (zip) that `lumyn replay` checks offline",
          description: scope("read"),
          parameters: [idParameter],
          responses: {
            "200": { description: "the pack (docs/audit.md)", content: { "application/zip": {} } },
            ...AUTH_ERRORS,
            "404": problem("no such decision, or no snapshot of its policy"),
          },
        },
      },
      "/v1/decisions/{id}/labels": {
        post: {
          summary: "Label a decision's outcome (feeds memory)",
          description: scope("label"),
          parameters: [idParameter],
          requestBody: { required: true, content: { "application/json": { schema: LABEL_BODY } } },
          responses: {
            "201": json("the label event", ref("LabelEvent")),
            "400": problem("malformed JSON"),
            ...AUTH_ERRORS,
            "404": problem("no such decision"),
            "415": problem("the body is not application/json"),
            "422": problem("an invalid label body"),
          },
        },
      },
      "/v1/stats": {
        get: {
          summary: "Counts of decisions by verdict, reason code or action type",
          description: scope("read"),
          parameters: queryParameters(STATS_QUERY),
          responses: {
            "200": json("counts", {
              type: "object",
              properties: {
                total: { type: "integer" },
                by: { type: "string" },
                groups: { type: "object", additionalProperties: { type: "integer" } },
              },
            }),
            ...AUTH_ERRORS,
            "422": problem("an invalid query parameter"),
          },
        },
      },
      "/v1/policy": {
        get: {
          summary: "The active policy (of a tenant: its registry version, else the default)",
          description: scope("read"),
          parameters: queryParameters(POLICY_QUERY),
          responses: {
            "200": json("the active policy's identity", {
              type: "object",
              properties: {
                tenant_id: {
                  type: "string",
                  description: "present when a tenant was asked for, or the key is bound to one",
                },
                policy_id: { type: "string" },
                policy_version: { type: "string" },
                policy_hash: { type: "string" },
                mode: { type: "string", enum: ["enforce", "advisory"] },
              },
            }),
            ...AUTH_ERRORS,
          },
        },
      },
      ...approvalPaths(),
      "/healthz": {
        get: {
          summary: "Liveness",
          security: [],
          responses: { "200": json("alive", { type: "object", properties: { ok: { const: true } } }) },
        },
      },
      "/readyz": {
        get: {
          summary: "Readiness: the store answers and the policy is loaded",
          security: [],
          responses: {
            "200": json("ready", { type: "object" }),
            "503": problem("the store does not answer, or the server is shutting down"),
          },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          description: `${scope("read")} Keys bound to a tenant may not read them.`,
          responses: { "200": { description: "Prometheus text format", content: { "text/plain": {} } } },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: `An API key from \`lumyn keys create\`. Scopes: ${SCOPES.join(", ")} (admin implies all).`,
        },
      },
      schemas: {
        ...requestComponents(),
        DecisionRecord: {
          type: "object",
          description: "decision_record.v1, as Lumyn 1.3.6 writes it; additions go under `extensions`",
          required: [
            "schema_version",
            "decision_id",
            "created_at",
            "request",
            "policy",
            "verdict",
            "reason_codes",
          ],
          properties: {
            schema_version: { const: "decision_record.v1" },
            decision_id: { type: "string" },
            created_at: { type: "string" },
            request: ref("DecisionRequest"),
            policy: { type: "object" },
            verdict: { type: "string", enum: [...VERDICTS] },
            reason_codes: { type: "array", items: { type: "string" } },
            matched_rules: { type: "array", items: { type: "object" } },
            risk_signals: { type: "object" },
            queries: { type: "array", items: { type: "object" } },
            obligations: { type: "array", items: { type: "object" } },
            determinism: { type: "object" },
            extensions: { type: "object" },
          },
        },
        Approval: {
          type: "object",
          description: "An approval opened by an ESCALATE (docs/approvals.md)",
          properties: {
            approval_id: { type: "string" },
            decision_id: { type: "string" },
            state: { type: "string", enum: [...APPROVAL_STATES] },
            version: { type: "integer" },
            approver_roles: { type: "array", items: { type: "string" } },
            quorum: { type: "integer" },
            deadline: { type: "string" },
            votes: { type: "array", items: { type: "object" } },
            timeline: { type: "array", items: { type: "object" } },
            outcome: { enum: ["ALLOW", "DENY"] },
            authority: { type: "object", description: "authority_record.v1, once resolved" },
          },
        },
        LabelEvent: {
          type: "object",
          properties: {
            event_id: { type: "string" },
            decision_id: { type: "string" },
            type: { const: "label" },
            created_at: { type: "string" },
            data: { type: "object" },
          },
        },
        Problem: {
          type: "object",
          description: "RFC 9457 problem details",
          required: ["type", "title", "status", "code", "detail"],
          properties: {
            type: { type: "string", description: "urn:lumyn:problem:<code>" },
            title: { type: "string" },
            status: { type: "integer" },
            code: { type: "string", description: "stable machine code" },
            detail: { type: "string" },
            errors: {
              type: "array",
              items: {
                type: "object",
                required: ["code", "message"],
                properties: {
                  code: { type: "string" },
                  message: { type: "string" },
                  pointer: { type: "string", description: "JSON pointer into the body or the query" },
                  line: { type: "integer" },
                  column: { type: "integer" },
                  expected: { type: "string" },
                  hint: { type: "string" },
                },
              },
            },
          },
        },
      },
    },
  };
}
