/**
 * The one harness that holds every fast path to its plain twin (src/core/speedups.ts): a property test over
 * generated inputs, failing with the smallest input on which the two answer differently.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";
import fc from "fast-check";
import { type Speedup, setSpeedup } from "../core/speedups.ts";

export interface Equivalence<I, O> {
  readonly speedup: Speedup;
  /** What the inputs are, for the test's name. */
  readonly over: string;
  readonly inputs: fc.Arbitrary<I>;
  readonly fast: (input: I) => O;
  readonly plain: (input: I) => O;
  /** Whether two answers are the same (deep strict equality by default). */
  readonly same?: (fast: O, plain: O) => boolean;
  readonly runs?: number;
}

/** Registers a test: on every generated input, the fast path answers as the plain one does. */
export function testEquivalence<I, O>(spec: Equivalence<I, O>): void {
  test(`speed-up ${spec.speedup} answers as its plain twin, over ${spec.over}`, () => {
    fc.assert(
      fc.property(spec.inputs, (input) => {
        const fast = spec.fast(input);
        const plain = spec.plain(input);
        if (spec.same)
          assert.ok(
            spec.same(fast, plain),
            `the answers differ: fast ${inspect(fast)}, plain ${inspect(plain)}`,
          );
        else assert.deepStrictEqual(fast, plain);
      }),
      { numRuns: spec.runs ?? 500 },
    );
  });
}

/**
 * `run` with the fast path switched on or off while it runs, whatever LUMYN_PLAIN says: the fast and the plain
 * twin of code that consults `speedupEnabled` (so that `LUMYN_PLAIN=all npm test` still compares the two).
 */
export function withSpeedup<I, O>(speedup: Speedup, on: boolean, run: (input: I) => O): (input: I) => O {
  return (input) => {
    const before = setSpeedup(speedup, on);
    try {
      return run(input);
    } finally {
      setSpeedup(speedup, before);
    }
  };
}
