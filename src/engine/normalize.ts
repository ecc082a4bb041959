import { float, isJsonObject, type JsonObject, type JsonValue, toDouble } from "../core/json.ts";
import type { DecisionRequest } from "../domain/request.ts";
import type { VelocityValues } from "../domain/velocity.ts";
import type { EvaluationInput } from "../policy/evaluate.ts";
import { pythonNumber } from "../policy/operators.ts";

/** The `derived` half of `inputs_digest`, computed as Lumyn 1.3.6's `normalize_request_v1` does. */
export interface DerivedFeatures {
  readonly action_type: string;
  readonly amount_currency: string | null;
  /** Always a float (or null), as in the reference. */
  readonly amount_value: number | null;
  readonly amount_usd: number | null;
  readonly fx_rate_to_usd_present: boolean;
}

function objectOr(value: JsonValue | undefined): JsonObject | undefined {
  return isJsonObject(value) ? value : undefined;
}

export function deriveFeatures(request: DecisionRequest): DerivedFeatures {
  const action = request.action;
  const amount = objectOr(action.amount);
  const currency = amount?.currency;
  const amountCurrency = typeof currency === "string" ? currency : null;
  const rawValue = amount?.value;
  const numericValue = rawValue === undefined ? undefined : pythonNumber(rawValue);
  const amountValue = numericValue === undefined ? null : toDouble(numericValue);
  // Python's isinstance(x, (int, float)) accepts booleans, so `fx_rate_to_usd: true` counts as the rate 1.0.
  const rawRate = objectOr(request.evidence)?.fx_rate_to_usd;
  const rate = rawRate === undefined ? undefined : pythonNumber(rawRate);
  let amountUsd: number | null = null;
  if (amountValue !== null && amountCurrency !== null) {
    if (amountCurrency === "USD") amountUsd = amountValue;
    else if (rate !== undefined) amountUsd = amountValue * toDouble(rate);
  }
  return {
    action_type: String(action.type),
    amount_currency: amountCurrency,
    amount_value: amountValue,
    amount_usd: amountUsd,
    fx_rate_to_usd_present: rate !== undefined,
  };
}

/** The derived features as JSON, with the reference's float typing (`100` becomes `100.0`). */
export function derivedJson(derived: DerivedFeatures): JsonObject {
  return {
    action_type: derived.action_type,
    amount_currency: derived.amount_currency,
    amount_value: derived.amount_value === null ? null : float(derived.amount_value),
    amount_usd: derived.amount_usd === null ? null : float(derived.amount_usd),
    fx_rate_to_usd_present: derived.fx_rate_to_usd_present,
  };
}

/** Similarity to the nearest labelled failure and success, as rules read them (`memory.failure_similarity`). */
export interface MemoryFeatures {
  readonly failure: number;
  readonly success: number;
}

export const NO_MEMORY: MemoryFeatures = { failure: 0, success: 0 };

export const NO_VELOCITY: VelocityValues = {};

export function evaluationInput(
  request: DecisionRequest,
  derived: DerivedFeatures,
  memory: MemoryFeatures = NO_MEMORY,
  velocity: VelocityValues = NO_VELOCITY,
): EvaluationInput {
  return {
    request,
    evidence: objectOr(request.evidence) ?? {},
    action_type: derived.action_type,
    amount_currency: derived.amount_currency,
    amount_value: derived.amount_value,
    amount_usd: derived.amount_usd,
    "memory.failure_similarity": memory.failure,
    "memory.success_similarity": memory.success,
    velocity,
  };
}
