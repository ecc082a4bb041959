import type { JsonObject } from "../core/json.ts";

/** A policy's exact text, kept by hash so that any record's policy can be recovered. */
export interface PolicySnapshot {
  readonly policyHash: string;
  readonly policyId: string;
  readonly policyVersion: string;
  readonly text: string;
}

/** The tenant key of the registry's default policy: it applies to every tenant without its own. */
export const DEFAULT_POLICY_TENANT = "*";

export const POLICY_EVENT_TYPES = [
  "published",
  "activated",
  "rolled_back",
  "rejected",
  // Four-eyes review: a tenant's settings, a change one principal asked for, and a change turned down.
  "settings",
  "change_requested",
  "change_rejected",
] as const;
export type PolicyEventType = (typeof POLICY_EVENT_TYPES)[number];

export interface NewPolicyEvent {
  readonly tenantId: string;
  readonly type: PolicyEventType;
  /** The version the event is about (absent for a `rejected` document that has no valid hash). */
  readonly policyHash?: string;
  /** For `activated` and `rolled_back`: the tenant's active hash this change was computed from. */
  readonly expectedActive?: string | null;
  /** Who or what made the change (`cli`, `redis`, …) and, for `rejected`, the problems. */
  readonly detail: JsonObject;
  readonly createdAt?: string;
}

export interface PolicyEvent {
  readonly seq: number;
  readonly tenantId: string;
  readonly type: PolicyEventType;
  readonly policyHash?: string;
  readonly detail: JsonObject;
  readonly createdAt: string;
}

/** Whether an event makes its version the tenant's active policy. */
export function changesActivePolicy(type: PolicyEventType): boolean {
  return type === "activated" || type === "rolled_back";
}
