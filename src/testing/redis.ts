import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { Redis } from "ioredis";

/**
 * A throw-away Redis for one test file: its own `redis-server` on a free loopback port, persisting nothing,
 * so tests never touch data they did not create and may stop and start it. When no Redis can be run, tests
 * fail, unless LUMYN_TEST_ALLOW_NO_REDIS=1 says that skipping them is acceptable here.
 */
export class TestRedis {
  readonly port: number;
  readonly url: string;
  private process: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
  }

  /** Starts one, or returns the reason none can run (the caller skips or fails with it). */
  static async start(): Promise<TestRedis | string> {
    const redis = new TestRedis(await freePort());
    try {
      await redis.resume();
      return redis;
    } catch (error) {
      return `cannot run redis-server (${(error as Error).message})`;
    }
  }

  /** Starts the server (again, after {@link stop}) and waits until it answers. */
  async resume(): Promise<void> {
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    );
    this.process = child;
    const failed = once(child, "error").then(([error]) => {
      throw error;
    });
    for (let attempt = 0; attempt < 100; attempt++) {
      const ready = await Promise.race([ping(this.url), failed]);
      if (ready) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`redis-server on port ${this.port} did not answer`);
  }

  /** Stops the server at once (as a crash would, without saving). */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }

  client(): Redis {
    const client = new Redis(this.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    client.on("error", () => undefined);
    return client;
  }
}

/** How a test file gets its Redis: started, or skipped with a clear reason when that is allowed. */
export async function redisForTests(): Promise<{ redis?: TestRedis; skip?: string }> {
  const started = await TestRedis.start();
  if (typeof started !== "string") return { redis: started };
  if (process.env.LUMYN_TEST_ALLOW_NO_REDIS === "1")
    return { skip: `Redis unavailable, skipped (LUMYN_TEST_ALLOW_NO_REDIS=1): ${started}` };
  throw new Error(
    `these tests need Redis: ${started}. Install redis-server, or set LUMYN_TEST_ALLOW_NO_REDIS=1 to skip them`,
  );
}

async function ping(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Waits until `check` holds, polling; fails with `what` when it has not after `timeoutMs` (a deadline, not a measurement). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
