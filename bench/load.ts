/**
 * The load generator of the HTTP scenarios. On a two-core machine the client shares the cores with the
 * server, so its own cost per request is part of what is measured: wrk (C) is used when it is installed,
 * since it spends about half what autocannon (JavaScript) does per request; otherwise autocannon.
 * `LUMYN_BENCH_LOAD=autocannon` chooses autocannon even when wrk is there.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { starterRequests } from "./requests.ts";

export type Generator = "wrk" | "autocannon";

export interface Target {
  readonly url: string;
  readonly key: string;
}

/** New decisions (each request a new request_id), or reads of stored ones. */
export type Load = { readonly kind: "decide" } | { readonly kind: "read"; readonly ids: readonly string[] };

export interface LoadResult {
  readonly generator: Generator;
  readonly requestsPerSec: number;
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  /** Answers with a status of 400 or more (wrk) or outside 2xx (autocannon). */
  readonly non2xx: number;
}

const WRK_DIR = fileURLToPath(new URL("./wrk", import.meta.url));
let generator: Generator | undefined;
let runs = 0;

export function loadGenerator(): Generator {
  generator ??=
    process.env.LUMYN_BENCH_LOAD !== "autocannon" && spawnSync("wrk", ["--version"]).error === undefined
      ? "wrk"
      : "autocannon";
  return generator;
}

/** How the latency figures were taken, for the report. */
export function latencyNote(): string {
  return loadGenerator() === "wrk"
    ? "per HTTP request, measured by wrk in the client process (µs resolution)"
    : "per HTTP request, measured by autocannon in the client process (1 ms resolution)";
}

/**
 * Starter-policy decide bodies split around their request_id value, so that a request costs the client one
 * concatenation: `head + JSON string + tail`.
 */
export function decideBodies(): [string, string][] {
  return starterRequests(256, 4).map(
    (request) => JSON.stringify({ ...request, request_id: "\u0000" }).split('"\\u0000"') as [string, string],
  );
}

/** `POST /v1/decide` for autocannon, each request a new request_id (for as many runs as share a process). */
export function decideRequests(): autocannon.Request[] {
  const runId = Date.now().toString(36);
  let seq = 0;
  const bodies = decideBodies();
  return [
    {
      method: "POST",
      path: "/v1/decide",
      setupRequest: (request) => {
        const n = seq++;
        const [head, tail] = bodies[n & 255] as [string, string];
        return { ...request, body: `${head}"bench-${runId}-${n}"${tail}` };
      },
    },
  ];
}

export function fire(target: Target, load: Load, connections: number, seconds: number): Promise<LoadResult> {
  return loadGenerator() === "wrk"
    ? fireWrk(target, load, connections, seconds)
    : fireAutocannon(target, load, connections, seconds);
}

async function fireWrk(
  target: Target,
  load: Load,
  connections: number,
  seconds: number,
): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-wrk-"));
  try {
    const data = join(dir, "data");
    writeFileSync(
      data,
      load.kind === "decide"
        ? `${decideBodies()
            .map(([head, tail]) => `${head}\t${tail}`)
            .join("\n")}\n`
        : `${load.ids.join("\n")}\n`,
    );
    const script = join(WRK_DIR, load.kind === "decide" ? "decide.lua" : "read.lua");
    const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "10s", "-s", script, target.url];
    const output = await run("wrk", args, {
      LUMYN_WRK_DIR: WRK_DIR,
      LUMYN_KEY: target.key,
      LUMYN_BODIES: data,
      LUMYN_IDS: data,
      LUMYN_RUN: `bench-${Date.now().toString(36)}-${runs++}`,
    });
    const line = /^LUMYN_RESULT (.*)$/m.exec(output)?.[1];
    if (!line) throw new Error(`wrk printed no result:\n${output}`);
    const result = JSON.parse(line) as Record<string, number>;
    const n = (field: string): number => result[field] ?? 0;
    const wall = n("duration_us") / 1e6;
    return {
      generator: "wrk",
      requestsPerSec: n("requests") / wall,
      requests: n("requests"),
      seconds: wall,
      p50Ms: n("p50_us") / 1000,
      p99Ms: n("p99_us") / 1000,
      maxMs: n("max_us") / 1000,
      errors: n("connect") + n("read") + n("write") + n("timeout"),
      non2xx: n("status"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env } });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += String(chunk);
    });
    child.stderr.on("data", (chunk) => {
      output += String(chunk);
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} exited with ${code}:\n${output}`)),
    );
  });
}

async function fireAutocannon(
  target: Target,
  load: Load,
  connections: number,
  seconds: number,
): Promise<LoadResult> {
  const result = await autocannon({
    url: target.url,
    connections,
    duration: seconds,
    headers: { authorization: `Bearer ${target.key}`, "content-type": "application/json" },
    // Reads are built once and cycled; decisions need a new request_id each.
    requests:
      load.kind === "decide"
        ? decideRequests()
        : load.ids.map((id) => ({ method: "GET" as const, path: `/v1/decisions/${id}` })),
  });
  return {
    generator: "autocannon",
    requestsPerSec: result.requests.average,
    requests: result.requests.total,
    seconds: result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
