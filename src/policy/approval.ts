import { DURATION_UNIT_MS, parseDuration } from "../core/duration.ts";
import { isJsonNumber, isJsonObject, type JsonObject, type JsonValue, toDouble } from "../core/json.ts";
import type { Problem } from "../core/problem.ts";
import type { ApprovalSettings } from "../domain/approval.ts";

export const APPROVAL_KEYS = [
  "approver_roles",
  "quorum",
  "timeout",
  "on_timeout",
  "escalation_roles",
  "separation_of_duties",
] as const;

const MAX_TIMEOUT_MS = 90 * DURATION_UNIT_MS.d;
const MAX_QUORUM = 100;

interface ApprovalChecks {
  report: (problem: Omit<Problem, "file" | "line" | "column">) => void;
  checkKeys: (object: JsonObject, allowed: readonly string[], pointer: string, what: string) => void;
}

/**
 * Validates an `approval:` mapping at `pointer`, reporting every problem (unknown keys included, which fail
 * the policy as a whole); undefined when its own values are wrong.
 */
export function approvalSection(
  value: JsonValue,
  pointer: string,
  what: string,
  { report, checkKeys }: ApprovalChecks,
): ApprovalSettings | undefined {
  if (!isJsonObject(value)) {
    report({
      code: "type",
      message: `${what} must be a mapping`,
      pointer,
      expected: "a mapping with approver_roles, and optionally quorum, timeout, on_timeout, escalation_roles",
    });
    return undefined;
  }
  let failed = false;
  const counting = (problem: Omit<Problem, "file" | "line" | "column">) => {
    failed = true;
    report(problem);
  };
  checkKeys(value, APPROVAL_KEYS, pointer, what);
  const roles = (key: "approver_roles" | "escalation_roles", required: boolean): string[] => {
    const list = value[key];
    if (list === undefined && !required) return [];
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      list.some((role) => typeof role !== "string" || role.trim() === "")
    ) {
      counting({
        code: list === undefined ? "missing_key" : "type",
        message:
          list === undefined
            ? `${what} has no ${key}`
            : `${what}.${key} must be a non-empty list of role names`,
        pointer: `${pointer}/${key}`,
        expected: "a list of role names, e.g. [finance_manager]",
      });
      return [];
    }
    return [...new Set(list as string[])];
  };
  const approverRoles = roles("approver_roles", true);

  let quorum = 1;
  if (value.quorum !== undefined) {
    const q = isJsonNumber(value.quorum) ? toDouble(value.quorum) : Number.NaN;
    if (!Number.isInteger(q) || q < 1 || q > MAX_QUORUM)
      counting({
        code: "type",
        message: `${what}.quorum must be a whole number from 1 to ${MAX_QUORUM}`,
        pointer: `${pointer}/quorum`,
        expected: "the number of distinct approvers needed, e.g. 2",
      });
    else quorum = q;
  }

  let timeout = "24h";
  let timeoutMs = DURATION_UNIT_MS.h * 24;
  if (value.timeout !== undefined) {
    const ms = typeof value.timeout === "string" ? parseDuration(value.timeout) : undefined;
    if (ms === undefined || ms > MAX_TIMEOUT_MS)
      counting({
        code: "type",
        message: `${what}.timeout must be a duration up to 90d, like 90s, 30m, 4h or 2d`,
        pointer: `${pointer}/timeout`,
        expected: "a whole number followed by s, m, h or d",
      });
    else {
      timeout = value.timeout as string;
      timeoutMs = ms;
    }
  }

  let onTimeout: "DENY" | "ESCALATE" = "DENY";
  if (value.on_timeout !== undefined) {
    if (value.on_timeout !== "DENY" && value.on_timeout !== "ESCALATE")
      counting({
        code: "enum",
        message: `${what}.on_timeout must be DENY or ESCALATE`,
        pointer: `${pointer}/on_timeout`,
        expected: "DENY (fail closed) or ESCALATE",
      });
    else onTimeout = value.on_timeout;
  }
  const escalationRoles = roles("escalation_roles", onTimeout === "ESCALATE");

  let separationOfDuties = true;
  if (value.separation_of_duties !== undefined) {
    if (typeof value.separation_of_duties !== "boolean")
      counting({
        code: "type",
        message: `${what}.separation_of_duties must be true or false`,
        pointer: `${pointer}/separation_of_duties`,
        expected: "true or false",
      });
    else separationOfDuties = value.separation_of_duties;
  }
  if (failed) return undefined;
  return { approverRoles, quorum, timeout, timeoutMs, onTimeout, escalationRoles, separationOfDuties };
}
