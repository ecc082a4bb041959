import Type from "typebox";
import { APPROVAL_STATES, type Approval } from "../domain/approval.ts";
import { type Route, withDefault } from "./route.ts";
import {
  APPROVAL_ID,
  AUTH_ERRORS,
  component,
  DECISION_ID,
  idParams,
  MAX_PAGE_SIZE,
  problem,
  TENANT_ID,
} from "./schemas.ts";

const APPROVAL = idParams("the approval's id", APPROVAL_ID);
const approval = (description: string) => component<Approval>("Approval", description);
const STATE_HEADER = Type.Enum(APPROVAL_STATES, { type: "string", description: "the approval's state" });

const listApprovals = {
  method: "GET",
  url: "/v1/approvals",
  access: "read",
  tag: "approvals",
  summary: "Approvals, newest first",
  description: "A key bound to a tenant sees its tenant's only.",
  querystring: Type.Object(
    {
      state: Type.Optional(Type.Enum(APPROVAL_STATES, { type: "string", examples: ["WAITING_FOR_HUMAN"] })),
      role: Type.Optional(
        Type.String({
          minLength: 1,
          description: "only approvals this role may vote on now",
          examples: ["finance"],
        }),
      ),
      tenant_id: Type.Optional(TENANT_ID),
      limit: withDefault(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, examples: [20] }), 50),
    },
    { additionalProperties: false },
  ),
  response: {
    200: Type.Object(
      { approvals: Type.Array(component<Approval>("Approval")) },
      { description: "the approvals", examples: [{ approvals: [] }] },
    ),
    ...AUTH_ERRORS,
    422: problem("an invalid query parameter (pointer `/<name>`)"),
  },
} as const satisfies Route;

const getApproval = {
  method: "GET",
  url: "/v1/approvals/:id",
  access: "read",
  tag: "approvals",
  summary: "An approval: state, votes, timeline, authority record",
  params: APPROVAL,
  response: { 200: approval("the approval"), ...AUTH_ERRORS, 404: problem("no such approval") },
} as const satisfies Route;

const JUSTIFICATION = Type.String({ minLength: 1, pattern: "\\S", description: "why (recorded)" });

const VOTE_BODY = Type.Object(
  {
    justification: JUSTIFICATION,
    idempotency_key: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description:
          "a retried vote with the same key answers the same; also accepted as the Idempotency-Key header",
      }),
    ),
  },
  {
    additionalProperties: false,
    examples: [{ justification: "customer verified by phone", idempotency_key: "vote-7f3a" }],
  },
);

const JUSTIFICATION_BODY = Type.Object(
  { justification: JUSTIFICATION },
  { additionalProperties: false, examples: [{ justification: "payments outage, approved by phone" }] },
);

const CHANGE_ERRORS = {
  400: problem("malformed JSON"),
  ...AUTH_ERRORS,
  404: problem("no such approval (or one of another tenant)"),
  409: problem("closed, already voted, consumed, expired, or the idempotency key was used for another vote"),
  415: problem("the body is not application/json"),
  422: problem("an invalid body"),
};

const ACTOR = "The actor and its roles are the calling key's name and roles.";

const approve = {
  method: "POST",
  url: "/v1/approvals/:id/approve",
  access: "approve",
  tag: "approvals",
  summary: "Approve (one vote; quorum approves)",
  description: ACTOR,
  params: APPROVAL,
  body: VOTE_BODY,
  response: { 200: approval("the approval"), ...CHANGE_ERRORS },
} as const satisfies Route;

const reject = {
  ...approve,
  url: "/v1/approvals/:id/reject",
  summary: "Reject (one rejection rejects)",
} as const satisfies Route;

const override = {
  method: "POST",
  url: "/v1/approvals/:id/override",
  access: "approve",
  tag: "approvals",
  summary: "Force through (needs the override role)",
  description: ACTOR,
  params: APPROVAL,
  body: JUSTIFICATION_BODY,
  response: { 200: approval("the approval"), ...CHANGE_ERRORS },
} as const satisfies Route;

const cancel = {
  ...override,
  url: "/v1/approvals/:id/cancel",
  summary: "Withdraw a waiting approval",
} as const satisfies Route;

const consume = {
  method: "POST",
  url: "/v1/approvals/:id/consume",
  access: "decide",
  tag: "approvals",
  summary: "Redeem an approved approval right before acting, once",
  description: `${ACTOR} The body proves which action is about to run: its inputs_digest, refused (409 different_action) unless it is the one approved. A second consume, or one after the deadline, is 409.`,
  params: APPROVAL,
  body: Type.Object(
    {
      inputs_digest: Type.String({
        pattern: "^sha256:[0-9a-f]{64}$",
        description:
          "the inputs_digest of the action about to run (its decision's determinism.inputs_digest): refused unless it is the one approved",
      }),
    },
    {
      additionalProperties: false,
      examples: [{ inputs_digest: `sha256:${"5e".repeat(32)}` }],
    },
  ),
  response: {
    200: approval("the approval, consumed"),
    ...CHANGE_ERRORS,
    409: problem(
      "not approved, consumed already, expired, or another action's inputs_digest (`different_action`)",
    ),
    422: problem("an invalid body: no inputs_digest (pointer `/inputs_digest`), or not a sha256 digest"),
  },
} as const satisfies Route;

const wait = {
  method: "GET",
  url: "/v1/approvals/:id/wait",
  access: "read",
  tag: "approvals",
  summary:
    "Long poll: answers when the approval is resolved, or when the timeout passes (202, still waiting)",
  params: APPROVAL,
  querystring: Type.Object(
    {
      timeout: withDefault(
        Type.String({
          pattern: "^[1-9][0-9]{0,6}[sm]$",
          description: "how long to hold the request open while the approval waits, at most 60s",
          examples: ["45s"],
        }),
        "30s",
      ),
    },
    { additionalProperties: false },
  ),
  response: {
    200: Object.assign(approval("the approval, resolved"), {
      headers: { "lumyn-approval-state": STATE_HEADER },
    }),
    202: Object.assign(approval("the approval, still waiting"), {
      headers: { "lumyn-approval-state": STATE_HEADER },
    }),
    ...AUTH_ERRORS,
    404: problem("no such approval"),
    422: problem("an invalid timeout"),
  },
} as const satisfies Route;

const events = {
  method: "GET",
  url: "/v1/approvals/:id/events",
  access: "read",
  tag: "approvals",
  summary: "Server-sent events: the approval now, then each new version until it is final",
  description:
    "Each event is `event: approval` with the version as its `id` and the approval as its `data`. The stream ends when the approval is final, or when the server shuts down.",
  params: APPROVAL,
  response: {
    200: {
      description: "text/event-stream of `approval` events",
      content: {
        "text/event-stream": {
          schema: Type.String({
            examples: [
              `id: 1\nevent: approval\ndata: {"approval_id":"${APPROVAL_ID}","state":"WAITING_FOR_HUMAN",…}\n\n`,
            ],
          }),
        },
      },
    },
    ...AUTH_ERRORS,
    404: problem("no such approval"),
  },
} as const satisfies Route;

const EVALUATOR_INPUT = Type.Object(
  {
    instance: Type.Object({
      instance_id: Type.String({ minLength: 1 }),
      workflow_id: Type.String({ minLength: 1 }),
      materiality: Type.Enum(["LOW", "MEDIUM", "HIGH"], { type: "string" }),
      workflow_version: Type.Optional(Type.String()),
      owning_team_id: Type.Optional(Type.String()),
    }),
    execution: Type.Optional(
      Type.Object({
        step: Type.Optional(Type.String({ minLength: 1 })),
        current_state: Type.Optional(Type.String()),
        cost_estimate: Type.Optional(Type.Number({ description: "in USD: the action's amount" })),
      }),
    ),
    context: Type.Object({
      domain: Type.String({
        pattern: "^[a-z0-9]+(\\.[a-z0-9_]+)*$",
        description: "the action type, e.g. payments.payout",
      }),
      trigger: Type.Optional(Type.String({ minLength: 1 })),
      attributes: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "the evidence" })),
    }),
    identity: Type.Object({
      actor_id: Type.String({ minLength: 1 }),
      roles: Type.Optional(Type.Array(Type.String())),
    }),
    policy: Type.Optional(Type.Object({ policy_version_id: Type.Optional(Type.String()) })),
  },
  {
    description: "Gantral's evaluator input; how it maps onto a decision request is in docs/approvals.md",
    examples: [
      {
        instance: { instance_id: "run-4411", workflow_id: "vendor-payout", materiality: "HIGH" },
        execution: { step: "pay", cost_estimate: 12500 },
        context: { domain: "payments.payout", attributes: { vendor_id: "V-17" } },
        identity: { actor_id: "payout-agent", roles: ["agent"] },
      },
    ],
  },
);

const evaluate = {
  method: "POST",
  url: "/v1/evaluate",
  access: "decide",
  tag: "approvals",
  summary: "Policy evaluator for an execution-authority layer (Gantral's evaluator input)",
  description:
    "Maps the input onto a decision request (docs/approvals.md), decides and stores it; ESCALATE answers REQUIRE_HUMAN, ABSTAIN answers DENY. When the policy cannot be evaluated, HIGH materiality is denied and MEDIUM and LOW follow the server's fallback settings. `identity.actor_id` must be the key's own principal unless the key has the `delegate` scope; the request's `extensions.subject_asserted_by` and the approval's requester then name the key that asserted it.",
  body: EVALUATOR_INPUT,
  response: {
    200: Type.Object(
      {
        decision: Type.Enum(["ALLOW", "REQUIRE_HUMAN", "DENY"], { type: "string" }),
        approver_roles: Type.Array(Type.String()),
        timeout: Type.Union([Type.String(), Type.Null()]),
        escalation_roles: Type.Array(Type.String()),
        decision_id: Type.Union([Type.String(), Type.Null()], { description: "null for a fallback answer" }),
        reason_codes: Type.Array(Type.String()),
        approval_id: Type.Optional(Type.String({ description: "the approval a REQUIRE_HUMAN opened" })),
      },
      {
        description: "the evaluator answer",
        examples: [
          {
            decision: "REQUIRE_HUMAN",
            approver_roles: ["finance_manager"],
            timeout: "30m",
            escalation_roles: ["cfo"],
            decision_id: DECISION_ID,
            reason_codes: ["HIGH_MATERIALITY"],
            approval_id: APPROVAL_ID,
          },
        ],
      },
    ),
    400: problem("malformed JSON"),
    ...AUTH_ERRORS,
    403: problem(
      "the key lacks the route's scope, or names another actor without the `delegate` scope (`not_a_delegate`, pointer `/identity/actor_id`)",
    ),
    415: problem("the body is not application/json"),
    422: problem("an invalid evaluator input (each problem with its JSON pointer)"),
  },
} as const satisfies Route;

export const APPROVAL_ROUTES = {
  listApprovals,
  getApproval,
  approve,
  reject,
  override,
  cancel,
  consume,
  wait,
  events,
  evaluate,
};
