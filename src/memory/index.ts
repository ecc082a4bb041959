import { speedupEnabled } from "../core/speedups.ts";
import type { Label, MemoryCase, ScopeCount } from "../domain/memory-case.ts";
import { DIMENSIONS, norm } from "./fingerprint.ts";
import { plainKernel, type SimilarityKernel, simdKernel } from "./kernel/similarity-kernel.ts";

export interface MemoryHit {
  readonly decisionId: string;
  readonly label: Label;
  readonly score: number;
  readonly vector: Int8Array;
}

/** The nearest labelled cases of each kind. */
export interface Neighbours {
  readonly failure: readonly MemoryHit[];
  readonly success: readonly MemoryHit[];
}

const LABEL_CODE: Readonly<Record<Label, number>> = { failure: 0, success: 1 };

const PAGE_BYTES = 65_536;
/** The kernel takes cases sixteen at a time, so capacities (and column strides) are multiples of 16. */
const LANES = 16;
/** The query's non-zero coordinates, as (dimension, weight) pairs of i32, live at the start of the memory. */
const TERMS_BYTES = DIMENSIONS * 8;
/** Memory grows by at least this share of its size, so that growing is rare. */
const GROWTH = 0.25;

/** A span of the arena's memory: a scope's fingerprint columns, or the scratch for dot products. */
interface Region {
  offset: number;
  readonly bytes: number;
}

/**
 * The WebAssembly memory that holds the fingerprints of every scope of an index, and the kernel that computes
 * a query's dot products with one scope's fingerprints (SIMD, see kernel/dot-products.wat; its plain twin in
 * JavaScript while the speed-up `similarity-kernel` is off). Regions are allocated upwards; a scope that
 * outgrows its region moves to a bigger one and leaves garbage behind, which is reclaimed by sliding the live
 * regions down once it exceeds half of what is live.
 */
class Arena {
  private readonly memory = new WebAssembly.Memory({ initial: 1 });
  private simd: SimilarityKernel | undefined;
  private plain: SimilarityKernel | undefined;
  bytes!: Int8Array;
  words!: Int32Array;
  private readonly regions = new Set<Region>();
  private top = TERMS_BYTES;
  private live = 0;
  private garbage = 0;
  private sums: Region = { offset: 0, bytes: 0 };

  constructor() {
    this.renewViews();
  }

  /** A zeroed region of `bytes` (a multiple of 16), replacing `previous` (whose bytes `move` may copy first). */
  allocate(bytes: number, previous?: Region, move?: (from: Region, to: Region) => void): Region {
    this.makeRoom(bytes);
    const region: Region = { offset: this.top, bytes };
    this.top += bytes;
    this.bytes.fill(0, region.offset, region.offset + bytes);
    this.regions.add(region);
    this.live += bytes;
    if (previous) {
      move?.(previous, region);
      this.release(previous);
    }
    return region;
  }

  get reservedBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Grows the memory, if need be, so that `bytes` more can be allocated without growing again. */
  makeRoom(bytes: number): void {
    if (this.garbage > this.live / 2) this.compact();
    const needed = this.top + bytes;
    const size = this.memory.buffer.byteLength;
    if (needed <= size) return;
    const pages = Math.max(Math.ceil((needed - size) / PAGE_BYTES), Math.ceil((size * GROWTH) / PAGE_BYTES));
    this.memory.grow(pages);
    this.renewViews();
  }

  /**
   * The dot products of the query with the first `count` cases of the columns at `columns` (stride
   * `capacity`), in `words` from the returned index on.
   */
  dot(columns: Region, capacity: number, count: number, query: Int8Array): number {
    if (this.sums.bytes < capacity * 4)
      this.sums = this.allocate(capacity * 4, this.sums.bytes ? this.sums : undefined);
    let terms = 0;
    for (let d = 0; d < DIMENSIONS; d++) {
      const weight = query[d] as number;
      if (weight === 0) continue;
      this.words[terms * 2] = d;
      this.words[terms * 2 + 1] = weight;
      terms++;
    }
    // `columns` may have moved while the scratch was allocated (compaction): read its offset afterwards.
    this.kernel()(columns.offset, capacity, count, 0, terms, this.sums.offset);
    return this.sums.offset / 4;
  }

  /** The SIMD kernel, or its plain twin while the speed-up is off; each made at its first use. */
  private kernel(): SimilarityKernel {
    if (!speedupEnabled("similarity-kernel")) {
      this.plain ??= plainKernel(this.memory);
      return this.plain;
    }
    this.simd ??= simdKernel(this.memory);
    return this.simd;
  }

  private release(region: Region): void {
    this.regions.delete(region);
    this.live -= region.bytes;
    this.garbage += region.bytes;
  }

  private compact(): void {
    let cursor = TERMS_BYTES;
    for (const region of [...this.regions].sort((a, b) => a.offset - b.offset)) {
      if (region.offset !== cursor)
        this.bytes.copyWithin(cursor, region.offset, region.offset + region.bytes);
      region.offset = cursor;
      cursor += region.bytes;
    }
    this.top = cursor;
    this.garbage = 0;
  }

  private renewViews(): void {
    this.bytes = new Int8Array(this.memory.buffer);
    this.words = new Int32Array(this.memory.buffer);
  }
}

/**
 * The labelled cases of one tenant and action type: 128 bytes of fingerprint in the arena, stored by
 * dimension (one column per coordinate, so that a search reads only the columns where the query is
 * non-zero, each from start to end), plus a norm, a label byte and an id per case.
 */
class Scope {
  capacity = 0;
  columns: Region = { offset: 0, bytes: 0 };
  norms = new Float64Array(0);
  labels = new Uint8Array(0);
  readonly ids: string[] = [];
  /** Slots by decision id, built at the first upsert: bulk loading does without (ids are unique there). */
  private slots: Map<string, number> | undefined;
  private readonly arena: Arena;

  constructor(arena: Arena) {
    this.arena = arena;
  }

  get size(): number {
    return this.ids.length;
  }

  /** Makes room for `capacity` cases (rounded up to a multiple of 16) without moving again. */
  reserve(capacity: number): void {
    const rounded = Math.ceil(capacity / LANES) * LANES;
    if (rounded <= this.capacity) return;
    const previousCapacity = this.capacity;
    this.columns = this.arena.allocate(
      rounded * DIMENSIONS,
      previousCapacity > 0 ? this.columns : undefined,
      (from, to) => {
        const { bytes } = this.arena;
        for (let d = 0; d < DIMENSIONS; d++) {
          const start = from.offset + d * previousCapacity;
          bytes.copyWithin(to.offset + d * rounded, start, start + this.size);
        }
      },
    );
    const norms = new Float64Array(rounded);
    norms.set(this.norms);
    const labels = new Uint8Array(rounded);
    labels.set(this.labels);
    Object.assign(this, { capacity: rounded, norms, labels });
  }

  /** Adds or replaces a case; true when it is new to the scope. */
  upsert(decisionId: string, label: Label, vector: Int8Array): boolean {
    this.slots ??= new Map(this.ids.map((id, slot) => [id, slot]));
    const slot = this.slots.get(decisionId);
    if (slot !== undefined) {
      this.write(slot, label, vector, false);
      return false;
    }
    this.add(decisionId, label, vector);
    return true;
  }

  /** Adds a case known not to be in the scope yet. */
  add(decisionId: string, label: Label, vector: Int8Array): void {
    const slot = this.ids.length;
    if (slot === this.capacity) this.reserve(Math.max(LANES, this.capacity * 2));
    this.ids.push(decisionId);
    this.slots?.set(decisionId, slot);
    this.write(slot, label, vector, true);
  }

  private write(slot: number, label: Label, vector: Int8Array, added: boolean): void {
    const { bytes } = this.arena;
    const base = this.columns.offset + slot;
    // A new slot's column cells are still zero, so only the (few) non-zero coordinates need writing. The
    // norm is summed in the same pass (as fingerprint.ts norm() does), a million cases at start-up.
    let squares = 0;
    for (let d = 0; d < DIMENSIONS; d++) {
      const value = vector[d] as number;
      squares += value * value;
      if (value !== 0 || !added) bytes[base + d * this.capacity] = value;
    }
    this.norms[slot] = Math.sqrt(squares);
    this.labels[slot] = LABEL_CODE[label];
  }

  vector(slot: number): Int8Array {
    const { bytes } = this.arena;
    const vector = new Int8Array(DIMENSIONS);
    for (let d = 0; d < DIMENSIONS; d++)
      vector[d] = bytes[this.columns.offset + d * this.capacity + slot] as number;
    return vector;
  }

  /** Exact search: the `k` best cases of each label, by cosine similarity. */
  search(query: Int8Array, queryNorm: number, into: { failure: TopK; success: TopK }): void {
    const count = this.ids.length;
    if (count === 0) return;
    const first = this.arena.dot(this.columns, this.capacity, count, query);
    const { words } = this.arena;
    const { norms, labels } = this;
    let failureFloor = into.failure.floor * queryNorm;
    let successFloor = into.success.floor * queryNorm;
    for (let slot = 0; slot < count; slot++) {
      const caseNorm = norms[slot] as number;
      if (caseNorm === 0) continue;
      const dot = words[first + slot] as number;
      const failure = labels[slot] === 0;
      // Most cases cannot enter the top k: rule them out without dividing.
      if (dot < (failure ? failureFloor : successFloor) * caseNorm) continue;
      const top = failure ? into.failure : into.success;
      top.offer(dot / (queryNorm * caseNorm), slot, this);
      if (failure) failureFloor = top.floor * queryNorm;
      else successFloor = top.floor * queryNorm;
    }
  }
}

/** The k best (score, case) pairs seen, best first; ties go to the smaller decision id. */
class TopK {
  readonly entries: { score: number; slot: number; scope: Scope }[] = [];
  private readonly k: number;

  constructor(k: number) {
    this.k = k;
  }

  /** A score below this cannot enter (a little under the worst kept, so that ties are still compared). */
  get floor(): number {
    return this.entries.length < this.k
      ? Number.NEGATIVE_INFINITY
      : (this.entries[this.entries.length - 1] as { score: number }).score - 1e-12;
  }

  offer(score: number, slot: number, scope: Scope): void {
    const { entries } = this;
    if (entries.length === this.k) {
      const worst = entries[entries.length - 1] as { score: number; slot: number; scope: Scope };
      if (
        score < worst.score ||
        (score === worst.score && (scope.ids[slot] as string) >= (worst.scope.ids[worst.slot] as string))
      )
        return;
      entries.pop();
    }
    let i = entries.length;
    while (i > 0) {
      const above = entries[i - 1] as { score: number; slot: number; scope: Scope };
      if (
        above.score > score ||
        (above.score === score && (above.scope.ids[above.slot] as string) < (scope.ids[slot] as string))
      )
        break;
      i--;
    }
    entries.splice(i, 0, { score, slot, scope });
  }

  hits(label: Label): MemoryHit[] {
    return this.entries.map(({ score, slot, scope }) => ({
      decisionId: scope.ids[slot] as string,
      label,
      score,
      vector: scope.vector(slot),
    }));
  }
}

/** Labelled cases by tenant and action type. Never crosses tenants. */
export class MemoryIndex {
  private readonly arena = new Arena();
  private readonly scopes = new Map<string, Map<string, Scope>>();
  private cases = 0;

  get size(): number {
    return this.cases;
  }

  /** Bytes of WebAssembly memory held for fingerprints (outside the JavaScript heap's own accounting). */
  get reservedBytes(): number {
    return this.arena.reservedBytes;
  }

  /** Adds a labelled case, or relabels it (the latest label wins). */
  upsert(memoryCase: MemoryCase): void {
    const scope = this.scope(memoryCase.tenantId, memoryCase.actionType);
    if (scope.upsert(memoryCase.decisionId, memoryCase.label, memoryCase.vector)) this.cases++;
  }

  /** Adds a case read from the store at start-up, where each decision comes once: nothing to replace. */
  load(memoryCase: MemoryCase): void {
    this.scope(memoryCase.tenantId, memoryCase.actionType).add(
      memoryCase.decisionId,
      memoryCase.label,
      memoryCase.vector,
    );
    this.cases++;
  }

  /**
   * Makes room for this many cases in each scope, all at once, so that loading them afterwards moves nothing
   * and the memory holds no slack from growing scope by scope.
   */
  reserve(counts: readonly ScopeCount[]): void {
    this.arena.makeRoom(
      counts.reduce((bytes, { count }) => bytes + Math.ceil(count / LANES) * LANES * DIMENSIONS, 0),
    );
    for (const { tenantId, actionType, count } of counts) this.scope(tenantId, actionType).reserve(count);
  }

  private scope(tenantId: string, actionType: string): Scope {
    let byAction = this.scopes.get(tenantId);
    if (!byAction) {
      byAction = new Map();
      this.scopes.set(tenantId, byAction);
    }
    let scope = byAction.get(actionType);
    if (!scope) {
      scope = new Scope(this.arena);
      byAction.set(actionType, scope);
    }
    return scope;
  }

  /** Whether the tenant has labelled cases (of this action type, when one is given). */
  has(tenantId: string, actionType: string | undefined): boolean {
    const byAction = this.scopes.get(tenantId);
    return (
      byAction !== undefined && (actionType === undefined ? byAction.size > 0 : byAction.has(actionType))
    );
  }

  /**
   * The `k` nearest failures and successes of the tenant: of the same action type, or of all its action
   * types when `actionType` is undefined.
   */
  search(tenantId: string, actionType: string | undefined, query: Int8Array, k: number): Neighbours {
    const found = { failure: new TopK(k), success: new TopK(k) };
    const queryNorm = norm(query);
    const byAction = this.scopes.get(tenantId);
    if (byAction && queryNorm > 0) {
      const scopes =
        actionType === undefined
          ? [...byAction.values()]
          : [byAction.get(actionType)].filter((s) => s !== undefined);
      for (const scope of scopes) scope.search(query, queryNorm, found);
    }
    return { failure: found.failure.hits("failure"), success: found.success.hits("success") };
  }

  /** Labelled cases per tenant, action type and label. */
  counts(): { tenantId: string; actionType: string; failure: number; success: number }[] {
    const rows: { tenantId: string; actionType: string; failure: number; success: number }[] = [];
    for (const [tenantId, byAction] of this.scopes) {
      for (const [actionType, scope] of byAction) {
        let failure = 0;
        for (let slot = 0; slot < scope.size; slot++) if (scope.labels[slot] === 0) failure++;
        rows.push({ tenantId, actionType, failure, success: scope.size - failure });
      }
    }
    return rows.sort(
      (a, b) => a.tenantId.localeCompare(b.tenantId) || a.actionType.localeCompare(b.actionType),
    );
  }
}
