import Type, { type Static } from "typebox";
import { STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import { VERDICTS } from "../core/verdict.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import { type Route, withDefault } from "./route.ts";
import {
  AUTH_ERRORS,
  component,
  DECISION_ID,
  idParams,
  MAX_PAGE_SIZE,
  problem,
  TENANT_ID,
  time,
} from "./schemas.ts";

const DECISION = idParams("the decision's id", DECISION_ID);
const VERDICT = Type.Enum(VERDICTS, { type: "string" });
const REASON_CODE = Type.String({ pattern: "^[A-Z0-9_]+$", examples: ["REFUND_OVER_ESCALATION_LIMIT"] });
const record = (description: string) => component<DecisionRecord>("DecisionRecord", description);

/** What a stats answer is grouped by. */
export const STATS_DIMENSIONS = ["verdict", "reason_code", "action_type"] as const;

const decide = {
  method: "POST",
  url: "/v1/decide",
  access: "decide",
  tag: "decisions",
  summary: "Decide a request and store its record",
  description:
    "Idempotent on (tenant, request_id): a repeat returns the stored record (header `lumyn-decision-status: duplicate`); the same request_id with a different body is 409. When the store cannot be written the answer is the fail-closed record (ABSTAIN, STORAGE_UNAVAILABLE; `lumyn-decision-status: unavailable`). With a signing secret configured, `X-Lumyn-Signature: sha256:<hex HMAC-SHA256 of the body>` is required. An ESCALATE that opened an approval names it in `lumyn-approval-id`.",
  // Any JSON object: the server checks it against decision_request.v1 and answers a pointer per problem.
  body: component<object>("DecisionRequest"),
  response: {
    200: Object.assign(record("the decision record (decision_record.v1)"), {
      headers: {
        "lumyn-decision-status": Type.Enum(["stored", "duplicate", "unavailable"], {
          type: "string",
          description:
            "stored now, a duplicate of an earlier request, or unavailable (fail-closed, not stored)",
        }),
        "lumyn-approval-id": Type.String({
          description: "the approval an ESCALATE opened, when it opened one",
        }),
      },
    }),
    400: problem("malformed JSON (with line and column)"),
    ...AUTH_ERRORS,
    409: problem("the request_id was used for a different request"),
    413: problem("the body is over the limit"),
    415: problem("the body is not application/json"),
    422: problem("the request does not match decision_request.v1 (a pointer per problem)"),
  },
} as const satisfies Route;

const getDecision = {
  method: "GET",
  url: "/v1/decisions/:id",
  access: "read",
  tag: "decisions",
  summary: "A stored decision record",
  description: "The record's canonical JSON, exactly as stored.",
  params: DECISION,
  response: {
    200: record("the record"),
    ...AUTH_ERRORS,
    404: problem("no such decision (or one of another tenant)"),
  },
} as const satisfies Route;

const CONDITION = Type.Object({
  key: Type.String(),
  reads: Type.String(),
  operator: Type.String(),
  operand: Type.Unknown(),
  actual: Type.Unknown({ description: "the value the condition saw (null when absent)" }),
  present: Type.Boolean(),
  holds: Type.Boolean(),
  pointer: Type.String(),
});
const GROUP = Type.Object({ holds: Type.Boolean(), conditions: Type.Array(CONDITION) });

const EXPLANATION = Type.Object(
  {
    decision_id: Type.String(),
    verdict: VERDICT,
    because: Type.String({ description: "why the verdict won, in one sentence" }),
    policy: Type.Object({
      policy_id: Type.String(),
      policy_version: Type.String(),
      policy_hash: Type.String(),
    }),
    recorded_verdict: Type.Optional(
      Type.Enum(VERDICTS, {
        type: "string",
        description: "when the record's verdict is not the policy's alone (memory, storage failure)",
      }),
    ),
    memory: Type.Optional(
      Type.Object({
        failure_similarity: Type.Number(),
        success_similarity: Type.Number(),
        neighbours: Type.Array(
          Type.Object({
            id: Type.String(),
            label: Type.String(),
            score: Type.Number(),
            summary: Type.String(),
          }),
        ),
        effect: Type.Optional(VERDICT),
        reason_codes: Type.Optional(Type.Array(Type.String())),
      }),
    ),
    rules: Type.Array(
      Type.Object({
        rule_id: Type.String(),
        stage: Type.String(),
        effect: VERDICT,
        reason_codes: Type.Array(Type.String()),
        matched: Type.Boolean(),
        when: GROUP,
        if: GROUP,
        if_all: Type.Optional(Type.Array(GROUP)),
        if_any: Type.Optional(Type.Array(GROUP)),
      }),
    ),
  },
  {
    description: "each rule, each condition with the value it saw, and why the verdict won",
    examples: [
      {
        decision_id: DECISION_ID,
        verdict: "ESCALATE",
        because: "R030 matched with ESCALATE",
        policy: {
          policy_id: "starter-policy",
          policy_version: "1.0.0",
          policy_hash: STARTER_POLICY_HASH,
        },
        rules: [
          {
            rule_id: "R030",
            stage: "ESCALATIONS",
            effect: "ESCALATE",
            reason_codes: ["REFUND_OVER_ESCALATION_LIMIT"],
            matched: true,
            when: {
              holds: true,
              conditions: [
                {
                  key: "action_type",
                  reads: "action_type",
                  operator: "is",
                  operand: "support.refund",
                  actual: "support.refund",
                  present: true,
                  holds: true,
                  pointer: "/rules/5/when/action_type",
                },
              ],
            },
            if: {
              holds: true,
              conditions: [
                {
                  key: "amount_usd_gt",
                  reads: "amount_usd",
                  operator: "gt",
                  operand: 200,
                  actual: 500,
                  present: true,
                  holds: true,
                  pointer: "/rules/5/if/amount_usd_gt",
                },
              ],
            },
          },
        ],
      },
    ],
  },
);

const explain = {
  method: "GET",
  url: "/v1/decisions/:id/explain",
  access: "read",
  tag: "decisions",
  summary: "Why a stored decision got its verdict, rule by rule",
  params: DECISION,
  response: { 200: EXPLANATION, ...AUTH_ERRORS, 404: problem("no such decision") },
} as const satisfies Route;

const pack = {
  method: "GET",
  url: "/v1/decisions/:id/pack",
  access: "read",
  tag: "decisions",
  summary: "A stored decision as a decision pack (zip) that `lumyn replay` checks offline",
  params: DECISION,
  response: {
    200: {
      description: "the pack (docs/audit.md)",
      content: { "application/zip": { schema: Type.String({ format: "binary" }) } },
      headers: {
        "content-disposition": Type.String({ description: 'attachment; filename="<decision id>.zip"' }),
      },
    },
    ...AUTH_ERRORS,
    404: problem("no such decision, or no snapshot of its policy"),
  },
} as const satisfies Route;

const LABEL_BODY = Type.Object(
  {
    label: Type.Enum(["failure", "success"], { type: "string" }),
    summary: Type.Optional(
      Type.String({ description: "what happened; shown beside the decision when it is a neighbour" }),
    ),
    severity: Type.Optional(Type.Integer({ minimum: 1, maximum: 5, description: "1 (minor) to 5 (severe)" })),
  },
  {
    additionalProperties: false,
    examples: [{ label: "failure", summary: "chargeback", severity: 4 }],
  },
);

export const LABEL_EVENT = Type.Object(
  {
    event_id: Type.String(),
    decision_id: Type.String(),
    type: Type.Literal("label"),
    created_at: Type.String(),
    data: Type.Object({
      label: Type.String(),
      summary: Type.Optional(Type.String()),
      severity: Type.Optional(Type.Integer()),
      projection: Type.Optional(
        Type.String({ description: "the fingerprint projection memory learned the case with" }),
      ),
      fingerprint_sha256: Type.Optional(
        Type.String({
          description:
            "sha256 of the fingerprint memory keeps for this case: `lumyn verify` holds the stored case to it (absent on labels stored before it was recorded)",
        }),
      ),
    }),
  },
  {
    examples: [
      {
        event_id: "01JZ8D9A0B1C2D3E4F5G6H7J8K",
        decision_id: DECISION_ID,
        type: "label",
        created_at: "2026-05-02T09:30:00Z",
        data: {
          label: "failure",
          summary: "chargeback",
          severity: 4,
          projection: "lumyn-fingerprint-v1",
          fingerprint_sha256: "sha256:57d70d5725b3b7c3dad043e49240da6bc049c3d4f565cc7583b57cd173c0ca36",
        },
      },
    ],
  },
);

const label = {
  method: "POST",
  url: "/v1/decisions/:id/labels",
  access: "label",
  tag: "decisions",
  summary: "Label a decision's outcome (feeds memory)",
  params: DECISION,
  body: LABEL_BODY,
  response: {
    201: component<Static<typeof LABEL_EVENT>>("LabelEvent", "the label event"),
    400: problem("malformed JSON"),
    ...AUTH_ERRORS,
    404: problem("no such decision"),
    415: problem("the body is not application/json"),
    422: problem("an invalid label body"),
  },
} as const satisfies Route;

const LIST_QUERY = Type.Object(
  {
    verdict: Type.Optional(Type.Enum(VERDICTS, { type: "string", examples: ["DENY"] })),
    reason_code: Type.Optional(REASON_CODE),
    action_type: Type.Optional(Type.String({ minLength: 1, examples: ["support.refund"] })),
    subject_id: Type.Optional(Type.String({ minLength: 1, examples: ["support-agent-17"] })),
    tenant_id: Type.Optional(TENANT_ID),
    since: Type.Optional(time("inclusive lower bound on created_at", "2026-05-01T00:00:00Z")),
    until: Type.Optional(time("exclusive upper bound on created_at", "2026-06-01T00:00:00Z")),
    limit: withDefault(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, examples: [100] }), 50),
    cursor: Type.Optional(
      Type.String({
        pattern: "^[0-9A-HJKMNP-TV-Z]{26}$",
        description: "next_cursor of the previous page",
        examples: [DECISION_ID],
      }),
    ),
  },
  { additionalProperties: false },
);

const listDecisions = {
  method: "GET",
  url: "/v1/decisions",
  access: "read",
  tag: "decisions",
  summary: "List decisions, newest first",
  description: "Cursor pagination that stays stable while decisions arrive.",
  querystring: LIST_QUERY,
  response: {
    200: Type.Object(
      {
        decisions: Type.Array(component<DecisionRecord>("DecisionRecord")),
        next_cursor: Type.Optional(
          Type.String({ description: "the cursor of the next page, if there is one" }),
        ),
      },
      { description: "a page", examples: [{ decisions: [], next_cursor: DECISION_ID }] },
    ),
    ...AUTH_ERRORS,
    422: problem("an invalid query parameter (pointer `/<name>`)"),
  },
} as const satisfies Route;

const stats = {
  method: "GET",
  url: "/v1/stats",
  access: "read",
  tag: "decisions",
  summary: "Counts of decisions by verdict, reason code or action type",
  querystring: Type.Object(
    {
      by: withDefault(Type.Enum(STATS_DIMENSIONS, { type: "string", examples: ["reason_code"] }), "verdict"),
      since: LIST_QUERY.properties.since,
      until: LIST_QUERY.properties.until,
      tenant_id: LIST_QUERY.properties.tenant_id,
    },
    { additionalProperties: false },
  ),
  response: {
    200: Type.Object(
      {
        total: Type.Integer(),
        by: Type.Enum(STATS_DIMENSIONS, { type: "string" }),
        since: Type.Optional(Type.String({ description: "the window asked for, in whole seconds (UTC)" })),
        until: Type.Optional(Type.String()),
        tenant_id: Type.Optional(Type.String()),
        groups: Type.Record(Type.String(), Type.Integer()),
      },
      {
        description: "counts",
        examples: [{ total: 12, by: "verdict", groups: { ALLOW: 9, ESCALATE: 2, DENY: 1 } }],
      },
    ),
    ...AUTH_ERRORS,
    422: problem("an invalid query parameter"),
  },
} as const satisfies Route;

export const DECISION_ROUTES = { decide, getDecision, explain, pack, label, listDecisions, stats };
