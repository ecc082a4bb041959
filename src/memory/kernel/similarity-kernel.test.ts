import { describe } from "node:test";
import fc from "fast-check";
import { testEquivalence } from "../../testing/equivalence.ts";
import { fingerprints } from "../../testing/fingerprints.ts";
import { DIMENSIONS } from "../fingerprint.ts";
import { plainKernel, type SimilarityKernel, simdKernel } from "./similarity-kernel.ts";

/** Columns of `stride` cases (the first `count` of them fingerprints, the rest bytes left over), and a query. */
interface Layout {
  readonly count: number;
  readonly stride: number;
  readonly columns: Int8Array;
  readonly query: Int8Array;
}

const layouts: fc.Arbitrary<Layout> = fc.integer({ min: 1, max: 5 }).chain((blocks) =>
  fc.record({
    count: fc.integer({ min: 0, max: blocks * 16 }),
    stride: fc.constant(blocks * 16),
    columns: fc.array(fingerprints, { minLength: blocks * 16, maxLength: blocks * 16 }).map((cases) => {
      const columns = new Int8Array(DIMENSIONS * blocks * 16);
      cases.forEach((vector, i) => {
        for (let d = 0; d < DIMENSIONS; d++) columns[d * blocks * 16 + i] = vector[d] as number;
      });
      return columns;
    }),
    query: fingerprints,
  }),
);

/** The sums the kernel wrote over the layout, and whether it left the rest of the memory as it was. */
function run(
  make: (memory: WebAssembly.Memory) => SimilarityKernel,
  layout: Layout,
): { sums: number[]; restUnchanged: boolean } {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const words = new Int32Array(memory.buffer);
  let terms = 0;
  for (let d = 0; d < DIMENSIONS; d++) {
    if (layout.query[d] === 0) continue;
    words[terms * 2] = d;
    words[terms * 2 + 1] = layout.query[d] as number;
    terms++;
  }
  const columns = DIMENSIONS * 8;
  new Int8Array(memory.buffer).set(layout.columns, columns);
  const sums = columns + layout.columns.length;
  const end = sums + ((layout.count + 15) & -16) * 4;
  // Sums from an earlier search are still there: the kernel must clear them.
  words.fill(-1, sums / 4);
  const before = new Uint8Array(memory.buffer).slice();
  make(memory)(columns, layout.stride, layout.count, 0, terms, sums);
  const after = new Uint8Array(memory.buffer);
  return {
    sums: Array.from(words.subarray(sums / 4, end / 4)),
    restUnchanged:
      Buffer.compare(before.subarray(0, sums), after.subarray(0, sums)) === 0 &&
      Buffer.compare(before.subarray(end), after.subarray(end)) === 0,
  };
}

describe("the similarity kernel", () => {
  testEquivalence({
    speedup: "similarity-kernel",
    over: "generated fingerprint columns and queries: the same 32-bit sums, and nothing else written",
    inputs: layouts,
    fast: (layout) => run(simdKernel, layout),
    plain: (layout) => run(plainKernel, layout),
    runs: 300,
  });
});
