import { randomBytes } from "node:crypto";
import { signBody } from "../core/digest.ts";
import { newDecisionId } from "../core/ids.ts";
import { fail, ok, type Result } from "../core/problem.ts";
import type { SequencedEvent } from "../domain/decision-event.ts";
import type { DeliveryAttempt, Webhook } from "../domain/webhook.ts";
import type { Store } from "../store/store.ts";

/** What webhooks receive: every approval transition, in the order of the event log. */
export const WEBHOOK_EVENT_TYPES = ["approval_transition"] as const;

export interface DispatcherOptions {
  /** Who holds a webhook's lease while delivering (one process at a time per webhook). */
  readonly holder?: string;
  readonly clock?: () => Date;
  /** The first retry waits this long; each next one twice as long, up to {@link MAX_BACKOFF_MS}. */
  readonly retryBaseMs?: number;
  /** Attempts at one event before it is abandoned (in the delivery log) and the webhook moves on. */
  readonly maxAttempts?: number;
  readonly timeoutMs?: number;
  readonly leaseMs?: number;
}

const MAX_BACKOFF_MS = 5 * 60_000;
const BATCH = 50;

/** A webhook URL as it may be shown: without its password or query string, which often carry tokens. */
export function displayUrl(url: string): string {
  const parsed = new URL(url);
  const query = parsed.search ? "?…" : "";
  parsed.search = "";
  if (parsed.password) parsed.password = "***";
  return `${parsed.toString()}${query}`;
}

/** A new webhook, starting after the events already logged; its secret is generated when none is given. */
export async function addWebhook(
  store: Store,
  input: { url: string; name?: string; secret?: string },
  now: Date = new Date(),
): Promise<Result<Webhook>> {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    return fail("invalid_request", [
      { code: "url", message: `'${input.url}' is not a URL`, expected: "http(s)://host[:port]/path" },
    ]);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return fail("invalid_request", [
      {
        code: "url",
        message: `a webhook URL must be http or https, not ${url.protocol}`,
        expected: "http(s)://…",
      },
    ]);
  if (input.secret !== undefined && input.secret.length < 16)
    return fail("invalid_request", [
      {
        code: "secret",
        message: "a webhook secret needs at least 16 characters",
        expected: "16 or more characters",
      },
    ]);
  const webhook: Webhook = {
    webhookId: newDecisionId(now.getTime()),
    url: url.toString(),
    secret: input.secret ?? randomBytes(32).toString("base64url"),
    name: input.name ?? "",
    createdAt: now.toISOString(),
    cursorSeq: await store.log.lastSeq(),
    attempts: 0,
  };
  await store.webhooks.put(webhook);
  return ok(webhook);
}

/**
 * Delivers approval transitions to every webhook, in order, each signed with the webhook's secret
 * (`X-Lumyn-Signature: sha256:<hex HMAC-SHA256 of the body>`). A failed delivery is retried with exponential
 * backoff; the webhook waits meanwhile, so receivers see transitions in order. Progress and every attempt are
 * in the store, so deliveries survive restarts, and a lease keeps two processes from delivering for one
 * webhook at once. Delivery is at least once: receivers deduplicate by `X-Lumyn-Event-Id`.
 */
export class WebhookDispatcher {
  private readonly store: Store;
  private readonly holder: string;
  private readonly clock: () => Date;
  private readonly retryBaseMs: number;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(store: Store, options: DispatcherOptions = {}) {
    this.store = store;
    this.holder = options.holder ?? `dispatcher-${newDecisionId()}`;
    this.clock = options.clock ?? (() => new Date());
    this.retryBaseMs = options.retryBaseMs ?? 1_000;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.leaseMs = options.leaseMs ?? 30_000;
  }

  /** One pass over every webhook; returns how many delivery attempts it made. */
  async deliverDue(): Promise<number> {
    let attempts = 0;
    for (const webhook of await this.store.webhooks.list()) attempts += await this.deliverTo(webhook);
    return attempts;
  }

  /** Passes every `intervalMs` until {@link stop}; a pass that fails (store down) is tried again next time. */
  start(intervalMs: number, onError: (error: unknown) => void): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.deliverDue()
        .then(
          () => undefined,
          (error) => onError(error),
        )
        .finally(() => {
          this.running = undefined;
        });
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Takes or renews this process's lease on the webhook; false when another process holds it. */
  private lease(webhookId: string): Promise<boolean> {
    const now = this.clock();
    const until = new Date(now.getTime() + this.leaseMs).toISOString();
    return this.store.webhooks.claim(webhookId, this.holder, until, now.toISOString());
  }

  private async deliverTo(listed: Webhook): Promise<number> {
    if (listed.nextAttemptAt && this.clock().getTime() < Date.parse(listed.nextAttemptAt)) return 0;
    if (!(await this.lease(listed.webhookId))) return 0;
    // Read again now that this process holds it: another may have moved it on since the list was read.
    const webhook = (await this.store.webhooks.list()).find((w) => w.webhookId === listed.webhookId);
    if (!webhook) return 0;
    const events = await this.store.log.after(webhook.cursorSeq, WEBHOOK_EVENT_TYPES, BATCH);
    let failures = webhook.attempts;
    let cursor = webhook.cursorSeq;
    let made = 0;
    for (const sequenced of events) {
      // Renewed before every delivery (each takes at most the timeout, well inside the lease), so that the
      // lease cannot run out mid-pass and let another process deliver beside this one.
      if (made > 0 && !(await this.lease(webhook.webhookId))) return made;
      const attempt = failures + 1;
      const answer = await this.post(webhook, sequenced, attempt);
      made++;
      const at = this.clock().toISOString();
      const logged: DeliveryAttempt = {
        webhookId: webhook.webhookId,
        eventId: sequenced.event.eventId,
        attempt,
        outcome: answer.ok ? "delivered" : attempt >= this.maxAttempts ? "abandoned" : "failed",
        ...(answer.status !== undefined ? { httpStatus: answer.status } : {}),
        ...(answer.error !== undefined ? { error: answer.error } : {}),
        at,
      };
      if (logged.outcome === "failed") {
        const wait = Math.min(this.retryBaseMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
        await this.store.webhooks.recordDelivery(logged, {
          webhookId: webhook.webhookId,
          cursorSeq: cursor,
          attempts: attempt,
          nextAttemptAt: new Date(Date.parse(at) + wait).toISOString(),
        });
        return made;
      }
      cursor = sequenced.seq;
      await this.store.webhooks.recordDelivery(logged, {
        webhookId: webhook.webhookId,
        cursorSeq: cursor,
        attempts: 0,
      });
      failures = 0;
    }
    return made;
  }

  private async post(
    webhook: Webhook,
    sequenced: SequencedEvent,
    attempt: number,
  ): Promise<{ ok: boolean; status?: number; error?: string }> {
    const { event } = sequenced;
    const body = JSON.stringify({
      webhook_id: webhook.webhookId,
      event_id: event.eventId,
      type: event.type,
      decision_id: event.decisionId,
      created_at: event.createdAt,
      data: event.data,
    });
    try {
      const response = await fetch(webhook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-lumyn-signature": signBody(webhook.secret, body),
          "x-lumyn-event-id": event.eventId,
          "x-lumyn-delivery-attempt": String(attempt),
        },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: "manual",
      });
      await response.body?.cancel();
      return response.ok ? { ok: true, status: response.status } : { ok: false, status: response.status };
    } catch (error) {
      return { ok: false, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
    }
  }
}
