import type { Command } from "commander";
import { addWebhook, displayUrl, LumynError } from "../../index.ts";
import { expect, jsonText, usageError } from "../io.ts";
import { addWorkspaceOption, openExistingStore, type WorkspaceOptions } from "../options.ts";

/** `lumyn webhooks`: where approval transitions are delivered, and the log of every delivery attempt. */
export function register(program: Command): void {
  const webhooks = program
    .command("webhooks")
    .description("URLs that receive every approval transition, signed (delivered by lumyn serve)");

  addWorkspaceOption(webhooks.command("add").description("add a webhook").argument("<url>"))
    .option("--name <name>", "what it is for")
    .option(
      "--secret <secret>",
      "the HMAC-SHA256 key the receiver verifies with (generated and printed once if absent)",
    )
    .option("--json", "print the webhook (with its secret) as JSON")
    .action(
      async (url: string, options: WorkspaceOptions & { name?: string; secret?: string; json?: boolean }) => {
        const store = await openExistingStore(options);
        try {
          const webhook = expect(
            await addWebhook(store, {
              url,
              ...(options.name !== undefined ? { name: options.name } : {}),
              ...(options.secret !== undefined ? { secret: options.secret } : {}),
            }),
          );
          if (options.json) {
            process.stdout.write(
              jsonText(
                {
                  webhook_id: webhook.webhookId,
                  url: webhook.url,
                  name: webhook.name,
                  secret: webhook.secret,
                },
                true,
              ),
            );
            return;
          }
          process.stdout.write(`added webhook ${webhook.webhookId} → ${displayUrl(webhook.url)}\n`);
          if (options.secret === undefined)
            process.stdout.write(
              `secret (shown once; deliveries carry X-Lumyn-Signature: sha256:<HMAC>): ${webhook.secret}\n`,
            );
        } finally {
          await store.close();
        }
      },
    );

  addWorkspaceOption(
    webhooks.command("list").description("the webhooks and how far each has got (never their secrets)"),
  )
    .option("--json", "print them as JSON")
    .action(async (options: WorkspaceOptions & { json?: boolean }) => {
      const store = await openExistingStore(options);
      try {
        const list = (await store.webhooks.list()).map((w) => ({
          webhook_id: w.webhookId,
          url: displayUrl(w.url),
          name: w.name,
          created_at: w.createdAt,
          cursor_seq: w.cursorSeq,
          failed_attempts: w.attempts,
          ...(w.nextAttemptAt ? { next_attempt_at: w.nextAttemptAt } : {}),
        }));
        if (options.json) process.stdout.write(jsonText(list, true));
        else if (list.length === 0) process.stdout.write("no webhooks\n");
        else
          for (const w of list)
            process.stdout.write(
              `${w.webhook_id}  ${w.url}${w.name ? `  (${w.name})` : ""}  after event ${w.cursor_seq}${w.failed_attempts ? `, ${w.failed_attempts} failed attempt(s), next at ${w.next_attempt_at}` : ""}\n`,
            );
      } finally {
        await store.close();
      }
    });

  addWorkspaceOption(
    webhooks.command("remove").description("remove a webhook").argument("<webhook-id>"),
  ).action(async (webhookId: string, options: WorkspaceOptions) => {
    const store = await openExistingStore(options);
    try {
      if (!(await store.webhooks.delete(webhookId)))
        throw new LumynError({
          kind: "not_found",
          problems: [{ code: "not_found", message: `no webhook ${webhookId}` }],
        });
      process.stdout.write(`removed webhook ${webhookId}\n`);
    } finally {
      await store.close();
    }
  });

  addWorkspaceOption(webhooks.command("deliveries").description("delivery attempts, newest first"))
    .option("--webhook <id>", "of this webhook only")
    .option("--limit <n>", "at most this many (default 50, at most 500)")
    .option("--json", "print them as JSON")
    .action(async (options: WorkspaceOptions & { webhook?: string; limit?: string; json?: boolean }) => {
      const limit = options.limit === undefined ? undefined : Number(options.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
        throw usageError(`--limit must be a positive whole number, not '${options.limit}'`);
      const store = await openExistingStore(options);
      try {
        const log = await store.webhooks.deliveries({
          ...(options.webhook ? { webhookId: options.webhook } : {}),
          ...(limit ? { limit } : {}),
        });
        const rows = log.map((d) => ({
          webhook_id: d.webhookId,
          event_id: d.eventId,
          attempt: d.attempt,
          outcome: d.outcome,
          ...(d.httpStatus !== undefined ? { http_status: d.httpStatus } : {}),
          ...(d.error !== undefined ? { error: d.error } : {}),
          at: d.at,
        }));
        if (options.json) process.stdout.write(jsonText(rows, true));
        else if (rows.length === 0) process.stdout.write("no deliveries\n");
        else
          for (const d of rows)
            process.stdout.write(
              `${d.at}  ${d.webhook_id}  event ${d.event_id}  attempt ${d.attempt}  ${d.outcome}${d.http_status ? ` (${d.http_status})` : ""}${d.error ? `: ${d.error}` : ""}\n`,
            );
      } finally {
        await store.close();
      }
    });
}
