/**
 * Audit scenarios: verifying the tamper-evident log (9), backtesting history under a candidate policy (10),
 * and what the chain adds to a durable decision (11), measured against the store as it was before the chain,
 * in the same process, repetitions interleaved.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { STARTER_POLICY } from "../src/assets/starter-policy.ts";
import { BacktestTally, redecideStored } from "../src/audit/backtest.ts";
import { verifyStoreChain } from "../src/audit/verify.ts";
import type { JsonObject } from "../src/core/json.ts";
import { Lumyn } from "../src/lumyn.ts";
import { loadPolicy, type Policy } from "../src/policy/policy.ts";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.ts";
import { median, type Rep, summarize } from "./harness.ts";
import { asJsonValue, starterRequests } from "./requests.ts";
import { type Config, log, type ScenarioResult } from "./scenarios.ts";

function mustLoad(text: string): Policy {
  const loaded = loadPolicy(text);
  if (!loaded.ok) throw new Error(`bench: policy does not load: ${loaded.problems[0]?.message}`);
  return loaded.value;
}

/** History sizes: the verification target is stated over a log of this many entries. */
const HISTORY = { full: 200_000, quick: 50_000 } as const;
/** Labelled failures, so that later decisions carry memory snapshots that backtests re-run. */
const LABELLED = 50;

interface History {
  readonly dir: string;
  readonly store: SqliteStore;
  readonly entries: number;
  readonly withMemory: number;
}

let shared: Promise<History> | undefined;

/** One store of decided history for scenarios 9 and 10, built once with the writer thread. */
function history(config: Config): Promise<History> {
  shared ??= (async () => {
    const size = config.quick ? HISTORY.quick : HISTORY.full;
    const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-audit-"));
    const store = SqliteStore.open(join(dir, "lumyn.db"), { writer: "thread" });
    const lumyn = new Lumyn({ policy: mustLoad(STARTER_POLICY), store });
    const templates = starterRequests(4096, 9).map(asJsonValue) as JsonObject[];
    const started = performance.now();
    let withMemory = 0;
    const ids: string[] = [];
    for (let offset = 0; offset < size; offset += 512) {
      const batch = Array.from({ length: Math.min(512, size - offset) }, (_, i) =>
        lumyn.decide({
          ...(templates[(offset + i) % 4096] as JsonObject),
          request_id: `audit-${offset + i}`,
        }),
      );
      for (const decided of await Promise.all(batch)) {
        if (!decided.ok || decided.value.status !== "stored")
          throw new Error("bench: a decision was not stored");
        if (decided.value.record.determinism.memory !== undefined) withMemory++;
        if (ids.length < LABELLED) ids.push(decided.value.record.decision_id);
      }
      if (offset === 0) for (const id of ids) await lumyn.label(id, "failure", { summary: "bench" });
    }
    log(
      `built a history of ${size} decisions and ${LABELLED} labels in ${((performance.now() - started) / 1e3).toFixed(1)} s`,
    );
    return { dir, store, entries: size + LABELLED, withMemory };
  })();
  return shared;
}

export async function closeHistory(): Promise<void> {
  if (!shared) return;
  const { store, dir } = await shared;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  shared = undefined;
}

function reps(config: Config): number {
  return config.quick ? 3 : 5;
}

/** Scenario 9: `lumyn verify`'s walk over the whole chain. */
export async function scenarioVerify(config: Config): Promise<ScenarioResult> {
  const { store, entries } = await history(config);
  await verifyStoreChain(store);
  const measured: Rep[] = [];
  for (let r = 0; r < reps(config); r++) {
    const t0 = performance.now();
    const report = await verifyStoreChain(store);
    const seconds = (performance.now() - t0) / 1e3;
    if (report.broken || report.length !== entries)
      throw new Error(`bench: the chain does not verify: ${report.broken?.message}`);
    measured.push({
      ops: entries,
      seconds,
      opsPerSec: entries / seconds,
      p50Ns: (seconds * 1e9) / entries,
      p99Ns: Number.NaN,
    });
  }
  const summary = summarize(measured);
  return {
    id: 9,
    name: `verify: the audit chain, ${entries} entries`,
    latency:
      "p50 is the mean time per entry of the median walk; the walk reads every row, rebuilds its bytes and hashes it",
    target: ">= 100k entries/s",
    checks: [{ label: ">= 100k entries/s", pass: summary.opsPerSec >= 1e5 }],
    pass: summary.opsPerSec >= 1e5,
    opsPerSec: summary.opsPerSec,
    p50Ns: summary.p50Ns,
    p99Ns: Number.NaN,
    repOpsPerSec: measured.map((rep) => rep.opsPerSec),
    notes: [
      `${reps(config)} full walks after one warm-up walk; ${entries} entries (${entries - LABELLED} decisions, ${LABELLED} label events)`,
    ],
  };
}

/** A candidate for the backtest: the starter policy with a lower escalation limit. */
function candidatePolicy(): Policy {
  const changed = STARTER_POLICY.replace(/amount_usd_gt: 200\b/g, "amount_usd_gt: 150");
  if (changed === STARTER_POLICY) throw new Error("bench: the candidate policy did not change");
  return mustLoad(changed);
}

/** Scenario 10: backtest re-decisions, streamed from the store. */
export async function scenarioBacktest(config: Config): Promise<ScenarioResult> {
  const { store, withMemory } = await history(config);
  const candidate = candidatePolicy();
  const run = async (): Promise<{ rep: Rep; changed: number }> => {
    const tally = new BacktestTally();
    const t0 = performance.now();
    const count = await store.decisions.scan({}, (json) => {
      const redecided = redecideStored(json, candidate);
      if (redecided) tally.add(redecided);
      else tally.skip();
    });
    const seconds = (performance.now() - t0) / 1e3;
    const report = tally.report();
    if (report.unreadable > 0 || report.total !== count) throw new Error("bench: backtest skipped records");
    return {
      rep: {
        ops: count,
        seconds,
        opsPerSec: count / seconds,
        p50Ns: (seconds * 1e9) / count,
        p99Ns: Number.NaN,
      },
      changed: report.changed,
    };
  };
  await run();
  const measured: { rep: Rep; changed: number }[] = [];
  for (let r = 0; r < reps(config); r++) measured.push(await run());
  const summary = summarize(measured.map((m) => m.rep));
  const total = measured[0]?.rep.ops ?? 0;
  return {
    id: 10,
    name: `backtest: re-decide ${total} stored decisions under a candidate`,
    latency:
      "p50 is the mean time per decision of the median run: read, parse, re-evaluate with recorded memory, tally",
    target: ">= 50k/s",
    checks: [{ label: ">= 50k/s", pass: summary.opsPerSec >= 5e4 }],
    pass: summary.opsPerSec >= 5e4,
    opsPerSec: summary.opsPerSec,
    p50Ns: summary.p50Ns,
    p99Ns: Number.NaN,
    repOpsPerSec: measured.map((m) => m.rep.opsPerSec),
    notes: [
      `${reps(config)} runs after one warm-up run; ${withMemory} of the records carry a memory snapshot; ${measured[0]?.changed ?? 0} decisions change under the candidate (escalation limit 200 → 150)`,
    ],
  };
}

/** The store and gateway as they were before the audit chain: the commit before the one that added it. */
async function storeBeforeChain(): Promise<{
  Lumyn: typeof Lumyn;
  SqliteStore: typeof SqliteStore;
  /** That code's own policy loader: its gateway takes its own kind of policy. */
  loadPolicy: typeof loadPolicy;
  commit: string;
  dir: string;
}> {
  const root = join(import.meta.dirname, "..");
  const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
  const added = git("log", "--diff-filter=A", "--format=%H", "--", "src/audit/chain.ts").split("\n").at(-1);
  if (!added) throw new Error("bench: cannot find the commit that added the audit chain");
  const commit = git("rev-parse", "--short", `${added}^`);
  const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-before-chain-"));
  execFileSync("sh", ["-c", `git archive ${commit} src | tar -x -C '${dir}'`], { cwd: root });
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  const lumyn = await import(pathToFileURL(join(dir, "src/lumyn.ts")).href);
  const sqlite = await import(pathToFileURL(join(dir, "src/store/sqlite/sqlite-store.ts")).href);
  const policy = await import(pathToFileURL(join(dir, "src/policy/policy.ts")).href);
  return { Lumyn: lumyn.Lumyn, SqliteStore: sqlite.SqliteStore, loadPolicy: policy.loadPolicy, commit, dir };
}

/**
 * Scenario 11: durable `Lumyn.decide()` (inline writer, many in flight) with the chain, beside the same
 * without it (the code before the chain), repetitions interleaved A/B/B/A in one process.
 */
export async function scenarioChainCost(config: Config): Promise<ScenarioResult> {
  const before = await storeBeforeChain();
  const templates = starterRequests(256, 4).map(asJsonValue) as JsonObject[];
  const runId = Date.now().toString(36);
  let seq = 0;
  // Disk latency swings with whatever else the machine does: more, shorter pairs let the median ratio see past it.
  const repMs = config.storeRepMs / 2;
  const pairs = config.storeReps * 2;
  type Side = { lumyn: { decide: Lumyn["decide"]; close(): Promise<void> }; dir: string };
  const open = (code: {
    Lumyn: typeof Lumyn;
    SqliteStore: typeof SqliteStore;
    loadPolicy: typeof loadPolicy;
  }): Side => {
    const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-chain-"));
    const store = code.SqliteStore.open(join(dir, "lumyn.db"));
    const policy = code.loadPolicy(STARTER_POLICY);
    if (!policy.ok)
      throw new Error(`bench: the starter policy does not load: ${policy.problems[0]?.message}`);
    return { lumyn: new code.Lumyn({ policy: policy.value, store } as never), dir };
  };
  const chained = open({ Lumyn, SqliteStore, loadPolicy });
  const plain = open(before);
  const run = async (side: Side, durationMs: number): Promise<Rep> => {
    let done = 0;
    const stopAt = performance.now() + durationMs;
    const worker = async (): Promise<void> => {
      while (performance.now() < stopAt) {
        const n = seq++;
        const decided = await side.lumyn.decide({
          ...(templates[n & 255] as JsonObject),
          request_id: `chain-${runId}-${n}`,
        });
        if (!decided.ok || decided.value.status !== "stored")
          throw new Error("bench: a decision was not stored");
        done++;
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: config.storeConcurrency }, worker));
    const seconds = (performance.now() - t0) / 1e3;
    return { ops: done, seconds, opsPerSec: done / seconds, p50Ns: Number.NaN, p99Ns: Number.NaN };
  };
  try {
    await run(chained, config.storeWarmupMs);
    await run(plain, config.storeWarmupMs);
    const withChain: Rep[] = [];
    const without: Rep[] = [];
    for (let r = 0; r < pairs; r++) {
      const order: [Side, Rep[]][] =
        r % 2 === 0
          ? [
              [chained, withChain],
              [plain, without],
            ]
          : [
              [plain, without],
              [chained, withChain],
            ];
      for (const [side, into] of order) into.push(await run(side, repMs));
    }
    const ratios = withChain.map((rep, i) => rep.opsPerSec / (without[i] as Rep).opsPerSec);
    const a = summarize(withChain);
    const b = summarize(without);
    const ratio = median(ratios);
    return {
      id: 11,
      name: `chain cost: Lumyn.decide() + SQLite, inline writer, ${config.storeConcurrency} in flight`,
      latency: "throughput only; the chain's share is the ratio with the store before the chain",
      target: "report (chain costs <= 25%)",
      checks: [{ label: "chained >= 0.75x of unchained", pass: ratio >= 0.75 }],
      pass: ratio >= 0.75,
      opsPerSec: a.opsPerSec,
      p50Ns: Number.NaN,
      p99Ns: Number.NaN,
      repOpsPerSec: withChain.map((rep) => rep.opsPerSec),
      baseline: {
        name: `without the chain (commit ${before.commit})`,
        opsPerSec: b.opsPerSec,
        p50Ns: Number.NaN,
        p99Ns: Number.NaN,
        repOpsPerSec: without.map((rep) => rep.opsPerSec),
        ratio,
        ratioLabel: "ratio chained/unchained throughput",
        ratios,
      },
      notes: [
        `${pairs} interleaved repetitions of ~${repMs} ms per side (ABBA order) after warm-ups; the ratio is chained/unchained throughput, per pair`,
      ],
    };
  } finally {
    await chained.lumyn.close();
    await plain.lumyn.close();
    for (const dir of [chained.dir, plain.dir, before.dir]) rmSync(dir, { recursive: true, force: true });
  }
}
