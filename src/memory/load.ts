import type { MemoryCase, ScopeCount } from "../domain/memory-case.ts";
import { MemoryIndex } from "./index.ts";

/** Where the labelled cases memory starts from are read (a store). */
export interface MemoryCaseSource {
  /** How many labelled cases each tenant has of each action type. */
  scopes(): Promise<ScopeCount[]>;
  /** Visits every labelled case, each decision once; returns how many there were. */
  load(visit: (memoryCase: MemoryCase) => void): Promise<number>;
}

/**
 * Builds the memory index from the store's labelled cases. The index is sized for every scope before the
 * first case arrives, so that loading moves no fingerprint and the memory holds no slack.
 */
export async function readMemory(source: MemoryCaseSource): Promise<MemoryIndex> {
  const index = new MemoryIndex();
  index.reserve(await source.scopes());
  await source.load((memoryCase) => index.load(memoryCase));
  return index;
}
