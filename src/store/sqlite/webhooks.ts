import type { DeliveryAttempt, Webhook, WebhookProgress } from "../../domain/webhook.ts";
import { pageLimit } from "../queries.ts";
import { DELIVERY_COLUMNS, deliveryOf, deliveryRow, WEBHOOK_COLUMNS, webhookOf } from "../rows.ts";
import type { WebhookStore } from "../webhooks.ts";
import type { SqliteConnection } from "./connection.ts";

export class SqliteWebhooks implements WebhookStore {
  private readonly connection: SqliteConnection;
  private readonly statements;

  constructor(connection: SqliteConnection) {
    this.connection = connection;
    const db = connection.db;
    this.statements = {
      list: db.prepare(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, webhook_id`),
      deliveries: db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries ORDER BY seq DESC LIMIT ?`),
      deliveriesOf: db.prepare(
        `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ? ORDER BY seq DESC LIMIT ?`,
      ),
    };
  }

  async put(webhook: Webhook): Promise<void> {
    await this.connection.write("store the webhook", "putWebhook", webhook);
  }

  async list(): Promise<Webhook[]> {
    return this.connection.read(() => this.statements.list.all()).map(webhookOf);
  }

  delete(webhookId: string): Promise<boolean> {
    return this.connection.write("remove the webhook", "deleteWebhook", webhookId);
  }

  claim(webhookId: string, holder: string, until: string, now: string): Promise<boolean> {
    return this.connection.write("lease the webhook", "claimWebhook", webhookId, holder, until, now);
  }

  async recordDelivery(attempt: DeliveryAttempt, progress: WebhookProgress): Promise<void> {
    await this.connection.write("log the delivery", "recordDelivery", deliveryRow(attempt, progress));
  }

  async deliveries(query: {
    readonly webhookId?: string;
    readonly limit?: number;
  }): Promise<DeliveryAttempt[]> {
    const limit = pageLimit(query.limit);
    const rows = this.connection.read(() =>
      query.webhookId
        ? this.statements.deliveriesOf.all(query.webhookId, limit)
        : this.statements.deliveries.all(limit),
    );
    return rows.map(deliveryOf);
  }
}
