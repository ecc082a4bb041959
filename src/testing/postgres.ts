import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/**
 * The PostgreSQL server tests use: `LUMYN_TEST_POSTGRES` (an admin URL), by default the local server with
 * trust authentication that `.ci/run` makes sure is running.
 */
export const TEST_POSTGRES_ADMIN_URL =
  process.env.LUMYN_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  /** The throw-away database's URL. */
  readonly url: string;
  readonly name: string;
  /** Drops the database (closing whatever is still connected to it). */
  drop(): Promise<void>;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates a new, empty database with a random name, for one test file or test; only it is ever dropped. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `lumyn_test_${label}_${randomBytes(6).toString("hex")}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(TEST_POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () =>
      admin(async (client) => void (await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}

/** The PostgreSQL server programs (initdb, pg_ctl): `LUMYN_TEST_PG_BIN`, else the newest Debian install. */
function serverPrograms(): string {
  if (process.env.LUMYN_TEST_PG_BIN) return process.env.LUMYN_TEST_PG_BIN;
  const versions = readdirSync("/usr/lib/postgresql")
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0)
    throw new Error("no PostgreSQL under /usr/lib/postgresql; set LUMYN_TEST_PG_BIN");
  return join("/usr/lib/postgresql", versions[0] as string, "bin");
}

/**
 * A PostgreSQL server of its own (initdb in a temporary folder, on a free loopback port), for tests that stop
 * and start the database: stopping the shared server would break the tests running beside them. PostgreSQL
 * refuses to run as root, so as root the server runs as the `postgres` user.
 */
export interface PrivateCluster {
  /** Admin URL (user postgres, trust authentication) of its `postgres` database. */
  readonly url: string;
  start(): void;
  /** Fast shutdown: connections are cut, as when a database server goes down. */
  stop(): void;
  /** Stops the server and deletes its folder. */
  destroy(): void;
}

export async function createPrivateCluster(): Promise<PrivateCluster> {
  const bin = serverPrograms();
  const dir = mkdtempSync(join(tmpdir(), "lumyn-pg-cluster-"));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, postgresUid(), postgresGid());
  const run = (program: string, args: readonly string[]): void => {
    const command = asRoot ? "runuser" : join(bin, program);
    const argv = asRoot ? ["-u", "postgres", "--", join(bin, program), ...args] : [...args];
    const result = spawnSync(command, argv, { encoding: "utf8", cwd: dir });
    if (result.status !== 0) throw new Error(`${program} failed: ${result.stderr || result.stdout}`);
  };
  const data = join(dir, "data");
  let options = "";
  const start = (): void => run("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
  const stop = (): void => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
  let port: number;
  try {
    port = await freePort();
    options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
    start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy: () => {
      try {
        stop();
      } catch {
        // Already stopped.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresUid(): number {
  return Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout.trim());
}

function postgresGid(): number {
  return Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
