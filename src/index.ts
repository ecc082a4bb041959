/**
 * Lumyn's library API: load and compile a policy, decide with or without a store, open a store, explain.
 * Every fallible call returns a {@link Result}; nothing here throws on bad input.
 */
export { STARTER_POLICY, STARTER_POLICY_HASH } from "./assets/starter-policy.ts";
export {
  type BacktestReport,
  BacktestTally,
  parseTransitions,
  type Redecision,
  redecideStored,
  triggered,
} from "./audit/backtest.ts";
export { buildPack, PACK_LIMITS, type PackContents, type PackSource, readPack } from "./audit/pack.ts";
export { type ReplayReport, replayPack } from "./audit/replay.ts";
export { verifyStoreChain } from "./audit/verify.ts";
export { digestJson, sha256 } from "./core/digest.ts";
export {
  canonicalJson,
  float,
  JsonFloat,
  type JsonObject,
  type JsonValue,
  stringify,
} from "./core/json.ts";
export { parseJson, parseJsonBytes } from "./core/parse-json.ts";
export {
  type Failure,
  formatProblem,
  LumynError,
  type Problem,
  type ProblemKind,
  type Result,
  StorageError,
} from "./core/problem.ts";
export { type PolicyMode, type Stage, VERDICT_PRECEDENCE, VERDICTS, type Verdict } from "./core/verdict.ts";
export { VERSION } from "./core/version.ts";
export type { ApiKey } from "./domain/api-key.ts";
export {
  type ChainBreak,
  type ChainCheckpoint,
  type ChainLink,
  type ChainReport,
  ChainVerifier,
} from "./domain/chain.ts";
export type { DecisionRecord, MatchedRule, PutDecisionResult } from "./domain/decision-record.ts";
export { LABELS, type Label } from "./domain/memory-case.ts";
export type { PolicySnapshot } from "./domain/policy-registry.ts";
export type { DecisionRequest } from "./domain/request.ts";
export {
  completeDecision,
  type DecideOptions,
  type Decision,
  decide,
  inputsDigest,
  type PreparedDecision,
  prepareDecision,
  preparePersisted,
} from "./engine/decide.ts";
export {
  type Explanation,
  explainRecord,
  explainRequest,
  explanationJson,
  renderExplanation,
} from "./engine/explain.ts";
export { type DerivedFeatures, deriveFeatures, evaluationInput } from "./engine/normalize.ts";
export { REDACTION_PROFILES, type RedactionProfile, redactForPersistence } from "./engine/redact.ts";
export {
  explainDecision,
  Lumyn,
  type LumynOptions,
  type OpenOptions,
  type StoredDecision,
  showDecision,
} from "./lumyn.ts";
export { DEFAULT_MEMORY_CONFIG, type MemoryConfig } from "./memory/arbitrate.ts";
export {
  fingerprint,
  freeTexts,
  PROJECTION,
  projectionOf,
  similarity,
  type TextEmbedder,
} from "./memory/fingerprint.ts";
export { MemoryIndex } from "./memory/index.ts";
export type { MemoryEvidence } from "./memory/recall.ts";
export {
  evaluatePolicy,
  type LoadPolicyOptions,
  loadPolicy,
  type Policy,
  type PolicyOutcome,
} from "./policy/policy.ts";
export { validateRequest } from "./request/validate.ts";
export type { DecisionPage, DecisionQuery, DecisionScan, Stats, StatsQuery } from "./store/decisions.ts";
export { hidePassword, parseStoreLocation, type StoreLocation } from "./store/location.ts";
export { type OpenStoreOptions, openStore } from "./store/open-store.ts";
export { PostgresStore, type PostgresStoreOptions } from "./store/postgres/postgres-store.ts";
export { SqliteStore, type SqliteStoreOptions } from "./store/sqlite/sqlite-store.ts";
export type { Store } from "./store/store.ts";
