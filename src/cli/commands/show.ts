import type { Command } from "commander";
import { showDecision } from "../../index.ts";
import { expect, jsonText } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program.command("show").description("print a stored decision record").argument("<decision-id>"),
  )
    .option("--compact", "print compact JSON instead of indented")
    .action(async (decisionId: string, options: { workspace?: string; compact?: boolean }) => {
      const store = await openExistingStore(options);
      try {
        process.stdout.write(
          jsonText(expect(await showDecision(store, decisionId)), options.compact !== true),
        );
      } finally {
        await store.close();
      }
    });
}
