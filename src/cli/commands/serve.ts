import type { Command } from "commander";
import {
  Lumyn,
  LumynError,
  plainSpeedups,
  StorageError,
  workspaceAt,
  workspaceSigningKey,
} from "../../index.ts";
import type { Setting } from "../../server/server.ts";
import { expect, jsonText, usageError } from "../io.ts";
import { readPublicKey } from "./keys-signing.ts";

interface ServeFlags {
  readonly host?: string;
  readonly port?: string;
  readonly workspace?: string;
  readonly store?: string;
  readonly migrate?: boolean;
  readonly policy?: string;
  readonly auth?: boolean;
  readonly config?: string;
  readonly bodyLimit?: string;
  readonly logLevel?: string;
  readonly redaction?: string;
  readonly printConfig?: boolean;
  readonly redis?: string;
  readonly policyPublisherKey?: readonly string[];
  readonly policyMaxBytes?: string;
  readonly checkpointDir?: string;
  readonly checkpointInterval?: string;
  readonly policyMaxRules?: string;
  readonly writeStallMs?: string;
}

export function register(program: Command): void {
  program
    .command("serve")
    .description(
      "run the HTTP decision service: flags, then LUMYN_* variables, then the config file (see docs/server.md)",
    )
    .option("--host <address>", "address to listen on (default 127.0.0.1)")
    .option("--port <n>", "port to listen on, 0 for any free one (default 8787)")
    .option("-w, --workspace <dir>", "workspace folder: database and default policy (default .lumyn)")
    .option(
      "--store <url>",
      "the store: postgres://user:pass@host:5432/db or a SQLite file (default: the workspace's lumyn.db)",
    )
    .option("--no-migrate", "do not apply pending PostgreSQL migrations at start (run `lumyn migrate` first)")
    .option("-p, --policy <file>", "policy file (default: the workspace policy)")
    .option("--no-auth", "serve without API keys (only on a loopback address)")
    .option("--config <file>", "JSON config file (default: lumyn.config.json here, when it exists)")
    .option("--body-limit <bytes>", "largest request body accepted (default 1048576)")
    .option("--log-level <level>", "fatal, error, warn, info, debug, trace or silent (default info)")
    .option("--redaction <profile>", "redaction profile for requests that name none: default, strict, off")
    .option(
      "--redis <url>",
      "Redis for policy hot reload and velocity counters, e.g. redis://127.0.0.1:6379 (see docs/registry.md)",
    )
    .option(
      "--policy-publisher-key <file>",
      "an Ed25519 public key (PEM) whose signed policy documents in Redis are applied; repeat for several (see docs/registry.md)",
      (file: string, previous: readonly string[] = []) => [...previous, file],
    )
    .option(
      "--policy-max-bytes <bytes>",
      "largest policy: the policy file, registry versions, documents in Redis (rejected unread) (default 1048576)",
    )
    .option(
      "--checkpoint-dir <dir>",
      "write each new signed checkpoint to this folder, outside the store (a mounted bucket, a witness); needs the workspace's signing key (see docs/security.md)",
    )
    .option(
      "--checkpoint-interval <seconds>",
      "how often the head is signed when it moved and new checkpoints are written to --checkpoint-dir (default 60)",
    )
    .option("--policy-max-rules <n>", "most rules a policy may have (default 10000)")
    .option(
      "--write-stall-ms <ms>",
      "/readyz answers 503 once writes have waited this long without a commit (default 10000)",
    )
    .option("--print-config", "print the effective settings (secrets hidden) and exit")
    .action(async (flags: ServeFlags, command: Command) => {
      const debug = command.optsWithGlobals().debug === true;
      const given: Partial<Record<Setting, string | boolean | readonly string[]>> = {
        ...(flags.host !== undefined ? { host: flags.host } : {}),
        ...(flags.port !== undefined ? { port: flags.port } : {}),
        ...(flags.workspace !== undefined ? { workspace: flags.workspace } : {}),
        ...(flags.store !== undefined ? { store: flags.store } : {}),
        ...(command.getOptionValueSource("migrate") === "cli" ? { migrate: false } : {}),
        ...(flags.policy !== undefined ? { policy: flags.policy } : {}),
        // --no-auth defines `auth` (true by default): only an explicit --no-auth is a flag.
        ...(command.getOptionValueSource("auth") === "cli" ? { auth: false } : {}),
        ...(flags.bodyLimit !== undefined ? { bodyLimit: flags.bodyLimit } : {}),
        ...(flags.logLevel !== undefined ? { logLevel: flags.logLevel } : {}),
        ...(flags.redaction !== undefined ? { redaction: flags.redaction } : {}),
        ...(flags.redis !== undefined ? { redis: flags.redis } : {}),
        ...(flags.policyPublisherKey !== undefined ? { policyPublisherKeys: flags.policyPublisherKey } : {}),
        ...(flags.policyMaxBytes !== undefined ? { policyMaxBytes: flags.policyMaxBytes } : {}),
        ...(flags.checkpointDir !== undefined ? { checkpointDir: flags.checkpointDir } : {}),
        ...(flags.checkpointInterval !== undefined ? { checkpointInterval: flags.checkpointInterval } : {}),
        ...(flags.policyMaxRules !== undefined ? { policyMaxRules: flags.policyMaxRules } : {}),
        ...(flags.writeStallMs !== undefined ? { writeStallMs: flags.writeStallMs } : {}),
      };
      // Loaded here, not at start-up: the HTTP framework would slow every other command's cold start.
      const { printableConfig, resolveServeConfig, startServer } = await import("../../server/server.ts");
      const resolved = expect(
        resolveServeConfig(
          { ...given, ...(flags.config !== undefined ? { config: flags.config } : {}) },
          process.env,
        ),
      );
      if (flags.printConfig) {
        process.stdout.write(jsonText(printableConfig(resolved) as never, true));
        return;
      }
      const { config } = resolved;
      if (
        config.checkpointDir !== undefined &&
        workspaceSigningKey(workspaceAt(config.workspace)) === undefined
      )
        throw usageError(
          `checkpoint_dir (${config.checkpointDir}) needs a signed log, and workspace ${config.workspace} has no signing key: create one with \`lumyn keys signing create --workspace ${config.workspace}\``,
        );
      // Read before the store is opened: a key that cannot be used stops the start with nothing opened.
      const publisherKeys = (config.policyPublisherKeys ?? []).map(readPublicKey);
      const lumyn = expect(
        await Lumyn.open({
          workspace: config.workspace,
          ...(config.store !== undefined ? { storeUrl: config.store } : {}),
          migrate: config.migrate,
          ...(config.policy !== undefined ? { policyPath: config.policy } : {}),
          ...(config.redaction !== undefined ? { redactionProfile: config.redaction } : {}),
          policyLimits: { maxBytes: config.policyMaxBytes, maxRules: config.policyMaxRules },
          // The writer thread commits while the main thread keeps answering.
          store: { writer: "thread" },
        }),
      );
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer({
          lumyn,
          host: config.host,
          port: config.port,
          auth: config.auth,
          ...(config.signingSecret !== undefined ? { signingSecret: config.signingSecret } : {}),
          bodyLimit: config.bodyLimit,
          log: { level: config.logLevel },
          debug,
          ...(config.redis !== undefined ? { redisUrl: config.redis } : {}),
          policyPublisherKeys: publisherKeys,
          policyMaxBytes: config.policyMaxBytes,
          ...(config.checkpointDir !== undefined
            ? { checkpointDir: config.checkpointDir, checkpointIntervalMs: config.checkpointInterval * 1000 }
            : {}),
          writeStallMs: config.writeStallMs,
        });
      } catch (error) {
        await lumyn.close();
        const unreachable = error instanceof StorageError;
        throw new LumynError({
          kind: unreachable ? "storage" : "usage",
          problems: [
            {
              code: unreachable ? "unreachable" : "listen",
              message: `cannot serve: ${(error as Error).message}`,
            },
          ],
        });
      }
      // Said at start: answers stay the same with fast paths off, the server's capacity does not.
      const plain = plainSpeedups();
      process.stderr.write(
        `lumyn: serving ${server.url} (policy ${lumyn.policy.model.policyId} ${lumyn.policy.model.policyVersion}${lumyn.activeVersions().size > 0 ? `, registry versions for ${[...lumyn.activeVersions().keys()].join(", ")}` : ""}, auth ${config.auth ? "on" : "off"}${config.redis ? ", Redis on" : ""}${plain.length > 0 ? `, fast paths off: ${plain.join(", ")}` : ""})\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          process.stderr.write(`lumyn: ${signal}: finishing in-flight requests, then closing the store\n`);
          server.close().then(resolve, (error: unknown) => {
            process.stderr.write(`lumyn: error while closing: ${(error as Error).message}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
      process.stderr.write("lumyn: stopped\n");
    });
}
