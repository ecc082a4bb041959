import type { KeyObject } from "node:crypto";
import { type ChainReport, ChainVerifier } from "../domain/chain.ts";
import type { Store } from "../store/store.ts";

/** Walks a store's whole chain and checks it, its rows and its checkpoints (signatures with `publicKey`). */
export async function verifyStoreChain(store: Store, publicKey?: KeyObject): Promise<ChainReport> {
  const verifier = new ChainVerifier(await store.log.checkpoints());
  await store.log.readChain((link) => verifier.add(link));
  const unchained = verifier.intact ? await store.log.unchained() : [];
  return verifier.finish(unchained, publicKey);
}
