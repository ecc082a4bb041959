/**
 * The worker thread that checks policy documents from Redis (see policy-document.ts), so that parsing a
 * large one never holds up the server's event loop. One document at a time, in the order they arrive.
 */
import { parentPort, workerData } from "node:worker_threads";
import { keyFromPem, publisherKeyring } from "../domain/signed-policy.ts";
import type { PolicyLimits } from "../policy/policy.ts";
import { checkPolicyDocument, type DocumentCheck, type PolicyDocument } from "./policy-document.ts";

export interface CheckerThreadData {
  /** The trusted publisher keys (SPKI PEM). */
  readonly publisherKeys: readonly string[];
  readonly reasonCodes?: readonly string[];
  /** What the policy in a document may weigh. */
  readonly limits?: PolicyLimits;
}

export interface CheckRequest {
  readonly id: number;
  readonly document: PolicyDocument;
}

export interface CheckReply {
  readonly id: number;
  readonly check: DocumentCheck;
}

const port = parentPort;
if (port) {
  const data = workerData as CheckerThreadData;
  const rules = {
    publisherKeys: publisherKeyring(data.publisherKeys.map(keyFromPem)),
    ...(data.reasonCodes ? { reasonCodeRegistry: new Set(data.reasonCodes) } : {}),
    ...(data.limits ? { limits: data.limits } : {}),
  };
  port.on("message", (request: CheckRequest) => {
    const reply: CheckReply = { id: request.id, check: checkPolicyDocument(request.document, rules) };
    port.postMessage(reply);
  });
}
