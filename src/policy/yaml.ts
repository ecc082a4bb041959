import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type ScalarTag,
  visit,
  type Document as YamlDocument,
} from "yaml";
import {
  escapePointerToken,
  integerFromLiteral,
  JsonFloat,
  type JsonObject,
  type JsonValue,
  setMember,
} from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";

/**
 * YAML as PyYAML's `safe_load` (YAML 1.1) reads it, because `policy_hash` is the digest of that reading.
 * The `yaml` package parses (with source positions); the scalar resolvers below replace its YAML 1.1 ones
 * where PyYAML differs: `y`/`n` are strings, exponents need a sign and a dot (`1.0e+5`; `1e5` is a string),
 * `09` is a string, and dates are refused (PyYAML makes a date that JSON cannot hold).
 */

export const MAX_YAML_NODES = 100_000;

export interface Position {
  readonly line: number;
  readonly column: number;
}

export interface LoadedYaml {
  readonly value: JsonValue;
  /** Where the value at a JSON pointer starts. */
  readonly valuePositions: ReadonlyMap<string, Position>;
  /** Where the key of the member at a JSON pointer starts. */
  readonly keyPositions: ReadonlyMap<string, Position>;
}

const BOOL_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const BOOL_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
const INT =
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const FLOAT =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const TIMESTAMP =
  /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/;

function sexagesimal(text: string): { sign: bigint; parts: string[] } {
  const sign = text.startsWith("-") ? -1n : 1n;
  return { sign, parts: text.replace(/^[-+]/, "").split(":") };
}

/** PyYAML's `construct_yaml_int`. */
export function resolveYamlInt(source: string): number | bigint {
  const text = source.replace(/_/g, "");
  const negative = text.startsWith("-");
  const body = text.replace(/^[-+]/, "");
  let magnitude: bigint;
  if (body === "0") magnitude = 0n;
  else if (body.startsWith("0b")) magnitude = BigInt(body);
  else if (body.startsWith("0x")) magnitude = BigInt(body);
  else if (body.includes(":")) {
    magnitude = 0n;
    for (const part of sexagesimal(body).parts) magnitude = magnitude * 60n + BigInt(part);
  } else if (body.startsWith("0")) magnitude = BigInt(`0o${body.slice(1)}`);
  else magnitude = BigInt(body);
  return integerFromLiteral((negative ? -magnitude : magnitude).toString());
}

/** PyYAML's `construct_yaml_float`; the result is always a float. */
export function resolveYamlFloat(source: string): number | JsonFloat {
  const text = source.replace(/_/g, "").toLowerCase();
  let value: number;
  if (text.endsWith(".inf"))
    value = text.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  else if (text === ".nan") value = Number.NaN;
  else if (text.includes(":")) {
    const { sign, parts } = sexagesimal(text);
    let total = 0;
    for (const part of parts) total = total * 60 + Number(part);
    value = Number(sign) * total;
  } else value = Number(text);
  return Number.isInteger(value) || Object.is(value, -0) ? new JsonFloat(value) : value;
}

const pyyamlTags: ScalarTag[] = [
  {
    tag: "tag:yaml.org,2002:bool",
    default: true,
    test: BOOL_TRUE,
    resolve: () => true,
  } as ScalarTag,
  {
    tag: "tag:yaml.org,2002:bool",
    default: true,
    test: BOOL_FALSE,
    resolve: () => false,
  } as ScalarTag,
  {
    tag: "tag:yaml.org,2002:int",
    default: true,
    test: INT,
    resolve: (source: string) => resolveYamlInt(source),
  } as unknown as ScalarTag,
  {
    tag: "tag:yaml.org,2002:float",
    default: true,
    test: FLOAT,
    resolve: (source: string) => resolveYamlFloat(source),
  } as unknown as ScalarTag,
  {
    // YAML 1.1's `=` (the "value" key); PyYAML's safe loader has no constructor for it.
    tag: "tag:yaml.org,2002:value",
    default: true,
    test: /^=$/,
    resolve: (source: string, onError: (message: string) => void) => {
      onError(`'${source}' is YAML 1.1's value indicator; quote it to keep it a string`);
      return source;
    },
  } as unknown as ScalarTag,
  {
    tag: "tag:yaml.org,2002:timestamp",
    default: true,
    test: TIMESTAMP,
    resolve: (source: string, onError: (message: string) => void) => {
      onError(`'${source}' is read as a date by YAML 1.1; quote it to keep it a string`);
      return source;
    },
  } as unknown as ScalarTag,
];

const KEPT_TAGS = new Set([
  "tag:yaml.org,2002:map",
  "tag:yaml.org,2002:seq",
  "tag:yaml.org,2002:str",
  "tag:yaml.org,2002:null",
  "tag:yaml.org,2002:merge",
]);

/** Parses YAML 1.1 text into a JSON value with the positions of every key and value. */
export function loadYaml11(text: string, file?: string): Result<LoadedYaml> {
  const lineCounter = new LineCounter();
  const where = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const located = (problem: Omit<Problem, "file">, offset?: number): Problem => ({
    ...problem,
    ...(file ? { file } : {}),
    ...(offset !== undefined ? where(offset) : {}),
  });

  const doc: YamlDocument.Parsed = parseDocument(text, {
    version: "1.1",
    lineCounter,
    uniqueKeys: true,
    prettyErrors: false,
    merge: true,
    customTags: (tags) => [
      ...tags.filter((tag) => typeof tag === "object" && KEPT_TAGS.has(tag.tag)),
      ...pyyamlTags,
    ],
  });
  const problems: Problem[] = [...doc.errors, ...doc.warnings].map((error) =>
    located(
      {
        code: error.code === "DUPLICATE_KEY" ? "duplicate_key" : "yaml",
        message: error.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? "invalid YAML",
      },
      error.pos[0],
    ),
  );
  if (problems.length > 0) return fail("invalid_policy", problems);

  const valuePositions = new Map<string, Position>();
  const keyPositions = new Map<string, Position>();
  let nodeCount = 0;

  const convert = (node: unknown, pointer: string, aliasDepth: number): JsonValue | undefined => {
    nodeCount++;
    if (nodeCount > MAX_YAML_NODES) {
      problems.push(
        located({
          code: "too_large",
          message: `document expands to more than ${MAX_YAML_NODES} nodes (alias expansion is bounded)`,
        }),
      );
      return undefined;
    }
    if (node === null || node === undefined) return null;
    const yamlNode = node as Node;
    if (yamlNode.range) valuePositions.set(pointer, where(yamlNode.range[0]));
    if (isAlias(node)) {
      if (aliasDepth > 32) {
        problems.push(located({ code: "yaml", message: "aliases nest too deeply" }, node.range?.[0]));
        return undefined;
      }
      const target = node.resolve(doc);
      if (target === undefined) {
        problems.push(
          located(
            {
              code: "yaml",
              message: `alias *${node.source} refers to no anchor`,
              expected: "an anchor (&name) defined before the alias",
            },
            node.range?.[0],
          ),
        );
        return undefined;
      }
      return convert(target, pointer, aliasDepth + 1);
    }
    if (isScalar(node)) {
      const value = node.value;
      if (typeof value === "string" && !value.isWellFormed()) {
        problems.push(
          located(
            {
              code: "invalid_string",
              message: "string contains an unpaired UTF-16 surrogate escape",
              expected: "well-formed Unicode text",
            },
            node.range?.[0],
          ),
        );
        return undefined;
      }
      if (
        value === null ||
        typeof value === "string" ||
        typeof value === "boolean" ||
        typeof value === "bigint" ||
        value instanceof JsonFloat
      )
        return value as JsonValue;
      if (typeof value === "number") {
        if (!Number.isFinite(value)) {
          problems.push(
            located(
              {
                code: "non_finite_number",
                message: `${node.source ?? value} is not a finite number`,
                expected: "a finite number",
              },
              node.range?.[0],
            ),
          );
          return undefined;
        }
        return value;
      }
      problems.push(
        located(
          { code: "yaml", message: `unsupported scalar ${String(node.source ?? value)}` },
          node.range?.[0],
        ),
      );
      return undefined;
    }
    if (isSeq(node)) {
      return node.items.map((item, index) => convert(item, `${pointer}/${index}`, aliasDepth) ?? null);
    }
    if (isMap(node)) {
      const object: JsonObject = {};
      const explicit = new Set<string>();
      const merges: unknown[] = [];
      for (const pair of node.items) {
        const key = pair.key;
        if (isScalar(key) && typeof key.value === "symbol") {
          merges.push(pair.value);
          continue;
        }
        if (!isScalar(key) || typeof key.value !== "string") {
          const source = isScalar(key) ? String(key.source ?? key.value) : "a collection";
          problems.push(
            located(
              {
                code: "non_string_key",
                message: `key ${source} is not a string (YAML 1.1 reads it as ${isScalar(key) ? typeof key.value : "a collection"})`,
                expected: "a string key; quote it",
              },
              (key as Node | null)?.range?.[0],
            ),
          );
          continue;
        }
        if (!key.value.isWellFormed()) {
          problems.push(
            located(
              {
                code: "invalid_string",
                message: "key contains an unpaired UTF-16 surrogate escape",
                expected: "well-formed Unicode text",
              },
              key.range?.[0],
            ),
          );
          continue;
        }
        const childPointer = `${pointer}/${escapePointerToken(key.value)}`;
        if (key.range) keyPositions.set(childPointer, where(key.range[0]));
        explicit.add(key.value);
        const value = convert(pair.value, childPointer, aliasDepth);
        if (value !== undefined) setMember(object, key.value, value);
      }
      for (const merge of merges) {
        const sources = isSeq(merge) ? merge.items : [merge];
        for (const source of sources) {
          const merged = convert(source, pointer, aliasDepth);
          if (
            merged === null ||
            typeof merged !== "object" ||
            Array.isArray(merged) ||
            merged instanceof JsonFloat
          ) {
            problems.push(
              located(
                { code: "yaml", message: "a merge key (<<) must refer to a mapping or a list of mappings" },
                (source as Node | null)?.range?.[0],
              ),
            );
            continue;
          }
          for (const [key, value] of Object.entries(merged)) {
            if (!explicit.has(key) && !Object.hasOwn(object, key)) setMember(object, key, value);
          }
        }
      }
      return object;
    }
    problems.push(located({ code: "yaml", message: "unsupported YAML node" }));
    return undefined;
  };

  // PyYAML refuses an anchor defined twice; the yaml package lets the later one win.
  const anchors = new Set<string>();
  visit(doc, {
    Node(_key, node) {
      const anchor = (node as { anchor?: string }).anchor;
      if (anchor === undefined) return;
      if (anchors.has(anchor))
        problems.push(
          located(
            { code: "yaml", message: `anchor &${anchor} is defined twice`, expected: "unique anchor names" },
            (node as Node).range?.[0],
          ),
        );
      anchors.add(anchor);
    },
  });
  const value = convert(doc.contents, "", 0) ?? null;
  if (problems.length > 0) return fail("invalid_policy", problems);
  return ok({ value, valuePositions, keyPositions });
}
