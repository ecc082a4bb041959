import type { Command } from "commander";
import { activatePolicy, registryTenant } from "../../index.ts";
import { expect } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";
import { cliSource } from "../principal.ts";
import { announceChange, type RedisOption, redisOption } from "../redis-option.ts";

export function register(policy: Command): void {
  redisOption(
    addWorkspaceOption(
      policy
        .command("activate")
        .description(
          "make a published version a tenant's active policy (servers switch to it); with four-eyes review on, open a change request another principal approves",
        )
        .argument(
          "<version>",
          "the version's policy hash, with or without sha256:, or a unique prefix of it",
        ),
    ),
  )
    .option("--tenant <id>", "the tenant to switch (default: the default for all tenants)")
    .action(async (version: string, options: { workspace?: string; tenant?: string } & RedisOption) => {
      const store = await openExistingStore(options);
      try {
        const change = expect(
          await activatePolicy(store, registryTenant(options.tenant), version, cliSource()),
        );
        process.stdout.write(
          change.request
            ? `tenant ${change.tenantId} requires four-eyes review: opened change request #${change.request.seq} to activate ${change.policyHash}; another principal approves it with \`lumyn policy approve ${change.request.seq} --tenant ${change.tenantId}\`\n`
            : change.changed
              ? `activated ${change.policyHash} for tenant ${change.tenantId}${change.previous ? ` (was ${change.previous})` : ""}\n`
              : `${change.policyHash} is already active for tenant ${change.tenantId}\n`,
        );
        if (change.changed) await announceChange(options, change);
      } finally {
        await store.close();
      }
    });
}
