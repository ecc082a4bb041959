import { fail, ok, type Result } from "../core/problem.ts";

/**
 * Where a store lives, from `--store` / `LUMYN_STORE`: a PostgreSQL URL (`postgres://user:pass@host:5432/db`,
 * with Lumyn's own parameters `schema` and `pool_max`), or the path of a SQLite file (`sqlite:PATH` or a
 * plain path).
 */
export type StoreLocation =
  | { readonly kind: "sqlite"; readonly path: string }
  | {
      readonly kind: "postgres";
      /** The URL for the client, without Lumyn's own parameters. */
      readonly connectionString: string;
      /** The URL with its password hidden: what messages show. */
      readonly display: string;
      /** Tables live in this schema (created when missing) instead of the user's default search path. */
      readonly schema?: string;
      /** Most connections the pool opens. */
      readonly poolMax: number;
    };

export const DEFAULT_POOL_MAX = 10;
const MAX_POOL_MAX = 1_000;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const POSTGRES_SCHEMES = ["postgres:", "postgresql:"];

/** The URL with any password replaced by `***` (the text unchanged when it is not a URL). */
export function hidePassword(value: string): string {
  try {
    const url = new URL(value);
    if (url.password === "") return value;
    url.password = "***";
    return url.toString();
  } catch {
    // Not a URL: the userinfo part, if any, is still hidden.
    return value.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
  }
}

export function parseStoreLocation(value: string): Result<StoreLocation> {
  const invalid = (message: string, expected?: string): Result<StoreLocation> =>
    fail("storage", [
      {
        code: "store_url",
        message: `store '${hidePassword(value)}': ${message}`,
        ...(expected ? { expected } : {}),
      },
    ]);
  if (value.trim() === "") return invalid("empty", "postgres://user@host:5432/db or a SQLite file path");
  if (value.startsWith("sqlite:")) {
    const path = value.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "");
    return path === "" ? invalid("no file path after sqlite:") : ok({ kind: "sqlite", path });
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) return ok({ kind: "sqlite", path: value });
  if (!POSTGRES_SCHEMES.includes(`${scheme}:`)) {
    return invalid(`unsupported scheme '${scheme}'`, "postgres://, postgresql://, sqlite: or a file path");
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return invalid("not a valid URL", "postgres://user:password@host:5432/database");
  }
  if (url.hostname === "" && !url.searchParams.has("host")) {
    return invalid("no host", "postgres://user:password@host:5432/database");
  }
  const schema = url.searchParams.get("schema") ?? undefined;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    return invalid(
      `schema '${schema}' is not allowed`,
      "lower-case letters, digits and _, not starting with a digit",
    );
  }
  const poolText = url.searchParams.get("pool_max");
  const poolMax = poolText === null ? DEFAULT_POOL_MAX : /^\d+$/.test(poolText) ? Number(poolText) : 0;
  if (poolMax < 1 || poolMax > MAX_POOL_MAX) {
    return invalid(`pool_max '${poolText}' is not allowed`, `a whole number from 1 to ${MAX_POOL_MAX}`);
  }
  url.searchParams.delete("schema");
  url.searchParams.delete("pool_max");
  return ok({
    kind: "postgres",
    connectionString: url.toString(),
    display: hidePassword(value),
    ...(schema !== undefined ? { schema } : {}),
    poolMax,
  });
}
