/**
 * The proof a decision pack carries of where it comes from: the decision's entry in the audit log, a checkpoint
 * that signs the log's Merkle tree (RFC 9162) at or after that entry, and the audit path from the entry to the
 * tree's root. Anyone with the signer's public key can check it offline; re-forging a pack (policy, record,
 * manifest recomputed) does not make a proof, since the signature covers the root.
 */
import type { KeyObject } from "node:crypto";
import { canonicalJson, isJsonObject, type JsonObject, type JsonValue } from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import {
  type ChainCheckpoint,
  chainHash,
  checkpointFromJson,
  checkpointJson,
  checkpointSigned,
  decisionEntry,
  keyId,
} from "../domain/chain.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import { inclusionProof, verifyInclusion } from "../domain/merkle.ts";
import type { AuditLog } from "../store/audit-log.ts";

export const PROOF_SCHEMA = "lumyn_pack_proof.v1";

/** That a decision's entry is part of a log a signed checkpoint covers. */
export interface EntryProof {
  /** The decision's entry: its position, and the chain's hash before it. */
  readonly seq: number;
  readonly previousHash: string;
  /** A checkpoint with a tree root, at or after the entry. */
  readonly checkpoint: ChainCheckpoint;
  /** The sibling hashes from the entry's leaf up to the checkpoint's root. */
  readonly auditPath: readonly string[];
}

/**
 * The proof of a stored decision's entry, against the latest checkpoint with a tree root (signing one now
 * when none covers the entry yet); undefined when the store signs nothing (it has no signing key).
 */
export async function entryProof(log: AuditLog, decisionId: string): Promise<EntryProof | undefined> {
  const entry = await log.entryOf("decision", decisionId);
  if (!entry) return undefined;
  const covering = async () =>
    (await log.checkpoints(entry.seq - 1)).filter((c) => c.treeRoot !== undefined).at(-1);
  let checkpoint = await covering();
  if (!checkpoint) {
    await log.sign();
    checkpoint = await covering();
  }
  if (!checkpoint) return undefined;
  const leaves = await log.hashes(checkpoint.seq);
  return {
    seq: entry.seq,
    previousHash: entry.previousHash,
    checkpoint,
    auditPath: inclusionProof(leaves, entry.seq - 1),
  };
}

export function proofJson(proof: EntryProof): JsonObject {
  return {
    schema_version: PROOF_SCHEMA,
    entry: { kind: "decision", seq: proof.seq, previous_hash: proof.previousHash },
    checkpoint: checkpointJson(proof.checkpoint),
    audit_path: [...proof.auditPath],
  };
}

/** A pack's proof from its document, or what is wrong with its shape. */
export function proofFromJson(value: JsonValue, file: string): Result<EntryProof> {
  const bad = (pointer: string, message: string): Result<EntryProof> =>
    fail("invalid_request", [{ code: "proof", message, pointer, file }]);
  if (!isJsonObject(value) || value.schema_version !== PROOF_SCHEMA)
    return bad("/schema_version", `not a ${PROOF_SCHEMA}`);
  const entry = value.entry;
  if (!isJsonObject(entry) || typeof entry.seq !== "number" || typeof entry.previous_hash !== "string")
    return bad("/entry", "entry must be {kind, seq, previous_hash}");
  const path = value.audit_path;
  if (!Array.isArray(path) || path.some((hash) => typeof hash !== "string" || !/^[0-9a-f]{64}$/.test(hash)))
    return bad("/audit_path", "audit_path must be a list of Merkle tree hashes (64 hex digits each)");
  const checkpoint = checkpointFromJson(value.checkpoint ?? null, file);
  if (!checkpoint.ok)
    return fail(
      "invalid_request",
      checkpoint.problems.map((problem: Problem) => ({
        ...problem,
        pointer: `/checkpoint${problem.pointer}`,
      })),
    );
  return ok({
    seq: entry.seq,
    previousHash: entry.previous_hash,
    checkpoint: checkpoint.value,
    auditPath: path as string[],
  });
}

/**
 * What fails when a pack's record is held to its proof and the signer's public keys (nothing when it holds):
 * the checkpoint must be signed by that key and sign a tree root, and the record's entry, rebuilt from the
 * record, must be a leaf of that tree at its position.
 */
export function proofFailures(
  proof: EntryProof,
  record: DecisionRecord,
  publicKeys: readonly KeyObject[],
): string[] {
  const { checkpoint } = proof;
  const signer = publicKeys.find((key) => keyId(key) === checkpoint.keyId);
  if (!signer)
    return [
      `the checkpoint was signed by key ${checkpoint.keyId}, not by ${publicKeys.map(keyId).join(" or ")}`,
    ];
  if (!checkpointSigned(checkpoint, signer)) return ["the checkpoint's signature is not valid"];
  if (checkpoint.treeRoot === undefined) return ["the checkpoint signs no tree root"];
  if (proof.seq > checkpoint.seq)
    return [
      `the entry (${proof.seq}) is after the checkpoint (${checkpoint.seq}): the checkpoint cannot cover it`,
    ];
  const entryHash = chainHash(proof.previousHash, decisionEntry(proof.seq, canonicalJson(record)));
  if (!verifyInclusion(entryHash, proof.seq - 1, checkpoint.seq, proof.auditPath, checkpoint.treeRoot))
    return [
      `the record is not entry ${proof.seq} of the log the checkpoint signed (the audit path does not lead to its tree root)`,
    ];
  return [];
}
