import type { Command } from "commander";
import {
  DEFAULT_MAX_JSON_BYTES,
  type DecisionRecord,
  decide,
  type JsonValue,
  type Lumyn,
  LumynError,
  loadPolicy,
  readText,
  storageUnavailableRecord,
  workspaceAt,
} from "../../index.ts";
import {
  checkWritableOutput,
  EXIT,
  emit,
  expect,
  jsonText,
  printFailure,
  readJsonInput,
  usageError,
} from "../io.ts";
import { addWorkspaceOption, openLumyn, policyLimits, redactionProfile } from "../options.ts";
import { osPrincipal } from "../principal.ts";

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("decide")
      .description("decide a request (JSON file or - for stdin) and print its decision record")
      .argument("[request]", "request file, or - for standard input", "-"),
  )
    .option("-p, --policy <file>", "policy file (default: the workspace policy)")
    .option("-o, --out <file>", "write the record to a file instead of stdout")
    .option("--pretty", "indent the JSON")
    .option("--redaction <profile>", "redaction profile when the request names none: default, strict, off")
    .option("--max-bytes <n>", "largest request accepted, in bytes", String(DEFAULT_MAX_JSON_BYTES))
    .action(
      async (
        requestPath: string,
        options: {
          workspace?: string;
          policy?: string;
          out?: string;
          pretty?: boolean;
          redaction?: string;
          maxBytes: string;
        },
      ) => {
        const maxBytes = Number(options.maxBytes);
        if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
          throw usageError(`--max-bytes must be a positive integer, not '${options.maxBytes}'`);
        }
        checkWritableOutput(options.out);
        const request = readJsonInput(requestPath, maxBytes);
        let lumyn: Lumyn;
        try {
          lumyn = await openLumyn(options);
        } catch (error) {
          if (!(error instanceof LumynError && error.kind === "storage")) throw error;
          // No store at all: still answer, fail-closed, as when a write fails.
          const record = failClosedRecord(request, options);
          if (!record) throw error;
          printFailure(error);
          emitUnavailable(record, options);
          return;
        }
        try {
          // Whoever runs the command asks: the approval an ESCALATE opens records them as its requester.
          const decided = expect(await lumyn.decide(request, { requester: { principal: osPrincipal() } }));
          if (decided.status === "unavailable") emitUnavailable(decided.record, options);
          else emit(jsonText(decided.record, options.pretty === true), options.out);
          const approval = decided.approval;
          // On stderr, so that stdout stays the record alone.
          if (approval)
            process.stderr.write(
              `lumyn: approval ${approval.approval_id} ${approval.state}: needs ${approval.quorum} of [${approval.approver_roles.join(", ")}] by ${approval.deadline} (lumyn approvals show ${approval.approval_id})\n`,
            );
        } finally {
          await lumyn.close();
        }
      },
    );
}

interface OutputOptions {
  readonly out?: string;
  readonly pretty?: boolean;
}

function emitUnavailable(record: DecisionRecord, options: OutputOptions): void {
  emit(jsonText(record, options.pretty === true), options.out);
  process.stderr.write(
    "lumyn: the store could not be written; the decision is ABSTAIN (STORAGE_UNAVAILABLE) and was not stored\n",
  );
  process.exitCode = EXIT.storage;
}

/** The ABSTAIN / STORAGE_UNAVAILABLE record for a request, when the policy at least can be read. */
function failClosedRecord(
  request: JsonValue,
  options: { workspace?: string; policy?: string; redaction?: string },
): DecisionRecord | undefined {
  const path = options.policy ?? workspaceAt(options.workspace).policyPath;
  let text: string;
  try {
    text = readText(path);
  } catch {
    return undefined;
  }
  const policy = expect(loadPolicy(text, { file: path, ...policyLimits() }));
  const profile = redactionProfile(options.redaction);
  const decided = expect(decide(request, policy, profile ? { redactionProfile: profile } : {}));
  return storageUnavailableRecord(decided, policy);
}
