import type { Command } from "commander";
import { type Actor, type Approval, Approvals, type JsonObject, type Store, sha256 } from "../index.ts";
import { expect, jsonText, usageError } from "./io.ts";
import { addWorkspaceOption, openExistingStore, type WorkspaceOptions } from "./options.ts";
import { osPrincipal } from "./principal.ts";

/** What approval commands share: the workspace's store, with overdue approvals resolved first. */
export async function withApprovals<T>(
  options: WorkspaceOptions,
  work: (approvals: Approvals, store: Store) => Promise<T>,
): Promise<T> {
  const store = await openExistingStore(options);
  try {
    const approvals = new Approvals(store.approvals, store.log);
    await approvals.expireDue();
    return await work(approvals, store);
  } finally {
    await store.close();
  }
}

export interface ActorOptions {
  readonly actor?: string;
  readonly role?: readonly string[];
}

/** `--role` may be repeated or given as a comma list. */
export function collectRoles(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(",")
      .map((role) => role.trim())
      .filter(Boolean),
  ];
}

export function addActorOptions(command: Command, rolesRequired: boolean): Command {
  const description = "a role the actor holds (repeat, or comma-separated)";
  return command
    .requiredOption("--actor <id>", "who acts (recorded with every step)")
    [rolesRequired ? "requiredOption" : "option"]("--role <role>", description, collectRoles, [] as string[]);
}

/**
 * The actor a command names. The CLI holds the store, so it can name anyone: the actor is recorded as
 * asserted by the operating-system account that ran the command (docs/security.md).
 */
export function actorOf(options: ActorOptions): Actor {
  const id = options.actor?.trim() ?? "";
  if (id === "") throw usageError("--actor must name who acts");
  return { id, roles: [...(options.role ?? [])], assertedBy: osPrincipal() };
}

/**
 * The key a vote is retried under: the same approval, actor, vote and justification give the same key, so a
 * command repeated after a lost answer is counted once.
 */
export function defaultIdempotencyKey(
  approvalId: string,
  actor: Actor,
  decision: string,
  justification: string,
): string {
  return `cli:${sha256([approvalId, actor.id, decision, justification].join("\u0000")).slice("sha256:".length, 39)}`;
}

export function printApproval(approval: Approval, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(jsonText(approval as unknown as JsonObject, true));
    return;
  }
  const requester = approval.requester;
  const requested = requester
    ? `, requested by ${requester.principal}${requester.key_id ? ` with key ${requester.key_id}` : ""}`
    : "";
  const lines = [
    `approval ${approval.approval_id}  ${approval.state}${approval.outcome ? ` → ${approval.outcome}` : ""}`,
    `  decision  ${approval.decision_id}  (tenant ${approval.tenant_id}, subject ${approval.requester_id ?? "none"}${requested})`,
    `  needs     ${approval.quorum} of [${approval.approver_roles.join(", ")}] by ${approval.deadline}${approval.escalations ? " (escalated)" : ""}`,
    ...approval.votes.map(
      (v) =>
        `  vote      ${v.at}  ${v.actor_id}${asserted(v.asserted_by)} [${v.roles.join(", ")}] ${v.decision}: ${v.justification}`,
    ),
    ...approval.timeline.map(
      (t) =>
        `  step      ${t.at}  ${t.from ?? "-"} → ${t.to} by ${t.actor}${asserted(t.asserted_by)}${t.justification ? `: ${t.justification}` : ""}`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

function asserted(by: string | undefined): string {
  return by === undefined ? "" : ` (asserted by ${by})`;
}

/** The `approve` and `reject` commands: one vote on an approval. */
export function registerVote(program: Command, decision: "approve" | "reject"): void {
  addActorOptions(
    addWorkspaceOption(
      program
        .command(decision)
        .description(`${decision} a waiting approval, as one of its approver roles`)
        .argument("<approval-id>"),
    ),
    true,
  )
    .requiredOption("--justification <text>", "why (recorded in the authority record)")
    .option(
      "--idempotency-key <key>",
      "retry key: the same key and vote answer the same (derived by default)",
    )
    .option("--json", "print the approval as JSON")
    .action(
      async (
        approvalId: string,
        options: ActorOptions &
          WorkspaceOptions & { justification: string; idempotencyKey?: string; json?: boolean },
      ) => {
        const actor = actorOf(options);
        const approval = await withApprovals(options, async (approvals) =>
          expect(
            await approvals.vote(approvalId, {
              actor,
              decision,
              justification: options.justification,
              idempotencyKey:
                options.idempotencyKey ??
                defaultIdempotencyKey(approvalId, actor, decision, options.justification),
            }),
          ),
        );
        printApproval(approval, options.json);
      },
    );
}
