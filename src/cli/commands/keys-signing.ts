import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { linkSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { Command } from "commander";
import {
  keyId,
  LumynError,
  readText,
  signingKeyFromPem,
  type Workspace,
  workspaceAt,
  workspaceSigningKey,
  writeFileAtomic,
} from "../../index.ts";
import { emit, usageError } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";

/** The workspace's signing key, or a failure that says how to make one. */
export function readSigningKey(workspace: Workspace): ReturnType<typeof signingKeyFromPem> {
  const pem = workspaceSigningKey(workspace);
  if (pem === undefined) {
    throw new LumynError({
      kind: "not_found",
      problems: [
        {
          code: "no_signing_key",
          message: `no signing key in ${workspace.dir}; run \`lumyn keys signing create\``,
          file: workspace.signingKeyPath,
        },
      ],
    });
  }
  try {
    return signingKeyFromPem(pem);
  } catch (error) {
    throw new LumynError({
      kind: "invalid_request",
      problems: [
        {
          code: "signing_key",
          message: `not an Ed25519 private key: ${(error as Error).message}`,
          file: workspace.signingKeyPath,
        },
      ],
    });
  }
}

/** A public key given for verification (SPKI PEM), or a failure pointing at the file. */
export function readPublicKey(path: string): KeyObject {
  const problem = (message: string) =>
    new LumynError({ kind: "invalid_request", problems: [{ code: "public_key", message, file: path }] });
  let pem: string;
  try {
    pem = readText(path);
  } catch (error) {
    throw problem(`cannot read the public key: ${(error as Error).message}`);
  }
  // A private key would do (its public half is derived), but it has no business where keys only check.
  if (pem.includes("PRIVATE KEY-----"))
    throw problem("this is a private key; give its public half (the -public.pem file)");
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw problem(`not a public key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw problem(`the key is ${key.asymmetricKeyType}, not ed25519`);
  return key;
}

/**
 * The keys a log signed by this workspace is checked with: the current signing key's public half and the
 * public halves of the keys rotated out (`lumyn keys signing rotate`), whose checkpoints stay in the log.
 */
export function verificationKeys(workspace: Workspace): KeyObject[] {
  const current =
    workspaceSigningKey(workspace) === undefined
      ? []
      : [createPublicKey(readSigningKey(workspace).privateKey)];
  let retired: string[];
  try {
    retired = readdirSync(workspace.retiredSigningKeysDir).filter((name) => name.endsWith(".pem"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return current;
    throw usageError(`cannot read ${workspace.retiredSigningKeysDir}: ${(error as Error).message}`);
  }
  return [
    ...current,
    ...retired.sort().map((name) => readPublicKey(join(workspace.retiredSigningKeysDir, name))),
  ];
}

/** Writes a private key readable by its owner only, whole or not at all. */
function writePrivateKey(path: string, privateKey: KeyObject, replace: boolean): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
  try {
    // A link fails when the name is taken, where a rename would replace the key in place.
    if (replace) renameSync(temporary, path);
    else linkSync(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST")
      throw usageError(`${path} exists: replace it with \`lumyn keys signing rotate\``);
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
}

/** Adds `keys signing create|rotate|export-public` to the `keys` command group. */
export function register(keys: Command): void {
  const signing = keys
    .command("signing")
    .description("the Ed25519 key that signs checkpoints of the audit chain (see lumyn verify)");

  addWorkspaceOption(
    signing
      .command("create")
      .description(
        "create the workspace's signing key; from then on the chain's head is signed every 1,000 entries and when a store closes",
      ),
    { store: false },
  ).action((options: { workspace?: string }) => {
    const workspace = workspaceAt(options.workspace);
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    try {
      mkdirSync(workspace.dir, { recursive: true });
      writePrivateKey(workspace.signingKeyPath, privateKey, false);
    } catch (error) {
      if (error instanceof LumynError) throw error;
      throw usageError(`cannot write ${workspace.signingKeyPath}: ${(error as Error).message}`);
    }
    const shown = relative(process.cwd(), workspace.signingKeyPath) || workspace.signingKeyPath;
    process.stdout.write(
      `wrote ${shown} (keep it private)\nkey   ${keyId(publicKey)}\n\nfor auditors: lumyn keys signing export-public --out signing-public.pem\n`,
    );
  });

  addWorkspaceOption(
    signing
      .command("rotate")
      .description(
        "replace the signing key: sign the log's head with the old key one last time, keep its public half in retired-signing-keys/ (lumyn verify checks its checkpoints with it), then sign with a new key",
      ),
  ).action(async (options: { workspace?: string }) => {
    const workspace = workspaceAt(options.workspace);
    const old = readSigningKey(workspace);
    // The old key covers every entry written under it: whatever comes next is the new key's.
    const store = await openExistingStore(options);
    try {
      await store.log.sign();
    } finally {
      await store.close();
    }
    const retiredPath = join(workspace.retiredSigningKeysDir, `${old.keyId.slice("sha256:".length)}.pem`);
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    try {
      mkdirSync(workspace.retiredSigningKeysDir, { recursive: true });
      writeFileAtomic(retiredPath, createPublicKey(old.privateKey).export({ type: "spki", format: "pem" }));
      writePrivateKey(workspace.signingKeyPath, privateKey, true);
    } catch (error) {
      throw usageError(`cannot rotate the signing key: ${(error as Error).message}`);
    }
    process.stdout.write(
      `retired key ${old.keyId} (public half kept in ${relative(process.cwd(), retiredPath)})\nnew key     ${keyId(publicKey)}\n\nfor auditors: lumyn keys signing export-public --out signing-public.pem, and the retired key's file\n`,
    );
  });

  addWorkspaceOption(
    signing
      .command("export-public")
      .description(
        "print the public half of the signing key (PEM), for auditors to run lumyn verify --public-key",
      ),
    { store: false },
  )
    .option("-o, --out <file>", "write it to this file")
    .action((options: { workspace?: string; out?: string }) => {
      const key = readSigningKey(workspaceAt(options.workspace));
      emit(createPublicKey(key.privateKey).export({ type: "spki", format: "pem" }).toString(), options.out);
    });
}
