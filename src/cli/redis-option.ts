import type { Command } from "commander";
import type { RegistryChange } from "../registry/policy-registry.ts";

export interface RedisOption {
  readonly redis?: string;
}

export function redisOption(command: Command): Command {
  return command.option(
    "--redis <url>",
    "announce the change on Redis so that servers switch at once (default: LUMYN_REDIS; without it servers switch at their next poll of the store)",
  );
}

/** Announces a registry change on Redis when one is configured; a Redis that does not answer is reported only. */
export async function announceChange(options: RedisOption, change: RegistryChange): Promise<void> {
  const url = options.redis ?? process.env.LUMYN_REDIS;
  if (!url) return;
  // Loaded here, not with the program: every other command's cold start would pay for the Redis client.
  const sync = await import("../registry/policy-sync.ts").catch((error: Error) => error);
  try {
    if (sync instanceof Error) throw sync;
    await sync.announcePolicyChange(url, change);
  } catch (error) {
    const where = sync instanceof Error ? "" : ` at ${sync.redactUrl(url)}`;
    process.stderr.write(
      `lumyn: warning: could not announce on Redis${where} (${(error as Error).message}); servers switch at their next poll of the store\n`,
    );
  }
}
