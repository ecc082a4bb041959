import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { EXAMPLE_REQUESTS } from "./assets/example-requests.ts";
import { STARTER_POLICY } from "./assets/starter-policy.ts";
import { STARTER_POLICY_TESTS } from "./assets/starter-policy-tests.ts";
import { stringify } from "./core/json.ts";
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
/** The public halves of signing keys rotated out (`<key id hex>.pem`): checkpoints they signed stay verifiable. */
export const RETIRED_SIGNING_KEYS_DIR = "retired-signing-keys";

export interface Workspace {
  readonly dir: string;
  readonly databasePath: string;
  readonly policyPath: string;
  readonly reasonCodesPath: string;
  readonly signingKeyPath: string;
  readonly retiredSigningKeysDir: string;
}

export function workspaceAt(dir: string = DEFAULT_WORKSPACE): Workspace {
  const absolute = resolve(dir);
  return {
    dir: absolute,
    databasePath: join(absolute, DATABASE_FILE),
    policyPath: join(absolute, POLICY_FILE),
    reasonCodesPath: join(absolute, REASON_CODES_FILE),
    signingKeyPath: join(absolute, SIGNING_KEY_FILE),
    retiredSigningKeysDir: join(absolute, RETIRED_SIGNING_KEYS_DIR),
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

const POLICY_SCHEMA_PATH = "schemas/policy.v1.schema.json";
const TEST_SCHEMA_PATH = "schemas/policy-test.v1.schema.json";

/** The files `lumyn init` wrote, and those it kept because they were there. */
export interface InitializedWorkspace {
  readonly written: readonly string[];
  readonly kept: readonly string[];
}

/**
 * Writes a workspace's starter files: the starter policy and its tests, example requests (one per verdict),
 * and the JSON Schemas editors check policies and tests with. Existing files are kept unless `force`.
 */
export async function initWorkspace(workspace: Workspace, force = false): Promise<InitializedWorkspace> {
  // Read only here: the schemas are large, and no other command needs them.
  const [{ default: policySchema }, { default: testSchema }] = await Promise.all([
    import("./schemas/policy.v1.schema.json", { with: { type: "json" } }),
    import("./schemas/policy-test.v1.schema.json", { with: { type: "json" } }),
  ]);
  const examples = join(workspace.dir, "examples");
  mkdirSync(examples, { recursive: true });
  mkdirSync(join(workspace.dir, "schemas"), { recursive: true });
  const written: string[] = [];
  const kept: string[] = [];
  const write = (path: string, text: string): void => {
    if (existsSync(path) && !force) kept.push(path);
    else {
      writeFileAtomic(path, text);
      written.push(path);
    }
  };
  // Editors with the YAML language server complete and check the files against these schemas.
  write(join(workspace.dir, POLICY_SCHEMA_PATH), `${JSON.stringify(policySchema, null, 2)}\n`);
  write(join(workspace.dir, TEST_SCHEMA_PATH), `${JSON.stringify(testSchema, null, 2)}\n`);
  write(workspace.policyPath, `# yaml-language-server: $schema=./${POLICY_SCHEMA_PATH}\n${STARTER_POLICY}`);
  write(
    join(workspace.dir, "policy.test.yml"),
    `# yaml-language-server: $schema=./${TEST_SCHEMA_PATH}\n${STARTER_POLICY_TESTS}`,
  );
  for (const [name, example] of Object.entries(EXAMPLE_REQUESTS))
    write(join(examples, `${name}.json`), `${stringify(example.request as never, { indent: 2 })}\n`);
  return { written, kept };
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
