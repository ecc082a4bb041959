/**
 * `lumyn`: a decision gateway with its stores, and the services the CLI and the server are built on. It
 * holds everything of `lumyn/core` too (the pure library); the HTTP service is `lumyn/server` and the HTTP
 * client `lumyn/client`. Every fallible call returns a {@link Result}; nothing here throws on bad input.
 * Database clients load when a store of theirs is opened (PostgreSQL) or Redis is first used, never with
 * the library.
 */

export {
  DEFAULT_FALLBACK,
  type EvaluatorFallback,
  evaluatorAnswer,
  evaluatorFallback,
  evaluatorRequest,
  MATERIALITIES,
  type Materiality,
  materialityOf,
} from "./approvals/gantral.ts";
// Approvals, webhooks, and the evaluator endpoint of an execution-authority layer (Gantral).
export { Approvals } from "./approvals/service.ts";
export { addWebhook, displayUrl, WebhookDispatcher } from "./approvals/webhooks.ts";
export {
  type BacktestReport,
  BacktestTally,
  DEFAULT_TOP_CHANGED,
  parseTransitions,
  type Redecision,
  redecideRequest,
  redecideStored,
  type Transition,
  triggered,
} from "./audit/backtest.ts";
export { buildPack, PACK_LIMITS, type PackContents, type PackSource, readPack } from "./audit/pack.ts";
export { type ReplayReport, replayPack } from "./audit/replay.ts";
// The audit log: verification, signing keys, decision packs and replay, backtests.
export { verifyStoreChain } from "./audit/verify.ts";
// Writing policies: test files and coverage, lint, diff.
export { type Change, diffPolicies, type PolicyDiff, renderDiff } from "./authoring/diff.ts";
export { type Finding, type LintContext, lintPolicy, type Severity } from "./authoring/lint.ts";
export { type CaseResult, type Coverage, coverageOf, runCase } from "./authoring/run-tests.ts";
export { parseTestSuite, type TestCase } from "./authoring/test-suite.ts";
// API keys of the HTTP service.
export { createApiKey, grants, hashApiKey, KEY_PREFIX, reservedPrincipal } from "./domain/api-key.ts";
export {
  ChainVerifier,
  checkpointFromJson,
  checkpointJson,
  checkpointSigned,
  DEFAULT_CHECKPOINT_EVERY,
  keyId,
  type SigningKey,
  signingKeyFromPem,
} from "./domain/chain.ts";
export {
  POLICY_KEY_PREFIX,
  POLICY_REJECTION_REASONS,
  type PolicyRejectionReason,
  publicKeyPem,
  type SignedPolicy,
  signedPolicyJson,
  signPolicy,
} from "./domain/signed-policy.ts";
export { approvalSettingsFor } from "./engine/approval.ts";
// The gateway: a policy, a store and memory, wired into the decision pipeline.
export {
  explainDecision,
  Lumyn,
  type LumynOptions,
  type OpenOptions,
  packDecision,
  type StoredDecision,
  showDecision,
} from "./lumyn.ts";
export * from "./lumyn-core.ts";
// The per-tenant policy registry, its four-eyes review, signed policy documents and Redis.
export {
  approveChange,
  type ChangeRequest,
  fourEyesRequired,
  openRequests,
  type RequestedChange,
  type ReviewOutcome,
  rejectChange,
  setFourEyes,
} from "./registry/change-review.ts";
export {
  activatePolicy,
  activeOf,
  publishPolicy,
  type RegistryChange,
  registryTenant,
  rollbackPolicy,
} from "./registry/policy-registry.ts";
export { announcePolicyChange, PolicySync } from "./registry/policy-sync.ts";
export { redactUrl } from "./registry/redis.ts";
export { RedisVelocityCounters } from "./registry/redis-counters.ts";
// Stores: one interface per aggregate, SQLite embedded, PostgreSQL for many servers.
export type { ApiKeyStore } from "./store/api-keys.ts";
export type { ApprovalChange, ApprovalQuery, ApprovalStore } from "./store/approvals.ts";
export type { AuditLog } from "./store/audit-log.ts";
export {
  type DecisionPage,
  type DecisionQuery,
  type DecisionScan,
  type DecisionStore,
  STATS_DIMENSIONS,
  type Stats,
  type StatsDimension,
  type StatsQuery,
} from "./store/decisions.ts";
export { hidePassword, parseStoreLocation, type StoreLocation } from "./store/location.ts";
export type { LabelWrite, MemoryCaseStore } from "./store/memory-cases.ts";
export { migrateStore, type OpenStoreOptions, openStore } from "./store/open-store.ts";
export type { PolicyRegistryStore } from "./store/policy-registry.ts";
export type { PostgresStore, PostgresStoreOptions } from "./store/postgres/postgres-store.ts";
export type { MigrationOutcome } from "./store/postgres/schema.ts";
export { SqliteStore, type SqliteStoreOptions } from "./store/sqlite/sqlite-store.ts";
export type { ChainOptions, Store } from "./store/store.ts";
export type { VelocityStore } from "./store/velocity.ts";
export type { WebhookStore } from "./store/webhooks.ts";
export {
  DATABASE_FILE,
  DEFAULT_WORKSPACE,
  ensureWorkspace,
  type InitializedWorkspace,
  initWorkspace,
  readText,
  type Workspace,
  workspaceAt,
  workspaceRegistry,
  workspaceSigningKey,
  writeFileAtomic,
} from "./workspace.ts";
