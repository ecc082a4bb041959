import type { Command } from "commander";
import { approveChange, registryTenant } from "../../index.ts";
import { expect } from "../io.ts";
import { addWorkspaceOption, openExistingStore, requestNumber } from "../options.ts";
import { cliSource } from "../principal.ts";
import { announceChange, type RedisOption, redisOption } from "../redis-option.ts";

export function register(policy: Command): void {
  redisOption(
    addWorkspaceOption(
      policy
        .command("approve")
        .description(
          "approve a tenant's open change request (four-eyes review) and make the change; the principal who asked may not",
        )
        .argument("<request>", "the request's number (lumyn policy requests lists them)"),
    ),
  )
    .option("--tenant <id>", "the tenant (default: the default for all tenants)")
    .action(async (request: string, options: { workspace?: string; tenant?: string } & RedisOption) => {
      const seq = requestNumber(request);
      const tenantId = registryTenant(options.tenant);
      const store = await openExistingStore(options);
      try {
        const outcome = expect(await approveChange(store, tenantId, seq, cliSource()));
        const { change, principal } = outcome.request;
        if (change.kind === "activate") {
          process.stdout.write(
            `approved request #${seq} of ${principal}: activated ${change.policyHash} for tenant ${tenantId}${change.expectedActive ? ` (was ${change.expectedActive})` : ""}\n`,
          );
          await announceChange(options, {
            tenantId,
            policyHash: change.policyHash,
            ...(change.expectedActive ? { previous: change.expectedActive } : {}),
            changed: true,
          });
        } else
          process.stdout.write(
            `approved request #${seq} of ${principal}: four-eyes review is off for tenant ${tenantId}\n`,
          );
      } finally {
        await store.close();
      }
    });
}
