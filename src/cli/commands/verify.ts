import type { KeyObject } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import {
  type ChainCheckpoint,
  type ChainReport,
  checkpointFromJson,
  DEFAULT_CHECKPOINT_EVERY,
  keyId,
  verifyStoreChain,
  workspaceAt,
} from "../../index.ts";
import { EXIT, expect, jsonText, readJsonInput, usageError } from "../io.ts";
import { addWorkspaceOption, openExistingStore } from "../options.ts";
import { readPublicKey, verificationKeys } from "./keys-signing.ts";

function reportJson(report: ChainReport, keys: readonly KeyObject[]) {
  const broken = report.broken;
  return {
    ok: broken === undefined,
    length: report.length,
    head_hash: report.headHash,
    checkpoints: {
      ...report.checkpoints,
      ...(report.anchors !== undefined ? { anchors: report.anchors } : {}),
      ...(keys.length > 0 ? { key_ids: keys.map(keyId) } : {}),
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

function reportText(report: ChainReport, keys: readonly KeyObject[]): string {
  const { total, verified } = report.checkpoints;
  const signatures =
    total === 0
      ? "no signed checkpoints (lumyn keys signing create signs the head from now on)"
      : keys.length > 0
        ? `${verified} of ${total} signed checkpoints verified with key ${keys.map(keyId).join(", ")}`
        : `${total} signed checkpoints, signatures not checked: pass --public-key FILE`;
  const anchored =
    report.anchors === undefined ? "" : `${report.anchors} checkpoints kept outside the store still hold\n`;
  if (report.broken) return `broken at entry ${report.broken.seq}: ${report.broken.message}\n`;
  return `ok: ${report.length} entries, head ${report.headHash}\n${signatures}\n${anchored}`;
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
      "check checkpoint signatures with this public key (PEM); repeat for keys rotated out; default: the workspace's signing key and those it retired",
      (file: string, previous: readonly string[] = []) => [...previous, file],
    )
    .option(
      "--checkpoint <path>",
      "a checkpoint kept outside the store (a file `lumyn checkpoint export` or `serve --checkpoint-dir` wrote, or a folder of them): the log must still hold it; repeatable",
      (path: string, previous: readonly string[] = []) => [...previous, path],
    )
    .option("--json", "print {ok, length, head_hash, checkpoints, broken?} as JSON")
    .action(
      async (options: {
        workspace?: string;
        publicKey?: readonly string[];
        checkpoint?: readonly string[];
        json?: boolean;
      }) => {
        const workspace = workspaceAt(options.workspace);
        const keys = options.publicKey ? options.publicKey.map(readPublicKey) : verificationKeys(workspace);
        const anchors = (options.checkpoint ?? []).flatMap(readCheckpoints);
        const store = await openExistingStore(options);
        let report: ChainReport;
        try {
          // A signed log is expected to stay signed: a key means its checkpoints may not go missing.
          report = await verifyStoreChain(store, {
            anchors,
            ...(keys.length > 0 ? { publicKeys: keys, checkpointEvery: DEFAULT_CHECKPOINT_EVERY } : {}),
          });
        } finally {
          await store.close();
        }
        process.stdout.write(
          options.json ? jsonText(reportJson(report, keys), true) : reportText(report, keys),
        );
        if (report.broken) process.exitCode = EXIT.invalid;
      },
    );
}

/** The checkpoints of a file, or of every `*.json` file of a folder (each one checkpoint document). */
function readCheckpoints(path: string): ChainCheckpoint[] {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((name) => name.endsWith(".json"))
          .sort()
          .map((name) => join(path, name))
      : [path];
  } catch (error) {
    throw usageError(`cannot read the checkpoint ${path}: ${(error as Error).message}`);
  }
  return files.map((file) => expect(checkpointFromJson(readJsonInput(file), file)));
}
