import {
  canonicalJson,
  escapePointerToken,
  isJsonNumber,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  toDouble,
} from "../core/json.ts";
import { didYouMean, type Problem } from "../core/problem.ts";
import { VERDICTS } from "../core/verdict.ts";
import { parseDuration } from "./approval.ts";
import type { VelocityValues } from "./evaluate.ts";
import { REQUEST_ROOTS, type VelocityMeasure, type VelocitySpec, type VelocityWindow } from "./model.ts";

/**
 * The policy's `velocity:` section: named measures over the tenant's recent decisions, which rules read as
 * `velocity.<name>`. For example
 *
 * ```yaml
 * velocity:
 *   subject_denials_1h: {count: decisions, where: {verdict: [DENY]}, group_by: subject.id, window: 1h}
 *   payouts_today: {sum: amount_usd, where: {action_type: [payout.create]}, window: today}
 * ```
 */

export const VELOCITY_KEYS = ["count", "sum", "where", "group_by", "window"] as const;
const WHERE_KEYS = ["verdict", "action_type"] as const;
const NAME = /^[a-z][a-z0-9_]{0,63}$/;
/** Path segments become part of a SQL JSON path and a Redis key: names only. */
const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_WINDOW_MS = 31 * 86_400_000;
export const MAX_VELOCITY_MEASURES = 32;

interface VelocityChecks {
  report: (problem: Omit<Problem, "file" | "line" | "column">, at?: "value" | "key") => void;
  checkKeys: (object: JsonObject, allowed: readonly string[], pointer: string, what: string) => void;
}

/** A request path for velocity (`subject.id`, `tenant.tenant_id`, an evidence key …) as segments. */
function requestPath(path: string): string[] | undefined {
  const segments = path.split(".");
  if (segments.some((segment) => !SEGMENT.test(segment))) return undefined;
  if ((REQUEST_ROOTS as readonly string[]).includes(segments[0] as string))
    return segments.length > 1 ? segments : undefined;
  return ["evidence", ...segments];
}

/** Validates the `velocity:` section, reporting every problem; undefined when there were any. */
export function velocitySection(value: JsonValue, checks: VelocityChecks): VelocitySpec[] | undefined {
  const { report, checkKeys } = checks;
  if (!isJsonObject(value)) {
    report({
      code: "type",
      message: "velocity must be a mapping of named measures",
      pointer: "/velocity",
      expected: "{<name>: {count: decisions | sum: <path>, window: 1h, …}}",
    });
    return undefined;
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_VELOCITY_MEASURES) {
    report({
      code: "too_many",
      message: `velocity defines ${entries.length} measures`,
      pointer: "/velocity",
      expected: `at most ${MAX_VELOCITY_MEASURES}`,
    });
    return undefined;
  }
  const specs: VelocitySpec[] = [];
  let valid = true;
  for (const [name, entry] of entries) {
    const spec = velocityEntry(name, entry, `/velocity/${escapePointerToken(name)}`, { report, checkKeys });
    if (spec) specs.push(spec);
    else valid = false;
  }
  return valid ? specs : undefined;
}

function velocityEntry(
  name: string,
  entry: JsonValue,
  pointer: string,
  { report, checkKeys }: VelocityChecks,
): VelocitySpec | undefined {
  const what = `velocity.${name}`;
  let valid = true;
  const problem = (problem: Omit<Problem, "file" | "line" | "column">, at?: "value" | "key"): void => {
    valid = false;
    report(problem, at);
  };
  if (!NAME.test(name)) {
    problem(
      {
        code: "velocity_name",
        message: `'${name}' is not a velocity measure name`,
        pointer,
        expected: "lower-case letters, digits and underscores, starting with a letter (^[a-z][a-z0-9_]*$)",
      },
      "key",
    );
  }
  if (!isJsonObject(entry)) {
    problem({
      code: "type",
      message: `${what} must be a mapping`,
      pointer,
      expected: "{count: decisions | sum: <path>, where: {…}, group_by: <path>, window: 1h | today}",
    });
    return undefined;
  }
  checkKeys(entry, VELOCITY_KEYS, pointer, what);
  if (Object.keys(entry).some((key) => !(VELOCITY_KEYS as readonly string[]).includes(key))) valid = false;

  let measure: VelocityMeasure | undefined;
  if ((entry.count === undefined) === (entry.sum === undefined)) {
    problem({
      code: "velocity_measure",
      message: `${what} needs exactly one of count and sum`,
      pointer,
      expected: "count: decisions, or sum: amount_usd | <request path to a number>",
    });
  } else if (entry.count !== undefined) {
    if (entry.count === "decisions") measure = { kind: "count" };
    else
      problem({
        code: "velocity_measure",
        message: `${what}.count counts decisions: write 'count: decisions'`,
        pointer: `${pointer}/count`,
        expected: "decisions",
      });
  } else {
    const path = typeof entry.sum === "string" ? entry.sum : "";
    const segments = path === "amount_usd" ? undefined : requestPath(path);
    if (path === "amount_usd") measure = { kind: "sum_amount_usd" };
    else if (segments) measure = { kind: "sum_path", segments };
    else
      problem({
        code: "path",
        message: `${what}.sum: ${JSON.stringify(entry.sum)} is not a number a decision holds`,
        pointer: `${pointer}/sum`,
        expected: `amount_usd, or a path under ${REQUEST_ROOTS.join(", ")} (names of letters, digits, _ and -)`,
      });
  }

  let groupBy: string[] = [];
  if (entry.group_by !== undefined) {
    const segments = typeof entry.group_by === "string" ? requestPath(entry.group_by) : undefined;
    if (segments) groupBy = segments;
    else
      problem({
        code: "path",
        message: `${what}.group_by: ${JSON.stringify(entry.group_by)} is not a request path`,
        pointer: `${pointer}/group_by`,
        expected: "a path such as subject.id, action.target.resource_id or tenant.environment",
      });
  }

  const filters: { verdicts?: string[]; actionTypes?: string[] } = {};
  if (entry.where !== undefined) {
    const where = entry.where;
    if (!isJsonObject(where)) {
      problem({
        code: "type",
        message: `${what}.where must be a mapping`,
        pointer: `${pointer}/where`,
        expected: "{verdict: [DENY, …], action_type: [payout.create, …]}",
      });
    } else {
      checkKeys(where, WHERE_KEYS, `${pointer}/where`, `${what}.where`);
      if (Object.keys(where).some((key) => !(WHERE_KEYS as readonly string[]).includes(key))) valid = false;
      for (const [key, field] of [
        ["verdict", "verdicts"],
        ["action_type", "actionTypes"],
      ] as const) {
        const list = where[key];
        if (list === undefined) continue;
        const at = `${pointer}/where/${key}`;
        if (!Array.isArray(list) || list.length === 0 || list.some((item) => typeof item !== "string")) {
          problem({
            code: "type",
            message: `${what}.where.${key} must be a non-empty list of strings`,
            pointer: at,
            expected: key === "verdict" ? `a list of ${VERDICTS.join(", ")}` : "a list of action types",
          });
          continue;
        }
        const strings = list as string[];
        if (key === "verdict") {
          strings.forEach((verdict, i) => {
            if ((VERDICTS as readonly string[]).includes(verdict)) return;
            const hint = didYouMean(verdict, VERDICTS);
            problem({
              code: "enum",
              message: `${what}.where.verdict: '${verdict}' is not a verdict`,
              pointer: `${at}/${i}`,
              expected: `one of ${VERDICTS.join(", ")}`,
              ...(hint ? { hint } : {}),
            });
          });
        }
        filters[field] = strings;
      }
    }
  }

  const window = typeof entry.window === "string" ? parseWindow(entry.window) : undefined;
  if (!window) {
    problem({
      code: entry.window === undefined ? "missing_key" : "velocity_window",
      message:
        entry.window === undefined
          ? `${what}.window is required`
          : `${what}.window: ${JSON.stringify(entry.window)} is not a window`,
      pointer: entry.window === undefined ? pointer : `${pointer}/window`,
      expected: "a duration up to 31d (90s, 30m, 1h, 7d) or today (since 00:00 UTC)",
    });
  }
  if (!valid || !measure || !window) return undefined;
  return {
    name,
    measure,
    groupBy,
    ...filters,
    window,
    definition: JSON.parse(canonicalJson(entry)) as JsonObject,
    pointer,
  };
}

function parseWindow(text: string): VelocityWindow | undefined {
  if (text === "today") return { kind: "today" };
  const ms = parseDuration(text);
  return ms !== undefined && ms <= MAX_WINDOW_MS ? { kind: "duration", ms } : undefined;
}

/**
 * The window `[since, until)` a measure covers for a decision made at `now`, in the records' `created_at`
 * form (whole seconds): it ends after `now`'s second, so decisions stored earlier in that second count.
 */
export function velocityWindow(spec: VelocitySpec, now: Date): { since: string; until: string } {
  const since =
    spec.window.kind === "today"
      ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()))
      : new Date(now.getTime() - spec.window.ms);
  const second = (date: Date): string => `${date.toISOString().slice(0, 19)}Z`;
  return { since: second(since), until: second(new Date(now.getTime() + 1_000)) };
}

/** The group value a request has at a measure's `group_by`: a scalar, or undefined (the request has no group). */
export function groupValueOf(spec: VelocitySpec, request: JsonObject): string | number | boolean | undefined {
  let value: JsonValue | undefined = request;
  for (const segment of spec.groupBy) {
    value = isJsonObject(value) && Object.hasOwn(value, segment) ? value[segment] : undefined;
  }
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isFinite(value)) return value;
  return undefined;
}

/** What a decision records of its velocity measures: each measure's definition with the value it gave. */
export function velocityRecord(specs: readonly VelocitySpec[], values: VelocityValues): JsonObject {
  const recorded: JsonObject = {};
  for (const spec of specs) recorded[spec.name] = { ...spec.definition, value: values[spec.name] ?? 0 };
  return recorded;
}

/**
 * The values a record's decision saw, for the measures of `policy` that it recorded with the same
 * definition (replays and backtests use them instead of live history). `missing` names the measures the
 * record cannot answer: a backtest's candidate may define measures the recorded policy did not.
 */
export function recordedVelocity(
  specs: readonly VelocitySpec[],
  recorded: JsonValue | undefined,
): { values: VelocityValues; missing: string[] } {
  const values: Record<string, number> = {};
  const missing: string[] = [];
  for (const spec of specs) {
    const entry = isJsonObject(recorded) ? recorded[spec.name] : undefined;
    const value = isJsonObject(entry) ? entry.value : undefined;
    if (!isJsonObject(entry) || value === undefined || !isJsonNumber(value)) {
      missing.push(spec.name);
      continue;
    }
    const { value: _value, ...definition } = entry;
    if (canonicalJson(definition) !== canonicalJson(spec.definition)) missing.push(spec.name);
    else values[spec.name] = toDouble(value);
  }
  return { values, missing };
}
