/**
 * Replay: checks a pack's digests offline, then re-runs the decision — the policy in the pack evaluated on
 * the request as persisted, memory as the record's snapshot recorded it (no live memory) — and compares what
 * it decides with what was recorded.
 */
import type { KeyObject } from "node:crypto";
import { digestJson } from "../core/digest.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import { recordedVelocity } from "../domain/velocity.ts";
import { completeDecision, preparePersisted } from "../engine/decide.ts";
import { neighboursFromSnapshot } from "../memory/arbitrate.ts";
import type { MemoryEvidence } from "../memory/recall.ts";
import { loadPolicy, type PolicyLimits } from "../policy/policy.ts";
import {
  MEMORY_FILE,
  MEMORY_SCHEMA,
  type PackContents,
  POLICY_FILE,
  PROOF_FILE,
  packJson,
  RECORD_FILE,
  REQUEST_FILE,
  sameJson,
} from "./pack.ts";
import { proofFailures, proofFromJson } from "./proof.ts";

/** One offline check of the pack. */
export interface ReplayCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** A field whose replayed value differs from the recorded one. */
export interface ReplayMismatch {
  readonly field: string;
  readonly recorded: JsonValue;
  readonly replayed: JsonValue;
}

export interface ReplayReport {
  readonly decisionId: string;
  readonly createdAt: string;
  readonly engineVersion: string;
  readonly policy: { readonly id: string; readonly version: string; readonly hash: string };
  readonly recordedVerdict: string;
  readonly replayedVerdict: string;
  readonly reasonCodes: readonly string[];
  readonly checks: readonly ReplayCheck[];
  readonly mismatches: readonly ReplayMismatch[];
  /** Whether the pack proves where it comes from (see the `origin` check). */
  readonly origin: ReplayOrigin;
  /** True when every check passed and the re-run decided exactly what was recorded. */
  readonly identical: boolean;
}

/** The fields the re-run must reproduce. */
export const REPLAYED_FIELDS = [
  "verdict",
  "reason_codes",
  "matched_rules",
  "queries",
  "obligations",
] as const;

function malformed<T>(problems: readonly Problem[]): Result<T> {
  return fail("invalid_request", problems);
}

function recordShape(value: JsonValue, file: string): Result<DecisionRecord> {
  const where = `${file}:${RECORD_FILE}`;
  if (!isJsonObject(value))
    return malformed([{ code: "record", message: "not a JSON object", file: where, pointer: "" }]);
  const problems: Problem[] = [];
  const want = (pointer: string, holds: boolean, expected: string) => {
    if (!holds)
      problems.push({
        code: "record",
        message: `missing or wrong ${pointer}`,
        file: where,
        pointer,
        expected,
      });
  };
  const policy = value.policy;
  const determinism = value.determinism;
  want("/schema_version", value.schema_version === "decision_record.v1", "decision_record.v1");
  want("/decision_id", typeof value.decision_id === "string", "a string");
  want(
    "/created_at",
    typeof value.created_at === "string" && !Number.isNaN(Date.parse(value.created_at)),
    "an ISO 8601 time",
  );
  want("/request", isJsonObject(value.request), "the request object");
  want("/policy/policy_hash", isJsonObject(policy) && typeof policy.policy_hash === "string", "sha256:…");
  want(
    "/determinism/inputs_digest",
    isJsonObject(determinism) && typeof determinism.inputs_digest === "string",
    "sha256:…",
  );
  want("/verdict", typeof value.verdict === "string", "a verdict");
  want("/risk_signals", isJsonObject(value.risk_signals), "an object");
  for (const field of ["reason_codes", "matched_rules", "queries", "obligations"])
    want(`/${field}`, Array.isArray(value[field]), "a list");
  return problems.length > 0 ? malformed(problems) : ok(value as DecisionRecord);
}

/** The memory a record used, re-read from its snapshot, and the check of the snapshot's digest. */
function recordedMemory(
  record: DecisionRecord,
  contents: PackContents,
  file: string,
): Result<{ evidence: MemoryEvidence | undefined; check: ReplayCheck }> {
  const snapshot = record.determinism.memory;
  const memoryFile = contents.files.has(MEMORY_FILE) ? packJson(contents, MEMORY_FILE, file) : undefined;
  if (memoryFile && !memoryFile.ok) return memoryFile;
  const memoryDocument = memoryFile?.value;
  if (
    memoryDocument !== undefined &&
    !(isJsonObject(memoryDocument) && memoryDocument.schema_version === MEMORY_SCHEMA)
  )
    return malformed([
      {
        code: "memory",
        message: `not a ${MEMORY_SCHEMA}`,
        file: `${file}:${MEMORY_FILE}`,
        pointer: "/schema_version",
      },
    ]);
  const packed = isJsonObject(memoryDocument) ? (memoryDocument.snapshot ?? null) : undefined;
  if (snapshot === undefined) {
    const consistent = packed === undefined || packed === null;
    return ok({
      evidence: undefined,
      check: {
        name: "memory snapshot",
        ok: consistent,
        detail: consistent
          ? "none: memory found no labelled neighbour"
          : `${MEMORY_FILE} has a snapshot the record does not`,
      },
    });
  }
  const read = neighboursFromSnapshot(snapshot, "/determinism/memory");
  if (!read.ok)
    return malformed(read.problems.map((problem) => ({ ...problem, file: `${file}:${RECORD_FILE}` })));
  const { snapshot_digest: digest, ...rest } = isJsonObject(snapshot) ? snapshot : ({} as JsonObject);
  const recomputed = digestJson(rest);
  const matchesFile = packed === undefined || sameJson(packed, snapshot);
  const summaries = new Map<string, string>();
  for (const side of ["failure_similarity", "success_similarity"]) {
    const similarity = record.risk_signals[side];
    const topK = isJsonObject(similarity) && Array.isArray(similarity.top_k) ? similarity.top_k : [];
    for (const hit of topK)
      if (isJsonObject(hit) && typeof hit.id === "string")
        summaries.set(hit.id, typeof hit.summary === "string" ? hit.summary : "");
  }
  const hits = read.value.neighbours.failure.length + read.value.neighbours.success.length;
  return ok({
    evidence: { ...read.value, summaries },
    check: {
      name: "memory snapshot",
      ok: recomputed === digest && matchesFile,
      detail:
        recomputed !== digest
          ? `snapshot_digest ${String(digest)} but the snapshot hashes to ${recomputed}`
          : matchesFile
            ? `${recomputed} (${hits} labelled neighbour${hits === 1 ? "" : "s"})`
            : `${MEMORY_FILE} differs from the record's snapshot`,
    },
  });
}

/** Whether a pack proves where it comes from, as far as the replay could tell. */
export type ReplayOrigin = "verified" | "unchecked" | "unsigned" | "failed";

/** The origin check of a pack: its proof held to the signer's public key, when one is given. */
function originCheck(
  contents: PackContents,
  record: DecisionRecord,
  file: string,
  publicKeys: readonly KeyObject[],
): Result<{ origin: ReplayOrigin; check: ReplayCheck }> {
  const check = (origin: ReplayOrigin, detail: string) =>
    ok({ origin, check: { name: "origin", ok: origin !== "failed", detail } });
  if (!contents.files.has(PROOF_FILE))
    return publicKeys.length > 0
      ? check("failed", "the pack carries no signed checkpoint, so nothing proves the log it came from")
      : check(
          "unsigned",
          "unsigned: the pack proves internal consistency only (its digests agree), not that a Lumyn log holds it",
        );
  const document = packJson(contents, PROOF_FILE, file);
  if (!document.ok) return document;
  const proof = proofFromJson(document.value, `${file}:${PROOF_FILE}`);
  if (!proof.ok) return proof;
  const { checkpoint } = proof.value;
  if (publicKeys.length === 0)
    return check(
      "unchecked",
      `signed by key ${checkpoint.keyId} (checkpoint at entry ${checkpoint.seq}, ${checkpoint.signedAt}): pass --public-key to check it`,
    );
  const failures = proofFailures(proof.value, record, publicKeys);
  return failures.length > 0
    ? check("failed", failures.join("; "))
    : check(
        "verified",
        `entry ${proof.value.seq} of the log signed by key ${checkpoint.keyId} at entry ${checkpoint.seq} (${checkpoint.signedAt})`,
      );
}

export interface ReplayOptions {
  /** The public keys of the log's signer (current and rotated out): the pack's proof is checked against them. */
  readonly publicKeys?: readonly KeyObject[];
  /** The limits the pack's policy is held to. */
  readonly limits?: PolicyLimits;
}

/**
 * Checks a pack and re-runs its decision, its policy held to `options.limits` (and its origin to
 * `options.publicKeys`). A failure result means the pack is malformed (exit 2); a report with
 * `identical: false` names each check that failed and each field that differs (exit 1).
 */
export function replayPack(
  contents: PackContents,
  file: string,
  options: ReplayOptions = {},
): Result<ReplayReport> {
  const recordValue = packJson(contents, RECORD_FILE, file);
  if (!recordValue.ok) return recordValue;
  const shaped = recordShape(recordValue.value, file);
  if (!shaped.ok) return shaped;
  const record = shaped.value;
  const requestValue = packJson(contents, REQUEST_FILE, file);
  if (!requestValue.ok) return requestValue;
  const policyText = contents.files.get(POLICY_FILE) ?? "";
  const policy = loadPolicy(policyText, { file: `${file}:${POLICY_FILE}`, ...options.limits });
  if (!policy.ok) return policy;
  const prepared = preparePersisted(record.request);
  if (!prepared.ok)
    return malformed(
      prepared.problems.map((problem) => ({
        ...problem,
        file: `${file}:${RECORD_FILE}`,
        pointer: `/request${problem.pointer ?? ""}`,
      })),
    );
  const memory = recordedMemory(record, contents, file);
  if (!memory.ok) return memory;
  const velocity = recordedVelocity(policy.value.model.velocity, record.determinism.velocity);
  const origin = originCheck(contents, record, file, options.publicKeys ?? []);
  if (!origin.ok) return origin;

  const checks: ReplayCheck[] = [
    {
      name: "manifest",
      ok: true,
      detail: contents.manifest
        ? "every file matches its sha256"
        : "none (packs by Lumyn 1.3.6 have none): files checked by their digests below",
    },
    {
      name: "policy_hash",
      ok: policy.value.hash === record.policy.policy_hash,
      detail:
        policy.value.hash === record.policy.policy_hash
          ? `${POLICY_FILE} hashes to ${policy.value.hash}`
          : `${POLICY_FILE} hashes to ${policy.value.hash}, the record names ${record.policy.policy_hash}`,
    },
    {
      name: "request",
      ok: sameJson(requestValue.value, record.request),
      detail: sameJson(requestValue.value, record.request)
        ? `${REQUEST_FILE} is the record's request`
        : `${REQUEST_FILE} differs from the record's request`,
    },
    {
      name: "inputs_digest",
      ok: prepared.value.inputsDigest === record.determinism.inputs_digest,
      detail:
        prepared.value.inputsDigest === record.determinism.inputs_digest
          ? `the request hashes to ${prepared.value.inputsDigest}`
          : `the request hashes to ${prepared.value.inputsDigest}, the record says ${record.determinism.inputs_digest}`,
    },
    memory.value.check,
    ...(policy.value.model.velocity.length > 0
      ? [
          {
            name: "velocity",
            ok: velocity.missing.length === 0,
            detail:
              velocity.missing.length === 0
                ? `the record's values of ${policy.value.model.velocity.map((spec) => spec.name).join(", ")} (no live history read)`
                : `the record has no value for ${velocity.missing.join(", ")} under the policy's definition`,
          },
        ]
      : []),
    origin.value.check,
  ];

  const replayed = completeDecision(
    prepared.value,
    policy.value,
    memory.value.evidence,
    { decisionId: record.decision_id, now: new Date(record.created_at) },
    velocity.values,
  ).record;
  const mismatches: ReplayMismatch[] = [];
  for (const field of REPLAYED_FIELDS) {
    const recorded = record[field] as JsonValue;
    const again = replayed[field] as JsonValue;
    if (!sameJson(recorded, again)) mismatches.push({ field, recorded, replayed: again });
  }
  return ok({
    decisionId: record.decision_id,
    createdAt: record.created_at,
    engineVersion: String(record.determinism.engine_version ?? "unknown"),
    policy: {
      id: String(record.policy.policy_id),
      version: String(record.policy.policy_version),
      hash: record.policy.policy_hash,
    },
    recordedVerdict: record.verdict,
    replayedVerdict: replayed.verdict,
    reasonCodes: record.reason_codes,
    checks,
    mismatches,
    origin: origin.value.origin,
    identical: mismatches.length === 0 && checks.every((check) => check.ok),
  });
}
