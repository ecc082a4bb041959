/**
 * Fast paths that each have a plain twin giving the same answers. Each can be switched off, to rule it out
 * when an answer looks wrong or to measure what it buys: `LUMYN_PLAIN=all`, or a comma-separated list of
 * names (`LUMYN_PLAIN=json-readers,policy-compiler`), read once at start-up; tests call {@link setSpeedup}.
 * One equivalence harness (src/testing/equivalence.ts) holds every fast path to its plain twin.
 */
export const SPEEDUPS = {
  /** V8's JSON.parse and the fast reader in front of the lossless JSON reader (src/core/parse-json.ts). */
  "json-readers": "JSON.parse and the fast reader before the lossless reader",
  /** The WebAssembly SIMD kernel of memory search (src/memory/index.ts). */
  "similarity-kernel": "the WebAssembly SIMD similarity kernel",
  /** Policies compiled into one generated function (src/policy/compile.ts). */
  "policy-compiler": "policies compiled into generated code",
} as const;

export type Speedup = keyof typeof SPEEDUPS;

const enabled = new Map<Speedup, boolean>();

function fromEnvironment(): void {
  const plain = (process.env.LUMYN_PLAIN ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  for (const name of Object.keys(SPEEDUPS) as Speedup[]) {
    enabled.set(name, !(plain.includes("all") || plain.includes(name)));
  }
}
fromEnvironment();

/** Whether a fast path is in use (true unless switched off). */
export function speedupEnabled(name: Speedup): boolean {
  return enabled.get(name) ?? true;
}

/** Switches a fast path on or off for this process; returns what it was. */
export function setSpeedup(name: Speedup, on: boolean): boolean {
  const before = speedupEnabled(name);
  enabled.set(name, on);
  return before;
}
