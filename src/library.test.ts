import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as lumyn from "./index.ts";
import * as core from "./lumyn-core.ts";

/** The npm packages an import of `entry` loads, seen from a fresh process by a module resolution hook. */
function packagesLoadedBy(entry: string): string[] {
  const script = `
    import { registerHooks } from "node:module";
    const packages = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        const resolved = next(specifier, context);
        const match = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(resolved.url);
        if (match) packages.add(match[1]);
        return resolved;
      },
    });
    await import(${JSON.stringify(entry)});
    process.stdout.write(JSON.stringify([...packages].sort()));
  `;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as string[];
}

const SERVER_AND_DATABASE_PACKAGES = [
  "fastify",
  "pg",
  "ioredis",
  "prom-client",
  "typebox",
  "@fastify/swagger",
];

describe("the library's entries", () => {
  it("lumyn/core loads no store, no server and no database client", () => {
    const loaded = packagesLoadedBy(fileURLToPath(new URL("./lumyn-core.ts", import.meta.url)));
    for (const name of [...SERVER_AND_DATABASE_PACKAGES, "fflate"]) assert.ok(!loaded.includes(name), name);
  });

  it("lumyn loads its database clients only when a store of theirs is opened", () => {
    const loaded = packagesLoadedBy(fileURLToPath(new URL("./index.ts", import.meta.url)));
    for (const name of SERVER_AND_DATABASE_PACKAGES) assert.ok(!loaded.includes(name), name);
  });

  it("lumyn holds everything of lumyn/core, and the gateway and its stores besides", () => {
    for (const name of Object.keys(core))
      assert.equal(lumyn[name as keyof typeof lumyn], core[name as keyof typeof core], name);
    for (const name of ["Lumyn", "openStore", "SqliteStore", "verifyStoreChain", "replayPack", "Approvals"])
      assert.ok(name in lumyn, name);
    for (const name of ["Lumyn", "openStore", "SqliteStore"]) assert.ok(!(name in core), name);
  });
});
