import { Approvals, approvalOpening } from "./approvals/service.ts";
import { buildPack } from "./audit/pack.ts";
import { canonicalJson, type JsonObject, type JsonValue } from "./core/json.ts";
import { didYouMean, fail, ok, type Result } from "./core/problem.ts";
import { tenantOf } from "./core/tenant.ts";
import type { Approval } from "./domain/approval.ts";
import type { DecisionEvent } from "./domain/decision-event.ts";
import type { DecisionRecord } from "./domain/decision-record.ts";
import { LABELS, type Label } from "./domain/memory-case.ts";
import { DEFAULT_POLICY_TENANT } from "./domain/policy-registry.ts";
import {
  completeDecision,
  type DecideOptions,
  type Decision,
  type MemoryEvidence,
  type PreparedDecision,
  prepareDecision,
  recordJson,
  storageUnavailableRecord,
} from "./engine/decide.ts";
import { type Explanation, explainRecord } from "./engine/explain.ts";
import type { RedactionProfile } from "./engine/redact.ts";
import { measureVelocity, type VelocityCounters } from "./engine/velocity.ts";
import { fingerprint, freeTexts, projectionOf, type TextEmbedder } from "./memory/fingerprint.ts";
import { type MemoryHit, MemoryIndex } from "./memory/index.ts";
import { readMemory } from "./memory/load.ts";
import { loadPolicy, type Policy } from "./policy/policy.ts";
import type { DecisionPage, DecisionQuery, Stats, StatsQuery } from "./store/decisions.ts";
import { parseStoreLocation, type StoreLocation } from "./store/location.ts";
import { openStore } from "./store/open-store.ts";
import { parseStored } from "./store/rows.ts";
import type { SqliteStoreOptions } from "./store/sqlite/sqlite-store.ts";
import { StorageError, type Store } from "./store/store.ts";
import {
  ensureWorkspace,
  readText,
  type Workspace,
  workspaceAt,
  workspaceRegistry,
  workspaceSigningKey,
} from "./workspace.ts";

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
  /** The time approvals are judged by (the system clock by default). */
  readonly clock?: () => Date;
  /** Counters that answer velocity measures faster than the store's SQL (Redis); the store when absent. */
  readonly velocityCounters?: VelocityCounters;
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
}

/** The outcome of a stored decision: the record, and whether it was newly stored or already there. */
export interface StoredDecision {
  readonly record: DecisionRecord;
  /** `stored`: written now; `duplicate`: the same request_id was decided before; `unavailable`: not stored (fail-closed). */
  readonly status: "stored" | "duplicate" | "unavailable";
  /** The record's canonical JSON (what the store keeps), ready to send as it is. */
  readonly json: string;
  /** The approval the decision opened, when it ESCALATEs and its policy asks people to approve. */
  readonly approval?: Approval;
}

/**
 * A decision gateway: one policy and one store. `decide` returns only once the record is durable; when the
 * store cannot be written it answers ABSTAIN with `STORAGE_UNAVAILABLE` and stores nothing.
 */
/** Label events read at a time when catching up with other processes' labels. */
const MEMORY_REFRESH_BATCH = 500;

export class Lumyn {
  readonly store: Store;
  readonly reasonCodeRegistry: ReadonlySet<string> | undefined;
  /** Approvals that ESCALATEs opened: votes, overrides, consumption, deadlines (see docs/approvals.md). */
  readonly approvals: Approvals;
  private readonly redactionProfile: RedactionProfile;
  private readonly textEmbedder: TextEmbedder | undefined;
  private velocityCounters: VelocityCounters | undefined;
  private readonly clock: () => Date;
  private readonly knownPolicies = new Map<string, Promise<void>>();
  private readonly filePolicy: Policy;
  private readonly registryDefault: boolean;
  /** Each tenant's active policy in the registry (`*`: the registry's default). Replaced whole on reload. */
  private tenantPolicies: ReadonlyMap<string, Policy> = new Map();
  /** Policies read from the registry, by hash: a version is parsed and compiled once. */
  private readonly registryPolicies = new Map<string, Policy>();
  private memory = new MemoryIndex();
  /** The event log position up to which labels are in {@link memory}. */
  private memorySeq = 0;

  /** Memory starts empty: call {@link Lumyn.loadMemory} to read the store's labelled cases ({@link Lumyn.open} does). */
  constructor(options: LumynOptions) {
    this.filePolicy = options.policy;
    this.registryDefault = options.registryDefault ?? false;
    this.reasonCodeRegistry = options.reasonCodeRegistry;
    this.velocityCounters = options.velocityCounters;
    this.store = options.store;
    this.redactionProfile = options.redactionProfile ?? "default";
    this.textEmbedder = options.textEmbedder;
    this.clock = options.clock ?? (() => new Date());
    this.approvals = new Approvals(this.store, this.clock);
  }

  /** Answers velocity measures from these counters from now on (and feeds them every stored decision). */
  useVelocityCounters(counters: VelocityCounters | undefined): void {
    this.velocityCounters = counters;
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
        const loaded = await policyByHash(this.store, hash);
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
  async loadMemory(): Promise<number> {
    // Read first: a label given while the cases load is then caught up by refreshMemory (an upsert again).
    const seq = await this.store.log.lastSeq();
    this.memory = await readMemory(this.store.memory);
    this.memorySeq = seq;
    return this.memory.size;
  }

  /**
   * Catches up with labels given through other processes on the same store (other servers, the CLI) since
   * the last look, from the event log; returns how many decisions' cases it read again.
   */
  async refreshMemory(): Promise<number> {
    let refreshed = 0;
    for (;;) {
      const labels = await this.store.log.after(this.memorySeq, ["label"], MEMORY_REFRESH_BATCH);
      if (labels.length === 0) return refreshed;
      const ids = [...new Set(labels.map((sequenced) => sequenced.event.decisionId))];
      for (const memoryCase of await this.store.memory.cases(ids)) this.memory.upsert(memoryCase);
      refreshed += ids.length;
      this.memorySeq = (labels.at(-1) as { seq: number }).seq;
      if (labels.length < MEMORY_REFRESH_BATCH) return refreshed;
    }
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
  async decide(
    request: JsonValue,
    options: Omit<DecideOptions, "redactionProfile"> = {},
  ): Promise<Result<StoredDecision>> {
    // One time for the record, the velocity windows it is measured over and the approval it may open.
    const decideOptions = {
      redactionProfile: this.redactionProfile,
      ...options,
      now: options.now ?? this.clock(),
    };
    const prepared = prepareDecision(request, decideOptions);
    if (!prepared.ok) return prepared;
    // One policy for the whole decision, even when an activation lands while it waits for the store.
    const policy = this.policyFor(prepared.value.tenantId);
    let decision: Decision;
    try {
      const [memory, velocity] = await Promise.all([
        this.consultMemory(prepared.value, policy),
        measureVelocity(
          policy.model.velocity,
          prepared.value.tenantId,
          prepared.value.redaction.request,
          decideOptions.now,
          this.store.velocity,
          this.velocityCounters,
        ),
      ]);
      decision = completeDecision(prepared.value, policy, memory, decideOptions, velocity);
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      const failClosed = completeDecision(prepared.value, policy, undefined, decideOptions);
      return unavailable(failClosed, policy);
    }
    try {
      await this.rememberPolicy(policy);
      const json = recordJson(decision);
      const opening = approvalOpening(decision.record, json, policy, decideOptions.now);
      const result = await this.store.decisions.put(decision.record, json, opening);
      switch (result.status) {
        case "stored":
          if (this.velocityCounters && policy.model.velocity.length > 0)
            await this.velocityCounters.observe(
              policy.model.velocity,
              prepared.value.tenantId,
              decision.record,
            );
          return ok({
            record: decision.record,
            status: "stored",
            json,
            ...(opening ? { approval: opening.approval } : {}),
          });
        case "duplicate": {
          const approval = await this.store.approvals.findByDecision(result.record.decision_id);
          return ok({
            record: result.record,
            status: "duplicate",
            json: canonicalJson(result.record),
            ...(approval ? { approval } : {}),
          });
        }
        case "conflict":
          return fail("conflict", [
            {
              code: "request_id_conflict",
              message: `request_id '${String(decision.request.request_id)}' was already used for a different request (decision ${result.existingDecisionId})`,
              pointer: "/request_id",
              expected: "a new request_id, or the same request as before",
            },
          ]);
      }
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      return unavailable(decision, policy);
    }
  }

  private rememberPolicy(policy: Policy): Promise<void> {
    let stored = this.knownPolicies.get(policy.hash);
    if (!stored) {
      stored = this.store.policies.putSnapshot({
        policyHash: policy.hash,
        policyId: policy.model.policyId,
        policyVersion: policy.model.policyVersion,
        text: policy.text,
      });
      stored.catch(() => this.knownPolicies.delete(policy.hash));
      this.knownPolicies.set(policy.hash, stored);
    }
    return stored;
  }

  /**
   * The nearest labelled failures and successes, in the tenant and (by default) the same action type; none
   * when memory is off or holds nothing in that scope (then no fingerprint is even computed).
   */
  private async consultMemory(
    prepared: PreparedDecision,
    policy: Policy,
  ): Promise<MemoryEvidence | undefined> {
    const actionType = memoryScope(policy, prepared.derived.action_type);
    if (!policy.model.memory.enabled || !this.memory.has(prepared.tenantId, actionType)) return undefined;
    return this.neighboursOf(
      policy,
      prepared.tenantId,
      actionType,
      await this.fingerprintOf(policy, prepared.redaction.request),
    );
  }

  /**
   * A request's fingerprint under the policy's `memory:` settings, with the text embedder's help when there
   * is one. An embedder that fails makes memory unavailable, and the decision fails closed.
   */
  private async fingerprintOf(policy: Policy, request: JsonObject): Promise<Int8Array> {
    const config = policy.model.memory.fingerprint;
    const texts = this.textEmbedder ? freeTexts(request, config) : [];
    if (!this.textEmbedder || texts.length === 0) return fingerprint(request, config);
    let vectors: readonly Float32Array[];
    try {
      vectors = await this.textEmbedder.embed(texts);
    } catch (error) {
      throw new StorageError(`text embedder ${this.textEmbedder.id} failed: ${String(error)}`, {
        cause: error,
      });
    }
    if (vectors.length !== texts.length)
      throw new StorageError(
        `text embedder ${this.textEmbedder.id} returned ${vectors.length} embeddings for ${texts.length} texts`,
      );
    return fingerprint(request, config, new Map(texts.map((text, i) => [text, vectors[i] as Float32Array])));
  }

  /** `extra`: how many more than top_k to find (to make room for a decision that is itself labelled). */
  private async neighboursOf(
    policy: Policy,
    tenantId: string,
    actionType: string | undefined,
    query: Int8Array,
    extra = 0,
  ): Promise<MemoryEvidence> {
    const neighbours = this.memory.search(tenantId, actionType, query, policy.model.memory.topK + extra);
    const ids = [...neighbours.failure, ...neighbours.success].map((hit) => hit.decisionId);
    return {
      projection: projectionOf(this.textEmbedder),
      query,
      neighbours,
      summaries: ids.length > 0 ? await this.store.memory.summaries(ids) : new Map(),
    };
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
    const memoryCase = {
      decisionId,
      tenantId,
      actionType: String(record.request.action.type),
      label: label as Label,
      vector: await this.fingerprintOf(this.policyFor(tenantId), record.request),
    };
    const event = await this.store.memory.putLabel({
      ...memoryCase,
      fingerprint: memoryCase.vector,
      projection: projectionOf(this.textEmbedder),
      ...(details.summary !== undefined ? { summary: details.summary } : {}),
      ...(severity !== undefined ? { severity } : {}),
    });
    if (!event) return notFound(decisionId);
    this.memory.upsert(memoryCase);
    return ok(event);
  }

  /** The labelled decisions nearest to a stored one, with scores and summaries. */
  async similar(decisionId: string): Promise<Result<{ record: DecisionRecord; evidence: MemoryEvidence }>> {
    const record = await this.store.decisions.get(decisionId);
    if (!record) return notFound(decisionId);
    const tenantId = tenantOf(record.request);
    const policy = this.policyFor(tenantId);
    const query = await this.fingerprintOf(policy, record.request);
    const evidence = await this.neighboursOf(
      policy,
      tenantId,
      memoryScope(policy, String(record.request.action.type)),
      query,
      1,
    );
    const withoutItself = (hits: readonly MemoryHit[]) =>
      hits.filter((hit) => hit.decisionId !== decisionId).slice(0, policy.model.memory.topK);
    return ok({
      record,
      evidence: {
        ...evidence,
        neighbours: {
          failure: withoutItself(evidence.neighbours.failure),
          success: withoutItself(evidence.neighbours.success),
        },
      },
    });
  }

  /** Labelled cases per tenant, action type and label. */
  memoryCounts(): ReturnType<MemoryIndex["counts"]> {
    return this.memory.counts();
  }

  show(decisionId: string): Promise<Result<DecisionRecord>> {
    return showDecision(this.store, decisionId);
  }

  explain(decisionId: string): Promise<Result<{ record: DecisionRecord; explanation: Explanation }>> {
    return explainDecision(this.store, decisionId, (hash) => this.loadedPolicy(hash));
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
  const policy = await store.policies.getSnapshot(record.policy.policy_hash);
  if (!policy)
    return fail("not_found", [
      {
        code: "policy_not_found",
        message: `no snapshot of policy ${record.policy.policy_hash} in the store: the pack would not replay`,
      },
    ]);
  const events = await store.log.events(decisionId);
  return ok({ record, bytes: buildPack({ record, policyText: policy.text, events }) });
}

/** Explains a stored decision with the policy it was decided under, recovered from the store by hash. */
export async function explainDecision(
  store: Store,
  decisionId: string,
  loaded?: (policyHash: string) => Policy | undefined,
): Promise<Result<{ record: DecisionRecord; explanation: Explanation }>> {
  const record = await store.decisions.get(decisionId);
  if (!record) return notFound(decisionId);
  const known = loaded?.(record.policy.policy_hash);
  const policy = known ? ok(known) : await policyByHash(store, record.policy.policy_hash);
  if (!policy.ok) return policy;
  return ok({ record, explanation: explainRecord(record, policy.value) });
}

/** The action type memory compares within, or undefined to compare with all of the tenant's. */
function memoryScope(policy: Policy, actionType: string): string | undefined {
  return policy.model.memory.scope === "action_type" ? actionType : undefined;
}

/** A policy by hash, from its snapshot in the store. */
async function policyByHash(store: Store, policyHash: string): Promise<Result<Policy>> {
  const snapshot = await store.policies.getSnapshot(policyHash);
  if (!snapshot) {
    return fail("not_found", [
      { code: "policy_not_found", message: `no snapshot of policy ${policyHash} in the store` },
    ]);
  }
  return loadPolicy(snapshot.text, { file: `policy ${policyHash}` });
}

/** The fail-closed answer for a decision that could not be stored. */
function unavailable(decision: Decision, policy: Policy): Result<StoredDecision> {
  const record = storageUnavailableRecord(decision, policy);
  return ok({ record, status: "unavailable", json: canonicalJson(record) });
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
