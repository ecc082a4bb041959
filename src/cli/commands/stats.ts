import type { Command } from "commander";
import { STATS_DIMENSIONS, type StatsDimension } from "../../index.ts";
import { jsonText, usageError } from "../io.ts";
import { addWorkspaceOption, openExistingStore, sinceTimestamp } from "../options.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program.command("stats").description("count stored decisions by verdict, reason code or action type"),
  )
    .option("--since <duration>", "only decisions newer than this (30m, 24h, 7d, 2w, or an ISO 8601 time)")
    .option("--by <dimension>", `group by ${STATS_DIMENSIONS.join(", ")}`, "verdict")
    .option("--tenant <id>", "only this tenant's decisions")
    .option("--json", "print {total, by, groups} as JSON")
    .action(
      async (options: {
        workspace?: string;
        since?: string;
        by: string;
        tenant?: string;
        json?: boolean;
      }) => {
        if (!(STATS_DIMENSIONS as readonly string[]).includes(options.by)) {
          throw usageError(`--by must be one of ${STATS_DIMENSIONS.join(", ")}, not '${options.by}'`);
        }
        const since = sinceTimestamp(options.since);
        const store = await openExistingStore(options);
        try {
          const stats = await store.decisions.stats({
            by: options.by as StatsDimension,
            ...(since ? { since } : {}),
            ...(options.tenant ? { tenantId: options.tenant } : {}),
          });
          if (options.json) {
            const groups: Record<string, number> = {};
            for (const group of stats.groups) groups[group.key] = group.count;
            process.stdout.write(
              jsonText({ total: stats.total, by: options.by, ...(since ? { since } : {}), groups }, false),
            );
            return;
          }
          const width = Math.max(options.by.length, ...stats.groups.map((g) => g.key.length));
          const lines = [
            `${options.by.padEnd(width)}  count`,
            ...stats.groups.map((g) => `${g.key.padEnd(width)}  ${g.count}`),
          ];
          lines.push(`${"total".padEnd(width)}  ${stats.total}${since ? `  (since ${since})` : ""}`);
          process.stdout.write(`${lines.join("\n")}\n`);
        } finally {
          await store.close();
        }
      },
    );
}
