import type { NewPolicyEvent, PolicyEvent, PolicySnapshot } from "../domain/policy-registry.ts";

/** Policy texts by hash, and each tenant's registry history and active version. */
export interface PolicyRegistryStore {
  /** Keeps the policy text by hash so that any record's policy can be recovered. Idempotent. */
  putSnapshot(snapshot: PolicySnapshot): Promise<void>;
  getSnapshot(policyHash: string): Promise<PolicySnapshot | undefined>;
  /**
   * Appends to a tenant's registry history. An `activated` or `rolled_back` event makes its `policyHash` the
   * tenant's active policy, only over the active policy it was computed from (`expectedActive`, null when the
   * tenant had none): undefined, and nothing written, when another writer changed it first. `published` and
   * `rejected` events change no active policy.
   */
  append(event: NewPolicyEvent): Promise<PolicyEvent | undefined>;
  /** A tenant's registry history (every tenant's when absent), oldest first. */
  history(tenantId?: string): Promise<PolicyEvent[]>;
  /** Each tenant's active policy hash (tenants with none are absent). */
  active(): Promise<Map<string, string>>;
}
