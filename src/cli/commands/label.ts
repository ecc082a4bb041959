import type { Command } from "commander";
import { expect, jsonText, usageError } from "../io.ts";
import { addWorkspaceOption, openLumyn } from "../options.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("label")
      .description(
        "label a stored decision as a failure or a success; later decisions that look like it are judged with it",
      )
      .argument("<decision-id>"),
  )
    .requiredOption("-l, --label <label>", "failure or success")
    .option("--summary <text>", "what happened, shown beside the decision when it is a neighbour")
    .option("--severity <n>", "1 (minor) to 5 (severe)")
    .option("--json", "print the label event as JSON")
    .action(
      async (
        decisionId: string,
        options: { workspace?: string; label: string; summary?: string; severity?: string; json?: boolean },
      ) => {
        const severity = options.severity === undefined ? undefined : Number(options.severity);
        if (severity !== undefined && !Number.isInteger(severity))
          throw usageError(`--severity must be a whole number from 1 to 5, not '${options.severity}'`);
        const lumyn = await openLumyn(options);
        try {
          const event = expect(
            await lumyn.label(decisionId, options.label, {
              ...(options.summary !== undefined ? { summary: options.summary } : {}),
              ...(severity !== undefined ? { severity } : {}),
            }),
          );
          if (options.json)
            process.stdout.write(
              jsonText(
                {
                  event_id: event.eventId,
                  decision_id: event.decisionId,
                  type: event.type,
                  created_at: event.createdAt,
                  data: event.data,
                },
                false,
              ),
            );
          else
            process.stdout.write(
              `labelled ${decisionId} ${options.label}${options.summary ? `: ${options.summary}` : ""}\n`,
            );
        } finally {
          await lumyn.close();
        }
      },
    );
}
