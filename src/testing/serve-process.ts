import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { CLI } from "./run-cli.ts";

/** A `lumyn serve` process (the built CLI) and how to reach and stop it. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `lumyn serve --port 0 ARGS` and resolves once it listens (rejects when it exits first). Its stdout
 * (the log) is dropped, written to a file (as a deployment that logs to a file has it), or a pipe the test
 * holds (`child.stdout`).
 */
export function startServeProcess(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; stdout?: { file: string } | "pipe" } = {},
): Promise<ServeProcess> {
  const logFile = typeof options.stdout === "object" ? openSync(options.stdout.file, "w") : undefined;
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", logFile ?? (options.stdout === "pipe" ? "pipe" : "ignore"), "pipe"],
  });
  if (logFile !== undefined) closeSync(logFile);
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
      const url = /serving (http:\/\/\S+)/.exec(stderr)?.[1];
      if (url)
        resolve({
          child,
          url,
          stderr: () => stderr,
          exited,
          stop: () => {
            if (child.exitCode === null) child.kill("SIGTERM");
            return exited;
          },
        });
    });
    exited.then((code) => reject(new Error(`lumyn serve exited with ${code}: ${stderr}`)));
  });
}
