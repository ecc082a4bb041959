import { timestamp } from "../../core/ids.ts";
import type { ApiKey } from "../../domain/api-key.ts";
import type { ApiKeyStore } from "../api-keys.ts";
import { API_KEY_COLUMNS, apiKeyOf, apiKeyRow } from "../rows.ts";
import type { PostgresConnection } from "./connection.ts";

export class PostgresApiKeys implements ApiKeyStore {
  private readonly connection: PostgresConnection;

  constructor(connection: PostgresConnection) {
    this.connection = connection;
  }

  async put(key: ApiKey): Promise<void> {
    const row = apiKeyRow(key);
    await this.connection.write(
      "store the API key",
      `INSERT INTO api_keys (key_id, key_hash, name, principal, scopes_json, tenant_id, roles_json, rate_limit_per_second, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        row.keyId,
        row.keyHash,
        row.name,
        row.principal,
        row.scopesJson,
        row.tenantId,
        row.rolesJson,
        row.rateLimitPerSecond,
        row.createdAt,
      ],
    );
  }

  async findByHash(keyHash: string): Promise<ApiKey | undefined> {
    const { rows } = await this.connection.query(
      `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1`,
      [keyHash],
    );
    return rows[0] ? apiKeyOf(rows[0]) : undefined;
  }

  async list(): Promise<ApiKey[]> {
    const { rows } = await this.connection.query(
      `SELECT ${API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id`,
    );
    return rows.map(apiKeyOf);
  }

  async revoke(keyId: string, revokedAt: string = timestamp(new Date())): Promise<boolean> {
    const { rows } = await this.connection.writeReturning(
      "revoke the API key",
      `WITH revoked AS (UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM api_keys WHERE key_id = $2) AS found`,
      [revokedAt, keyId],
    );
    return rows[0]?.found === true;
  }
}
