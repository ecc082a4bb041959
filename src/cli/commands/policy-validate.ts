import type { Command } from "commander";
import { loadPolicy, parseReasonCodeRegistry, workspaceAt, workspaceRegistry } from "../../index.ts";
import { expect, jsonText, readTextFile } from "../io.ts";
import { policyLimits } from "../options.ts";

export function register(policy: Command): void {
  policy
    .command("validate")
    .description("check a policy and print its id, version and hash; all errors at once with file:line:col")
    .option("--path <file>", "policy file (default: the workspace policy)")
    .option("-w, --workspace <dir>", "workspace whose policy to check", ".lumyn")
    .option(
      "--reason-codes <file>",
      "reason-code registry (JSON list or {codes: [{code}]}): unknown codes become errors (default: the workspace's reason-codes.json, if any)",
    )
    .option("--json", "print {policy_id, policy_version, policy_hash, rules} as JSON")
    .action((options: { path?: string; workspace: string; reasonCodes?: string; json?: boolean }) => {
      const workspace = workspaceAt(options.workspace);
      const path = options.path ?? workspace.policyPath;
      const registry = options.reasonCodes
        ? expect(parseReasonCodeRegistry(readTextFile(options.reasonCodes), options.reasonCodes))
        : expect(workspaceRegistry(workspace));
      const loaded = expect(
        loadPolicy(readTextFile(path), {
          file: path,
          ...(registry ? { reasonCodeRegistry: registry } : {}),
          ...policyLimits(),
        }),
      );
      const { policyId, policyVersion, rules } = loaded.model;
      if (options.json) {
        process.stdout.write(
          jsonText(
            {
              valid: true,
              policy_id: policyId,
              policy_version: policyVersion,
              policy_hash: loaded.hash,
              rules: rules.length,
            },
            false,
          ),
        );
      } else {
        process.stdout.write(`ok ${policyId} ${policyVersion} ${loaded.hash} (${rules.length} rules)\n`);
      }
    });
}
