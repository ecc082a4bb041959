import type { FastifyReply } from "fastify";
import type { Failure, Problem, ProblemKind } from "../index.ts";

/**
 * RFC 9457 problem documents. Every error the service answers is one: a stable top-level `code` (also in
 * `type`, as `urn:lumyn:problem:<code>`), the HTTP status, and for input errors one entry per problem in
 * `errors`, each with its own code and, where it applies, the JSON `pointer` into the request body or query.
 */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface ProblemDocument {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly errors?: readonly Problem[];
}

const TITLES: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export function problemDocument(
  status: number,
  code: string,
  detail: string,
  errors?: readonly Problem[],
): ProblemDocument {
  return {
    type: `urn:lumyn:problem:${code}`,
    title: TITLES[status] ?? "Error",
    status,
    code,
    detail,
    ...(errors && errors.length > 0 ? { errors } : {}),
  };
}

export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  errors?: readonly Problem[],
): FastifyReply {
  return reply
    .code(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(problemDocument(status, code, detail, errors)));
}

const STATUS_BY_KIND: Readonly<Record<ProblemKind, number>> = {
  invalid_json: 400,
  usage: 400,
  too_large: 413,
  invalid_request: 422,
  invalid_policy: 422,
  conflict: 409,
  forbidden: 403,
  not_found: 404,
  storage: 503,
  tampered: 500,
};

const CODE_BY_KIND: Readonly<Record<ProblemKind, string>> = {
  invalid_json: "invalid_json",
  usage: "bad_request",
  too_large: "too_large",
  invalid_request: "invalid_request",
  invalid_policy: "invalid_policy",
  conflict: "conflict",
  forbidden: "forbidden",
  not_found: "not_found",
  storage: "storage_unavailable",
  tampered: "tampered",
};

/** A failed {@link Result} of the core as a problem response; the first problem's message is the detail. */
export function sendFailure(reply: FastifyReply, failure: Failure): FastifyReply {
  const first = failure.problems[0];
  const detail =
    failure.problems.length > 1
      ? `${failure.problems.length} problems, the first: ${first?.message}`
      : (first?.message ?? failure.kind);
  return sendProblem(
    reply,
    STATUS_BY_KIND[failure.kind],
    // A conflict, a refusal or a missing resource is one problem whose own code says which.
    first && (failure.kind === "conflict" || failure.kind === "not_found" || failure.kind === "forbidden")
      ? first.code
      : CODE_BY_KIND[failure.kind],
    detail,
    failure.problems,
  );
}
