import type { KeyObject } from "node:crypto";
import type { Problem } from "../core/problem.ts";
import { openSignedPolicy, type PolicyRejectionReason } from "../domain/signed-policy.ts";
import { loadPolicy, type PolicyLimits } from "../policy/policy.ts";

/** A document set on `lumyn:policy:<tenant>`, as read from Redis (never more than the size limit). */
export interface PolicyDocument {
  readonly tenant: string;
  readonly bytes: Uint8Array;
  /** Named in problems' locations, e.g. `redis lumyn:policy:acme`. */
  readonly file: string;
}

/** A version ready to be recorded: validated, hashed, and who signed it. */
export interface VerifiedPolicy {
  readonly text: string;
  readonly policyHash: string;
  readonly policyId: string;
  readonly policyVersion: string;
  readonly keyId: string;
  readonly signedAt: string;
}

export type DocumentCheck =
  | { readonly ok: true; readonly policy: VerifiedPolicy }
  | {
      readonly ok: false;
      readonly reason: PolicyRejectionReason;
      readonly problems: readonly Problem[];
      readonly keyId?: string;
    };

export interface DocumentRules {
  readonly publisherKeys: ReadonlyMap<string, KeyObject>;
  readonly reasonCodeRegistry?: ReadonlySet<string>;
  readonly limits?: PolicyLimits;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Everything a server checks before it applies a document: its envelope and signature, the tenant it was
 * signed for, then the policy's full validation (the same as `lumyn policy publish`). Costly for a large
 * document (parsing YAML is ~3 s a MiB), so servers run it in a worker thread (policy-document-checker.ts).
 */
export function checkPolicyDocument(document: PolicyDocument, rules: DocumentRules): DocumentCheck {
  let text: string;
  try {
    text = utf8.decode(document.bytes);
  } catch {
    return rejected("unsigned", document, "the document is not UTF-8 text, so not a signed policy envelope");
  }
  const opened = openSignedPolicy(text, document.tenant, rules.publisherKeys);
  if (!opened.ok) return rejected(opened.reason, document, opened.message, opened.keyId);
  const { envelope } = opened;
  const loaded = loadPolicy(envelope.policy, {
    file: document.file,
    ...(rules.reasonCodeRegistry ? { reasonCodeRegistry: rules.reasonCodeRegistry } : {}),
    ...rules.limits,
  });
  if (!loaded.ok)
    return { ok: false, reason: "invalid_policy", problems: loaded.problems, keyId: envelope.keyId };
  return {
    ok: true,
    policy: {
      text: envelope.policy,
      policyHash: loaded.value.hash,
      policyId: loaded.value.model.policyId,
      policyVersion: loaded.value.model.policyVersion,
      keyId: envelope.keyId,
      signedAt: envelope.signedAt,
    },
  };
}

/** A rejection found without reading the policy: one problem, coded by its reason. */
export function rejected(
  reason: PolicyRejectionReason,
  document: Pick<PolicyDocument, "file">,
  message: string,
  keyId?: string,
): DocumentCheck {
  return {
    ok: false,
    reason,
    problems: [{ code: reason, message, file: document.file }],
    ...(keyId ? { keyId } : {}),
  };
}
