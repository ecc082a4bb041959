import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { keyId, type SigningKey } from "./chain.ts";
import {
  openSignedPolicy,
  publisherKeyring,
  SIGNED_POLICY_SCHEMA,
  type SignedPolicy,
  signedPolicyJson,
  signedPolicyMessage,
  signPolicy,
} from "./signed-policy.ts";

function publisher(): SigningKey {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { privateKey, keyId: keyId(createPublicKey(privateKey)) };
}

const trusted = publisher();
const stranger = publisher();
const keys = publisherKeyring([createPublicKey(trusted.privateKey)]);
const POLICY = "schema_version: policy.v1\npolicy_id: p\n";
const AT = "2026-01-31T12:00:00.000Z";

/** An envelope, or a doctored one (plain members), as the text set in Redis. */
const text = (value: SignedPolicy | Record<string, unknown>): string =>
  JSON.stringify("keyId" in value ? signedPolicyJson(value as SignedPolicy) : value);

function reasonOf(document: string, tenant = "acme", ring = keys): string {
  const opened = openSignedPolicy(document, tenant, ring);
  return opened.ok ? "ok" : opened.reason;
}

describe("signed policy envelopes", () => {
  it("opens what a trusted key signed for the tenant, exactly as signed", () => {
    const envelope = signPolicy(trusted, "acme", POLICY, AT);
    const opened = openSignedPolicy(text(envelope), "acme", keys);
    assert.ok(opened.ok);
    assert.deepEqual(opened.envelope, envelope);
    assert.equal(signedPolicyJson(envelope).schema_version, SIGNED_POLICY_SCHEMA);
    assert.equal(
      signedPolicyMessage(envelope),
      `{"key_id":"${trusted.keyId}","policy":${JSON.stringify(POLICY)},"schema_version":"${SIGNED_POLICY_SCHEMA}","signed_at":"${AT}","tenant":"acme"}`,
      "the message is the envelope without its signature, as canonical JSON",
    );
  });

  it("names why a document is refused", () => {
    const good = signPolicy(trusted, "acme", POLICY, AT);
    const json = signedPolicyJson(good);
    assert.equal(reasonOf(text(good), "acme", new Map()), "no_publisher_key");
    assert.equal(reasonOf(POLICY), "unsigned", "a bare policy");
    assert.equal(reasonOf("\u0000\u00ff"), "unsigned");
    assert.equal(reasonOf(JSON.stringify({ ...json, signature: undefined })), "unsigned");
    assert.equal(reasonOf(text({ ...json, schema_version: "lumyn_signed_policy.v2" })), "invalid_envelope");
    assert.equal(reasonOf(text({ ...json, note: "trust me" })), "invalid_envelope", "unsigned members");
    assert.equal(reasonOf(text({ ...json, policy: 7 })), "invalid_envelope");
    assert.equal(reasonOf(text({ ...json, signed_at: "yesterday" })), "invalid_envelope");
    assert.equal(reasonOf(text(signPolicy(stranger, "acme", POLICY, AT))), "unknown_key");
    assert.equal(reasonOf(text({ ...json, policy: `${POLICY}# more\n` })), "bad_signature");
    assert.equal(reasonOf(text({ ...json, signature: "AAAA" })), "bad_signature");
    assert.equal(
      reasonOf(
        text({
          ...json,
          key_id: trusted.keyId,
          signature: signPolicy(stranger, "acme", POLICY, AT).signature,
        }),
      ),
      "bad_signature",
      "another key's signature under a trusted key's id",
    );
  });

  it("binds the tenant: a document signed for one tenant is refused on another's key, even with its tenant rewritten", () => {
    const forGlobex = signPolicy(trusted, "globex", POLICY, AT);
    assert.equal(reasonOf(text(forGlobex), "acme"), "tenant_mismatch");
    assert.equal(reasonOf(text({ ...signedPolicyJson(forGlobex), tenant: "acme" }), "acme"), "bad_signature");
    assert.equal(reasonOf(text(signPolicy(trusted, "*", POLICY, AT)), "acme"), "tenant_mismatch");
  });
});
