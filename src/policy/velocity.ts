import { parseDuration } from "../core/duration.ts";
import {
  canonicalJson,
  escapePointerToken,
  isJsonObject,
  type JsonObject,
  type JsonValue,
} from "../core/json.ts";
import { didYouMean, type Problem } from "../core/problem.ts";
import { VERDICTS } from "../core/verdict.ts";
import type { VelocityMeasure, VelocitySpec, VelocityWindow } from "../domain/velocity.ts";
import { REQUEST_ROOTS } from "./model.ts";

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
