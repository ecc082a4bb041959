import type { Command } from "commander";
import { announcePolicyChange, type RegistryChange, redactUrl } from "../index.ts";

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
  try {
    await announcePolicyChange(url, change);
  } catch (error) {
    process.stderr.write(
      `lumyn: warning: could not announce on Redis at ${redactUrl(url)} (${(error as Error).message}); servers switch at their next poll of the store\n`,
    );
  }
}
