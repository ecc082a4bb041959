import type { EvaluationInput } from "../policy/evaluate.ts";
import { evaluatePolicy, type Policy, type PolicyOutcome } from "../policy/policy.ts";

/**
 * The evaluate stage of a decision: what turns a request (with its derived features, memory's similarity and
 * velocity values) into the policy's answer, before memory arbitrates. Lumyn's compiled YAML policies are one
 * implementation; other policy engines plug in behind the same interface.
 */
export interface Evaluator {
  evaluate(input: EvaluationInput): PolicyOutcome;
}

/** Lumyn's own policies: the compiled rules of a policy.v1 document. */
class YamlEvaluator implements Evaluator {
  private readonly policy: Policy;

  constructor(policy: Policy) {
    this.policy = policy;
  }

  evaluate(input: EvaluationInput): PolicyOutcome {
    return evaluatePolicy(this.policy, input);
  }
}

const evaluators = new WeakMap<Policy, Evaluator>();

/** The evaluator that decides under a policy (one per policy, made when first asked for). */
export function evaluatorOf(policy: Policy): Evaluator {
  let evaluator = evaluators.get(policy);
  if (!evaluator) {
    evaluator = new YamlEvaluator(policy);
    evaluators.set(policy, evaluator);
  }
  return evaluator;
}
