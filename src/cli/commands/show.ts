import type { Command } from "commander";
import { expect, jsonText } from "../io.ts";
import { addWorkspaceOption, openLumyn } from "../options.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program.command("show").description("print a stored decision record").argument("<decision-id>"),
  )
    .option("--compact", "print compact JSON instead of indented")
    .action(async (decisionId: string, options: { workspace?: string; compact?: boolean }) => {
      const lumyn = openLumyn(options);
      try {
        process.stdout.write(jsonText(expect(await lumyn.show(decisionId)), options.compact !== true));
      } finally {
        await lumyn.close();
      }
    });
}
