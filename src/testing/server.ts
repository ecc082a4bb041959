import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { createApiKey, type NewApiKey } from "../domain/api-key.ts";
import { Lumyn } from "../lumyn.ts";
import { type RunningServer, type ServerOptions, startServer } from "../server/server.ts";
import type { SqliteStoreOptions } from "../store/sqlite/sqlite-store.ts";

/** A real server for tests: a fresh workspace in a temporary folder, an ephemeral port, logs kept in memory. */
export interface TestServer {
  readonly url: string;
  readonly lumyn: Lumyn;
  readonly dir: string;
  readonly server: RunningServer;
  /** Every log line written so far, parsed. */
  logs(): Record<string, unknown>[];
  /** The raw log text (to check that no secret is in it). */
  logText(): string;
  /** Creates a key in the server's store and returns its text. */
  key(options: NewApiKey): Promise<string>;
  close(): Promise<void>;
}

export async function startTestServer(
  options: Omit<ServerOptions, "lumyn" | "log"> & {
    readonly store?: SqliteStoreOptions;
    /** A policy instead of the starter policy. */
    readonly policy?: string;
  } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "lumyn-server-"));
  const policyPath = join(dir, "policy.yml");
  if (options.policy !== undefined) writeFileSync(policyPath, options.policy);
  const opened = await Lumyn.open({
    workspace: join(dir, "ws"),
    ...(options.policy !== undefined ? { policyPath } : {}),
    ...(options.store ? { store: options.store } : {}),
  });
  if (!opened.ok) throw new Error(opened.problems.map((p) => p.message).join("\n"));
  const lumyn = opened.value;
  let text = "";
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  const server = await startServer({ ...options, lumyn, port: 0, log: { level: "info", stream } });
  return {
    url: server.url,
    lumyn,
    dir,
    server,
    logs: () =>
      text
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    logText: () => text,
    key: async (keyOptions) => {
      const { key, record } = createApiKey(keyOptions);
      await lumyn.store.apiKeys.put(record);
      return key;
    },
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A valid request of the starter policy (see assets/example-requests.ts) with overrides. */
export function exampleRequest(
  name: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const example = EXAMPLE_REQUESTS[name];
  if (!example) throw new Error(`no example request '${name}'`);
  return { ...structuredClone(example.request as Record<string, unknown>), ...overrides };
}
