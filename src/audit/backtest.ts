/**
 * Backtests: what a candidate policy would have decided for requests already decided. Each stored request is
 * re-decided as the record was made — the persisted request, memory as the record's snapshot recorded it —
 * and the verdicts are tallied as a transition matrix, with the reason codes gained and lost and the
 * decisions that changed. Records are visited one at a time, so memory use does not grow with history.
 */
import { isJsonObject, type JsonValue } from "../core/json.ts";
import { parseJson } from "../core/parse-json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import { VERDICT_PRECEDENCE, VERDICTS, type Verdict } from "../core/verdict.ts";
import type { DecisionRequest } from "../domain/request.ts";
import { recordedVelocity } from "../domain/velocity.ts";
import { decideOutcome, prepareDecision } from "../engine/decide.ts";
import { deriveFeatures } from "../engine/normalize.ts";
import { neighboursFromSnapshot } from "../memory/arbitrate.ts";
import { PROJECTION } from "../memory/fingerprint.ts";
import type { MemoryHit, Neighbours } from "../memory/index.ts";
import type { Policy } from "../policy/policy.ts";

/** One request decided before and again. */
export interface Redecision {
  readonly id: string;
  readonly from: Verdict;
  readonly fromCodes: readonly string[];
  readonly to: Verdict;
  readonly toCodes: readonly string[];
  /**
   * The candidate's velocity measures the record did not see (it recorded no value under the same
   * definition): conditions on them read nothing, as on a missing value.
   */
  readonly unmeasured?: readonly string[];
}

export interface BacktestChange extends Redecision {
  readonly gained: readonly string[];
  readonly lost: readonly string[];
}

export interface BacktestReport {
  readonly total: number;
  readonly changed: number;
  /** Stored records that could not be read back (counted, not re-decided). */
  readonly unreadable: number;
  /** Re-decided records that had no recorded value for some velocity measure of the candidate. */
  readonly unmeasured: number;
  /** from → to → count, every verdict present. */
  readonly matrix: Readonly<Record<Verdict, Readonly<Record<Verdict, number>>>>;
  /** Decisions that gained (lost) each reason code, most first. */
  readonly gained: readonly { readonly code: string; readonly count: number }[];
  readonly lost: readonly { readonly code: string; readonly count: number }[];
  /** The changed decisions that matter most: loosened verdicts first (DENY → ALLOW before ALLOW → DENY). */
  readonly topChanged: readonly BacktestChange[];
}

export const DEFAULT_TOP_CHANGED = 10;

/** Any run of 16 digits; only then is the precise test for an integer beyond 2^53 worth running. */
const SIXTEEN_DIGITS = /\d{16}/;
/** In canonical JSON, an integer that may exceed 2^53 is a bare run of 16 or more digits after `":`, `[` or `,`. */
const MAYBE_BIG_INTEGER = /(?:":|[[,])-?\d{16}/;

/**
 * Parses JSON for re-evaluation. Evaluation compares numbers by value (100 equals 100.0), so the native
 * parser serves, except where an integer may be too big for a double: there the lossless one keeps it exact.
 */
function parseForEvaluation(json: string): JsonValue | undefined {
  if (SIXTEEN_DIGITS.test(json) && MAYBE_BIG_INTEGER.test(json)) {
    const parsed = parseJson(json, { maxBytes: Number.POSITIVE_INFINITY, maxDepth: 1_000 });
    return parsed.ok ? parsed.value : undefined;
  }
  try {
    return JSON.parse(json) as JsonValue;
  } catch {
    return undefined;
  }
}

/** What re-deciding needs of a stored record. */
interface StoredDecision {
  readonly id: string;
  readonly verdict: Verdict;
  readonly reasonCodes: readonly string[];
  readonly request: DecisionRequest;
  readonly neighbours: Neighbours | undefined;
  /** `determinism.velocity`: the measures the decision saw. */
  readonly velocity?: JsonValue | undefined;
}

const NO_VECTOR = new Int8Array(0);
/** The top-level reason codes as canonical JSON writes them (codes are `^[A-Z0-9_]+$`), without brackets. */
const CODE_LIST = /^"[A-Z0-9_]+"(?:,"[A-Z0-9_]+")*$/;
/** A hit of a compact memory snapshot: its keys sort as decision_id, fingerprint, outcome, score. */
const SNAPSHOT_HIT = /"outcome":(-?1),"score":(-?[0-9.eE+-]+)/g;

/**
 * Reads a stored record for re-deciding from its canonical JSON, parsing only what a backtest uses: the
 * request, the verdict, the reason codes and the memory hits' outcomes and scores (arbitration uses nothing
 * else of memory). A record is mostly fingerprints and digests; skipping them is what makes backtests fast.
 * Canonical JSON sorts members, so each part is found by its neighbours; the request's slice must parse as
 * one object, so a look-alike inside a value is never taken for it. Anything unexpected returns undefined
 * and the record is parsed whole.
 */
function readCanonical(json: string): StoredDecision | undefined {
  const verdictAt = json.lastIndexOf(',"verdict":"');
  const riskAt = json.lastIndexOf(',"risk_signals":{');
  const requestAt = json.indexOf('],"request":{');
  const codesAt = json.lastIndexOf('"reason_codes":[', requestAt);
  if (verdictAt < 0 || riskAt < 0 || requestAt < 0 || codesAt < 0 || !json.endsWith('"}')) return undefined;
  const codeList = json.slice(codesAt + 16, requestAt);
  if (!CODE_LIST.test(codeList)) return undefined;
  const request = parseForEvaluation(json.slice(requestAt + 12, riskAt));
  const verdict = json.slice(verdictAt + 12, -2);
  if (!isJsonObject(request) || !isJsonObject(request.action) || !isVerdict(verdict)) return undefined;
  const reasonCodes = codeList.slice(1, -1).split('","');
  const digestAt = json.indexOf('"inputs_digest":"', json.indexOf('"determinism":{'));
  const afterDigest = json.indexOf('"', digestAt + 17) + 1;
  if (digestAt < 0 || afterDigest === 0) return undefined;
  // Velocity values are read from the whole record (rare enough not to need a fast path here).
  if (json.includes(',"velocity":{', afterDigest)) return undefined;
  let neighbours: Neighbours | undefined;
  if (json.startsWith(',"memory":{', afterDigest)) {
    const hitsAt = json.indexOf('"hits":[', afterDigest);
    const hitsEnd = json.indexOf('],"projection":', hitsAt);
    if (hitsAt < 0 || hitsEnd < 0) return undefined;
    const failure: MemoryHit[] = [];
    const success: MemoryHit[] = [];
    for (const [, outcome, score] of json.slice(hitsAt, hitsEnd).matchAll(SNAPSHOT_HIT)) {
      const label = outcome === "-1" ? "failure" : "success";
      (label === "failure" ? failure : success).push({
        decisionId: "",
        label,
        score: Number(score),
        vector: NO_VECTOR,
      });
    }
    neighbours = { failure, success };
  } else if (json.charCodeAt(afterDigest) !== 125) return undefined;
  const idAt = json.indexOf('"decision_id":"');
  return {
    id: idAt < 0 ? "" : json.slice(idAt + 15, json.indexOf('"', idAt + 15)),
    verdict,
    reasonCodes,
    request: request as DecisionRequest,
    neighbours,
  };
}

/** The same from the whole record, parsed losslessly, for a record that is not in compact canonical form. */
function readWhole(json: string): StoredDecision | undefined {
  const parsed = parseJson(json, { maxBytes: Number.POSITIVE_INFINITY, maxDepth: 1_000 });
  const record = parsed.ok ? parsed.value : undefined;
  if (!isJsonObject(record) || !isJsonObject(record.request) || !isJsonObject(record.request.action))
    return undefined;
  if (!isVerdict(record.verdict) || !Array.isArray(record.reason_codes) || !isJsonObject(record.determinism))
    return undefined;
  const snapshot = record.determinism.memory;
  let neighbours: Neighbours | undefined;
  if (snapshot !== undefined) {
    const read = neighboursFromSnapshot(snapshot, "/determinism/memory");
    if (!read.ok) return undefined;
    neighbours = read.value.neighbours;
  }
  return {
    id: String(record.decision_id),
    verdict: record.verdict,
    reasonCodes: record.reason_codes.map(String),
    request: record.request as DecisionRequest,
    neighbours,
    velocity: record.determinism.velocity,
  };
}

const isVerdict = (value: JsonValue | undefined): value is Verdict =>
  typeof value === "string" && (VERDICTS as readonly string[]).includes(value);

/** Re-decides a stored record under `candidate`, with the memory its snapshot recorded; undefined when unreadable. */
export function redecideStored(recordJson: string, candidate: Policy): Redecision | undefined {
  const stored = readCanonical(recordJson) ?? readWhole(recordJson);
  if (!stored) return undefined;
  // Re-deciding uses the hits' outcomes and scores only: no fingerprint is compared, whatever the projection.
  const memory = stored.neighbours && {
    projection: PROJECTION,
    query: NO_VECTOR,
    neighbours: stored.neighbours,
    summaries: new Map(),
  };
  const velocity = recordedVelocity(candidate.model.velocity, stored.velocity);
  const { final } = decideOutcome(
    stored.request,
    deriveFeatures(stored.request),
    candidate,
    memory,
    velocity.values,
  );
  return {
    id: stored.id,
    from: stored.verdict,
    fromCodes: stored.reasonCodes,
    to: final.verdict,
    toCodes: final.reasonCodes,
    ...(velocity.missing.length > 0 ? { unmeasured: velocity.missing } : {}),
  };
}

/**
 * Decides a request that was never stored under a baseline and a candidate (no memory, no history: nothing
 * is read or stored), as a backtest over a file of requests does. A request that is not valid is a failure.
 */
export function redecideRequest(
  requestValue: JsonValue,
  baseline: Policy,
  candidate: Policy,
  fallbackId: string,
): Result<Redecision> {
  const prepared = prepareDecision(requestValue);
  if (!prepared.ok) return prepared;
  const { request } = prepared.value.redaction;
  const { derived } = prepared.value;
  const before = decideOutcome(request, derived, baseline, undefined).final;
  const after = decideOutcome(request, derived, candidate, undefined).final;
  return ok({
    id: typeof request.request_id === "string" ? request.request_id : fallbackId,
    from: before.verdict,
    fromCodes: before.reasonCodes,
    to: after.verdict,
    toCodes: after.reasonCodes,
  });
}

function emptyMatrix(): Record<Verdict, Record<Verdict, number>> {
  const matrix = {} as Record<Verdict, Record<Verdict, number>>;
  for (const from of VERDICTS) {
    matrix[from] = {} as Record<Verdict, number>;
    for (const to of VERDICTS) matrix[from][to] = 0;
  }
  return matrix;
}

/** How much a change loosens: positive when the new verdict lets more through. */
function loosening(change: Redecision): number {
  return VERDICT_PRECEDENCE[change.from] - VERDICT_PRECEDENCE[change.to];
}

function sortedCounts(counts: Map<string, number>): { code: string; count: number }[] {
  return [...counts]
    .map(([code, count]) => ({ code, count }))
    .sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
}

/** Tallies re-decisions as they stream by; holds only the counts and the top changes. */
export class BacktestTally {
  private total = 0;
  private changed = 0;
  private unreadable = 0;
  private unmeasured = 0;
  private readonly matrix = emptyMatrix();
  private readonly gained = new Map<string, number>();
  private readonly lost = new Map<string, number>();
  private readonly top: BacktestChange[] = [];
  private readonly topLimit: number;

  constructor(topLimit: number = DEFAULT_TOP_CHANGED) {
    this.topLimit = topLimit;
  }

  skip(): void {
    this.unreadable++;
  }

  add(item: Redecision): void {
    this.total++;
    if (item.unmeasured && item.unmeasured.length > 0) this.unmeasured++;
    this.matrix[item.from][item.to]++;
    const before = new Set(item.fromCodes);
    const after = new Set(item.toCodes);
    const gained = [...after].filter((code) => !before.has(code));
    const lost = [...before].filter((code) => !after.has(code));
    for (const code of gained) this.gained.set(code, (this.gained.get(code) ?? 0) + 1);
    for (const code of lost) this.lost.set(code, (this.lost.get(code) ?? 0) + 1);
    if (item.from === item.to && gained.length === 0 && lost.length === 0) return;
    this.changed++;
    this.keepIfTop({ ...item, gained, lost });
  }

  private keepIfTop(change: BacktestChange): void {
    if (this.topLimit === 0) return;
    const weight = loosening(change);
    // Stable: among equals the earlier decision stays ahead.
    let at = this.top.length;
    while (at > 0 && loosening(this.top[at - 1] as BacktestChange) < weight) at--;
    if (at >= this.topLimit) return;
    this.top.splice(at, 0, change);
    if (this.top.length > this.topLimit) this.top.pop();
  }

  report(): BacktestReport {
    return {
      total: this.total,
      changed: this.changed,
      unreadable: this.unreadable,
      unmeasured: this.unmeasured,
      matrix: this.matrix,
      gained: sortedCounts(this.gained),
      lost: sortedCounts(this.lost),
      topChanged: [...this.top],
    };
  }
}

/** A verdict transition that fails a CI gate (`DENY>ALLOW`; `*` stands for any verdict). */
export interface Transition {
  readonly from: Verdict | "*";
  readonly to: Verdict | "*";
}

/** Parses `--fail-on DENY>ALLOW,ESCALATE>ALLOW`; every bad part is reported. */
export function parseTransitions(spec: string): Result<Transition[]> {
  const problems: Problem[] = [];
  const transitions: Transition[] = [];
  const side = (text: string): Verdict | "*" | undefined => {
    const upper = text.trim().toUpperCase();
    return upper === "*" || (VERDICTS as readonly string[]).includes(upper)
      ? (upper as Verdict | "*")
      : undefined;
  };
  for (const part of spec.split(",")) {
    const [fromText, toText, ...rest] = part.split(">");
    const from = side(fromText ?? "");
    const to = side(toText ?? "");
    if (from === undefined || to === undefined || rest.length > 0 || (from !== "*" && from === to)) {
      problems.push({
        code: "transition",
        message: `'${part}' is not a verdict change`,
        expected: `FROM>TO with FROM and TO different, each one of ${VERDICTS.join(", ")} or *`,
      });
    } else transitions.push({ from, to });
  }
  return problems.length > 0 ? fail("usage", problems) : ok(transitions);
}

/** The transitions of a report that a gate names, with their counts (only those that occurred). */
export function triggered(
  report: BacktestReport,
  gate: readonly Transition[],
): { from: Verdict; to: Verdict; count: number }[] {
  const hits: { from: Verdict; to: Verdict; count: number }[] = [];
  for (const from of VERDICTS)
    for (const to of VERDICTS) {
      const count = report.matrix[from][to];
      if (from === to || count === 0) continue;
      if (gate.some((t) => (t.from === "*" || t.from === from) && (t.to === "*" || t.to === to)))
        hits.push({ from, to, count });
    }
  return hits;
}
