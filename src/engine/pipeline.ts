import { canonicalJson, type JsonValue } from "../core/json.ts";
import { fail, ok, type Result, StorageError } from "../core/problem.ts";
import type { Approval, ApprovalOpening } from "../domain/approval.ts";
import type { DecisionRecord, PutDecisionResult } from "../domain/decision-record.ts";
import type { PolicySnapshot } from "../domain/policy-registry.ts";
import type { VelocityValues } from "../domain/velocity.ts";
import type { MemoryEvidence } from "../memory/recall.ts";
import type { Policy } from "../policy/policy.ts";
import { approvalOpening } from "./approval.ts";
import {
  completeDecision,
  type DecideOptions,
  type Decision,
  type PreparedDecision,
  prepareDecision,
  recordJson,
  storageUnavailableRecord,
} from "./decide.ts";
import type { RedactionProfile } from "./redact.ts";

/** The outcome of a stored decision: the record, and whether it was newly stored or already there. */
export interface StoredDecision {
  readonly record: DecisionRecord;
  /** `stored`: written now; `duplicate`: the same request_id was decided before; `unavailable`: not stored (fail-closed). */
  readonly status: "stored" | "duplicate" | "unavailable";
  /** The record's canonical JSON (what the store keeps), ready to send as it is. */
  readonly json: string;
  /** The approval the decision opened, when it ESCALATEs and its policy asks people to approve. */
  readonly approval?: Approval;
}

/**
 * What a decision needs from outside the engine, each a narrow port: the stores provide most of them, the
 * gateway the rest. A port that fails with a StorageError makes the decision fail closed.
 */
export interface DecisionPorts {
  /** The policy a tenant's requests are decided under, when the decision starts (one for the whole decision). */
  policyFor(tenantId: string): Policy;
  /** Labelled past cases near the request (memory stage). */
  readonly memory: {
    consult(
      tenantId: string,
      actionType: string,
      request: DecisionRecord["request"],
      config: Policy["model"]["memory"],
    ): Promise<MemoryEvidence | undefined>;
  };
  /** The policy's velocity measures over recent history (velocity stage), and what a stored decision adds. */
  readonly velocity: {
    measure(
      policy: Policy,
      tenantId: string,
      request: DecisionRecord["request"],
      now: Date,
    ): Promise<VelocityValues>;
    observe(policy: Policy, tenantId: string, record: DecisionRecord): Promise<void>;
  };
  /** Where records are kept, with the approval they open (record stage). */
  readonly decisions: {
    put(record: DecisionRecord, json?: string, approval?: ApprovalOpening): Promise<PutDecisionResult>;
  };
  /** The approval a stored decision opened (a repeated request answers it again). */
  readonly approvals: { findByDecision(decisionId: string): Promise<Approval | undefined> };
  /** Policy texts by hash, so that every record's policy can be recovered. */
  readonly policies: { putSnapshot(snapshot: PolicySnapshot): Promise<void> };
  /** The time a decision is made at (the record's, its velocity windows' and its approval's). */
  clock(): Date;
}

/** What history says about a request: memory's nearest cases and the velocity measures' values. */
interface History {
  readonly memory: MemoryEvidence | undefined;
  readonly velocity: VelocityValues;
}

/**
 * A decision, stage by stage: prepare (validate, redact, derive, digest), then history (velocity and memory,
 * read together), evaluate, arbitrate and record (pure, in completeDecision), approval, and store. The
 * request goes down once; only the ports touch the outside world. `decide` resolves once the record is
 * durable; when a port fails it answers ABSTAIN with `STORAGE_UNAVAILABLE` and stores nothing.
 */
export class DecisionPipeline {
  private readonly ports: DecisionPorts;
  private readonly redactionProfile: RedactionProfile;
  private readonly knownPolicies = new Map<string, Promise<void>>();

  constructor(ports: DecisionPorts, redactionProfile: RedactionProfile = "default") {
    this.ports = ports;
    this.redactionProfile = redactionProfile;
  }

  async decide(
    request: JsonValue,
    options: Omit<DecideOptions, "redactionProfile"> = {},
  ): Promise<Result<StoredDecision>> {
    const decideOptions = {
      redactionProfile: this.redactionProfile,
      ...options,
      now: options.now ?? this.ports.clock(),
    };
    const prepared = prepareDecision(request, decideOptions);
    if (!prepared.ok) return prepared;
    const policy = this.ports.policyFor(prepared.value.tenantId);
    let history: History;
    try {
      history = await this.history(prepared.value, policy, decideOptions.now);
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      return unavailable(completeDecision(prepared.value, policy, undefined, decideOptions), policy);
    }
    const decision = completeDecision(
      prepared.value,
      policy,
      history.memory,
      decideOptions,
      history.velocity,
    );
    try {
      return await this.store(decision, policy, prepared.value.tenantId, decideOptions);
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      return unavailable(decision, policy);
    }
  }

  /** The velocity and memory stages, together: both only read history. */
  private async history(prepared: PreparedDecision, policy: Policy, now: Date): Promise<History> {
    const request = prepared.redaction.request;
    const [memory, velocity] = await Promise.all([
      this.ports.memory.consult(
        prepared.tenantId,
        prepared.derived.action_type,
        request,
        policy.model.memory,
      ),
      this.ports.velocity.measure(policy, prepared.tenantId, request, now),
    ]);
    return { memory, velocity };
  }

  /** The approval stage and the record's storage, with the approval it opens in the same transaction. */
  private async store(
    decision: Decision,
    policy: Policy,
    tenantId: string,
    options: DecideOptions & { readonly now: Date },
  ): Promise<Result<StoredDecision>> {
    await this.rememberPolicy(policy);
    const json = recordJson(decision);
    const opening = approvalOpening(decision.record, json, policy, options.now, options.requester);
    const result = await this.ports.decisions.put(decision.record, json, opening);
    switch (result.status) {
      case "stored":
        await this.ports.velocity.observe(policy, tenantId, decision.record);
        return ok({
          record: decision.record,
          status: "stored",
          json,
          ...(opening ? { approval: opening.approval } : {}),
        });
      case "duplicate": {
        const approval = await this.ports.approvals.findByDecision(result.record.decision_id);
        return ok({
          record: result.record,
          status: "duplicate",
          json: canonicalJson(result.record),
          ...(approval ? { approval } : {}),
        });
      }
      case "conflict":
        return fail("conflict", [
          {
            code: "request_id_conflict",
            message: `request_id '${String(decision.request.request_id)}' was already used for a different request (decision ${result.existingDecisionId})`,
            pointer: "/request_id",
            expected: "a new request_id, or the same request as before",
          },
        ]);
    }
  }

  private rememberPolicy(policy: Policy): Promise<void> {
    let stored = this.knownPolicies.get(policy.hash);
    if (!stored) {
      stored = this.ports.policies.putSnapshot({
        policyHash: policy.hash,
        policyId: policy.model.policyId,
        policyVersion: policy.model.policyVersion,
        text: policy.text,
      });
      stored.catch(() => this.knownPolicies.delete(policy.hash));
      this.knownPolicies.set(policy.hash, stored);
    }
    return stored;
  }
}

/** The fail-closed answer for a decision that could not be stored. */
function unavailable(decision: Decision, policy: Policy): Result<StoredDecision> {
  const record = storageUnavailableRecord(decision, policy);
  return ok({ record, status: "unavailable", json: canonicalJson(record) });
}
