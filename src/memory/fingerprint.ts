import {
  isJsonNumber,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  stringify,
  toDouble,
} from "../core/json.ts";

/**
 * Fingerprints: a request as a deterministic feature vector, with no model and no network.
 *
 * Every feature is a token (`action_type=support.refund`, `evidence.tier=gold`, `amount≈7`) hashed into one of
 * {@link DIMENSIONS} signed coordinates (FNV-1a; the hash's top bit chooses the sign, so collisions cancel
 * out on average instead of piling up). Numbers become log-scaled buckets, with half weight on the
 * neighbouring buckets so that close amounts stay similar. The vector is L2-normalised and quantised to
 * int8 (128 bytes a case); similarity is the cosine of two fingerprints. Only integer
 * hashing and IEEE arithmetic are involved, so the same request gives the same bytes on every machine.
 */
export const PROJECTION = "lumyn-fingerprint-v1";
export const DIMENSIONS = 128;
const QUANT = 127;

/** How much each family of features counts; `evidence` can be tuned per key. */
export interface FingerprintWeights {
  readonly action_type: number;
  readonly amount: number;
  readonly currency: number;
  readonly subject: number;
  readonly tags: number;
  readonly evidence: number;
}

export interface FingerprintConfig {
  readonly weights: FingerprintWeights;
  /** Evidence keys (dotted paths) to use; all when absent. */
  readonly includeEvidence?: readonly string[];
  /** Evidence keys (dotted paths) never used. */
  readonly ignoreEvidence: readonly string[];
  /** Per-key weights for evidence paths, overriding `weights.evidence`. */
  readonly evidenceWeights: Readonly<Record<string, number>>;
}

export const DEFAULT_WEIGHTS: FingerprintWeights = {
  action_type: 1,
  amount: 2,
  currency: 0.5,
  subject: 0.5,
  tags: 1,
  evidence: 1,
};

export const DEFAULT_FINGERPRINT_CONFIG: FingerprintConfig = {
  weights: DEFAULT_WEIGHTS,
  ignoreEvidence: [],
  evidenceWeights: {},
};

/** Evidence strings longer than this, or with spaces, are free text: they count as their words. */
const SHORT_TEXT = 40;
const MAX_WORDS = 32;
const MAX_DEPTH = 4;

/** FNV-1a over the token's UTF-8 bytes (encoded here, byte by byte, to allocate nothing). */
export function fnv1a(token: string): number {
  let hash = 0x811c9dc5;
  const mix = (byte: number): void => {
    hash = Math.imul(hash ^ byte, 0x01000193);
  };
  for (let i = 0; i < token.length; i++) {
    const point = token.codePointAt(i) as number;
    if (point < 0x80) mix(point);
    else if (point < 0x800) {
      mix(0xc0 | (point >> 6));
      mix(0x80 | (point & 0x3f));
    } else if (point < 0x10000) {
      mix(0xe0 | (point >> 12));
      mix(0x80 | ((point >> 6) & 0x3f));
      mix(0x80 | (point & 0x3f));
    } else {
      mix(0xf0 | (point >> 18));
      mix(0x80 | ((point >> 12) & 0x3f));
      mix(0x80 | ((point >> 6) & 0x3f));
      mix(0x80 | (point & 0x3f));
      i++;
    }
  }
  return hash >>> 0;
}

/**
 * The seam for a text embedding model. None ships and memory works without one; with one, long free-text
 * evidence counts by its embedding (so that "card was stolen" and "my card got taken" can be close) instead
 * of by its words. It must be deterministic (the same text, the same vector, on every run); its `id` (name and
 * version) becomes part of the projection recorded in labels and snapshots, so that fingerprints made with
 * and without it are never taken for one another.
 */
export interface TextEmbedder {
  readonly id: string;
  embed(texts: readonly string[]): Promise<readonly Float32Array[]>;
}

/** Embeddings of free-text evidence, by text. */
export type TextEmbeddings = ReadonlyMap<string, Float32Array>;

/** The projection's name: the fingerprint version, and the text embedder's id when there is one. */
export function projectionOf(embedder: TextEmbedder | undefined): string {
  return embedder ? `${PROJECTION}+${embedder.id}` : PROJECTION;
}

class Accumulator {
  readonly values = new Float64Array(DIMENSIONS);
  /** Free-text evidence seen, when collecting it for an embedder. */
  readonly texts: string[] = [];
  readonly embeddings: TextEmbeddings | undefined;

  constructor(embeddings?: TextEmbeddings) {
    this.embeddings = embeddings;
  }

  add(token: string, weight: number): void {
    if (weight === 0 || !Number.isFinite(weight)) return;
    const hash = fnv1a(token);
    const slot = hash % DIMENSIONS;
    this.values[slot] = (this.values[slot] as number) + (hash & 0x80000000 ? -weight : weight);
  }

  /** An embedding, L2-normalised, each component a token of its own (feature hashing of its dimensions). */
  addEmbedding(name: string, embedding: Float32Array, weight: number): void {
    let sum = 0;
    for (const component of embedding) sum += component * component;
    if (!(sum > 0) || !Number.isFinite(sum)) return;
    const scale = weight / Math.sqrt(sum);
    for (let i = 0; i < embedding.length; i++) this.add(`${name}⊕${i}`, (embedding[i] as number) * scale);
  }

  /** A number as a log-scaled bucket (four per decade), with half weight on its neighbours. */
  addNumber(name: string, value: number, weight: number): void {
    if (!Number.isFinite(value)) return;
    const magnitude = Math.abs(value);
    const bucket = magnitude < 1e-9 ? 0 : Math.floor(Math.log10(magnitude) * 4) + 40;
    const sign = value < 0 ? "-" : "";
    this.add(`${name}≈${sign}${bucket}`, weight);
    this.add(`${name}≈${sign}${bucket - 1}`, weight / 2);
    this.add(`${name}≈${sign}${bucket + 1}`, weight / 2);
  }

  quantize(): Int8Array {
    let norm = 0;
    for (const v of this.values) norm += v * v;
    const out = new Int8Array(DIMENSIONS);
    if (norm === 0) return out;
    const scale = QUANT / Math.sqrt(norm);
    for (let i = 0; i < DIMENSIONS; i++) out[i] = Math.round((this.values[i] as number) * scale);
    return out;
  }
}

function evidenceWeight(path: string, config: FingerprintConfig): number {
  if (config.ignoreEvidence.includes(path)) return 0;
  if (config.includeEvidence && !config.includeEvidence.includes(path)) return 0;
  return Object.hasOwn(config.evidenceWeights, path)
    ? (config.evidenceWeights[path] as number)
    : config.weights.evidence;
}

function addEvidence(
  acc: Accumulator,
  path: string,
  value: JsonValue | undefined,
  config: FingerprintConfig,
  depth: number,
): void {
  if (value === undefined || value === null) return;
  if (isJsonObject(value)) {
    if (depth >= MAX_DEPTH) return;
    for (const key of Object.keys(value).sort())
      addEvidence(acc, `${path}.${key}`, value[key], config, depth + 1);
    return;
  }
  const weight = evidenceWeight(path, config);
  if (weight === 0) return;
  if (Array.isArray(value)) {
    for (const item of value.slice(0, MAX_WORDS)) {
      if (typeof item === "string" || typeof item === "boolean" || isJsonNumber(item))
        acc.add(`${path}∋${stringify(item)}`, weight / Math.sqrt(value.length));
    }
    return;
  }
  if (isJsonNumber(value)) acc.addNumber(path, toDouble(value), weight);
  else if (typeof value === "boolean") acc.add(`${path}=${value}`, weight);
  else if (typeof value === "string") {
    if (value.length <= SHORT_TEXT && !/\s/.test(value)) acc.add(`${path}=${value}`, weight);
    else if (acc.embeddings?.has(value))
      acc.addEmbedding(path, acc.embeddings.get(value) as Float32Array, weight);
    else {
      acc.texts.push(value);
      const words = value
        .toLowerCase()
        .split(/[^\p{L}\p{N}]+/u)
        .filter(Boolean)
        .slice(0, MAX_WORDS);
      for (const word of words) acc.add(`${path}~${word}`, weight / Math.sqrt(words.length));
    }
  }
}

function object(value: JsonValue | undefined): JsonObject | undefined {
  return isJsonObject(value) ? value : undefined;
}

/**
 * The fingerprint of a (persisted) request. Free text found in `embeddings` counts by its embedding, other
 * free text by its words.
 */
export function fingerprint(
  request: JsonObject,
  config: FingerprintConfig = DEFAULT_FINGERPRINT_CONFIG,
  embeddings?: TextEmbeddings,
): Int8Array {
  return accumulate(request, config, embeddings).quantize();
}

/** The free-text evidence of a request that a text embedder would embed. */
export function freeTexts(
  request: JsonObject,
  config: FingerprintConfig = DEFAULT_FINGERPRINT_CONFIG,
): string[] {
  return [...new Set(accumulate(request, config, undefined).texts)];
}

function accumulate(
  request: JsonObject,
  config: FingerprintConfig,
  embeddings: TextEmbeddings | undefined,
): Accumulator {
  const acc = new Accumulator(embeddings);
  const { weights } = config;
  const action = object(request.action);
  if (typeof action?.type === "string") acc.add(`action_type=${action.type}`, weights.action_type);
  const amount = object(action?.amount);
  if (amount && isJsonNumber(amount.value)) acc.addNumber("amount", toDouble(amount.value), weights.amount);
  if (typeof amount?.currency === "string") acc.add(`currency=${amount.currency}`, weights.currency);
  const subject = object(request.subject);
  if (typeof subject?.type === "string") acc.add(`subject.type=${subject.type}`, weights.subject);
  if (Array.isArray(subject?.roles))
    for (const role of subject.roles)
      if (typeof role === "string") acc.add(`subject.role=${role}`, weights.subject);
  if (Array.isArray(action?.tags))
    for (const tag of action.tags) if (typeof tag === "string") acc.add(`tag=${tag}`, weights.tags);
  const evidence = object(request.evidence);
  if (evidence)
    for (const key of Object.keys(evidence).sort()) addEvidence(acc, key, evidence[key], config, 1);
  return acc;
}

/** The Euclidean norm of a quantised fingerprint (0 for an empty one). */
export function norm(vector: Int8Array): number {
  let sum = 0;
  for (let i = 0; i < DIMENSIONS; i++) sum += (vector[i] as number) * (vector[i] as number);
  return Math.sqrt(sum);
}

/** Cosine similarity of two fingerprints, in [-1, 1] (1 for the same request; 0 when either is empty). */
export function similarity(a: Int8Array, b: Int8Array): number {
  let dot = 0;
  for (let i = 0; i < DIMENSIONS; i++) dot += (a[i] as number) * (b[i] as number);
  const denominator = norm(a) * norm(b);
  return denominator === 0 ? 0 : dot / denominator;
}

export function fingerprintToBase64(vector: Int8Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64");
}

export function fingerprintFromBase64(text: string): Int8Array {
  const bytes = Buffer.from(text, "base64");
  return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice();
}
