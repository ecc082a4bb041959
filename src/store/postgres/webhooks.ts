import type { DeliveryAttempt, Webhook, WebhookProgress } from "../../domain/webhook.ts";
import { Conditions, POSTGRES_PLACEHOLDER, pageLimit } from "../queries.ts";
import { DELIVERY_COLUMNS, deliveryOf, deliveryRow, WEBHOOK_COLUMNS, webhookOf } from "../rows.ts";
import type { WebhookStore } from "../webhooks.ts";
import type { PostgresConnection } from "./connection.ts";

export class PostgresWebhooks implements WebhookStore {
  private readonly connection: PostgresConnection;

  constructor(connection: PostgresConnection) {
    this.connection = connection;
  }

  async put(webhook: Webhook): Promise<void> {
    await this.connection.write(
      "store the webhook",
      `INSERT INTO webhooks (webhook_id, url, secret, name, created_at, cursor_seq, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, 0)`,
      [webhook.webhookId, webhook.url, webhook.secret, webhook.name, webhook.createdAt, webhook.cursorSeq],
    );
  }

  async list(): Promise<Webhook[]> {
    const { rows } = await this.connection.query(
      `SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, webhook_id`,
    );
    return rows.map(webhookOf);
  }

  async delete(webhookId: string): Promise<boolean> {
    const changed = await this.connection.write(
      "remove the webhook",
      "DELETE FROM webhooks WHERE webhook_id = $1",
      [webhookId],
    );
    return changed === 1;
  }

  async claim(webhookId: string, holder: string, until: string, now: string): Promise<boolean> {
    const changed = await this.connection.write(
      "lease the webhook",
      `UPDATE webhooks SET lease_holder = $1, lease_until = $2
         WHERE webhook_id = $3 AND (lease_until IS NULL OR lease_until <= $4 OR lease_holder = $1)`,
      [holder, until, webhookId, now],
    );
    return changed === 1;
  }

  async recordDelivery(attempt: DeliveryAttempt, progress: WebhookProgress): Promise<void> {
    const row = deliveryRow(attempt, progress);
    // One statement, so the attempt and the progress are written together or not at all.
    await this.connection.write(
      "log the delivery",
      `WITH logged AS (
         INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, outcome, http_status, error, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
       )
       UPDATE webhooks SET cursor_seq = $8, attempts = $9, next_attempt_at = $10 WHERE webhook_id = $1`,
      [
        row.webhookId,
        row.eventId,
        row.attempt,
        row.outcome,
        row.httpStatus,
        row.error,
        row.at,
        row.cursorSeq,
        row.attempts,
        row.nextAttemptAt,
      ],
    );
  }

  async deliveries(query: {
    readonly webhookId?: string;
    readonly limit?: number;
  }): Promise<DeliveryAttempt[]> {
    const conditions = new Conditions(POSTGRES_PLACEHOLDER).add("webhook_id = ?", query.webhookId);
    const { rows } = await this.connection.query(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries ${conditions.where()}
         ORDER BY seq DESC LIMIT ${conditions.next(pageLimit(query.limit))}`,
      conditions.params,
    );
    return rows.map(deliveryOf);
  }
}
