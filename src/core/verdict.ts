export const VERDICTS = ["ALLOW", "DENY", "ESCALATE", "ABSTAIN"] as const;
export type Verdict = (typeof VERDICTS)[number];

/** Higher wins when several rules match: ABSTAIN > DENY > ESCALATE > ALLOW. */
export const VERDICT_PRECEDENCE: Readonly<Record<Verdict, number>> = {
  ALLOW: 0,
  ESCALATE: 1,
  DENY: 2,
  ABSTAIN: 3,
};

export function strongerVerdict(a: Verdict, b: Verdict): Verdict {
  return VERDICT_PRECEDENCE[b] > VERDICT_PRECEDENCE[a] ? b : a;
}

export const STAGES = ["REQUIREMENTS", "HARD_BLOCKS", "ESCALATIONS", "ALLOW_PATHS"] as const;
export type Stage = (typeof STAGES)[number];
/** Earlier name of ALLOW_PATHS, accepted in policies. */
export const STAGE_ALIASES: Readonly<Record<string, Stage>> = { TRUST_PATHS: "ALLOW_PATHS" };

/** `determinism.evaluation_order` of every record. */
export const EVALUATION_ORDER = [...STAGES, "DEFAULT"] as const;

export const REASON_CODE_PATTERN = /^[A-Z0-9_]+$/;

export const POLICY_MODES = ["enforce", "advisory"] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];
