import type { Command } from "commander";
import { diffPolicies, type JsonValue, loadPolicy, renderDiff } from "../../index.ts";
import { expect, jsonText, readTextFile } from "../io.ts";
import { policyLimits } from "../options.ts";

export function register(policy: Command): void {
  policy
    .command("diff")
    .description(
      "what changed between two policies: rules added, removed and changed (conditions, thresholds, verdicts, reason codes), and the hash",
    )
    .argument("<old>", "the policy before")
    .argument("<new>", "the policy after")
    .option("--json", "print the diff as JSON")
    .action((oldPath: string, newPath: string, options: { json?: boolean }) => {
      const before = expect(loadPolicy(readTextFile(oldPath), { file: oldPath, ...policyLimits() }));
      const after = expect(loadPolicy(readTextFile(newPath), { file: newPath, ...policyLimits() }));
      const diff = diffPolicies(before, after);
      process.stdout.write(
        options.json ? jsonText(diff as unknown as JsonValue, true) : `${renderDiff(diff)}\n`,
      );
    });
}
