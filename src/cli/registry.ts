import { isJsonObject } from "../core/json.ts";
import { parseJson } from "../core/parse-json.ts";
import { LumynError } from "../core/problem.ts";
import { expect, readTextFile } from "./io.ts";

/**
 * Reads a reason-code registry: a JSON list of codes, or `{codes: [{code, description}]}` as in Lumyn's
 * `reason_codes.v1.json`.
 */
export function loadReasonCodeRegistry(path: string): Set<string> {
  const value = expect(parseJson(readTextFile(path, "invalid_policy"), { file: path }));
  const entries = Array.isArray(value)
    ? value
    : isJsonObject(value) && Array.isArray(value.codes)
      ? value.codes
      : undefined;
  const codes = entries?.map((entry) =>
    typeof entry === "string" ? entry : isJsonObject(entry) ? entry.code : undefined,
  );
  if (!codes || codes.some((code) => typeof code !== "string")) {
    throw new LumynError({
      kind: "invalid_policy",
      problems: [
        {
          code: "registry",
          message: "the reason-code registry must be a list of codes or {codes: [{code}]}",
          file: path,
        },
      ],
    });
  }
  return new Set(codes as string[]);
}
