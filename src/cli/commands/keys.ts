import type { Command } from "commander";
import {
  type ApiKey,
  createApiKey,
  didYouMean,
  LumynError,
  reservedPrincipal,
  SCOPES,
  type Scope,
} from "../../index.ts";
import { jsonText, usageError } from "../io.ts";
import { addWorkspaceOption, openExistingStore, openSelectedStore, storeLocation } from "../options.ts";
import * as keysPublisher from "./keys-publisher.ts";
import * as keysSigning from "./keys-signing.ts";

/**
 * `lumyn keys`: the HTTP service's API keys. A command group: each subcommand is a function of this list,
 * so a new one (e.g. `keys signing`) is one more entry.
 */
const SUBCOMMANDS: readonly ((keys: Command) => void)[] = [
  registerCreate,
  registerList,
  registerRevoke,
  keysSigning.register,
  keysPublisher.register,
];

export function register(program: Command): Command {
  const keys = program
    .command("keys")
    .description(
      "API keys of the HTTP service (lumyn serve), the audit log's signing key, and policy publisher keys",
    );
  for (const subcommand of SUBCOMMANDS) subcommand(keys);
  return keys;
}

function registerCreate(keys: Command): void {
  addWorkspaceOption(
    keys
      .command("create")
      .description("create a key, print it once and store only its hash")
      .requiredOption("--scopes <list>", `comma-separated: ${SCOPES.join(", ")} (admin implies all)`),
  )
    .option("--tenant <id>", "bind the key to one tenant: it decides and reads only that tenant's decisions")
    .option("--roles <list>", "comma-separated roles of the holder (for approvals)")
    .option("--name <name>", "what the key is for, shown by keys list (the principal unless --principal)")
    .option(
      "--principal <identity>",
      "who holds the key, as approvals know them (default: the name, else the key's id); keys of one holder share it",
    )
    .option("--rate-limit <n>", "requests per second the key may make (unlimited by default)")
    .option("--json", "print the key and its grants as JSON")
    .action(
      async (options: {
        workspace?: string;
        store?: string;
        scopes: string;
        tenant?: string;
        roles?: string;
        name?: string;
        principal?: string;
        rateLimit?: string;
        json?: boolean;
      }) => {
        const scopes = parseScopes(options.scopes);
        const rateLimit = options.rateLimit === undefined ? undefined : Number(options.rateLimit);
        if (rateLimit !== undefined && !(Number.isFinite(rateLimit) && rateLimit > 0)) {
          throw usageError(
            `--rate-limit must be a positive number of requests per second, not '${options.rateLimit}'`,
          );
        }
        if (options.tenant === "") throw usageError("--tenant must not be empty");
        if (options.principal !== undefined && options.principal.trim() === "")
          throw usageError("--principal must name who holds the key");
        // The principal (the name by default) is the holder's identity in approvals; `system:` is the engine's.
        for (const [flag, value] of [
          ["--name", options.name],
          ["--principal", options.principal],
        ] as const)
          if (value !== undefined && reservedPrincipal(value))
            throw usageError(`${flag} '${value}' is reserved: identities like 'system:…' are the engine's`);
        const { key, record } = createApiKey({
          scopes,
          ...(options.name !== undefined ? { name: options.name } : {}),
          ...(options.principal !== undefined ? { principal: options.principal } : {}),
          ...(options.tenant !== undefined ? { tenantId: options.tenant } : {}),
          roles: list(options.roles),
          ...(rateLimit !== undefined ? { rateLimitPerSecond: rateLimit } : {}),
        });
        const store = await openSelectedStore(storeLocation(options));
        try {
          await store.apiKeys.put(record);
        } finally {
          await store.close();
        }
        if (options.json) {
          process.stdout.write(jsonText({ key, ...keyJson(record) }, false));
        } else {
          process.stdout.write(`${key}\n`);
          process.stderr.write(
            `lumyn: created key ${record.keyId} (${describe(record)}); this is the only time it is shown\n`,
          );
        }
      },
    );
}

function registerList(keys: Command): void {
  addWorkspaceOption(
    keys.command("list").description("every key: id, state, principal, scopes, tenant, roles, name"),
  )
    .option("--json", "print the keys as JSON")
    .action(async (options: { workspace?: string; json?: boolean }) => {
      const store = await openExistingStore(options);
      let all: ApiKey[];
      try {
        all = await store.apiKeys.list();
      } finally {
        await store.close();
      }
      if (options.json) {
        process.stdout.write(jsonText({ keys: all.map(keyJson) }, false));
        return;
      }
      if (all.length === 0)
        process.stdout.write("no keys; create one with `lumyn keys create --scopes ...`\n");
      for (const key of all) {
        const state = key.revokedAt ? `revoked ${key.revokedAt}` : "active";
        process.stdout.write(`${key.keyId}  ${state}  ${describe(key)}${key.name ? `  ${key.name}` : ""}\n`);
      }
    });
}

function registerRevoke(keys: Command): void {
  addWorkspaceOption(
    keys.command("revoke").description("revoke a key from now on").argument("<key-id>"),
  ).action(async (keyId: string, options: { workspace?: string }) => {
    const store = await openExistingStore(options);
    let found: boolean;
    try {
      found = await store.apiKeys.revoke(keyId);
    } finally {
      await store.close();
    }
    if (!found) {
      throw new LumynError({
        kind: "not_found",
        problems: [{ code: "key_not_found", message: `no key with id '${keyId}' (see lumyn keys list)` }],
      });
    }
    process.stdout.write(`revoked ${keyId}\n`);
  });
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

function parseScopes(value: string): Scope[] {
  const scopes = list(value);
  if (scopes.length === 0) throw usageError(`--scopes needs at least one of ${SCOPES.join(", ")}`);
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope)) {
      const hint = didYouMean(scope, SCOPES);
      throw usageError(
        `--scopes: unknown scope '${scope}' (expected ${SCOPES.join(", ")}${hint ? `; ${hint}` : ""})`,
      );
    }
  }
  return scopes as Scope[];
}

function describe(key: ApiKey): string {
  return [
    `principal ${key.principal}`,
    `scopes ${key.scopes.join(",")}`,
    key.tenantId !== undefined ? `tenant ${key.tenantId}` : "all tenants",
    ...(key.roles.length > 0 ? [`roles ${key.roles.join(",")}`] : []),
    ...(key.rateLimitPerSecond !== undefined ? [`${key.rateLimitPerSecond}/s`] : []),
  ].join(", ");
}

function keyJson(key: ApiKey) {
  return {
    key_id: key.keyId,
    name: key.name,
    principal: key.principal,
    scopes: [...key.scopes],
    tenant_id: key.tenantId ?? null,
    roles: [...key.roles],
    rate_limit_per_second: key.rateLimitPerSecond ?? null,
    created_at: key.createdAt,
    revoked_at: key.revokedAt ?? null,
  };
}
