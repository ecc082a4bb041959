/**
 * Scenario 14: two `lumyn serve` processes (the built CLI, auth on) share one PostgreSQL database; autocannon
 * drives both from this process over loopback, its connections split between them. Every answer is durable
 * in PostgreSQL (committed) before it is sent, and both processes extend one audit chain.
 *
 * The database is a throw-away one on the server `LUMYN_BENCH_POSTGRES` names (an admin URL; by default the
 * local server with trust authentication that `.ci/run` starts), dropped afterwards.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon, { type Result } from "autocannon";
import pg from "pg";
import { median } from "./harness.ts";
import { decideRequests } from "./load.ts";
import { type Config, log, onAllCpus, type ScenarioResult } from "./scenarios.ts";

const CLI = fileURLToPath(new URL("../dist/bin/main.js", import.meta.url));
const CONNECTIONS = 32;
const SERVERS = 2;
const ADMIN_URL =
  process.env.LUMYN_BENCH_POSTGRES ??
  process.env.LUMYN_TEST_POSTGRES ??
  "postgres://postgres@127.0.0.1:5432/postgres";

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `scenario 14 needs PostgreSQL (LUMYN_BENCH_POSTGRES, now ${ADMIN_URL}): ${(error as Error).message}`,
    );
  }
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function startServer(
  workspace: string,
  store: string,
  logPath: string,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "-w", workspace, "--store", store], {
    stdio: ["ignore", openSync(logPath, "w"), "pipe"],
  });
  return new Promise((resolve, reject) => {
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
      const url = /serving (http:\/\/\S+)/.exec(stderr)?.[1];
      if (url) resolve({ url, child });
    });
    child.once("exit", (code) => reject(new Error(`lumyn serve exited with ${code}: ${stderr}`)));
  });
}

export async function scenarioPostgresServers(config: Config): Promise<ScenarioResult> {
  const name = `lumyn_bench_${randomBytes(6).toString("hex")}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const store = url.toString();
  const dir = mkdtempSync(join(tmpdir(), "lumyn-bench-pg-"));
  const servers: ChildProcess[] = [];
  try {
    const workspace = join(dir, "ws");
    const created = spawnSync(
      process.execPath,
      [CLI, "keys", "create", "--scopes", "decide,read", "-w", workspace, "--store", store],
      { encoding: "utf8" },
    );
    if (created.status !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    const key = created.stdout.trim();
    const started = await Promise.all(
      Array.from({ length: SERVERS }, (_, i) => startServer(workspace, store, join(dir, `serve-${i}.log`))),
    );
    servers.push(...started.map((server) => server.child));

    const requests = decideRequests();
    const fire = (durationSeconds: number): Promise<Result> =>
      autocannon({
        // Connections are spread over the URLs in turn: half on each server.
        url: started.map((server) => server.url) as unknown as string,
        connections: CONNECTIONS,
        duration: durationSeconds,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        requests,
      });

    const { value: reps, cpus } = await onAllCpus(async () => {
      await fire(config.quick ? 1 : 3);
      const measured: Result[] = [];
      for (let r = 0; r < (config.quick ? 2 : 3); r++) {
        const rep = await fire(config.quick ? 2 : 5);
        log(
          `  postgres, ${SERVERS} servers: ${Math.round(rep.requests.average)}/s, p50 ${rep.latency.p50} ms, p99 ${rep.latency.p99} ms, max ${rep.latency.max} ms, errors ${rep.errors}, non-2xx ${rep.non2xx}`,
        );
        measured.push(rep);
      }
      return measured;
    });

    const check = new pg.Client({ connectionString: store });
    await check.connect();
    let storedRows: number;
    let events: number;
    let chained: number;
    try {
      // One statement, one snapshot: the servers may still be committing requests the load generator gave up on.
      const { rows } = await check.query(
        `SELECT (SELECT count(*) FROM decisions) AS decisions, (SELECT count(*) FROM decision_events) AS events,
           (SELECT seq FROM audit_head) AS chained`,
      );
      storedRows = Number(rows[0].decisions);
      events = Number(rows[0].events);
      chained = Number(rows[0].chained);
    } finally {
      await check.end();
    }
    const opsPerSec = median(reps.map((rep) => rep.requests.average));
    const failures = reps.reduce((n, rep) => n + rep.errors + rep.timeouts + rep.non2xx, 0);
    const checks = [
      { label: "0 errors", pass: failures === 0 },
      { label: "one chain over every decision and event", pass: chained === storedRows + events },
    ];
    return {
      id: 14,
      name: `HTTP POST /v1/decide (auth, PostgreSQL), ${SERVERS} servers, ${CONNECTIONS} connections`,
      opsPerSec,
      p50Ns: median(reps.map((rep) => rep.latency.p50)) * 1e6,
      p99Ns: median(reps.map((rep) => rep.latency.p99)) * 1e6,
      repOpsPerSec: reps.map((rep) => rep.requests.average),
      latency: "per HTTP request, measured by autocannon in the client process (1 ms resolution)",
      target: `reported (no target); ${checks.map((c) => c.label).join(", ")}`,
      checks,
      pass: checks.every((c) => c.pass),
      notes: [
        `${SERVERS} server processes and the load generator on ${cpus}, PostgreSQL on the same machine (fsync on); ${reps.length} repetitions of ${reps[0]?.duration ?? 0} s after a warm-up`,
        `max latency per repetition (ms): ${reps.map((rep) => rep.latency.max).join(" ")}; ${storedRows} decisions and ${events} approval events stored, ${chained} chain entries`,
      ],
    };
  } finally {
    await Promise.all(
      servers.map(
        (child) =>
          new Promise((resolve) => {
            child.once("exit", resolve);
            child.kill("SIGTERM");
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}
