import { Redis } from "ioredis";
import { sha256 } from "../core/digest.ts";
import type { JsonObject } from "../core/json.ts";
import { formatProblem, type Problem, type Result, StorageError } from "../core/problem.ts";
import type { Store } from "../store/store.ts";
import { activatePolicy, publishPolicy, type RegistryChange } from "./policy-registry.ts";

/** The gateway whose policies a {@link PolicySync} keeps current (a Lumyn). */
export interface PolicyHost {
  readonly store: Store;
  readonly reasonCodeRegistry: ReadonlySet<string> | undefined;
  /** Every tenant's active registry version, by tenant. */
  activeVersions(): Map<string, string>;
  /** Reads the registry's active versions from the store and decides under them from now on. */
  reloadPolicies(): Promise<Result<Map<string, string>>>;
}

/** Where activations are announced: every server reloads the registry's active versions from the store. */
export const ANNOUNCE_CHANNEL = "lumyn:policy:announce";
/** `SET lumyn:policy:<tenant> <yaml-or-json>`: an operator's policy document for a tenant (`*`: the default). */
export const POLICY_KEY_PREFIX = "lumyn:policy:";
/** One server handles each operator document; the others follow its announcement. */
const CLAIM_PREFIX = "lumyn:claim:policy:";
const CLAIM_MS = 60_000;

/** How often the store is read for activations that no announcement reached (Redis down, or no Redis). */
export const DEFAULT_POLICY_POLL_MS = 5_000;

export interface SyncLog {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface SyncEvents {
  /** The gateway switched a tenant's policy (after an announcement, a poll, or an operator's document). */
  switched?(tenantId: string, policyHash: string): void;
  /** An operator's document was invalid: it was recorded as rejected and the last good policy stays. */
  rejected?(tenantId: string, problems: readonly Problem[]): void;
}

export interface PolicySyncOptions {
  readonly lumyn: PolicyHost;
  readonly log: SyncLog;
  readonly events?: SyncEvents;
  /** `redis://…`: announcements and operator documents; without it the store is only polled. */
  readonly redisUrl?: string;
  readonly pollMs?: number;
}

/**
 * Keeps a gateway's per-tenant policies in step with the registry. The store is the truth; Redis makes
 * changes arrive fast. Three paths lead to a reload:
 *
 * - an announcement on {@link ANNOUNCE_CHANNEL} (published by `lumyn policy activate/rollback --redis` and by
 *   the server that handled an operator's document): every server reloads at once;
 * - a keyspace notification that `lumyn:policy:<tenant>` was set: one server (the one that claims it)
 *   validates, publishes and activates the document, then announces; an invalid one is recorded as rejected
 *   and changes nothing. Notifications are turned on with CONFIG SET when the server allows it; every
 *   (re)connection and every poll also scans the keys, so a document set while a server was away, or where
 *   notifications are not allowed, is still seen;
 * - a poll of the store every `pollMs`, which also covers announcements lost while Redis was down.
 */
export class PolicySync {
  private readonly lumyn: PolicyHost;
  private readonly log: SyncLog;
  private readonly events: SyncEvents;
  private readonly pollMs: number;
  private commands: Redis | undefined;
  private subscriber: Redis | undefined;
  private timer: NodeJS.Timeout | undefined;
  private active = new Map<string, string>();
  /** The document last handled per key, so that a scan does not handle it again. */
  private readonly handled = new Map<string, string>();
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  private closed = false;

  private constructor(options: PolicySyncOptions) {
    this.lumyn = options.lumyn;
    this.log = options.log;
    this.events = options.events ?? {};
    this.pollMs = options.pollMs ?? DEFAULT_POLICY_POLL_MS;
    this.active = options.lumyn.activeVersions();
  }

  /** Starts following the registry; with Redis, fails when it cannot be reached now. */
  static async start(options: PolicySyncOptions): Promise<PolicySync> {
    const sync = new PolicySync(options);
    if (options.redisUrl) {
      try {
        await sync.connect(options.redisUrl);
      } catch (error) {
        await sync.close();
        throw new StorageError(
          `cannot reach Redis at ${redactUrl(options.redisUrl)}: ${(error as Error).message}`,
        );
      }
    }
    sync.timer = setInterval(() => sync.poll(), sync.pollMs);
    sync.timer.unref();
    return sync;
  }

  private async connect(url: string): Promise<void> {
    // No offline queue: a command while Redis is down fails at once instead of waiting for it to return.
    const settings = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 } as const;
    const commands = new Redis(url, settings);
    const subscriber = new Redis(url, { ...settings, enableOfflineQueue: true });
    this.commands = commands;
    this.subscriber = subscriber;
    // Errors are answered where they matter (a failed command, a lost connection), not as events.
    subscriber.on("error", () => undefined);
    await connectRedis(commands);
    await connectRedis(subscriber);
    await this.enableKeyspaceNotifications(commands);
    const db = commands.options.db ?? 0;
    subscriber.on("message", () => this.reload());
    subscriber.on("pmessage", (_pattern: string, channel: string, event: string) => {
      if (event === "set") void this.handleKey(channel.slice(channel.indexOf(":") + 1));
    });
    await subscriber.subscribe(ANNOUNCE_CHANNEL);
    await subscriber.psubscribe(`__keyspace@${db}__:${POLICY_KEY_PREFIX}*`);
    // Connected by now, so "ready" means Redis came back: announcements made meanwhile are lost, so the
    // store and the keys are read again.
    subscriber.on("ready", () => {
      this.log.info({}, "Redis is back: policy announcements resume");
      this.poll();
    });
    subscriber.on("close", () => {
      if (!this.closed) this.log.warn({}, "Redis connection lost: deciding under the last good policies");
    });
    await this.scanKeys();
  }

  /** Adds keyspace events for string commands (`K$`) to what the server already sends. */
  private async enableKeyspaceNotifications(commands: Redis): Promise<void> {
    try {
      const [, current = ""] = (await commands.config("GET", "notify-keyspace-events")) as string[];
      const wanted = [...new Set([...current, "K", "$"])].join("");
      if (!(current.includes("K") && (current.includes("$") || current.includes("A"))))
        await commands.config("SET", "notify-keyspace-events", wanted);
    } catch (error) {
      this.log.warn(
        { error: (error as Error).message, pollMs: this.pollMs },
        "Redis does not allow keyspace notifications: operator policy documents are seen at the next poll",
      );
    }
  }

  private poll(): void {
    this.reload();
    void this.scanKeys();
  }

  /** Reloads the active versions from the store; calls made while one runs fold into one more. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        await this.reloadOnce();
      } while (this.reloadAgain && !this.closed);
      this.reloading = undefined;
    })();
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    try {
      const loaded = await this.lumyn.reloadPolicies();
      if (!loaded.ok) {
        this.log.error(
          { problems: loaded.problems.map(formatProblem) },
          "could not load an active policy version: the last good policies stay in use",
        );
        return;
      }
      for (const [tenantId, hash] of loaded.value) {
        if (this.active.get(tenantId) === hash) continue;
        this.log.info({ tenant: tenantId, policy_hash: hash }, "policy switched");
        this.events.switched?.(tenantId, hash);
      }
      this.active = loaded.value;
    } catch (error) {
      this.log.warn(
        { error: (error as Error).message },
        "could not read the policy registry: the last good policies stay in use",
      );
    }
  }

  private async scanKeys(): Promise<void> {
    const commands = this.commands;
    if (commands?.status !== "ready") return;
    try {
      let cursor = "0";
      do {
        const [next, keys] = await commands.scan(cursor, "MATCH", `${POLICY_KEY_PREFIX}*`, "COUNT", 100);
        cursor = next;
        for (const key of keys) await this.handleKey(key);
      } while (cursor !== "0");
    } catch (error) {
      this.log.warn({ error: (error as Error).message }, "could not scan Redis for policy documents");
    }
  }

  /** An operator's document: validated, published and activated by the one server that claims it. */
  private async handleKey(key: string): Promise<void> {
    const commands = this.commands;
    const tenantId = key.slice(POLICY_KEY_PREFIX.length);
    if (!commands || !key.startsWith(POLICY_KEY_PREFIX) || tenantId === "") return;
    try {
      const text = await commands.get(key);
      if (text === null) return;
      const digest = sha256(text);
      if (this.handled.get(key) === digest) return;
      if (await this.handledBefore(tenantId, digest)) {
        this.handled.set(key, digest);
        return;
      }
      // Another server holds the claim: the store shows its outcome at the next look, and should it have
      // failed, the claim expires and this server tries.
      const claimed = await commands.set(`${CLAIM_PREFIX}${tenantId}:${digest}`, "1", "PX", CLAIM_MS, "NX");
      if (claimed !== "OK") return;
      this.handled.set(key, digest);
      const change = await this.adopt(tenantId, key, digest, text);
      if (change) await this.announce(change);
    } catch (error) {
      this.handled.delete(key);
      this.log.warn({ key, error: (error as Error).message }, "could not handle a policy document in Redis");
    }
  }

  /** Whether the latest document taken from Redis for the tenant was this one (a restart must not redo it). */
  private async handledBefore(tenantId: string, digest: string): Promise<boolean> {
    const events = await this.lumyn.store.policies.history(tenantId);
    const fromRedis = events.filter((event) => event.detail.by === "redis");
    return fromRedis.at(-1)?.detail.digest === digest;
  }

  private async adopt(
    tenantId: string,
    key: string,
    digest: string,
    text: string,
  ): Promise<RegistryChange | undefined> {
    const source: JsonObject = { by: "redis", key, digest };
    const store: Store = this.lumyn.store;
    const published = await publishPolicy(store, tenantId, text, {
      file: `redis ${key}`,
      source,
      recordRejection: true,
      ...(this.lumyn.reasonCodeRegistry ? { reasonCodeRegistry: this.lumyn.reasonCodeRegistry } : {}),
    });
    if (!published.ok) {
      this.log.error(
        { tenant: tenantId, key, problems: published.problems.map(formatProblem) },
        "rejected an invalid policy document from Redis: the last good policy stays active",
      );
      this.events.rejected?.(tenantId, published.problems);
      return undefined;
    }
    const activated = await activatePolicy(store, tenantId, published.value.policyHash, source);
    if (!activated.ok) {
      this.log.warn(
        { tenant: tenantId, problems: activated.problems.map(formatProblem) },
        "could not activate a policy document from Redis",
      );
      return undefined;
    }
    await this.reload();
    return activated.value;
  }

  private async announce(change: RegistryChange): Promise<void> {
    await this.commands?.publish(ANNOUNCE_CHANNEL, announcement(change));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.reloading;
    for (const client of [this.subscriber, this.commands]) client?.disconnect();
  }
}

function announcement(change: RegistryChange): string {
  return JSON.stringify({ tenant: change.tenantId, policy_hash: change.policyHash });
}

/**
 * Announces a registry change made outside a server (the CLI). Servers that miss it still switch at their
 * next poll of the store, so a Redis that cannot be reached is reported, not fatal.
 */
export async function announcePolicyChange(redisUrl: string, change: RegistryChange): Promise<void> {
  const client = new Redis(redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await connectRedis(client);
    await client.publish(ANNOUNCE_CHANNEL, announcement(change));
  } finally {
    client.disconnect();
  }
}

/**
 * Connects a client created with `lazyConnect`, failing with the cause (e.g. `connect ECONNREFUSED …`)
 * rather than the client's generic "Connection is closed". Later errors are handled where they matter.
 */
export async function connectRedis(client: Redis): Promise<void> {
  let cause: Error | undefined;
  client.on("error", (error: Error) => {
    cause ??= error;
  });
  // No retry before the first connection: a failure to start is reported at once, and leaves no timer
  // behind. Once connected, the client reconnects by itself as configured.
  const retryStrategy = client.options.retryStrategy;
  client.options.retryStrategy = () => null;
  try {
    await client.connect();
  } catch (error) {
    throw cause ?? error;
  } finally {
    client.options.retryStrategy = retryStrategy;
  }
}

/** A Redis URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<invalid URL>";
  }
}
