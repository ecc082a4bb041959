import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  type ScalarTag,
  type YAMLMap,
  type Document as YamlDocument,
} from "yaml";
import {
  integerFromLiteral,
  integerTooLong,
  JsonFloat,
  type JsonObject,
  type JsonValue,
  MAX_INTEGER_DIGITS,
  setMember,
} from "../core/json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";

/**
 * YAML as PyYAML's `safe_load` (YAML 1.1) reads it, because `policy_hash` is the digest of that reading.
 * The `yaml` package parses (with source positions); the scalar resolvers below replace its YAML 1.1 ones
 * where PyYAML differs: `y`/`n` are strings, exponents need a sign and a dot (`1.0e+5`; `1e5` is a string),
 * `09` is a string, and dates are refused (PyYAML makes a date that JSON cannot hold).
 */

/** Nodes that aliases may copy into a document, all aliases together (a billion laughs stops here). */
export const MAX_ALIAS_COPIES = 100_000;

export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Positions by the JSON pointer of the converted value. */
export interface Positions {
  get(pointer: string): Position | undefined;
}

export interface LoadedYaml {
  readonly value: JsonValue;
  /** Where the value at a JSON pointer starts. */
  readonly valuePositions: Positions;
  /** Where the key of the member at a JSON pointer starts. */
  readonly keyPositions: Positions;
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

/**
 * PyYAML's `construct_yaml_int`, for integers of at most {@link MAX_INTEGER_DIGITS} decimal digits: Python
 * cannot write a longer one into the policy's hash, and reading one costs time that grows faster than its
 * length (a sexagesimal `1:0:0:…` of 680 KB took 50 s).
 */
export function resolveYamlInt(source: string, onError: (message: string) => void): number | bigint {
  const text = source.replace(/_/g, "");
  const negative = text.startsWith("-");
  const body = text.replace(/^[-+]/, "");
  const tooLong = (): number => {
    const shown = source.length > 24 ? `${source.slice(0, 20)}…` : source;
    onError(
      `integer ${shown} has more than ${MAX_INTEGER_DIGITS} digits, the most Python reads; quote it to keep it a string`,
    );
    return 0;
  };
  let magnitude: bigint;
  if (body === "0") magnitude = 0n;
  else if (body.startsWith("0b")) magnitude = BigInt(body);
  else if (body.startsWith("0x")) magnitude = BigInt(body);
  else if (body.includes(":")) {
    magnitude = 0n;
    for (const part of sexagesimal(body).parts) {
      magnitude = magnitude * 60n + BigInt(part);
      if (integerTooLong(magnitude)) return tooLong();
    }
  } else if (body.startsWith("0")) magnitude = BigInt(`0o${body.slice(1)}`);
  else if (body.length > MAX_INTEGER_DIGITS) return tooLong();
  else magnitude = BigInt(body);
  if (integerTooLong(magnitude)) return tooLong();
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
    resolve: (source: string, onError: (message: string) => void) => resolveYamlInt(source, onError),
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

/**
 * Runs a parse with `process.env` a plain empty object. The yaml package looks up `process.env.LOG_TOKENS` for
 * every token it reads, and each look-up in the real environment is a call into the runtime: about a third of
 * the time a large policy took to parse. The parse is synchronous, so nothing else sees the stand-in, and the
 * environment is back before anything else runs.
 */
function withoutEnvironment<T>(parse: () => T): T {
  const environment = process.env;
  process.env = {};
  try {
    return parse();
  } finally {
    process.env = environment;
  }
}

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

  const doc: YamlDocument.Parsed = withoutEnvironment(() =>
    parseDocument(text, {
      version: "1.1",
      lineCounter,
      uniqueKeys: true,
      prettyErrors: false,
      merge: true,
      customTags: (tags) => [
        ...tags.filter((tag) => typeof tag === "object" && KEPT_TAGS.has(tag.tag)),
        ...pyyamlTags,
      ],
    }),
  );
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

  // PyYAML refuses an anchor defined twice; the yaml package lets the later one win.
  const anchors = new Set<string>();
  const noteAnchor = (node: Node): void => {
    const anchor = node.anchor;
    if (anchor === undefined) return;
    if (anchors.has(anchor))
      problems.push(
        located(
          { code: "yaml", message: `anchor &${anchor} is defined twice`, expected: "unique anchor names" },
          node.range?.[0],
        ),
      );
    anchors.add(anchor);
  };
  let copies = 0;
  let expansionBounded = false;
  /** The alias of the document itself (not of a copy) being expanded: where an expansion is reported. */
  let expanding: Node | undefined;

  /** `aliasDepth` > 0 while an alias's node is copied in: what alias expansion adds to the document. */
  const convert = (node: unknown, aliasDepth: number): JsonValue | undefined => {
    if (expansionBounded) return undefined;
    if (node === null || node === undefined) return null;
    const yamlNode = node as Node;
    if (aliasDepth === 0) noteAnchor(yamlNode);
    else if (++copies > MAX_ALIAS_COPIES) {
      expansionBounded = true;
      problems.push(
        located(
          {
            code: "too_large",
            message: `document expands to more than ${MAX_ALIAS_COPIES} nodes through aliases (alias expansion is bounded)`,
            expected: "fewer or smaller aliases: each is a copy of its anchor's node",
          },
          expanding?.range?.[0],
        ),
      );
      return undefined;
    }
    if (isAlias(node)) {
      if (aliasDepth === 0) expanding = node;
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
      return convert(target, aliasDepth + 1);
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
      const items = node.items;
      const array: JsonValue[] = new Array(items.length);
      for (let i = 0; i < items.length; i++) array[i] = convert(items[i], aliasDepth) ?? null;
      return array;
    }
    if (isMap(node)) {
      const object: JsonObject = {};
      const explicit = new Set<string>();
      const merges: unknown[] = [];
      for (const pair of node.items) {
        const key = pair.key;
        if (aliasDepth === 0 && key !== null && typeof key === "object") noteAnchor(key as Node);
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
          // Read anyway, for what is wrong inside it too.
          convert(pair.value, aliasDepth);
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
          convert(pair.value, aliasDepth);
          continue;
        }
        explicit.add(key.value);
        const value = convert(pair.value, aliasDepth);
        if (value !== undefined) setMember(object, key.value, value);
      }
      for (const merge of merges) {
        const sources = isSeq(merge) ? merge.items : [merge];
        for (const source of sources) {
          const merged = convert(source, aliasDepth);
          if (expansionBounded) return undefined;
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

  const value = convert(doc.contents, 0) ?? null;
  if (problems.length > 0) return fail("invalid_policy", problems);
  const positions = new DocumentPositions(doc, where);
  return ok({
    value,
    valuePositions: { get: (pointer) => positions.value(pointer) },
    keyPositions: { get: (pointer) => positions.key(pointer) },
  });
}

/**
 * Where the node at a JSON pointer of the converted value is in the text, found when asked: walking the YAML
 * document to the node costs far less than recording a position for every node of a large policy, of which
 * only the few with a problem are ever looked up. A path through an alias leads into its anchor's node, and
 * a member a merge key (<<) brought in is found in the mapping it came from, as the conversion reads them.
 */
class DocumentPositions {
  private readonly doc: YamlDocument.Parsed;
  private readonly where: (offset: number) => Position;
  /** The pairs of large mappings by key, made at their first look-up. */
  private readonly indexes = new WeakMap<YAMLMap, Map<string, Pair>>();

  constructor(doc: YamlDocument.Parsed, where: (offset: number) => Position) {
    this.doc = doc;
    this.where = where;
  }

  value(pointer: string): Position | undefined {
    const found = this.find(pointer);
    const offset = found && this.target(found.value)?.range?.[0];
    return offset === undefined ? undefined : this.where(offset);
  }

  key(pointer: string): Position | undefined {
    const offset = this.find(pointer)?.key?.range?.[0];
    return offset === undefined ? undefined : this.where(offset);
  }

  private find(pointer: string): { value: unknown; key?: Node } | undefined {
    let value: unknown = this.doc.contents;
    let key: Node | undefined;
    if (pointer === "") return { value };
    for (const escaped of pointer.slice(1).split("/")) {
      const token = escaped.replace(/~1/g, "/").replace(/~0/g, "~");
      const node = this.target(value);
      if (isSeq(node)) {
        if (!/^(?:0|[1-9]\d*)$/.test(token)) return undefined;
        value = node.items[Number(token)];
        key = undefined;
      } else if (isMap(node)) {
        const pair = this.pair(node, token, 0);
        if (!pair) return undefined;
        value = pair.value;
        key = isScalar(pair.key) ? pair.key : undefined;
      } else return undefined;
      if (value === undefined) return undefined;
    }
    return key ? { value, key } : { value };
  }

  /** The node itself, or the node an alias refers to. */
  private target(value: unknown): Node | undefined {
    let node = value as Node | null | undefined;
    for (let depth = 0; isAlias(node) && depth <= 32; depth++) node = node.resolve(this.doc);
    return node ?? undefined;
  }

  /** The pair that gives a mapping's member: its own, else the first merged mapping's that has it. */
  private pair(map: YAMLMap, key: string, depth: number): Pair | undefined {
    const own = this.ownPair(map, key);
    if (own || depth > 32) return own;
    for (const item of map.items) {
      if (!isScalar(item.key) || typeof item.key.value !== "symbol") continue;
      const merge = this.target(item.value);
      for (const source of isSeq(merge) ? merge.items : [merge]) {
        const mapping = this.target(source);
        const found = isMap(mapping) ? this.pair(mapping, key, depth + 1) : undefined;
        if (found) return found;
      }
    }
    return undefined;
  }

  private ownPair(map: YAMLMap, key: string): Pair | undefined {
    const items = map.items as Pair[];
    if (items.length <= 16) return items.find((item) => isScalar(item.key) && item.key.value === key);
    let index = this.indexes.get(map);
    if (!index) {
      index = new Map();
      for (const item of items)
        if (isScalar(item.key) && typeof item.key.value === "string" && !index.has(item.key.value))
          index.set(item.key.value, item);
      this.indexes.set(map, index);
    }
    return index.get(key);
  }
}
