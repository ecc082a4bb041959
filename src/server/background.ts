import type { FastifyBaseLogger } from "fastify";
import { WebhookDispatcher } from "../approvals/webhooks.ts";
import type { Lumyn } from "../lumyn.ts";

/** How often overdue approvals are resolved and webhooks delivered. */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * What a server does besides answering: approvals whose deadline passes are resolved (by whichever server
 * gets there first: the store's compare-and-set makes a timeout fire once), and approval transitions are
 * delivered to webhooks.
 */
export function startBackgroundWork(lumyn: Lumyn, log: FastifyBaseLogger): { stop(): Promise<void> } {
  const report = (what: string) => (error: unknown) =>
    log.warn({ error: error instanceof Error ? error.message : String(error) }, what);
  const dispatcher = new WebhookDispatcher(lumyn.store);
  dispatcher.start(SWEEP_INTERVAL_MS, report("webhook delivery pass failed; retrying"));
  let sweeping: Promise<void> | undefined;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = lumyn.approvals
      .expireDue()
      .then((changed) => {
        if (changed > 0) log.info({ changed }, "overdue approvals resolved");
      }, report("approval timeout sweep failed; retrying"))
      .finally(() => {
        sweeping = undefined;
      });
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();
  return {
    async stop() {
      clearInterval(sweeper);
      await sweeping;
      await dispatcher.stop();
    },
  };
}
