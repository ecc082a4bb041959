/**
 * Requests for the starter policy (support refunds), generated from a seeded PRNG so that they hit every verdict:
 * small low-risk refunds (ALLOW), missing evidence or exchange rate (DENY), risky cards and likely chargebacks
 * (ABSTAIN), large or repeat refunds and unmatched requests (ESCALATE).
 */
import type { JsonValue } from "../src/core/json.ts";
import { parseJson } from "../src/core/parse-json.ts";
import { deriveFeatures, evaluationInput } from "../src/engine/normalize.ts";
import { redactForPersistence, requestedProfile } from "../src/engine/redact.ts";
import type { EvaluationInput } from "../src/policy/evaluate.ts";
import { validateRequest } from "../src/request/validate.ts";
import { prng } from "./harness.ts";

type Plain = Record<string, unknown>;

/** Parses the JSON text of a plain object as the CLI and server do (lossless numbers). */
export function asJsonValue(value: unknown): JsonValue {
  const parsed = parseJson(JSON.stringify(value));
  if (!parsed.ok) throw new Error(`bench: generated request is not JSON: ${parsed.problems[0]?.message}`);
  return parsed.value;
}

/** The EvaluationInput `decide()` builds for a request (validated, redacted, features derived). */
export function evaluationInputOf(value: JsonValue): EvaluationInput {
  const validated = validateRequest(value);
  if (!validated.ok)
    throw new Error(`bench: generated request is invalid: ${JSON.stringify(validated.problems)}`);
  const request = validated.value;
  const persisted = redactForPersistence(request, requestedProfile(request, "default")).request;
  return evaluationInput(persisted, deriveFeatures(persisted));
}

function cents(x: number): number {
  return Math.round(x * 100) / 100;
}

/** A plain (JSON-able) starter-policy request. */
export function starterRequest(random: () => number, requestId: string): Plain {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const roll = random();
  const action =
    roll < 0.85
      ? "support.refund"
      : roll < 0.93
        ? "support.issue_credit"
        : pick(["crm.update_contact", "support.close_ticket"]);
  const sizeRoll = random();
  const value =
    sizeRoll < 0.5
      ? cents(1 + random() * 24)
      : sizeRoll < 0.8
        ? cents(25 + random() * 175)
        : Math.round(200 + random() * 1800);
  const currencyRoll = random();
  const currency = currencyRoll < 0.9 ? "USD" : "EUR";
  const edge = random() < 0.1; // on a threshold of the policy, so that the agreement check covers boundaries
  const evidence: Plain = {};
  if (random() < 0.95) evidence.ticket_id = `ZD-${Math.floor(random() * 100_000)}`;
  if (random() < 0.95) evidence.order_id = String(Math.floor(random() * 1_000_000));
  if (random() < 0.95) evidence.customer_id = `C-${Math.floor(random() * 10_000)}`;
  if (currency !== "USD" && random() < 0.6) evidence.fx_rate_to_usd = 1.08;
  const riskRoll = random();
  evidence.payment_instrument_risk = riskRoll < 0.8 ? "low" : riskRoll < 0.9 ? "medium" : "high";
  const chargebackRoll = random();
  evidence.chargeback_risk = cents(
    chargebackRoll < 0.85
      ? random() * 0.34
      : chargebackRoll < 0.95
        ? 0.35 + random() * 0.34
        : 0.7 + random() * 0.3,
  );
  const repeatRoll = random();
  evidence.previous_refund_count_90d =
    repeatRoll < 0.8 ? 0 : repeatRoll < 0.9 ? 1 : 2 + Math.floor(random() * 4);
  evidence.customer_age_days = random() < 0.9 ? 14 + Math.floor(random() * 2000) : Math.floor(random() * 14);
  if (edge) {
    const which = Math.floor(random() * 4);
    if (which === 0) evidence.chargeback_risk = pick([0.35, 0.7]);
    if (which === 1) evidence.customer_age_days = 14;
    if (which === 2) evidence.previous_refund_count_90d = 2;
  }
  const amountValue = edge && random() < 0.5 ? pick([25, 200]) : value;
  return {
    schema_version: "decision_request.v1",
    request_id: requestId,
    tenant: { tenant_id: "acme", environment: "prod" },
    subject: { type: "agent", id: "support-agent-17", roles: ["support"] },
    action: {
      type: action,
      intent: "Refund a customer",
      target: { system: "stripe", resource_type: "charge", resource_id: `ch_${requestId}` },
      amount: { value: amountValue, currency },
    },
    evidence,
    context: { mode: "digest_only", digest: `sha256:${"0".repeat(64)}` },
  };
}

/** `count` starter-policy requests as plain objects. */
export function starterRequests(count: number, seed: number, idPrefix = "bench"): Plain[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) => starterRequest(random, `${idPrefix}-${i}`));
}
