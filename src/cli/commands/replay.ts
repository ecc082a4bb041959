import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { Command } from "commander";
import {
  canonicalJson,
  fail,
  formatProblem,
  type JsonValue,
  ok,
  PACK_LIMITS,
  type ReplayReport,
  type Result,
  readPack,
  replayPack,
} from "../../index.ts";
import { EXIT, jsonText, usageError } from "../io.ts";
import { policyLimits } from "../options.ts";
import { readPublicKey } from "./keys-signing.ts";

/** Exit code of a pack that is malformed or unsafe (1 is kept for a replay that differs). */
export const EXIT_BAD_PACK = 2;

function readPackFile(path: string): Result<Uint8Array> {
  const refuse = (code: string, message: string): Result<Uint8Array> =>
    fail("invalid_request", [{ code, message, file: path }]);
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const size = fstatSync(fd).size;
    // The size is checked before anything is read, so a huge file is never loaded.
    if (size > PACK_LIMITS.packBytes)
      return refuse(
        "pack_too_large",
        `the pack is ${size} bytes, over the limit of ${PACK_LIMITS.packBytes}`,
      );
    const bytes = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, bytes, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return ok(bytes.subarray(0, read));
  } catch (error) {
    return refuse("read", `cannot read the pack: ${(error as Error).message}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const short = (value: JsonValue): string => {
  const text = canonicalJson(value);
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
};

function reportText(report: ReplayReport): string {
  const lines = [
    `decision ${report.decisionId} (${report.createdAt}, Lumyn ${report.engineVersion}) under ${report.policy.id} ${report.policy.version}`,
    ...report.checks.map((check) => `${check.ok ? "ok      " : "MISMATCH"} ${check.name}: ${check.detail}`),
    ...(report.mismatches.length === 0
      ? [`ok       re-evaluation: ${report.replayedVerdict} again (${report.reasonCodes.join(", ")})`]
      : report.mismatches.map(
          (m) => `MISMATCH ${m.field}: recorded ${short(m.recorded)}, replayed ${short(m.replayed)}`,
        )),
    report.identical ? "identical" : "differs",
  ];
  return `${lines.join("\n")}\n`;
}

function reportMarkdown(report: ReplayReport, file: string): string {
  const status = report.identical ? "Replay identical" : "Replay differs";
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const lines = [
    `# ${status}: decision ${report.decisionId}`,
    "",
    report.identical
      ? `Re-running the policy on the recorded request, with memory as recorded, gives **${report.replayedVerdict}** again, as recorded on ${report.createdAt}. Every digest in the pack checks out.`
      : `The pack does not reproduce what was recorded on ${report.createdAt}: recorded **${report.recordedVerdict}**, replayed **${report.replayedVerdict}**. See the differences below.`,
    "",
    `- **Pack:** \`${file}\``,
    `- **Policy:** ${report.policy.id} ${report.policy.version} (\`${report.policy.hash}\`)`,
    `- **Recorded by:** Lumyn ${report.engineVersion}`,
    `- **Verdict:** recorded ${report.recordedVerdict}, replayed ${report.replayedVerdict}`,
    `- **Reason codes:** ${report.reasonCodes.map((code) => `\`${code}\``).join(", ") || "none"}`,
    "",
    "## Checks",
    "",
    "| check | result | detail |",
    "| --- | --- | --- |",
    ...report.checks.map(
      (check) => `| ${check.name} | ${check.ok ? "ok" : "**mismatch**"} | ${cell(check.detail)} |`,
    ),
    `| re-evaluation | ${report.mismatches.length === 0 ? "ok" : "**mismatch**"} | ${report.mismatches.length === 0 ? "verdict, reason codes, matched rules, queries and obligations as recorded" : `${report.mismatches.length} field(s) differ`} |`,
  ];
  if (report.mismatches.length > 0) {
    lines.push("", "## Differences", "");
    for (const mismatch of report.mismatches) {
      lines.push(
        `### \`${mismatch.field}\``,
        "",
        "Recorded:",
        "",
        "```json",
        jsonText(mismatch.recorded, true).trimEnd(),
        "```",
        "",
        "Replayed:",
        "",
        "```json",
        jsonText(mismatch.replayed, true).trimEnd(),
        "```",
        "",
      );
    }
  }
  return `${lines.join("\n").trimEnd()}\n`;
}

function reportJson(report: ReplayReport, file: string) {
  return {
    pack: file,
    identical: report.identical,
    decision_id: report.decisionId,
    created_at: report.createdAt,
    engine_version: report.engineVersion,
    policy: {
      policy_id: report.policy.id,
      policy_version: report.policy.version,
      policy_hash: report.policy.hash,
    },
    verdict: { recorded: report.recordedVerdict, replayed: report.replayedVerdict },
    origin: report.origin,
    checks: report.checks.map((check) => ({ name: check.name, ok: check.ok, detail: check.detail })),
    mismatches: report.mismatches.map((m) => ({
      field: m.field,
      recorded: m.recorded,
      replayed: m.replayed,
    })),
  };
}

export function register(program: Command): void {
  program
    .command("replay")
    .description(
      "check a decision pack offline (manifest, policy_hash, inputs_digest, memory snapshot) and re-run its decision; exit 0 identical, 1 differs, 2 malformed or unsafe pack",
    )
    .argument("<pack.zip>")
    .option(
      "--public-key <file>",
      "the log signer's public key (PEM): the pack must prove it comes from a log this key signed; repeat for keys rotated out",
      (file: string, previous: readonly string[] = []) => [...previous, file],
    )
    .option("--json", "print the report as JSON")
    .option("--markdown", "print the report as Markdown, for a ticket")
    .action(
      (file: string, options: { json?: boolean; markdown?: boolean; publicKey?: readonly string[] }) => {
        if (options.json && options.markdown) throw usageError("choose one of --json and --markdown");
        const publicKeys = (options.publicKey ?? []).map(readPublicKey);
        const bytes = readPackFile(file);
        const contents = bytes.ok ? readPack(bytes.value, file) : bytes;
        const report = contents.ok
          ? replayPack(contents.value, file, { publicKeys, limits: policyLimits() })
          : contents;
        if (!report.ok) {
          for (const problem of report.problems) process.stderr.write(`lumyn: ${formatProblem(problem)}\n`);
          process.stderr.write(
            `lumyn: ${file}: refused: the pack is malformed or unsafe; nothing was extracted\n`,
          );
          process.exitCode = EXIT_BAD_PACK;
          return;
        }
        const text = options.json
          ? jsonText(reportJson(report.value, file), true)
          : options.markdown
            ? reportMarkdown(report.value, file)
            : reportText(report.value);
        process.stdout.write(text);
        process.exitCode = report.value.identical ? EXIT.ok : EXIT.invalid;
      },
    );
}
