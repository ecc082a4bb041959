import Type from "typebox";
import { STARTER_POLICY_HASH } from "../assets/starter-policy.ts";
import { POLICY_MODES } from "../core/verdict.ts";
import type { Route } from "./route.ts";
import { AUTH_ERRORS, problem, TENANT_ID } from "./schemas.ts";

const policy = {
  method: "GET",
  url: "/v1/policy",
  access: "read",
  tag: "service",
  summary: "The active policy (of a tenant: its registry version, else the default)",
  querystring: Type.Object(
    {
      tenant_id: Type.Optional(
        Type.String({
          ...TENANT_ID,
          description: "The tenant whose policy to show: its active registry version, else the default",
        }),
      ),
    },
    { additionalProperties: false },
  ),
  response: {
    200: Type.Object(
      {
        tenant_id: Type.Optional(
          Type.String({ description: "present when a tenant was asked for, or the key is bound to one" }),
        ),
        policy_id: Type.String(),
        policy_version: Type.String(),
        policy_hash: Type.String(),
        mode: Type.Enum(POLICY_MODES, { type: "string" }),
      },
      {
        description: "the active policy's identity",
        examples: [
          {
            policy_id: "starter-policy",
            policy_version: "1.0.0",
            policy_hash: STARTER_POLICY_HASH,
            mode: "enforce",
          },
        ],
      },
    ),
    ...AUTH_ERRORS,
    422: problem("an invalid query parameter"),
  },
} as const satisfies Route;

const healthz = {
  method: "GET",
  url: "/healthz",
  access: "public",
  tag: "service",
  summary: "Liveness",
  response: {
    200: Type.Object({ ok: Type.Literal(true) }, { description: "alive", examples: [{ ok: true }] }),
  },
} as const satisfies Route;

const readyz = {
  method: "GET",
  url: "/readyz",
  access: "public",
  tag: "service",
  summary: "Readiness: the store answers, its writes commit, and the policy is loaded",
  response: {
    200: Type.Object(
      { ok: Type.Literal(true), store: Type.Literal("ok"), policy_hash: Type.String() },
      {
        description: "ready",
        examples: [
          {
            ok: true,
            store: "ok",
            policy_hash: STARTER_POLICY_HASH,
          },
        ],
      },
    ),
    503: problem(
      "the store does not answer, its writes have waited longer than write_stall_ms without a commit, or the server is shutting down",
    ),
  },
} as const satisfies Route;

const metrics = {
  method: "GET",
  url: "/metrics",
  access: "read",
  tag: "service",
  summary: "Prometheus metrics",
  description: "Keys bound to a tenant may not read them: they count every tenant's decisions.",
  response: {
    200: {
      description: "Prometheus text format",
      content: {
        "text/plain": {
          schema: Type.String({
            examples: [
              '# TYPE lumyn_decisions_total counter\nlumyn_decisions_total{verdict="ALLOW",status="stored"} 9\n',
            ],
          }),
        },
      },
    },
    ...AUTH_ERRORS,
  },
} as const satisfies Route;

const openApi = {
  method: "GET",
  url: "/openapi.json",
  access: "any",
  tag: "service",
  summary: "This description of the API (OpenAPI 3.1); browsable at /docs",
  response: {
    200: Type.Object(
      {
        openapi: Type.Literal("3.1.0"),
        info: Type.Object({ title: Type.String(), version: Type.String() }),
        paths: Type.Record(Type.String(), Type.Unknown()),
      },
      {
        description: "the OpenAPI document",
        examples: [
          { openapi: "3.1.0", info: { title: "Lumyn decision service", version: "0.1.0" }, paths: {} },
        ],
      },
    ),
    401: AUTH_ERRORS[401],
    429: AUTH_ERRORS[429],
  },
} as const satisfies Route;

export const SERVICE_ROUTES = { policy, healthz, readyz, metrics, openApi };
