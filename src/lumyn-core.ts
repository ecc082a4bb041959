/**
 * `lumyn/core`: Lumyn without I/O. Load and compile a policy, decide a request, explain a decision, compare
 * requests with labelled cases — pure functions over values, the same answers everywhere. Importing it loads
 * no store, no HTTP server and no database client. Every fallible call returns a {@link Result}; nothing here
 * throws on bad input.
 */

// Values: lossless JSON, canonical JSON and digests, problems, verdicts.
export { EXAMPLE_REQUESTS } from "./assets/example-requests.ts";
export { STARTER_POLICY, STARTER_POLICY_HASH } from "./assets/starter-policy.ts";
export { digestJson, sha256, signBody } from "./core/digest.ts";
export { parseDuration } from "./core/duration.ts";
export {
  canonicalJson,
  float,
  isJsonNumber,
  isJsonObject,
  JsonFloat,
  type JsonObject,
  type JsonValue,
  stringify,
  toDouble,
} from "./core/json.ts";
export {
  DEFAULT_MAX_JSON_BYTES,
  type ParseJsonOptions,
  parseJson,
  parseJsonBytes,
} from "./core/parse-json.ts";
export {
  didYouMean,
  type Failure,
  fail,
  formatProblem,
  LumynError,
  ok,
  type Problem,
  type ProblemKind,
  type Result,
  StorageError,
} from "./core/problem.ts";
export { plainSettingProblems, plainSpeedups, SPEEDUPS, type Speedup, setSpeedup } from "./core/speedups.ts";
export { GLOBAL_TENANT, tenantOf } from "./core/tenant.ts";
export { type PolicyMode, type Stage, VERDICT_PRECEDENCE, VERDICTS, type Verdict } from "./core/verdict.ts";
export { VERSION } from "./core/version.ts";
// What is stored and exchanged.
export { type ApiKey, type NewApiKey, SCOPES, type Scope } from "./domain/api-key.ts";
export {
  type Actor,
  APPROVAL_STATES,
  type Approval,
  type ApprovalSettings,
  type ApprovalState,
  isOpen,
  type Requester,
} from "./domain/approval.ts";
export type { ChainBreak, ChainCheckpoint, ChainLink, ChainReport } from "./domain/chain.ts";
export type { DecisionEvent } from "./domain/decision-event.ts";
export type { DecisionRecord, MatchedRule, PutDecisionResult } from "./domain/decision-record.ts";
export { LABELS, type Label, type MemoryCase } from "./domain/memory-case.ts";
export type { PolicyEvent, PolicySnapshot } from "./domain/policy-registry.ts";
export type { DecisionRequest } from "./domain/request.ts";
// Deciding: prepare, evaluate, arbitrate, record; explain.
export {
  completeDecision,
  type DecideOptions,
  type Decision,
  decide,
  inputsDigest,
  type PreparedDecision,
  prepareDecision,
  preparePersisted,
  storageUnavailableRecord,
} from "./engine/decide.ts";
export type { Evaluator } from "./engine/evaluator.ts";
export {
  type Explanation,
  explainRecord,
  explainRequest,
  explanationJson,
  renderExplanation,
} from "./engine/explain.ts";
export { type DerivedFeatures, deriveFeatures, evaluationInput } from "./engine/normalize.ts";
export { REDACTION_PROFILES, type RedactionProfile, redactForPersistence } from "./engine/redact.ts";
// Memory of outcomes.
export { DEFAULT_MEMORY_CONFIG, type MemoryConfig } from "./memory/arbitrate.ts";
export {
  fingerprint,
  freeTexts,
  PROJECTION,
  projectionOf,
  similarity,
  type TextEmbedder,
} from "./memory/fingerprint.ts";
export { type MemoryHit, MemoryIndex, type Neighbours } from "./memory/index.ts";
export type { MemoryEvidence } from "./memory/recall.ts";
// Policies.
export {
  DEFAULT_POLICY_MAX_BYTES,
  DEFAULT_POLICY_MAX_RULES,
  evaluatePolicy,
  type LoadPolicyOptions,
  loadPolicy,
  POLICY_BYTES_CEILING,
  POLICY_RULES_CEILING,
  type Policy,
  type PolicyLimits,
  type PolicyOutcome,
  policyLimitsFromEnvironment,
} from "./policy/policy.ts";
export { parseReasonCodeRegistry } from "./policy/registry.ts";
export { loadYaml11, type Position } from "./policy/yaml.ts";
export { validateRequest } from "./request/validate.ts";
