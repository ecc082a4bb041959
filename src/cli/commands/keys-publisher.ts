import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { keyId } from "../../index.ts";
import { usageError } from "../io.ts";

export const PUBLISHER_PRIVATE_KEY_FILE = "policy-publisher-private.pem";
export const PUBLISHER_PUBLIC_KEY_FILE = "policy-publisher-public.pem";

/** Adds `keys publisher create` to the `keys` command group. */
export function register(keys: Command): void {
  const publisher = keys
    .command("publisher")
    .description(
      "Ed25519 keys that sign policy documents for servers to apply from Redis (see lumyn policy sign)",
    );

  publisher
    .command("create")
    .description(
      `write a new key pair: ${PUBLISHER_PRIVATE_KEY_FILE} (signs, mode 0600) and ${PUBLISHER_PUBLIC_KEY_FILE} (for lumyn serve --policy-publisher-key)`,
    )
    .option("--out <dir>", "the folder to write them to (created if missing)", ".")
    .action((options: { out: string }) => {
      const privatePath = join(options.out, PUBLISHER_PRIVATE_KEY_FILE);
      const publicPath = join(options.out, PUBLISHER_PUBLIC_KEY_FILE);
      for (const path of [privatePath, publicPath]) {
        if (existsSync(path))
          throw usageError(`${path} exists; remove it or choose another folder with --out`);
      }
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      try {
        mkdirSync(options.out, { recursive: true });
      } catch (error) {
        throw usageError(`cannot create ${options.out}: ${(error as Error).message}`);
      }
      try {
        writeFileSync(privatePath, privateKey.export({ type: "pkcs8", format: "pem" }), {
          mode: 0o600,
          flag: "wx",
        });
      } catch (error) {
        throw usageError(`cannot write ${privatePath}: ${(error as Error).message}`);
      }
      try {
        writeFileSync(publicPath, publicKey.export({ type: "spki", format: "pem" }), { flag: "wx" });
      } catch (error) {
        // Both files or neither: a private key without its public half would only confuse.
        rmSync(privatePath, { force: true });
        throw usageError(`cannot write ${publicPath}: ${(error as Error).message}`);
      }
      process.stdout.write(
        `public  ${publicPath}\nkey     ${keyId(publicKey)}\nprivate ${privatePath} (keep it private: it signs policies every server applies)\n\nservers: lumyn serve --policy-publisher-key ${publicPath}\nsign:    lumyn policy sign POLICY.yml --key ${privatePath} --tenant TENANT\n`,
      );
    });
}
