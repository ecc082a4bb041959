import { digestJson } from "../core/digest.ts";
import {
  float,
  isJsonNumber,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  toDouble,
} from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import type { Verdict } from "../core/verdict.ts";
import type { MatchedRule } from "../domain/decision-record.ts";
import {
  DEFAULT_FINGERPRINT_CONFIG,
  DIMENSIONS,
  type FingerprintConfig,
  fingerprintFromBase64,
  fingerprintToBase64,
  PROJECTION,
} from "./fingerprint.ts";
import type { MemoryHit, Neighbours } from "./index.ts";

/** A policy's `memory:` section, with its defaults. */
export interface MemoryConfig {
  readonly enabled: boolean;
  readonly topK: number;
  /** `action_type`: compare with the tenant's decisions of the same action type; `tenant`: with all of them. */
  readonly scope: "action_type" | "tenant";
  readonly blockAt: number;
  readonly escalateAt: number;
  readonly allowAt: number;
  readonly blockVerdict: "DENY" | "ABSTAIN";
  readonly fingerprint: FingerprintConfig;
}

export const DEFAULT_MEMORY_CONFIG: MemoryConfig = {
  enabled: true,
  topK: 5,
  scope: "action_type",
  blockAt: 0.9,
  escalateAt: 0.75,
  allowAt: 0.98,
  blockVerdict: "DENY",
  fingerprint: DEFAULT_FINGERPRINT_CONFIG,
};

export const FAILURE_BLOCK = "FAILURE_MEMORY_SIMILAR_BLOCK";
export const FAILURE_ESCALATE = "FAILURE_MEMORY_SIMILAR_ESCALATE";
export const SUCCESS_ALLOW = "SUCCESS_MEMORY_SIMILAR_ALLOW";

export interface Arbitration {
  readonly verdict: Verdict;
  readonly reasonCodes: readonly string[];
  readonly matchedRules: readonly MatchedRule[];
  /** What memory did, when it changed the verdict. */
  readonly memoryRule?: MatchedRule;
}

export function topScore(hits: readonly MemoryHit[]): number {
  return hits[0]?.score ?? 0;
}

/**
 * Memory's say after the policy's: a DENY or ABSTAIN from policy always stands; a near failure blocks
 * (≥ block_at) or escalates an ALLOW (≥ escalate_at); a near success with no near failure allows an
 * ESCALATE (≥ allow_at). When memory changes the verdict it is recorded as a `MEMORY` matched rule.
 */
export function arbitrate(
  policy: {
    readonly verdict: Verdict;
    readonly reasonCodes: readonly string[];
    readonly matchedRules: readonly MatchedRule[];
  },
  neighbours: Neighbours,
  config: MemoryConfig,
): Arbitration {
  const failure = topScore(neighbours.failure);
  const success = topScore(neighbours.success);
  let verdict: Verdict = policy.verdict;
  let code: string | undefined;
  const nearFailure = neighbours.failure.length > 0;
  if (policy.verdict === "ALLOW" || policy.verdict === "ESCALATE") {
    if (nearFailure && failure >= config.blockAt) [verdict, code] = [config.blockVerdict, FAILURE_BLOCK];
    else if (nearFailure && failure >= config.escalateAt && policy.verdict === "ALLOW")
      [verdict, code] = ["ESCALATE", FAILURE_ESCALATE];
    else if (
      neighbours.success.length > 0 &&
      success >= config.allowAt &&
      !(nearFailure && failure >= config.escalateAt) &&
      policy.verdict === "ESCALATE"
    )
      [verdict, code] = ["ALLOW", SUCCESS_ALLOW];
  }
  if (code === undefined) return policy;
  const memoryRule: MatchedRule = {
    rule_id: "MEMORY",
    stage: "MEMORY",
    effect: verdict,
    reason_codes: [code],
  };
  return {
    verdict,
    reasonCodes: [...policy.reasonCodes, code],
    matchedRules: [...policy.matchedRules, memoryRule],
    memoryRule,
  };
}

function similarityJson(hits: readonly MemoryHit[], summaries: ReadonlyMap<string, string>): JsonObject {
  return {
    score: float(topScore(hits)),
    top_k: hits.map((hit) => ({
      id: hit.decisionId,
      label: hit.label,
      score: float(hit.score),
      summary: summaries.get(hit.decisionId) ?? "",
    })),
  };
}

/** `risk_signals` of a record: the reference's nested shape and the flat fields of the Lumyn docs. */
export function riskSignals(neighbours: Neighbours, summaries: ReadonlyMap<string, string>): JsonObject {
  const failure = topScore(neighbours.failure);
  const success = topScore(neighbours.success);
  const hits = neighbours.failure.length + neighbours.success.length;
  // No labelled neighbour: nothing is known either way. Otherwise the clearer the strongest signal, the surer.
  const uncertainty = hits === 0 ? 0.5 : Math.min(1, Math.max(0, 1 - Math.max(failure, success)));
  return {
    uncertainty_score: float(uncertainty),
    failure_similarity: similarityJson(neighbours.failure, summaries),
    success_similarity: similarityJson(neighbours.success, summaries),
    failure_similarity_score: float(failure),
    failure_similarity_top_k: neighbours.failure.map((hit) => hit.decisionId),
  };
}

/**
 * `determinism.memory`: a `memory_snapshot.v1` holding everything arbitration used — the projection, the
 * query's fingerprint, the settings and every hit with its fingerprint — so that a replay re-runs it exactly.
 */
export function memorySnapshot(
  query: Int8Array,
  neighbours: Neighbours,
  config: MemoryConfig,
  projection: string = PROJECTION,
): JsonObject {
  const hits = [...neighbours.failure, ...neighbours.success]
    .map((hit) => ({
      decision_id: hit.decisionId,
      outcome: hit.label === "failure" ? -1 : 1,
      score: float(hit.score),
      fingerprint: fingerprintToBase64(hit.vector),
    }))
    .sort(
      (a, b) =>
        Number(b.score) - Number(a.score) ||
        (a.decision_id < b.decision_id ? -1 : a.decision_id > b.decision_id ? 1 : a.outcome - b.outcome),
    );
  const snapshot: JsonObject = {
    schema_version: "memory_snapshot.v1",
    projection: { model: projection, dimensions: DIMENSIONS },
    query: { top_k: config.topK, scope: config.scope, fingerprint: fingerprintToBase64(query) },
    consensus: {
      block_at: float(config.blockAt),
      escalate_at: float(config.escalateAt),
      allow_at: float(config.allowAt),
      block_verdict: config.blockVerdict,
      risk_threshold: float(config.blockAt),
      success_allow_threshold: float(config.allowAt),
    },
    hits,
  };
  return { ...snapshot, snapshot_digest: digestJson(snapshot) };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The query and neighbours a `memory_snapshot.v1` recorded, so that arbitration re-runs exactly as it ran,
 * with no live memory. A snapshot that is not one is refused with a pointer under `pointer`.
 */
export function neighboursFromSnapshot(
  snapshot: JsonValue,
  pointer: string,
): Result<{ projection: string; query: Int8Array; neighbours: Neighbours }> {
  const problems: Problem[] = [];
  const fingerprintAt = (value: JsonValue | undefined, at: string): Int8Array => {
    const vector =
      typeof value === "string" && BASE64.test(value) ? fingerprintFromBase64(value) : new Int8Array(0);
    if (vector.length !== DIMENSIONS)
      problems.push({
        code: "memory_snapshot",
        message: `not a ${DIMENSIONS}-byte fingerprint`,
        pointer: at,
        expected: "base64 of a lumyn-fingerprint-v1 vector",
      });
    return vector;
  };
  if (!isJsonObject(snapshot) || snapshot.schema_version !== "memory_snapshot.v1") {
    return fail("invalid_request", [
      {
        code: "memory_snapshot",
        message: "not a memory_snapshot.v1",
        pointer,
        expected: "a memory_snapshot.v1 object",
      },
    ]);
  }
  const query = fingerprintAt(
    isJsonObject(snapshot.query) ? snapshot.query.fingerprint : undefined,
    `${pointer}/query/fingerprint`,
  );
  const failure: MemoryHit[] = [];
  const success: MemoryHit[] = [];
  const hits = Array.isArray(snapshot.hits) ? snapshot.hits : [];
  if (!Array.isArray(snapshot.hits))
    problems.push({ code: "memory_snapshot", message: "hits must be a list", pointer: `${pointer}/hits` });
  hits.forEach((hit, index) => {
    const at = `${pointer}/hits/${index}`;
    if (
      !isJsonObject(hit) ||
      typeof hit.decision_id !== "string" ||
      (hit.outcome !== -1 && hit.outcome !== 1) ||
      !isJsonNumber(hit.score)
    ) {
      problems.push({
        code: "memory_snapshot",
        message: "not a memory hit",
        pointer: at,
        expected: "{decision_id, outcome: -1 | 1, score, fingerprint}",
      });
      return;
    }
    const vector = fingerprintAt(hit.fingerprint, `${at}/fingerprint`);
    const label = hit.outcome === -1 ? "failure" : "success";
    (label === "failure" ? failure : success).push({
      decisionId: hit.decision_id,
      label,
      score: toDouble(hit.score),
      vector,
    });
  });
  if (problems.length > 0) return fail("invalid_request", problems);
  const model = isJsonObject(snapshot.projection) ? snapshot.projection.model : undefined;
  return ok({
    projection: typeof model === "string" ? model : PROJECTION,
    query,
    neighbours: { failure, success },
  });
}
