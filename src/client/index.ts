/**
 * A typed client for Lumyn's HTTP service (`lumyn serve`), on `fetch`: Node ≥ 18, Deno, Bun and browsers.
 *
 *   import { LumynClient } from "lumyn/client";
 *   const lumyn = new LumynClient({ baseUrl: "http://127.0.0.1:8787", apiKey: process.env.LUMYN_API_KEY });
 *   const { record } = await lumyn.decide(request);
 *   if (record.verdict !== "ALLOW") return;
 *
 * Every call goes through the route's definition in src/api (its method, path and parameters), and the
 * types below are those definitions' schemas. Every non-2xx answer is thrown as a {@link LumynApiError}
 * carrying the server's problem document.
 */
import type { TObject, TSchema } from "typebox";
import { ROUTES, type RouteName, type Routes } from "../api/index.ts";
import type { BodyOf, ParamsOf, QueryOf, Route, SuccessOf } from "../api/route.ts";
import type { Problem } from "../api/schemas.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";

export type { DecisionRecord, Problem };
export type Verdict = DecisionRecord["verdict"];
export type DecisionQuery = QueryOf<Routes["listDecisions"]>;
export type DecisionPage = SuccessOf<Routes["listDecisions"]>;
export type Explanation = SuccessOf<Routes["explain"]>;
export type LabelInput = BodyOf<Routes["label"]>;
export type LabelEvent = SuccessOf<Routes["label"]>;
export type StatsQuery = QueryOf<Routes["stats"]>;
export type Stats = SuccessOf<Routes["stats"]>;
export type ActivePolicy = SuccessOf<Routes["policy"]>;
/** An approval as the service shows it (docs/approvals.md). */
export type Approval = SuccessOf<Routes["getApproval"]>;
export type ApprovalState = Approval["state"];
export type ApprovalQuery = QueryOf<Routes["listApprovals"]>;
/** Gantral's evaluator input, and Lumyn's answer to it (docs/approvals.md). */
export type EvaluatorInput = BodyOf<Routes["evaluate"]>;
export type EvaluatorAnswer = SuccessOf<Routes["evaluate"]>;
export type OpenApiDocument = SuccessOf<Routes["openApi"]>;

export interface LumynClientOptions {
  /** e.g. `http://127.0.0.1:8787` */
  readonly baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`. */
  readonly apiKey?: string;
  /** When the server requires signed bodies: the shared `LUMYN_SIGNING_SECRET`. */
  readonly signingSecret?: string;
  /** Another fetch (a proxy, a test double of the network, a polyfill). */
  readonly fetch?: typeof fetch;
}

export class LumynApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.name = "LumynApiError";
    this.status = problem.status;
    this.problem = problem;
  }
}

export interface Decided {
  readonly record: DecisionRecord;
  /** `stored` now, a `duplicate` of an earlier request with the same request_id, or `unavailable` (fail-closed, not stored). */
  readonly status: "stored" | "duplicate" | "unavailable";
  /** The approval an ESCALATE opened, when its policy asks people to approve. */
  readonly approvalId?: string;
}

/** What a call to a route carries: its path parameters, query and body, each where the route has one. */
type Input<R extends Route> = (R["params"] extends TObject ? { readonly params: ParamsOf<R> } : unknown) &
  (R["querystring"] extends TObject ? { readonly query?: QueryOf<R> } : unknown) &
  (R["body"] extends TSchema ? { readonly body: BodyOf<R> } : unknown);

interface Call<N extends RouteName> {
  readonly route: N;
  readonly input: Input<Routes[N]>;
  readonly signal?: AbortSignal;
}

type SigningKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

export class LumynClient {
  private readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly signingKey: Promise<SigningKey> | undefined;
  private readonly fetch: typeof fetch;

  constructor(options: LumynClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.signingKey =
      options.signingSecret === undefined
        ? undefined
        : crypto.subtle.importKey(
            "raw",
            new TextEncoder().encode(options.signingSecret),
            { name: "HMAC", hash: "SHA-256" },
            false,
            ["sign"],
          );
  }

  /** Decides a request; a repeat of a request_id returns the stored record (status `duplicate`). */
  async decide(request: BodyOf<Routes["decide"]>): Promise<Decided> {
    const response = await this.#send({ route: "decide", input: { body: request } });
    const approvalId = response.headers.get("lumyn-approval-id");
    return {
      record: (await response.json()) as DecisionRecord,
      status: (response.headers.get("lumyn-decision-status") ?? "stored") as Decided["status"],
      ...(approvalId ? { approvalId } : {}),
    };
  }

  getDecision(decisionId: string): Promise<DecisionRecord> {
    return this.#json({ route: "getDecision", input: { params: { id: decisionId } } });
  }

  explain(decisionId: string): Promise<Explanation> {
    return this.#json({ route: "explain", input: { params: { id: decisionId } } });
  }

  /** A stored decision as a decision pack (zip bytes) that `lumyn replay` checks offline. */
  async pack(decisionId: string): Promise<Uint8Array> {
    const response = await this.#send({ route: "pack", input: { params: { id: decisionId } } });
    return new Uint8Array(await response.arrayBuffer());
  }

  label(decisionId: string, label: LabelInput): Promise<LabelEvent> {
    return this.#json({ route: "label", input: { params: { id: decisionId }, body: label } });
  }

  /** One page, newest first. */
  listDecisions(query: DecisionQuery = {}): Promise<DecisionPage> {
    return this.#json({ route: "listDecisions", input: { query } });
  }

  /** Every decision matching the query, newest first, fetching page after page. */
  async *decisions(query: Omit<DecisionQuery, "cursor"> = {}): AsyncGenerator<DecisionRecord> {
    let cursor: string | undefined;
    do {
      const page = await this.listDecisions({ ...query, ...(cursor ? { cursor } : {}) });
      yield* page.decisions;
      cursor = page.next_cursor;
    } while (cursor);
  }

  stats(query: StatsQuery = {}): Promise<Stats> {
    return this.#json({ route: "stats", input: { query } });
  }

  /** The active policy: the default one, or a tenant's. */
  policy(tenantId?: string): Promise<ActivePolicy> {
    return this.#json({
      route: "policy",
      input: { query: tenantId === undefined ? {} : { tenant_id: tenantId } },
    });
  }

  async listApprovals(query: ApprovalQuery = {}): Promise<Approval[]> {
    return (await this.#json({ route: "listApprovals", input: { query } })).approvals;
  }

  getApproval(approvalId: string): Promise<Approval> {
    return this.#json({ route: "getApproval", input: { params: { id: approvalId } } });
  }

  /** A vote as the key's holder; a retry with the same idempotency key answers the same. */
  vote(
    approvalId: string,
    decision: "approve" | "reject",
    vote: { justification: string; idempotencyKey: string },
  ): Promise<Approval> {
    return this.#json({
      route: decision,
      input: {
        params: { id: approvalId },
        body: { justification: vote.justification, idempotency_key: vote.idempotencyKey },
      },
    });
  }

  /** Forces an approval through, as a holder of the `override` role. */
  override(approvalId: string, justification: string): Promise<Approval> {
    return this.#json({ route: "override", input: { params: { id: approvalId }, body: { justification } } });
  }

  /** Withdraws a waiting approval, as its requester or one who may vote on it or override it. */
  cancel(approvalId: string, justification: string): Promise<Approval> {
    return this.#json({ route: "cancel", input: { params: { id: approvalId }, body: { justification } } });
  }

  /**
   * Redeems an approved approval right before acting, once only, before its deadline, for the action whose
   * inputs digest is given (its decision's `determinism.inputs_digest`): another action's is refused.
   */
  consume(approvalId: string, inputsDigest: string): Promise<Approval> {
    return this.#json({
      route: "consume",
      input: { params: { id: approvalId }, body: { inputs_digest: inputsDigest } },
    });
  }

  /** Waits (long poll, at most 60 s a call) until the approval is resolved or `timeoutSeconds` pass. */
  waitForApproval(approvalId: string, timeoutSeconds = 30): Promise<Approval> {
    const seconds = Math.max(1, Math.min(60, Math.round(timeoutSeconds)));
    return this.#json({
      route: "wait",
      input: { params: { id: approvalId }, query: { timeout: `${seconds}s` } },
    });
  }

  /**
   * The approval now, then each new version until it is final (server-sent events). The stream ends there,
   * when the server shuts down, or when `signal` aborts.
   */
  async *approvalEvents(approvalId: string, signal?: AbortSignal): AsyncGenerator<Approval> {
    const response = await this.#send({ route: "events", input: { params: { id: approvalId } }, signal });
    if (!response.body) return;
    let buffered = "";
    for await (const text of response.body.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let end = buffered.indexOf("\n\n");
      while (end >= 0) {
        const event = serverSentEvent(buffered.slice(0, end));
        buffered = buffered.slice(end + 2);
        end = buffered.indexOf("\n\n");
        if (event.type === "approval") yield JSON.parse(event.data) as Approval;
        if (event.type === "error") {
          const { code } = JSON.parse(event.data) as { code: string };
          throw new LumynApiError({
            type: `urn:lumyn:problem:${code}`,
            title: "Service Unavailable",
            status: 503,
            code,
            detail: "the server could not follow the approval any further",
          });
        }
      }
    }
  }

  /** Decides Gantral's evaluator input (as the policy evaluator of an execution-authority layer). */
  evaluate(input: EvaluatorInput): Promise<EvaluatorAnswer> {
    return this.#json({ route: "evaluate", input: { body: input } });
  }

  /** True while the server runs. */
  healthy(): Promise<boolean> {
    return this.#answers("healthz");
  }

  /** True when the store answers and the policy is loaded. */
  ready(): Promise<boolean> {
    return this.#answers("readyz");
  }

  /** The Prometheus metrics, as text (not for keys bound to a tenant). */
  async metrics(): Promise<string> {
    return (await this.#send({ route: "metrics", input: {} })).text();
  }

  /** The OpenAPI 3.1 description of every route. */
  openApi(): Promise<OpenApiDocument> {
    return this.#json({ route: "openApi", input: {} });
  }

  async #answers(route: "healthz" | "readyz"): Promise<boolean> {
    const response = await this.fetch(`${this.baseUrl}${ROUTES[route].url}`, {
      method: ROUTES[route].method,
    });
    await response.body?.cancel();
    return response.ok;
  }

  async #json<N extends RouteName>(call: Call<N>): Promise<SuccessOf<Routes[N]>> {
    return (await (await this.#send(call)).json()) as SuccessOf<Routes[N]>;
  }

  async #send<N extends RouteName>({ route: name, input, signal }: Call<N>): Promise<Response> {
    const route: Route = ROUTES[name];
    const { params, query, body } = input as { params?: object; query?: object; body?: object };
    const headers: Record<string, string> = {};
    if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;
    let payload: Uint8Array<ArrayBuffer> | undefined;
    if (body !== undefined) {
      payload = new TextEncoder().encode(JSON.stringify(body));
      headers["content-type"] = "application/json";
      if (this.signingKey) headers["x-lumyn-signature"] = await signature(await this.signingKey, payload);
    }
    const response = await this.fetch(`${this.baseUrl}${path(route.url, params)}${queryString(query)}`, {
      method: route.method,
      headers,
      ...(payload ? { body: payload } : {}),
      ...(signal ? { signal } : {}),
    });
    if (response.ok) return response;
    const text = await response.text();
    let problem: Problem;
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = {
        type: "about:blank",
        title: response.statusText,
        status: response.status,
        code: "http_error",
        detail: text.slice(0, 200),
      };
    }
    throw new LumynApiError(problem);
  }
}

async function signature(key: SigningKey, body: Uint8Array<ArrayBuffer>): Promise<string> {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body));
  return `sha256:${Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/** A route's path with its `:name` parameters filled in. */
function path(url: string, params: object | undefined): string {
  const values = (params ?? {}) as Record<string, unknown>;
  return url.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(String(values[name])));
}

function queryString(query: object | undefined): string {
  const parameters = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) parameters.set(name, String(value));
  }
  const text = parameters.toString();
  return text ? `?${text}` : "";
}

/** One server-sent event's type and data (its `data:` lines joined). */
function serverSentEvent(block: string): { type: string; data: string } {
  let type = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") type = value;
    if (field === "data") data.push(value);
  }
  return { type, data: data.join("\n") };
}
