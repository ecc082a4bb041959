import type { Command } from "commander";
import { registryTenant, rejectChange } from "../../index.ts";
import { expect } from "../io.ts";
import { addWorkspaceOption, openExistingStore, requestNumber } from "../options.ts";
import { cliSource } from "../principal.ts";

export function register(policy: Command): void {
  addWorkspaceOption(
    policy
      .command("reject")
      .description("turn down a tenant's open change request (its requester may withdraw it this way)")
      .argument("<request>", "the request's number (lumyn policy requests lists them)"),
  )
    .option("--tenant <id>", "the tenant (default: the default for all tenants)")
    .option("--reason <text>", "why, kept in the registry's history")
    .action(async (request: string, options: { workspace?: string; tenant?: string; reason?: string }) => {
      const seq = requestNumber(request);
      const tenantId = registryTenant(options.tenant);
      const store = await openExistingStore(options);
      try {
        const outcome = expect(await rejectChange(store, tenantId, seq, cliSource(), options.reason));
        process.stdout.write(
          `rejected request #${seq} of ${outcome.request.principal} for tenant ${tenantId}: nothing changed\n`,
        );
      } finally {
        await store.close();
      }
    });
}
