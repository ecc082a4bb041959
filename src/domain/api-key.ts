import { hash, randomBytes } from "node:crypto";
import { newDecisionId, timestamp } from "../core/ids.ts";

/**
 * What a key may do. `admin` implies every other scope; `approve` is for voting on, overriding and
 * cancelling approvals (with the key's roles).
 */
export const SCOPES = ["decide", "read", "label", "approve", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** An API key of the HTTP service, as stored: the sha256 of the key, never the key. */
export interface ApiKey {
  readonly keyId: string;
  /** `sha256:<hex>` of the whole key. */
  readonly keyHash: string;
  readonly name: string;
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
  readonly tenantId?: string;
  readonly roles?: readonly string[];
  readonly rateLimitPerSecond?: number;
}

/** A new key: its text (shown once, never stored) and the record to store. */
export function createApiKey(options: NewApiKey, now: Date = new Date()): { key: string; record: ApiKey } {
  const key = `${KEY_PREFIX}${randomBytes(KEY_BYTES).toString("base64url")}`;
  return {
    key,
    record: {
      keyId: newDecisionId(now.getTime()),
      keyHash: hashApiKey(key),
      name: options.name ?? "",
      scopes: [...new Set(options.scopes)],
      ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
      roles: [...(options.roles ?? [])],
      ...(options.rateLimitPerSecond !== undefined ? { rateLimitPerSecond: options.rateLimitPerSecond } : {}),
      createdAt: timestamp(now),
    },
  };
}

export function grants(key: ApiKey, scope: Scope): boolean {
  return key.scopes.includes(scope) || key.scopes.includes("admin");
}
