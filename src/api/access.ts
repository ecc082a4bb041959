import type { Scope } from "../domain/api-key.ts";

/** Who may call a route: anyone (`public`), any valid key (`any`), or a key with this scope. */
export type Access = "public" | "any" | Scope;
