/**
 * The Merkle tree over the audit log's entries, as Certificate Transparency defines it (RFC 9162, section
 * 2.1): leaf `i` is the chain hash of entry `i + 1`, leaf hashes are `SHA-256(0x00 ‖ leaf)` and interior
 * nodes `SHA-256(0x01 ‖ left ‖ right)`, the tree of `n` leaves splitting at the largest power of two below
 * `n`. A signed checkpoint commits to the tree's root, so that one entry can be proved part of the log with
 * `log2(n)` hashes (an inclusion proof), without the rest of the log.
 */
import { createHash } from "node:crypto";

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

/** A node or leaf hash, as lower-case hex. */
export type TreeHash = string;

/** `SHA-256(0x00 ‖ leaf)`: the hash of a leaf whose data is the UTF-8 text of a chain hash. */
export function leafHash(leaf: string): TreeHash {
  return createHash("sha256").update(LEAF_PREFIX).update(leaf, "utf8").digest("hex");
}

/** `SHA-256(0x01 ‖ left ‖ right)`. */
export function nodeHash(left: TreeHash, right: TreeHash): TreeHash {
  return createHash("sha256")
    .update(NODE_PREFIX)
    .update(Buffer.from(left, "hex"))
    .update(Buffer.from(right, "hex"))
    .digest("hex");
}

/** The hash of the empty tree, `SHA-256()`. */
export const EMPTY_TREE_HASH: TreeHash = createHash("sha256").digest("hex");

/** The largest power of two strictly below `n` (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * A tree grown one leaf at a time, holding only the roots of the perfect subtrees it is made of (one per set
 * bit of its size, tallest first): what a log keeps to extend its tree and compute its root without
 * re-reading the leaves.
 */
export class MerkleFrontier {
  private readonly heights: number[];
  private readonly hashes: TreeHash[];
  private leaves: number;

  constructor(state: FrontierState = { size: 0, subtrees: [] }) {
    this.leaves = state.size;
    this.heights = state.subtrees.map(([height]) => height);
    this.hashes = state.subtrees.map(([, hash]) => hash);
  }

  get size(): number {
    return this.leaves;
  }

  append(leaf: string): void {
    let height = 0;
    let hash = leafHash(leaf);
    // Two subtrees of one height make one of the next: merge while the last one is as tall as the new one.
    while (this.heights.length > 0 && this.heights[this.heights.length - 1] === height) {
      this.heights.pop();
      hash = nodeHash(this.hashes.pop() as TreeHash, hash);
      height++;
    }
    this.heights.push(height);
    this.hashes.push(hash);
    this.leaves++;
  }

  /** The tree's root: the subtrees folded from the smallest, as the tree splits them. */
  root(): TreeHash {
    if (this.hashes.length === 0) return EMPTY_TREE_HASH;
    let root = this.hashes[this.hashes.length - 1] as TreeHash;
    for (let i = this.hashes.length - 2; i >= 0; i--) root = nodeHash(this.hashes[i] as TreeHash, root);
    return root;
  }

  /** What to keep to grow the tree later (plain data: JSON, or a message to another thread). */
  state(): FrontierState {
    return {
      size: this.leaves,
      subtrees: this.heights.map((height, i) => [height, this.hashes[i] as TreeHash]),
    };
  }
}

export interface FrontierState {
  readonly size: number;
  /** `[height, hash]` per perfect subtree, tallest first. */
  readonly subtrees: readonly (readonly [number, TreeHash])[];
}

/** The root of the tree over these leaves (chain hashes). */
export function treeRoot(leaves: readonly string[]): TreeHash {
  const frontier = new MerkleFrontier();
  for (const leaf of leaves) frontier.append(leaf);
  return frontier.root();
}

/**
 * The audit path of leaf `index` in the tree over `leaves` (RFC 9162 PATH): the sibling hashes from the
 * leaf up, which with the leaf give the root.
 */
export function inclusionProof(leaves: readonly string[], index: number): TreeHash[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length)
    throw new RangeError(`leaf ${index} is not in a tree of ${leaves.length} leaves`);
  const hashes = leaves.map(leafHash);
  const path: TreeHash[] = [];
  const walk = (start: number, end: number, target: number): void => {
    if (end - start <= 1) return;
    const k = split(end - start);
    if (target < start + k) {
      walk(start, start + k, target);
      path.push(subtreeHash(hashes, start + k, end));
    } else {
      walk(start + k, end, target);
      path.push(subtreeHash(hashes, start, start + k));
    }
  };
  walk(0, hashes.length, index);
  return path;
}

/** MTH over the leaf hashes `[start, end)`. */
function subtreeHash(hashes: readonly TreeHash[], start: number, end: number): TreeHash {
  if (end - start === 1) return hashes[start] as TreeHash;
  const k = split(end - start);
  return nodeHash(subtreeHash(hashes, start, start + k), subtreeHash(hashes, start + k, end));
}

/**
 * Whether `path` proves leaf `leaf` (a chain hash) at `index` part of the tree of `size` leaves whose root
 * is `root` (the verification of RFC 9162, section 2.1.3.2).
 */
export function verifyInclusion(
  leaf: string,
  index: number,
  size: number,
  path: readonly TreeHash[],
  root: TreeHash,
): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash(leaf);
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r === root;
}
