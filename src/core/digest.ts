import { createHmac, hash } from "node:crypto";
import { canonicalJson, type JsonValue } from "./json.ts";

/** `sha256:<hex>` of UTF-8 text or bytes. */
export function sha256(data: string | Uint8Array): string {
  return `sha256:${hash("sha256", data, "hex")}`;
}

/** `sha256:<hex>` of the canonical JSON of a value: the digest form Lumyn 1.3.6 uses everywhere. */
export function digestJson(value: JsonValue): string {
  return sha256(canonicalJson(value));
}

/** `sha256:<hex>` of the HMAC-SHA256 of a body: the `X-Lumyn-Signature` of requests and webhook deliveries. */
export function signBody(secret: string, body: Uint8Array | string): string {
  return `sha256:${createHmac("sha256", secret).update(body).digest("hex")}`;
}
