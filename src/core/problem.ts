/**
 * Typed failures. The core never throws on bad input: it returns a {@link Result} whose failure lists every
 * problem found, each pointing at where it is (a `file:line:col` and/or a JSON pointer) and saying what was
 * expected. The CLI turns failures into exit codes, the HTTP server into problem+json responses.
 */

export type ProblemKind =
  | "invalid_json"
  | "invalid_request"
  | "invalid_policy"
  | "too_large"
  | "conflict"
  | "forbidden"
  | "not_found"
  | "storage"
  /** Stored data that is not what the audit log says it is: changed outside Lumyn, and refused. */
  | "tampered"
  | "usage";

export interface Problem {
  /** Stable machine code, e.g. `unknown_key`, `schema`, `duplicate_rule_id`. */
  readonly code: string;
  readonly message: string;
  /** JSON pointer into the document the problem is about. */
  readonly pointer?: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** What would have been accepted. */
  readonly expected?: string;
  /** A near-miss suggestion ("did you mean …"). */
  readonly hint?: string;
}

export interface Failure {
  readonly kind: ProblemKind;
  readonly problems: readonly Problem[];
}

export type Result<T> = { readonly ok: true; readonly value: T } | ({ readonly ok: false } & Failure);

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(kind: ProblemKind, problems: readonly Problem[]): Result<T> {
  return { ok: false, kind, problems };
}

/** Where a problem is, as `file:line:col pointer`, omitting what is unknown. */
export function problemLocation(problem: Problem): string {
  const position =
    problem.line !== undefined
      ? `${problem.file ?? "<input>"}:${problem.line}:${problem.column ?? 1}`
      : problem.file;
  return [position, problem.pointer !== undefined ? problem.pointer || "/" : undefined]
    .filter((part) => part !== undefined)
    .join(" ");
}

/** One line per problem: `location: message (expected …; did you mean …?)`. */
export function formatProblem(problem: Problem): string {
  const location = problemLocation(problem);
  const details = [problem.expected ? `expected ${problem.expected}` : "", problem.hint ?? ""].filter(
    Boolean,
  );
  const suffix = details.length > 0 ? ` (${details.join("; ")})` : "";
  return `${location ? `${location}: ` : ""}${problem.message}${suffix}`;
}

/** Thrown only at the edges (CLI, server) to carry a failure through async code; the core returns Results. */
export class LumynError extends Error implements Failure {
  readonly kind: ProblemKind;
  readonly problems: readonly Problem[];
  constructor(failure: Failure) {
    super(failure.problems.map(formatProblem).join("\n") || failure.kind);
    this.name = "LumynError";
    this.kind = failure.kind;
    this.problems = failure.problems;
  }
}

/** The closest candidate by edit distance, when it is close enough to be a plausible typo. */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  const needle = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(needle, candidate.toLowerCase());
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  const tolerance = Math.max(1, Math.floor(input.length / 3));
  return best !== undefined && bestDistance <= tolerance ? `did you mean '${best}'?` : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * A port could not be reached or written (the store, a text embedder): decisions then fail closed
 * (ABSTAIN, STORAGE_UNAVAILABLE).
 */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
  }
}
