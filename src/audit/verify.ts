import { type ChainReport, ChainVerifier, type VerifyOptions } from "../domain/chain.ts";
import type { Store } from "../store/store.ts";

/**
 * Walks a store's whole chain and checks it, the rows derived from it (decisions' columns, approvals, memory
 * cases) and its checkpoints: those in the store, and those anchored outside it (signatures with
 * `options.publicKeys`).
 */
export async function verifyStoreChain(store: Store, options: VerifyOptions = {}): Promise<ChainReport> {
  const verifier = new ChainVerifier(await store.log.checkpoints(), options);
  await store.log.readChain((link) => verifier.add(link));
  if (!verifier.intact) return verifier.finish([]);
  return verifier.finish(await store.log.unchained(), await store.log.inconsistencies());
}
