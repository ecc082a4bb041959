import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  EMPTY_TREE_HASH,
  inclusionProof,
  leafHash,
  MerkleFrontier,
  nodeHash,
  treeRoot,
  verifyInclusion,
} from "./merkle.ts";

/** The leaves of RFC 6962's reference test tree (bytes below 0x80, so their UTF-8 text is the same bytes). */
const REFERENCE_LEAVES = [
  "",
  "\x00",
  "\x10",
  "\x20\x21",
  "\x30\x31",
  "\x40\x41\x42\x43",
  "\x50\x51\x52\x53\x54\x55\x56\x57",
  "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];
/** The roots of its first 1..8 leaves, as published with the reference implementation's tests. */
const REFERENCE_ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/** MTH as RFC 9162 writes it, recursively, to hold the incremental frontier to. */
function definitionRoot(leaves: readonly string[]): string {
  if (leaves.length === 0) return EMPTY_TREE_HASH;
  if (leaves.length === 1) return leafHash(leaves[0] as string);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(definitionRoot(leaves.slice(0, k)), definitionRoot(leaves.slice(k)));
}

const chainHashes = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `sha256:${i.toString(16).padStart(64, "0")}`);

describe("Merkle tree (RFC 9162)", () => {
  it("gives the reference implementation's roots for its test tree", () => {
    assert.equal(EMPTY_TREE_HASH, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    for (const [i, root] of REFERENCE_ROOTS.entries())
      assert.equal(treeRoot(REFERENCE_LEAVES.slice(0, i + 1)), root);
  });

  it("keeps the root of the definition when the tree grows a leaf at a time or in batches", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 8 }), (batches) => {
        const leaves = chainHashes(batches.reduce((a, b) => a + b, 0));
        let frontier = new MerkleFrontier();
        let at = 0;
        for (const size of batches) {
          for (const leaf of leaves.slice(at, at + size)) frontier.append(leaf);
          at += size;
          assert.equal(frontier.root(), definitionRoot(leaves.slice(0, at)));
          assert.equal(frontier.size, at);
          // A frontier kept as data and read back grows the same tree.
          frontier = new MerkleFrontier(JSON.parse(JSON.stringify(frontier.state())));
        }
      }),
    );
  });

  it("proves every leaf of every tree up to 70 leaves, and nothing else", () => {
    for (let size = 1; size <= 70; size++) {
      const leaves = chainHashes(size);
      const root = treeRoot(leaves);
      for (let index = 0; index < size; index++) {
        const path = inclusionProof(leaves, index);
        assert.ok(
          path.length <= Math.ceil(Math.log2(size)),
          `path of ${path.length} hashes for ${size} leaves`,
        );
        assert.ok(
          verifyInclusion(leaves[index] as string, index, size, path, root),
          `leaf ${index} of ${size}`,
        );
        assert.equal(verifyInclusion(`${leaves[index]}x`, index, size, path, root), false);
        if (size > 1) {
          assert.equal(verifyInclusion(leaves[index] as string, (index + 1) % size, size, path, root), false);
        }
        if (path.length > 0) {
          const bent = [...path];
          bent[0] = nodeHash(bent[0] as string, bent[0] as string);
          assert.equal(verifyInclusion(leaves[index] as string, index, size, bent, root), false);
        }
      }
    }
  });

  it("refuses proofs for leaves outside the tree", () => {
    const leaves = chainHashes(5);
    assert.throws(() => inclusionProof(leaves, 5), RangeError);
    assert.equal(verifyInclusion(leaves[0] as string, 5, 5, [], treeRoot(leaves)), false);
    assert.equal(verifyInclusion(leaves[0] as string, -1, 5, [], treeRoot(leaves)), false);
  });
});
