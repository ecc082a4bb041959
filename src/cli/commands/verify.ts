import { createPublicKey, type KeyObject } from "node:crypto";
import type { Command } from "commander";
import { type ChainReport, keyId, verifyStoreChain, workspaceAt, workspaceSigningKey } from "../../index.ts";
import { EXIT, jsonText } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";
import { readPublicKey, readSigningKey } from "./keys-signing.ts";

function reportJson(report: ChainReport, key: KeyObject | undefined) {
  const broken = report.broken;
  return {
    ok: broken === undefined,
    length: report.length,
    head_hash: report.headHash,
    checkpoints: {
      ...report.checkpoints,
      ...(key ? { key_id: keyId(key) } : {}),
    },
    ...(broken
      ? {
          broken: {
            seq: broken.seq,
            reason: broken.reason,
            message: broken.message,
            ...(broken.kind ? { kind: broken.kind } : {}),
            ...(broken.refId ? { ref_id: broken.refId } : {}),
          },
        }
      : {}),
  };
}

function reportText(report: ChainReport, key: KeyObject | undefined): string {
  const { total, verified } = report.checkpoints;
  const signatures =
    total === 0
      ? "no signed checkpoints (lumyn keys signing create signs the head from now on)"
      : key
        ? `${verified} of ${total} signed checkpoints verified with key ${keyId(key)}`
        : `${total} signed checkpoints, signatures not checked: pass --public-key FILE`;
  if (report.broken) return `broken at entry ${report.broken.seq}: ${report.broken.message}\n`;
  return `ok: ${report.length} entries, head ${report.headHash}\n${signatures}\n`;
}

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("verify")
      .description(
        "check the tamper-evident log: every stored decision and event, in order, against its hash, and the signed checkpoints",
      ),
  )
    .option(
      "--public-key <file>",
      "check checkpoint signatures with this public key (PEM); default: the workspace's signing key",
    )
    .option("--json", "print {ok, length, head_hash, checkpoints, broken?} as JSON")
    .action(async (options: { workspace?: string; publicKey?: string; json?: boolean }) => {
      const workspace = workspaceAt(options.workspace);
      const key = options.publicKey
        ? readPublicKey(options.publicKey)
        : workspaceSigningKey(workspace) !== undefined
          ? createPublicKey(readSigningKey(workspace).privateKey)
          : undefined;
      const store = await openExistingStore(options);
      let report: ChainReport;
      try {
        report = await verifyStoreChain(store, key);
      } finally {
        await store.close();
      }
      process.stdout.write(options.json ? jsonText(reportJson(report, key), true) : reportText(report, key));
      if (report.broken) process.exitCode = EXIT.invalid;
    });
}
