import type { KeyObject } from "node:crypto";
import type { Redis } from "ioredis";
import { sha256 } from "../core/digest.ts";
import type { JsonObject } from "../core/json.ts";
import { formatProblem, type Problem, type Result, StorageError } from "../core/problem.ts";
import type { PolicyEvent } from "../domain/policy-registry.ts";
import { POLICY_KEY_PREFIX, type PolicyRejectionReason, publicKeyPem } from "../domain/signed-policy.ts";
import { DEFAULT_POLICY_MAX_BYTES, type PolicyLimits } from "../policy/policy.ts";
import type { Store } from "../store/store.ts";
import { type DocumentCheck, rejected } from "./policy-document.ts";
import { PolicyDocumentChecker } from "./policy-document-checker.ts";
import { activatePolicy, publishVersion, type RegistryChange, recordRejection } from "./policy-registry.ts";
import { connectRedis, redactUrl, redisClient } from "./redis.ts";

/** The gateway whose policies a {@link PolicySync} keeps current (a Lumyn). */
export interface PolicyHost {
  readonly store: Store;
  readonly reasonCodeRegistry: ReadonlySet<string> | undefined;
  /** What its policies may weigh: documents in Redis are held to it too. */
  readonly policyLimits: PolicyLimits;
  /** Every tenant's active registry version, by tenant. */
  activeVersions(): Map<string, string>;
  /** Reads the registry's active versions from the store and decides under them from now on. */
  reloadPolicies(): Promise<Result<Map<string, string>>>;
}

/** Where activations are announced: every server reloads the registry's active versions from the store. */
export const ANNOUNCE_CHANNEL = "lumyn:policy:announce";
export { POLICY_KEY_PREFIX };

/** The keyspace events of commands that write a string's content: each may leave a new document. */
const WRITES = new Set(["set", "setrange", "append"]);
/** One server handles each document; the others follow its announcement. */
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
  /** The gateway switched a tenant's policy (after an announcement, a poll, or a document in Redis). */
  switched?(tenantId: string, policyHash: string): void;
  /** A document in Redis was not applied: it was recorded as rejected and the last good policy stays. */
  rejected?(tenantId: string, reason: PolicyRejectionReason, problems: readonly Problem[]): void;
}

export interface PolicySyncOptions {
  readonly lumyn: PolicyHost;
  readonly log: SyncLog;
  readonly events?: SyncEvents;
  /** `redis://…`: announcements and signed policy documents; without it the store is only polled. */
  readonly redisUrl?: string;
  readonly pollMs?: number;
  /** The keys whose signature makes a document in Redis applicable; without any, every document is rejected. */
  readonly publisherKeys?: readonly KeyObject[];
  /**
   * The largest document read from Redis, in bytes (default: the gateway's policy size limit); a larger one is
   * rejected without being read.
   */
  readonly maxDocumentBytes?: number;
}

/** A document as read from Redis: its bytes, or only its size when it is over the limit. */
type RedisDocument =
  | { readonly bytes: Uint8Array; readonly fingerprint: string }
  | { readonly size: number; readonly fingerprint: string };

/**
 * Keeps a gateway's per-tenant policies in step with the registry. The store is the truth; Redis makes
 * changes arrive fast. Three paths lead to a reload:
 *
 * - an announcement on {@link ANNOUNCE_CHANNEL} (published by `lumyn policy activate/rollback --redis` and by
 *   the server that handled a document): every server reloads at once;
 * - a keyspace notification that `lumyn:policy:<tenant>` was set: one server (the one that claims it)
 *   checks the document in a worker thread (its size first, then a publisher's signature for that tenant,
 *   then the policy's validation), publishes and activates it, then announces; a document that fails any
 *   check is recorded as rejected and changes nothing. Redis announces; it does not decide: whoever can
 *   write to it cannot make a server apply a policy no publisher signed. Notifications are turned on with
 *   CONFIG SET when the server allows it; every (re)connection and every poll also scans the keys, so a
 *   document set while a server was away, or where notifications are not allowed, is still seen;
 * - a poll of the store every `pollMs`, which also covers announcements lost while Redis was down.
 */
export class PolicySync {
  private readonly lumyn: PolicyHost;
  private readonly log: SyncLog;
  private readonly events: SyncEvents;
  private readonly pollMs: number;
  private readonly maxDocumentBytes: number;
  private readonly checker: PolicyDocumentChecker;
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
    const limits = options.lumyn.policyLimits;
    this.maxDocumentBytes = options.maxDocumentBytes ?? limits.maxBytes ?? DEFAULT_POLICY_MAX_BYTES;
    const reasonCodes = options.lumyn.reasonCodeRegistry;
    this.checker = new PolicyDocumentChecker(
      {
        publisherKeys: (options.publisherKeys ?? []).map(publicKeyPem),
        ...(reasonCodes ? { reasonCodes: [...reasonCodes] } : {}),
        limits: { ...limits, maxBytes: this.maxDocumentBytes },
      },
      this.maxDocumentBytes,
    );
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
    const settings = { enableOfflineQueue: false, maxRetriesPerRequest: 1 } as const;
    const commands = await redisClient(url, settings);
    const subscriber = await redisClient(url, { ...settings, enableOfflineQueue: true });
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
      if (WRITES.has(event)) void this.handleKey(channel.slice(channel.indexOf(":") + 1));
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
        "Redis does not allow keyspace notifications: policy documents are seen at the next poll",
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

  /** A document in Redis: checked, published and activated by the one server that claims it. */
  private async handleKey(key: string): Promise<void> {
    const commands = this.commands;
    const tenantId = key.slice(POLICY_KEY_PREFIX.length);
    if (!commands || !key.startsWith(POLICY_KEY_PREFIX) || tenantId === "") return;
    try {
      const document = await this.readDocument(commands, key);
      if (document === undefined || this.handled.get(key) === document.fingerprint) return;
      const fromRedis = (await this.lumyn.store.policies.history(tenantId)).filter(
        (event) => event.detail.by === "redis",
      );
      // The latest document taken from Redis for the tenant: a restart must not redo it, or undo a later
      // `lumyn policy activate` or `rollback`.
      if (fingerprintOf(fromRedis.at(-1)?.detail) === document.fingerprint) {
        this.handled.set(key, document.fingerprint);
        return;
      }
      // Another server holds the claim: the store shows its outcome at the next look, and should it have
      // failed, the claim expires and this server tries.
      const claim = `${CLAIM_PREFIX}${tenantId}:${document.fingerprint}`;
      if ((await commands.set(claim, "1", "PX", CLAIM_MS, "NX")) !== "OK") return;
      this.handled.set(key, document.fingerprint);
      const change = await this.adopt(tenantId, key, document, fromRedis);
      if (change) await this.announce(change);
    } catch (error) {
      this.handled.delete(key);
      if (!this.closed)
        this.log.warn(
          { key, error: (error as Error).message },
          "could not handle a policy document in Redis",
        );
    }
  }

  /**
   * Reads a key's document, never more than the limit: an oversized one is known by its size alone (a
   * `SET` of 50 MB costs this server one STRLEN). Undefined when the key is gone or empty.
   */
  private async readDocument(commands: Redis, key: string): Promise<RedisDocument | undefined> {
    const size = await commands.strlen(key);
    if (size === 0) return undefined;
    if (size > this.maxDocumentBytes) return { size, fingerprint: `size:${size}` };
    const bytes = await commands.getrangeBuffer(key, 0, this.maxDocumentBytes);
    if (bytes.length === 0) return undefined;
    // Replaced by a larger one between the two reads.
    if (bytes.length > this.maxDocumentBytes) {
      const grown = await commands.strlen(key);
      return { size: grown, fingerprint: `size:${grown}` };
    }
    return { bytes, fingerprint: sha256(bytes) };
  }

  private async adopt(
    tenantId: string,
    key: string,
    document: RedisDocument,
    fromRedis: readonly PolicyEvent[],
  ): Promise<RegistryChange | undefined> {
    const file = `redis ${key}`;
    const seen: JsonObject =
      "bytes" in document
        ? { by: "redis", key, digest: document.fingerprint }
        : { by: "redis", key, size: document.size };
    const check: DocumentCheck =
      "bytes" in document
        ? await this.checker.check({ tenant: tenantId, bytes: document.bytes, file })
        : rejected(
            "too_large",
            { file },
            `the document is ${document.size} bytes, over the limit of ${this.maxDocumentBytes} (policy_max_bytes); it was not read`,
          );
    if (this.closed) return undefined;
    if (!check.ok) {
      await this.reject(tenantId, key, seen, check);
      return undefined;
    }
    const { policy } = check;
    const latest = latestSignedAt(fromRedis);
    if (latest !== undefined && Date.parse(policy.signedAt) <= Date.parse(latest)) {
      const stale = rejected(
        "stale",
        { file },
        `the document was signed at ${policy.signedAt}, not after the one applied last (signed at ${latest}): an older document set again`,
        policy.keyId,
      );
      await this.reject(tenantId, key, seen, stale as Extract<DocumentCheck, { ok: false }>);
      return undefined;
    }
    // Who changed the registry: the publisher's key (named by its id until keys carry principals).
    const source: JsonObject = {
      ...seen,
      principal: `publisher:${policy.keyId}`,
      key_id: policy.keyId,
      signed_at: policy.signedAt,
    };
    const store: Store = this.lumyn.store;
    await publishVersion(store, tenantId, policy, source);
    const activated = await activatePolicy(store, tenantId, policy.policyHash, source);
    if (!activated.ok) {
      this.log.warn(
        { tenant: tenantId, problems: activated.problems.map(formatProblem) },
        "could not activate a policy document from Redis",
      );
      return undefined;
    }
    if (activated.value.request) {
      this.log.warn(
        { tenant: tenantId, request: activated.value.request.seq, policy_hash: policy.policyHash },
        "a signed policy document from Redis awaits four-eyes review: `lumyn policy approve` activates it",
      );
      return undefined;
    }
    await this.reload();
    return activated.value;
  }

  private async reject(
    tenantId: string,
    key: string,
    seen: JsonObject,
    check: Extract<DocumentCheck, { ok: false }>,
  ): Promise<void> {
    await recordRejection(
      this.lumyn.store,
      tenantId,
      { ...seen, reason: check.reason, ...(check.keyId ? { key_id: check.keyId } : {}) },
      check.problems,
    );
    this.log.error(
      {
        tenant: tenantId,
        key,
        reason: check.reason,
        problems: check.problems.slice(0, LOGGED_PROBLEMS).map(formatProblem),
        ...(check.problems.length > LOGGED_PROBLEMS ? { problems_total: check.problems.length } : {}),
      },
      `rejected a policy document from Redis (${check.reason}): the last good policy stays active`,
    );
    this.events.rejected?.(tenantId, check.reason, check.problems);
  }

  private async announce(change: RegistryChange): Promise<void> {
    await this.commands?.publish(ANNOUNCE_CHANNEL, announcement(change));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.reloading;
    for (const client of [this.subscriber, this.commands]) client?.disconnect();
    await this.checker.close();
  }
}

/** A log line shows this many of a rejected document's problems; the history keeps them all. */
const LOGGED_PROBLEMS = 10;

/** Which document an event of the history was about: its digest, or its size when it was too large to read. */
function fingerprintOf(detail: JsonObject | undefined): string | undefined {
  if (typeof detail?.digest === "string") return detail.digest;
  if (typeof detail?.size === "number") return `size:${detail.size}`;
  return undefined;
}

/** When the newest document applied from Redis was signed: an older one set again is refused. */
function latestSignedAt(fromRedis: readonly PolicyEvent[]): string | undefined {
  let latest: string | undefined;
  for (const event of fromRedis) {
    const signedAt = event.detail.signed_at;
    if (event.type !== "activated" || typeof signedAt !== "string") continue;
    if (latest === undefined || Date.parse(signedAt) > Date.parse(latest)) latest = signedAt;
  }
  return latest;
}

function announcement(change: RegistryChange): string {
  return JSON.stringify({ tenant: change.tenantId, policy_hash: change.policyHash });
}

/**
 * Announces a registry change made outside a server (the CLI). Servers that miss it still switch at their
 * next poll of the store, so a Redis that cannot be reached is reported, not fatal.
 */
export async function announcePolicyChange(redisUrl: string, change: RegistryChange): Promise<void> {
  const client = await redisClient(redisUrl, {
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
