/**
 * A realistic 200-rule policy (25 action types x 8 rules), generated as YAML, its hand-written JavaScript
 * baseline (a plain loop over a table of rule closures computing the same matches) and requests for it.
 *
 * Per action type, the 8 rules cover the operators a production policy uses: flat keys (`_is: null`, `_gte`,
 * `_in`, `amount_usd_gt/gte/lte`), nested `gt`/`gte`/`lt`, `in`/`not_in`, `between`, `exists`, `eq` on the tenant
 * and `contains` on the subject's roles, in all four stages and in `if`, `if_all` and `if_any`.
 */
import { JsonFloat, type JsonObject, type JsonValue } from "../src/core/json.ts";
import { STAGES, type Stage, type Verdict } from "../src/core/verdict.ts";
import type { EvaluationInput } from "../src/policy/evaluate.ts";
import { prng } from "./harness.ts";

export const ACTION_TYPES = [
  "support.refund",
  "support.issue_credit",
  "support.close_ticket",
  "support.escalate_ticket",
  "payments.payout",
  "payments.refund_card",
  "payments.update_bank_account",
  "payments.void_invoice",
  "billing.apply_discount",
  "billing.change_plan",
  "billing.waive_fee",
  "crm.update_contact",
  "crm.merge_accounts",
  "crm.delete_contact",
  "hr.update_salary",
  "hr.terminate_contract",
  "infra.deploy",
  "infra.rotate_secret",
  "infra.scale_cluster",
  "infra.delete_bucket",
  "data.export_table",
  "data.delete_records",
  "email.send_campaign",
  "iam.grant_role",
  "iam.reset_mfa",
] as const;

const BLOCKED_COUNTRIES = ["KP", "IR", "SY", "CU"];
const SERVED_COUNTRIES = ["US", "CA", "GB", "DE", "FR", "NL", "SE", "NO", "JP", "AU"];
const FAST_CHANNELS = ["web", "mobile"];

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** One generated rule: its YAML (as a JSON value, which is valid YAML flow) and its hand-written test. */
interface RuleSpec {
  readonly id: string;
  readonly stage: Stage;
  readonly verdict: Verdict;
  readonly reason: string;
  readonly body: JsonObject;
  readonly test: (input: EvaluationInput) => boolean;
}

// ---- Hand-written semantics, as someone would write them for JSON input (fast path for plain doubles). ----

function jsonNumber(x: unknown): number | bigint | undefined {
  if (typeof x === "number" || typeof x === "bigint") return x;
  if (x instanceof JsonFloat) return x.value;
  return undefined;
}

function pythonNumber(x: unknown): number | bigint | undefined {
  return typeof x === "boolean" ? (x ? 1 : 0) : jsonNumber(x);
}

const gtJson = (x: unknown, y: number): boolean => {
  if (typeof x === "number") return x > y;
  const n = jsonNumber(x);
  return n !== undefined && n > y;
};
const gteJson = (x: unknown, y: number): boolean => {
  if (typeof x === "number") return x >= y;
  const n = jsonNumber(x);
  return n !== undefined && n >= y;
};
const ltJson = (x: unknown, y: number): boolean => {
  if (typeof x === "number") return x < y;
  const n = jsonNumber(x);
  return n !== undefined && n < y;
};
const gtePython = (x: unknown, y: number): boolean => {
  if (typeof x === "number") return x >= y;
  const n = pythonNumber(x);
  return n !== undefined && n >= y;
};
const betweenJson = (x: unknown, low: number, high: number): boolean => {
  if (typeof x === "number") return x >= low && x <= high;
  const n = jsonNumber(x);
  return n !== undefined && n >= low && n <= high;
};
const containsString = (x: unknown, item: string): boolean =>
  typeof x === "string" ? x.includes(item) : Array.isArray(x) && x.includes(item);

function subjectRoles(input: EvaluationInput): unknown {
  const subject = input.request.subject as JsonObject | undefined;
  return subject?.roles;
}

function tenantEnvironment(input: EvaluationInput): unknown {
  const tenant = input.request.tenant as JsonObject | undefined;
  return tenant?.environment;
}

/** The 8 rules of one action type (index `i` varies thresholds and operator forms). */
function rulesFor(action: string, i: number): RuleSpec[] {
  const prefix = action.toUpperCase().replace(".", "_");
  const riskLimit = round2(0.8 + 0.03 * (i % 5));
  const escalateOver = 100 * (i + 1);
  const approvalOver = 50 * (i + 1);
  const fastUpTo = 20 * (i + 1);
  const repeatLimit = 2 + (i % 3);
  const blocked = new Set(BLOCKED_COUNTRIES);
  const served = new Set(SERVED_COUNTRIES);
  const fastChannels = new Set(FAST_CHANNELS);
  const when = { action_type: action };
  const rules: RuleSpec[] = [
    {
      id: `${prefix}_REQ`,
      stage: "REQUIREMENTS",
      verdict: "DENY",
      reason: "MISSING_EVIDENCE",
      body: {
        when,
        if_any: [{ "evidence.ticket_id_is": null }, { "evidence.customer_id": { exists: false } }],
      },
      test: (x) =>
        x.action_type === action && (x.evidence.ticket_id == null || x.evidence.customer_id == null),
    },
    {
      id: `${prefix}_RISK`,
      stage: "HARD_BLOCKS",
      verdict: "ABSTAIN",
      reason: "RISK_SCORE_BLOCK",
      body: { when, if: { "evidence.risk_score": { gt: riskLimit } } },
      test: (x) => x.action_type === action && gtJson(x.evidence.risk_score, riskLimit),
    },
    i % 2 === 0
      ? {
          id: `${prefix}_GEO`,
          stage: "HARD_BLOCKS",
          verdict: "ABSTAIN",
          reason: "SANCTIONED_COUNTRY",
          body: { when, if: { "evidence.country": { in: BLOCKED_COUNTRIES } } },
          test: (x) => x.action_type === action && blocked.has(x.evidence.country as string),
        }
      : {
          id: `${prefix}_GEO`,
          stage: "HARD_BLOCKS",
          verdict: "ABSTAIN",
          reason: "UNSERVED_COUNTRY_IN_PROD",
          body: {
            when,
            if: { "evidence.country": { not_in: SERVED_COUNTRIES }, "tenant.environment": { eq: "prod" } },
          },
          test: (x) =>
            x.action_type === action &&
            !served.has(x.evidence.country as string) &&
            tenantEnvironment(x) === "prod",
        },
    {
      id: `${prefix}_AMOUNT`,
      stage: "ESCALATIONS",
      verdict: "ESCALATE",
      reason: "AMOUNT_OVER_LIMIT",
      body: { when, if: { amount_usd_gt: escalateOver } },
      test: (x) => x.action_type === action && x.amount_usd !== null && x.amount_usd > escalateOver,
    },
    i % 3 === 0
      ? {
          id: `${prefix}_REPEAT`,
          stage: "ESCALATIONS",
          verdict: "ESCALATE",
          reason: "REPEAT_ACTION",
          body: { when, if: { "evidence.previous_count_90d_gte": repeatLimit } },
          test: (x) => x.action_type === action && gtePython(x.evidence.previous_count_90d, repeatLimit),
        }
      : {
          id: `${prefix}_REPEAT`,
          stage: "ESCALATIONS",
          verdict: "ESCALATE",
          reason: "REPEAT_ACTION",
          body: { when, if: { "evidence.previous_count_90d": { gte: repeatLimit } } },
          test: (x) => x.action_type === action && gteJson(x.evidence.previous_count_90d, repeatLimit),
        },
    {
      id: `${prefix}_NEW_ACCOUNT`,
      stage: "ESCALATIONS",
      verdict: "ESCALATE",
      reason: "NEW_ACCOUNT_CONTRACTOR",
      body: {
        when,
        if: {
          "evidence.account_age_days": { between: [0, 30] },
          "subject.roles": { contains: "contractor" },
        },
      },
      test: (x) =>
        x.action_type === action &&
        betweenJson(x.evidence.account_age_days, 0, 30) &&
        containsString(subjectRoles(x), "contractor"),
    },
    {
      id: `${prefix}_APPROVAL`,
      stage: "ESCALATIONS",
      verdict: "ESCALATE",
      reason: "MANAGER_APPROVAL_REQUIRED",
      body: { when, if: { "evidence.manager_approval": { exists: false }, amount_usd_gte: approvalOver } },
      test: (x) =>
        x.action_type === action &&
        x.evidence.manager_approval == null &&
        x.amount_usd !== null &&
        x.amount_usd >= approvalOver,
    },
    {
      id: `${prefix}_FAST_PATH`,
      stage: "ALLOW_PATHS",
      verdict: "ALLOW",
      reason: "SMALL_LOW_RISK",
      body: {
        when,
        if_all: [
          { amount_usd_lte: fastUpTo },
          { "evidence.risk_score": { lt: 0.3 } },
          { "evidence.channel_in": FAST_CHANNELS },
          { "evidence.account_age_days_gte": 14 },
        ],
      },
      test: (x) =>
        x.action_type === action &&
        x.amount_usd !== null &&
        x.amount_usd <= fastUpTo &&
        ltJson(x.evidence.risk_score, 0.3) &&
        fastChannels.has(x.evidence.channel as string) &&
        gtePython(x.evidence.account_age_days, 14),
    },
  ];
  return rules;
}

/** A YAML flow value (JSON with a space after every `:` and `,`, which YAML 1.1 readers require). */
function flow(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(flow).join(", ")}]`;
  if (value !== null && typeof value === "object" && !(value instanceof JsonFloat)) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${flow(v)}`)
      .join(", ")}}`;
  }
  return JSON.stringify(value);
}

export interface Policy200 {
  readonly yaml: string;
  /** Rule ids in evaluation order (by stage, then file order), as the engine orders them. */
  readonly ruleIds: readonly string[];
  /** The hand-written baseline: the same contract as a compiled evaluator. */
  readonly baseline: (input: EvaluationInput, out: Uint16Array) => number;
}

/** Generates the policy text and its baseline. Rules are written grouped by action type, as people do. */
export function policy200(): Policy200 {
  const specs = ACTION_TYPES.flatMap((action, i) => rulesFor(action, i));
  const lines = [
    "# Generated by bench/policy200.ts: 25 action types x 8 rules.",
    "schema_version: policy.v1",
    "policy_id: bench-200",
    'policy_version: "1.0.0"',
    "defaults:",
    "  mode: enforce",
    "  default_verdict: ESCALATE",
    "  default_reason_code: NO_MATCH_DEFAULT_ESCALATE",
    "rules:",
  ];
  for (const spec of specs) {
    lines.push(`  - id: ${spec.id}`, `    stage: ${spec.stage}`);
    for (const [key, value] of Object.entries(spec.body)) lines.push(`    ${key}: ${flow(value)}`);
    lines.push("    then:", `      verdict: ${spec.verdict}`, `      reason_codes: [${spec.reason}]`);
    if (spec.verdict === "DENY") {
      lines.push(
        "      queries:",
        "        - field: evidence.ticket_id",
        "          question: Which ticket is this for?",
      );
    }
  }
  // The engine evaluates by stage, then in file order; the baseline table is kept in that same order.
  const ordered = specs
    .map((spec, index) => ({ spec, index }))
    .sort((a, b) => STAGES.indexOf(a.spec.stage) - STAGES.indexOf(b.spec.stage) || a.index - b.index)
    .map(({ spec }) => spec);
  const tests = ordered.map((spec) => spec.test);
  const count = tests.length;
  const baseline = (input: EvaluationInput, out: Uint16Array): number => {
    let n = 0;
    for (let i = 0; i < count; i++) if ((tests[i] as (x: EvaluationInput) => boolean)(input)) out[n++] = i;
    return n;
  };
  return { yaml: `${lines.join("\n")}\n`, ruleIds: ordered.map((spec) => spec.id), baseline };
}

/** Requests for the 200-rule policy: every action type, plus 8% of actions no rule names. */
export function requests200(count: number, seed: number): Record<string, unknown>[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const action =
      random() < 0.92 ? pick(ACTION_TYPES) : pick(["notes.add_comment", "calendar.book_meeting"]);
    const evidence: Record<string, JsonValue> = {};
    if (random() < 0.92) evidence.ticket_id = `T-${Math.floor(random() * 100_000)}`;
    if (random() < 0.95) evidence.customer_id = `C-${Math.floor(random() * 10_000)}`;
    const riskRoll = random();
    evidence.risk_score = round2(
      riskRoll < 0.7 ? random() * 0.3 : riskRoll < 0.93 ? 0.3 + random() * 0.5 : 0.8 + random() * 0.2,
    );
    const countryRoll = random();
    if (countryRoll < 0.97) {
      evidence.country =
        countryRoll < 0.88
          ? pick(SERVED_COUNTRIES)
          : countryRoll < 0.92
            ? pick(BLOCKED_COUNTRIES)
            : pick(["BR", "IN", "MX"]);
    }
    const repeatRoll = random();
    evidence.previous_count_90d =
      repeatRoll < 0.75 ? 0 : repeatRoll < 0.88 ? 1 : 2 + Math.floor(random() * 4);
    evidence.account_age_days =
      random() < 0.85 ? 31 + Math.floor(random() * 2000) : pick([0, 14, 30, Math.floor(random() * 31)]);
    // Some values sit exactly on thresholds of the policy, so that the agreement check covers boundaries.
    if (random() < 0.05) evidence.risk_score = pick([0.3, 0.8, 0.83, 0.86, 0.89, 0.92]);
    evidence.channel = pick(["web", "web", "mobile", "phone", "api"]);
    if (random() < 0.5) evidence.manager_approval = `M-${Math.floor(random() * 1000)}`;
    // One amount in ten is exactly one of the action's amount thresholds (fast path, approval, escalation).
    const onThreshold = random() < 0.1;
    const index = (ACTION_TYPES as readonly string[]).indexOf(action);
    const amount = onThreshold
      ? pick([20, 50, 100]) * (index + 1)
      : round2(Math.exp(random() * Math.log(10_000)));
    const eur = !onThreshold && random() < 0.08;
    if (eur) evidence.fx_rate_to_usd = 1.08;
    out.push({
      schema_version: "decision_request.v1",
      request_id: `bench200-${i}`,
      tenant: { tenant_id: `tenant-${i % 7}`, environment: random() < 0.8 ? "prod" : "staging" },
      subject: {
        type: "agent",
        id: `agent-${i % 13}`,
        roles: random() < 0.15 ? ["support", "contractor"] : ["support"],
      },
      action: {
        type: action,
        intent: "Do the thing",
        amount: { value: amount, currency: eur ? "EUR" : "USD" },
      },
      evidence,
      context: { mode: "digest_only", digest: `sha256:${"0".repeat(64)}` },
    });
  }
  return out;
}
