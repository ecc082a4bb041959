import type { Redis } from "ioredis";
import { sha256 } from "../core/digest.ts";
import { canonicalJson, isJsonNumber, isJsonObject, type JsonValue, toDouble } from "../core/json.ts";
import { StorageError } from "../core/problem.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import type { VelocitySpec } from "../domain/velocity.ts";
import { groupValueOf } from "../domain/velocity.ts";
import { deriveFeatures } from "../engine/normalize.ts";
import type { VelocityAsk, VelocityCounters } from "../engine/velocity.ts";
import type { SyncLog } from "./policy-sync.ts";
import { connectRedis, redisClient } from "./redis.ts";

/** Counters are exact only for windows that start at or after this time (ms): what they cannot have missed. */
const EXACT_FROM_KEY = "lumyn:velocity:exact-from";
const KEY_PREFIX = "lumyn:velocity:";
/** Members older than the longest window (31 days) are never read again. */
const KEEP_MS = 32 * 86_400_000;

/** Raises the exact-from time, never lowers it (several servers report what they missed). */
const RAISE_SCRIPT = `local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

function secondsToMs(timestamp: string): number {
  return Date.parse(timestamp);
}

/**
 * Velocity counters in Redis: per tenant, measure and group, a sorted set of the decisions that fall in it,
 * scored by time (a sum's member carries its amount). A measure is then one ZCOUNT or ZRANGEBYSCORE instead
 * of a scan of the window's decisions in SQL, and every server sees every other server's decisions.
 *
 * Counters answer only for windows they saw whole: each measure's counting starts when it is first used for a
 * tenant, and a decision that could not be counted (Redis down) moves the exact-from time past it. Until a
 * window starts after those times the store's SQL answers, so counters never under-count; while Redis is
 * down, SQL answers every measure.
 */
export class RedisVelocityCounters implements VelocityCounters {
  private readonly client: Redis;
  private readonly log: SyncLog;
  private readonly clock: () => number;
  /** The latest decision this server could not count, to report once Redis is back (ms; 0: none). */
  private missedAt = 0;

  private constructor(client: Redis, log: SyncLog, clock: () => number) {
    this.client = client;
    this.log = log;
    this.clock = clock;
  }

  /** `clock`: the time decisions are made at, in ms (the system clock by default). */
  static async connect(
    url: string,
    log: SyncLog,
    clock: () => number = Date.now,
  ): Promise<RedisVelocityCounters> {
    const client = await redisClient(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    try {
      await connectRedis(client);
      // Counting starts now: decisions already in the store were never counted.
      await client.set(EXACT_FROM_KEY, String(clock()), "NX");
    } catch (error) {
      client.disconnect();
      throw new StorageError(`cannot reach Redis for velocity counters: ${(error as Error).message}`);
    }
    const counters = new RedisVelocityCounters(client, log, clock);
    client.on("ready", () => void counters.reportMissed());
    return counters;
  }

  private async reportMissed(): Promise<void> {
    try {
      // A Redis that lost its data (restarted without persistence) starts counting again now.
      await this.client.set(EXACT_FROM_KEY, String(this.clock()), "NX");
      if (this.missedAt === 0) return;
      await this.client.eval(RAISE_SCRIPT, 1, EXACT_FROM_KEY, String(this.missedAt + 1_000));
      this.missedAt = 0;
    } catch (error) {
      this.log.warn({ error: (error as Error).message }, "could not report uncounted decisions to Redis");
    }
  }

  async measure(ask: VelocityAsk): Promise<number | undefined> {
    if (this.client.status !== "ready") return undefined;
    const key = counterKey(ask.spec, ask.tenantId, ask.groupValue);
    const since = secondsToMs(ask.since);
    const until = secondsToMs(ask.until);
    try {
      const sum = ask.spec.measure.kind !== "count";
      const replies = await this.client
        .multi()
        .get(EXACT_FROM_KEY)
        .set(`${key}:from`, String(this.clock()), "NX")
        .get(`${key}:from`)
        .zrangebyscore(key, since, `(${until}`)
        .exec();
      if (!replies || replies.some(([error]) => error)) return undefined;
      const exactFrom = Math.max(
        Number(replies[0]?.[1] ?? Number.POSITIVE_INFINITY),
        Number(replies[2]?.[1]),
      );
      if (!(since >= exactFrom)) return undefined;
      const members = replies[3]?.[1] as string[];
      if (!sum) return members.length;
      let total = 0;
      for (const member of members) total += Number(member.slice(member.indexOf("|") + 1));
      return total;
    } catch {
      return undefined;
    }
  }

  async observe(specs: readonly VelocitySpec[], tenantId: string, record: DecisionRecord): Promise<void> {
    const at = secondsToMs(record.created_at);
    const actionType = String(record.request.action.type);
    const pipeline = this.client.multi();
    let writes = 0;
    for (const spec of specs) {
      if (spec.verdicts && !spec.verdicts.includes(record.verdict)) continue;
      if (spec.actionTypes && !spec.actionTypes.includes(actionType)) continue;
      const groupValue = groupValueOf(spec, record.request);
      if (spec.groupBy.length > 0 && groupValue === undefined) continue;
      const amount = amountOf(spec, record);
      if (amount === undefined) continue;
      const key = counterKey(spec, tenantId, groupValue);
      const member = amount === null ? record.decision_id : `${record.decision_id}|${amount}`;
      pipeline
        .zadd(key, at, member)
        .zremrangebyscore(key, "-inf", `(${at - KEEP_MS}`)
        .pexpire(key, KEEP_MS);
      writes++;
    }
    if (writes === 0) return;
    try {
      if (this.client.status !== "ready") throw new Error(`Redis is ${this.client.status}`);
      const replies = await pipeline.exec();
      if (!replies || replies.some(([error]) => error)) throw new Error("a counter update failed");
    } catch (error) {
      // Counted nowhere: windows that include this decision are measured by SQL from now on.
      this.missedAt = Math.max(this.missedAt, at);
      this.log.warn(
        { error: (error as Error).message },
        "could not count a decision in Redis; SQL measures its windows",
      );
    }
  }

  close(): void {
    this.client.disconnect();
  }
}

function counterKey(spec: VelocitySpec, tenantId: string, groupValue: JsonValue | undefined): string {
  return `${KEY_PREFIX}${sha256(canonicalJson([tenantId, spec.definition, groupValue ?? null])).slice(7, 39)}`;
}

/** What a decision adds to a measure: null for a count, its number for a sum, undefined when it holds none. */
function amountOf(spec: VelocitySpec, record: DecisionRecord): number | null | undefined {
  switch (spec.measure.kind) {
    case "count":
      return null;
    case "sum_amount_usd":
      return deriveFeatures(record.request).amount_usd ?? undefined;
    case "sum_path": {
      let value: JsonValue | undefined = record.request;
      for (const segment of spec.measure.segments)
        value = isJsonObject(value) && Object.hasOwn(value, segment) ? value[segment] : undefined;
      return value !== undefined && isJsonNumber(value) ? toDouble(value) : undefined;
    }
  }
}
