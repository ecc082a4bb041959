import type { KeyObject } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { isIP } from "node:net";
import swagger, { type FastifyDynamicSwaggerOptions } from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import type { Access } from "../api/access.ts";
import { OPENAPI } from "../api/openapi.ts";
import {
  type ApiKey,
  DEFAULT_MAX_JSON_BYTES,
  type EvaluatorFallback,
  grants,
  hashApiKey,
  KEY_PREFIX,
  type Lumyn,
  PolicySync,
  RedisVelocityCounters,
  StorageError,
} from "../index.ts";
import { bearerToken, KeyCache, RateLimiter } from "./auth.ts";
import { startBackgroundWork } from "./background.ts";
import { CheckpointExport } from "./checkpoint-export.ts";
import {
  DEFAULT_CHECKPOINT_INTERVAL_MS,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_WRITE_STALL_MS,
} from "./config.ts";
import type { RouteContext } from "./context.ts";
import { ServiceMetrics } from "./metrics.ts";
import { PROBLEM_CONTENT_TYPE, problemDocument, sendProblem } from "./problem.ts";
import { registerApprovalRoutes } from "./routes/approvals.ts";
import { registerDecisionRoutes } from "./routes/decisions.ts";
import { registerServiceRoutes } from "./routes/service.ts";
import { unservedRoutes } from "./routing.ts";
import { compileTextSchema, schemaProblems } from "./validation.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The caller's key; undefined when auth is off or the route is public. */
    apiKey: ApiKey | undefined;
  }
  interface FastifyContextConfig {
    access?: Access;
  }
}

export interface ServerOptions {
  readonly lumyn: Lumyn;
  /** Whether routes need a key (default true). Off is allowed only on a loopback address. */
  readonly auth?: boolean;
  /** When set, POST bodies must carry `X-Lumyn-Signature: sha256:<hex HMAC-SHA256 of the body>`. */
  readonly signingSecret?: string;
  /** Largest body accepted, in bytes (default 1 MiB). */
  readonly bodyLimit?: number;
  /** Structured JSON logs: a level and where to write (stdout by default); false for none. */
  readonly log?: { readonly level: string; readonly stream?: NodeJS.WritableStream } | false;
  /** Log stack traces of unexpected errors (off: their message only). */
  readonly debug?: boolean;
  /** How long a key read from the store is trusted before it is read again (default 1 s; 0: every request). */
  readonly keyCacheMs?: number;
  /** What `POST /v1/evaluate` answers for MEDIUM and LOW materiality when the policy cannot be evaluated. */
  readonly evaluatorFallback?: EvaluatorFallback;
  /** `redis://…`: switch policies on announcements and adopt signed policy documents (see docs/registry.md). */
  readonly redisUrl?: string;
  /** How often the store is read for policy activations no announcement brought (default 5 s). */
  readonly policyPollMs?: number;
  /** Ed25519 public keys whose signed policy documents in Redis are applied; without any, none is. */
  readonly policyPublisherKeys?: readonly KeyObject[];
  /** The largest policy document read from Redis, in bytes (default: the gateway's policy size limit). */
  readonly policyMaxBytes?: number;
  /** A folder outside the store where each new signed checkpoint is written (see CheckpointExport). */
  readonly checkpointDir?: string;
  /** How often the head is signed (when it moved) and new checkpoints are written there (default 60 s). */
  readonly checkpointIntervalMs?: number;
  /**
   * How long the store's writes may wait without a commit before `/readyz` answers 503, in ms (default 10 s):
   * a store that still answers reads can have its writes stuck behind a lock.
   */
  readonly writeStallMs?: number;
}

/** Framework errors as stable problem codes. */
const FRAMEWORK_CODES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_BODY_TOO_LARGE: "too_large",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "invalid_content_length",
  FST_ERR_BAD_URL: "bad_url",
};

/** The HTTP service around one {@link Lumyn}: routes, auth, errors, logs and metrics. Not listening yet. */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const auth = options.auth ?? true;
  const bodyLimit = options.bodyLimit ?? DEFAULT_MAX_JSON_BYTES;
  const log = options.log ?? { level: "info" };
  const destination = log !== false && !log.stream ? stdoutLog() : undefined;
  const app = Fastify({
    bodyLimit,
    logger: log === false ? false : { level: log.level, stream: log.stream ?? destination },
    // One line per request, written by the onResponse hook below, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    return503OnClosing: true,
    frameworkErrors: (error, _request, reply) => {
      sendProblem(reply, 400, FRAMEWORK_CODES[error.code] ?? "bad_request", error.message);
    },
    clientErrorHandler: (error, socket) => {
      // Malformed HTTP never reaches a route; answer it as a problem too, then hang up.
      const tooLarge = (error as NodeJS.ErrnoException).code === "HPE_HEADER_OVERFLOW";
      const status = tooLarge ? 431 : 400;
      const body = JSON.stringify(
        problemDocument(status, tooLarge ? "headers_too_large" : "bad_request", "malformed HTTP request"),
      );
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${tooLarge ? "Request Header Fields Too Large" : "Bad Request"}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      } else socket.destroy();
    },
  });
  const metrics = new ServiceMetrics();
  try {
    const policySync = await PolicySync.start({
      lumyn: options.lumyn,
      log: app.log,
      events: {
        switched: (tenant) => metrics.policySwitched(tenant),
        rejected: (_tenant, reason) => metrics.policyRejected(reason),
      },
      ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
      ...(options.policyPollMs ? { pollMs: options.policyPollMs } : {}),
      ...(options.policyPublisherKeys ? { publisherKeys: options.policyPublisherKeys } : {}),
      ...(options.policyMaxBytes ? { maxDocumentBytes: options.policyMaxBytes } : {}),
    });
    app.addHook("onClose", () => policySync.close());
    if (options.redisUrl) {
      const counters = await RedisVelocityCounters.connect(options.redisUrl, app.log);
      options.lumyn.useVelocityCounters(counters);
      app.addHook("onClose", async () => {
        options.lumyn.useVelocityCounters(undefined);
        counters.close();
      });
    }
  } catch (error) {
    // Closing runs the hooks added so far: what was started stops.
    await app.close();
    throw error;
  }
  const context: RouteContext = {
    lumyn: options.lumyn,
    metrics,
    signingSecret: options.signingSecret,
    bodyLimit,
    writeStallMs: options.writeStallMs ?? DEFAULT_WRITE_STALL_MS,
  };

  // Bodies are kept as bytes: they are parsed losslessly by the route (digests depend on int vs float) and
  // signatures are computed over the exact bytes.
  app.removeAllContentTypeParsers();
  for (const type of ["application/json", /^application\/[a-z0-9.-]+\+json$/i]) {
    app.addContentTypeParser(type, { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  }
  // Query strings and path parameters are checked against their schemas; bodies by the routes themselves.
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === "body" ? () => true : compileTextSchema(schema),
  );
  // Routes answer with JSON text they wrote (most of it stored canonical JSON): their response schemas
  // describe the answers and never re-serialize them.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setSchemaErrorFormatter((errors, dataVar) => {
    const error = new Error(`invalid ${dataVar}`) as FastifyError & { problems: unknown };
    error.problems = schemaProblems(errors as Parameters<typeof schemaProblems>[0]);
    return error;
  });

  app.decorateRequest("apiKey", undefined);
  const limiter = new RateLimiter();
  const keys = new KeyCache(options.keyCacheMs);
  // Callback hooks, not async ones: with the key cached, a request is admitted without a promise.
  app.addHook("onRequest", (request, reply, done) => {
    const access = request.routeOptions.config.access ?? "any";
    if (access === "public" || !auth) return done();
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) {
      reply.header("www-authenticate", 'Bearer realm="lumyn"');
      sendProblem(reply, 401, "auth_required", "this route needs an API key: Authorization: Bearer <key>");
      return;
    }
    const admitted = (key: ApiKey | undefined): void => {
      if (admit(request, reply, access, key, limiter)) done();
    };
    if (!token.startsWith(KEY_PREFIX)) return admitted(undefined);
    const keyHash = hashApiKey(token);
    const cached = keys.get(keyHash);
    if (cached) return admitted(cached);
    options.lumyn.store.apiKeys
      .findByHash(keyHash)
      .then(
        (key) => {
          if (key) keys.put(keyHash, key);
          admitted(key);
        },
        () => {
          metrics.storeError("find_api_key");
          sendProblem(reply, 503, "storage_unavailable", "the key store cannot be read");
        },
      )
      // What the async hook did for free: anything thrown on the way is the error handler's (a 500).
      .catch((error: Error) => {
        if (!reply.sent) reply.send(error);
      });
  });
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.request(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    request.log.info(
      {
        method: request.method,
        url: loggedUrl(request.url),
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        ...(request.apiKey ? { key_id: request.apiKey.keyId } : {}),
      },
      "request",
    );
    done();
  });

  // While closing, every answer ends its connection: a keep-alive connection that was busy when the close
  // began would otherwise hold the process open until its idle timeout.
  let draining = false;
  app.addHook("preClose", (done) => {
    draining = true;
    done();
  });
  app.addHook("onClose", (_instance, done) => {
    // Ending the stream writes out what is buffered; stdout itself stays open.
    if (destination) destination.end(() => done());
    else done();
  });
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (draining) reply.header("connection", "close");
    done(null, payload);
  });

  app.setErrorHandler((error: FastifyError & { problems?: unknown }, request, reply) => {
    if (error.validation) {
      const problems = (error.problems ?? []) as Parameters<typeof sendProblem>[4];
      return sendProblem(
        reply,
        422,
        error.validationContext === "querystring" ? "invalid_query" : "invalid_request",
        `invalid ${error.validationContext ?? "input"}: ${problems?.[0]?.message ?? error.message}`,
        problems,
      );
    }
    if (error instanceof StorageError) {
      metrics.storeError("read");
      return sendProblem(reply, 503, "storage_unavailable", error.message);
    }
    const status = typeof error.statusCode === "number" && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500 && status !== 503) {
      request.log.error(
        { err: options.debug ? error : { type: error.name, message: error.message } },
        "unexpected error",
      );
      return sendProblem(reply, 500, "internal_error", "an unexpected error occurred; see the server log");
    }
    const code = FRAMEWORK_CODES[error.code] ?? (status === 503 ? "unavailable" : "bad_request");
    return sendProblem(
      reply,
      status,
      code,
      code === "unsupported_media_type" ? "send the body as application/json" : error.message,
    );
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 404, "route_not_found", `no route ${request.method} ${request.url.split("?")[0]}`),
  );

  // Dynamic mode: the document's paths are the routes as registered below, from their definitions in src/api.
  // The components are plain JSON Schemas, which the document's types do not describe.
  await app.register(swagger, { openapi: OPENAPI as FastifyDynamicSwaggerOptions["openapi"] });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  registerServiceRoutes(app, context);
  registerDecisionRoutes(app, context);
  registerApprovalRoutes(app, context, options.evaluatorFallback);
  const unserved = unservedRoutes(app);
  if (unserved.length > 0) {
    await app.close();
    throw new Error(`routes defined in src/api without a handler: ${unserved.join(", ")}`);
  }
  return app;
}

/** Query parameters that carry secrets when a client sends them (names compared case-insensitively). */
const SECRET_PARAMETERS = new Set(["api_key", "key", "token", "signature", "secret"]);

/**
 * A URL as the request log shows it: the value of each secret-like query parameter replaced by `***`, its name
 * kept, so that a key sent in the query string (where no route reads it) is seen to have been sent, never what
 * it was.
 */
function loggedUrl(url: string): string {
  const start = url.indexOf("?");
  if (start < 0) return url;
  const parameters = url
    .slice(start + 1)
    .split("&")
    .map((parameter) => {
      const equals = parameter.indexOf("=");
      if (equals < 0) return parameter;
      const name = parameter.slice(0, equals);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replaceAll("+", " "));
      } catch {
        // A name that is not valid percent-encoding is compared as it was sent.
      }
      return SECRET_PARAMETERS.has(decoded.toLowerCase()) ? `${name}=***` : parameter;
    });
  return `${url.slice(0, start + 1)}${parameters.join("&")}`;
}

/**
 * Where the server logs by default: stdout, through an asynchronous file stream. Lines written while a write
 * is in flight are buffered and go out together in one `writev`, so the event loop does not pay a system
 * call per line. (pino's own destination, sonic-boom, measures the whole pending buffer on every line, which
 * cost ~10 µs a request under load.) The stream never closes stdout; the server ends it, which writes out
 * what is buffered, when it closes.
 */
function stdoutLog(): WriteStream {
  // With `fd` given, the path is not used.
  const stream = createWriteStream("", { fd: 1, autoClose: false, highWaterMark: 64 * 1024 });
  let failed = false;
  stream.on("error", (error) => {
    // Nowhere left to log to: say so once on stderr and keep serving.
    if (!failed) process.stderr.write(`lumyn: the log on stdout failed: ${error.message}\n`);
    failed = true;
  });
  return stream;
}

/**
 * Whether a request with this key (undefined: none found) may reach a route of this access; when it may
 * not, the 401, 403 or 429 has been sent. A key that is valid for the route is the request's from here on,
 * so that a 429 is logged with its key.
 */
function admit(
  request: FastifyRequest,
  reply: FastifyReply,
  access: Exclude<Access, "public">,
  key: ApiKey | undefined,
  limiter: RateLimiter,
): key is ApiKey {
  if (!key || key.revokedAt !== undefined) {
    reply.header("www-authenticate", 'Bearer realm="lumyn", error="invalid_token"');
    sendProblem(
      reply,
      401,
      key ? "key_revoked" : "invalid_key",
      key ? `key ${key.keyId} was revoked at ${key.revokedAt}` : "unknown API key",
    );
    return false;
  }
  if (access !== "any" && !grants(key, access)) {
    // The key is genuine, only not enough for this route: its id goes into the request's log line.
    request.apiKey = key;
    sendProblem(
      reply,
      403,
      "insufficient_scope",
      `key ${key.keyId} has scopes [${key.scopes.join(", ")}]; this route needs '${access}'`,
    );
    return false;
  }
  request.apiKey = key;
  if (key.rateLimitPerSecond !== undefined) {
    const wait = limiter.take(key.keyId, key.rateLimitPerSecond);
    if (wait > 0) {
      reply.header("retry-after", String(Math.ceil(wait)));
      sendProblem(
        reply,
        429,
        "rate_limited",
        `this key may make ${key.rateLimitPerSecond} requests per second; try again in ${Math.ceil(wait)} s`,
      );
      return false;
    }
  }
  return true;
}

/** 127.0.0.0/8, ::1 and localhost: where a server without auth is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1" || host === "::ffff:127.0.0.1";
}

export interface RunningServer {
  readonly app: FastifyInstance;
  /** e.g. `http://127.0.0.1:8787` */
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish, then closes the store. */
  close(): Promise<void>;
}

/** Builds and starts the service. Refuses to run without auth on anything but a loopback address. */
export async function startServer(
  options: ServerOptions & { readonly host?: string; readonly port?: number },
): Promise<RunningServer> {
  const host = options.host ?? DEFAULT_HOST;
  if (options.auth === false && !isLoopback(host)) {
    throw new Error(
      `auth can be turned off only on a loopback address (127.0.0.1, ::1, localhost), not ${host}`,
    );
  }
  const app = await buildServer(options);
  let anchor: CheckpointExport | undefined;
  try {
    if (options.checkpointDir !== undefined)
      anchor = await CheckpointExport.start(
        options.lumyn.store.log,
        options.checkpointDir,
        options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
        app.log,
      );
    await app.listen({ host, port: options.port ?? DEFAULT_PORT });
  } catch (error) {
    await anchor?.stop();
    await app.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const background = startBackgroundWork(options.lumyn, app.log);
  let closing: Promise<void> | undefined;
  return {
    app,
    url,
    close: () => {
      closing ??= (async () => {
        await background.stop();
        await app.close();
        await anchor?.stop();
        await options.lumyn.close();
      })();
      return closing;
    },
  };
}

export {
  printableConfig,
  type ResolvedConfig,
  resolveServeConfig,
  type ServeConfig,
  type Setting,
} from "./config.ts";
