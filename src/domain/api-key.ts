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
