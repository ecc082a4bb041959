import type { Redis, RedisOptions } from "ioredis";

/**
 * A Redis client, created unconnected (`lazyConnect`). The client library is loaded here, when Redis is
 * first used, not when Lumyn is: most processes never talk to Redis, and every command's start-up would
 * otherwise pay for it.
 */
export async function redisClient(url: string, options: RedisOptions): Promise<Redis> {
  const { Redis } = await import("ioredis");
  return new Redis(url, { ...options, lazyConnect: true });
}

/**
 * Connects a client created with `lazyConnect`, failing with the cause (e.g. `connect ECONNREFUSED …`)
 * rather than the client's generic "Connection is closed". Later errors are handled where they matter.
 */
export async function connectRedis(client: Redis): Promise<void> {
  let cause: Error | undefined;
  client.on("error", (error: Error) => {
    cause ??= error;
  });
  // No retry before the first connection: a failure to start is reported at once, and leaves no timer
  // behind. Once connected, the client reconnects by itself as configured.
  const retryStrategy = client.options.retryStrategy;
  client.options.retryStrategy = () => null;
  try {
    await client.connect();
  } catch (error) {
    throw cause ?? error;
  } finally {
    client.options.retryStrategy = retryStrategy;
  }
}

/** A Redis URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<invalid URL>";
  }
}
