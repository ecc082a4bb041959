import type { Command } from "commander";
import type { MemoryHit } from "../../index.ts";
import { expect, jsonText } from "../io.ts";
import { addWorkspaceOption, openLumyn } from "../options.ts";

export function register(program: Command): void {
  const memory = program
    .command("memory")
    .description("labelled past decisions: what memory holds and what it finds");

  addWorkspaceOption(memory.command("stats").description("labelled cases per tenant and action type"))
    .option("--json", "print the counts as JSON")
    .action(async (options: { workspace?: string; json?: boolean }) => {
      const lumyn = await openLumyn(options);
      try {
        const rows = lumyn.memoryCounts();
        if (options.json) {
          process.stdout.write(
            jsonText(
              {
                scopes: rows.map((r) => ({
                  tenant_id: r.tenantId,
                  action_type: r.actionType,
                  failure: r.failure,
                  success: r.success,
                })),
              },
              false,
            ),
          );
          return;
        }
        const lines = [
          "tenant  action_type  failure  success",
          ...rows.map((r) => `${r.tenantId}  ${r.actionType}  ${r.failure}  ${r.success}`),
        ];
        const total = rows.reduce((n, r) => n + r.failure + r.success, 0);
        lines.push(`${total} labelled decisions in ${rows.length} scopes`);
        process.stdout.write(`${lines.join("\n")}\n`);
      } finally {
        await lumyn.close();
      }
    });

  addWorkspaceOption(
    memory
      .command("similar")
      .description("the labelled decisions nearest to a stored one, with scores and summaries")
      .argument("<decision-id>"),
  )
    .option("--json", "print the neighbours as JSON")
    .action(async (decisionId: string, options: { workspace?: string; json?: boolean }) => {
      const lumyn = await openLumyn(options);
      try {
        const { evidence } = expect(await lumyn.similar(decisionId));
        const describe = (hit: MemoryHit) => ({
          id: hit.decisionId,
          label: hit.label,
          score: hit.score,
          summary: evidence.summaries.get(hit.decisionId) ?? "",
        });
        const hits = [...evidence.neighbours.failure, ...evidence.neighbours.success]
          .sort((a, b) => b.score - a.score)
          .map(describe);
        if (options.json) {
          process.stdout.write(jsonText({ decision_id: decisionId, neighbours: hits }, false));
          return;
        }
        if (hits.length === 0) process.stdout.write("no labelled decision in the same scope\n");
        for (const hit of hits)
          process.stdout.write(
            `${hit.score.toFixed(3)}  ${hit.label.padEnd(7)}  ${hit.id}${hit.summary ? `  ${hit.summary}` : ""}\n`,
          );
      } finally {
        await lumyn.close();
      }
    });
}
