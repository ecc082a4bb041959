/**
 * The tamper-evident log. Every stored decision and event is an entry; entry n's hash is
 * `sha256(hash(n-1) ‖ canonical bytes of entry n)`, the first entry following {@link GENESIS_HASH}. The
 * canonical bytes name the entry's position, so moving an entry changes them too. Checking the chain needs
 * only the stored rows: the hashes are recomputed and compared, and the first entry that differs is where the
 * log was edited, cut or rearranged. Signed checkpoints (Ed25519) pin the head, so that a log rewritten from
 * some entry on, hashes and all, no longer matches what was signed.
 */
import { createPrivateKey, createPublicKey, hash, type KeyObject, sign, verify } from "node:crypto";
import { canonicalJson, RawJson } from "../core/json.ts";

export const GENESIS_HASH = `sha256:${"0".repeat(64)}`;
export const CHECKPOINT_SCHEMA = "lumyn_chain_checkpoint.v1";
/** The head is signed whenever the chain crosses a multiple of this many entries, and when a store closes. */
export const DEFAULT_CHECKPOINT_EVERY = 1_000;

export type ChainKind = "decision" | "event";

/** An event as the chain covers it: every stored column. */
export interface ChainedEvent {
  readonly eventId: string;
  readonly decisionId: string;
  readonly type: string;
  readonly createdAt: string;
  /** The event's data as stored (canonical JSON). */
  readonly dataJson: string;
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

export interface ChainCheckpoint {
  readonly seq: number;
  readonly headHash: string;
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
  | "unknown_key";

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
  /** The first place where the log is not what was written; absent when the chain holds. */
  readonly broken?: ChainBreak;
}

/** The bytes a checkpoint signs. */
export function checkpointMessage(seq: number, headHash: string): string {
  return canonicalJson({ head_hash: headHash, schema_version: CHECKPOINT_SCHEMA, seq });
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
  signedAt: string,
): ChainCheckpoint {
  const signature = sign(null, Buffer.from(checkpointMessage(seq, headHash)), key.privateKey);
  return { seq, headHash, keyId: key.keyId, signature: signature.toString("base64"), signedAt };
}

/**
 * Walks the chain in order, one link at a time (the log is streamed, never held), and stops at the first
 * break. {@link finish} then checks what only the whole walk can: rows outside the chain and the checkpoints.
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private head = GENESIS_HASH;
  private broken: ChainBreak | undefined;
  private readonly checkpoints: readonly ChainCheckpoint[];
  /** Hashes at the checkpointed positions, collected on the way. */
  private readonly wanted: Map<number, string | undefined>;

  constructor(checkpoints: readonly ChainCheckpoint[]) {
    this.checkpoints = [...checkpoints].sort((a, b) => a.seq - b.seq);
    this.wanted = new Map(checkpoints.map((checkpoint) => [checkpoint.seq, undefined]));
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
    this.expectedSeq++;
    if (this.wanted.has(link.seq)) this.wanted.set(link.seq, expected);
    return true;
  }

  /**
   * The verdict on the whole log. `unchained`: stored rows that no entry covers (inserted behind the log's
   * back). `publicKey`: checks the checkpoints' signatures; without it they are counted, not verified.
   */
  finish(unchained: readonly { kind: ChainKind; id: string }[], publicKey?: KeyObject): ChainReport {
    const checkpoints = this.checkpoints;
    const length = this.expectedSeq - 1;
    const report = (broken: ChainBreak | undefined, verified: number): ChainReport => ({
      length,
      headHash: this.head,
      checkpoints: { total: checkpoints.length, verified },
      ...(broken ? { broken } : {}),
    });
    if (this.broken) return report(this.broken, 0);
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
        0,
      );
    }
    const id = publicKey ? keyId(publicKey) : undefined;
    let verified = 0;
    for (const checkpoint of checkpoints) {
      if (checkpoint.seq > length) {
        return report(
          {
            seq: checkpoint.seq,
            reason: "truncated",
            message: `the log ends at entry ${length} but a checkpoint covers entry ${checkpoint.seq}: entries were deleted from the end`,
          },
          verified,
        );
      }
      if (this.wanted.get(checkpoint.seq) !== checkpoint.headHash) {
        return report(
          {
            seq: checkpoint.seq,
            reason: "rewritten",
            message: `entry ${checkpoint.seq}'s hash differs from the checkpoint signed at ${checkpoint.signedAt}: the log was rewritten`,
          },
          verified,
        );
      }
      if (!publicKey) continue;
      if (checkpoint.keyId !== id) {
        return report(
          {
            seq: checkpoint.seq,
            reason: "unknown_key",
            message: `the checkpoint at entry ${checkpoint.seq} was signed by key ${checkpoint.keyId}, not by ${id}`,
          },
          verified,
        );
      }
      const valid = verify(
        null,
        Buffer.from(checkpointMessage(checkpoint.seq, checkpoint.headHash)),
        publicKey,
        Buffer.from(checkpoint.signature, "base64"),
      );
      if (!valid) {
        return report(
          {
            seq: checkpoint.seq,
            reason: "bad_signature",
            message: `the checkpoint at entry ${checkpoint.seq} has an invalid signature`,
          },
          verified,
        );
      }
      verified++;
    }
    return report(undefined, verified);
  }
}
