export const LABELS = ["failure", "success"] as const;
/** A later fact about a decision: it went wrong, or it went well. */
export type Label = (typeof LABELS)[number];

/** A labelled past decision, as memory keeps it. */
export interface MemoryCase {
  readonly decisionId: string;
  readonly tenantId: string;
  readonly actionType: string;
  readonly label: Label;
  readonly vector: Int8Array;
}

/** How many labelled cases a tenant has of one action type. */
export interface ScopeCount {
  readonly tenantId: string;
  readonly actionType: string;
  readonly count: number;
}

/** A memory case as stored, beside what its decision and its latest label event say it is. */
export interface StoredMemoryCase {
  readonly decisionId: string;
  readonly tenantId: string;
  readonly actionType: string;
  readonly label: string;
  readonly summary: string;
  readonly severity: number | null;
  readonly projection: string;
  /** sha256 of the fingerprint's bytes, as `sha256:<hex>`. */
  readonly fingerprintSha256: string;
  readonly labelledAt: string;
  /** The decision's tenant and action type (undefined when the decision is gone). */
  readonly decision?: { readonly tenantId: string; readonly actionType: string };
  /** The latest label event's data and time (undefined when there is none). */
  readonly labelEvent?: { readonly data: Readonly<Record<string, unknown>>; readonly createdAt: string };
}

/**
 * Why a memory case is not what its label event (chained) and its decision say, if it is not. Label events
 * from before they recorded the fingerprint are held to their label, summary, severity and time.
 */
export function memoryCaseDisagreement(stored: StoredMemoryCase): string | undefined {
  const what = `the memory case of decision ${stored.decisionId}`;
  const event = stored.labelEvent;
  if (!event) return `${what} has no label event in the log`;
  const data = event.data;
  const expected: [string, unknown, unknown][] = [
    ["label", stored.label, data.label],
    ["summary", stored.summary, data.summary ?? ""],
    ["severity", stored.severity, data.severity ?? null],
    ["labelled_at", stored.labelledAt, event.createdAt],
    ["tenant_id", stored.tenantId, stored.decision?.tenantId],
    ["action_type", stored.actionType, stored.decision?.actionType],
  ];
  if (data.fingerprint_sha256 !== undefined)
    expected.push(
      ["projection", stored.projection, data.projection],
      ["fingerprint", stored.fingerprintSha256, data.fingerprint_sha256],
    );
  const differs = expected.find(([, value, logged]) => value !== logged);
  return differs ? `${what}: its ${differs[0]} is not what its label event and decision record` : undefined;
}
