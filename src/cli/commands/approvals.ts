import type { Command } from "commander";
import {
  APPROVAL_STATES,
  type Approval,
  type ApprovalState,
  type JsonObject,
  parseDuration,
} from "../../index.ts";
import { type ActorOptions, actorOf, addActorOptions, printApproval, withApprovals } from "../approval-io.ts";
import { EXIT, expect, jsonText, usageError } from "../io.ts";
import { addWorkspaceOption, type WorkspaceOptions } from "../options.ts";

const ALLOWED: readonly ApprovalState[] = ["APPROVED", "OVERRIDDEN", "CONSUMED"];
const INPUTS_DIGEST = /^sha256:[0-9a-f]{64}$/;

/** `lumyn approvals`: list, show, wait for, consume, override and cancel approvals. */
export function register(program: Command): void {
  const approvals = program
    .command("approvals")
    .description("approvals that ESCALATEs opened (vote with lumyn approve / lumyn reject)");
  for (const subcommand of [
    registerList,
    registerShow,
    registerWait,
    registerConsume,
    registerOverride,
    registerCancel,
  ])
    subcommand(approvals);
}

function registerList(approvals: Command): void {
  addWorkspaceOption(approvals.command("list").description("approvals, newest first"))
    .option("--state <state>", `only in this state: ${APPROVAL_STATES.join(", ")}`)
    .option("--role <role>", "only those this role may vote on now")
    .option("--tenant <id>", "only this tenant's")
    .option("--limit <n>", "at most this many (default 50, at most 500)")
    .option("--json", "print the approvals as a JSON list")
    .action(
      async (
        options: WorkspaceOptions & {
          state?: string;
          role?: string;
          tenant?: string;
          limit?: string;
          json?: boolean;
        },
      ) => {
        if (options.state !== undefined && !(APPROVAL_STATES as readonly string[]).includes(options.state))
          throw usageError(`--state must be one of ${APPROVAL_STATES.join(", ")}, not '${options.state}'`);
        const limit = options.limit === undefined ? undefined : Number(options.limit);
        if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
          throw usageError(`--limit must be a positive whole number, not '${options.limit}'`);
        const list = await withApprovals(options, (service) =>
          service.list({
            ...(options.state ? { state: options.state as ApprovalState } : {}),
            ...(options.role ? { role: options.role } : {}),
            ...(options.tenant ? { tenantId: options.tenant } : {}),
            ...(limit ? { limit } : {}),
          }),
        );
        if (options.json) {
          process.stdout.write(jsonText(list as unknown as JsonObject[], true));
          return;
        }
        if (list.length === 0) process.stdout.write("no approvals\n");
        for (const approval of list)
          process.stdout.write(
            `${approval.approval_id}  ${approval.state.padEnd(17)}  decision ${approval.decision_id}  needs ${approval.quorum} of [${approval.approver_roles.join(", ")}] by ${approval.deadline}\n`,
          );
      },
    );
}

function registerShow(approvals: Command): void {
  addWorkspaceOption(
    approvals.command("show").description("an approval: votes and timeline").argument("<approval-id>"),
  )
    .option("--json", "print the approval as JSON")
    .action(async (approvalId: string, options: WorkspaceOptions & { json?: boolean }) => {
      const approval = await withApprovals(options, async (service) => expect(await service.get(approvalId)));
      printApproval(approval, options.json);
    });
}

function registerWait(approvals: Command): void {
  addWorkspaceOption(
    approvals
      .command("wait")
      .description(
        `block until the approval is resolved; exit ${EXIT.ok} allowed, ${EXIT.denied} denied, ${EXIT.pending} still waiting`,
      )
      .argument("<approval-id>"),
  )
    .option("--timeout <duration>", "how long to wait: 90s, 5m, 1h", "5m")
    .option("--json", "print the approval as JSON")
    .action(async (approvalId: string, options: WorkspaceOptions & { timeout: string; json?: boolean }) => {
      const timeoutMs = parseDuration(options.timeout);
      if (timeoutMs === undefined)
        throw usageError(`--timeout must be a duration like 90s, 5m or 1h, not '${options.timeout}'`);
      const approval = await withApprovals(options, async (service) =>
        expect(await service.wait(approvalId, timeoutMs)),
      );
      printApproval(approval, options.json);
      process.exitCode = outcomeExit(approval);
    });
}

function outcomeExit(approval: Approval): number {
  if (ALLOWED.includes(approval.state)) return EXIT.ok;
  return approval.state === "WAITING_FOR_HUMAN" ? EXIT.pending : EXIT.denied;
}

function registerConsume(approvals: Command): void {
  addWorkspaceOption(
    approvals
      .command("consume")
      .description("redeem an approved approval right before acting: once only, before its deadline")
      .argument("<approval-id>"),
  )
    .requiredOption("--actor <id>", "who acts (the agent)")
    .option(
      "--inputs-digest <digest>",
      "required: the inputs_digest of the action about to run (its decision's determinism.inputs_digest); refused unless it is the one approved",
    )
    .option("--json", "print the approval as JSON")
    .action(
      async (
        approvalId: string,
        options: WorkspaceOptions & ActorOptions & { inputsDigest?: string; json?: boolean },
      ) => {
        const inputsDigest = options.inputsDigest;
        if (inputsDigest === undefined)
          throw usageError(
            "--inputs-digest is required: consuming proves which action is about to run, by the inputs_digest of its decision (determinism.inputs_digest)",
          );
        if (!INPUTS_DIGEST.test(inputsDigest))
          throw usageError(`--inputs-digest must be sha256:<64 hex digits>, not '${inputsDigest}'`);
        const actor = actorOf(options);
        const approval = await withApprovals(options, async (service) =>
          expect(await service.consume(approvalId, actor, inputsDigest)),
        );
        printApproval(approval, options.json);
      },
    );
}

/** `override` and `cancel`: an actor closes a waiting approval, with a justification. */
function registerClosing(
  command: "override" | "cancel",
  description: string,
  rolesRequired: boolean,
): (approvals: Command) => void {
  return (approvals) =>
    addActorOptions(
      addWorkspaceOption(approvals.command(command).description(description).argument("<approval-id>")),
      rolesRequired,
    )
      .requiredOption("--justification <text>", "why")
      .option("--json", "print the approval as JSON")
      .action(
        async (
          approvalId: string,
          options: WorkspaceOptions & ActorOptions & { justification: string; json?: boolean },
        ) => {
          const actor = actorOf(options);
          const approval = await withApprovals(options, async (service) =>
            expect(await service[command](approvalId, actor, options.justification)),
          );
          printApproval(approval, options.json);
        },
      );
}

const registerOverride = registerClosing(
  "override",
  "force a waiting approval through (needs the override role); recorded as an override",
  true,
);
const registerCancel = registerClosing(
  "cancel",
  "withdraw a waiting approval (the action will not happen)",
  false,
);
