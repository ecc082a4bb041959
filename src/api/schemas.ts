import Type, { type Static, type TUnsafe } from "typebox";
import type { AnswerHeaders } from "./route.ts";

/** The schemas the OpenAPI document keeps under `components.schemas` (written in ./openapi.ts). */
export type ComponentName = "DecisionRequest" | "DecisionRecord" | "Approval" | "LabelEvent" | "Problem";

/** A reference to one of the document's components, typed as what it describes. */
export function component<T>(name: ComponentName, description?: string): TUnsafe<T> {
  return Type.Unsafe<T>({
    $ref: `#/components/schemas/${name}`,
    ...(description === undefined ? {} : { description }),
  });
}

/** The most decisions or approvals a page holds. */
export const MAX_PAGE_SIZE = 500;

export const DECISION_ID = "01JZ8D8V6W2X5N6QJ4T3M1K9AB";
export const APPROVAL_ID = "01JZ8D8V7C3A9R2S6T8V0W4XYZ";
export const KEY_ID = "01JZ8C2M4P6R8T0V2X4Z6B8D0F";

const TIME_PATTERN = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$";

/** A bound of a time window: ISO 8601 with a zone. */
export function time(bound: string, example: string) {
  return Type.String({
    pattern: TIME_PATTERN,
    description: `${bound}; ISO 8601 date and time with a zone, e.g. 2026-05-01T00:00:00Z`,
    examples: [example],
  });
}

export const TENANT_ID = Type.String({ minLength: 1, examples: ["acme"] });

/** `{ id }` of a route on one decision or approval. */
export function idParams(description: string, example: string) {
  return Type.Object({ id: Type.String({ minLength: 1, description, examples: [example] }) });
}

/** One problem of a problem document: what was wrong, where, and what was expected. */
const PROBLEM_ENTRY = Type.Object({
  code: Type.String({ description: "stable machine code of this problem" }),
  message: Type.String(),
  pointer: Type.Optional(Type.String({ description: "JSON pointer into the body or the query" })),
  line: Type.Optional(Type.Integer({ description: "of malformed JSON" })),
  column: Type.Optional(Type.Integer({ description: "of malformed JSON" })),
  expected: Type.Optional(Type.String()),
  hint: Type.Optional(Type.String()),
});

/** RFC 9457 problem details, as the service answers every error. */
export const PROBLEM = Type.Object(
  {
    type: Type.String({ description: "urn:lumyn:problem:<code>" }),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({
      description: "stable machine code: invalid_request, request_id_conflict, rate_limited, …",
    }),
    detail: Type.String(),
    errors: Type.Optional(Type.Array(PROBLEM_ENTRY, { description: "one entry per problem, all at once" })),
  },
  {
    description: "RFC 9457 problem details",
    examples: [
      {
        type: "urn:lumyn:problem:invalid_query",
        title: "Unprocessable Content",
        status: 422,
        code: "invalid_query",
        detail: "invalid querystring: /limit must be <= 500",
        errors: [{ code: "maximum", message: "/limit must be <= 500", pointer: "/limit" }],
      },
    ],
  },
);
export type Problem = Static<typeof PROBLEM>;

/** A problem document answer. */
export function problem(description: string, headers?: AnswerHeaders) {
  return {
    description,
    content: { "application/problem+json": { schema: component<Problem>("Problem") } },
    ...(headers === undefined ? {} : { headers }),
  };
}

/** What every route behind a key may answer before it is reached. */
export const AUTH_ERRORS = {
  401: problem("no key, an unknown or revoked key (`auth_required`, `invalid_key`, `key_revoked`)", {
    "www-authenticate": Type.String({ description: '`Bearer realm="lumyn"`, with the error for a bad key' }),
  }),
  403: problem("the key lacks the route's scope, or is bound to another tenant"),
  429: problem("the key's rate limit is reached", {
    "retry-after": Type.Integer({ description: "seconds until the key may call again" }),
  }),
};
