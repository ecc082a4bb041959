import { Ajv, type ErrorObject } from "ajv";
import type { Problem } from "../index.ts";

/**
 * The service's validators: every error at once, unknown members refused rather than silently dropped.
 * Query strings and path parameters are text, so their numbers are coerced ("10" → 10); JSON bodies are
 * typed already, and a string where a number belongs is an error there.
 */
const forText = new Ajv({ allErrors: true, coerceTypes: true, useDefaults: true, removeAdditional: false });
const forJson = new Ajv({ allErrors: true, removeAdditional: false });

export type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** A validator for query strings and path parameters. */
export function compileTextSchema(schema: object): Validate {
  return forText.compile(schema);
}

/** A validator for JSON bodies. */
export function compileJsonSchema(schema: object): Validate {
  return forJson.compile(schema);
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
