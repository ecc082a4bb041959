import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { STARTER_POLICY } from "./assets/starter-policy.ts";
import { fail, ok, type Result } from "./core/problem.ts";
import { parseReasonCodeRegistry } from "./policy/registry.ts";

/** Where Lumyn keeps its files unless told otherwise. */
export const DEFAULT_WORKSPACE = ".lumyn";
export const DATABASE_FILE = "lumyn.db";
export const POLICY_FILE = "policy.yml";
/** Optional: when present, the workspace's policies may use only the reason codes it lists. */
export const REASON_CODES_FILE = "reason-codes.json";
/** Optional: an Ed25519 private key; when present, the head of the audit chain is signed. */
export const SIGNING_KEY_FILE = "signing-key.pem";

export interface Workspace {
  readonly dir: string;
  readonly databasePath: string;
  readonly policyPath: string;
  readonly reasonCodesPath: string;
  readonly signingKeyPath: string;
}

export function workspaceAt(dir: string = DEFAULT_WORKSPACE): Workspace {
  const absolute = resolve(dir);
  return {
    dir: absolute,
    databasePath: join(absolute, DATABASE_FILE),
    policyPath: join(absolute, POLICY_FILE),
    reasonCodesPath: join(absolute, REASON_CODES_FILE),
    signingKeyPath: join(absolute, SIGNING_KEY_FILE),
  };
}

/** Writes a file whole or not at all: a temporary file renamed over the target. */
export function writeFileAtomic(path: string, contents: string | Uint8Array): void {
  const temporary = `${path}.${randomUUID()}.tmp`;
  writeFileSync(temporary, contents, { flag: "wx" });
  try {
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Creates the workspace folder and, when it has none, its starter policy. Returns whether the policy was written. */
export function ensureWorkspace(workspace: Workspace): boolean {
  mkdirSync(workspace.dir, { recursive: true });
  try {
    writeFileSync(workspace.policyPath, STARTER_POLICY, { flag: "wx" });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A text file as strict UTF-8 (a leading BOM is dropped); invalid bytes are an error, never replaced. */
export function readText(path: string): string {
  const bytes = readFileSync(path);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new Error(`${path} is not valid UTF-8`);
  }
}

/** The workspace's reason-code registry, if it has one. */
export function workspaceRegistry(workspace: Workspace): Result<Set<string> | undefined> {
  let text: string;
  try {
    text = readText(workspace.reasonCodesPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return ok(undefined);
    return fail("invalid_policy", [
      {
        code: "read",
        message: `cannot read the reason-code registry: ${(error as Error).message}`,
        file: workspace.reasonCodesPath,
      },
    ]);
  }
  return parseReasonCodeRegistry(text, workspace.reasonCodesPath);
}

/** The workspace's signing key (PKCS#8 PEM), if it has one. */
export function workspaceSigningKey(workspace: Workspace): string | undefined {
  try {
    return readText(workspace.signingKeyPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
