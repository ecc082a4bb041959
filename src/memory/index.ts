import { DIMENSIONS, norm } from "./fingerprint.ts";

export const LABELS = ["failure", "success"] as const;
export type Label = (typeof LABELS)[number];

/** A labelled past decision, as memory keeps it. */
export interface MemoryCase {
  readonly decisionId: string;
  readonly tenantId: string;
  readonly actionType: string;
  readonly label: Label;
  readonly vector: Int8Array;
}

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

/**
 * The labelled cases of one tenant and action type, in flat typed arrays: 128 bytes of fingerprint, its norm
 * and a label byte per case, plus its id. Fingerprints are stored by dimension (one column per coordinate),
 * so that a search reads only the columns where the query is non-zero, each from start to end.
 */
class Scope {
  capacity = 64;
  columns = new Int8Array(64 * DIMENSIONS);
  norms = new Float64Array(64);
  labels = new Uint8Array(64);
  readonly ids: string[] = [];
  readonly slots = new Map<string, number>();

  get size(): number {
    return this.ids.length;
  }

  /** Adds or replaces a case; true when it is new to the scope. */
  upsert(decisionId: string, label: Label, vector: Int8Array): boolean {
    let slot = this.slots.get(decisionId);
    const added = slot === undefined;
    if (slot === undefined) {
      slot = this.ids.length;
      if (slot === this.capacity) this.grow();
      this.ids.push(decisionId);
      this.slots.set(decisionId, slot);
    }
    // A new slot's column cells are still zero, so only the (few) non-zero coordinates need writing.
    for (let d = 0; d < DIMENSIONS; d++) {
      const value = vector[d] as number;
      if (value !== 0 || !added) this.columns[d * this.capacity + slot] = value;
    }
    this.norms[slot] = norm(vector);
    this.labels[slot] = LABEL_CODE[label];
    return added;
  }

  vector(slot: number): Int8Array {
    const vector = new Int8Array(DIMENSIONS);
    for (let d = 0; d < DIMENSIONS; d++) vector[d] = this.columns[d * this.capacity + slot] as number;
    return vector;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    const columns = new Int8Array(capacity * DIMENSIONS);
    for (let d = 0; d < DIMENSIONS; d++)
      columns.set(this.columns.subarray(d * this.capacity, (d + 1) * this.capacity), d * capacity);
    const norms = new Float64Array(capacity);
    norms.set(this.norms);
    const labels = new Uint8Array(capacity);
    labels.set(this.labels);
    Object.assign(this, { capacity, columns, norms, labels });
  }

  /** Exact search: the `k` best cases of each label, by cosine similarity. */
  search(query: Int8Array, queryNorm: number, into: { failure: TopK; success: TopK }): void {
    const { columns, norms, labels, capacity } = this;
    const count = this.ids.length;
    const dots = scratch(count);
    for (let d = 0; d < DIMENSIONS; d++) {
      const weight = query[d] as number;
      if (weight === 0) continue;
      const offset = d * capacity;
      for (let slot = 0; slot < count; slot++)
        dots[slot] = (dots[slot] as number) + weight * (columns[offset + slot] as number);
    }
    for (let slot = 0; slot < count; slot++) {
      const caseNorm = norms[slot] as number;
      if (caseNorm === 0) continue;
      const top = labels[slot] === 0 ? into.failure : into.success;
      // Most cases cannot enter the top k: rule them out without dividing.
      if ((dots[slot] as number) < top.floor * queryNorm * caseNorm) continue;
      top.offer((dots[slot] as number) / (queryNorm * caseNorm), slot, this);
    }
  }
}

let dotsBuffer = new Int32Array(1024);

/** A zeroed buffer for `count` dot products (exact in 32-bit integers), reused from one search to the next. */
function scratch(count: number): Int32Array {
  if (dotsBuffer.length < count) dotsBuffer = new Int32Array(Math.max(count, dotsBuffer.length * 2));
  dotsBuffer.fill(0, 0, count);
  return dotsBuffer;
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
  private readonly scopes = new Map<string, Map<string, Scope>>();
  private cases = 0;

  get size(): number {
    return this.cases;
  }

  /** Adds a labelled case, or relabels it (the latest label wins). */
  upsert(memoryCase: MemoryCase): void {
    let byAction = this.scopes.get(memoryCase.tenantId);
    if (!byAction) {
      byAction = new Map();
      this.scopes.set(memoryCase.tenantId, byAction);
    }
    let scope = byAction.get(memoryCase.actionType);
    if (!scope) {
      scope = new Scope();
      byAction.set(memoryCase.actionType, scope);
    }
    if (scope.upsert(memoryCase.decisionId, memoryCase.label, memoryCase.vector)) this.cases++;
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
