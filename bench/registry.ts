/**
 * Scenarios 15 and 16: the policy registry and velocity conditions.
 *
 * 15. Policy propagation: three `lumyn serve --redis` processes on one workspace; the default policy is
 *     activated (alternating between two versions) and announced on Redis; each server logs the moment it
 *     switched. The figure is, per activation, the time until the last of the three switched.
 * 16. Velocity-condition cost per decision: the time to measure a policy's velocity conditions for one
 *     request over a store holding a day of history, by SQL on the store and by Redis counters.
 *
 * Both run their own throw-away `redis-server` (no persistence) on a free port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { STARTER_POLICY } from "../src/assets/starter-policy.ts";
import type { JsonObject } from "../src/core/json.ts";
import { DEFAULT_POLICY_TENANT } from "../src/domain/policy-registry.ts";
import { decide } from "../src/engine/decide.ts";
import { measureVelocity } from "../src/engine/velocity.ts";
import { Lumyn } from "../src/lumyn.ts";
import { loadPolicy } from "../src/policy/policy.ts";
import { activatePolicy, publishPolicy } from "../src/registry/policy-registry.ts";
import { announcePolicyChange, type SyncLog } from "../src/registry/policy-sync.ts";
import { RedisVelocityCounters } from "../src/registry/redis-counters.ts";
import { TestRedis } from "../src/testing/redis.ts";
import { elapsedNs, median, nowNs, percentiles, sleep } from "./harness.ts";
import { starterRequests } from "./requests.ts";
import { type Config, log, onAllCpus, type ScenarioResult } from "./scenarios.ts";

const CLI = fileURLToPath(new URL("../dist/bin/main.js", import.meta.url));
const SERVERS = 3;

async function throwAwayRedis(): Promise<TestRedis> {
  const redis = await TestRedis.start();
  if (typeof redis === "string") throw new Error(`scenarios 15-16 need redis-server: ${redis}`);
  return redis;
}

interface Served {
  readonly child: ChildProcess;
  /** `policy switched` log lines seen so far: when (ms since the epoch) and to which hash. */
  readonly switches: { time: number; hash: string }[];
}

function serve(workspace: string, redisUrl: string): Promise<Served> {
  const child = spawn(
    process.execPath,
    [CLI, "serve", "--port", "0", "-w", workspace, "--no-auth", "--redis", redisUrl],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const served: Served = { child, switches: [] };
  let buffered = "";
  child.stdout?.on("data", (chunk) => {
    buffered += String(chunk);
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.includes('"policy switched"')) continue;
      const entry = JSON.parse(line) as { time: number; policy_hash: string };
      served.switches.push({ time: entry.time, hash: entry.policy_hash });
    }
  });
  return new Promise((resolve, reject) => {
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
      if (/serving http:\/\//.test(stderr)) resolve(served);
    });
    child.once("exit", (code) => reject(new Error(`lumyn serve exited with ${code}: ${stderr}`)));
  });
}

async function stop(served: Served): Promise<void> {
  const exited = new Promise((resolve) => served.child.once("exit", resolve));
  served.child.kill("SIGTERM");
  await exited;
}

/** Scenario 15: time from an activation until the last of three servers decides under it (Redis). */
export async function scenarioPolicyPropagation(config: Config): Promise<ScenarioResult> {
  const activations = config.quick ? 10 : 40;
  const { value: times, cpus } = await onAllCpus(async () => {
    const redis = await throwAwayRedis();
    const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-registry-"));
    const workspace = join(dir, "ws");
    const servers: Served[] = [];
    try {
      const opened = await Lumyn.open({ workspace });
      if (!opened.ok) throw new Error("cannot open the workspace");
      const store = opened.value.store;
      const versions: string[] = [];
      for (const version of ["A", "B"]) {
        const published = await publishPolicy(
          store,
          DEFAULT_POLICY_TENANT,
          STARTER_POLICY.replace(/policy_version: .*/, `policy_version: "${version}"`),
          { source: { by: "bench" } },
        );
        if (!published.ok) throw new Error("cannot publish");
        versions.push(published.value.policyHash);
      }
      await activatePolicy(store, DEFAULT_POLICY_TENANT, versions[0] as string, { by: "bench" });
      for (let i = 0; i < SERVERS; i++) servers.push(await serve(workspace, redis.url));
      const times: number[] = [];
      for (let n = 0; n < activations; n++) {
        const target = versions[(n + 1) % 2] as string;
        const seen = servers.map((server) => server.switches.length);
        const started = Date.now();
        const change = await activatePolicy(store, DEFAULT_POLICY_TENANT, target, { by: "bench" });
        if (!change.ok) throw new Error("cannot activate");
        await announcePolicyChange(redis.url, change.value);
        const deadline = Date.now() + 10_000;
        while (servers.some((server, i) => server.switches.length <= (seen[i] as number))) {
          if (Date.now() > deadline) throw new Error("a server did not switch within 10 s");
          await sleep(5);
        }
        const last = Math.max(...servers.map((server, i) => server.switches[seen[i] as number]?.time ?? 0));
        times.push(last - started);
        await sleep(50);
      }
      await opened.value.close();
      return times;
    } finally {
      for (const server of servers) await stop(server);
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const [p50, p99, max] = percentiles(times, [50, 99, 100]) as [number, number, number];
  log(`  propagation to ${SERVERS} servers (ms): p50 ${p50}, p99 ${p99}, max ${max}`);
  const checks = [{ label: "p99 <= 1 s", pass: p99 <= 1_000 }];
  return {
    id: 15,
    name: `policy propagation to ${SERVERS} servers (Redis announce)`,
    opsPerSec: 1_000 / Math.max(p50, 1),
    p50Ns: p50 * 1e6,
    p99Ns: p99 * 1e6,
    repOpsPerSec: [],
    latency:
      "per activation: from before the store write to the last server's 'policy switched' log line (1 ms resolution)",
    target: checks.map((check) => check.label).join(", "),
    checks,
    pass: checks.every((check) => check.pass),
    notes: [
      `${activations} activations of the default policy, alternating two versions, each written to the store and announced; ops/s is 1/p50; ran on ${cpus}`,
      `per activation (ms): ${times.join(" ")}`,
    ],
  };
}

const VELOCITY_POLICY = STARTER_POLICY.replace(
  /\nrules:/,
  `
velocity:
  subject_denials_1h: {count: decisions, where: {verdict: [DENY]}, group_by: subject.id, window: 1h}
  tenant_refunds_today: {sum: amount_usd, where: {action_type: [support.refund]}, window: today}
rules:
  - id: SUBJECT_VELOCITY
    stage: REQUIREMENTS
    if: {velocity.subject_denials_1h: {gt: 3}}
    then: {verdict: DENY, reason_codes: [SUBJECT_VELOCITY]}
  - id: DAILY_REFUND_LIMIT
    stage: ESCALATIONS
    if: {velocity.tenant_refunds_today: {gt: 50000}}
    then: {verdict: ESCALATE, reason_codes: [DAILY_REFUND_LIMIT]}`,
);

const quiet: SyncLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Scenario 16: what measuring velocity conditions costs a decision, SQL on the store vs Redis counters. */
export async function scenarioVelocityCost(config: Config): Promise<ScenarioResult> {
  const history = config.quick ? 5_000 : 20_000;
  const asks = config.quick ? 500 : 2_000;
  const reps = config.quick ? 2 : 3;
  const redis = await throwAwayRedis();
  const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-velocity-"));
  try {
    const policyPath = join(dir, "policy.yml");
    writeFileSync(policyPath, VELOCITY_POLICY);
    const loaded = loadPolicy(VELOCITY_POLICY);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const policy = loaded.value;
    const opened = await Lumyn.open({ workspace: join(dir, "ws"), policyPath });
    if (!opened.ok) throw new Error("cannot open the workspace");
    const store = opened.value.store;
    // A day of history for one tenant, 100 subjects, ending now; the counters started before it.
    const end = Date.now();
    const day = 86_400_000;
    const counters = await RedisVelocityCounters.connect(redis.url, quiet, () => end - day - 60_000);
    const requests = starterRequests(history, 16) as JsonObject[];
    for (let start = 0; start < history; start += 512) {
      const batch = requests.slice(start, start + 512).map((request, k) => {
        const i = start + k;
        const decided = decide(
          { ...request, request_id: `h-${i}`, subject: { type: "agent", id: `agent-${i % 100}` } },
          policy,
          { now: new Date(end - day + Math.floor((i * day) / history)) },
        );
        if (!decided.ok) throw new Error("cannot decide the history");
        return decided.value.record;
      });
      await Promise.all(batch.map((record) => store.decisions.put(record)));
      await Promise.all(batch.map((record) => counters.observe(policy.model.velocity, "acme", record)));
    }
    log(`  ${history} decisions of history stored and counted`);
    const now = new Date(end);
    const timeOne = async (useCounters: boolean): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < asks; i++) {
        const request = {
          ...(requests[i] as JsonObject),
          subject: { type: "agent", id: `agent-${i % 100}` },
        };
        const t0 = nowNs();
        await measureVelocity(
          policy.model.velocity,
          "acme",
          request,
          now,
          store.velocity,
          useCounters ? counters : undefined,
        );
        times.push(elapsedNs(t0));
      }
      return times;
    };
    const sample = { ...(requests[0] as JsonObject), subject: { type: "agent", id: "agent-0" } };
    const bySql = await measureVelocity(policy.model.velocity, "acme", sample, now, store.velocity);
    const byRedis = await measureVelocity(
      policy.model.velocity,
      "acme",
      sample,
      now,
      store.velocity,
      counters,
    );
    // Sums may differ in the last bits: the two add the same amounts in different orders.
    const agree = Object.entries(bySql).every(
      ([name, value]) =>
        Math.abs(value - (byRedis[name] ?? Number.NaN)) <= 1e-9 * Math.max(1, Math.abs(value)),
    );
    if (!agree)
      throw new Error(`SQL and Redis disagree: ${JSON.stringify(bySql)} vs ${JSON.stringify(byRedis)}`);
    await timeOne(false);
    await timeOne(true);
    const sql: [number, number][] = [];
    const red: [number, number][] = [];
    for (let r = 0; r < reps; r++) {
      for (const [useCounters, out] of [
        [false, sql],
        [true, red],
      ] as const) {
        const [p50, p99] = percentiles(await timeOne(useCounters), [50, 99]) as [number, number];
        out.push([p50, p99]);
        log(
          `  ${useCounters ? "Redis" : "SQL"}: p50 ${(p50 / 1e3).toFixed(0)} µs, p99 ${(p99 / 1e3).toFixed(0)} µs`,
        );
      }
    }
    // Each condition alone by SQL, to show which one costs what.
    const alone: string[] = [];
    for (const spec of policy.model.velocity) {
      const times: number[] = [];
      for (let i = 0; i < asks / 4; i++) {
        const request = {
          ...(requests[i] as JsonObject),
          subject: { type: "agent", id: `agent-${i % 100}` },
        };
        const t0 = nowNs();
        await measureVelocity([spec], "acme", request, now, store.velocity);
        times.push(elapsedNs(t0));
      }
      alone.push(`${spec.name} ${((percentiles(times, [50])[0] as number) / 1e3).toFixed(0)} µs`);
    }
    log(`  SQL per condition alone, p50: ${alone.join(", ")}`);
    counters.close();
    await opened.value.close();
    const sqlP50 = median(sql.map(([p50]) => p50));
    const redisP50 = median(red.map(([p50]) => p50));
    return {
      id: 16,
      name: "velocity conditions per decision: SQL (SQLite)",
      opsPerSec: 1e9 / sqlP50,
      p50Ns: sqlP50,
      p99Ns: median(sql.map(([, p99]) => p99)),
      repOpsPerSec: sql.map(([p50]) => 1e9 / p50),
      latency: "per decision: measuring its two velocity conditions (sequential, one at a time)",
      target: "report only",
      checks: [],
      pass: true,
      baseline: {
        name: "the same by Redis counters",
        opsPerSec: 1e9 / redisP50,
        p50Ns: redisP50,
        p99Ns: median(red.map(([, p99]) => p99)),
        repOpsPerSec: red.map(([p50]) => 1e9 / p50),
        ratio: redisP50 / sqlP50,
        ratioLabel: "ratio Redis/SQL p50",
        ratios: red.map(([p50], i) => p50 / (sql[i]?.[0] ?? p50)),
      },
      notes: [
        `${history} decisions over the last day, one tenant, 100 subjects; two conditions: DENY count of the subject in the last hour, and the tenant's refunds (amount_usd) today; ${asks} requests per repetition after a warm-up of as many, ${reps} repetitions, medians reported`,
        `values agree: ${JSON.stringify(bySql)}`,
        `SQL per condition alone, p50: ${alone.join(", ")}`,
      ],
    };
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
