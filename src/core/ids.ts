import { monotonicFactory } from "ulid";

const nextUlid = monotonicFactory();

/** A new decision id: a ULID, monotonic within the process so ids sort in creation order. */
export function newDecisionId(now: number = Date.now()): string {
  return nextUlid(now);
}

/** `created_at` as the reference writes it: UTC, whole seconds, `Z` suffix. */
export function timestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
