import { DOT_PRODUCTS_WASM } from "./dot-products.wasm.ts";

/**
 * The dot products of one query with the fingerprints of one scope, all in one WebAssembly memory (arguments
 * are byte offsets into it): sums[i] = Σ over terms t of weight(t) × columns[dimension(t) × stride + i], as
 * 32-bit integers, for every i below `count` rounded up to 16. A term is two i32, the dimension and the
 * weight; `columns`, `stride` and `sums` are multiples of 16.
 */
export type SimilarityKernel = (
  columns: number,
  stride: number,
  count: number,
  terms: number,
  termCount: number,
  sums: number,
) => void;

let module: WebAssembly.Module | undefined;

/** dot-products.wat over `memory`, sixteen cases a step: the speed-up `similarity-kernel`. */
export function simdKernel(memory: WebAssembly.Memory): SimilarityKernel {
  module ??= new WebAssembly.Module(Buffer.from(DOT_PRODUCTS_WASM, "base64"));
  return new WebAssembly.Instance(module, { env: { memory } }).exports.dotProducts as SimilarityKernel;
}

/** Its plain twin: the same sums in JavaScript, one case at a time. */
export function plainKernel(memory: WebAssembly.Memory): SimilarityKernel {
  return (columns, stride, count, terms, termCount, sums) => {
    // Views of the memory as it is now: growing it since the last call replaced its buffer.
    const bytes = new Int8Array(memory.buffer);
    const words = new Int32Array(memory.buffer);
    const first = sums / 4;
    const end = first + ((count + 15) & -16);
    words.fill(0, first, end);
    for (let term = terms / 4; term < terms / 4 + termCount * 2; term += 2) {
      // Case i's byte in the column, for the sum at words[first + i].
      const column = columns + (words[term] as number) * stride - first;
      const weight = words[term + 1] as number;
      for (let i = first; i < end; i++)
        words[i] = (words[i] as number) + weight * (bytes[column + i] as number);
    }
  };
}
