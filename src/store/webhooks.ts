import type { DeliveryAttempt, Webhook, WebhookProgress } from "../domain/webhook.ts";

/** Webhooks, their delivery progress and the log of every attempt. */
export interface WebhookStore {
  put(webhook: Webhook): Promise<void>;
  list(): Promise<Webhook[]>;
  /** False when there is no such webhook. */
  delete(webhookId: string): Promise<boolean>;
  /**
   * Takes the webhook's delivery lease for `holder` until `until` when it is free or expired at `now`
   * (compare-and-set): true when taken, so that one process at a time delivers for a webhook.
   */
  claim(webhookId: string, holder: string, until: string, now: string): Promise<boolean>;
  /** Logs a delivery attempt and moves the webhook's progress, in one transaction. */
  recordDelivery(attempt: DeliveryAttempt, progress: WebhookProgress): Promise<void>;
  /** Delivery attempts, newest first. */
  deliveries(query: { readonly webhookId?: string; readonly limit?: number }): Promise<DeliveryAttempt[]>;
}
