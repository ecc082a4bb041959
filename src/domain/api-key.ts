import { hash, randomBytes } from "node:crypto";
import { newDecisionId, timestamp } from "../core/ids.ts";
import { identityKey } from "./identity.ts";

/**
 * What a key may do. `admin` implies every other scope; `approve` is for voting on, overriding and
 * cancelling approvals (with the key's roles); `delegate` is for naming another actor than the key's own
 * principal (`identity.actor_id` on the evaluator endpoint, as Gantral does for its humans).
 */
export const SCOPES = ["decide", "read", "label", "approve", "delegate", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** An API key of the HTTP service, as stored: the sha256 of the key, never the key. */
export interface ApiKey {
  readonly keyId: string;
  /** `sha256:<hex>` of the whole key. */
  readonly keyHash: string;
  readonly name: string;
  /**
   * Who holds the key: the identity its calls act as (the requester of the approvals its decisions open, the
   * voter of its votes). Keys of one holder share it (a rotated key, say), so they count as one person.
   */
  readonly principal: string;
  readonly scopes: readonly string[];
  /** When set, the key decides and reads only this tenant's decisions. */
  readonly tenantId?: string;
  /** Who the holder is, for approvals (e.g. `finance-lead`). */
  readonly roles: readonly string[];
  /** Requests per second the key may make; unlimited when unset. */
  readonly rateLimitPerSecond?: number;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

/** Every key starts with this, so that a leaked key is recognisable (and secret scanners can match it). */
export const KEY_PREFIX = "lumyn_";
/** 32 random bytes: far beyond guessing, so a plain sha256 of the key is a safe thing to store. */
const KEY_BYTES = 32;

/** The stored form of a key: `sha256:<hex>` of its text. */
export function hashApiKey(key: string): string {
  return `sha256:${hash("sha256", key, "hex")}`;
}

export interface NewApiKey {
  readonly scopes: readonly Scope[];
  readonly name?: string;
  /** The holder's identity; the name by default, else the key's id. */
  readonly principal?: string;
  readonly tenantId?: string;
  readonly roles?: readonly string[];
  readonly rateLimitPerSecond?: number;
}

/** A new key: its text (shown once, never stored) and the record to store. */
export function createApiKey(options: NewApiKey, now: Date = new Date()): { key: string; record: ApiKey } {
  const key = `${KEY_PREFIX}${randomBytes(KEY_BYTES).toString("base64url")}`;
  const keyId = newDecisionId(now.getTime());
  return {
    key,
    record: {
      keyId,
      keyHash: hashApiKey(key),
      name: options.name ?? "",
      principal: options.principal ?? defaultPrincipal(options.name ?? "", keyId),
      scopes: [...new Set(options.scopes)],
      ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
      roles: [...(options.roles ?? [])],
      ...(options.rateLimitPerSecond !== undefined ? { rateLimitPerSecond: options.rateLimitPerSecond } : {}),
      createdAt: timestamp(now),
    },
  };
}

/** The principal of a key created without one (and of keys stored before keys had principals). */
export function defaultPrincipal(name: string, keyId: string): string {
  return name !== "" ? name : keyId;
}

/**
 * Whether a principal (or a key's name) is one the engine keeps for itself: `system:` names its own steps
 * (timeouts), so no key may act as, or look like, it.
 */
export function reservedPrincipal(principal: string): boolean {
  return identityKey(principal).startsWith(identityKey("system:"));
}

export function grants(key: ApiKey, scope: Scope): boolean {
  return key.scopes.includes(scope) || key.scopes.includes("admin");
}
