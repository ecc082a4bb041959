/**
 * Fast paths that each have a plain twin giving the same answers. Each can be switched off, to rule it out
 * when an answer looks wrong or to measure what it buys: `LUMYN_PLAIN=all`, or a comma-separated list of
 * names (`LUMYN_PLAIN=json-readers,policy-compiler`), read once at start-up (the CLI refuses a name it does not
 * know); tests call {@link setSpeedup}.
 * One equivalence harness (src/testing/equivalence.ts) holds every fast path to its plain twin.
 */
import { didYouMean, type Problem } from "./problem.ts";

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
/** Names in LUMYN_PLAIN that are neither a fast path nor `all`. */
let unknownNames: readonly string[] = [];

function fromEnvironment(): void {
  const plain = (process.env.LUMYN_PLAIN ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  for (const name of Object.keys(SPEEDUPS) as Speedup[]) {
    enabled.set(name, !(plain.includes("all") || plain.includes(name)));
  }
  unknownNames = plain.filter((name) => name !== "all" && !Object.hasOwn(SPEEDUPS, name));
}
fromEnvironment();

/**
 * What is wrong with LUMYN_PLAIN as read at start-up: a problem for each name that is neither a fast path nor
 * `all`. The CLI refuses to start on any, since a misspelt name would leave its fast path on unnoticed.
 */
export function plainSettingProblems(): Problem[] {
  const names = Object.keys(SPEEDUPS);
  return unknownNames.map((name) => {
    const hint = didYouMean(name, [...names, "all"]);
    return {
      code: "unknown_speedup",
      message: `LUMYN_PLAIN names '${name}', which is no fast path`,
      expected: `all, or a comma-separated list of ${names.join(", ")}`,
      ...(hint ? { hint } : {}),
    };
  });
}

/** The fast paths switched off, in the order of {@link SPEEDUPS}. */
export function plainSpeedups(): Speedup[] {
  return (Object.keys(SPEEDUPS) as Speedup[]).filter((name) => !speedupEnabled(name));
}

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
