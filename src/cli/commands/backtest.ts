import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import {
  type BacktestReport,
  BacktestTally,
  DEFAULT_TOP_CHANGED,
  LumynError,
  loadPolicy,
  type Policy,
  parseJson,
  parseTransitions,
  redecideRequest,
  redecideStored,
  type Transition,
  triggered,
  VERDICTS,
  workspaceAt,
} from "../../index.ts";
import { EXIT, expect, jsonText, readTextFile, usageError } from "../io.ts";
import { addWorkspaceOption, openExistingStore, policyLimits, sinceTimestamp } from "../options.ts";

interface BacktestOptions {
  workspace?: string;
  policy: string;
  since?: string;
  until?: string;
  tenant?: string;
  limit?: string;
  json?: boolean;
  failOn?: string;
  requests?: string;
  baseline?: string;
  top: string;
}

function loadPolicyFile(path: string): Policy {
  return expect(loadPolicy(readTextFile(path), { file: path, ...policyLimits() }));
}

function wholeNumber(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < min)
    throw usageError(`${name} must be a whole number of at least ${min}, not '${value}'`);
  return number;
}

/** A progress bar on a terminal's stderr only; redrawn at most every 100 ms. */
function progressBar(total: number): { tick(done: number): void; end(): void } {
  if (!process.stderr.isTTY || total === 0) return { tick: () => undefined, end: () => undefined };
  let last = 0;
  const draw = (done: number) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    process.stderr.write(`\rbacktest [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`);
  };
  return {
    tick: (done) => {
      if (done % 256 !== 0) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      draw(done);
    },
    end: () => process.stderr.write("\r\u001b[2K"),
  };
}

/** Re-decides the store's history under the candidate, oldest first, streaming. */
async function backtestHistory(candidate: Policy, options: BacktestOptions, tally: BacktestTally) {
  const since = sinceTimestamp(options.since);
  const until = sinceTimestamp(options.until);
  const limit = wholeNumber("--limit", options.limit, 1);
  const window = {
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
    ...(options.tenant ? { tenantId: options.tenant } : {}),
  };
  const store = await openExistingStore(options);
  try {
    const inWindow = (await store.decisions.stats({ by: "verdict", ...window })).total;
    const progress = progressBar(Math.min(inWindow, limit ?? inWindow));
    let done = 0;
    await store.decisions.scan({ ...window, ...(limit ? { limit } : {}) }, (recordJson) => {
      const redecided = redecideStored(recordJson, candidate);
      if (redecided) tally.add(redecided);
      else tally.skip();
      progress.tick(++done);
    });
    progress.end();
  } finally {
    await store.close();
  }
  return { ...(since ? { since } : {}), ...(until ? { until } : {}) };
}

/** Decides each request of a JSON Lines file under the baseline and the candidate (no memory, nothing stored). */
async function backtestRequests(file: string, baseline: Policy, candidate: Policy, tally: BacktestTally) {
  let lines: AsyncIterable<string>;
  const stream = createReadStream(file, { encoding: "utf8" });
  try {
    await new Promise<void>((resolve, reject) => stream.once("open", () => resolve()).once("error", reject));
    lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  } catch (error) {
    throw usageError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (line.trim() === "") continue;
    const where = `${file}:${lineNumber}`;
    const parsed = parseJson(line, { file: where });
    const redecided = parsed.ok
      ? redecideRequest(parsed.value, baseline, candidate, `line ${lineNumber}`)
      : parsed;
    if (!redecided.ok) {
      stream.destroy();
      throw new LumynError({
        kind: redecided.kind,
        problems: redecided.problems.map((problem) => ({
          ...problem,
          file: where,
          ...(problem.line !== undefined ? { line: lineNumber } : {}),
        })),
      });
    }
    tally.add(redecided.value);
  }
}

function renderText(report: BacktestReport, candidate: Policy, source: string, gate: GateResult): string {
  const percent = report.total === 0 ? "0" : ((report.changed / report.total) * 100).toFixed(1);
  const width = Math.max(...VERDICTS.map((v) => v.length)) + 2;
  const cell = (text: string | number) => String(text).padStart(width);
  const lines = [
    `re-decided ${report.total} ${source} under ${candidate.model.policyId} ${candidate.model.policyVersion} (${candidate.hash})`,
    `changed ${report.changed} (${percent}%)${report.unreadable > 0 ? `; ${report.unreadable} stored records could not be read and were skipped` : ""}${report.unmeasured > 0 ? `; ${report.unmeasured} recorded no value for a velocity measure of the candidate (conditions on it read nothing)` : ""}`,
    "",
    `${"from \\ to".padEnd(10)}${VERDICTS.map(cell).join("")}`,
    ...VERDICTS.map(
      (from) => `${from.padEnd(10)}${VERDICTS.map((to) => cell(report.matrix[from][to])).join("")}`,
    ),
    "",
    `reason codes gained: ${report.gained.map((g) => `${g.code} (${g.count})`).join(", ") || "none"}`,
    `reason codes lost:   ${report.lost.map((l) => `${l.code} (${l.count})`).join(", ") || "none"}`,
  ];
  if (report.topChanged.length > 0) {
    lines.push("", "top changed decisions:");
    for (const change of report.topChanged) {
      const codes = [...change.lost.map((c) => `-${c}`), ...change.gained.map((c) => `+${c}`)].join(" ");
      lines.push(`  ${change.id}  ${change.from} -> ${change.to}  ${codes}`);
    }
  }
  if (gate.spec !== undefined) {
    lines.push(
      "",
      gate.hits.length === 0
        ? `fail-on ${gate.spec}: no such change`
        : `fail-on ${gate.spec}: ${gate.hits.map((h) => `${h.from}>${h.to} ${h.count}`).join(", ")}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

interface GateResult {
  readonly spec: string | undefined;
  readonly hits: ReturnType<typeof triggered>;
}

function renderJson(report: BacktestReport, candidate: Policy, window: object, gate: GateResult) {
  return {
    candidate: {
      policy_id: candidate.model.policyId,
      policy_version: candidate.model.policyVersion,
      policy_hash: candidate.hash,
    },
    ...window,
    total: report.total,
    changed: report.changed,
    unreadable: report.unreadable,
    ...(report.unmeasured > 0 ? { unmeasured: report.unmeasured } : {}),
    matrix: report.matrix,
    reason_codes: {
      gained: Object.fromEntries(report.gained.map((g) => [g.code, g.count])),
      lost: Object.fromEntries(report.lost.map((l) => [l.code, l.count])),
    },
    top_changed: report.topChanged.map((change) => ({
      id: change.id,
      from: change.from,
      to: change.to,
      reason_codes_gained: [...change.gained],
      reason_codes_lost: [...change.lost],
    })),
    ...(gate.spec !== undefined ? { fail_on: { spec: gate.spec, triggered: gate.hits } } : {}),
  };
}

export function register(program: Command): void {
  addWorkspaceOption(
    program
      .command("backtest")
      .description(
        "re-decide stored requests under a candidate policy (memory as recorded) and show what would change: a verdict transition matrix, reason codes gained and lost, the top changed decisions",
      ),
  )
    .requiredOption("-p, --policy <file>", "the candidate policy")
    .option("--since <time>", "only decisions newer than this (30m, 24h, 30d, 2w, or an ISO 8601 time)")
    .option("--until <time>", "only decisions older than this (same forms)")
    .option("--tenant <id>", "only this tenant's decisions")
    .option("--limit <n>", "at most the oldest N decisions of the window")
    .option("--top <n>", "how many changed decisions to list", String(DEFAULT_TOP_CHANGED))
    .option(
      "--fail-on <transitions>",
      "exit 1 when any of these changes occurs, e.g. DENY>ALLOW,ESCALATE>ALLOW (* for any)",
    )
    .option(
      "--requests <file.jsonl>",
      "run the requests of this JSON Lines file instead of history, against --baseline",
    )
    .option(
      "--baseline <file>",
      "with --requests: the policy to compare with (default: the workspace's policy.yml)",
    )
    .option("--json", "print the report as JSON")
    .action(async (options: BacktestOptions) => {
      const gate: Transition[] | undefined = options.failOn
        ? expect(parseTransitions(options.failOn))
        : undefined;
      const top = wholeNumber("--top", options.top, 0) ?? DEFAULT_TOP_CHANGED;
      if (!options.requests && options.baseline) throw usageError("--baseline goes with --requests");
      if (options.requests && (options.since || options.until || options.tenant || options.limit))
        throw usageError("--since, --until, --tenant and --limit select stored decisions, not --requests");
      const candidate = loadPolicyFile(options.policy);
      const tally = new BacktestTally(top);
      let window: object = {};
      let source: string;
      if (options.requests) {
        const baseline = loadPolicyFile(options.baseline ?? workspaceAt(options.workspace).policyPath);
        await backtestRequests(options.requests, baseline, candidate, tally);
        source = `requests of ${options.requests} (baseline ${baseline.model.policyId} ${baseline.model.policyVersion})`;
      } else {
        window = await backtestHistory(candidate, options, tally);
        source = "stored decisions";
      }
      const report = tally.report();
      const result: GateResult = { spec: options.failOn, hits: gate ? triggered(report, gate) : [] };
      process.stdout.write(
        options.json
          ? jsonText(renderJson(report, candidate, window, result), false)
          : renderText(report, candidate, source, result),
      );
      if (result.hits.length > 0) process.exitCode = EXIT.invalid;
    });
}
