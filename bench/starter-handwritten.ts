/**
 * The starter policy's 8 rules written by hand as plain JavaScript: the baseline the compiled evaluator is
 * compared with. Same contract as a compiled evaluator: writes the indices (in evaluation order) of the
 * matching rules into `out` and returns how many matched.
 *
 * Same semantics as the policy (checked against the compiled evaluator on every input before timing):
 *   - flat `_is: null` is "missing or null" (`== null`); `_is`/`_in` on strings are identity tests;
 *   - flat comparisons read numbers as Python does (booleans are 0/1; bigints and integral floats compare by
 *     value), with a fast path for plain doubles, as anyone writing this by hand for JSON input would;
 *   - `amount_usd` comparisons are false when the amount in USD is unknown (null).
 * Evidence is read with plain property access: evidence objects are parsed JSON, whose keys are own properties.
 *
 * Evaluation order (the indices written): R001, R007, R020, R020b, R022, R030, R031, R050.
 */
import { JsonFloat } from "../src/core/json.ts";
import type { EvaluationInput } from "../src/policy/evaluate.ts";

/** Python's numeric view of a JSON value, for the rare non-double cases. */
function pythonNumber(x: unknown): number | bigint | undefined {
  if (typeof x === "number" || typeof x === "bigint") return x;
  if (typeof x === "boolean") return x ? 1 : 0;
  if (x instanceof JsonFloat) return x.value;
  return undefined;
}

function slowGte(x: unknown, y: number): boolean {
  const n = pythonNumber(x);
  return n !== undefined && n >= y;
}

function slowLt(x: unknown, y: number): boolean {
  const n = pythonNumber(x);
  return n !== undefined && n < y;
}

export const STARTER_RULE_IDS = ["R001", "R007", "R020", "R020b", "R022", "R030", "R031", "R050"] as const;

export function starterHandwritten(input: EvaluationInput, out: Uint16Array): number {
  const action = input.action_type;
  let n = 0;
  if (action === "support.refund") {
    const ev = input.evidence;
    if (ev.ticket_id == null || ev.order_id == null || ev.customer_id == null) out[n++] = 0;
    if (input.amount_currency !== "USD" && ev.fx_rate_to_usd == null) out[n++] = 1;
    const risk = ev.payment_instrument_risk;
    if (risk === "high") out[n++] = 2;
    const chargeback = ev.chargeback_risk;
    if (typeof chargeback === "number" ? chargeback >= 0.7 : slowGte(chargeback, 0.7)) out[n++] = 4;
    const usd = input.amount_usd;
    if (usd !== null && usd > 200) out[n++] = 5;
    const repeats = ev.previous_refund_count_90d;
    const repeatsLt2 = typeof repeats === "number" ? repeats < 2 : slowLt(repeats, 2);
    if (typeof repeats === "number" ? repeats >= 2 : slowGte(repeats, 2)) out[n++] = 6;
    if (
      usd !== null &&
      usd <= 25 &&
      (risk === "low" || risk === "medium") &&
      (typeof chargeback === "number" ? chargeback < 0.35 : slowLt(chargeback, 0.35)) &&
      repeatsLt2
    ) {
      const age = ev.customer_age_days;
      if (typeof age === "number" ? age >= 14 : slowGte(age, 14)) out[n++] = 7;
    }
  } else if (action === "support.issue_credit") {
    if (input.evidence.payment_instrument_risk === "high") out[n++] = 3;
  }
  return n;
}
