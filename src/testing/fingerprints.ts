/** Fingerprints for the equivalence tests of memory search (src/testing/equivalence.ts). */
import fc from "fast-check";
import { DIMENSIONS } from "../memory/fingerprint.ts";

/**
 * Sparse as a request's are (a few coordinates set), dense, or at the extremes of int8 in every coordinate,
 * where the sums are largest.
 */
export const fingerprints: fc.Arbitrary<Int8Array> = fc.oneof(
  fc
    .array(fc.tuple(fc.nat(DIMENSIONS - 1), fc.integer({ min: -128, max: 127 })), { maxLength: 24 })
    .map((coordinates) => {
      const vector = new Int8Array(DIMENSIONS);
      for (const [dimension, value] of coordinates) vector[dimension] = value;
      return vector;
    }),
  fc.int8Array({ minLength: DIMENSIONS, maxLength: DIMENSIONS }),
  fc.constantFrom(-128, -127, 127).map((value) => new Int8Array(DIMENSIONS).fill(value)),
);
