import type { ApiKey } from "../domain/api-key.ts";

/** The HTTP service's API keys: their hashes and grants, never the keys themselves. */
export interface ApiKeyStore {
  put(key: ApiKey): Promise<void>;
  /** The key with this hash, revoked or not (the caller decides what a revoked key means). */
  findByHash(keyHash: string): Promise<ApiKey | undefined>;
  /** Every key, oldest first. */
  list(): Promise<ApiKey[]>;
  /**
   * Revokes a key from now on. True when the key exists (a key revoked before keeps its first revocation
   * time); false when there is no such key.
   */
  revoke(keyId: string, revokedAt?: string): Promise<boolean>;
}
