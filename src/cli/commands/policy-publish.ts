import type { Command } from "commander";
import {
  ensureWorkspace,
  publishPolicy,
  registryTenant,
  SqliteStore,
  workspaceAt,
  workspaceRegistry,
} from "../../index.ts";
import { expect, jsonText, readTextFile } from "../io.ts";
import { addWorkspaceOption, policyLimits } from "../options.ts";
import { cliSource } from "../principal.ts";

export function register(policy: Command): void {
  addWorkspaceOption(
    policy
      .command("publish")
      .description(
        "validate a policy file and store it as an immutable version (named by its hash) of a tenant's registry; activates nothing",
      )
      .argument("<file>", "policy file (YAML or JSON)"),
  )
    .option(
      "--tenant <id>",
      "the tenant whose registry gets the version (default: the default for all tenants)",
    )
    .option("--json", "print {tenant, policy_hash, policy_id, policy_version, published} as JSON")
    .action(async (file: string, options: { workspace?: string; tenant?: string; json?: boolean }) => {
      const workspace = workspaceAt(options.workspace);
      const text = readTextFile(file);
      const reasonCodes = expect(workspaceRegistry(workspace));
      ensureWorkspace(workspace);
      const store = SqliteStore.open(workspace.databasePath);
      try {
        const tenantId = registryTenant(options.tenant);
        const published = expect(
          await publishPolicy(store, tenantId, text, {
            file,
            source: cliSource(),
            ...policyLimits(),
            ...(reasonCodes ? { reasonCodeRegistry: reasonCodes } : {}),
          }),
        );
        const { policyId, policyVersion } = published.policy.model;
        if (options.json) {
          process.stdout.write(
            jsonText(
              {
                tenant: tenantId,
                policy_hash: published.policyHash,
                policy_id: policyId,
                policy_version: policyVersion,
                published: published.changed,
              },
              false,
            ),
          );
        } else {
          process.stdout.write(
            `${published.changed ? "published" : "already published"} ${policyId} ${policyVersion} ${published.policyHash} for tenant ${tenantId} (activate it with: lumyn policy activate ${published.policyHash.slice(7, 19)}${options.tenant ? ` --tenant ${options.tenant}` : ""})\n`,
          );
        }
      } finally {
        await store.close();
      }
    });
}
