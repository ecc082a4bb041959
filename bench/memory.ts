/**
 * Memory scenarios: nearest-neighbour search over labelled cases (one large scope, and many small ones),
 * recall against an exhaustive comparison, memory held per case, and start-up from the store.
 *
 * Fingerprints here are synthetic (17 non-zero coordinates of 128, like a typical request's): search cost
 * depends on their shape, not their meaning, and building a million real ones would take most of a minute.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Label } from "../src/domain/memory-case.ts";
import { DIMENSIONS, similarity } from "../src/memory/fingerprint.ts";
import { MemoryIndex } from "../src/memory/index.ts";
import { readMemory } from "../src/memory/load.ts";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.ts";
import { percentiles, prng, speedupPair } from "./harness.ts";
import { type Config, formatTime, log, type ScenarioResult } from "./scenarios.ts";

const NON_ZERO = 17;

/** Cases come from a few thousand "profiles" plus noise, so that neighbours exist as in real traffic. */
function vectors(count: number, random: () => number): Int8Array[] {
  const profiles = Array.from({ length: 4096 }, () => {
    const vector = new Int8Array(DIMENSIONS);
    for (let i = 0; i < NON_ZERO; i++)
      vector[Math.floor(random() * DIMENSIONS)] = Math.round((random() * 2 - 1) * 60);
    return vector;
  });
  return Array.from({ length: count }, () => {
    const vector = (profiles[Math.floor(random() * profiles.length)] as Int8Array).slice();
    for (let i = 0; i < 3; i++)
      vector[Math.floor(random() * DIMENSIONS)] = Math.round((random() * 2 - 1) * 40);
    return vector;
  });
}

const idOf = (i: number): string => `01M8${String(i).padStart(22, "0")}`;

function timeSearches(
  index: MemoryIndex,
  queries: { tenant: string; vector: Int8Array }[],
): { p50: number; p99: number; perSecond: number } {
  for (const q of queries.slice(0, 50)) index.search(q.tenant, "support.refund", q.vector, 5);
  // Start from a clean heap: garbage of what ran before (building the cases, other scenarios) is not search.
  (globalThis as { gc?: () => void }).gc?.();
  const times: number[] = [];
  const started = performance.now();
  for (const q of queries) {
    const t0 = performance.now();
    index.search(q.tenant, "support.refund", q.vector, 5);
    times.push(performance.now() - t0);
  }
  const [p50, p99] = percentiles(times, [50, 99]) as [number, number];
  return { p50, p99, perSecond: queries.length / ((performance.now() - started) / 1000) };
}

function scenario(
  id: number,
  name: string,
  timing: { p50: number; p99: number; perSecond: number },
  target: string,
  pass: boolean,
  notes: string[],
): ScenarioResult {
  return {
    id,
    name,
    opsPerSec: timing.perSecond,
    p50Ns: timing.p50 * 1e6,
    p99Ns: timing.p99 * 1e6,
    repOpsPerSec: [timing.perSecond],
    latency: "per search (top 5 failures and top 5 successes)",
    target,
    checks: [{ label: target, pass }],
    pass,
    notes,
  };
}

/** Scenario 7: 100k labelled cases in one scope; recall@5 against an exhaustive comparison. */
export function scenarioMemoryOneScope(config: Config): ScenarioResult {
  const random = prng(11);
  const count = config.quick ? 20_000 : 100_000;
  const cases = vectors(count, random);
  const labels: Label[] = cases.map(() => (random() < 0.3 ? "failure" : "success"));
  const index = new MemoryIndex();
  cases.forEach((vector, i) => {
    index.upsert({
      decisionId: idOf(i),
      tenantId: "acme",
      actionType: "support.refund",
      label: labels[i] as Label,
      vector,
    });
  });
  const queries = vectors(config.quick ? 200 : 1000, prng(12)).map((vector) => ({
    tenant: "acme",
    vector,
  }));
  const timing = timeSearches(index, queries);
  let found = 0;
  let expected = 0;
  for (const { vector } of queries.slice(0, 50)) {
    const result = index.search("acme", "support.refund", vector, 5);
    for (const label of ["failure", "success"] as const) {
      const exact = cases
        .map((c, i) => ({ i, score: similarity(vector, c) }))
        .filter(({ i }) => labels[i] === label)
        .sort((a, b) => b.score - a.score || a.i - b.i)
        .slice(0, 5)
        .map(({ i }) => idOf(i));
      const got = new Set(result[label].map((hit) => hit.decisionId));
      expected += exact.length;
      found += exact.filter((id) => got.has(id)).length;
    }
  }
  const recall = found / expected;
  let call = 0;
  const kernels = speedupPair("similarity-kernel", 50, () => {
    const query = queries[call++ >> 1] as { vector: Int8Array };
    index.search("acme", "support.refund", query.vector, 5);
  });
  const pass = timing.p99 <= 2 && recall >= 0.99;
  return scenario(
    7,
    `memory top-5, ${count / 1000}k cases in one scope`,
    timing,
    "p99 <= 2 ms, recall@5 >= 0.99",
    pass,
    [
      `recall@5 against an exhaustive comparison: ${recall.toFixed(4)} (${found}/${expected}, 50 queries, both labels)`,
      "exact search: a WebAssembly SIMD kernel over fingerprints stored by column, only the query's non-zero coordinates read",
      `its plain twin in JavaScript (LUMYN_PLAIN=similarity-kernel): ${formatTime(kernels.plain)} a search, the SIMD kernel ${formatTime(kernels.fast)} (medians of 50 searches each, interleaved)`,
    ],
  );
}

/** Scenario 8: 1M labelled cases over 1,000 scopes; memory per case; start-up from the SQLite store. */
export async function scenarioMemoryManyScopes(config: Config): Promise<ScenarioResult> {
  const random = prng(21);
  const scopes = 1000;
  const count = config.quick ? 100_000 : 1_000_000;
  const cases = vectors(count, random);
  const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-memory-"));
  try {
    const path = join(dir, "lumyn.db");
    await SqliteStore.open(path).close();
    const db = new DatabaseSync(path);
    db.exec("PRAGMA foreign_keys = OFF; BEGIN");
    const insert = db.prepare(
      "INSERT INTO memory_cases (decision_id, tenant_id, action_type, label, summary, severity, projection, fingerprint, labelled_at) VALUES (?, ?, 'support.refund', ?, '', NULL, 'lumyn-fingerprint-v1', ?, '2026-01-01T00:00:00Z')",
    );
    cases.forEach((vector, i) => {
      insert.run(
        idOf(i),
        `tenant-${i % scopes}`,
        random() < 0.3 ? "failure" : "success",
        new Uint8Array(vector.buffer),
      );
    });
    db.exec("COMMIT");
    db.close();
    log(`memory: ${count} cases written`);

    (globalThis as { gc?: () => void }).gc?.();
    const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const started = performance.now();
    const store = SqliteStore.open(path);
    const index = await readMemory(store.memory);
    const startupMs = performance.now() - started;
    await store.close();
    (globalThis as { gc?: () => void }).gc?.();
    // WebAssembly memory (where the fingerprints are) is not in heapUsed or arrayBuffers: add it.
    const bytesPerCase =
      (process.memoryUsage().heapUsed +
        process.memoryUsage().arrayBuffers +
        index.reservedBytes -
        heapBefore) /
      count;

    const queries = vectors(config.quick ? 500 : 2000, prng(22)).map((vector, i) => ({
      tenant: `tenant-${i % scopes}`,
      vector,
    }));
    const timing = timeSearches(index, queries);
    const scaledStartup = startupMs * (1_000_000 / count);
    const pass = timing.p99 <= 1 && bytesPerCase <= 512 && scaledStartup <= 5000;
    return scenario(
      8,
      `memory top-5, ${count / 1e6}M cases in ${scopes} scopes`,
      timing,
      "p99 <= 1 ms, <= 512 B/case, start-up <= 5 s",
      pass,
      [
        `memory held per labelled case: ${bytesPerCase.toFixed(0)} bytes (heap and array buffers after loading, ${(globalThis as { gc?: unknown }).gc ? "after GC" : "without forced GC"})`,
        `start-up: ${startupMs.toFixed(0)} ms to read ${count} cases from SQLite into the index${count < 1_000_000 ? ` (${scaledStartup.toFixed(0)} ms scaled to 1M)` : ""}`,
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
