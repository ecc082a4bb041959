import type { JsonObject } from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import { DEFAULT_POLICY_TENANT, type PolicyEvent } from "../domain/policy-registry.ts";
import { loadPolicy, type Policy, type PolicyLimits } from "../policy/policy.ts";
import type { Store } from "../store/store.ts";
import { type ChangeRequest, fourEyesRequired, requestChange } from "./change-review.ts";

/**
 * The policy registry: per tenant, immutable versions (named by policy hash) published after full
 * validation, one of them active. The history is the store's policy events; the active version and the
 * versions a rollback returns to are computed from it, so every server reading the same store agrees.
 */

export interface RegistryChange {
  readonly tenantId: string;
  readonly policyHash: string;
  /** The version active before the change (none when the tenant had none). */
  readonly previous?: string;
  /** False when nothing had to change (the version was already published, or already active). */
  readonly changed: boolean;
  /** With four-eyes review on: the change request the activation opened instead (nothing changed yet). */
  readonly request?: ChangeRequest;
}

export interface PublishOptions extends PolicyLimits {
  /** Named in error locations (a file, or e.g. `redis lumyn:policy:acme`). */
  readonly file?: string;
  readonly reasonCodeRegistry?: ReadonlySet<string>;
  /** Who publishes and from where (`{by: "cli", principal: "os:<user>"}`, `{by: "redis", …}`), kept in the history. */
  readonly source: JsonObject;
}

/** The tenant a registry command addresses: the default for tenants without their own when none is given. */
export function registryTenant(tenantId: string | undefined): string {
  return tenantId ?? DEFAULT_POLICY_TENANT;
}

/** A validated policy's text and names: what a version of the registry stores. */
export interface PolicyVersion {
  readonly text: string;
  readonly policyHash: string;
  readonly policyId: string;
  readonly policyVersion: string;
}

/** Validates a policy document and stores it as a version of the tenant's registry; nothing is stored when invalid. */
export async function publishPolicy(
  store: Store,
  tenantId: string,
  text: string,
  options: PublishOptions,
): Promise<Result<RegistryChange & { readonly policy: Policy }>> {
  const loaded = loadPolicy(text, {
    ...(options.file ? { file: options.file } : {}),
    ...(options.reasonCodeRegistry ? { reasonCodeRegistry: options.reasonCodeRegistry } : {}),
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
    ...(options.maxRules !== undefined ? { maxRules: options.maxRules } : {}),
  });
  if (!loaded.ok) return loaded;
  const policy = loaded.value;
  const version = {
    text,
    policyHash: policy.hash,
    policyId: policy.model.policyId,
    policyVersion: policy.model.policyVersion,
  };
  const change = await publishVersion(store, tenantId, version, options.source);
  return ok({ ...change, policy });
}

/**
 * Stores a policy already validated (elsewhere: a server checks Redis documents in a worker thread) as a
 * version of the tenant's registry.
 */
export async function publishVersion(
  store: Store,
  tenantId: string,
  version: PolicyVersion,
  source: JsonObject,
): Promise<RegistryChange> {
  const events = await store.policies.history(tenantId);
  const previous = activeOf(events);
  const base = { tenantId, policyHash: version.policyHash, ...(previous ? { previous } : {}) };
  if (publishedHashes(events).has(version.policyHash)) return { ...base, changed: false };
  await store.policies.putSnapshot({
    policyHash: version.policyHash,
    policyId: version.policyId,
    policyVersion: version.policyVersion,
    text: version.text,
  });
  await store.policies.append({
    tenantId,
    type: "published",
    policyHash: version.policyHash,
    detail: { ...source, policy_id: version.policyId, policy_version: version.policyVersion },
  });
  return { ...base, changed: true };
}

/** Records a document that was refused as a `rejected` event of the tenant's history, with its problems. */
export async function recordRejection(
  store: Store,
  tenantId: string,
  source: JsonObject,
  problems: readonly Problem[],
): Promise<void> {
  await store.policies.append({
    tenantId,
    type: "rejected",
    detail: { ...source, problems: problems.map(problemJson) },
  });
}

/**
 * Makes a published version the tenant's active one. `version` is its policy hash, with or without
 * `sha256:`, or a prefix of it that names one published version. A tenant with four-eyes review on gets a
 * change request instead, which another principal approves (registry/change-review.ts).
 */
export async function activatePolicy(
  store: Store,
  tenantId: string,
  version: string,
  source: JsonObject,
): Promise<Result<RegistryChange>> {
  const events = await store.policies.history(tenantId);
  const resolved = resolveVersion(events, tenantId, version);
  if (!resolved.ok) return resolved;
  const previous = activeOf(events);
  const base = { tenantId, policyHash: resolved.value, ...(previous ? { previous } : {}) };
  if (previous === resolved.value) return ok({ ...base, changed: false });
  if (fourEyesRequired(events)) {
    const change = {
      kind: "activate",
      policyHash: resolved.value,
      expectedActive: previous ?? null,
    } as const;
    return ok({ ...base, changed: false, request: await requestChange(store, tenantId, change, source) });
  }
  const written = await store.policies.append({
    tenantId,
    type: "activated",
    policyHash: resolved.value,
    expectedActive: previous ?? null,
    detail: source,
  });
  return written ? ok({ ...base, changed: true }) : raced(tenantId);
}

/** Returns the tenant to the version that was active before the current activation. */
export async function rollbackPolicy(
  store: Store,
  tenantId: string,
  source: JsonObject,
): Promise<Result<RegistryChange>> {
  const events = await store.policies.history(tenantId);
  const stack = activationStack(events);
  const current = stack.at(-1);
  const target = stack.at(-2);
  if (current === undefined || target === undefined) {
    return fail("conflict", [
      {
        code: "nothing_to_roll_back",
        message: `tenant '${tenantId}' has ${current ? "only one activated version" : "no active version"}: there is nothing to roll back to`,
        expected: "an earlier activation (lumyn policy history shows them)",
      },
    ]);
  }
  const written = await store.policies.append({
    tenantId,
    type: "rolled_back",
    policyHash: target,
    expectedActive: current,
    detail: { ...source, from: current },
  });
  return written ? ok({ tenantId, policyHash: target, previous: current, changed: true }) : raced(tenantId);
}

/** The tenant's active version, from its history (the latest activation or rollback). */
export function activeOf(events: readonly PolicyEvent[]): string | undefined {
  return activationStack(events).at(-1);
}

/**
 * The versions a tenant went through: each activation is pushed, each rollback pops back to the version
 * below it. The top is the active version; the one below it is where a rollback goes.
 */
function activationStack(events: readonly PolicyEvent[]): string[] {
  const stack: string[] = [];
  for (const event of events) {
    if (event.type === "activated" && event.policyHash) stack.push(event.policyHash);
    else if (event.type === "rolled_back") stack.pop();
  }
  return stack;
}

function publishedHashes(events: readonly PolicyEvent[]): Set<string> {
  return new Set(
    events.flatMap((event) => (event.type === "published" && event.policyHash ? [event.policyHash] : [])),
  );
}

function resolveVersion(events: readonly PolicyEvent[], tenantId: string, version: string): Result<string> {
  const wanted = version.startsWith("sha256:") ? version : `sha256:${version}`;
  const published = [...publishedHashes(events)];
  const matches = published.filter((hash) => hash.startsWith(wanted));
  if (matches.length === 1) return ok(matches[0] as string);
  const problem: Problem =
    matches.length === 0
      ? {
          code: "version_not_found",
          message: `no version '${version}' was published for tenant '${tenantId}'`,
          expected: published.length
            ? `one of ${published.join(", ")}`
            : "a version published first (lumyn policy publish FILE)",
        }
      : {
          code: "ambiguous_version",
          message: `'${version}' names ${matches.length} published versions of tenant '${tenantId}'`,
          expected: "more characters of the policy hash",
        };
  return fail("not_found", [problem]);
}

function raced<T>(tenantId: string): Result<T> {
  return fail("conflict", [
    {
      code: "registry_changed",
      message: `tenant '${tenantId}''s active policy changed while this change was made; nothing was written`,
      expected: "the command run again",
    },
  ]);
}

function problemJson(problem: Problem): JsonObject {
  return Object.fromEntries(Object.entries(problem).filter(([, value]) => value !== undefined)) as JsonObject;
}
