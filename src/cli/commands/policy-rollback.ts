import type { Command } from "commander";
import { registryTenant, rollbackPolicy } from "../../index.ts";
import { expect } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";
import { cliSource } from "../principal.ts";
import { announceChange, type RedisOption, redisOption } from "../redis-option.ts";

export function register(policy: Command): void {
  redisOption(
    addWorkspaceOption(
      policy
        .command("rollback")
        .description("return a tenant to the version that was active before the current activation"),
    ),
  )
    .option("--tenant <id>", "the tenant to roll back (default: the default for all tenants)")
    .action(async (options: { workspace?: string; tenant?: string } & RedisOption) => {
      const store = await openExistingStore(options);
      try {
        const change = expect(await rollbackPolicy(store, registryTenant(options.tenant), cliSource()));
        process.stdout.write(
          `rolled back tenant ${change.tenantId} to ${change.policyHash} (from ${change.previous})\n`,
        );
        await announceChange(options, change);
      } finally {
        await store.close();
      }
    });
}
