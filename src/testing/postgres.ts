import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * The PostgreSQL server tests use: `LUMYN_TEST_POSTGRES` (an admin URL), by default the local server with
 * trust authentication that `.ci/run` makes sure is running.
 */
export const TEST_POSTGRES_ADMIN_URL =
  process.env.LUMYN_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  /** The throw-away database's URL. */
  readonly url: string;
  readonly name: string;
  /** Drops the database (closing whatever is still connected to it). */
  drop(): Promise<void>;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates a new, empty database with a random name, for one test file or test; only it is ever dropped. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `lumyn_test_${label}_${randomBytes(6).toString("hex")}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(TEST_POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () =>
      admin(async (client) => void (await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}
