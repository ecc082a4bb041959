import { createHmac, timingSafeEqual } from "node:crypto";
import {
  type ApiKey,
  isJsonObject,
  type JsonValue,
  type Problem,
  type Requester,
  tenantOf,
} from "../index.ts";

/** `Authorization: Bearer <key>` → the key text, or undefined when the header is missing or of another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}

/**
 * Per-key rate limits: a token bucket per key, refilled at the key's rate and holding at most one second's
 * worth (at least one request), so a key may burst to its rate but never sustain more.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedMs: number }>();

  /** 0 when the request may go ahead, else the seconds until it may. */
  take(keyId: string, perSecond: number, nowMs: number = performance.now()): number {
    const capacity = Math.max(1, perSecond);
    const bucket = this.buckets.get(keyId) ?? { tokens: capacity, updatedMs: nowMs };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * perSecond);
    bucket.updatedMs = nowMs;
    this.buckets.set(keyId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / perSecond;
  }
}

export const SIGNATURE_HEADER = "x-lumyn-signature";
const SIGNATURE = /^sha256:([0-9a-fA-F]{64})$/;

/**
 * Lumyn's request signature: `X-Lumyn-Signature: sha256:<hex HMAC-SHA256 of the exact body bytes>` with the
 * shared secret (`LUMYN_SIGNING_SECRET`), compared in constant time.
 */
export function checkSignature(
  secret: string,
  body: Uint8Array,
  header: string | undefined,
): "ok" | "missing" | "invalid" {
  if (header === undefined || header === "") return "missing";
  const match = SIGNATURE.exec(header.trim());
  if (!match) return "invalid";
  const expected = createHmac("sha256", secret).update(body).digest();
  const given = Buffer.from(match[1] as string, "hex");
  return timingSafeEqual(expected, given) ? "ok" : "invalid";
}

/**
 * Why a tenant-bound key may not decide this request (it names another tenant, or none), or undefined when
 * it may. Requests that are not objects are left to validation.
 */
export function tenantMismatch(key: ApiKey | undefined, request: JsonValue): Problem | undefined {
  if (key?.tenantId === undefined || !isJsonObject(request)) return undefined;
  const tenant = tenantOf(request);
  if (tenant === key.tenantId) return undefined;
  return {
    code: "tenant_forbidden",
    message: `this key is bound to tenant '${key.tenantId}'; the request is for tenant '${tenant}'`,
    pointer: "/tenant/tenant_id",
    expected: `'${key.tenantId}'`,
  };
}

/** Who asks with this key, as the approvals its decisions open record it: the key's principal, and the key. */
export function requesterOf(key: ApiKey): Requester {
  return { principal: key.principal, keyId: key.keyId };
}

/** Whether a key may see a record of this tenant (a key bound to no tenant sees every tenant). */
export function mayRead(key: ApiKey | undefined, tenantId: string): boolean {
  return key?.tenantId === undefined || key.tenantId === tenantId;
}

/**
 * Keys found in the store, kept for a moment: otherwise every request reads the store once more (about a
 * sixth of a decision's time on the service). A key revoked by another process stops working within the
 * time to live; unknown keys are not kept, so a new key works at once.
 */
export class KeyCache {
  private readonly entries = new Map<string, { readonly key: ApiKey; readonly until: number }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(ttlMs = 1_000, maxEntries = 10_000) {
    this.ttlMs = ttlMs;
    this.maxEntries = maxEntries;
  }

  get(keyHash: string, now = Date.now()): ApiKey | undefined {
    const entry = this.entries.get(keyHash);
    if (entry === undefined) return undefined;
    if (entry.until <= now) {
      this.entries.delete(keyHash);
      return undefined;
    }
    return entry.key;
  }

  put(keyHash: string, key: ApiKey, now = Date.now()): void {
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(keyHash, { key, until: now + this.ttlMs });
  }
}
