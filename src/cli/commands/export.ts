import { writeFileSync } from "node:fs";
import { relative } from "node:path";
import type { Command } from "commander";
import { LumynError, packDecision, showDecision, writeFileAtomic } from "../../index.ts";
import { checkWritableOutput, emit, expect, jsonText } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("export")
      .description(
        "print a stored record, or with --pack write a decision pack (zip) that lumyn replay checks and re-runs offline",
      )
      .argument("<decision-id>"),
  )
    .option("-o, --out <file>", "write to this file (a name ending in .zip writes a pack)")
    .option(
      "--pack",
      "write a decision pack: record, request, policy, memory, events and a manifest (default file: <id>.zip)",
    )
    .action(async (decisionId: string, options: { workspace?: string; out?: string; pack?: boolean }) => {
      const pack = options.pack === true || options.out?.toLowerCase().endsWith(".zip") === true;
      checkWritableOutput(options.out);
      const store = await openExistingStore(options);
      try {
        if (!pack) {
          emit(jsonText(expect(await showDecision(store, decisionId)), true), options.out);
          return;
        }
        const { record, bytes } = expect(await packDecision(store, decisionId));
        const out = options.out ?? `${record.decision_id}.zip`;
        try {
          if (options.out) writeFileAtomic(out, bytes);
          else writeFileSync(out, bytes, { flag: "wx" });
        } catch (error) {
          throw new LumynError({
            kind: "usage",
            problems: [{ code: "write", message: `cannot write ${out}: ${(error as Error).message}` }],
          });
        }
        process.stdout.write(`wrote ${relative(process.cwd(), out) || out} (${bytes.length} bytes)\n`);
      } finally {
        await store.close();
      }
    });
}
