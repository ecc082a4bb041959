import type { Command } from "commander";
import { DEFAULT_MAX_JSON_BYTES } from "../../core/parse-json.ts";
import { EXIT, emit, expect, jsonText, readJsonInput, usageError } from "../io.ts";
import { addWorkspaceOption, openLumyn } from "../options.ts";

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
        const request = readJsonInput(requestPath, maxBytes);
        const lumyn = openLumyn(options);
        try {
          const decided = expect(await lumyn.decide(request));
          emit(jsonText(decided.record, options.pretty === true), options.out);
          if (decided.status === "unavailable") {
            process.stderr.write(
              "lumyn: the store could not be written; the decision is ABSTAIN (STORAGE_UNAVAILABLE) and was not stored\n",
            );
            process.exitCode = EXIT.storage;
          }
        } finally {
          await lumyn.close();
        }
      },
    );
}
