import { relative } from "node:path";
import type { Command } from "commander";
import { checkpointJson, LumynError, writeFileAtomic } from "../../index.ts";
import { checkWritableOutput, emit, jsonText } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";

export function register(program: Command): void {
  const checkpoint = program
    .command("checkpoint")
    .description("signed checkpoints of the tamper-evident log, to keep outside the store");
  addWorkspaceOption(
    checkpoint
      .command("export")
      .description(
        "sign the log's head now (when entries were added since the last checkpoint) and write the latest signed checkpoint, to keep where the store's administrators cannot reach; `lumyn verify --checkpoint FILE` holds the log to it",
      ),
  )
    .option("-o, --out <file>", "write to this file (default: standard output)")
    .action(async (options: { workspace?: string; out?: string }) => {
      checkWritableOutput(options.out);
      const store = await openExistingStore(options);
      try {
        await store.log.sign();
        const latest = (await store.log.checkpoints()).at(-1);
        if (!latest)
          throw new LumynError({
            kind: "not_found",
            problems: [
              {
                code: "no_checkpoint",
                message:
                  "the log has no signed checkpoint: create the workspace's signing key with `lumyn keys signing create`",
              },
            ],
          });
        const text = jsonText(checkpointJson(latest), true);
        if (options.out) {
          writeFileAtomic(options.out, text);
          process.stderr.write(
            `lumyn: wrote the checkpoint at entry ${latest.seq} to ${relative(process.cwd(), options.out) || options.out}\n`,
          );
        } else emit(text);
      } finally {
        await store.close();
      }
    });
}
