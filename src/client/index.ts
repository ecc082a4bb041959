/**
 * A typed client for Lumyn's HTTP service (`lumyn serve`), on `fetch`: Node ≥ 18, Deno, Bun and browsers.
 *
 *   import { LumynClient } from "lumyn/client";
 *   const lumyn = new LumynClient({ baseUrl: "http://127.0.0.1:8787", apiKey: process.env.LUMYN_API_KEY });
 *   const { record } = await lumyn.decide(request);
 *   if (record.verdict !== "ALLOW") return;
 *
 * Every non-2xx answer is thrown as a {@link LumynApiError} carrying the server's problem document.
 */
import type { DecisionRecord } from "../domain/decision-record.ts";

export type { DecisionRecord };

export type Verdict = "ALLOW" | "DENY" | "ESCALATE" | "ABSTAIN";

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

/** An RFC 9457 problem document, as the service answers every error. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  /** Stable machine code: `invalid_request`, `request_id_conflict`, `rate_limited`, … */
  readonly code: string;
  readonly detail: string;
  readonly errors?: readonly {
    readonly code: string;
    readonly message: string;
    /** JSON pointer into the body or the query. */
    readonly pointer?: string;
    readonly line?: number;
    readonly column?: number;
    readonly expected?: string;
    readonly hint?: string;
  }[];
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

export type ApprovalState =
  | "WAITING_FOR_HUMAN"
  | "ESCALATED"
  | "APPROVED"
  | "REJECTED"
  | "TIMED_OUT"
  | "OVERRIDDEN"
  | "CANCELLED"
  | "CONSUMED";

/** An approval as the service shows it (docs/approvals.md). */
export interface Approval {
  readonly approval_id: string;
  readonly decision_id: string;
  readonly tenant_id: string;
  readonly inputs_digest: string;
  readonly state: ApprovalState;
  readonly version: number;
  readonly approver_roles: string[];
  readonly quorum: number;
  readonly deadline: string;
  readonly votes: {
    actor_id: string;
    roles: string[];
    decision: "approve" | "reject";
    justification: string;
    at: string;
  }[];
  readonly timeline: {
    from: ApprovalState | null;
    to: ApprovalState;
    at: string;
    actor: string;
    justification?: string;
  }[];
  readonly outcome?: "ALLOW" | "DENY";
  readonly authority?: Record<string, unknown>;
}

export interface ApprovalQuery {
  readonly state?: ApprovalState;
  readonly role?: string;
  readonly tenant_id?: string;
  readonly limit?: number;
}

export interface DecisionQuery {
  readonly verdict?: Verdict;
  readonly reason_code?: string;
  readonly action_type?: string;
  readonly subject_id?: string;
  readonly tenant_id?: string;
  /** ISO 8601 with a zone; inclusive. */
  readonly since?: string;
  /** ISO 8601 with a zone; exclusive. */
  readonly until?: string;
  /** 1 to 500 (default 50). */
  readonly limit?: number;
  readonly cursor?: string;
}

export interface DecisionPage {
  readonly decisions: DecisionRecord[];
  readonly next_cursor?: string;
}

export interface StatsQuery {
  readonly by?: "verdict" | "reason_code" | "action_type";
  readonly since?: string;
  readonly until?: string;
  readonly tenant_id?: string;
}

export interface Stats {
  readonly total: number;
  readonly by: string;
  readonly groups: Readonly<Record<string, number>>;
}

export interface LabelInput {
  readonly label: "failure" | "success";
  readonly summary?: string;
  /** 1 (minor) to 5 (severe). */
  readonly severity?: number;
}

export interface LabelEvent {
  readonly event_id: string;
  readonly decision_id: string;
  readonly type: "label";
  readonly created_at: string;
  readonly data: { readonly label: string; readonly summary?: string; readonly severity?: number };
}

export interface ActivePolicy {
  readonly policy_id: string;
  readonly policy_version: string;
  readonly policy_hash: string;
  readonly mode: "enforce" | "advisory";
}

/** Why a decision got its verdict: each rule, each condition with the value it saw. */
export interface Explanation {
  readonly decision_id: string;
  readonly verdict: Verdict;
  readonly because: string;
  readonly policy: {
    readonly policy_id: string;
    readonly policy_version: string;
    readonly policy_hash: string;
  };
  readonly rules: readonly Record<string, unknown>[];
  readonly recorded_verdict?: Verdict;
  readonly memory?: Record<string, unknown>;
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
  async decide(request: object): Promise<Decided> {
    const response = await this.send("POST", "/v1/decide", request);
    const approvalId = response.headers.get("lumyn-approval-id");
    return {
      record: (await response.json()) as DecisionRecord,
      status: (response.headers.get("lumyn-decision-status") ?? "stored") as Decided["status"],
      ...(approvalId ? { approvalId } : {}),
    };
  }

  /** A stored decision as a decision pack (zip bytes) that `lumyn replay` checks offline. */
  async pack(decisionId: string): Promise<Uint8Array> {
    const response = await this.send("GET", `/v1/decisions/${encodeURIComponent(decisionId)}/pack`);
    return new Uint8Array(await response.arrayBuffer());
  }

  async listApprovals(query: ApprovalQuery = {}): Promise<Approval[]> {
    return (await this.json<{ approvals: Approval[] }>("GET", `/v1/approvals${queryString(query)}`))
      .approvals;
  }

  getApproval(approvalId: string): Promise<Approval> {
    return this.json("GET", `/v1/approvals/${encodeURIComponent(approvalId)}`);
  }

  /** A vote as the key's holder; a retry with the same idempotency key answers the same. */
  vote(
    approvalId: string,
    decision: "approve" | "reject",
    vote: { justification: string; idempotencyKey: string },
  ): Promise<Approval> {
    return this.json("POST", `/v1/approvals/${encodeURIComponent(approvalId)}/${decision}`, {
      justification: vote.justification,
      idempotency_key: vote.idempotencyKey,
    });
  }

  /** Redeems an approved approval right before acting; once only, before its deadline. */
  consume(approvalId: string, inputsDigest?: string): Promise<Approval> {
    return this.json(
      "POST",
      `/v1/approvals/${encodeURIComponent(approvalId)}/consume`,
      inputsDigest ? { inputs_digest: inputsDigest } : {},
    );
  }

  /** Waits (long poll, at most 60 s a call) until the approval is resolved or `timeoutSeconds` pass. */
  waitForApproval(approvalId: string, timeoutSeconds = 30): Promise<Approval> {
    return this.json(
      "GET",
      `/v1/approvals/${encodeURIComponent(approvalId)}/wait?timeout=${Math.max(1, Math.min(60, Math.round(timeoutSeconds)))}s`,
    );
  }

  getDecision(decisionId: string): Promise<DecisionRecord> {
    return this.json("GET", `/v1/decisions/${encodeURIComponent(decisionId)}`);
  }

  explain(decisionId: string): Promise<Explanation> {
    return this.json("GET", `/v1/decisions/${encodeURIComponent(decisionId)}/explain`);
  }

  label(decisionId: string, label: LabelInput): Promise<LabelEvent> {
    return this.json("POST", `/v1/decisions/${encodeURIComponent(decisionId)}/labels`, label);
  }

  /** One page, newest first. */
  listDecisions(query: DecisionQuery = {}): Promise<DecisionPage> {
    return this.json("GET", `/v1/decisions${queryString(query)}`);
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
    return this.json("GET", `/v1/stats${queryString(query)}`);
  }

  policy(): Promise<ActivePolicy> {
    return this.json("GET", "/v1/policy");
  }

  /** True when the store answers and the policy is loaded. */
  async ready(): Promise<boolean> {
    const response = await this.fetch(`${this.baseUrl}/readyz`);
    await response.body?.cancel();
    return response.ok;
  }

  private async json<T>(method: string, path: string, body?: object): Promise<T> {
    return (await (await this.send(method, path, body)).json()) as T;
  }

  private async send(method: string, path: string, body?: object): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;
    let payload: Uint8Array<ArrayBuffer> | undefined;
    if (body !== undefined) {
      payload = new TextEncoder().encode(JSON.stringify(body));
      headers["content-type"] = "application/json";
      if (this.signingKey) headers["x-lumyn-signature"] = await signature(await this.signingKey, payload);
    }
    const response = await this.fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      ...(payload ? { body: payload } : {}),
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

function queryString(query: object): string {
  const parameters = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) parameters.set(name, String(value));
  }
  const text = parameters.toString();
  return text ? `?${text}` : "";
}
