import { accessSync, closeSync, constants, openSync, readSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  DEFAULT_MAX_JSON_BYTES,
  type Failure,
  formatProblem,
  type JsonValue,
  LumynError,
  type ProblemKind,
  parseJsonBytes,
  type Result,
  readText,
  stringify,
  writeFileAtomic,
} from "../index.ts";

/** Exit codes of every `lumyn` command (`denied` and `pending`: `lumyn approvals wait`). */
export const EXIT = { ok: 0, invalid: 1, usage: 2, storage: 3, denied: 4, pending: 5 } as const;

const EXIT_BY_KIND: Readonly<Record<ProblemKind, number>> = {
  invalid_json: EXIT.invalid,
  invalid_request: EXIT.invalid,
  invalid_policy: EXIT.invalid,
  too_large: EXIT.invalid,
  conflict: EXIT.invalid,
  forbidden: EXIT.invalid,
  not_found: EXIT.invalid,
  storage: EXIT.storage,
  tampered: EXIT.storage,
  usage: EXIT.usage,
};

export function exitCodeOf(kind: ProblemKind): number {
  return EXIT_BY_KIND[kind];
}

/** Unwraps a result or throws its failure for the CLI's single error handler to report. */
export function expect<T>(result: Result<T>): T {
  if (result.ok) return result.value;
  throw new LumynError(result);
}

export function usageError(message: string): LumynError {
  return new LumynError({ kind: "usage", problems: [{ code: "usage", message }] });
}

export function printFailure(failure: Failure): void {
  for (const problem of failure.problems) process.stderr.write(`lumyn: ${formatProblem(problem)}\n`);
}

/** Reads a JSON document from a file or, for `-` or no path, from standard input. */
export function readJsonInput(
  path: string | undefined,
  maxBytes: number = DEFAULT_MAX_JSON_BYTES,
): JsonValue {
  const fromStdin = path === undefined || path === "-";
  const name = fromStdin ? "<stdin>" : path;
  let bytes: Uint8Array;
  try {
    bytes = readAtMost(fromStdin ? 0 : path, maxBytes + 1);
  } catch (error) {
    throw new LumynError({
      kind: "invalid_request",
      problems: [{ code: "read", message: `cannot read ${name}: ${(error as Error).message}` }],
    });
  }
  return expect(parseJsonBytes(bytes, { file: name, maxBytes }));
}

/**
 * Reads a file or descriptor, stopping after `limit` bytes so that an oversized input is never held whole in
 * memory (the parser then reports it as over its limit).
 */
function readAtMost(source: string | number, limit: number): Uint8Array {
  const fd = typeof source === "number" ? source : openSync(source, "r");
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < limit) {
      const chunk = Buffer.allocUnsafe(Math.min(65_536, limit - total));
      let read: number;
      try {
        read = readSync(fd, chunk, 0, chunk.length, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EAGAIN") continue;
        if ((error as NodeJS.ErrnoException).code === "EOF") break;
        throw error;
      }
      if (read === 0) break;
      chunks.push(chunk.subarray(0, read));
      total += read;
    }
    return Buffer.concat(chunks, total);
  } finally {
    if (typeof source !== "number") closeSync(fd);
  }
}

export function readTextFile(path: string, kind: ProblemKind = "invalid_policy"): string {
  try {
    return readText(path);
  } catch (error) {
    throw new LumynError({
      kind,
      problems: [
        { code: "read", message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).message}` },
      ],
    });
  }
}

export function jsonText(value: JsonValue, pretty: boolean): string {
  return `${stringify(value, pretty ? { indent: 2 } : {})}\n`;
}

/** Prints to stdout, or writes the file whole (never half-written) when `out` is given. */
export function emit(text: string, out?: string): void {
  if (!out) {
    process.stdout.write(text);
    return;
  }
  try {
    writeFileAtomic(out, text);
  } catch (error) {
    throw new LumynError({
      kind: "usage",
      problems: [{ code: "write", message: `cannot write ${out}: ${(error as Error).message}` }],
    });
  }
}

/** Fails early, before anything is decided or stored, when `--out` cannot be written. */
export function checkWritableOutput(out: string | undefined): void {
  if (!out) return;
  const folder = dirname(resolve(out));
  try {
    if (!statSync(folder).isDirectory()) throw new Error(`${folder} is not a folder`);
    accessSync(folder, constants.W_OK);
  } catch (error) {
    throw usageError(`--out ${out}: cannot write there (${(error as Error).message})`);
  }
}
