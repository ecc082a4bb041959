import type { FastifyReply, FastifyRequest } from "fastify";
import type { TSchema } from "typebox";
import { ROUTES, type RouteName, type Routes } from "../api/index.ts";
import type { BodyOf } from "../api/route.ts";
import { parseJsonBytes } from "../index.ts";
import { checkSignature, SIGNATURE_HEADER } from "./auth.ts";
import type { RouteContext } from "./context.ts";
import { sendFailure, sendProblem } from "./problem.ts";
import { compileJsonSchema, schemaProblems, type Validate } from "./validation.ts";

/**
 * The body bytes of a POST, after checking its signature when a secret is configured; undefined once a
 * problem has been sent.
 */
export function requestBody(
  request: FastifyRequest,
  reply: FastifyReply,
  context: RouteContext,
): Buffer | undefined {
  const body = request.body;
  if (!Buffer.isBuffer(body)) {
    sendProblem(reply, 415, "unsupported_media_type", "send the body as application/json");
    return undefined;
  }
  if (context.signingSecret !== undefined) {
    const header = request.headers[SIGNATURE_HEADER];
    const verdict = checkSignature(
      context.signingSecret,
      body,
      typeof header === "string" ? header : undefined,
    );
    if (verdict !== "ok") {
      sendProblem(
        reply,
        401,
        verdict === "missing" ? "signature_required" : "invalid_signature",
        verdict === "missing"
          ? "this server requires X-Lumyn-Signature: sha256:<hex HMAC-SHA256 of the body>"
          : "X-Lumyn-Signature does not match the body",
      );
      return undefined;
    }
  }
  return body;
}

const validators = new Map<TSchema, Validate>();

/** The routes that take a JSON body. */
type BodyRoute = { [N in RouteName]: Routes[N] extends { readonly body: TSchema } ? N : never }[RouteName];

/**
 * A route's JSON body, read losslessly from the bytes and checked against the route's body schema; undefined
 * once a problem has been sent. `noun` names the body in the problem's detail ("invalid label: …").
 */
export function validBody<N extends BodyRoute>(
  name: N,
  request: FastifyRequest,
  reply: FastifyReply,
  context: RouteContext,
  options: { readonly noun: string },
): BodyOf<Routes[N]> | undefined {
  const schema: TSchema = ROUTES[name].body;
  const bytes = requestBody(request, reply, context);
  if (!bytes) return undefined;
  const parsed = parseJsonBytes(bytes, { maxBytes: context.bodyLimit });
  if (!parsed.ok) {
    sendFailure(reply, parsed);
    return undefined;
  }
  let validate = validators.get(schema);
  if (!validate) {
    validate = compileJsonSchema(schema);
    validators.set(schema, validate);
  }
  if (!validate(parsed.value)) {
    const problems = schemaProblems(validate.errors ?? []);
    sendProblem(reply, 422, "invalid_request", `invalid ${options.noun}: ${problems[0]?.message}`, problems);
    return undefined;
  }
  return parsed.value as BodyOf<Routes[N]>;
}
