import type { JsonObject } from "../core/json.ts";
import { StorageError } from "../core/problem.ts";
import type { SequencedEvent } from "../domain/decision-event.ts";
import type { MemoryCase } from "../domain/memory-case.ts";
import type { MemoryConfig } from "./arbitrate.ts";
import {
  type FingerprintConfig,
  fingerprint,
  freeTexts,
  projectionOf,
  type TextEmbedder,
} from "./fingerprint.ts";
import { type MemoryHit, MemoryIndex, type Neighbours } from "./index.ts";
import { type MemoryCaseSource, readMemory } from "./load.ts";

/** What memory found for a request: its fingerprint, its nearest labelled failures and successes, their summaries. */
export interface MemoryEvidence {
  /** The projection that made the fingerprints (see fingerprint.ts projectionOf). */
  readonly projection: string;
  readonly query: Int8Array;
  readonly neighbours: Neighbours;
  readonly summaries: ReadonlyMap<string, string>;
}

/** Where memory reads what it does not hold: the labels' summaries, and labels given by other processes. */
export interface MemoryStoreView extends MemoryCaseSource {
  /** The current labelled cases of these decisions. */
  cases(decisionIds: readonly string[]): Promise<MemoryCase[]>;
  /** The summaries of labelled decisions (empty string when a label has none). */
  summaries(decisionIds: readonly string[]): Promise<Map<string, string>>;
}

/** The event log, as memory follows it to catch up with labels given elsewhere. */
export interface LabelFeed {
  lastSeq(): Promise<number>;
  after(seq: number, types: readonly string[], limit: number): Promise<SequencedEvent[]>;
}

/** Label events read at a time when catching up with other processes' labels. */
const REFRESH_BATCH = 500;

/**
 * Memory of outcomes for one gateway: the index of labelled cases (held in this process), how requests are
 * fingerprinted, and how it stays current with the store. Searches never touch the store but for the
 * summaries of the neighbours found.
 */
export class MemoryRecall {
  private readonly store: MemoryStoreView;
  private readonly feed: LabelFeed;
  private readonly embedder: TextEmbedder | undefined;
  private index = new MemoryIndex();
  /** The event log position up to which labels are in the index. */
  private seq = 0;

  constructor(store: MemoryStoreView, feed: LabelFeed, embedder?: TextEmbedder) {
    this.store = store;
    this.feed = feed;
    this.embedder = embedder;
  }

  /** The projection fingerprints are made with (it changes with the text embedder). */
  get projection(): string {
    return projectionOf(this.embedder);
  }

  get size(): number {
    return this.index.size;
  }

  /** Reads every labelled case of the store, replacing what memory held; returns how many. */
  async load(): Promise<number> {
    // Read first: a label given while the cases load is then caught up by refresh (an upsert again).
    const seq = await this.feed.lastSeq();
    this.index = await readMemory(this.store);
    this.seq = seq;
    return this.index.size;
  }

  /**
   * Catches up with labels given through other processes on the same store (other servers, the CLI) since
   * the last look, from the event log; returns how many decisions' cases it read again.
   */
  async refresh(): Promise<number> {
    let refreshed = 0;
    for (;;) {
      const labels = await this.feed.after(this.seq, ["label"], REFRESH_BATCH);
      if (labels.length === 0) return refreshed;
      const ids = [...new Set(labels.map((sequenced) => sequenced.event.decisionId))];
      for (const memoryCase of await this.store.cases(ids)) this.index.upsert(memoryCase);
      refreshed += ids.length;
      this.seq = (labels.at(-1) as SequencedEvent).seq;
      if (labels.length < REFRESH_BATCH) return refreshed;
    }
  }

  /** Makes a labelled case part of memory at once (the next search sees it). */
  remember(memoryCase: MemoryCase): void {
    this.index.upsert(memoryCase);
  }

  /**
   * The nearest labelled failures and successes in the tenant and (by the config's scope) the same action
   * type; none when memory is off or holds nothing in that scope (then no fingerprint is even computed).
   */
  async consult(
    tenantId: string,
    actionType: string,
    request: JsonObject,
    config: MemoryConfig,
  ): Promise<MemoryEvidence | undefined> {
    const scope = scopeOf(config, actionType);
    if (!config.enabled || !this.index.has(tenantId, scope)) return undefined;
    return this.neighboursOf(
      tenantId,
      scope,
      await this.fingerprint(request, config.fingerprint),
      config.topK,
    );
  }

  /** The labelled decisions nearest to a stored one (itself left out), with scores and summaries. */
  async similar(
    decisionId: string,
    tenantId: string,
    actionType: string,
    request: JsonObject,
    config: MemoryConfig,
  ): Promise<MemoryEvidence> {
    const query = await this.fingerprint(request, config.fingerprint);
    // One more than top_k: the decision may itself be labelled.
    const evidence = await this.neighboursOf(tenantId, scopeOf(config, actionType), query, config.topK + 1);
    const withoutItself = (hits: readonly MemoryHit[]) =>
      hits.filter((hit) => hit.decisionId !== decisionId).slice(0, config.topK);
    return {
      ...evidence,
      neighbours: {
        failure: withoutItself(evidence.neighbours.failure),
        success: withoutItself(evidence.neighbours.success),
      },
    };
  }

  /**
   * A request's fingerprint under a policy's `memory:` settings, with the text embedder's help when there
   * is one. An embedder that fails makes memory unavailable, and a decision fails closed.
   */
  async fingerprint(request: JsonObject, config: FingerprintConfig): Promise<Int8Array> {
    const embedder = this.embedder;
    const texts = embedder ? freeTexts(request, config) : [];
    if (!embedder || texts.length === 0) return fingerprint(request, config);
    let vectors: readonly Float32Array[];
    try {
      vectors = await embedder.embed(texts);
    } catch (error) {
      throw new StorageError(`text embedder ${embedder.id} failed: ${String(error)}`, { cause: error });
    }
    if (vectors.length !== texts.length)
      throw new StorageError(
        `text embedder ${embedder.id} returned ${vectors.length} embeddings for ${texts.length} texts`,
      );
    return fingerprint(request, config, new Map(texts.map((text, i) => [text, vectors[i] as Float32Array])));
  }

  /** Labelled cases per tenant, action type and label. */
  counts(): ReturnType<MemoryIndex["counts"]> {
    return this.index.counts();
  }

  private async neighboursOf(
    tenantId: string,
    actionType: string | undefined,
    query: Int8Array,
    count: number,
  ): Promise<MemoryEvidence> {
    const neighbours = this.index.search(tenantId, actionType, query, count);
    const ids = [...neighbours.failure, ...neighbours.success].map((hit) => hit.decisionId);
    return {
      projection: this.projection,
      query,
      neighbours,
      summaries: ids.length > 0 ? await this.store.summaries(ids) : new Map(),
    };
  }
}

/** The action type memory compares within, or undefined to compare with all of the tenant's. */
function scopeOf(config: MemoryConfig, actionType: string): string | undefined {
  return config.scope === "action_type" ? actionType : undefined;
}
