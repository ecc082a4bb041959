import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { STARTER_POLICY } from "./assets/starter-policy.ts";

/** Where Lumyn keeps its files unless told otherwise. */
export const DEFAULT_WORKSPACE = ".lumyn";
export const DATABASE_FILE = "lumyn.db";
export const POLICY_FILE = "policy.yml";

export interface Workspace {
  readonly dir: string;
  readonly databasePath: string;
  readonly policyPath: string;
}

export function workspaceAt(dir: string = DEFAULT_WORKSPACE): Workspace {
  const absolute = resolve(dir);
  return {
    dir: absolute,
    databasePath: join(absolute, DATABASE_FILE),
    policyPath: join(absolute, POLICY_FILE),
  };
}

/** Writes a file whole or not at all: a temporary file renamed over the target. */
export function writeFileAtomic(path: string, contents: string | Uint8Array): void {
  const temporary = `${path}.${randomUUID()}.tmp`;
  writeFileSync(temporary, contents, { flag: "wx" });
  renameSync(temporary, path);
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

export function readText(path: string): string {
  return readFileSync(path, "utf8");
}
