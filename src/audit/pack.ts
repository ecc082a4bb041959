/**
 * Decision packs: one decision in a zip, with everything needed to check it and re-run it offline. The layout
 * is the reference's (`decision_record.json`, `request.json`, `policy.yml`, `README.txt`) plus `memory.json`,
 * `events.json` and `manifest.json`. Packs are read in memory only, and every entry is inspected (name, sizes,
 * compression ratio) before anything is inflated: an unsafe pack is refused whole, never extracted.
 */
import { unzipSync, zipSync } from "fflate";
import { sha256 } from "../core/digest.ts";
import { canonicalJson, isJsonObject, type JsonObject, type JsonValue, stringify } from "../core/json.ts";
import { parseJson } from "../core/parse-json.ts";
import { fail, ok, type Problem, type Result } from "../core/problem.ts";
import type { DecisionEvent } from "../domain/decision-event.ts";
import type { DecisionRecord } from "../domain/decision-record.ts";
import { type EntryProof, proofJson } from "./proof.ts";

export const RECORD_FILE = "decision_record.json";
export const REQUEST_FILE = "request.json";
export const POLICY_FILE = "policy.yml";
export const README_FILE = "README.txt";
export const MEMORY_FILE = "memory.json";
export const EVENTS_FILE = "events.json";
export const MANIFEST_FILE = "manifest.json";
export const PROOF_FILE = "proof.json";

/** Files a pack must have (what Lumyn 1.3.6 writes, less its README) and may have. */
const REQUIRED_FILES = [RECORD_FILE, REQUEST_FILE, POLICY_FILE] as const;
const ALLOWED_FILES: ReadonlySet<string> = new Set([
  ...REQUIRED_FILES,
  README_FILE,
  MEMORY_FILE,
  EVENTS_FILE,
  PROOF_FILE,
  MANIFEST_FILE,
]);

export const MANIFEST_SCHEMA = "lumyn_pack_manifest.v1";
export const MEMORY_SCHEMA = "lumyn_pack_memory.v1";

/** What a pack reader accepts; a pack outside these is refused before anything is inflated. */
export const PACK_LIMITS = {
  /** The zip file itself. */
  packBytes: 64 * 1024 * 1024,
  entries: ALLOWED_FILES.size,
  /** One file, inflated. */
  entryBytes: 16 * 1024 * 1024,
  /** All files, inflated. */
  totalBytes: 32 * 1024 * 1024,
  /** Inflated ÷ compressed size above which an entry is a zip bomb (JSON and YAML compress 3–20×). */
  ratio: 100,
  /** Entries smaller than this are never bombs, whatever their ratio. */
  ratioFloorBytes: 64 * 1024,
} as const;

const README = `Lumyn decision pack (decision_record.v1)

Files:
- decision_record.json (schema-valid decision_record.v1)
- policy.yml (policy snapshot by policy_hash, if available)
- request.json (schema-valid decision_request.v1)
- memory.json (the memory snapshot the decision used, with the fingerprints of its hits)
- events.json (labels and other events of the decision)
- proof.json (when the log is signed: a signed checkpoint and the decision's inclusion proof in it)
- manifest.json (sha256 of every other file)

Check and re-run it offline: lumyn replay <this file>
Check where it comes from too: lumyn replay <this file> --public-key <the signer's public key>
`;

/** A document as the reference writes pack files: 2-space indent, sorted keys, trailing newline. */
function documentText(value: JsonValue): string {
  return `${stringify(value, { indent: 2 })}\n`;
}

export interface PackSource {
  readonly record: DecisionRecord;
  /** The exact text of the policy whose hash the record names. */
  readonly policyText: string;
  readonly events: readonly DecisionEvent[];
  /** That the decision is in a signed log (when the store signs its log). */
  readonly proof?: EntryProof;
}

/** The `memory.json` of a record: its snapshot (null when memory was not consulted) and its hits' fingerprints. */
function memoryDocument(record: DecisionRecord): JsonObject {
  const snapshot = record.determinism.memory;
  const hits = isJsonObject(snapshot) && Array.isArray(snapshot.hits) ? snapshot.hits : [];
  return {
    schema_version: MEMORY_SCHEMA,
    snapshot: snapshot ?? null,
    fingerprints: hits.filter(isJsonObject).map((hit) => ({
      decision_id: hit.decision_id ?? null,
      outcome: hit.outcome ?? null,
      fingerprint: hit.fingerprint ?? null,
    })),
  };
}

/** The pack's files, in order, as bytes (the manifest last, over all the others). */
export function packFiles(source: PackSource): [string, Uint8Array][] {
  const { record } = source;
  const encode = (text: string) => new TextEncoder().encode(text);
  const files: [string, Uint8Array][] = [
    [RECORD_FILE, encode(documentText(record))],
    [REQUEST_FILE, encode(documentText(record.request))],
    [POLICY_FILE, encode(source.policyText)],
    [README_FILE, encode(README)],
    [MEMORY_FILE, encode(documentText(memoryDocument(record)))],
    [
      EVENTS_FILE,
      encode(
        documentText(
          source.events.map((event) => ({
            event_id: event.eventId,
            decision_id: event.decisionId,
            type: event.type,
            created_at: event.createdAt,
            data: event.data,
          })),
        ),
      ),
    ],
  ];
  if (source.proof) files.push([PROOF_FILE, encode(documentText(proofJson(source.proof)))]);
  const digests: JsonObject = {};
  for (const [name, bytes] of files) digests[name] = sha256(bytes);
  const manifest = { schema_version: MANIFEST_SCHEMA, decision_id: record.decision_id, files: digests };
  files.push([MANIFEST_FILE, encode(documentText(manifest))]);
  return files;
}

/** The zip of a pack. Entries are dated with the decision, so the same decision always packs to the same bytes. */
export function buildPack(source: PackSource): Uint8Array {
  const mtime = new Date(source.record.created_at);
  const entries: Record<string, [Uint8Array, { level: 9; mtime: Date }]> = {};
  for (const [name, bytes] of packFiles(source)) entries[name] = [bytes, { level: 9, mtime }];
  return zipSync(entries);
}

/** The files of a pack that passed every check, as text. */
export interface PackContents {
  readonly files: ReadonlyMap<string, string>;
  /** Whether the pack had a manifest (packs by Lumyn 1.3.6 do not) and so every file was checked against it. */
  readonly manifest: boolean;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function unsafe(file: string, problems: Problem[], code: string, message: string): void {
  problems.push({ code, message, file });
}

/** Why an entry's name is unsafe or unexpected, if it is. */
function nameProblem(name: string): { code: string; message: string } | undefined {
  if (/^([/\\]|[A-Za-z]:)/.test(name))
    return { code: "absolute_path", message: `entry '${name}' has an absolute path` };
  if (name.split(/[/\\]/).includes(".."))
    return { code: "path_traversal", message: `entry '${name}' climbs out of the pack (path traversal)` };
  if (!ALLOWED_FILES.has(name))
    return {
      code: "unexpected_file",
      message: `entry '${name}' is not a pack file (expected only ${[...ALLOWED_FILES].join(", ")})`,
    };
  return undefined;
}

/**
 * Reads a pack from its bytes, in memory. Refused, with every reason: names that are absolute, climb out
 * (`..`), repeat or are not pack files; entries or totals over {@link PACK_LIMITS}; zip-bomb ratios; unknown
 * compression; text that is not UTF-8; and, when there is a manifest, any file whose sha256 differs from it
 * (a tampered file), is missing from it or is listed but absent.
 */
export function readPack(bytes: Uint8Array, file: string): Result<PackContents> {
  const problems: Problem[] = [];
  if (bytes.length > PACK_LIMITS.packBytes) {
    unsafe(
      file,
      problems,
      "pack_too_large",
      `the pack is ${bytes.length} bytes, over the limit of ${PACK_LIMITS.packBytes}`,
    );
    return fail("invalid_request", problems);
  }
  const seen = new Set<string>();
  let total = 0;
  let count = 0;
  try {
    // First pass: the central directory only; nothing is inflated.
    unzipSync(bytes, {
      filter: (entry) => {
        count++;
        const where = `${file}:${entry.name}`;
        const named = nameProblem(entry.name);
        if (named) unsafe(where, problems, named.code, named.message);
        if (seen.has(entry.name))
          unsafe(where, problems, "duplicate_entry", `entry '${entry.name}' appears more than once`);
        seen.add(entry.name);
        if (entry.compression !== 0 && entry.compression !== 8)
          unsafe(
            where,
            problems,
            "compression",
            `entry '${entry.name}' uses compression method ${entry.compression} (only stored and deflate are read)`,
          );
        if (entry.originalSize > PACK_LIMITS.entryBytes)
          unsafe(
            where,
            problems,
            "entry_too_large",
            `entry '${entry.name}' inflates to ${entry.originalSize} bytes, over the limit of ${PACK_LIMITS.entryBytes}`,
          );
        total += entry.originalSize;
        const ratio = entry.originalSize / Math.max(entry.size, 1);
        if (entry.originalSize >= PACK_LIMITS.ratioFloorBytes && ratio > PACK_LIMITS.ratio)
          unsafe(
            where,
            problems,
            "zip_bomb",
            `entry '${entry.name}' inflates ${Math.round(ratio)}× (over ${PACK_LIMITS.ratio}×): a zip bomb`,
          );
        return false;
      },
    });
  } catch (error) {
    unsafe(file, problems, "not_a_zip", `not a readable zip: ${(error as Error).message}`);
    return fail("invalid_request", problems);
  }
  if (count > PACK_LIMITS.entries)
    unsafe(
      file,
      problems,
      "too_many_entries",
      `the pack has ${count} entries, over the limit of ${PACK_LIMITS.entries}`,
    );
  if (total > PACK_LIMITS.totalBytes)
    unsafe(
      file,
      problems,
      "pack_too_large",
      `the pack inflates to ${total} bytes, over the limit of ${PACK_LIMITS.totalBytes}`,
    );
  for (const required of REQUIRED_FILES)
    if (!seen.has(required)) unsafe(file, problems, "missing_file", `the pack has no ${required}`);
  if (problems.length > 0) return fail("invalid_request", problems);

  let inflated: Record<string, Uint8Array>;
  try {
    inflated = unzipSync(bytes);
  } catch (error) {
    unsafe(file, problems, "not_a_zip", `an entry cannot be inflated: ${(error as Error).message}`);
    return fail("invalid_request", problems);
  }
  const files = new Map<string, string>();
  for (const [name, data] of Object.entries(inflated)) {
    try {
      files.set(name, strictUtf8.decode(data));
    } catch {
      unsafe(`${file}:${name}`, problems, "not_utf8", `${name} is not valid UTF-8`);
    }
  }
  if (problems.length > 0) return fail("invalid_request", problems);
  const manifestText = files.get(MANIFEST_FILE);
  if (manifestText !== undefined) checkManifest(manifestText, inflated, `${file}:${MANIFEST_FILE}`, problems);
  if (problems.length > 0) return fail("invalid_request", problems);
  return ok({ files, manifest: manifestText !== undefined });
}

function checkManifest(
  text: string,
  inflated: Readonly<Record<string, Uint8Array>>,
  where: string,
  problems: Problem[],
): void {
  const parsed = parseJson(text, { file: where });
  const listed = parsed.ok && isJsonObject(parsed.value) ? parsed.value.files : undefined;
  if (
    !parsed.ok ||
    !isJsonObject(parsed.value) ||
    parsed.value.schema_version !== MANIFEST_SCHEMA ||
    !isJsonObject(listed)
  ) {
    problems.push({
      code: "manifest",
      message: `not a ${MANIFEST_SCHEMA}`,
      file: where,
      pointer: "/files",
      expected: "{schema_version, files: {name: sha256}}",
    });
    return;
  }
  for (const [name, data] of Object.entries(inflated)) {
    if (name === MANIFEST_FILE) continue;
    const expected = listed[name];
    if (expected === undefined)
      problems.push({
        code: "tampered",
        message: `${name} is not listed in the manifest (added after packing)`,
        file: where,
      });
    else if (expected !== sha256(data))
      problems.push({
        code: "tampered",
        message: `${name} does not match its sha256 in the manifest (changed after packing)`,
        file: where,
        pointer: `/files/${name}`,
      });
  }
  for (const name of Object.keys(listed))
    if (!(name in inflated))
      problems.push({
        code: "tampered",
        message: `${name} is listed in the manifest but missing from the pack`,
        file: where,
      });
}

/** A pack file parsed as JSON (losslessly), or the problems with it. */
export function packJson(contents: PackContents, name: string, file: string): Result<JsonValue> {
  const text = contents.files.get(name);
  if (text === undefined)
    return fail("invalid_request", [{ code: "missing_file", message: `the pack has no ${name}`, file }]);
  return parseJson(text, { file: `${file}:${name}`, maxBytes: PACK_LIMITS.entryBytes });
}

/** True when two JSON values are the same document (same canonical JSON). */
export function sameJson(a: JsonValue, b: JsonValue): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
