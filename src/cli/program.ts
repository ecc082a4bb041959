import { Command, CommanderError } from "commander";
import { LumynError, plainSettingProblems, StorageError, VERSION } from "../index.ts";
import * as approvals from "./commands/approvals.ts";
import * as approve from "./commands/approve.ts";
import * as backtest from "./commands/backtest.ts";
import * as checkpoint from "./commands/checkpoint.ts";
import * as decide from "./commands/decide.ts";
import * as demo from "./commands/demo.ts";
import * as explain from "./commands/explain.ts";
import * as exportCommand from "./commands/export.ts";
import * as init from "./commands/init.ts";
import * as keys from "./commands/keys.ts";
import * as label from "./commands/label.ts";
import * as lint from "./commands/lint.ts";
import * as memory from "./commands/memory.ts";
import * as migrate from "./commands/migrate.ts";
import * as policyActivate from "./commands/policy-activate.ts";
import * as policyApprove from "./commands/policy-approve.ts";
import * as policyDiff from "./commands/policy-diff.ts";
import * as policyFourEyes from "./commands/policy-four-eyes.ts";
import * as policyHistory from "./commands/policy-history.ts";
import * as policyPublish from "./commands/policy-publish.ts";
import * as policyReject from "./commands/policy-reject.ts";
import * as policyRequests from "./commands/policy-requests.ts";
import * as policyRollback from "./commands/policy-rollback.ts";
import * as policySign from "./commands/policy-sign.ts";
import * as policyValidate from "./commands/policy-validate.ts";
import * as reject from "./commands/reject.ts";
import * as replay from "./commands/replay.ts";
import * as serve from "./commands/serve.ts";
import * as show from "./commands/show.ts";
import * as stats from "./commands/stats.ts";
import * as test from "./commands/test.ts";
import * as verify from "./commands/verify.ts";
import * as webhooks from "./commands/webhooks.ts";
import { EXIT, exitCodeOf, printFailure } from "./io.ts";

function buildProgram(): Command {
  const program = new Command("lumyn")
    .description("Lumyn: a decision gateway for AI agents' risky actions")
    .version(VERSION)
    .option("--debug", "print stack traces of unexpected errors")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)");
  for (const command of [
    init,
    decide,
    show,
    explain,
    label,
    memory,
    stats,
    test,
    lint,
    exportCommand,
    replay,
    backtest,
    verify,
    checkpoint,
    migrate,
    serve,
    keys,
    approvals,
    approve,
    reject,
    webhooks,
    demo,
  ])
    command.register(program);
  const policy = program
    .command("policy")
    .description("work with policy files and the per-tenant policy registry");
  policyValidate.register(policy);
  policyDiff.register(policy);
  policySign.register(policy);
  policyPublish.register(policy);
  policyActivate.register(policy);
  policyFourEyes.register(policy);
  policyRequests.register(policy);
  policyApprove.register(policy);
  policyReject.register(policy);
  policyRollback.register(policy);
  policyHistory.register(policy);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const plain = plainSettingProblems();
  if (plain.length > 0) {
    printFailure({ kind: "usage", problems: plain });
    return EXIT.usage;
  }
  const program = buildProgram();
  const debug = argv.includes("--debug");
  try {
    await program.parseAsync(argv as string[]);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.code === "commander.help"
        ? EXIT.ok
        : EXIT.usage;
    }
    if (error instanceof LumynError) {
      printFailure(error);
      return exitCodeOf(error.kind);
    }
    if (error instanceof StorageError) {
      process.stderr.write(`lumyn: storage: ${error.message}\n`);
      return EXIT.storage;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(
      `lumyn: unexpected error: ${message}${debug ? "" : " (run with --debug for details)"}\n`,
    );
    if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return EXIT.invalid;
  }
}
