import type { Command } from "commander";
import { registryTenant, setFourEyes } from "../../index.ts";
import { usageError } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";
import { cliSource } from "../principal.ts";

export function register(policy: Command): void {
  addWorkspaceOption(
    policy
      .command("four-eyes")
      .description(
        "require a second principal to approve a tenant's activations (on), or stop requiring it (off: itself a change another principal approves)",
      )
      .argument("<on|off>"),
  )
    .option("--tenant <id>", "the tenant (default: the default for all tenants)")
    .action(async (state: string, options: { workspace?: string; tenant?: string }) => {
      if (state !== "on" && state !== "off") throw usageError(`four-eyes takes on or off, not '${state}'`);
      const tenantId = registryTenant(options.tenant);
      const store = await openExistingStore(options);
      try {
        const set = await setFourEyes(store, tenantId, state === "on", cliSource());
        process.stdout.write(
          set.request
            ? `opened change request #${set.request.seq} to turn four-eyes review off for tenant ${tenantId}; another principal approves it with \`lumyn policy approve ${set.request.seq} --tenant ${tenantId}\`\n`
            : set.changed
              ? `four-eyes review is on for tenant ${tenantId}: activations now open a change request\n`
              : `four-eyes review is already ${state} for tenant ${tenantId}\n`,
        );
      } finally {
        await store.close();
      }
    });
}
