import { timestamp } from "../../core/ids.ts";
import type { ApiKey } from "../../domain/api-key.ts";
import type { ApiKeyStore } from "../api-keys.ts";
import { API_KEY_COLUMNS, apiKeyOf, apiKeyRow } from "../rows.ts";
import type { SqliteConnection } from "./connection.ts";

export class SqliteApiKeys implements ApiKeyStore {
  private readonly connection: SqliteConnection;
  private readonly statements;

  constructor(connection: SqliteConnection) {
    this.connection = connection;
    const db = connection.db;
    this.statements = {
      byHash: db.prepare(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?`),
      list: db.prepare(`SELECT ${API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id`),
    };
  }

  async put(key: ApiKey): Promise<void> {
    await this.connection.write("store the API key", "putApiKey", apiKeyRow(key));
  }

  async findByHash(keyHash: string): Promise<ApiKey | undefined> {
    const row = this.connection.read(() => this.statements.byHash.get(keyHash));
    return row ? apiKeyOf(row) : undefined;
  }

  async list(): Promise<ApiKey[]> {
    return this.connection.read(() => this.statements.list.all()).map(apiKeyOf);
  }

  revoke(keyId: string, revokedAt: string = timestamp(new Date())): Promise<boolean> {
    return this.connection.write("revoke the API key", "revokeApiKey", keyId, revokedAt);
  }
}
