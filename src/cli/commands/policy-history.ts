import type { Command } from "commander";
import { activeOf, formatProblem, type JsonObject, type PolicyEvent, type Problem } from "../../index.ts";
import { jsonText } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";

function eventJson(event: PolicyEvent): JsonObject {
  return {
    seq: event.seq,
    tenant: event.tenantId,
    type: event.type,
    ...(event.policyHash ? { policy_hash: event.policyHash } : {}),
    detail: event.detail,
    created_at: event.createdAt,
  };
}

function eventWhat(event: PolicyEvent): string {
  const detail = event.detail;
  switch (event.type) {
    case "rejected": {
      const problems = Array.isArray(detail.problems) ? detail.problems : [];
      return `${problems.length} problem(s): ${problems.map((p) => formatProblem(p as unknown as Problem)).join("; ")}`;
    }
    case "settings":
      return `four-eyes review ${detail.four_eyes === true ? "on" : "off"}${typeof detail.request === "number" ? ` (request #${detail.request} of ${String(detail.requested_by)})` : ""}`;
    case "change_requested":
      return `#${event.seq}: ${detail.change === "four_eyes_off" ? "turn four-eyes review off" : `activate ${event.policyHash}`}`;
    case "change_rejected":
      return `request #${String(detail.request)} of ${String(detail.requested_by)}${typeof detail.reason === "string" ? `: ${detail.reason}` : ""}`;
    default: {
      const what = [event.policyHash, detail.policy_id, detail.policy_version].filter(Boolean).join(" ");
      return typeof detail.request === "number"
        ? `${what} (request #${detail.request} of ${String(detail.requested_by)})`
        : what;
    }
  }
}

function eventLine(event: PolicyEvent): string {
  const principal = typeof event.detail.principal === "string" ? ` ${event.detail.principal}` : "";
  return `${event.createdAt}  ${event.tenantId}  ${event.type.padEnd(16)}  ${eventWhat(event)}  (by ${String(event.detail.by)}${principal})`;
}

export function register(policy: Command): void {
  addWorkspaceOption(
    policy
      .command("history")
      .description(
        "list the registry's versions, activations, rollbacks, rejected documents and four-eyes reviews, oldest first",
      ),
  )
    .option("--tenant <id>", "only this tenant (`*` for the default); every tenant by default")
    .option("--json", "print {active: {tenant: hash}, events: [...]} as JSON")
    .action(async (options: { workspace?: string; tenant?: string; json?: boolean }) => {
      const store = await openExistingStore(options);
      try {
        const events = await store.policies.history(options.tenant);
        const tenants = [...new Set(events.map((event) => event.tenantId))];
        const active = Object.fromEntries(
          tenants.flatMap((tenant) => {
            const hash = activeOf(events.filter((event) => event.tenantId === tenant));
            return hash ? [[tenant, hash]] : [];
          }),
        );
        if (options.json) {
          process.stdout.write(jsonText({ active, events: events.map(eventJson) }, true));
          return;
        }
        if (events.length === 0) {
          process.stdout.write("no policy versions published yet (lumyn policy publish FILE)\n");
          return;
        }
        for (const event of events) process.stdout.write(`${eventLine(event)}\n`);
        for (const [tenant, hash] of Object.entries(active))
          process.stdout.write(`active for ${tenant}: ${hash}\n`);
      } finally {
        await store.close();
      }
    });
}
