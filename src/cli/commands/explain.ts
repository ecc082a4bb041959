import type { Command } from "commander";
import { explanationJson, renderExplanation } from "../../engine/explain.ts";
import { explainDecision } from "../../lumyn.ts";
import { expect, jsonText } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("explain")
      .description(
        "explain a stored decision: each rule, each condition with its actual value, and why the verdict won",
      )
      .argument("<decision-id>"),
  )
    .option("--json", "print the explanation as JSON")
    .action(async (decisionId: string, options: { workspace?: string; json?: boolean }) => {
      const store = openExistingStore(options);
      try {
        const { record, explanation } = expect(await explainDecision(store, decisionId));
        if (options.json) {
          process.stdout.write(
            jsonText({ decision_id: record.decision_id, ...explanationJson(explanation) }, true),
          );
          return;
        }
        const heading = `decision ${record.decision_id} at ${record.created_at}: ${record.verdict} ${record.reason_codes.join(", ")}`;
        process.stdout.write(`${renderExplanation(explanation, heading)}\n`);
      } finally {
        await store.close();
      }
    });
}
