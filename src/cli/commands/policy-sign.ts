import type { Command } from "commander";
import {
  LumynError,
  loadPolicy,
  POLICY_KEY_PREFIX,
  type SigningKey,
  signedPolicyJson,
  signingKeyFromPem,
  signPolicy,
} from "../../index.ts";
import { checkWritableOutput, emit, expect, jsonText, readTextFile, usageError } from "../io.ts";
import { policyLimits } from "../options.ts";

export function register(policy: Command): void {
  policy
    .command("sign")
    .description(
      "sign a policy for one tenant with a publisher key: the envelope servers apply when it is set on lumyn:policy:<tenant> in Redis",
    )
    .argument("<file>", "policy file (YAML or JSON); it is validated first")
    .requiredOption("--key <file>", "the publisher's private key (lumyn keys publisher create)")
    .requiredOption("--tenant <id>", "the tenant it is for (`*`: the default for every tenant)")
    .option("-o, --out <file>", "write the envelope to this file instead of printing it")
    .action((file: string, options: { key: string; tenant: string; out?: string }) => {
      if (options.tenant === "") throw usageError("--tenant must not be empty (`*` is the default)");
      checkWritableOutput(options.out);
      const text = readTextFile(file);
      const loaded = expect(loadPolicy(text, { file, ...policyLimits() }));
      const key = readPublisherKey(options.key);
      const envelope = signPolicy(key, options.tenant, text, new Date().toISOString());
      emit(jsonText(signedPolicyJson(envelope), false), options.out);
      if (options.out) {
        const { policyId, policyVersion } = loaded.model;
        process.stdout.write(
          `signed ${policyId} ${policyVersion} ${loaded.hash} for tenant ${options.tenant} with key ${key.keyId}: ${options.out}\nset it: redis-cli -x SET '${POLICY_KEY_PREFIX}${options.tenant}' < ${options.out}\n`,
        );
      }
    });
}

function readPublisherKey(path: string): SigningKey {
  const problem = (message: string) =>
    new LumynError({ kind: "invalid_request", problems: [{ code: "publisher_key", message, file: path }] });
  const pem = readTextFile(path, "invalid_request");
  if (pem.includes("PUBLIC KEY-----"))
    throw problem("this is a public key; sign with the private one (the -private.pem file)");
  try {
    return signingKeyFromPem(pem);
  } catch (error) {
    throw problem(`not an Ed25519 private key: ${(error as Error).message}`);
  }
}
