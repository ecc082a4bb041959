import type { JsonObject, JsonValue } from "../core/json.ts";
import type { PolicyMode, Stage, Verdict } from "../core/verdict.ts";
import type { ApprovalSettings } from "../domain/approval.ts";
import type { VelocitySpec } from "../domain/velocity.ts";
import type { MemoryConfig } from "../memory/arbitrate.ts";
import type { FlatOperator, OperatorUse } from "./operator-table.ts";

/** Features computed from the request before evaluation (the `derived` half of `inputs_digest`). */
export const DERIVED_FEATURES = [
  "action_type",
  "amount_currency",
  "amount_value",
  "amount_usd",
  "memory.failure_similarity",
  "memory.success_similarity",
] as const;
export type DerivedFeature = (typeof DERIVED_FEATURES)[number];

/** Top-level request members that a path may start with; any other path reads inside `evidence`. */
export const REQUEST_ROOTS = ["evidence", "subject", "action", "context", "tenant", "extensions"] as const;

/** What a condition reads. */
export type ValueRef =
  | { readonly kind: "derived"; readonly name: DerivedFeature }
  /** A literal evidence key, as the reference's flat `evidence.<key>_<op>` reads it (dots are part of the key). */
  | { readonly kind: "evidence_key"; readonly key: string }
  /** A path into the request, e.g. `["subject", "roles"]`. */
  | { readonly kind: "request_path"; readonly segments: readonly string[] }
  /** A velocity measure the policy defines (`velocity.<name>`): a count or sum over recent decisions. */
  | { readonly kind: "velocity"; readonly name: string };

/**
 * The reference's flat keys on derived features (plus `amount_currency_is` and `action_type_in`, which it
 * ignores), each a flat operator applied to one feature.
 */
export const DERIVED_FLAT_KEYS: Readonly<
  Record<
    string,
    {
      readonly name: DerivedFeature;
      readonly operator: FlatOperator;
      /** For the JSON Schema (scripts/generate-policy-schema.ts). */
      readonly description?: string;
    }
  >
> = {
  action_type: {
    name: "action_type",
    operator: "is",
    description: "Exact action type (or a mapping of operators).",
  },
  action_type_in: { name: "action_type", operator: "in", description: "One of these action types." },
  amount_currency: { name: "amount_currency", operator: "is" },
  amount_currency_is: { name: "amount_currency", operator: "is" },
  amount_currency_ne: { name: "amount_currency", operator: "ne" },
  amount_usd: { name: "amount_usd", operator: "is" },
  amount_usd_gt: { name: "amount_usd", operator: "gt" },
  amount_usd_gte: { name: "amount_usd", operator: "gte" },
  amount_usd_lt: { name: "amount_usd", operator: "lt" },
  amount_usd_lte: { name: "amount_usd", operator: "lte" },
};

/**
 * One test of one value, e.g. `evidence.chargeback_risk >= 0.7`: an operator (a name in its form's
 * vocabulary, `is` for flat, `eq` for nested; see operator-table.ts) and its checked operand.
 */
export type Condition = OperatorUse & {
  /** The key as written in the policy (`evidence.chargeback_risk_gte`, `amount_usd`). */
  readonly key: string;
  readonly ref: ValueRef;
  readonly operand: JsonValue;
  /** Where the condition is in the policy document. */
  readonly pointer: string;
};

/** Conditions that must all hold: one mapping in `when`, `if`, `if_all[i]` or `if_any[i]`. */
export type ConditionGroup = readonly Condition[];

export interface PolicyRule {
  readonly id: string;
  readonly stage: Stage;
  /** The stage as written (`TRUST_PATHS` is kept for the explain trace). */
  readonly stageAsWritten: string;
  readonly description?: string;
  readonly when: ConditionGroup;
  readonly if: ConditionGroup;
  readonly ifAll?: readonly ConditionGroup[];
  readonly ifAny?: readonly ConditionGroup[];
  readonly verdict: Verdict;
  readonly reasonCodes: readonly string[];
  readonly queries: readonly JsonObject[];
  readonly obligations: readonly JsonObject[];
  /** How people approve this rule's ESCALATE (see policy/approval.ts). */
  readonly approval?: ApprovalSettings;
  /** Index of the rule in the document's `rules` list. */
  readonly index: number;
  readonly pointer: string;
}

export interface PolicyDefaults {
  readonly mode: PolicyMode;
  readonly verdict: Verdict;
  readonly reasonCode: string;
  /** How people approve an ESCALATE whose rule says nothing of it. */
  readonly approval?: ApprovalSettings;
}

/** A validated policy.v1 document. */
export interface PolicyModel {
  readonly policyId: string;
  readonly policyVersion: string;
  readonly defaults: PolicyDefaults;
  /** Rules in evaluation order: by stage, then in file order. */
  readonly rules: readonly PolicyRule[];
  /** The `memory:` section, with defaults for what it does not say. */
  readonly memory: MemoryConfig;
  /** The `velocity:` section (empty when absent). */
  readonly velocity: readonly VelocitySpec[];
}
