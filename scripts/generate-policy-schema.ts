/**
 * Writes src/schemas/policy.v1.schema.json, the JSON Schema that editors check policies with (`lumyn init`
 * copies it into workspaces). Conditions and their operators come from the operator table
 * (src/policy/operator-table.ts), the rest is written here. Run `npm run generate` after changing either; a
 * test checks that the committed schema is what this script writes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { canonicalJson, type JsonObject, type JsonValue } from "../src/core/json.ts";
import { DEFAULT_WEIGHTS } from "../src/memory/fingerprint.ts";
import { DERIVED_FLAT_KEYS } from "../src/policy/model.ts";
import { FLAT_OPERATORS, NESTED_OPERATORS, type Operator } from "../src/policy/operator-table.ts";

export const POLICY_SCHEMA = join(import.meta.dirname, "../src/schemas/policy.v1.schema.json");

const OPERATORS: JsonObject = { $ref: "#/$defs/operators" };

/** The nested-operator form: a mapping of operators, each with its operand's schema. */
function operatorsSchema(): JsonObject {
  return {
    type: "object",
    minProperties: 1,
    additionalProperties: false,
    description: "Nested-operator form: every operator given must hold. A missing value reads as null.",
    properties: Object.fromEntries(
      Object.entries(NESTED_OPERATORS).map(([name, operator]: [string, Operator]) => [name, operator.schema]),
    ),
  };
}

/** An operand schema that says nothing: the operand may be any value. */
function isAnything(schema: JsonObject): boolean {
  return Object.keys(schema).length === 0;
}

/**
 * Flat keys: on a derived feature (a scalar), a mapping is always nested operators; on an evidence key, a
 * mapping is an equality's operand unless it names an operator, which a schema cannot tell apart.
 */
function conditionsSchema(): JsonObject {
  const properties: Record<string, JsonValue> = {};
  for (const [key, { operator, description }] of Object.entries(DERIVED_FLAT_KEYS)) {
    const { schema } = FLAT_OPERATORS[operator];
    properties[key] = {
      ...(description ? { description } : {}),
      anyOf: [isAnything(schema) ? { not: { type: "object" } } : schema, OPERATORS],
    };
  }
  const bySchema = new Map<string, { schema: JsonObject; names: string[] }>();
  for (const [name, { schema }] of Object.entries(FLAT_OPERATORS)) {
    const key = canonicalJson(schema);
    const group = bySchema.get(key) ?? { schema, names: [] };
    group.names.push(name);
    bySchema.set(key, group);
  }
  const patternProperties: Record<string, JsonValue> = {};
  for (const { schema, names } of bySchema.values()) {
    const suffix = names.length === 1 ? names[0] : `(${names.join("|")})`;
    patternProperties[`^evidence\\..+_${suffix}$`] = isAnything(schema) ? {} : { anyOf: [schema, OPERATORS] };
  }
  return {
    type: "object",
    description:
      "Conditions that must all hold. Flat keys as Lumyn 1.3.6 writes them (evidence.<key>_<op>, amount_usd_gt …), or a path with operators: amount_usd: {gt: 1000}, user.trusted: {eq: true}.",
    properties,
    patternProperties,
    additionalProperties: OPERATORS,
  };
}

export function policySchema(): JsonObject {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://lumyn.dev/schemas/policy.v1.schema.json",
    title: "Lumyn policy (policy.v1)",
    description:
      "A Lumyn policy: rules in stages, evaluated all; the strongest verdict wins (ABSTAIN > DENY > ESCALATE > ALLOW). `lumyn policy validate` checks the same shape and also what a schema cannot (duplicate rule ids, regular expressions, empty ranges, a reason-code registry).",
    type: "object",
    additionalProperties: false,
    required: ["schema_version", "policy_id", "policy_version", "defaults", "rules"],
    properties: {
      schema_version: {
        const: "policy.v1",
      },
      policy_id: {
        type: "string",
        minLength: 1,
      },
      policy_version: {
        type: "string",
        minLength: 1,
        description: 'A string: quote versions such as "1.0".',
      },
      defaults: {
        type: "object",
        additionalProperties: false,
        required: ["mode", "default_verdict", "default_reason_code"],
        properties: {
          mode: {
            enum: ["enforce", "advisory"],
          },
          default_verdict: {
            type: "string",
            enum: ["ALLOW", "DENY", "ESCALATE", "ABSTAIN"],
          },
          default_reason_code: {
            type: "string",
            pattern: "^[A-Z0-9_]+$",
          },
          approval: {
            $ref: "#/$defs/approval",
          },
        },
      },
      thresholds: {
        type: "object",
      },
      required_evidence: {
        type: "object",
        additionalProperties: {
          type: "array",
          items: {
            type: "string",
          },
        },
      },
      extensions: {
        type: "object",
      },
      rules: {
        type: "array",
        minItems: 1,
        items: {
          $ref: "#/$defs/rule",
        },
      },
      memory: {
        type: "object",
        additionalProperties: false,
        description:
          "When memory of labelled outcomes speaks, how strongly, and what a fingerprint looks at (see docs/memory.md). Not in Lumyn 1.3.6.",
        properties: {
          enabled: { type: "boolean" },
          top_k: { type: "integer", minimum: 1, maximum: 100 },
          scope: {
            enum: ["action_type", "tenant"],
            description: "Compare with the tenant's decisions of the same action type, or with all of them.",
          },
          block_at: { $ref: "#/$defs/similarity" },
          escalate_at: { $ref: "#/$defs/similarity" },
          allow_at: { $ref: "#/$defs/similarity" },
          block_verdict: { enum: ["DENY", "ABSTAIN"] },
          weights: {
            type: "object",
            additionalProperties: false,
            properties: Object.fromEntries(
              Object.keys(DEFAULT_WEIGHTS).map((key) => [key, { type: "number", minimum: 0 }]),
            ),
          },
          evidence: {
            type: "object",
            additionalProperties: false,
            properties: {
              include: { type: "array", items: { type: "string" } },
              ignore: { type: "array", items: { type: "string" } },
              weights: { type: "object", additionalProperties: { type: "number", minimum: 0 } },
            },
          },
        },
      },
      velocity: {
        type: "object",
        description:
          "Named measures over the tenant's recent decisions, read in conditions as velocity.<name> (see docs/registry.md). Not in Lumyn 1.3.6.",
        propertyNames: {
          pattern: "^[a-z][a-z0-9_]{0,63}$",
        },
        maxProperties: 32,
        additionalProperties: {
          $ref: "#/$defs/velocity_measure",
        },
      },
    },
    $defs: {
      rule: {
        type: "object",
        additionalProperties: false,
        required: ["id", "stage", "then"],
        properties: {
          id: {
            type: "string",
            minLength: 1,
          },
          stage: {
            enum: ["REQUIREMENTS", "HARD_BLOCKS", "ESCALATIONS", "ALLOW_PATHS", "TRUST_PATHS"],
            description: "TRUST_PATHS is an alias of ALLOW_PATHS.",
          },
          description: {
            type: "string",
          },
          when: {
            anyOf: [
              {
                $ref: "#/$defs/conditions",
              },
              {
                type: "null",
              },
            ],
          },
          if: {
            anyOf: [
              {
                $ref: "#/$defs/conditions",
              },
              {
                type: "null",
              },
            ],
          },
          if_all: {
            type: ["array", "null"],
            items: {
              $ref: "#/$defs/conditions",
            },
          },
          if_any: {
            type: ["array", "null"],
            items: {
              $ref: "#/$defs/conditions",
            },
          },
          // biome-ignore lint/suspicious/noThenProperty: a rule's `then` section.
          then: {
            type: "object",
            additionalProperties: false,
            required: ["verdict", "reason_codes"],
            properties: {
              verdict: {
                type: "string",
                enum: ["ALLOW", "DENY", "ESCALATE", "ABSTAIN"],
              },
              reason_codes: {
                type: "array",
                minItems: 1,
                items: {
                  type: "string",
                  pattern: "^[A-Z0-9_]+$",
                },
              },
              queries: {
                type: "array",
                items: {
                  type: "object",
                },
              },
              obligations: {
                type: "array",
                items: {
                  type: "object",
                  additionalProperties: false,
                  required: ["type"],
                  properties: {
                    type: {
                      enum: ["check", "required_evidence", "rollback_hint", "rate_limit", "log"],
                    },
                    title: {
                      type: "string",
                    },
                    details: {
                      type: "string",
                    },
                    fields: {
                      type: "array",
                      items: {
                        type: "string",
                      },
                    },
                    severity: {
                      enum: ["info", "warning", "critical"],
                    },
                  },
                },
              },
              approval: {
                $ref: "#/$defs/approval",
              },
            },
          },
        },
      },
      conditions: conditionsSchema(),
      operators: operatorsSchema(),
      approval: {
        type: "object",
        additionalProperties: false,
        required: ["approver_roles"],
        description:
          "People must approve an ESCALATE: who, how many, by when, and what a timeout does. Only on ESCALATE rules (and defaults, for any ESCALATE).",
        properties: {
          approver_roles: {
            type: "array",
            minItems: 1,
            items: {
              type: "string",
              minLength: 1,
            },
          },
          quorum: {
            type: "integer",
            minimum: 1,
            maximum: 100,
            default: 1,
          },
          timeout: {
            type: "string",
            pattern: "^[1-9][0-9]{0,6}[smhd]$",
            default: "24h",
            description: "Up to 90d.",
          },
          on_timeout: {
            enum: ["DENY", "ESCALATE"],
            default: "DENY",
          },
          escalation_roles: {
            type: "array",
            minItems: 1,
            items: {
              type: "string",
              minLength: 1,
            },
            description: "Required when on_timeout is ESCALATE.",
          },
          separation_of_duties: {
            type: "boolean",
            default: true,
          },
        },
        if: {
          properties: {
            on_timeout: {
              const: "ESCALATE",
            },
          },
          required: ["on_timeout"],
        },
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then.
        then: {
          required: ["escalation_roles"],
        },
      },
      similarity: {
        type: "number",
        minimum: 0,
        maximum: 1,
        description: "A similarity between 0 and 1.",
      },
      velocity_measure: {
        type: "object",
        additionalProperties: false,
        required: ["window"],
        oneOf: [
          {
            required: ["count"],
          },
          {
            required: ["sum"],
          },
        ],
        properties: {
          count: {
            const: "decisions",
            description: "Count the decisions.",
          },
          sum: {
            type: "string",
            pattern: "^(amount_usd|[A-Za-z0-9_-]{1,64}(\\.[A-Za-z0-9_-]{1,64})*)$",
            description:
              "amount_usd, or a request path to a number (an evidence key when it does not start with evidence, subject, action, context or tenant).",
          },
          where: {
            type: "object",
            additionalProperties: false,
            properties: {
              verdict: {
                type: "array",
                minItems: 1,
                items: {
                  enum: ["ALLOW", "DENY", "ESCALATE", "ABSTAIN"],
                },
              },
              action_type: {
                type: "array",
                minItems: 1,
                items: {
                  type: "string",
                },
              },
            },
          },
          group_by: {
            type: "string",
            pattern: "^[A-Za-z0-9_-]{1,64}(\\.[A-Za-z0-9_-]{1,64})*$",
            description: "The request path decisions are grouped by, e.g. subject.id.",
          },
          window: {
            type: "string",
            pattern: "^(today|[1-9][0-9]{0,6}[smhd])$",
            description: "A duration up to 31d, or today (since 00:00 UTC).",
          },
        },
      },
    },
  };
}

/** The schema as the file holds it (and as `lumyn init` writes it). */
export function generatePolicySchema(): string {
  return `${JSON.stringify(policySchema(), null, 2)}\n`;
}

if (import.meta.main) {
  writeFileSync(POLICY_SCHEMA, generatePolicySchema());
  process.stdout.write(`wrote ${POLICY_SCHEMA}\n`);
}
