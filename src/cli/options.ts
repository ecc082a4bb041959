import { existsSync } from "node:fs";
import type { Command } from "commander";
import {
  DATABASE_FILE,
  DEFAULT_WORKSPACE,
  Lumyn,
  LumynError,
  openStore,
  type PolicyLimits,
  parseStoreLocation,
  policyLimitsFromEnvironment,
  REDACTION_PROFILES,
  type RedactionProfile,
  StorageError,
  type Store,
  type StoreLocation,
  workspaceAt,
  workspaceSigningKey,
} from "../index.ts";
import { expect, usageError } from "./io.ts";

export interface WorkspaceOptions {
  readonly workspace?: string;
  /** Store URL (`--store`); LUMYN_STORE when absent. */
  readonly store?: string;
}

/** `--workspace`, and `--store` for commands that open a store (all but a few, such as `keys signing`). */
export function addWorkspaceOption(command: Command, { store = true }: { store?: boolean } = {}): Command {
  command.option(
    "-w, --workspace <dir>",
    "workspace folder (database and default policy)",
    DEFAULT_WORKSPACE,
  );
  if (!store) return command;
  return command.option(
    "--store <url>",
    "the store: postgres://user:pass@host:5432/db or a SQLite file (default: LUMYN_STORE, else the workspace's lumyn.db)",
  );
}

/** The store URL a command was given: `--store`, else `LUMYN_STORE`; undefined for the workspace's SQLite file. */
export function storeUrl(options: WorkspaceOptions): string | undefined {
  return options.store ?? (process.env.LUMYN_STORE || undefined);
}

/** Where the store is: the `--store` / LUMYN_STORE location, else the workspace's SQLite file. */
export function storeLocation(options: WorkspaceOptions): StoreLocation {
  const url = storeUrl(options);
  if (url === undefined) return { kind: "sqlite", path: workspaceAt(options.workspace).databasePath };
  return expect(parseStoreLocation(url));
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
  const url = storeUrl(options);
  return expect(
    await Lumyn.open({
      ...(options.workspace ? { workspace: options.workspace } : {}),
      ...(url !== undefined ? { storeUrl: url } : {}),
      ...(options.policy ? { policyPath: options.policy } : {}),
      ...(profile ? { redactionProfile: profile } : {}),
      policyLimits: policyLimits(),
    }),
  );
}

/** What a policy may weigh in this run: LUMYN_POLICY_MAX_BYTES and LUMYN_POLICY_MAX_RULES, else the defaults. */
export function policyLimits(): PolicyLimits {
  return expect(policyLimitsFromEnvironment(process.env));
}

/**
 * The store of an existing workspace, for commands that only read: no workspace is created and its current
 * policy is not needed (a stored record names its own policy). A `--store` URL names the store instead.
 */
export async function openExistingStore(options: WorkspaceOptions): Promise<Store> {
  const workspace = workspaceAt(options.workspace);
  const location = storeLocation(options);
  if (location.kind === "sqlite" && !existsSync(location.path)) {
    throw new LumynError({
      kind: "not_found",
      problems: [
        {
          code: "no_workspace",
          message:
            storeUrl(options) === undefined
              ? `no Lumyn workspace at ${workspace.dir} (no ${DATABASE_FILE}); run \`lumyn init\` or pass --workspace`
              : `no store at ${location.path}; run \`lumyn migrate --store ${location.path}\` to create it`,
          file: storeUrl(options) === undefined ? workspace.dir : location.path,
        },
      ],
    });
  }
  return openSelectedStore(location, workspaceSigningKey(workspace));
}

/**
 * Opens the store at a location (creating a SQLite file, migrating a PostgreSQL database); exit code 3 on
 * failure. With the workspace's signing key, what the command writes is signed too (on close).
 */
export async function openSelectedStore(location: StoreLocation, signingKeyPem?: string): Promise<Store> {
  try {
    return await openStore(location, signingKeyPem ? { signingKeyPem } : {});
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    throw new LumynError({ kind: "storage", problems: [{ code: "storage", message: error.message }] });
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

/** A change request's number as given on the command line. */
export function requestNumber(text: string): number {
  const seq = /^#?\d+$/.test(text) ? Number(text.replace("#", "")) : Number.NaN;
  if (!Number.isSafeInteger(seq) || seq < 1)
    throw usageError(`'${text}' is not a change request number (lumyn policy requests lists them)`);
  return seq;
}
