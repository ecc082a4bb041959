/**
 * Lumyn's benchmark suite. `npm run bench` builds, then runs this file with Node 24.
 *
 *   node bench/run.ts [--quick] [--json] [--only 1,3] [--no-pin] [--cpu N] [--check]
 *
 * Every scenario runs on one core: on Linux the process re-executes itself under `taskset`, pinned to the least
 * busy CPU (the child processes of scenario 5 inherit it). Scenarios 6, 12-15 are the exception: 6 measures
 * the writer thread, whose point is a second core, 12-14 run server processes and a load generator side by
 * side, and 15 runs three servers; they widen the pinning to all CPUs while they run. Scenario 14 needs
 * PostgreSQL (bench/postgres.ts). Each scenario warms
 * up, runs several repetitions and reports the median of the repetitions.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { formatProblem } from "../src/core/problem.ts";
import { plainSettingProblems, plainSpeedups } from "../src/core/speedups.ts";
import { closeHistory, scenarioBacktest, scenarioChainCost, scenarioVerify } from "./audit.ts";
import { scenarioMemoryManyScopes, scenarioMemoryOneScope } from "./memory.ts";
import { scenarioPostgresServers } from "./postgres.ts";
import { scenarioPolicyPropagation, scenarioVelocityCost } from "./registry.ts";
import {
  type Config,
  DEFAULT_CONFIG,
  formatCount,
  log,
  QUICK_CONFIG,
  type ScenarioResult,
  scenario200,
  scenarioCli,
  scenarioDecide,
  scenarioManyRules,
  scenarioStarter,
  scenarioStore,
  scenarioStoreThread,
  sinkValue,
} from "./scenarios.ts";
import { scenarioServeDecide, scenarioServeRead } from "./server.ts";

const USAGE = `usage: node bench/run.ts [options]   (npm run bench -- [options]; use npm run -s for clean --json)
  --quick      short run (fewer, shorter repetitions)
  --json       print the results as JSON on stdout (progress stays on stderr)
  --only LIST  run only these scenarios, e.g. --only 1,2
  --no-pin     do not pin the process to one CPU
  --cpu N      the CPU to pin to (default: the least busy one allowed)
  --check      exit with status 1 when a target is missed
  -h, --help   show this help`;

function parseOptions() {
  try {
    return parseArgs({
      options: {
        quick: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        only: { type: "string" },
        "no-pin": { type: "boolean", default: false },
        cpu: { type: "string" },
        check: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    process.exit(2);
  }
}

const options = parseOptions();

if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const plainProblems = plainSettingProblems();
if (plainProblems.length > 0) {
  for (const problem of plainProblems) process.stderr.write(`bench: ${formatProblem(problem)}\n`);
  process.exit(2);
}

const PIN_ENV = "LUMYN_BENCH_PINNED_CPU";

function allowedCpus(): number[] {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const list = /^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1]?.trim() ?? "";
    return list.split(",").flatMap((part) => {
      const [low, high] = part.split("-").map(Number) as [number, number | undefined];
      return Array.from({ length: (high ?? low) - low + 1 }, (_, i) => low + i);
    });
  } catch {
    return [];
  }
}

/** Busy and total jiffies of each CPU, from /proc/stat. */
function cpuTimes(): Map<number, { busy: number; total: number }> {
  const times = new Map<number, { busy: number; total: number }>();
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const match = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const fields = (match[2] ?? "").trim().split(/\s+/).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    times.set(Number(match[1]), { busy: total - idle, total });
  }
  return times;
}

/** The allowed CPU that was least busy over the last quarter second (other work may be running here). */
function idlestCpu(): number | undefined {
  const allowed = allowedCpus();
  try {
    const before = cpuTimes();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
    const after = cpuTimes();
    const load = (cpu: number): number => {
      const a = before.get(cpu);
      const b = after.get(cpu);
      if (!a || !b || b.total === a.total) return 1;
      return (b.busy - a.busy) / (b.total - a.total);
    };
    return [...allowed].sort((x, y) => load(x) - load(y) || y - x)[0];
  } catch {
    return allowed.at(-1);
  }
}

/** Re-runs this script under `taskset -c <cpu>`; returns false (run unpinned) when that is not possible. */
function pinToOneCpu(): false {
  if (process.platform !== "linux" || options["no-pin"] || process.env[PIN_ENV] !== undefined) return false;
  const cpu = options.cpu ?? String(idlestCpu() ?? "");
  if (cpu === "") return false;
  const script = fileURLToPath(import.meta.url);
  const child = spawnSync(
    "taskset",
    ["-c", cpu, process.execPath, ...process.execArgv, script, ...process.argv.slice(2)],
    {
      stdio: "inherit",
      env: { ...process.env, [PIN_ENV]: cpu },
    },
  );
  if (child.error) {
    log(`cannot pin to CPU ${cpu} (${child.error.message}); running unpinned`);
    return false;
  }
  process.exit(child.status ?? 1);
}

pinToOneCpu();

const config: Config = options.quick ? QUICK_CONFIG : DEFAULT_CONFIG;
const selected = new Set(
  (options.only ?? "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17")
    .split(",")
    .map((s) => Number(s.trim()))
    .filter((n) => n >= 1 && n <= 17),
);
if (selected.size === 0) {
  process.stderr.write(`bench: --only names no scenario (1-17)\n${USAGE}\n`);
  process.exit(2);
}

const pinnedCpu = process.env[PIN_ENV];
const meta = {
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  cpu: cpus()[0]?.model ?? "unknown",
  cpusOnMachine: cpus().length,
  pinnedToCpu: pinnedCpu === undefined ? null : Number(pinnedCpu),
  mode: config.quick ? "quick" : "full",
  plain: plainSpeedups(),
  date: new Date().toISOString(),
};
const plainNote = meta.plain.length > 0 ? `, fast paths off (LUMYN_PLAIN): ${meta.plain.join(", ")}` : "";
log(
  `${meta.node}, ${meta.cpu}, ${pinnedCpu === undefined ? "not pinned" : `pinned to CPU ${pinnedCpu}`}, ${meta.mode} run${plainNote}`,
);

const scenarios: Array<[number, () => ScenarioResult | Promise<ScenarioResult>]> = [
  [1, () => scenarioStarter(config)],
  [2, () => scenario200(config)],
  [3, () => scenarioDecide(config)],
  [4, () => scenarioStore(config)],
  [6, () => scenarioStoreThread(config)],
  [7, () => scenarioMemoryOneScope(config)],
  [8, () => scenarioMemoryManyScopes(config)],
  [9, () => scenarioVerify(config)],
  [10, () => scenarioBacktest(config)],
  [11, () => scenarioChainCost(config)],
  [5, () => scenarioCli(config)],
  [17, () => scenarioManyRules(config)],
  [12, () => scenarioServeDecide(config)],
  [13, () => scenarioServeRead(config)],
  [14, () => scenarioPostgresServers(config)],
  [15, () => scenarioPolicyPropagation(config)],
  [16, () => scenarioVelocityCost(config)],
];

const started = performance.now();
const results: ScenarioResult[] = [];
for (const [id, run] of scenarios) {
  if (!selected.has(id)) continue;
  log(`scenario ${id}...`);
  const t0 = performance.now();
  try {
    results.push(await run());
  } catch (error) {
    process.stderr.write(
      `bench: scenario ${id} aborted: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(2);
  }
  log(`scenario ${id} done in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
}
await closeHistory();
const seconds = (performance.now() - started) / 1e3;
if (!Number.isFinite(sinkValue())) log("(sink)");

// ---- Output ----

function formatOps(n: number): string {
  return `${formatCount(n)}/s`;
}

function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return "-";
  if (ns < 1e3) return `${ns.toPrecision(3)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  return `${(ns / 1e9).toPrecision(3)} s`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? "").length))) ?? [];
  const line = (row: string[]): string =>
    row
      .map((cell, c) => (c >= 2 && c <= 4 ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join("  ")
      .trimEnd();
  const [head, ...body] = rows;
  return [line(head ?? []), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

if (options.json) {
  process.stdout.write(`${JSON.stringify({ meta: { ...meta, seconds }, config, results }, null, 2)}\n`);
} else {
  const rows: string[][] = [["#", "scenario", "ops/s", "p50", "p99", "target", "result"]];
  for (const r of results) {
    const failed = r.checks.filter((c) => !c.pass).map((c) => c.label);
    rows.push([
      String(r.id),
      r.name,
      formatOps(r.opsPerSec),
      formatNs(r.p50Ns),
      formatNs(r.p99Ns),
      r.target,
      r.pass ? "PASS" : `FAIL (${failed.join("; ")})`,
    ]);
    if (r.baseline) {
      rows.push([
        "",
        `  ${r.baseline.name}`,
        formatOps(r.baseline.opsPerSec),
        formatNs(r.baseline.p50Ns),
        formatNs(r.baseline.p99Ns),
        `${r.baseline.ratioLabel ?? "ratio compiled/hand-written"}: ${r.baseline.ratio.toFixed(2)}x`,
        "",
      ]);
    }
  }
  const out: string[] = [
    "",
    `Lumyn benchmarks: ${meta.node} on ${meta.cpu}, ${pinnedCpu === undefined ? "not pinned" : `pinned to CPU ${pinnedCpu} (one core)`}, ${meta.mode} run, ${seconds.toFixed(0)} s${plainNote}`,
    "Each figure is the median over repetitions, after warm-up.",
    "",
    table(rows),
    "",
    "Notes:",
  ];
  for (const r of results) {
    out.push(`  ${r.id}. latency: ${r.latency}`);
    for (const note of r.notes) out.push(`     ${note}`);
    if (r.baseline) {
      out.push(`     ratio per repetition: ${r.baseline.ratios.map((x) => x.toFixed(2)).join(" ")}`);
    }
    if (r.repOpsPerSec.length > 0)
      out.push(`     ops/s per repetition: ${r.repOpsPerSec.map(formatCount).join(" ")}`);
  }
  process.stdout.write(`${out.join("\n")}\n`);
}

if (options.check && results.some((r) => !r.pass)) process.exitCode = 1;
