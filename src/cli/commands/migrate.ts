import type { Command } from "commander";
import { LumynError, type MigrationOutcome, migrateStore, StorageError } from "../../index.ts";
import { jsonText } from "../io.ts";
import { addWorkspaceOption, openSelectedStore, storeLocation, type WorkspaceOptions } from "../options.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("migrate")
      .description(
        "bring the store's schema up to date (PostgreSQL: versioned migrations, safe while servers run or start)",
      ),
  )
    .option("--json", "print {store, from, to} as JSON")
    .action(async (options: WorkspaceOptions & { json?: boolean }) => {
      const location = storeLocation(options);
      if (location.kind === "sqlite") {
        // The embedded store migrates whenever it is opened.
        await (await openSelectedStore(location)).close();
        process.stdout.write(
          options.json ? jsonText({ store: location.path }, false) : `store ${location.path} is up to date\n`,
        );
        return;
      }
      let outcome: MigrationOutcome;
      try {
        outcome = await migrateStore(location);
      } catch (error) {
        if (!(error instanceof StorageError)) throw error;
        throw new LumynError({ kind: "storage", problems: [{ code: "storage", message: error.message }] });
      }
      const { from, to } = outcome;
      process.stdout.write(
        options.json
          ? jsonText({ store: location.display, from, to }, false)
          : from === to
            ? `store ${location.display} is up to date (schema version ${to})\n`
            : `store ${location.display}: schema version ${from} -> ${to}\n`,
      );
    });
}
