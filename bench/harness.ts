/**
 * Measurement helpers shared by the scenarios: timers, percentiles, medians, a seeded PRNG and the batch
 * loops used to time very fast functions.
 */
import { type Speedup, setSpeedup } from "../src/core/speedups.ts";

/** Nanoseconds from an arbitrary origin (monotonic). */
export function nowNs(): bigint {
  return process.hrtime.bigint();
}

export function elapsedNs(since: bigint): number {
  return Number(process.hrtime.bigint() - since);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Percentile with linear interpolation between closest ranks (numpy's default). `sorted` must be ascending. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (n === 1) return sorted[0] as number;
  const rank = (p / 100) * (n - 1);
  const low = Math.floor(rank);
  const high = Math.min(low + 1, n - 1);
  const lowValue = sorted[low] as number;
  return lowValue + ((sorted[high] as number) - lowValue) * (rank - low);
}

export function percentiles(values: ArrayLike<number>, ps: readonly number[]): number[] {
  const sorted = Float64Array.from(values).sort();
  return ps.map((p) => percentileSorted(sorted, p));
}

export function median(values: readonly number[]): number {
  return percentiles(values, [50])[0] as number;
}

/**
 * A fast path beside its plain twin (src/core/speedups.ts) in the same minutes: `rounds` pairs of runs of
 * `work`, one with the speed-up on and one with it off, in alternating order; the median run of each, in ns.
 */
export function speedupPair(
  speedup: Speedup,
  rounds: number,
  work: () => void,
): { fast: number; plain: number } {
  const times = { fast: [] as number[], plain: [] as number[] };
  const before = setSpeedup(speedup, true);
  try {
    for (let round = 0; round < rounds; round++) {
      for (const on of round % 2 === 0 ? [true, false] : [false, true]) {
        setSpeedup(speedup, on);
        const started = nowNs();
        work();
        times[on ? "fast" : "plain"].push(elapsedNs(started));
      }
    }
  } finally {
    setSpeedup(speedup, before);
  }
  return { fast: median(times.fast), plain: median(times.plain) };
}

/** One repetition of one measured thing. Latencies are in nanoseconds per operation. */
export interface Rep {
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly p50Ns: number;
  readonly p99Ns: number;
}

/** The medians over repetitions that a scenario reports. */
export interface Summary {
  readonly opsPerSec: number;
  readonly p50Ns: number;
  readonly p99Ns: number;
  readonly reps: readonly Rep[];
}

export function summarize(reps: readonly Rep[]): Summary {
  return {
    opsPerSec: median(reps.map((r) => r.opsPerSec)),
    p50Ns: median(reps.map((r) => r.p50Ns)),
    p99Ns: median(reps.map((r) => r.p99Ns)),
    reps,
  };
}

/** Mulberry32: a small deterministic PRNG so that every run measures the same inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export type Evaluator<I> = (input: I, out: Uint16Array) => number;

/**
 * Runs `fn` over `count` consecutive inputs (cycling; `inputs.length` must be a power of two) and returns the
 * sum of its results, so that the work cannot be optimised away.
 */
export type BatchLoop<I> = (
  fn: Evaluator<I>,
  inputs: readonly I[],
  out: Uint16Array,
  count: number,
  start: number,
) => number;

/**
 * A fresh batch loop per measured function: each is a separate script, with its own type feedback, so the
 * call to `fn` inside stays monomorphic (and inlinable) for each side of an A/B comparison instead of being
 * shared, and penalised, by both.
 */
export function makeBatchLoop<I>(): BatchLoop<I> {
  const source = [
    '"use strict";',
    "const mask = inputs.length - 1;",
    "let sink = 0;",
    "for (let i = 0; i < count; i++) sink += fn(inputs[(start + i) & mask], out);",
    "return sink;",
  ].join("\n");
  return new Function("fn", "inputs", "out", "count", "start", source) as BatchLoop<I>;
}

/** Results accumulated here are observable, so the JIT cannot drop the measured calls. */
export const sink = { value: 0 };

/** A function under a batch-timed measurement. */
export interface BatchSubject<I> {
  readonly fn: Evaluator<I>;
  readonly loop: BatchLoop<I>;
  readonly inputs: readonly I[];
  readonly out: Uint16Array;
  /** Operations per timed sample. */
  readonly batch: number;
  /** Samples per repetition (set by {@link calibrate}). */
  samples: number;
  offset: number;
}

export function batchSubject<I>(fn: Evaluator<I>, inputs: readonly I[], batch: number): BatchSubject<I> {
  if (inputs.length === 0 || (inputs.length & (inputs.length - 1)) !== 0) {
    throw new RangeError(`the input count must be a power of two, not ${inputs.length}`);
  }
  return { fn, loop: makeBatchLoop<I>(), inputs, out: new Uint16Array(65_536), batch, samples: 1, offset: 0 };
}

/** Runs `subject` for about `ms` milliseconds (warm-up) and sets its samples per repetition to last `repMs`. */
export function calibrate<I>(subject: BatchSubject<I>, ms: number, repMs: number): void {
  const { fn, loop, inputs, out, batch } = subject;
  const mask = inputs.length - 1;
  const start = nowNs();
  let ops = 0;
  let total = 0;
  const budget = ms * 1e6;
  while (elapsedNs(start) < budget) {
    total += loop(fn, inputs, out, batch, subject.offset);
    subject.offset = (subject.offset + batch) & mask;
    ops += batch;
  }
  sink.value += total;
  const nsPerOp = elapsedNs(start) / ops;
  subject.samples = Math.max(10, Math.ceil((repMs * 1e6) / (nsPerOp * batch)));
}

/** One repetition: `samples` timed batches. Latencies are per-op times of the batches. */
export function runBatchRep<I>(subject: BatchSubject<I>): Rep {
  const { fn, loop, inputs, out, batch, samples } = subject;
  const mask = inputs.length - 1;
  const perOp = new Float64Array(samples);
  let total = 0;
  let offset = subject.offset;
  const started = nowNs();
  for (let s = 0; s < samples; s++) {
    const t0 = nowNs();
    total += loop(fn, inputs, out, batch, offset);
    perOp[s] = Number(nowNs() - t0) / batch;
    offset = (offset + batch) & mask;
  }
  const seconds = elapsedNs(started) / 1e9;
  subject.offset = offset;
  sink.value += total;
  const [p50, p99] = percentiles(perOp, [50, 99]);
  const ops = samples * batch;
  return { ops, seconds, opsPerSec: ops / seconds, p50Ns: p50 as number, p99Ns: p99 as number };
}

/** The result of an interleaved A/B comparison: both summaries and the median of the per-pair time ratios. */
export interface Comparison {
  readonly a: Summary;
  readonly b: Summary;
  /** Median over repetitions of (time per op of A) / (time per op of B). */
  readonly ratio: number;
  readonly ratios: readonly number[];
}

/**
 * Measures A and B in the same run, alternating A,B then B,A (ABBA) so that drift and noise fall on both.
 */
export function compareInterleaved<I>(
  a: BatchSubject<I>,
  b: BatchSubject<I>,
  options: { warmupMs: number; repMs: number; reps: number },
): Comparison {
  calibrate(a, options.warmupMs, options.repMs);
  calibrate(b, options.warmupMs, options.repMs);
  // Second pass: warm-up again now that both have run, so neither benefits from going first.
  calibrate(a, options.warmupMs / 2, options.repMs);
  calibrate(b, options.warmupMs / 2, options.repMs);
  const repsA: Rep[] = [];
  const repsB: Rep[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < options.reps; r++) {
    let ra: Rep;
    let rb: Rep;
    if (r % 2 === 0) {
      ra = runBatchRep(a);
      rb = runBatchRep(b);
    } else {
      rb = runBatchRep(b);
      ra = runBatchRep(a);
    }
    repsA.push(ra);
    repsB.push(rb);
    ratios.push(rb.opsPerSec / ra.opsPerSec);
  }
  return { a: summarize(repsA), b: summarize(repsB), ratio: median(ratios), ratios };
}
