/**
 * Scenarios 12 and 13: the HTTP service under load. `lumyn serve` (the built CLI, auth on, the embedded store
 * with its writer thread, logging at info to a file) runs in its own process; a load generator (load.ts)
 * drives it from another over loopback, so client and server compete for the machine's cores.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median } from "./harness.ts";
import { fire, type Load, type LoadResult, latencyNote, loadGenerator } from "./load.ts";
import { starterRequests } from "./requests.ts";
import { type Config, log, onAllCpus, type ScenarioResult } from "./scenarios.ts";

const CLI = fileURLToPath(new URL("../dist/bin/main.js", import.meta.url));
const CONNECTIONS = 32;

interface Service {
  readonly url: string;
  readonly key: string;
  readonly dir: string;
  readonly child: ChildProcess;
}

async function startService(): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-serve-"));
  const workspace = join(dir, "ws");
  const created = spawnSync(
    process.execPath,
    [CLI, "keys", "create", "--scopes", "decide,read", "-w", workspace],
    {
      encoding: "utf8",
    },
  );
  if (created.status !== 0) throw new Error(`keys create failed: ${created.stderr}`);
  const logFile = openSync(join(dir, "serve.log"), "w");
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "-w", workspace], {
    stdio: ["ignore", logFile, "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
      const found = /serving (http:\/\/\S+)/.exec(stderr)?.[1];
      if (found) resolve(found);
    });
    child.once("exit", (code) => reject(new Error(`lumyn serve exited with ${code}: ${stderr}`)));
  });
  return { url, key: created.stdout.trim(), dir, child };
}

async function stopService(service: Service): Promise<void> {
  const exited = new Promise((resolve) => service.child.once("exit", resolve));
  service.child.kill("SIGTERM");
  await exited;
  rmSync(service.dir, { recursive: true, force: true });
}

/** What Node names its threads, as the report names them. */
const THREAD_ROLES: Readonly<Record<string, string>> = {
  MainThread: "event loop",
  WorkerThread: "writer thread",
  V8Worker: "V8 helpers (GC, compiler)",
  "libuv-worker": "libuv pool",
};

/** CPU ticks used so far by each kind of thread of a process, from /proc (Linux); undefined elsewhere. */
function cpuTicksByRole(pid: number | undefined): Map<string, number> | undefined {
  if (pid === undefined) return undefined;
  try {
    const ticks = new Map<string, number>();
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      // utime and stime: fields 14 and 15, the 12th and 13th after the closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const role = THREAD_ROLES[name] ?? "other";
      ticks.set(role, (ticks.get(role) ?? 0) + Number(fields[11]) + Number(fields[12]));
    }
    return ticks;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS_PER_SECOND = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** Runs a warm-up, then repetitions; reports the median repetition's throughput and latencies. */
async function measure(
  config: Config,
  id: number,
  name: string,
  target: { label: string; opsPerSec: number },
  prepare: (service: Service) => Promise<Load>,
): Promise<ScenarioResult> {
  const { value, cpus } = await onAllCpus(async () => {
    const service = await startService();
    try {
      const load = await prepare(service);
      await fire(service, load, CONNECTIONS, config.quick ? 1 : 3);
      const reps: LoadResult[] = [];
      const before = cpuTicksByRole(service.child.pid);
      for (let r = 0; r < (config.quick ? 2 : 3); r++) {
        const rep = await fire(service, load, CONNECTIONS, config.quick ? 2 : 5);
        log(
          `  ${name}: ${Math.round(rep.requestsPerSec)}/s, p50 ${rep.p50Ms} ms, p99 ${rep.p99Ms} ms, max ${rep.maxMs} ms, errors ${rep.errors}, non-2xx ${rep.non2xx} (${rep.generator})`,
        );
        reps.push(rep);
      }
      const after = cpuTicksByRole(service.child.pid);
      const requests = reps.reduce((n, rep) => n + rep.requests, 0);
      const cpu =
        before && after
          ? [...after]
              .map(([role, ticks]) => ({
                role,
                micros: ((ticks - (before.get(role) ?? 0)) / CLOCK_TICKS_PER_SECOND / requests) * 1e6,
              }))
              .filter(({ micros }) => micros >= 0.5)
              .map(({ role, micros }) => `${role} ${micros.toFixed(0)} µs`)
              .join(", ")
          : "not measured (no /proc)";
      return { reps, cpu };
    } finally {
      await stopService(service);
    }
  });
  const { reps, cpu: serverCpu } = value;
  const opsPerSec = median(reps.map((rep) => rep.requestsPerSec));
  const p99Ms = median(reps.map((rep) => rep.p99Ms));
  const failures = reps.reduce((n, rep) => n + rep.errors + rep.non2xx, 0);
  const checks = [
    { label: `>= ${target.label}`, pass: opsPerSec >= target.opsPerSec },
    { label: "0 errors", pass: failures === 0 },
    ...(id === 12 ? [{ label: "p99 <= 10 ms", pass: p99Ms <= 10 }] : []),
  ];
  return {
    id,
    name,
    opsPerSec,
    p50Ns: median(reps.map((rep) => rep.p50Ms)) * 1e6,
    p99Ns: p99Ms * 1e6,
    repOpsPerSec: reps.map((rep) => rep.requestsPerSec),
    latency: latencyNote(),
    target: checks.map((check) => check.label).join(", "),
    checks,
    pass: checks.every((check) => check.pass),
    notes: [
      `${CONNECTIONS} connections from ${loadGenerator()} in a separate process over loopback, ${reps.length} repetitions of ${(reps[0]?.seconds ?? 0).toFixed(1)} s after a warm-up; ran on ${cpus}`,
      `max latency per repetition (ms): ${reps.map((rep) => rep.maxMs).join(" ")}; errors ${reps.reduce((n, rep) => n + rep.errors, 0)}, non-2xx ${reps.reduce((n, rep) => n + rep.non2xx, 0)}`,
      `server CPU per request over the repetitions, by thread: ${serverCpu}`,
    ],
  };
}

/** Scenario 12: POST /v1/decide, each request a new request_id, every answer durable before it is sent. */
export function scenarioServeDecide(config: Config): Promise<ScenarioResult> {
  return measure(
    config,
    12,
    `HTTP POST /v1/decide (auth, SQLite FULL sync), ${CONNECTIONS} connections`,
    { label: "10k/s", opsPerSec: 10_000 },
    async () => ({ kind: "decide" }),
  );
}

/** Scenario 13: GET /v1/decisions/{id} over 256 stored decisions. */
export function scenarioServeRead(config: Config): Promise<ScenarioResult> {
  return measure(
    config,
    13,
    `HTTP GET /v1/decisions/{id} (auth), ${CONNECTIONS} connections`,
    { label: "20k/s", opsPerSec: 20_000 },
    async (service) => {
      const ids: string[] = [];
      for (const request of starterRequests(256, 4)) {
        const response = await fetch(`${service.url}/v1/decide`, {
          method: "POST",
          headers: { authorization: `Bearer ${service.key}`, "content-type": "application/json" },
          body: JSON.stringify(request),
        });
        ids.push(((await response.json()) as { decision_id: string }).decision_id);
      }
      return { kind: "read", ids };
    },
  );
}
