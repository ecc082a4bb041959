import { existsSync } from "node:fs";
import type { Command } from "commander";
import { LumynError } from "../core/problem.ts";
import { REDACTION_PROFILES, type RedactionProfile } from "../engine/redact.ts";
import { Lumyn } from "../lumyn.ts";
import { SqliteStore } from "../store/sqlite/sqlite-store.ts";
import { DATABASE_FILE, DEFAULT_WORKSPACE, workspaceAt } from "../workspace.ts";
import { expect, usageError } from "./io.ts";

export interface WorkspaceOptions {
  readonly workspace?: string;
}

export function addWorkspaceOption(command: Command): Command {
  return command.option(
    "-w, --workspace <dir>",
    "workspace folder (database and default policy)",
    DEFAULT_WORKSPACE,
  );
}

export function redactionProfile(value: string | undefined): RedactionProfile | undefined {
  if (value === undefined) return undefined;
  if (!(REDACTION_PROFILES as readonly string[]).includes(value)) {
    throw usageError(`--redaction must be one of ${REDACTION_PROFILES.join(", ")}, not '${value}'`);
  }
  return value as RedactionProfile;
}

export async function openLumyn(
  options: WorkspaceOptions & { policy?: string; redaction?: string },
): Promise<Lumyn> {
  const profile = redactionProfile(options.redaction);
  return expect(
    await Lumyn.open({
      ...(options.workspace ? { workspace: options.workspace } : {}),
      ...(options.policy ? { policyPath: options.policy } : {}),
      ...(profile ? { redactionProfile: profile } : {}),
    }),
  );
}

/**
 * The store of an existing workspace, for commands that only read: nothing is created and the workspace's
 * current policy is not needed (a stored record names its own policy).
 */
export function openExistingStore(options: WorkspaceOptions): SqliteStore {
  const workspace = workspaceAt(options.workspace);
  if (!existsSync(workspace.databasePath)) {
    throw new LumynError({
      kind: "not_found",
      problems: [
        {
          code: "no_workspace",
          message: `no Lumyn workspace at ${workspace.dir} (no ${DATABASE_FILE}); run \`lumyn init\` or pass --workspace`,
          file: workspace.dir,
        },
      ],
    });
  }
  try {
    return SqliteStore.open(workspace.databasePath);
  } catch (error) {
    throw new LumynError({
      kind: "storage",
      problems: [{ code: "storage", message: (error as Error).message }],
    });
  }
}

const DURATION = /^(\d+)(s|m|h|d|w)$/;
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800 };

/** `--since 24h` / `7d` / an ISO 8601 time → the `created_at` lower bound. */
export function sinceTimestamp(value: string | undefined, now: Date = new Date()): string | undefined {
  if (value === undefined) return undefined;
  const match = DURATION.exec(value);
  const date = match
    ? new Date(now.getTime() - Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number) * 1000)
    : new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw usageError(`'${value}' is neither a duration (30m, 24h, 7d, 2w) nor an ISO 8601 time in range`);
  }
  return `${date.toISOString().slice(0, 19)}Z`;
}
