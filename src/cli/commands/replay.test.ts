import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { strToU8, unzipSync, zipSync } from "fflate";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { buildPack } from "../../audit/pack.ts";
import { proofFromJson } from "../../audit/proof.ts";
import { decide as decideRequest } from "../../engine/decide.ts";
import { loadPolicy } from "../../policy/policy.ts";
import { runCli } from "../../testing/run-cli.ts";

const PACKS = join(import.meta.dirname, "../../../fixtures/compat/packs");
const REFERENCE = ["req_001_allow", "req_002_deny", "req_003_escalate", "req_004_abstain"];

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-replay-"));
after(() => rmSync(root, { recursive: true, force: true }));
const ids: Record<string, string> = {};

function decide(file: string): { decision_id: string; verdict: string } {
  const result = runCli(["decide", file, "--workspace", "ws"], { cwd: root });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

before(() => {
  assert.equal(runCli(["init", "--workspace", "ws"], { cwd: root }).code, 0);
  for (const name of Object.keys(EXAMPLE_REQUESTS)) {
    const record = decide(join("ws", "examples", `${name}.json`));
    ids[record.verdict] = record.decision_id;
  }
  // A failure label makes memory block a look-alike: that record carries a memory snapshot.
  assert.equal(
    runCli(["label", ids.ALLOW as string, "--label", "failure", "--workspace", "ws"], { cwd: root }).code,
    0,
  );
  const request = JSON.parse(readFileSync(join(root, "ws", "examples", "refund-small.json"), "utf8"));
  writeFileSync(join(root, "look-alike.json"), JSON.stringify({ ...request, request_id: "look-alike" }));
  ids.memory = decide("look-alike.json").decision_id;
});

function replay(pack: string, ...args: string[]) {
  return runCli(["replay", pack, ...args], { cwd: root });
}

function exportPack(id: string, out: string): Record<string, Uint8Array> {
  const result = runCli(["export", id, "--workspace", "ws", "--out", out], { cwd: root });
  assert.equal(result.code, 0, result.stderr);
  return unzipSync(readFileSync(join(root, out)));
}

/** Writes a crafted zip and returns its name. */
let crafted = 0;
function craft(bytes: Uint8Array): string {
  const name = `crafted-${++crafted}.zip`;
  writeFileSync(join(root, name), bytes);
  return name;
}

function referenceFiles(): Record<string, Uint8Array> {
  return unzipSync(readFileSync(join(PACKS, "req_001_allow.zip")));
}

/** Replaces every occurrence of a file name in a zip's bytes (local and central headers) with one as long. */
function renameEntry(zip: Uint8Array, from: string, to: string): Uint8Array {
  assert.equal(from.length, to.length);
  const bytes = Buffer.from(zip);
  const needle = Buffer.from(from);
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1))
    bytes.write(to, at, "latin1");
  return bytes;
}

function refused(pack: string, message: RegExp): void {
  const before = readdirSync(root).sort();
  const result = replay(pack);
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, message);
  assert.match(result.stderr, /refused: the pack is malformed or unsafe; nothing was extracted\n$/);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
  assert.deepEqual(readdirSync(root).sort(), before, "nothing is written next to the pack");
}

describe("lumyn replay of packs made by Lumyn 1.3.6", () => {
  for (const name of REFERENCE)
    it(`${name}: the same digests, and the same decision when the policy is re-run`, () => {
      const result = replay(join(PACKS, `${name}.zip`), "--json");
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const report = JSON.parse(result.stdout);
      assert.equal(report.identical, true);
      assert.equal(report.engine_version, "1.3.6");
      assert.deepEqual(
        report.checks.map((check: { name: string; ok: boolean }) => [check.name, check.ok]),
        [
          ["manifest", true],
          ["policy_hash", true],
          ["request", true],
          ["inputs_digest", true],
          ["memory snapshot", true],
          ["origin", true],
        ],
      );
      assert.equal(report.origin, "unsigned", "a 1.3.6 pack proves its digests, not its log");
      assert.equal(report.verdict.replayed, name.split("_")[2]?.toUpperCase());
    });
});

describe("lumyn export --pack and replay", () => {
  for (const verdict of ["ALLOW", "DENY", "ESCALATE", "ABSTAIN", "memory"])
    it(`round-trips a ${verdict} decision`, () => {
      const files = exportPack(ids[verdict] as string, `${verdict}.zip`);
      assert.deepEqual(Object.keys(files).sort(), [
        "README.txt",
        "decision_record.json",
        "events.json",
        "manifest.json",
        "memory.json",
        "policy.yml",
        "request.json",
      ]);
      const record = JSON.parse(Buffer.from(files["decision_record.json"] as Uint8Array).toString());
      const memory = JSON.parse(Buffer.from(files["memory.json"] as Uint8Array).toString());
      assert.deepEqual(memory.snapshot, record.determinism.memory ?? null);
      if (verdict === "memory") {
        assert.deepEqual(record.reason_codes.at(-1), "FAILURE_MEMORY_SIMILAR_BLOCK");
        assert.equal(memory.fingerprints.length, 1);
      }
      if (verdict === "ALLOW") {
        const events = JSON.parse(Buffer.from(files["events.json"] as Uint8Array).toString());
        assert.deepEqual(
          events.map((event: { type: string; data: { label: string; projection: string } }) => [
            event.type,
            event.data.label,
            event.data.projection,
          ]),
          [["label", "failure", "lumyn-fingerprint-v1"]],
        );
      }
      const result = replay(`${verdict}.zip`);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /^ok +manifest: every file matches its sha256$/m);
      assert.match(result.stdout, /\nidentical\n$/);
    });

  it("writes the same bytes for the same decision, prints records without --pack, and changes nothing on bad input", () => {
    const id = ids.DENY as string;
    exportPack(id, "a.zip");
    exportPack(id, "b.zip");
    assert.deepEqual(readFileSync(join(root, "a.zip")), readFileSync(join(root, "b.zip")));
    const printed = runCli(["export", id, "--workspace", "ws"], { cwd: root });
    assert.equal(JSON.parse(printed.stdout).decision_id, id);
    const missing = runCli(["export", "01NOPE", "--workspace", "ws", "--pack"], { cwd: root });
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "lumyn: no decision with id '01NOPE'\n");
    const nowhere = runCli(["export", id, "--workspace", "ws", "--out", join("nope", "x.zip")], {
      cwd: root,
    });
    assert.equal(nowhere.code, 2);
    assert.deepEqual(
      readdirSync(root).filter((name) => name.startsWith("01")),
      [],
    );
  });

  it("reads like a ticket in Markdown", () => {
    const result = replay("ESCALATE.zip", "--markdown");
    assert.equal(result.code, 0);
    assert.match(
      result.stdout,
      /^# Replay identical: decision \w+\n\nRe-running the policy .* gives \*\*ESCALATE\*\* again/,
    );
    assert.match(result.stdout, /\n\| policy_hash \| ok \| policy\.yml hashes to sha256:/);
  });
});

describe("lumyn replay of a pack that does not reproduce", () => {
  it("exits 1 and names each field, recorded vs replayed, when the policy was changed", () => {
    const files = referenceFiles();
    const policy = Buffer.from(files["policy.yml"] as Uint8Array).toString();
    const stricter = policy.replace("amount_usd_lte: 25", "amount_usd_lte: 2");
    assert.notEqual(stricter, policy);
    const pack = craft(zipSync({ ...files, "policy.yml": strToU8(stricter) }));
    const result = replay(pack);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stdout,
      /^MISMATCH policy_hash: policy\.yml hashes to sha256:\w+, the record names sha256:57edcf/m,
    );
    assert.match(result.stdout, /^MISMATCH verdict: recorded "ALLOW", replayed "(ESCALATE|DENY|ABSTAIN)"$/m);
    assert.match(result.stdout, /^MISMATCH reason_codes: recorded \["REFUND_SMALL_LOW_RISK"\], replayed \[/m);
    assert.match(result.stdout, /\ndiffers\n$/);
    const markdown = replay(pack, "--markdown");
    assert.match(markdown.stdout, /^# Replay differs: decision/);
    assert.match(markdown.stdout, /### `verdict`\n\nRecorded:\n\n```json\n"ALLOW"\n```/);
  });

  it("exits 1 when the record's request or digest was edited", () => {
    const files = referenceFiles();
    const record = JSON.parse(Buffer.from(files["decision_record.json"] as Uint8Array).toString());
    record.request.action.amount.value = 21.5;
    const pack = craft(zipSync({ ...files, "decision_record.json": strToU8(JSON.stringify(record)) }));
    const result = replay(pack, "--json");
    assert.equal(result.code, 1);
    const report = JSON.parse(result.stdout);
    assert.deepEqual(
      report.checks
        .filter((check: { ok: boolean }) => !check.ok)
        .map((check: { name: string }) => check.name),
      ["request", "inputs_digest"],
    );
  });
});

describe("lumyn replay refuses unsafe and malformed packs (exit 2), extracting nothing", () => {
  it("path traversal", () => {
    refused(
      craft(zipSync({ ...referenceFiles(), "../evil.json": strToU8("{}") })),
      /entry '\.\.\/evil\.json' climbs out of the pack/,
    );
  });

  it("absolute paths", () => {
    refused(
      craft(zipSync({ ...referenceFiles(), "/etc/cron.d/x": strToU8("x") })),
      /entry '\/etc\/cron\.d\/x' has an absolute path/,
    );
  });

  it("duplicate names", () => {
    const zip = zipSync({ ...referenceFiles(), "request.jsoo": strToU8("{}") });
    refused(
      craft(renameEntry(zip, "request.jsoo", "request.json")),
      /entry 'request\.json' appears more than once/,
    );
  });

  it("an entry over the size limit, refused on its declared size before inflating", () => {
    const zip = Buffer.from(zipSync(referenceFiles(), { level: 0 }));
    // The central directory's uncompressed size of the first entry, set to 1 GiB.
    const central = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), zip.length);
    const first = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    assert.ok(central >= first && first > 0);
    zip.writeUInt32LE(1024 * 1024 * 1024, first + 24);
    refused(craft(zip), /inflates to 1073741824 bytes, over the limit of 16777216/);
  });

  it("a total over the limit", () => {
    const zip = Buffer.from(zipSync(referenceFiles(), { level: 0 }));
    const signature = Buffer.from([0x50, 0x4b, 0x01, 0x02]);
    for (let at = zip.indexOf(signature); at >= 0; at = zip.indexOf(signature, at + 1))
      zip.writeUInt32LE(12 * 1024 * 1024, at + 24);
    refused(craft(zip), /the pack inflates to \d+ bytes, over the limit of 33554432/);
  });

  it("the compression ratio of a zip bomb", () => {
    const bomb = zipSync(
      { ...referenceFiles(), "request.json": new Uint8Array(10 * 1024 * 1024).fill(32) },
      { level: 9 },
    );
    refused(craft(bomb), /entry 'request\.json' inflates \d+× \(over 100×\): a zip bomb/);
  });

  it("unexpected files", () => {
    refused(
      craft(zipSync({ ...referenceFiles(), "run.sh": strToU8("rm -rf /") })),
      /entry 'run\.sh' is not a pack file/,
    );
  });

  it("JSON that is not UTF-8", () => {
    const files = referenceFiles();
    const latin1 = Buffer.from(
      Buffer.from(files["request.json"] as Uint8Array)
        .toString()
        .replace('"t1"', '"t\u00e9"'),
      "latin1",
    );
    refused(
      craft(zipSync({ ...files, "request.json": latin1 })),
      /request\.json: request\.json is not valid UTF-8/,
    );
  });

  it("a file changed after packing (manifest mismatch)", () => {
    const files = exportPack(ids.ALLOW as string, "to-tamper.zip");
    const policy = Buffer.from(files["policy.yml"] as Uint8Array)
      .toString()
      .replace("1.0.0", "1.0.1");
    refused(
      craft(zipSync({ ...files, "policy.yml": strToU8(policy) })),
      /manifest\.json \/files\/policy\.yml: policy\.yml does not match its sha256 in the manifest \(changed after packing\)/,
    );
    const { "events.json": _events, ...withoutEvents } = files;
    refused(
      craft(zipSync(withoutEvents)),
      /events\.json is listed in the manifest but missing from the pack/,
    );
  });

  it("files that are not a pack at all", () => {
    refused(craft(strToU8("just text, not a zip")), /not a readable zip/);
    const { "policy.yml": _policy, ...noPolicy } = referenceFiles();
    refused(craft(zipSync(noPolicy)), /the pack has no policy\.yml/);
    refused(
      craft(zipSync({ ...referenceFiles(), "decision_record.json": strToU8('{"verdict": ') })),
      /decision_record\.json:1:\d+: invalid JSON/,
    );
    const record = JSON.parse(Buffer.from(referenceFiles()["decision_record.json"] as Uint8Array).toString());
    const { risk_signals: _signals, ...withoutSignals } = record;
    refused(
      craft(
        zipSync({ ...referenceFiles(), "decision_record.json": strToU8(JSON.stringify(withoutSignals)) }),
      ),
      /decision_record\.json \/risk_signals: missing or wrong \/risk_signals \(expected an object\)/,
    );
    mkdirSync(join(root, "a-folder.zip"));
    const folder = replay("a-folder.zip");
    assert.equal(folder.code, 2);
    assert.match(folder.stderr, /a-folder\.zip/);
  });
});

describe("lumyn replay --public-key: packs that prove their origin (attack 9)", () => {
  let signedIds: Record<string, string>;
  before(() => {
    const run = (...args: string[]) => {
      const result = runCli([...args, "--workspace", "signed"], { cwd: root });
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    run("init");
    run("keys", "signing", "create");
    run("keys", "signing", "export-public", "--out", "signer.pem");
    signedIds = {
      small: JSON.parse(run("decide", join("signed", "examples", "refund-small.json"))).decision_id,
      large: JSON.parse(run("decide", join("signed", "examples", "refund-large.json"))).decision_id,
    };
    run("export", signedIds.large as string, "--out", "signed-large.zip");
  });

  function report(pack: string, ...args: string[]) {
    const result = replay(pack, "--json", ...args);
    return { code: result.code, report: JSON.parse(result.stdout || "null"), stderr: result.stderr };
  }

  it("checks a signed pack's proof: the record is an entry of the log the signer's checkpoint covers", () => {
    const files = unzipSync(readFileSync(join(root, "signed-large.zip")));
    assert.ok(files["proof.json"], "a store with a signing key puts the proof in the pack");
    const proof = JSON.parse(Buffer.from(files["proof.json"] as Uint8Array).toString());
    assert.equal(proof.schema_version, "lumyn_pack_proof.v1");
    assert.equal(proof.checkpoint.schema_version, "lumyn_chain_checkpoint.v2");
    const verified = report("signed-large.zip", "--public-key", "signer.pem");
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal(verified.report.origin, "verified");
    assert.equal(verified.report.identical, true);
    const unchecked = report("signed-large.zip");
    assert.equal(unchecked.code, 0);
    assert.equal(unchecked.report.origin, "unchecked");
    assert.match(
      replay("signed-large.zip").stdout,
      /origin: signed by key \S+ .*pass --public-key to check it/,
    );
  });

  it("fails a re-forged pack (policy, record and manifest recomputed, the proof kept) with what failed", () => {
    const files = unzipSync(readFileSync(join(root, "signed-large.zip")));
    const text = (name: string) => Buffer.from(files[name] as Uint8Array).toString();
    const policyText = text("policy.yml");
    const policy = loadPolicy(policyText);
    assert.ok(policy.ok);
    // The forger's story: the large refund was a small one, and the policy allowed it.
    const request = JSON.parse(text("request.json"));
    const smaller = { ...request, action: { ...request.action, amount: { value: 20, currency: "USD" } } };
    const forged = decideRequest(smaller, policy.value);
    assert.ok(forged.ok);
    assert.equal(forged.value.record.verdict, "ALLOW");
    const proofValue = proofFromJson(JSON.parse(text("proof.json")), "proof.json");
    assert.ok(proofValue.ok);
    const pack = craft(
      buildPack({ record: forged.value.record, policyText, events: [], proof: proofValue.value }),
    );

    const consistent = report(pack);
    assert.equal(consistent.code, 0, "internally consistent: every digest agrees");
    assert.equal(consistent.report.origin, "unchecked");
    const held = report(pack, "--public-key", "signer.pem");
    assert.equal(held.code, 1);
    assert.equal(held.report.origin, "failed");
    const origin = held.report.checks.find((check: { name: string }) => check.name === "origin");
    assert.equal(origin.ok, false);
    assert.match(origin.detail, /the record is not entry \d+ of the log the checkpoint signed/);

    const stripped = craft(buildPack({ record: forged.value.record, policyText, events: [] }));
    const unsigned = report(stripped);
    assert.equal(unsigned.code, 0);
    assert.equal(unsigned.report.origin, "unsigned");
    assert.match(replay(stripped).stdout, /unsigned: the pack proves internal consistency only/);
    const refused = report(stripped, "--public-key", "signer.pem");
    assert.equal(refused.code, 1);
    assert.equal(refused.report.origin, "failed");
  });

  it("fails a pack whose checkpoint another key signed, and says a 1.3.6 pack proves no origin", () => {
    const other = runCli(["keys", "signing", "create", "--workspace", "ws"], { cwd: root });
    assert.equal(other.code, 0, other.stderr);
    assert.equal(
      runCli(["keys", "signing", "export-public", "--workspace", "ws", "--out", "other.pem"], { cwd: root })
        .code,
      0,
    );
    const wrongKey = report("signed-large.zip", "--public-key", "other.pem");
    assert.equal(wrongKey.code, 1);
    const origin = wrongKey.report.checks.find((check: { name: string }) => check.name === "origin");
    assert.match(origin.detail, /the checkpoint was signed by key \S+, not by \S+/);
    const reference = report(join(PACKS, "req_001_allow.zip"), "--public-key", "signer.pem");
    assert.equal(reference.code, 1);
    assert.equal(reference.report.origin, "failed");
    assert.equal(reference.report.verdict.replayed, "ALLOW", "its digests still replay");
  });
});
