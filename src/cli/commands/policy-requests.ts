import type { Command } from "commander";
import { type ChangeRequest, fourEyesRequired, openRequests, registryTenant } from "../../index.ts";
import { jsonText } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";

function describe(request: ChangeRequest): string {
  return request.change.kind === "activate"
    ? `activate ${request.change.policyHash} (over ${request.change.expectedActive ?? "no active version"})`
    : "turn four-eyes review off";
}

export function register(policy: Command): void {
  addWorkspaceOption(
    policy
      .command("requests")
      .description("list a tenant's open change requests (four-eyes review), oldest first"),
  )
    .option("--tenant <id>", "the tenant (default: the default for all tenants)")
    .option("--json", "print {four_eyes, requests: [...]} as JSON")
    .action(async (options: { workspace?: string; tenant?: string; json?: boolean }) => {
      const tenantId = registryTenant(options.tenant);
      const store = await openExistingStore(options);
      try {
        const events = await store.policies.history(tenantId);
        const requests = openRequests(events);
        if (options.json) {
          process.stdout.write(
            jsonText(
              {
                tenant: tenantId,
                four_eyes: fourEyesRequired(events),
                requests: requests.map((request) => ({
                  seq: request.seq,
                  change: request.change.kind,
                  ...(request.change.kind === "activate"
                    ? {
                        policy_hash: request.change.policyHash,
                        expected_active: request.change.expectedActive,
                      }
                    : {}),
                  requested_by: request.principal,
                  created_at: request.createdAt,
                })),
              },
              true,
            ),
          );
          return;
        }
        if (requests.length === 0) {
          process.stdout.write(`no open change requests for tenant ${tenantId}\n`);
          return;
        }
        for (const request of requests)
          process.stdout.write(
            `#${request.seq}  ${request.createdAt}  ${describe(request)}  (requested by ${request.principal})\n`,
          );
      } finally {
        await store.close();
      }
    });
}
