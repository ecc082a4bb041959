import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  DEFAULT_POLICY_MAX_BYTES,
  DEFAULT_POLICY_MAX_RULES,
  DEFAULT_WORKSPACE,
  didYouMean,
  fail,
  hidePassword,
  isJsonNumber,
  isJsonObject,
  type JsonValue,
  ok,
  POLICY_BYTES_CEILING,
  POLICY_RULES_CEILING,
  type Problem,
  parseJson,
  REDACTION_PROFILES,
  type RedactionProfile,
  type Result,
  readText,
  toDouble,
} from "../index.ts";

/**
 * `lumyn serve` settings. Each comes from, in order of precedence: a flag, a `LUMYN_*` environment variable,
 * the config file (`--config FILE`, `LUMYN_CONFIG`, or `lumyn.config.json` in the current folder), then its
 * default. Paths in the config file are relative to the file's folder.
 */
export interface ServeConfig {
  readonly host: string;
  readonly port: number;
  readonly workspace: string;
  /** Store URL (`postgres://…` or a SQLite file); the workspace's lumyn.db when unset. */
  readonly store?: string;
  /** PostgreSQL: apply pending migrations at start. */
  readonly migrate: boolean;
  /** The workspace's policy.yml when unset. */
  readonly policy?: string;
  readonly auth: boolean;
  readonly signingSecret?: string;
  readonly bodyLimit: number;
  readonly logLevel: string;
  /** Redaction profile for requests that name none (`default` when unset). */
  readonly redaction?: RedactionProfile;
  /** `redis://…`: policy announcements, signed policy documents and velocity counters (none when unset). */
  readonly redis?: string;
  /**
   * Files of the Ed25519 public keys (SPKI PEM) whose signed policy documents in Redis are applied; without
   * any, every document written to Redis is rejected.
   */
  readonly policyPublisherKeys?: readonly string[];
  /**
   * The largest policy, in bytes: the policy file, the registry's versions, and a signed document read from
   * Redis (the whole envelope), which is rejected unread when it is larger.
   */
  readonly policyMaxBytes: number;
  /** A folder outside the store (a mounted bucket, a witness) where each new signed checkpoint is written. */
  readonly checkpointDir?: string;
  /** Seconds between signing the head (when it moved) and writing new checkpoints to `checkpointDir`. */
  readonly checkpointInterval: number;
  /** The most rules a policy may have (the policy file, the registry's versions, documents from Redis). */
  readonly policyMaxRules: number;
  /** How long the store's writes may wait without a commit before /readyz answers 503, in ms. */
  readonly writeStallMs: number;
}

export type Setting = keyof ServeConfig;

export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 8787;
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 60_000;
export const DEFAULT_WRITE_STALL_MS = 10_000;
export type Source = "flag" | "env" | "file" | "default";

export const DEFAULT_CONFIG_FILE = "lumyn.config.json";
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

type Raw = string | number | boolean | readonly string[];

interface SettingSpec {
  /** Environment variable; the reference's names where it has one. */
  readonly env: string;
  /** Key in the config file. */
  readonly key: string;
  /** The flag, when it is not the setting's name in kebab case (a repeatable flag names one item). */
  readonly flag?: string;
  readonly secret?: boolean;
  /** How the value is shown (`--print-config`, messages) when parts of it are secret. */
  readonly printable?: (value: string) => string;
  readonly path?: boolean;
  /** The value, or what was expected. */
  readonly parse: (raw: Raw) => { value: ServeConfig[Setting] } | { expected: string };
}

const text = (raw: Raw) =>
  typeof raw === "string" && raw !== "" ? { value: raw } : { expected: "a non-empty string" };
const oneOf =
  (values: readonly string[]) =>
  (raw: Raw): { value: string } | { expected: string } =>
    typeof raw === "string" && values.includes(raw)
      ? { value: raw }
      : { expected: `one of ${values.join(", ")}` };
const integer =
  (min: number, max: number) =>
  (raw: Raw): { value: number } | { expected: string } => {
    const value = typeof raw === "number" ? raw : /^\d+$/.test(String(raw)) ? Number(raw) : Number.NaN;
    return Number.isSafeInteger(value) && value >= min && value <= max
      ? { value }
      : { expected: `a whole number from ${min} to ${max}` };
  };
const BOOLEANS: Readonly<Record<string, boolean>> = {
  true: true,
  false: false,
  on: true,
  off: false,
  "1": true,
  "0": false,
};
const flag = (raw: Raw): { value: boolean } | { expected: string } => {
  const value = typeof raw === "boolean" ? raw : BOOLEANS[String(raw).toLowerCase()];
  return value === undefined ? { expected: "true or false (on/off, 1/0)" } : { value };
};

/**
 * Files, given as a repeated flag, a comma-separated variable, or a list (or one string) in the config file.
 * Each is resolved against the config file's folder when it comes from there.
 */
const fileList = (raw: Raw): { value: string[] } | { expected: string } => {
  const items = typeof raw === "string" ? raw.split(",").map((item) => item.trim()) : raw;
  return Array.isArray(items) &&
    items.length > 0 &&
    items.every((item) => typeof item === "string" && item !== "")
    ? { value: [...items] }
    : { expected: "one or more file paths (a list in the config file, comma-separated in the environment)" };
};

const redisUrl = (raw: Raw): { value: string } | { expected: string } => {
  const expected = { expected: "a Redis URL: redis://[user:password@]host[:port][/db] or rediss://…" };
  if (typeof raw !== "string") return expected;
  try {
    const url = new URL(raw);
    return (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== ""
      ? { value: raw }
      : expected;
  } catch {
    return expected;
  }
};

const SETTINGS: Readonly<Record<Setting, SettingSpec>> = {
  host: { env: "LUMYN_HOST", key: "host", parse: text },
  port: { env: "LUMYN_PORT", key: "port", parse: integer(0, 65_535) },
  workspace: { env: "LUMYN_WORKSPACE", key: "workspace", path: true, parse: text },
  // Checked when the store is opened: a bad URL is a storage failure (exit code 3), like an unreachable one.
  store: { env: "LUMYN_STORE", key: "store", printable: hidePassword, parse: text },
  migrate: { env: "LUMYN_MIGRATE", key: "migrate", parse: flag },
  policy: { env: "LUMYN_POLICY_PATH", key: "policy", path: true, parse: text },
  auth: { env: "LUMYN_AUTH", key: "auth", parse: flag },
  signingSecret: { env: "LUMYN_SIGNING_SECRET", key: "signing_secret", secret: true, parse: text },
  bodyLimit: { env: "LUMYN_BODY_LIMIT", key: "body_limit", parse: integer(1, 64 * 1024 * 1024) },
  logLevel: { env: "LUMYN_LOG_LEVEL", key: "log_level", parse: oneOf(LOG_LEVELS) },
  redaction: { env: "LUMYN_REDACTION_PROFILE", key: "redaction", parse: oneOf(REDACTION_PROFILES) },
  // A secret: the URL may carry a password.
  redis: { env: "LUMYN_REDIS", key: "redis", secret: true, parse: redisUrl },
  policyPublisherKeys: {
    env: "LUMYN_POLICY_PUBLISHER_KEYS",
    key: "policy_publisher_keys",
    flag: "--policy-publisher-key",
    path: true,
    parse: fileList,
  },
  policyMaxBytes: {
    env: "LUMYN_POLICY_MAX_BYTES",
    key: "policy_max_bytes",
    parse: integer(1, POLICY_BYTES_CEILING),
  },
  policyMaxRules: {
    env: "LUMYN_POLICY_MAX_RULES",
    key: "policy_max_rules",
    parse: integer(1, POLICY_RULES_CEILING),
  },
  checkpointDir: { env: "LUMYN_CHECKPOINT_DIR", key: "checkpoint_dir", path: true, parse: text },
  checkpointInterval: {
    env: "LUMYN_CHECKPOINT_INTERVAL",
    key: "checkpoint_interval",
    parse: integer(1, 86_400),
  },
  writeStallMs: { env: "LUMYN_WRITE_STALL_MS", key: "write_stall_ms", parse: integer(1, 3_600_000) },
};

const DEFAULTS: Partial<ServeConfig> = {
  host: DEFAULT_HOST,
  port: DEFAULT_PORT,
  workspace: DEFAULT_WORKSPACE,
  migrate: true,
  auth: true,
  bodyLimit: 1024 * 1024,
  logLevel: "info",
  policyMaxBytes: DEFAULT_POLICY_MAX_BYTES,
  policyMaxRules: DEFAULT_POLICY_MAX_RULES,
  checkpointInterval: DEFAULT_CHECKPOINT_INTERVAL_MS / 1000,
  writeStallMs: DEFAULT_WRITE_STALL_MS,
};

export interface ResolvedConfig {
  readonly config: ServeConfig;
  readonly sources: Readonly<Record<Setting, Source>>;
  /** The config file read, if any. */
  readonly file?: string;
}

/**
 * The effective settings from flags (as given on the command line, strings or booleans), the environment and
 * the config file. Every problem is reported at once: a flag by name, a variable by name, the file by path
 * and JSON pointer.
 */
export function resolveServeConfig(
  flags: Partial<Record<Setting, Raw>> & { readonly config?: string },
  env: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
): Result<ResolvedConfig> {
  const explicitFile = flags.config ?? env.LUMYN_CONFIG;
  const filePath = explicitFile
    ? resolve(cwd, explicitFile)
    : existsSync(resolve(cwd, DEFAULT_CONFIG_FILE))
      ? resolve(cwd, DEFAULT_CONFIG_FILE)
      : undefined;
  const problems: Problem[] = [];
  const fileValues = filePath ? readConfigFile(filePath, problems) : {};
  const config: Record<string, unknown> = {};
  const sources = {} as Record<Setting, Source>;
  for (const [name, spec] of Object.entries(SETTINGS) as [Setting, SettingSpec][]) {
    const candidates: [Source, Raw | undefined, Omit<Problem, "code" | "message">][] = [
      ["flag", flags[name], {}],
      ["env", env[spec.env] === "" ? undefined : env[spec.env], {}],
      [
        "file",
        fileValues[spec.key] as Raw | undefined,
        { ...(filePath ? { file: filePath } : {}), pointer: `/${spec.key}` },
      ],
    ];
    const found = candidates.find(([, raw]) => raw !== undefined);
    if (!found) {
      sources[name] = "default";
      if (DEFAULTS[name] !== undefined) config[name] = DEFAULTS[name];
      continue;
    }
    const [source, raw, where] = found;
    const parsed = spec.parse(raw as Raw);
    if ("expected" in parsed) {
      const label =
        source === "flag" ? (spec.flag ?? `--${kebab(name)}`) : source === "env" ? spec.env : spec.key;
      problems.push({
        code: "config",
        message: `${label}: ${spec.secret ? "the value" : JSON.stringify(spec.printable ? spec.printable(String(raw)) : raw)} is not allowed`,
        expected: parsed.expected,
        ...where,
      });
      continue;
    }
    sources[name] = source;
    const base = spec.path && source === "file" && filePath ? dirname(filePath) : undefined;
    config[name] =
      base === undefined
        ? parsed.value
        : Array.isArray(parsed.value)
          ? parsed.value.map((path) => resolve(base, path))
          : resolve(base, String(parsed.value));
  }
  if (problems.length > 0) return fail("usage", problems);
  return ok({ config: config as unknown as ServeConfig, sources, ...(filePath ? { file: filePath } : {}) });
}

function readConfigFile(path: string, problems: Problem[]): Record<string, JsonValue> {
  let source: string;
  try {
    source = readText(path);
  } catch (error) {
    problems.push({
      code: "config",
      message: `cannot read the config file: ${(error as Error).message}`,
      file: path,
    });
    return {};
  }
  const parsed = parseJson(source, { file: path });
  if (!parsed.ok) {
    problems.push(...parsed.problems);
    return {};
  }
  if (!isJsonObject(parsed.value)) {
    problems.push({
      code: "config",
      message: "the config file must hold a JSON object",
      file: path,
      pointer: "",
    });
    return {};
  }
  const keys = Object.values(SETTINGS).map((spec) => spec.key);
  for (const key of Object.keys(parsed.value)) {
    if (keys.includes(key)) continue;
    const hint = didYouMean(key, keys);
    problems.push({
      code: "unknown_key",
      message: `unknown setting '${key}'`,
      file: path,
      pointer: `/${key}`,
      expected: `one of ${keys.join(", ")}`,
      ...(hint ? { hint } : {}),
    });
  }
  const values: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(parsed.value)) {
    // Numbers arrive losslessly typed (int vs float); settings want plain values.
    values[key] = isJsonNumber(value) ? toDouble(value) : value;
  }
  return values;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** The effective settings as JSON for `--print-config`: secrets replaced by `(hidden)`, with each one's source. */
export function printableConfig(resolved: ResolvedConfig): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [Setting, SettingSpec][]) {
    const value = resolved.config[name];
    settings[spec.key] =
      value === undefined
        ? null
        : spec.secret
          ? "(hidden)"
          : spec.printable
            ? spec.printable(String(value))
            : value;
  }
  const sources: Record<string, Source> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [Setting, SettingSpec][])
    sources[spec.key] = resolved.sources[name];
  return { settings, sources, config_file: resolved.file ?? null };
}
