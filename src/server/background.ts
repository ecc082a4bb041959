import type { FastifyBaseLogger } from "fastify";
import { type Lumyn, WebhookDispatcher } from "../index.ts";

/** How often overdue approvals are resolved, webhooks delivered and other processes' labels read. */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * What a server does besides answering: approvals whose deadline passes are resolved (by whichever server
 * gets there first: the store's compare-and-set makes a timeout fire once), approval transitions are
 * delivered to webhooks, and labels given through other servers (or the CLI) join this server's memory.
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
  let refreshing: Promise<void> | undefined;
  const refresher = setInterval(() => {
    if (refreshing) return;
    refreshing = lumyn
      .refreshMemory()
      .then(() => undefined, report("catching up with labels from other processes failed; retrying"))
      .finally(() => {
        refreshing = undefined;
      });
  }, SWEEP_INTERVAL_MS);
  refresher.unref();
  return {
    async stop() {
      clearInterval(sweeper);
      clearInterval(refresher);
      await sweeping;
      await refreshing;
      await dispatcher.stop();
    },
  };
}
