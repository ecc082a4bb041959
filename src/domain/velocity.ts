import {
  canonicalJson,
  isJsonNumber,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  toDouble,
} from "../core/json.ts";

/**
 * Velocity: how many (or how much) of a tenant's recent decisions share something with the current request,
 * as a policy's `velocity:` section defines it. The measures' values a decision saw are recorded, so replays
 * and backtests need no live history.
 */

/** Where a velocity measure's number comes from in each past decision. */
export type VelocityMeasure =
  | { readonly kind: "count" }
  /** The amount in USD as `amount_usd` derives it (the amount in USD, else times `evidence.fx_rate_to_usd`). */
  | { readonly kind: "sum_amount_usd" }
  /** A number at a path of the request, e.g. `["action", "amount", "value"]`. */
  | { readonly kind: "sum_path"; readonly segments: readonly string[] };

/** How far back a velocity measure looks from the decision's time: a duration, or since 00:00 UTC that day. */
export type VelocityWindow = { readonly kind: "duration"; readonly ms: number } | { readonly kind: "today" };

/** One entry of the policy's `velocity:` section. */
export interface VelocitySpec {
  readonly name: string;
  readonly measure: VelocityMeasure;
  /** The request path decisions are grouped by (empty: the whole tenant; decisions never cross tenants). */
  readonly groupBy: readonly string[];
  readonly verdicts?: readonly string[];
  readonly actionTypes?: readonly string[];
  readonly window: VelocityWindow;
  /** The entry as written: recorded beside the value it gave, so a backtest knows what the value measured. */
  readonly definition: JsonObject;
  readonly pointer: string;
}

/** A velocity measure over stored decisions, as a store answers it. */
export interface VelocityQuery {
  readonly tenantId: string;
  readonly measure: VelocityMeasure;
  /** The request path decisions are grouped by (empty: the whole tenant). */
  readonly groupBy: readonly string[];
  /** The group's value: a string, number or boolean at `groupBy` in the current request. */
  readonly groupValue?: string | number | boolean;
  /** Only decisions with one of these verdicts (any when absent). */
  readonly verdicts?: readonly string[];
  /** Only decisions of one of these action types (any when absent). */
  readonly actionTypes?: readonly string[];
  /** Inclusive lower bound on `created_at` (ISO 8601). */
  readonly since: string;
  /** Exclusive upper bound on `created_at` (ISO 8601). */
  readonly until: string;
}

/** Velocity measures by name, as a decision saw them. */
export type VelocityValues = Readonly<Record<string, number>>;

/**
 * The window `[since, until)` a measure covers for a decision made at `now`, in the records' `created_at`
 * form (whole seconds): it ends after `now`'s second, so decisions stored earlier in that second count.
 */
export function velocityWindow(spec: VelocitySpec, now: Date): { since: string; until: string } {
  const since =
    spec.window.kind === "today"
      ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()))
      : new Date(now.getTime() - spec.window.ms);
  const second = (date: Date): string => `${date.toISOString().slice(0, 19)}Z`;
  return { since: second(since), until: second(new Date(now.getTime() + 1_000)) };
}

/** The group value a request has at a measure's `group_by`: a scalar, or undefined (the request has no group). */
export function groupValueOf(spec: VelocitySpec, request: JsonObject): string | number | boolean | undefined {
  let value: JsonValue | undefined = request;
  for (const segment of spec.groupBy) {
    value = isJsonObject(value) && Object.hasOwn(value, segment) ? value[segment] : undefined;
  }
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isFinite(value)) return value;
  return undefined;
}

/** What a decision records of its velocity measures: each measure's definition with the value it gave. */
export function velocityRecord(specs: readonly VelocitySpec[], values: VelocityValues): JsonObject {
  const recorded: JsonObject = {};
  for (const spec of specs) recorded[spec.name] = { ...spec.definition, value: values[spec.name] ?? 0 };
  return recorded;
}

/**
 * The values a record's decision saw, for the measures of `policy` that it recorded with the same
 * definition (replays and backtests use them instead of live history). `missing` names the measures the
 * record cannot answer: a backtest's candidate may define measures the recorded policy did not.
 */
export function recordedVelocity(
  specs: readonly VelocitySpec[],
  recorded: JsonValue | undefined,
): { values: VelocityValues; missing: string[] } {
  const values: Record<string, number> = {};
  const missing: string[] = [];
  for (const spec of specs) {
    const entry = isJsonObject(recorded) ? recorded[spec.name] : undefined;
    const value = isJsonObject(entry) ? entry.value : undefined;
    if (!isJsonObject(entry) || value === undefined || !isJsonNumber(value)) {
      missing.push(spec.name);
      continue;
    }
    const { value: _value, ...definition } = entry;
    if (canonicalJson(definition) !== canonicalJson(spec.definition)) missing.push(spec.name);
    else values[spec.name] = toDouble(value);
  }
  return { values, missing };
}
