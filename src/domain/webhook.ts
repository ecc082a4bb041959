/** A URL that receives approval transitions, signed, in order, retried with backoff. */
export interface Webhook {
  readonly webhookId: string;
  readonly url: string;
  /** The HMAC-SHA256 key deliveries are signed with. */
  readonly secret: string;
  readonly name: string;
  readonly createdAt: string;
  /** Every event after this sequence number is still to deliver. */
  readonly cursorSeq: number;
  /** Failed attempts at the event after the cursor. */
  readonly attempts: number;
  /** No attempt before this time (ISO 8601), after a failure. */
  readonly nextAttemptAt?: string;
}

export interface WebhookProgress {
  readonly webhookId: string;
  readonly cursorSeq: number;
  readonly attempts: number;
  readonly nextAttemptAt?: string;
}

export interface DeliveryAttempt {
  readonly webhookId: string;
  readonly eventId: string;
  readonly attempt: number;
  /** delivered (2xx), failed (will be retried) or abandoned (retries exhausted; the cursor moved on). */
  readonly outcome: "delivered" | "failed" | "abandoned";
  readonly httpStatus?: number;
  readonly error?: string;
  readonly at: string;
}
