import { Ajv2020 } from "ajv/dist/2020.js";

/** An operation of an OpenAPI document: what the tests read of it. */
export interface Operation {
  readonly operationId?: string;
  readonly description?: string;
  readonly security?: unknown[];
  readonly parameters?: { name: string; in: string; example?: unknown; schema: object }[];
  readonly requestBody?: { content: Record<string, { schema: object; example?: unknown }> };
  readonly responses: Record<string, { content?: Record<string, { schema: object; example?: unknown }> }>;
}

export interface OpenApiDocument {
  readonly paths: Record<string, Record<string, Operation>>;
  readonly components: { readonly schemas: Record<string, { examples?: unknown[] }> };
}

/**
 * Checks values against the schemas of an OpenAPI 3.1 document (JSON Schema 2020-12), with the document's
 * `#/components/schemas/…` references resolved. Answers what is wrong, an empty list when nothing is.
 */
export function schemaChecker(document: OpenApiDocument): (schema: object, value: unknown) => string[] {
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
  const compiled = new Map<string, ReturnType<typeof ajv.compile>>();
  return (schema, value) => {
    const key = JSON.stringify(schema);
    let validate = compiled.get(key);
    if (!validate) {
      validate = ajv.compile({ ...schema, components: document.components });
      compiled.set(key, validate);
    }
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`);
  };
}

/** The schema a `$ref` to a component points at, else the schema itself. */
export function resolved(document: OpenApiDocument, schema: object): { examples?: unknown[] } {
  const ref = (schema as { $ref?: string }).$ref;
  const name = ref?.replace("#/components/schemas/", "");
  return (name !== undefined ? document.components.schemas[name] : undefined) ?? schema;
}
