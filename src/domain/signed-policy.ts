/**
 * A policy document signed by a publisher: what an operator writes to Redis (`lumyn:policy:<tenant>`) for
 * servers to adopt. Redis only carries it; a server applies it only when a publisher key it trusts signed it
 * for that very tenant. The envelope is JSON:
 *
 *     {"schema_version": "lumyn_signed_policy.v1", "tenant": "acme", "policy": "<the policy's text>",
 *      "key_id": "sha256:…", "signed_at": "2026-01-31T12:00:00Z", "signature": "<base64 Ed25519>"}
 *
 * The signature covers every other member, as canonical JSON ({@link signedPolicyMessage}): the tenant is
 * part of what is signed, so a document signed for one tenant cannot be set on another's key.
 */
import { createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { canonicalJson, type JsonObject } from "../core/json.ts";
import { keyId, type SigningKey } from "./chain.ts";

export const SIGNED_POLICY_SCHEMA = "lumyn_signed_policy.v1";

/** `SET lumyn:policy:<tenant> <envelope>`: a publisher's policy document for a tenant (`*`: the default). */
export const POLICY_KEY_PREFIX = "lumyn:policy:";

/** Why a document written to Redis was not applied (the `reason` of the metric, the log and the history). */
export const POLICY_REJECTION_REASONS = [
  "no_publisher_key",
  "unsigned",
  "invalid_envelope",
  "unknown_key",
  "bad_signature",
  "tenant_mismatch",
  "stale",
  "too_large",
  "invalid_policy",
] as const;
export type PolicyRejectionReason = (typeof POLICY_REJECTION_REASONS)[number];

export interface SignedPolicy {
  readonly tenant: string;
  /** The policy's text (YAML or JSON), exactly as published. */
  readonly policy: string;
  readonly keyId: string;
  /** ISO 8601 UTC, e.g. `2026-01-31T12:00:00Z`. */
  readonly signedAt: string;
  /** Base64 Ed25519 signature of {@link signedPolicyMessage}. */
  readonly signature: string;
}

export type SignedPolicyCheck =
  | { readonly ok: true; readonly envelope: SignedPolicy }
  | {
      readonly ok: false;
      readonly reason: PolicyRejectionReason;
      readonly message: string;
      readonly keyId?: string;
    };

const MEMBERS = ["schema_version", "tenant", "policy", "key_id", "signed_at", "signature"] as const;
const SIGNED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const ED25519_SIGNATURE_BYTES = 64;

/** The bytes a publisher signs: the envelope without its signature, as canonical JSON. */
export function signedPolicyMessage(envelope: Omit<SignedPolicy, "signature">): string {
  return canonicalJson({
    key_id: envelope.keyId,
    policy: envelope.policy,
    schema_version: SIGNED_POLICY_SCHEMA,
    signed_at: envelope.signedAt,
    tenant: envelope.tenant,
  });
}

export function signPolicy(key: SigningKey, tenant: string, policy: string, signedAt: string): SignedPolicy {
  const unsigned = { tenant, policy, keyId: key.keyId, signedAt };
  const signature = sign(null, Buffer.from(signedPolicyMessage(unsigned)), key.privateKey);
  return { ...unsigned, signature: signature.toString("base64") };
}

/** The envelope as it is written (to a file, to Redis). */
export function signedPolicyJson(envelope: SignedPolicy): JsonObject {
  return {
    schema_version: SIGNED_POLICY_SCHEMA,
    tenant: envelope.tenant,
    policy: envelope.policy,
    key_id: envelope.keyId,
    signed_at: envelope.signedAt,
    signature: envelope.signature,
  };
}

/** Trusted publisher keys by key id. */
export function publisherKeyring(keys: readonly KeyObject[]): Map<string, KeyObject> {
  return new Map(keys.map((key) => [keyId(key), key]));
}

/** A public key's SubjectPublicKeyInfo as PEM: how trusted keys travel to a worker thread. */
export function publicKeyPem(key: KeyObject): string {
  return key.export({ type: "spki", format: "pem" }).toString();
}

export function keyFromPem(pem: string): KeyObject {
  return createPublicKey(pem);
}

/**
 * Opens a document set on a tenant's key: the envelope it must be, signed by one of `keys` for `tenant`.
 * Checked in this order, so that the reason is the most telling one: an envelope at all, its members, a
 * known key, a good signature, then the tenant it was signed for.
 */
export function openSignedPolicy(
  text: string,
  tenant: string,
  keys: ReadonlyMap<string, KeyObject>,
): SignedPolicyCheck {
  if (keys.size === 0) {
    return reject(
      "no_publisher_key",
      "no publisher key is configured (lumyn serve --policy-publisher-key FILE): documents in Redis are never applied",
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || !("schema_version" in value)) {
    return reject(
      "unsigned",
      `not a signed policy envelope: expected a JSON object with schema_version ${SIGNED_POLICY_SCHEMA} (made by lumyn policy sign)`,
    );
  }
  const members = value as Record<string, unknown>;
  if (members.schema_version !== SIGNED_POLICY_SCHEMA) {
    return reject(
      "invalid_envelope",
      `schema_version ${JSON.stringify(members.schema_version)} is not supported: expected ${SIGNED_POLICY_SCHEMA}`,
    );
  }
  if (members.signature === undefined) return reject("unsigned", "the envelope has no signature");
  const unknown = Object.keys(members).filter((name) => !(MEMBERS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    return reject(
      "invalid_envelope",
      `unknown member(s) ${unknown.join(", ")}: an envelope has only ${MEMBERS.join(", ")}`,
    );
  }
  for (const name of MEMBERS) {
    if (typeof members[name] !== "string" || members[name] === "")
      return reject("invalid_envelope", `${name} must be a non-empty string`);
  }
  const envelope: SignedPolicy = {
    tenant: members.tenant as string,
    policy: members.policy as string,
    keyId: members.key_id as string,
    signedAt: members.signed_at as string,
    signature: members.signature as string,
  };
  if (!SIGNED_AT.test(envelope.signedAt) || Number.isNaN(Date.parse(envelope.signedAt))) {
    return reject(
      "invalid_envelope",
      `signed_at '${envelope.signedAt}' is not an ISO 8601 UTC time (2026-01-31T12:00:00Z)`,
    );
  }
  const key = keys.get(envelope.keyId);
  if (!key) {
    return reject(
      "unknown_key",
      `signed with key ${envelope.keyId}, which is not one of this server's publisher keys`,
      envelope.keyId,
    );
  }
  const signature = Buffer.from(envelope.signature, "base64");
  let message: string;
  try {
    message = signedPolicyMessage(envelope);
  } catch (error) {
    return reject("invalid_envelope", `the envelope cannot be read: ${(error as Error).message}`);
  }
  if (signature.length !== ED25519_SIGNATURE_BYTES || !verify(null, Buffer.from(message), key, signature)) {
    return reject(
      "bad_signature",
      `the signature does not match the envelope for key ${envelope.keyId}: it was altered or signed by another key`,
      envelope.keyId,
    );
  }
  if (envelope.tenant !== tenant) {
    return reject(
      "tenant_mismatch",
      `the document was signed for tenant '${envelope.tenant}', not '${tenant}'`,
      envelope.keyId,
    );
  }
  return { ok: true, envelope };
}

function reject(reason: PolicyRejectionReason, message: string, keyId?: string): SignedPolicyCheck {
  return { ok: false, reason, message, ...(keyId ? { keyId } : {}) };
}
