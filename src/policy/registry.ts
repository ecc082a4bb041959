import { isJsonObject } from "../core/json.ts";
import { parseJson } from "../core/parse-json.ts";
import { fail, ok, type Result } from "../core/problem.ts";

/**
 * A reason-code registry: with one, a policy may use only the codes it lists. The text is a JSON list of
 * codes, or `{codes: [{code, description}]}` as in Lumyn's `reason_codes.v1.json`.
 */
export function parseReasonCodeRegistry(text: string, file: string): Result<Set<string>> {
  const parsed = parseJson(text, { file });
  if (!parsed.ok) return fail("invalid_policy", parsed.problems);
  const value = parsed.value;
  const entries = Array.isArray(value)
    ? value
    : isJsonObject(value) && Array.isArray(value.codes)
      ? value.codes
      : undefined;
  const codes = entries?.map((entry) =>
    typeof entry === "string" ? entry : isJsonObject(entry) ? entry.code : undefined,
  );
  if (!codes || codes.some((code) => typeof code !== "string")) {
    return fail("invalid_policy", [
      {
        code: "registry",
        message: "a reason-code registry must be a list of codes or {codes: [{code}]}",
        file,
        expected: '["CODE_A", …] or {"codes": [{"code": "CODE_A"}, …]}',
      },
    ]);
  }
  return ok(new Set(codes as string[]));
}
