// Apart from the route definitions so that the key commands of the CLI can read the scopes without loading
// TypeBox and every schema.

/**
 * What a key may do. `admin` implies every other scope; `approve` is for voting on, overriding and
 * cancelling approvals (with the key's roles).
 */
export const SCOPES = ["decide", "read", "label", "approve", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** Who may call a route: anyone (`public`), any valid key (`any`), or a key with this scope. */
export type Access = "public" | "any" | Scope;
