import { Ajv, type ErrorObject } from "ajv";
import type { Problem } from "../core/problem.ts";

/**
 * The service's validator for query strings, path parameters and small bodies: every error at once, numbers
 * in query strings coerced ("10" → 10), and unknown parameters refused rather than silently dropped.
 */
const ajv = new Ajv({ allErrors: true, coerceTypes: true, useDefaults: true, removeAdditional: false });

export type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

export function compileSchema(schema: object): Validate {
  return ajv.compile(schema);
}

/** Ajv's errors as Lumyn problems, each with the JSON pointer of what it is about. */
export function schemaProblems(errors: readonly ErrorObject[]): Problem[] {
  return errors.map((error) => {
    const params = error.params as Record<string, unknown>;
    if (error.keyword === "additionalProperties") {
      const name = String(params.additionalProperty);
      return {
        code: "unknown_key",
        message: `'${name}' is not allowed here`,
        pointer: `${error.instancePath}/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`,
      };
    }
    if (error.keyword === "required") {
      return {
        code: "required",
        message: `'${String(params.missingProperty)}' is required`,
        pointer: `${error.instancePath}/${String(params.missingProperty)}`,
      };
    }
    return {
      code: error.keyword,
      message: `${error.instancePath || "the value"} ${error.message ?? "is not valid"}`,
      pointer: error.instancePath,
      ...(params.allowedValues ? { expected: (params.allowedValues as unknown[]).join(", ") } : {}),
    };
  });
}
