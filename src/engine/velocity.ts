import type { JsonObject } from "../core/json.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import {
  groupValueOf,
  type VelocityQuery,
  type VelocitySpec,
  type VelocityValues,
  velocityWindow,
} from "../domain/velocity.ts";
import type { Policy } from "../policy/policy.ts";
import { NO_VELOCITY } from "./normalize.ts";

/** One measure to take: the spec, the tenant, the request's group value and the window. */
export interface VelocityAsk {
  readonly spec: VelocitySpec;
  readonly tenantId: string;
  readonly groupValue: string | number | boolean | undefined;
  readonly since: string;
  readonly until: string;
}

/** Answers velocity measures from stored history (a store's SQL). */
export interface VelocityHistory {
  measure(query: VelocityQuery): Promise<number>;
}

/**
 * Fast counters for velocity measures beside the store (Redis: see registry/redis-counters.ts). They answer
 * from what they observed; when they cannot answer, the store's SQL does.
 */
export interface VelocityCounters {
  /** The measure's value, or undefined when the counters cannot answer now. */
  measure(ask: VelocityAsk): Promise<number | undefined>;
  /** Counts a newly stored decision in the counters of the measures it falls in. Never throws. */
  observe(specs: readonly VelocitySpec[], tenantId: string, record: DecisionRecord): Promise<void>;
}

/**
 * The values of a policy's velocity measures for one request decided at `now`, from the counters when they
 * answer, else from the store. A request without a value at a measure's `group_by` belongs to no group: 0.
 */
export async function measureVelocity(
  specs: readonly VelocitySpec[],
  tenantId: string,
  request: JsonObject,
  now: Date,
  history: VelocityHistory,
  counters?: VelocityCounters,
): Promise<VelocityValues> {
  if (specs.length === 0) return NO_VELOCITY;
  const values = await Promise.all(
    specs.map(async (spec) => {
      const groupValue = groupValueOf(spec, request);
      if (spec.groupBy.length > 0 && groupValue === undefined) return 0;
      const ask: VelocityAsk = { spec, tenantId, groupValue, ...velocityWindow(spec, now) };
      const counted = counters ? await counters.measure(ask) : undefined;
      if (counted !== undefined) return counted;
      return history.measure({
        tenantId,
        measure: spec.measure,
        groupBy: spec.groupBy,
        ...(groupValue !== undefined ? { groupValue } : {}),
        ...(spec.verdicts ? { verdicts: spec.verdicts } : {}),
        ...(spec.actionTypes ? { actionTypes: spec.actionTypes } : {}),
        since: ask.since,
        until: ask.until,
      });
    }),
  );
  return Object.fromEntries(specs.map((spec, i) => [spec.name, values[i] as number]));
}

/**
 * The velocity stage's port: measures from the counters when they answer, else from stored history; every
 * stored decision is counted in the counters (when there are any) of the measures it falls in.
 */
export class VelocityMeter {
  private readonly history: VelocityHistory;
  /** Counters that answer faster than the store's SQL (Redis); replaced while running when Redis comes or goes. */
  counters: VelocityCounters | undefined;

  constructor(history: VelocityHistory, counters?: VelocityCounters) {
    this.history = history;
    this.counters = counters;
  }

  measure(policy: Policy, tenantId: string, request: JsonObject, now: Date): Promise<VelocityValues> {
    return measureVelocity(policy.model.velocity, tenantId, request, now, this.history, this.counters);
  }

  async observe(policy: Policy, tenantId: string, record: DecisionRecord): Promise<void> {
    if (this.counters && policy.model.velocity.length > 0)
      await this.counters.observe(policy.model.velocity, tenantId, record);
  }
}
