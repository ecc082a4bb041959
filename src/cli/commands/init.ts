import { join, relative } from "node:path";
import type { Command } from "commander";
import { initWorkspace, workspaceAt } from "../../index.ts";
import { addWorkspaceOption, openSelectedStore, storeLocation } from "../options.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program.command("init").description("create a workspace with a starter policy and example requests"),
  )
    .option("--force", "overwrite an existing policy and examples")
    .action(async (options: { workspace?: string; store?: string; force?: boolean }) => {
      const workspace = workspaceAt(options.workspace);
      // The store first: a bad or unreachable --store is reported before anything is written.
      const location = storeLocation(options);
      await (await openSelectedStore(location)).close();
      const { written, kept } = await initWorkspace(workspace, options.force);
      const show = (path: string): string => relative(process.cwd(), path) || path;
      for (const path of written) process.stdout.write(`wrote ${show(path)}\n`);
      for (const path of kept) process.stdout.write(`kept  ${show(path)} (exists; --force to overwrite)\n`);
      process.stdout.write(
        `store ${location.kind === "sqlite" ? show(location.path) : location.display}\n\nnext: lumyn test --workspace ${show(workspace.dir)} --coverage\n      lumyn decide ${show(join(workspace.dir, "examples", "refund-small.json"))} --workspace ${show(workspace.dir)} --pretty\n`,
      );
    });
}
