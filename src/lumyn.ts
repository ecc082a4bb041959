import { Approvals } from "./approvals/service.ts";
import { buildPack } from "./audit/pack.ts";
import { entryProof } from "./audit/proof.ts";
import type { JsonValue } from "./core/json.ts";
import { didYouMean, fail, ok, type Result } from "./core/problem.ts";
import { tenantOf } from "./core/tenant.ts";
import type { DecisionEvent } from "./domain/decision-event.ts";
import type { DecisionRecord } from "./domain/decision-record.ts";
import { LABELS, type Label } from "./domain/memory-case.ts";
import { DEFAULT_POLICY_TENANT, type PolicySnapshot } from "./domain/policy-registry.ts";
import type { DecideOptions } from "./engine/decide.ts";
import { type Explanation, explainRecord } from "./engine/explain.ts";
import { DecisionPipeline, type StoredDecision } from "./engine/pipeline.ts";
import type { RedactionProfile } from "./engine/redact.ts";
import { type VelocityCounters, VelocityMeter } from "./engine/velocity.ts";
import type { TextEmbedder } from "./memory/fingerprint.ts";
import { type MemoryEvidence, MemoryRecall } from "./memory/recall.ts";
import { hashPolicyText, loadPolicy, type Policy, type PolicyLimits } from "./policy/policy.ts";
import type { DecisionPage, DecisionQuery, Stats, StatsQuery } from "./store/decisions.ts";
import { parseStoreLocation, type StoreLocation } from "./store/location.ts";
import { openStore } from "./store/open-store.ts";
import { parseStored } from "./store/rows.ts";
import type { SqliteStoreOptions } from "./store/sqlite/sqlite-store.ts";
import type { Store } from "./store/store.ts";
import {
  ensureWorkspace,
  readText,
  type Workspace,
  workspaceAt,
  workspaceRegistry,
  workspaceSigningKey,
} from "./workspace.ts";

export type { StoredDecision };

export interface LumynOptions {
  /** The default policy: for tenants without an active version in the registry (unless the registry has a default). */
  readonly policy: Policy;
  /**
   * Whether the registry's default version (tenant `*`), when there is one, replaces `policy` as the default
   * (true for a workspace's own policy.yml; false when the caller chose a policy file).
   */
  readonly registryDefault?: boolean;
  /** The reason codes policies may use (any when absent): what versions published through the gateway are held to. */
  readonly reasonCodeRegistry?: ReadonlySet<string>;
  readonly store: Store;
  /** Redaction profile for requests that do not choose one (default: `default`). */
  readonly redactionProfile?: RedactionProfile;
  /** A text embedding model for free-text evidence in fingerprints (none by default; see docs/memory.md). */
  readonly textEmbedder?: TextEmbedder;
  /** The time decisions and approvals are judged by (the system clock by default). */
  readonly clock?: () => Date;
  /** Counters that answer velocity measures faster than the store's SQL (Redis); the store when absent. */
  readonly velocityCounters?: VelocityCounters;
  /** What the registry's versions may weigh (the defaults of {@link PolicyLimits} when absent). */
  readonly policyLimits?: PolicyLimits;
}

export interface OpenOptions {
  /** Workspace folder (default `.lumyn`); created when missing, with the starter policy. */
  readonly workspace?: string;
  /** Policy file; the workspace's `policy.yml` otherwise. */
  readonly policyPath?: string;
  readonly redactionProfile?: RedactionProfile;
  readonly reasonCodeRegistry?: ReadonlySet<string>;
  /** The embedded store's settings (when the store is a SQLite file). */
  readonly store?: SqliteStoreOptions;
  /**
   * Where the store is: a PostgreSQL URL (`postgres://…`) or a SQLite file (see src/store/location.ts); the
   * workspace's `lumyn.db` when unset. The workspace still holds the policy and the signing key.
   */
  readonly storeUrl?: string;
  /** PostgreSQL: apply pending migrations on open (default true). */
  readonly migrate?: boolean;
  readonly textEmbedder?: TextEmbedder;
  readonly clock?: () => Date;
  readonly velocityCounters?: VelocityCounters;
  /** What the policy file and the registry's versions may weigh (the defaults of {@link PolicyLimits} when absent). */
  readonly policyLimits?: PolicyLimits;
}

/**
 * A decision gateway: its policies (a default, and each tenant's active registry version), its store and its
 * memory, wired into the decision pipeline (src/engine/pipeline.ts). `decide` returns only once the record is
 * durable; when the store cannot be written it answers ABSTAIN with `STORAGE_UNAVAILABLE` and stores nothing.
 */
export class Lumyn {
  readonly store: Store;
  readonly reasonCodeRegistry: ReadonlySet<string> | undefined;
  /** Approvals that ESCALATEs opened: votes, overrides, consumption, deadlines (see docs/approvals.md). */
  readonly approvals: Approvals;
  /** What a policy this gateway loads may weigh: its registry's versions, and documents a server reads. */
  readonly policyLimits: PolicyLimits;
  private readonly filePolicy: Policy;
  private readonly registryDefault: boolean;
  /** Each tenant's active policy in the registry (`*`: the registry's default). Replaced whole on reload. */
  private tenantPolicies: ReadonlyMap<string, Policy> = new Map();
  /** Policies read from the registry, by hash: a version is parsed and compiled once. */
  private readonly registryPolicies = new Map<string, Policy>();
  private readonly recall: MemoryRecall;
  private readonly velocity: VelocityMeter;
  private readonly pipeline: DecisionPipeline;

  /** Memory starts empty: call {@link Lumyn.loadMemory} to read the store's labelled cases ({@link Lumyn.open} does). */
  constructor(options: LumynOptions) {
    this.filePolicy = options.policy;
    this.registryDefault = options.registryDefault ?? false;
    this.reasonCodeRegistry = options.reasonCodeRegistry;
    this.policyLimits = options.policyLimits ?? {};
    this.store = options.store;
    const clock = options.clock ?? (() => new Date());
    this.approvals = new Approvals(this.store.approvals, this.store.log, clock);
    this.recall = new MemoryRecall(this.store.memory, this.store.log, options.textEmbedder);
    this.velocity = new VelocityMeter(this.store.velocity, options.velocityCounters);
    this.pipeline = new DecisionPipeline(
      {
        policyFor: (tenantId) => this.policyFor(tenantId),
        memory: this.recall,
        velocity: this.velocity,
        decisions: this.store.decisions,
        approvals: this.store.approvals,
        policies: this.store.policies,
        clock,
      },
      options.redactionProfile,
    );
  }

  /** Answers velocity measures from these counters from now on (and feeds them every stored decision). */
  useVelocityCounters(counters: VelocityCounters | undefined): void {
    this.velocity.counters = counters;
  }

  /** The default policy: the registry's default version when it applies, else the policy the gateway was given. */
  get policy(): Policy {
    return (
      (this.registryDefault ? this.tenantPolicies.get(DEFAULT_POLICY_TENANT) : undefined) ?? this.filePolicy
    );
  }

  /** The policy a tenant's requests are decided under: its active registry version, else the default. */
  policyFor(tenantId: string): Policy {
    return this.tenantPolicies.get(tenantId) ?? this.policy;
  }

  /** Every tenant's active registry version (`*`: the registry's default), by tenant. */
  activeVersions(): Map<string, string> {
    return new Map([...this.tenantPolicies].map(([tenant, policy]) => [tenant, policy.hash]));
  }

  /**
   * Reads the registry's active versions from the store and decides under them from now on. All or nothing:
   * when a version cannot be read or loaded, the failure is returned and the policies in use stay as they were.
   */
  async reloadPolicies(): Promise<Result<Map<string, string>>> {
    const active = await this.store.policies.active();
    const next = new Map<string, Policy>();
    for (const [tenantId, hash] of active) {
      let policy = this.registryPolicies.get(hash);
      if (!policy) {
        const loaded = await policyByHash(this.store, hash, this.policyLimits);
        if (!loaded.ok) return loaded;
        policy = loaded.value;
        this.registryPolicies.set(hash, policy);
      }
      next.set(tenantId, policy);
    }
    this.tenantPolicies = next;
    return ok(active);
  }

  /** The policy with this hash, if this gateway decides under it or has read it from the registry. */
  loadedPolicy(policyHash: string): Policy | undefined {
    if (this.filePolicy.hash === policyHash) return this.filePolicy;
    return this.registryPolicies.get(policyHash);
  }

  /** Reads every labelled case of the store into memory, replacing what it held; returns how many. */
  loadMemory(): Promise<number> {
    return this.recall.load();
  }

  /**
   * Catches up with labels given through other processes on the same store (other servers, the CLI) since
   * the last look, from the event log; returns how many decisions' cases it read again.
   */
  refreshMemory(): Promise<number> {
    return this.recall.refresh();
  }

  /** Opens a workspace: its store (SQLite unless `storeUrl` says otherwise) and its policy (or the given file). */
  static async open(options: OpenOptions = {}): Promise<Result<Lumyn & { readonly workspace: Workspace }>> {
    const workspace = workspaceAt(options.workspace);
    let location: StoreLocation = { kind: "sqlite", path: workspace.databasePath };
    if (options.storeUrl !== undefined) {
      const parsed = parseStoreLocation(options.storeUrl);
      if (!parsed.ok) return parsed;
      location = parsed.value;
    }
    const failureAt = location.kind === "sqlite" ? workspace.dir : undefined;
    let policyPath = options.policyPath;
    let store: Store;
    try {
      const signingKeyPem = workspaceSigningKey(workspace);
      // The store first: one that cannot be opened leaves no new workspace behind.
      store = await openStore(location, {
        ...(signingKeyPem ? { signingKeyPem } : {}),
        ...(options.migrate !== undefined ? { migrate: options.migrate } : {}),
        ...(options.store ? { sqlite: options.store } : {}),
      });
    } catch (error) {
      return storageFailure(error, failureAt);
    }
    try {
      if (!policyPath) {
        ensureWorkspace(workspace);
        policyPath = workspace.policyPath;
      }
    } catch (error) {
      await store.close().catch(() => undefined);
      return storageFailure(error, failureAt);
    }
    let text: string;
    try {
      text = readText(policyPath);
    } catch (error) {
      void store.close();
      return fail("invalid_policy", [
        { code: "read", message: `cannot read the policy: ${(error as Error).message}`, file: policyPath },
      ]);
    }
    const registry = options.reasonCodeRegistry
      ? ok(options.reasonCodeRegistry)
      : workspaceRegistry(workspace);
    if (!registry.ok) {
      void store.close();
      return registry;
    }
    const policy = loadPolicy(text, {
      file: policyPath,
      ...(registry.value ? { reasonCodeRegistry: registry.value } : {}),
      ...options.policyLimits,
    });
    if (!policy.ok) {
      void store.close();
      return policy;
    }
    const lumyn = new Lumyn({
      policy: policy.value,
      registryDefault: options.policyPath === undefined,
      ...(registry.value ? { reasonCodeRegistry: registry.value } : {}),
      store,
      ...(options.textEmbedder ? { textEmbedder: options.textEmbedder } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.velocityCounters ? { velocityCounters: options.velocityCounters } : {}),
      ...(options.redactionProfile ? { redactionProfile: options.redactionProfile } : {}),
      ...(options.policyLimits ? { policyLimits: options.policyLimits } : {}),
    });
    try {
      const registry = await lumyn.reloadPolicies();
      if (!registry.ok) {
        await store.close();
        return registry;
      }
      await lumyn.loadMemory();
      // Deadlines are stored, not only held in memory: what fell due while nothing ran is resolved now.
      await lumyn.approvals.expireDue();
    } catch (error) {
      await store.close().catch(() => undefined);
      return storageFailure(error, failureAt);
    }
    return ok(Object.assign(lumyn, { workspace }));
  }

  /**
   * Decides and stores. Bad input is a failure result (nothing stored); a repeated request_id returns the
   * stored record, or a `conflict` failure when the request differs.
   */
  decide(
    request: JsonValue,
    options: Omit<DecideOptions, "redactionProfile"> = {},
  ): Promise<Result<StoredDecision>> {
    return this.pipeline.decide(request, options);
  }

  /**
   * Labels a stored decision. The label is an event (history kept; the latest wins) and the decision
   * becomes a case of memory at once: the next decision already sees it.
   */
  async label(
    decisionId: string,
    label: string,
    details: { summary?: string; severity?: number } = {},
  ): Promise<Result<DecisionEvent>> {
    if (!(LABELS as readonly string[]).includes(label)) {
      const hint = didYouMean(label, LABELS);
      return fail("invalid_request", [
        {
          code: "label",
          message: `unknown label '${label}'`,
          expected: LABELS.join(" or "),
          ...(hint ? { hint } : {}),
        },
      ]);
    }
    const severity = details.severity;
    if (severity !== undefined && !(Number.isInteger(severity) && severity >= 1 && severity <= 5)) {
      return fail("invalid_request", [
        {
          code: "severity",
          message: `severity ${severity} is not allowed`,
          expected: "a whole number from 1 to 5",
        },
      ]);
    }
    const record = await this.store.decisions.get(decisionId);
    if (!record) return notFound(decisionId);
    const tenantId = tenantOf(record.request);
    const config = this.policyFor(tenantId).model.memory;
    const memoryCase = {
      decisionId,
      tenantId,
      actionType: String(record.request.action.type),
      label: label as Label,
      vector: await this.recall.fingerprint(record.request, config.fingerprint),
    };
    const event = await this.store.memory.putLabel({
      ...memoryCase,
      fingerprint: memoryCase.vector,
      projection: this.recall.projection,
      ...(details.summary !== undefined ? { summary: details.summary } : {}),
      ...(severity !== undefined ? { severity } : {}),
    });
    if (!event) return notFound(decisionId);
    this.recall.remember(memoryCase);
    return ok(event);
  }

  /** The labelled decisions nearest to a stored one, with scores and summaries. */
  async similar(decisionId: string): Promise<Result<{ record: DecisionRecord; evidence: MemoryEvidence }>> {
    const record = await this.store.decisions.get(decisionId);
    if (!record) return notFound(decisionId);
    const tenantId = tenantOf(record.request);
    const config = this.policyFor(tenantId).model.memory;
    const evidence = await this.recall.similar(
      decisionId,
      tenantId,
      String(record.request.action.type),
      record.request,
      config,
    );
    return ok({ record, evidence });
  }

  /** Labelled cases per tenant, action type and label. */
  memoryCounts(): ReturnType<MemoryRecall["counts"]> {
    return this.recall.counts();
  }

  show(decisionId: string): Promise<Result<DecisionRecord>> {
    return showDecision(this.store, decisionId);
  }

  explain(decisionId: string): Promise<Result<{ record: DecisionRecord; explanation: Explanation }>> {
    return explainDecision(this.store, decisionId, (hash) => this.loadedPolicy(hash), this.policyLimits);
  }

  /** One page of stored records, newest first (see {@link DecisionQuery} for filters and the cursor). */
  async list(query: DecisionQuery = {}): Promise<DecisionPage> {
    const page = await this.store.decisions.list(query);
    const records = page.decisions.map((decision) => parseStored(decision.json) as DecisionRecord);
    return page.nextCursor ? { records, nextCursor: page.nextCursor } : { records };
  }

  stats(query: StatsQuery): Promise<Stats> {
    return this.store.decisions.stats(query);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** A stored record, by id. */
export async function showDecision(store: Store, decisionId: string): Promise<Result<DecisionRecord>> {
  const record = await store.decisions.get(decisionId);
  return record ? ok(record) : notFound(decisionId);
}

/**
 * A stored decision as a decision pack (zip bytes): the record, its request, the exact policy text its hash
 * names, its memory and events, and a manifest (see audit/pack.ts).
 */
export async function packDecision(
  store: Store,
  decisionId: string,
): Promise<Result<{ record: DecisionRecord; bytes: Uint8Array }>> {
  const record = await store.decisions.get(decisionId);
  if (!record) return notFound(decisionId);
  const policy = await snapshotByHash(store, record.policy.policy_hash);
  if (!policy.ok)
    return policy.kind === "not_found"
      ? fail("not_found", [
          {
            code: "policy_not_found",
            message: `no snapshot of policy ${record.policy.policy_hash} in the store: the pack would not replay`,
          },
        ])
      : policy;
  const events = await store.log.events(decisionId);
  const proof = await entryProof(store.log, decisionId);
  return ok({
    record,
    bytes: buildPack({ record, policyText: policy.value.text, events, ...(proof ? { proof } : {}) }),
  });
}

/**
 * Explains a stored decision with the policy it was decided under, recovered from the store by hash (and held
 * to `limits` when it is read from there).
 */
export async function explainDecision(
  store: Store,
  decisionId: string,
  loaded?: (policyHash: string) => Policy | undefined,
  limits?: PolicyLimits,
): Promise<Result<{ record: DecisionRecord; explanation: Explanation }>> {
  const record = await store.decisions.get(decisionId);
  if (!record) return notFound(decisionId);
  const known = loaded?.(record.policy.policy_hash);
  const policy = known ? ok(known) : await policyByHash(store, record.policy.policy_hash, limits);
  if (!policy.ok) return policy;
  return ok({ record, explanation: explainRecord(record, policy.value) });
}

/**
 * A policy by hash, from its snapshot in the store. A snapshot whose text no longer hashes to the hash it is
 * kept under was changed outside Lumyn: it is refused, never explained or decided under.
 */
async function policyByHash(
  store: Store,
  policyHash: string,
  limits: PolicyLimits = {},
): Promise<Result<Policy>> {
  const snapshot = await snapshotByHash(store, policyHash);
  if (!snapshot.ok) return snapshot;
  const loaded = loadPolicy(snapshot.value.text, { file: `policy ${policyHash}`, ...limits });
  if (loaded.ok && loaded.value.hash !== policyHash) return tamperedSnapshot(policyHash, loaded.value.hash);
  return loaded;
}

/** A policy's snapshot, when its text still hashes to the hash it is kept under. */
async function snapshotByHash(store: Store, policyHash: string): Promise<Result<PolicySnapshot>> {
  const snapshot = await store.policies.getSnapshot(policyHash);
  if (!snapshot)
    return fail("not_found", [
      { code: "policy_not_found", message: `no snapshot of policy ${policyHash} in the store` },
    ]);
  const hashed = hashPolicyText(snapshot.text, `policy ${policyHash}`);
  if (!hashed.ok) return hashed;
  return hashed.value === policyHash ? ok(snapshot) : tamperedSnapshot(policyHash, hashed.value);
}

function tamperedSnapshot<T>(policyHash: string, actual: string): Result<T> {
  return fail("tampered", [
    {
      code: "tampered",
      message: `the stored text of policy ${policyHash} hashes to ${actual}: it was changed outside Lumyn, and is refused`,
      hint: "run `lumyn verify` to see what else was changed",
    },
  ]);
}

function notFound<T>(decisionId: string): Result<T> {
  return fail("not_found", [{ code: "decision_not_found", message: `no decision with id '${decisionId}'` }]);
}

function storageFailure<T>(error: unknown, dir: string | undefined): Result<T> {
  return fail("storage", [
    {
      code: "storage",
      message: error instanceof Error ? error.message : String(error),
      ...(dir !== undefined ? { file: dir } : {}),
    },
  ]);
}
