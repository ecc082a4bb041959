import { hash, randomBytes } from "node:crypto";
import type { Scope } from "../api/access.ts";
import { newDecisionId, timestamp } from "../core/ids.ts";
import type { ApiKey } from "../domain/api-key.ts";

// The scopes are part of the HTTP contract; the key commands take them from here.
export { SCOPES, type Scope } from "../api/access.ts";

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
