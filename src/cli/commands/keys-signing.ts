import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { relative } from "node:path";
import type { Command } from "commander";
import {
  keyId,
  LumynError,
  readText,
  signingKeyFromPem,
  type Workspace,
  workspaceAt,
  workspaceSigningKey,
} from "../../index.ts";
import { emit, usageError } from "../io.ts";
import { addWorkspaceOption } from "../options.ts";

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

/** Adds `keys signing create|export-public` to the `keys` command group. */
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
  )
    .option(
      "--force",
      "replace an existing key (checkpoints signed with the old one then need its public key)",
    )
    .action((options: { workspace?: string; force?: boolean }) => {
      const workspace = workspaceAt(options.workspace);
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      mkdirSync(workspace.dir, { recursive: true });
      try {
        writeFileSync(workspace.signingKeyPath, privateKey.export({ type: "pkcs8", format: "pem" }), {
          mode: 0o600,
          flag: options.force ? "w" : "wx",
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST")
          throw usageError(`${workspace.signingKeyPath} exists; pass --force to replace it`);
        throw usageError(`cannot write ${workspace.signingKeyPath}: ${(error as Error).message}`);
      }
      const shown = relative(process.cwd(), workspace.signingKeyPath) || workspace.signingKeyPath;
      process.stdout.write(
        `wrote ${shown} (keep it private)\nkey   ${keyId(publicKey)}\n\nfor auditors: lumyn keys signing export-public --out signing-public.pem\n`,
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
