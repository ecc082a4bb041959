import { getRandomValues } from "node:crypto";
import { monotonicFactory } from "ulid";

const pool = new Uint32Array(1024);
let poolIndex = pool.length;

/** Cryptographic randomness drawn in blocks: the ULID library otherwise asks the OS once per character. */
function random(): number {
  if (poolIndex === pool.length) {
    getRandomValues(pool);
    poolIndex = 0;
  }
  return (pool[poolIndex++] as number) / 2 ** 32;
}

const nextUlid = monotonicFactory(random);

/** A new decision id: a ULID, monotonic within the process so ids sort in creation order. */
export function newDecisionId(now: number = Date.now()): string {
  return nextUlid(now);
}

/** `created_at` as the reference writes it: UTC, whole seconds, `Z` suffix. */
export function timestamp(date: Date): string {
  const second = Math.floor(date.getTime() / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastTimestamp = `${date.toISOString().slice(0, 19)}Z`;
  }
  return lastTimestamp;
}

let lastSecond = Number.NaN;
let lastTimestamp = "";
