import type { Store } from "../store/store.ts";
import { MemoryIndex } from "./index.ts";

/**
 * Builds the memory index from the store's labelled cases. The index is sized for every scope before the
 * first case arrives, so that loading moves no fingerprint and the memory holds no slack.
 */
export async function readMemory(store: Pick<Store, "memoryScopes" | "loadMemory">): Promise<MemoryIndex> {
  const index = new MemoryIndex();
  index.reserve(await store.memoryScopes());
  await store.loadMemory((memoryCase) => index.load(memoryCase));
  return index;
}
