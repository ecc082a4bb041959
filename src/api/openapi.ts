import Type, { type TSchema } from "typebox";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import { EVALUATION_ORDER, VERDICTS } from "../core/verdict.ts";
import { VERSION } from "../core/version.ts";
import { SCOPES } from "../domain/api-key.ts";
import { APPROVAL_STATES } from "../domain/approval.ts";
import requestSchema from "../schemas/decision_request.v1.schema.json" with { type: "json" };
import { LABEL_EVENT } from "./decisions.ts";
import { TAGS } from "./route.ts";
import { APPROVAL_ID, type ComponentName, DECISION_ID, KEY_ID, PROBLEM } from "./schemas.ts";

/**
 * The parts of the OpenAPI document that are not a route's: what the service is, how callers authenticate,
 * and the shared schemas the routes refer to. The server hands them to @fastify/swagger, which adds a path
 * for every route it registers from ./index.ts. (Not imported by the client: it holds the request schema.)
 */

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
  const example = EXAMPLE_REQUESTS["refund-small"]?.request;
  return {
    DecisionRequest: { ...(rewrite(schema) as object), examples: [example] },
    ...(rewrite($defs ?? {}) as Record<string, unknown>),
  };
}

/** The record the server answers for the `refund-small` example request under the starter policy. */
const EXAMPLE_RECORD = {
  created_at: "2026-05-02T09:15:27Z",
  decision_id: DECISION_ID,
  determinism: {
    engine_version: VERSION,
    evaluation_order: [...EVALUATION_ORDER],
    inputs_digest: "sha256:71d26407c61e3f2eb7985a8ce4438ced8eb7530abc0654333f7b1522ef631d1c",
  },
  extensions: {},
  matched_rules: [
    { effect: "ALLOW", reason_codes: ["REFUND_SMALL_LOW_RISK"], rule_id: "R050", stage: "ALLOW_PATHS" },
  ],
  obligations: [
    { details: "Confirm the support ticket_id exists.", title: "Verify ticket exists", type: "check" },
  ],
  policy: {
    mode: "enforce",
    policy_hash: STARTER_POLICY_HASH,
    policy_id: "starter-policy",
    policy_version: "1.0.0",
  },
  queries: [],
  reason_codes: ["REFUND_SMALL_LOW_RISK"],
  request: {
    action: {
      amount: { currency: "USD", value: 20 },
      intent: "Refund duplicate charge",
      target: { resource_id: "ch_demo-refund-small", resource_type: "charge", system: "stripe" },
      type: "support.refund",
    },
    context: {
      digest: `sha256:${"0".repeat(64)}`,
      mode: "digest_only",
      redaction: { fields_removed: [], profile: "default" },
    },
    evidence: {
      chargeback_risk: 0.05,
      customer_age_days: 180,
      customer_id: "C-9",
      order_id: "82731",
      payment_instrument_risk: "low",
      previous_refund_count_90d: 0,
      ticket_id: "ZD-1001",
    },
    request_id: "demo-refund-small",
    schema_version: "decision_request.v1",
    subject: { id: "support-agent-17", roles: ["support"], type: "agent" },
    tenant: { environment: "prod", tenant_id: "acme" },
  },
  risk_signals: {
    failure_similarity: { score: 0, top_k: [] },
    success_similarity: { score: 0, top_k: [] },
    uncertainty_score: 0.5,
  },
  schema_version: "decision_record.v1",
  trace: {},
  verdict: "ALLOW",
};

const OBJECT = Type.Record(Type.String(), Type.Unknown());
const OBJECTS = Type.Array(OBJECT);
const STRINGS = Type.Array(Type.String());

const DECISION_RECORD = Type.Object(
  {
    schema_version: Type.Literal("decision_record.v1"),
    decision_id: Type.String(),
    created_at: Type.String(),
    request: Type.Unsafe({ $ref: "#/components/schemas/DecisionRequest" }),
    policy: Type.Object({
      policy_id: Type.String(),
      policy_version: Type.String(),
      policy_hash: Type.String(),
      mode: Type.String(),
    }),
    verdict: Type.Enum(VERDICTS, { type: "string" }),
    reason_codes: STRINGS,
    matched_rules: OBJECTS,
    risk_signals: OBJECT,
    queries: OBJECTS,
    obligations: OBJECTS,
    determinism: Type.Object({
      engine_version: Type.String(),
      evaluation_order: STRINGS,
      inputs_digest: Type.String(),
    }),
    extensions: OBJECT,
    trace: OBJECT,
  },
  {
    description: "decision_record.v1, as Lumyn 1.3.6 writes it; additions go under `extensions`",
    examples: [EXAMPLE_RECORD],
  },
);

const STATE = Type.Enum(APPROVAL_STATES, { type: "string" });
const ASSERTED_BY = Type.String({
  description:
    "who vouched for the actor when it was named rather than proved by a key: os:<user>, the account that ran the CLI",
});
const APPROVED_AT = "2026-05-02T09:21:04.118Z";

const APPROVAL = Type.Object(
  {
    approval_id: Type.String(),
    decision_id: Type.String(),
    tenant_id: Type.String(),
    inputs_digest: Type.String({
      description: "the exact action approved, checked again when it is consumed",
    }),
    record_digest: Type.String({ description: "sha256 of the decision record's canonical JSON" }),
    policy_hash: Type.String(),
    requester_id: Type.Union([Type.String(), Type.Null()], {
      description:
        "the subject the action is for (the request's subject.id), who may not approve it under separation of duties",
    }),
    requester: Type.Optional(
      Type.Object(
        {
          principal: Type.String({
            description: "the principal of the key that asked (os:<user> for the CLI)",
          }),
          key_id: Type.Optional(Type.String({ description: "the key it asked with" })),
          subject_asserted_by: Type.Optional(
            Type.String({
              description:
                "key:<key_id>, when that key (with the delegate scope) named another actor as the subject",
            }),
          ),
        },
        {
          description:
            "who asked for the decision, who may not approve it either; absent when the caller named no one, and in approvals opened before requesters were recorded",
        },
      ),
    ),
    settings: Type.Object(
      {
        approver_roles: STRINGS,
        quorum: Type.Integer(),
        timeout: Type.String(),
        on_timeout: Type.Enum(["DENY", "ESCALATE"], { type: "string" }),
        escalation_roles: STRINGS,
        separation_of_duties: Type.Boolean(),
      },
      { description: "the policy's approval settings, defaults filled in" },
    ),
    state: STATE,
    version: Type.Integer({ description: "bumped by every change" }),
    approver_roles: Type.Array(Type.String(), { description: "roles that may vote now" }),
    quorum: Type.Integer(),
    deadline: Type.String(),
    escalations: Type.Integer(),
    votes: Type.Array(
      Type.Object({
        actor_id: Type.String(),
        asserted_by: Type.Optional(ASSERTED_BY),
        roles: STRINGS,
        decision: Type.Enum(["approve", "reject"], { type: "string" }),
        justification: Type.String(),
        at: Type.String(),
        idempotency_key: Type.String(),
        round: Type.Integer({ description: "0 before an escalation, 1 after" }),
      }),
    ),
    timeline: Type.Array(
      Type.Object({
        from: Type.Union([STATE, Type.Null()]),
        to: STATE,
        at: Type.String(),
        actor: Type.String(),
        asserted_by: Type.Optional(ASSERTED_BY),
        justification: Type.Optional(Type.String()),
      }),
    ),
    created_at: Type.String(),
    outcome: Type.Optional(Type.Enum(["ALLOW", "DENY"], { type: "string" })),
    authority: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "authority_record.v1, once resolved" }),
    ),
  },
  {
    description: "An approval opened by an ESCALATE (docs/approvals.md)",
    examples: [
      {
        approval_id: APPROVAL_ID,
        decision_id: DECISION_ID,
        tenant_id: "acme",
        inputs_digest: `sha256:${"5e".repeat(32)}`,
        record_digest: `sha256:${"a1".repeat(32)}`,
        policy_hash: STARTER_POLICY_HASH,
        requester_id: "support-agent-17",
        requester: { principal: "support-bot", key_id: KEY_ID },
        settings: {
          approver_roles: ["finance"],
          quorum: 1,
          timeout: "1h",
          on_timeout: "DENY",
          escalation_roles: [],
          separation_of_duties: true,
        },
        state: "APPROVED",
        version: 2,
        approver_roles: ["finance"],
        quorum: 1,
        deadline: "2026-05-02T10:15:27.000Z",
        escalations: 0,
        votes: [
          {
            actor_id: "alice",
            roles: ["finance"],
            decision: "approve",
            justification: "customer verified by phone",
            at: APPROVED_AT,
            idempotency_key: "vote-7f3a",
            round: 0,
          },
        ],
        timeline: [
          { from: null, to: "WAITING_FOR_HUMAN", at: "2026-05-02T09:15:27.000Z", actor: "system:decision" },
          {
            from: "WAITING_FOR_HUMAN",
            to: "APPROVED",
            at: APPROVED_AT,
            actor: "alice",
            justification: "customer verified by phone",
          },
        ],
        created_at: "2026-05-02T09:15:27.000Z",
        outcome: "ALLOW",
      },
    ],
  },
);

export const COMPONENTS: Readonly<Record<string, unknown>> = {
  ...requestComponents(),
  ...({
    DecisionRecord: DECISION_RECORD,
    Approval: APPROVAL,
    LabelEvent: LABEL_EVENT,
    Problem: PROBLEM,
  } satisfies Record<Exclude<ComponentName, "DecisionRequest">, TSchema>),
};

/** Everything of the OpenAPI 3.1 document but its paths. */
export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "Lumyn decision service",
    version: VERSION,
    description:
      "Ask before an agent acts: POST a decision request, get a durable decision record (ALLOW, DENY, ESCALATE or ABSTAIN with reason codes). Every error is an RFC 9457 problem document with a stable `code`.",
  },
  security: [{ bearer: [] }],
  tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
  components: {
    securitySchemes: {
      bearer: {
        type: "http",
        scheme: "bearer",
        description: `An API key from \`lumyn keys create\`. Scopes: ${SCOPES.join(", ")} (admin implies all). A key acts as its principal (\`--principal\`, else its name, else its id): the requester of the approvals its decisions open, the voter of its votes. Only a key with the \`delegate\` scope may name another actor (\`identity.actor_id\` on /v1/evaluate).`,
      },
    },
    schemas: COMPONENTS,
  },
};
