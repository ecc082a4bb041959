/**
 * The tamper-evident log. Every stored decision and event is an entry; entry n's hash is
 * `sha256(hash(n-1) ‖ canonical bytes of entry n)`, the first entry following {@link GENESIS_HASH}. The
 * canonical bytes name the entry's position, so moving an entry changes them too. Checking the chain needs
 * only the stored rows: the hashes are recomputed and compared, and the first entry that differs is where the
 * log was edited, cut or rearranged. Signed checkpoints (Ed25519) pin the head, so that a log rewritten from
 * some entry on, hashes and all, no longer matches what was signed.
 */
import { createPrivateKey, createPublicKey, hash, type KeyObject, sign, verify } from "node:crypto";
import { canonicalJson, isJsonObject, type JsonObject, type JsonValue, RawJson } from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import { MerkleFrontier } from "./merkle.ts";

export const GENESIS_HASH = `sha256:${"0".repeat(64)}`;
/** Checkpoints sign the head and the root of the Merkle tree over the entries (src/domain/merkle.ts). */
export const CHECKPOINT_SCHEMA = "lumyn_chain_checkpoint.v2";
/** Checkpoints made before the Merkle tree signed the head alone. */
export const HEAD_CHECKPOINT_SCHEMA = "lumyn_chain_checkpoint.v1";
/** The head is signed whenever the chain crosses a multiple of this many entries, and when a store closes. */
export const DEFAULT_CHECKPOINT_EVERY = 1_000;

/**
 * What an entry covers: a decision, an event about one (labels, approvals' votes, transitions and versions),
 * a policy's text (the snapshot any record's policy is recovered from) or a change to the policy registry.
 */
export type ChainKind = "decision" | "event" | "policy" | "policy_event";

/** An event as the chain covers it: every stored column. */
export interface ChainedEvent {
  readonly eventId: string;
  readonly decisionId: string;
  readonly type: string;
  readonly createdAt: string;
  /** The event's data as stored (canonical JSON). */
  readonly dataJson: string;
}

/** A policy snapshot as the chain covers it: its identity, and a digest of its exact text. */
export interface ChainedPolicy {
  readonly policyHash: string;
  readonly policyId: string;
  readonly policyVersion: string;
  readonly text: string;
  readonly createdAt: string;
}

/** A registry event as the chain covers it: every stored column. */
export interface ChainedPolicyEvent {
  readonly seq: number;
  readonly tenantId: string;
  readonly type: string;
  readonly policyHash: string | null;
  readonly activeHash: string | null;
  /** The event's detail as stored (canonical JSON). */
  readonly detailJson: string;
  readonly createdAt: string;
}

/** The canonical bytes of a decision entry: its position and the record's canonical JSON as stored. */
export function decisionEntry(seq: number, recordJson: string): string {
  return `{"kind":"decision","record":${recordJson},"seq":${seq}}`;
}

/** The canonical bytes of an event entry: its position and every stored field of the event. */
export function eventEntry(seq: number, event: ChainedEvent): string {
  return canonicalJson({
    event: {
      created_at: event.createdAt,
      data: new RawJson(event.dataJson),
      decision_id: event.decisionId,
      event_id: event.eventId,
      type: event.type,
    },
    kind: "event",
    seq,
  });
}

/** The canonical bytes of a policy entry: its position, the snapshot's identity and its text's sha256. */
export function policyEntry(seq: number, policy: ChainedPolicy): string {
  return canonicalJson({
    kind: "policy",
    policy: {
      created_at: policy.createdAt,
      policy_hash: policy.policyHash,
      policy_id: policy.policyId,
      policy_version: policy.policyVersion,
      text_sha256: `sha256:${hash("sha256", policy.text, "hex")}`,
    },
    seq,
  });
}

/** The canonical bytes of a registry entry: its position and every stored field of the registry event. */
export function policyEventEntry(seq: number, event: ChainedPolicyEvent): string {
  return canonicalJson({
    kind: "policy_event",
    policy_event: {
      active_hash: event.activeHash,
      created_at: event.createdAt,
      detail: new RawJson(event.detailJson),
      policy_hash: event.policyHash,
      seq: event.seq,
      tenant_id: event.tenantId,
      type: event.type,
    },
    seq,
  });
}

/** A row an entry covers, as stored: its bytes are rebuilt from it, so an edited row no longer hashes to its entry. */
export type ChainedRow =
  | { readonly kind: "decision"; readonly recordJson: string }
  | { readonly kind: "event"; readonly event: ChainedEvent }
  | { readonly kind: "policy"; readonly policy: ChainedPolicy }
  | { readonly kind: "policy_event"; readonly policyEvent: ChainedPolicyEvent };

/** The canonical bytes of the entry at `seq` for a row. */
export function chainEntry(seq: number, row: ChainedRow): string {
  switch (row.kind) {
    case "decision":
      return decisionEntry(seq, row.recordJson);
    case "event":
      return eventEntry(seq, row.event);
    case "policy":
      return policyEntry(seq, row.policy);
    case "policy_event":
      return policyEventEntry(seq, row.policyEvent);
  }
}

export function chainHash(previousHash: string, entry: string): string {
  return `sha256:${hash("sha256", previousHash + entry, "hex")}`;
}

/** One stored entry, with its canonical bytes rebuilt from the row it names (undefined when that row is gone). */
export interface ChainLink {
  readonly seq: number;
  readonly kind: ChainKind;
  readonly refId: string;
  readonly hash: string;
  readonly entry: string | undefined;
}

/** An entry's place in the chain: its position, its hash, and the hash of the entry before it. */
export interface ChainPosition {
  readonly seq: number;
  readonly hash: string;
  readonly previousHash: string;
}

export interface ChainCheckpoint {
  readonly seq: number;
  readonly headHash: string;
  /** The root of the Merkle tree over entries 1..seq (absent in checkpoints made before the tree). */
  readonly treeRoot?: string;
  readonly keyId: string;
  /** Base64 Ed25519 signature of {@link checkpointMessage}. */
  readonly signature: string;
  readonly signedAt: string;
}

export type ChainBreakReason =
  | "edited"
  | "missing_entry"
  | "missing_row"
  | "not_chained"
  | "truncated"
  | "rewritten"
  | "bad_signature"
  | "unknown_key"
  | "checkpoint_deleted"
  | "checkpoint_missing"
  | "inconsistent";

/**
 * A stored row that disagrees with what the log covers: a decision's indexed columns or reason codes against
 * its chained record, an approval against its logged versions, a memory case against its label event. The
 * rows are derived state, kept for speed; each was written outside Lumyn when it disagrees.
 */
export interface Inconsistency {
  readonly kind: "decision" | "approval" | "memory_case";
  readonly id: string;
  readonly message: string;
}

export interface ChainBreak {
  readonly seq: number;
  readonly reason: ChainBreakReason;
  readonly message: string;
  readonly kind?: ChainKind;
  readonly refId?: string;
}

export interface ChainReport {
  readonly length: number;
  readonly headHash: string;
  readonly checkpoints: { readonly total: number; readonly verified: number };
  /** Checkpoints anchored outside the store that were checked against it. */
  readonly anchors?: number;
  /** The first place where the log is not what was written; absent when the chain holds. */
  readonly broken?: ChainBreak;
}

/** The bytes a checkpoint signs: its position, the chain's head there and, since v2, the tree's root. */
export function checkpointMessage(
  checkpoint: Pick<ChainCheckpoint, "seq" | "headHash" | "treeRoot">,
): string {
  const { seq, headHash, treeRoot } = checkpoint;
  return treeRoot === undefined
    ? canonicalJson({ head_hash: headHash, schema_version: HEAD_CHECKPOINT_SCHEMA, seq })
    : canonicalJson({ head_hash: headHash, schema_version: CHECKPOINT_SCHEMA, seq, tree_root: treeRoot });
}

/** A public key's id: the sha256 of its SubjectPublicKeyInfo (DER). */
export function keyId(publicKey: KeyObject): string {
  return `sha256:${hash("sha256", publicKey.export({ type: "spki", format: "der" }), "hex")}`;
}

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly keyId: string;
}

/** Reads an Ed25519 private key (PKCS#8 PEM); throws with the reason when it is not one. */
export function signingKeyFromPem(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "ed25519")
    throw new Error(`the signing key is ${privateKey.asymmetricKeyType}, not ed25519`);
  return { privateKey, keyId: keyId(createPublicKey(privateKey)) };
}

export function signCheckpoint(
  key: SigningKey,
  seq: number,
  headHash: string,
  treeRoot: string,
  signedAt: string,
): ChainCheckpoint {
  const signature = sign(null, Buffer.from(checkpointMessage({ seq, headHash, treeRoot })), key.privateKey);
  return { seq, headHash, treeRoot, keyId: key.keyId, signature: signature.toString("base64"), signedAt };
}

/** Whether a checkpoint's signature is the key's over its message. */
export function checkpointSigned(checkpoint: ChainCheckpoint, publicKey: KeyObject): boolean {
  return verify(
    null,
    Buffer.from(checkpointMessage(checkpoint)),
    publicKey,
    Buffer.from(checkpoint.signature, "base64"),
  );
}

/** What a walk is to hold the log to, beyond its own links. */
export interface VerifyOptions {
  /** Checkpoints kept outside the database (files, a witness): each must still be in the log, and signed. */
  readonly anchors?: readonly ChainCheckpoint[];
  /**
   * The signer's public keys (the current one and those rotated out): every checkpoint must be signed by one
   * of them. Without any, checkpoints are counted, not verified.
   */
  readonly publicKeys?: readonly KeyObject[];
  /**
   * With a signing key configured, the head is signed every this many entries: a stretch of the log this
   * long twice over without a checkpoint means checkpoints were deleted (or signing was switched off).
   */
  readonly checkpointEvery?: number;
}

/**
 * Walks the chain in order, one link at a time (the log is streamed, never held), and stops at the first
 * break. {@link finish} then checks what only the whole walk can: rows outside the chain and the checkpoints,
 * those in the store and those anchored outside it.
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private head = GENESIS_HASH;
  private broken: ChainBreak | undefined;
  private readonly checkpoints: readonly ChainCheckpoint[];
  private readonly anchors: readonly ChainCheckpoint[];
  private readonly options: VerifyOptions;
  private readonly frontier = new MerkleFrontier();
  /** The head and the tree's root at every checkpointed position, collected on the way. */
  private readonly seen = new Map<number, { head: string; root: string } | undefined>();

  constructor(checkpoints: readonly ChainCheckpoint[], options: VerifyOptions = {}) {
    this.checkpoints = [...checkpoints].sort((a, b) => a.seq - b.seq);
    this.anchors = [...(options.anchors ?? [])].sort((a, b) => a.seq - b.seq);
    this.options = options;
    for (const checkpoint of [...this.checkpoints, ...this.anchors]) this.seen.set(checkpoint.seq, undefined);
  }

  /** False once the chain is broken: the rest need not be read. */
  get intact(): boolean {
    return this.broken === undefined;
  }

  add(link: ChainLink): boolean {
    if (this.broken) return false;
    const where = `entry ${link.seq} (${link.kind} ${link.refId})`;
    if (link.seq !== this.expectedSeq) {
      this.broken = {
        seq: this.expectedSeq,
        reason: "missing_entry",
        message: `entry ${this.expectedSeq} is missing: the next entry is ${link.seq} (deleted from the log)`,
      };
      return false;
    }
    if (link.entry === undefined) {
      this.broken = {
        seq: link.seq,
        reason: "missing_row",
        kind: link.kind,
        refId: link.refId,
        message: `${where}: the ${link.kind} is no longer stored (deleted)`,
      };
      return false;
    }
    const expected = chainHash(this.head, link.entry);
    if (expected !== link.hash) {
      this.broken = {
        seq: link.seq,
        reason: "edited",
        kind: link.kind,
        refId: link.refId,
        message: `${where} does not match its hash: it was edited, or entries were inserted or reordered before it`,
      };
      return false;
    }
    this.head = expected;
    this.frontier.append(expected);
    this.expectedSeq++;
    if (this.seen.has(link.seq)) this.seen.set(link.seq, { head: expected, root: this.frontier.root() });
    return true;
  }

  /**
   * The verdict on the whole log. `unchained`: stored rows that no entry covers (inserted behind the log's
   * back); `inconsistent`: derived rows that disagree with what the log covers (edited behind its back).
   */
  finish(
    unchained: readonly { kind: ChainKind; id: string }[],
    inconsistent: readonly Inconsistency[] = [],
  ): ChainReport {
    const length = this.expectedSeq - 1;
    const report = (broken: ChainBreak | undefined, verified: number): ChainReport => ({
      length,
      headHash: this.head,
      checkpoints: { total: this.checkpoints.length, verified },
      ...(this.anchors.length > 0 ? { anchors: this.anchors.length } : {}),
      ...(broken ? { broken } : {}),
    });
    if (this.broken) return report(this.broken, 0);
    // What the signatures prove comes first: a truncated or rewritten log explains the rows it no longer covers.
    let verified = 0;
    for (const checkpoint of this.checkpoints) {
      const broken = this.checkCheckpoint(checkpoint, length, "the checkpoint");
      if (broken) return report(broken, verified);
      if (this.options.publicKeys?.length) verified++;
    }
    for (const anchor of this.anchors) {
      const broken = this.checkCheckpoint(anchor, length, "the anchored checkpoint");
      if (broken) return report(broken, verified);
    }
    const stored = new Set(this.checkpoints.map((checkpoint) => checkpoint.seq));
    for (const anchor of this.anchors) {
      if (!stored.has(anchor.seq))
        return report(
          {
            seq: anchor.seq,
            reason: "checkpoint_deleted",
            message: `the checkpoint at entry ${anchor.seq}, anchored outside the store, is no longer in the store: checkpoints were deleted`,
          },
          verified,
        );
    }
    const stray = unchained[0];
    if (stray) {
      return report(
        {
          seq: length + 1,
          reason: "not_chained",
          kind: stray.kind,
          refId: stray.id,
          message: `${stray.kind} ${stray.id} is stored but not in the log (inserted outside Lumyn)${unchained.length > 1 ? `, and ${unchained.length - 1} more` : ""}`,
        },
        verified,
      );
    }
    const edited = inconsistent[0];
    if (edited) {
      return report(
        {
          seq: length + 1,
          reason: "inconsistent",
          refId: edited.id,
          message: `${edited.message}${inconsistent.length > 1 ? `; and ${inconsistent.length - 1} more rows` : ""}: changed outside Lumyn`,
        },
        verified,
      );
    }
    const gap = this.unsignedStretch(length);
    return report(gap, verified);
  }

  /** Why a checkpoint does not hold over this log, if it does not. */
  private checkCheckpoint(checkpoint: ChainCheckpoint, length: number, what: string): ChainBreak | undefined {
    const at = checkpoint.seq;
    if (at > length)
      return {
        seq: at,
        reason: "truncated",
        message: `the log ends at entry ${length} but ${what} covers entry ${at}: entries were deleted from the end`,
      };
    const seen = this.seen.get(at);
    if (seen?.head !== checkpoint.headHash)
      return {
        seq: at,
        reason: "rewritten",
        message: `entry ${at}'s hash differs from ${what} signed at ${checkpoint.signedAt}: the log was rewritten`,
      };
    if (checkpoint.treeRoot !== undefined && seen.root !== checkpoint.treeRoot)
      return {
        seq: at,
        reason: "rewritten",
        message: `the tree of entries 1 to ${at} differs from ${what} signed at ${checkpoint.signedAt}: the log was rewritten`,
      };
    const publicKeys = this.options.publicKeys ?? [];
    if (publicKeys.length === 0) return undefined;
    const signer = publicKeys.find((key) => keyId(key) === checkpoint.keyId);
    if (!signer)
      return {
        seq: at,
        reason: "unknown_key",
        message: `${what} at entry ${at} was signed by key ${checkpoint.keyId}, not by ${publicKeys.map(keyId).join(" or ")}`,
      };
    if (!checkpointSigned(checkpoint, signer))
      return { seq: at, reason: "bad_signature", message: `${what} at entry ${at} has an invalid signature` };
    return undefined;
  }

  /**
   * With a signing key, the writer signs the head whenever a transaction crosses a multiple of
   * `checkpointEvery` entries, and when a store closes: a longer stretch without one (between two
   * checkpoints, or from the last to the head), or no checkpoint at all in a log that long, means checkpoint
   * rows were deleted. Entries before the first checkpoint may predate the key: only anchors outside the
   * store speak for them.
   */
  private unsignedStretch(length: number): ChainBreak | undefined {
    const every = this.options.checkpointEvery;
    if (every === undefined) return undefined;
    // One stretch of `every`, plus the batch that crossed its end: a batch is at most `every` entries.
    const allowed = 2 * every;
    const missing = (from: number, to: number): ChainBreak => ({
      seq: from,
      reason: "checkpoint_missing",
      message: `entries ${from} to ${to} (${to - from + 1}) have no signed checkpoint, though the head is signed every ${every} entries: checkpoints were deleted, or the log was written without its signing key`,
    });
    const signed = this.checkpoints.map((checkpoint) => checkpoint.seq);
    if (signed.length === 0) return length > allowed ? missing(1, length) : undefined;
    for (const [i, seq] of [...signed.slice(1), length].entries()) {
      const previous = signed[i] as number;
      if (seq - previous > allowed) return missing(previous + 1, seq);
    }
    return undefined;
  }
}

/** A checkpoint as a document (a file kept outside the store, a pack's proof): the form `lumyn checkpoint export` writes. */
export function checkpointJson(checkpoint: ChainCheckpoint): JsonObject {
  return {
    schema_version: checkpoint.treeRoot === undefined ? HEAD_CHECKPOINT_SCHEMA : CHECKPOINT_SCHEMA,
    seq: checkpoint.seq,
    head_hash: checkpoint.headHash,
    ...(checkpoint.treeRoot !== undefined ? { tree_root: checkpoint.treeRoot } : {}),
    key_id: checkpoint.keyId,
    signature: checkpoint.signature,
    signed_at: checkpoint.signedAt,
  };
}

const HASH = /^sha256:[0-9a-f]{64}$/;
/** Tree hashes are bare hex, as RFC 9162 writes them; chain hashes carry their algorithm. */
const TREE_HASH = /^[0-9a-f]{64}$/;

/** A checkpoint from its document, or what is wrong with it (each problem with its JSON pointer). */
export function checkpointFromJson(value: JsonValue, file?: string): Result<ChainCheckpoint> {
  const problems: Problem[] = [];
  const at = (pointer: string, message: string, expected: string): void => {
    problems.push({
      code: "checkpoint",
      message,
      pointer,
      expected,
      ...(file !== undefined ? { file } : {}),
    });
  };
  if (!isJsonObject(value)) {
    at(
      "",
      "a checkpoint must be a JSON object",
      `{schema_version: "${CHECKPOINT_SCHEMA}", seq, head_hash, …}`,
    );
    return fail("invalid_request", problems);
  }
  const schema = value.schema_version;
  if (schema !== CHECKPOINT_SCHEMA && schema !== HEAD_CHECKPOINT_SCHEMA)
    at("/schema_version", "not a Lumyn checkpoint", `${CHECKPOINT_SCHEMA} or ${HEAD_CHECKPOINT_SCHEMA}`);
  if (typeof value.seq !== "number" || !Number.isSafeInteger(value.seq) || value.seq < 1)
    at("/seq", "seq must be the position of an entry", "a whole number from 1");
  for (const key of ["head_hash", "key_id"])
    if (typeof value[key] !== "string" || !HASH.test(value[key] as string))
      at(`/${key}`, `${key} must be a sha256`, "sha256:<64 hex digits>");
  if (
    schema === CHECKPOINT_SCHEMA &&
    (typeof value.tree_root !== "string" || !TREE_HASH.test(value.tree_root))
  )
    at("/tree_root", "tree_root must be a Merkle tree hash", "64 hex digits (RFC 9162)");
  if (typeof value.signature !== "string")
    at("/signature", "signature is missing", "a base64 Ed25519 signature");
  if (typeof value.signed_at !== "string") at("/signed_at", "signed_at is missing", "an ISO 8601 time");
  if (problems.length > 0) return fail("invalid_request", problems);
  return ok({
    seq: value.seq as number,
    headHash: value.head_hash as string,
    ...(schema === CHECKPOINT_SCHEMA ? { treeRoot: value.tree_root as string } : {}),
    keyId: value.key_id as string,
    signature: value.signature as string,
    signedAt: value.signed_at as string,
  });
}
