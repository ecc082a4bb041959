import { sha256 } from "../core/digest.ts";
import { newDecisionId, timestamp } from "../core/ids.ts";
import {
  canonicalJson,
  float,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  RawJson,
} from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import { tenantOf } from "../core/tenant.ts";
import { EVALUATION_ORDER, type PolicyMode } from "../core/verdict.ts";
import { VERSION } from "../core/version.ts";
import type { Requester } from "../domain/approval.ts";
import { type DecisionRecord, RECORD_SCHEMA_VERSION } from "../domain/decision-record.ts";
import type { DecisionRequest } from "../domain/request.ts";
import type { VelocityValues } from "../domain/velocity.ts";
import { velocityRecord } from "../domain/velocity.ts";
import { arbitrate, memorySnapshot, riskSignals, topScore } from "../memory/arbitrate.ts";
import type { Neighbours } from "../memory/index.ts";
import type { MemoryEvidence } from "../memory/recall.ts";
import type { Policy, PolicyOutcome } from "../policy/policy.ts";
import { validateRequest } from "../request/validate.ts";
import { evaluatorOf } from "./evaluator.ts";
import {
  type DerivedFeatures,
  derivedJson,
  deriveFeatures,
  evaluationInput,
  NO_VELOCITY,
} from "./normalize.ts";
import { type Redaction, type RedactionProfile, redactForPersistence, requestedProfile } from "./redact.ts";

export interface DecideOptions {
  /** Used when the request does not choose `context.redaction.profile`. */
  readonly redactionProfile?: RedactionProfile;
  /** Injected for tests and replays; a new ULID otherwise. */
  readonly decisionId?: string;
  /** Injected for tests and replays; the current time otherwise. */
  readonly now?: Date;
  /**
   * Who asks (the principal of the calling key; `os:<user>` for the CLI): recorded as the requester of the
   * approval an ESCALATE opens, who may not approve it. The request's `subject.id` is recorded beside it.
   */
  readonly requester?: Requester;
}

/** Everything the pure steps produce for one request, kept for callers that need more than the record. */
export interface Decision {
  readonly record: DecisionRecord;
  readonly request: DecisionRequest;
  readonly redaction: Redaction;
  readonly derived: DerivedFeatures;
  /** The policy's answer alone, before memory arbitrated (the record holds the final one). */
  readonly policyOutcome: PolicyOutcome;
  /** Canonical JSON of the persisted request (`record.request`). */
  readonly requestJson: string;
}

const NO_NEIGHBOURS: Neighbours = { failure: [], success: [] };

/** Uncertainty when no memory evidence speaks either way. */
export const NEUTRAL_UNCERTAINTY = 0.5;

/**
 * `inputs_digest`: sha256 of the canonical JSON of `{request, derived}`, where the request is as persisted
 * (after redaction). Identical to Lumyn 1.3.6 for the same request.
 */
export function inputsDigest(persistedRequest: JsonObject, derived: DerivedFeatures): string {
  return inputsDigestOfJson(canonicalJson(persistedRequest), derived);
}

/** {@link inputsDigest} from the request's canonical JSON, already written ("derived" sorts before "request"). */
function inputsDigestOfJson(requestJson: string, derived: DerivedFeatures): string {
  return sha256(`{"derived":${canonicalJson(derivedJson(derived))},"request":${requestJson}}`);
}

/** The canonical JSON of a decision's record, reusing the request's JSON written for the digest. */
export function recordJson(decision: Decision): string {
  return canonicalJson({ ...decision.record, request: new RawJson(decision.requestJson) });
}

function emptySimilarity(): JsonObject {
  return { score: float(0), top_k: [] };
}

export function recordMode(request: DecisionRequest, policy: Policy): PolicyMode {
  const requested = isJsonObject(request.policy) ? request.policy.mode : undefined;
  return requested === "enforce" || requested === "advisory" ? requested : policy.model.defaults.mode;
}

/** A validated, redacted request with its digest: everything before memory is consulted. */
export interface PreparedDecision {
  readonly request: DecisionRequest;
  readonly redaction: Redaction;
  readonly derived: DerivedFeatures;
  readonly requestJson: string;
  readonly inputsDigest: string;
  /** The tenant memory is scoped to. */
  readonly tenantId: string;
}

/** Validates, redacts, derives and digests a request: everything that does not depend on memory. */
export function prepareDecision(
  requestValue: JsonValue,
  options: DecideOptions = {},
): Result<PreparedDecision> {
  const validated = validateRequest(requestValue);
  if (!validated.ok) return validated;
  const request = validated.value;
  const redaction = redactForPersistence(
    request,
    requestedProfile(request, options.redactionProfile ?? "default"),
  );
  return prepareRedacted(request, redaction);
}

/**
 * Prepares a request as it was persisted (already redacted, `context.redaction` in place), as a replay does:
 * nothing is removed twice, so the digest is the one the record was made with.
 */
export function preparePersisted(persistedValue: JsonValue): Result<PreparedDecision> {
  const validated = validateRequest(persistedValue);
  if (!validated.ok) return validated;
  const request = validated.value;
  const recorded = request.context.redaction;
  const profile = isJsonObject(recorded) ? recorded.profile : undefined;
  const fieldsRemoved =
    isJsonObject(recorded) && Array.isArray(recorded.fields_removed) ? recorded.fields_removed : [];
  return prepareRedacted(request, {
    request,
    profile: profile === "strict" || profile === "off" ? profile : "default",
    fieldsRemoved: fieldsRemoved.map(String),
  });
}

function prepareRedacted(request: DecisionRequest, redaction: Redaction): Result<PreparedDecision> {
  const persisted = redaction.request;
  const derived = deriveFeatures(persisted);
  const outOfRange = derivedOutOfRange(derived);
  if (outOfRange) return fail("invalid_request", [outOfRange]);
  const requestJson = canonicalJson(persisted);
  return ok({
    request,
    redaction,
    derived,
    requestJson,
    inputsDigest: inputsDigestOfJson(requestJson, derived),
    tenantId: tenantOf(persisted),
  });
}

/** What one evaluation decides: the policy's answer, then memory's arbitration of it (the record's answer). */
export interface DecidedOutcome {
  readonly policyOutcome: PolicyOutcome;
  readonly final: Pick<PolicyOutcome, "verdict" | "reasonCodes" | "matchedRules" | "queries" | "obligations">;
  /** The memory evidence that took part (none when it found no labelled neighbour). */
  readonly consulted: MemoryEvidence | undefined;
}

/**
 * Evaluates a persisted request under a policy (memory's features and the velocity measures' values
 * available to rules) and lets memory arbitrate. Decisions, replays and backtests all decide through here.
 */
export function decideOutcome(
  persisted: DecisionRequest,
  derived: DerivedFeatures,
  policy: Policy,
  memory: MemoryEvidence | undefined,
  velocity: VelocityValues = NO_VELOCITY,
): DecidedOutcome {
  const consulted =
    memory !== undefined && memory.neighbours.failure.length + memory.neighbours.success.length > 0
      ? memory
      : undefined;
  const neighbours = consulted?.neighbours ?? NO_NEIGHBOURS;
  const features = { failure: topScore(neighbours.failure), success: topScore(neighbours.success) };
  const outcome = evaluatorOf(policy).evaluate(evaluationInput(persisted, derived, features, velocity));
  const arbitration = consulted ? arbitrate(outcome, neighbours, policy.model.memory) : outcome;
  return {
    policyOutcome: outcome,
    final: {
      ...outcome,
      verdict: arbitration.verdict,
      reasonCodes: arbitration.reasonCodes,
      matchedRules: arbitration.matchedRules,
    },
    consulted,
  };
}

/**
 * Evaluates a prepared request (memory's features available to rules), arbitrates with memory, records.
 * Memory that found no labelled neighbour changes nothing and leaves no trace in the record: a replay
 * without memory gives the same answer. The velocity measures' values (when the policy has any) are
 * recorded in `determinism.velocity`, outside `inputs_digest`: they are history, not the request, so a
 * retried request is still the same request.
 */
export function completeDecision(
  prepared: PreparedDecision,
  policy: Policy,
  memory: MemoryEvidence | undefined,
  options: DecideOptions = {},
  measured?: VelocityValues,
): Decision {
  const persisted = prepared.redaction.request;
  // Decided without a store (no history measured): every measure is 0, as over an empty history.
  const velocity = measured ?? noHistory(policy);
  const { policyOutcome, final, consulted } = decideOutcome(
    persisted,
    prepared.derived,
    policy,
    memory,
    velocity,
  );
  const record = buildRecord({
    request: persisted,
    policy,
    outcome: final,
    inputsDigest: prepared.inputsDigest,
    decisionId: options.decisionId ?? newDecisionId(),
    createdAt: timestamp(options.now ?? new Date()),
    ...(policy.model.velocity.length > 0
      ? { velocity: velocityRecord(policy.model.velocity, velocity) }
      : {}),
    ...(consulted
      ? {
          riskSignals: riskSignals(consulted.neighbours, consulted.summaries),
          memorySnapshot: memorySnapshot(
            consulted.query,
            consulted.neighbours,
            policy.model.memory,
            consulted.projection,
          ),
        }
      : {}),
  });
  return {
    record,
    request: prepared.request,
    redaction: prepared.redaction,
    derived: prepared.derived,
    policyOutcome,
    requestJson: prepared.requestJson,
  };
}

function noHistory(policy: Policy): VelocityValues {
  const specs = policy.model.velocity;
  return specs.length === 0 ? NO_VELOCITY : Object.fromEntries(specs.map((spec) => [spec.name, 0]));
}

/**
 * Decides one request under one policy, without memory: validate → redact → derive → digest → evaluate →
 * record. (With memory: prepare, consult memory, complete, as `Lumyn.decide` does.) Pure apart from the id
 * and clock (both injectable); never throws on bad input.
 */
export function decide(
  requestValue: JsonValue,
  policy: Policy,
  options: DecideOptions = {},
): Result<Decision> {
  const prepared = prepareDecision(requestValue, options);
  if (!prepared.ok) return prepared;
  return ok(completeDecision(prepared.value, policy, undefined, options));
}

/** Amounts whose double is infinite (a huge integer, or an overflowing conversion) have no JSON form. */
function derivedOutOfRange(derived: DerivedFeatures): Problem | undefined {
  if (derived.amount_value !== null && !Number.isFinite(derived.amount_value)) {
    return {
      code: "out_of_range",
      message: "the amount is too large to compare",
      pointer: "/action/amount/value",
      expected: "a number below 1.8e308",
    };
  }
  if (derived.amount_usd !== null && !Number.isFinite(derived.amount_usd)) {
    return {
      code: "out_of_range",
      message: "the amount in USD (amount × fx_rate_to_usd) is too large to compare",
      pointer: "/evidence/fx_rate_to_usd",
      expected: "an amount and rate whose product is below 1.8e308",
    };
  }
  return undefined;
}

export interface RecordParts {
  readonly request: DecisionRequest;
  readonly policy: Policy;
  readonly outcome: Pick<
    PolicyOutcome,
    "verdict" | "reasonCodes" | "matchedRules" | "queries" | "obligations"
  >;
  readonly inputsDigest: string;
  readonly decisionId: string;
  readonly createdAt: string;
  readonly uncertainty?: number;
  readonly riskSignals?: JsonObject;
  readonly memorySnapshot?: JsonObject;
  /** The velocity measures the decision saw (see completeDecision). */
  readonly velocity?: JsonObject;
}

export function buildRecord(parts: RecordParts): DecisionRecord {
  const { policy, outcome } = parts;
  return {
    schema_version: RECORD_SCHEMA_VERSION,
    decision_id: parts.decisionId,
    created_at: parts.createdAt,
    request: parts.request,
    policy: {
      policy_id: policy.model.policyId,
      policy_version: policy.model.policyVersion,
      policy_hash: policy.hash,
      mode: recordMode(parts.request, policy),
    },
    verdict: outcome.verdict,
    reason_codes: [...outcome.reasonCodes],
    matched_rules: outcome.matchedRules.map((m) => ({
      rule_id: m.rule_id,
      stage: m.stage,
      effect: m.effect,
      reason_codes: [...m.reason_codes],
    })),
    risk_signals: parts.riskSignals ?? {
      uncertainty_score: float(parts.uncertainty ?? NEUTRAL_UNCERTAINTY),
      failure_similarity: emptySimilarity(),
      success_similarity: emptySimilarity(),
    },
    queries: [...outcome.queries],
    obligations: [...outcome.obligations],
    determinism: {
      engine_version: VERSION,
      evaluation_order: [...EVALUATION_ORDER],
      inputs_digest: parts.inputsDigest,
      ...(parts.memorySnapshot ? { memory: parts.memorySnapshot } : {}),
      ...(parts.velocity ? { velocity: parts.velocity } : {}),
    },
    extensions: {},
    trace: {},
  };
}

/** The fail-closed record when a decision cannot be stored: ABSTAIN with `STORAGE_UNAVAILABLE`. */
export function storageUnavailableRecord(decision: Decision, policy: Policy): DecisionRecord {
  return buildRecord({
    request: decision.record.request,
    policy,
    outcome: {
      verdict: "ABSTAIN",
      reasonCodes: ["STORAGE_UNAVAILABLE"],
      matchedRules: [],
      queries: [],
      obligations: [],
    },
    inputsDigest: decision.record.determinism.inputs_digest,
    decisionId: decision.record.decision_id,
    createdAt: decision.record.created_at,
    uncertainty: 1,
  });
}
