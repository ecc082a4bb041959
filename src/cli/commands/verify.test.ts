import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { chainHash, decisionEntry, eventEntry, policyEntry } from "../../domain/chain.ts";
import { Lumyn } from "../../lumyn.ts";
import { chainedPolicyOf } from "../../store/rows.ts";
import { runCli } from "../../testing/run-cli.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-cli-verify-"));
after(() => rmSync(root, { recursive: true, force: true }));
const ids: string[] = [];

before(async () => {
  assert.equal(runCli(["init", "--workspace", "ws"], { cwd: root }).code, 0);
  const created = runCli(["keys", "signing", "create", "--workspace", "ws"], { cwd: root });
  assert.equal(created.code, 0, created.stderr);
  const opened = await Lumyn.open({ workspace: join(root, "ws") });
  assert.ok(opened.ok);
  const lumyn = opened.value;
  for (const example of Object.values(EXAMPLE_REQUESTS)) {
    const decided = await lumyn.decide(example.request as never);
    assert.ok(decided.ok);
    ids.push(decided.value.record.decision_id);
  }
  assert.ok((await lumyn.label(ids[0] as string, "failure", { summary: "fraud" })).ok);
  await lumyn.close();
});

let copies = 0;
/** A copy of the workspace with the database changed as an intruder with file access would. */
function tampered(sql: string | ((db: DatabaseSync) => void)): string {
  const dir = `ws-${++copies}`;
  cpSync(join(root, "ws"), join(root, dir), { recursive: true });
  const db = new DatabaseSync(join(root, dir, "lumyn.db"));
  db.exec(
    "DROP TRIGGER audit_chain_no_update; DROP TRIGGER audit_chain_no_delete; DROP TRIGGER decision_events_no_update; DROP TRIGGER decision_events_no_delete;",
  );
  if (typeof sql === "string") db.exec(sql);
  else sql(db);
  db.close();
  return dir;
}

function verify(dir: string, ...args: string[]) {
  const result = runCli(["verify", "--workspace", dir, "--json", ...args], { cwd: root });
  return {
    code: result.code,
    report: result.stdout ? JSON.parse(result.stdout) : undefined,
    stderr: result.stderr,
  };
}

describe("lumyn verify", () => {
  it("reports the length and head of an intact log, with its checkpoints verified", () => {
    const { code, report } = verify("ws");
    assert.equal(code, 0);
    assert.equal(report.ok, true);
    assert.equal(report.length, 6, "the policy's snapshot, 4 decisions and 1 label event");
    assert.match(report.head_hash, /^sha256:[0-9a-f]{64}$/);
    assert.equal(report.checkpoints.total, 1, "signed when the store closed");
    assert.equal(report.checkpoints.verified, 1);
    const text = runCli(["verify", "--workspace", "ws"], { cwd: root });
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^ok: 6 entries, head sha256:[0-9a-f]{64}\n1 of 1 signed checkpoints verified/);
  });

  it("finds an edited record", () => {
    const dir = tampered(
      `UPDATE decisions SET record_json = replace(record_json, '"ALLOW"', '"DENY"') WHERE decision_id = '${ids[0]}'`,
    );
    const { code, report } = verify(dir);
    assert.equal(code, 1);
    assert.deepEqual([report.broken.seq, report.broken.reason, report.broken.ref_id], [2, "edited", ids[0]]);
    const text = runCli(["verify", "--workspace", dir], { cwd: root });
    assert.match(text.stdout, /^broken at entry 2: entry 2 \(decision \w+\) does not match its hash/);
  });

  it("finds an edited event", () => {
    const { code, report } = verify(tampered(`UPDATE decision_events SET data_json = '{"label":"success"}'`));
    assert.equal(code, 1);
    assert.deepEqual([report.broken.seq, report.broken.kind, report.broken.reason], [6, "event", "edited"]);
  });

  it("finds a deleted decision and a deleted log entry", () => {
    const row = verify(
      tampered(
        `DELETE FROM decision_reason_codes WHERE decision_id = '${ids[2]}'; DELETE FROM decisions WHERE decision_id = '${ids[2]}'`,
      ),
    );
    assert.equal(row.code, 1);
    assert.deepEqual([row.report.broken.seq, row.report.broken.reason], [4, "missing_row"]);
    const entry = verify(tampered("DELETE FROM audit_chain WHERE seq = 2"));
    assert.equal(entry.code, 1);
    assert.deepEqual([entry.report.broken.seq, entry.report.broken.reason], [2, "missing_entry"]);
  });

  it("finds entries deleted from the end by the signed checkpoint", () => {
    const { code, report } = verify(
      tampered("DELETE FROM audit_chain WHERE seq = 6; DELETE FROM decision_events"),
    );
    assert.equal(code, 1);
    assert.deepEqual([report.broken.seq, report.broken.reason], [6, "truncated"]);
  });

  it("finds a row inserted behind the log's back and an entry inserted into it", () => {
    const row = verify(
      tampered(
        `INSERT INTO decisions SELECT '01INSERTED', created_at, tenant_id, subject_id, action_type, verdict, policy_hash,
           inputs_digest, NULL, record_json FROM decisions WHERE decision_id = '${ids[1]}'`,
      ),
    );
    assert.equal(row.code, 1);
    assert.deepEqual([row.report.broken.reason, row.report.broken.ref_id], ["not_chained", "01INSERTED"]);
    const entry = verify(
      tampered(
        `UPDATE audit_chain SET seq = seq + 100 WHERE seq >= 3; UPDATE audit_chain SET seq = seq - 99 WHERE seq >= 100;
         INSERT INTO audit_chain (seq, kind, ref_id, hash) SELECT 3, kind, ref_id, hash FROM audit_chain WHERE seq = 2`,
      ),
    );
    assert.equal(entry.code, 1);
    assert.deepEqual([entry.report.broken.seq, entry.report.broken.reason], [3, "edited"]);
  });

  it("finds reordered records", () => {
    const dir = tampered((db) => {
      const read = db.prepare("SELECT record_json FROM decisions WHERE decision_id = ?");
      const [first, second] = [read.get(ids[0] as string), read.get(ids[1] as string)];
      const write = db.prepare("UPDATE decisions SET record_json = ? WHERE decision_id = ?");
      write.run(String(second?.record_json), ids[0] as string);
      write.run(String(first?.record_json), ids[1] as string);
    });
    const { code, report } = verify(dir);
    assert.equal(code, 1);
    assert.deepEqual([report.broken.seq, report.broken.reason], [2, "edited"]);
  });

  it("finds a log rewritten with fresh hashes by its signed checkpoint, and a forged signature", () => {
    const dir = tampered((db) => {
      db.exec(
        `UPDATE decisions SET record_json = replace(record_json, '"ALLOW"', '"DENY"') WHERE decision_id = '${ids[0]}'`,
      );
      let head = `sha256:${"0".repeat(64)}`;
      const links = db
        .prepare(
          `SELECT c.seq, c.kind, c.ref_id, d.record_json, e.decision_id, e.type, e.created_at, e.data_json FROM audit_chain c
           LEFT JOIN decisions d ON d.decision_id = c.ref_id LEFT JOIN decision_events e ON e.event_id = c.ref_id ORDER BY c.seq`,
        )
        .all();
      const snapshot = db.prepare("SELECT * FROM policy_snapshots WHERE policy_hash = ?");
      const update = db.prepare("UPDATE audit_chain SET hash = ? WHERE seq = ?");
      for (const link of links) {
        const seq = Number(link.seq);
        const entry =
          link.kind === "policy"
            ? policyEntry(seq, chainedPolicyOf(snapshot.get(String(link.ref_id)) ?? {}))
            : link.kind === "decision"
              ? decisionEntry(seq, String(link.record_json))
              : eventEntry(seq, {
                  eventId: String(link.ref_id),
                  decisionId: String(link.decision_id),
                  type: String(link.type),
                  createdAt: String(link.created_at),
                  dataJson: String(link.data_json),
                });
        head = chainHash(head, entry);
        update.run(head, seq);
      }
    });
    const rewritten = verify(dir);
    assert.equal(rewritten.code, 1);
    assert.deepEqual([rewritten.report.broken.seq, rewritten.report.broken.reason], [6, "rewritten"]);

    const forged = verify(
      tampered((db) => {
        const signature = Buffer.alloc(64, 7).toString("base64");
        db.prepare("UPDATE audit_checkpoints SET signature = ?").run(signature);
      }),
    );
    assert.equal(forged.code, 1);
    assert.equal(forged.report.broken.reason, "bad_signature");
  });

  it("checks signatures with an exported public key, and refuses a key that is not one", () => {
    const exported = runCli(
      ["keys", "signing", "export-public", "--workspace", "ws", "--out", join(root, "public.pem")],
      { cwd: root },
    );
    assert.equal(exported.code, 0, exported.stderr);
    const dir = `audit-copy`;
    cpSync(join(root, "ws", "lumyn.db"), join(root, dir, "lumyn.db"));
    const { code, report } = verify(dir, "--public-key", "public.pem");
    assert.equal(code, 0);
    assert.equal(report.checkpoints.verified, 1);
    const withoutKey = runCli(["verify", "--workspace", dir], { cwd: root });
    assert.match(withoutKey.stdout, /1 signed checkpoints, signatures not checked/);
    const bad = runCli(["verify", "--workspace", dir, "--public-key", join("ws", "policy.yml")], {
      cwd: root,
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^lumyn: .*policy\.yml: not a public key/);
    cpSync(join(root, "ws"), join(root, "bad-key"), { recursive: true });
    writeFileSync(join(root, "bad-key", "signing-key.pem"), "not a key\n");
    const request = join("ws", "examples", "refund-small.json");
    const refused = runCli(["decide", request, "--workspace", "bad-key"], { cwd: root });
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /^lumyn: .*bad-key: could not open the store at .*lumyn\.db: /);
    const badKeyVerify = verify("bad-key");
    assert.equal(badKeyVerify.code, 1);
    assert.match(badKeyVerify.stderr, /signing-key\.pem: not an Ed25519 private key/);
    const db = new DatabaseSync(join(root, "bad-key", "lumyn.db"), { readOnly: true });
    assert.equal(
      (db.prepare("SELECT count(*) AS n FROM decisions").get() as { n: number }).n,
      4,
      "nothing was stored",
    );
    db.close();
    const again = runCli(["keys", "signing", "create", "--workspace", "ws"], { cwd: root });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists: replace it with `lumyn keys signing rotate`/);
  });
});

describe("lumyn checkpoint export and verify --checkpoint", () => {
  it("exports the latest signed checkpoint, and verify holds the log (and a rewritten copy) to it", () => {
    const exported = runCli(["checkpoint", "export", "--workspace", "ws", "--out", "anchor.json"], {
      cwd: root,
    });
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stderr, /wrote the checkpoint at entry 6 to anchor\.json/);
    const intact = verify("ws", "--checkpoint", "anchor.json");
    assert.equal(intact.code, 0, intact.stderr);
    assert.equal(intact.report.checkpoints.anchors, 1);
    assert.match(
      runCli(["verify", "--workspace", "ws", "--checkpoint", "anchor.json"], { cwd: root }).stdout,
      /1 checkpoints kept outside the store still hold/,
    );

    // Rows and checkpoints deleted together leave the store consistent with itself, not with the anchor.
    const dir = tampered(`DELETE FROM audit_checkpoints;
      DELETE FROM audit_chain WHERE seq = 6; DELETE FROM decision_events; DELETE FROM memory_cases`);
    assert.equal(
      verify(dir, "--public-key", "public.pem").code,
      0,
      "the store alone: a short log, not yet due",
    );
    const held = verify(dir, "--checkpoint", "anchor.json");
    assert.equal(held.code, 1);
    assert.deepEqual([held.report.broken.seq, held.report.broken.reason], [6, "truncated"]);

    const deleted = verify(tampered("DELETE FROM audit_checkpoints"), "--checkpoint", "anchor.json");
    assert.deepEqual([deleted.report.broken.seq, deleted.report.broken.reason], [6, "checkpoint_deleted"]);
  });

  it("refuses a checkpoint file that is not one, with where and what was expected", () => {
    writeFileSync(join(root, "not-a-checkpoint.json"), JSON.stringify({ schema_version: "x", seq: 0 }));
    const bad = runCli(["verify", "--workspace", "ws", "--checkpoint", "not-a-checkpoint.json"], {
      cwd: root,
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not-a-checkpoint\.json \/schema_version: not a Lumyn checkpoint/);
    assert.match(bad.stderr, /\/seq: seq must be the position of an entry/);
    const unsigned = runCli(["init", "--workspace", "plain"], { cwd: root });
    assert.equal(unsigned.code, 0);
    const none = runCli(["checkpoint", "export", "--workspace", "plain"], { cwd: root });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no signed checkpoint: create the workspace's signing key/);
  });
});

describe("lumyn keys signing rotate", () => {
  it("signs the head with the old key, keeps its public half, and verify checks both keys' checkpoints", () => {
    cpSync(join(root, "ws"), join(root, "rotating"), { recursive: true });
    const oldPublic = runCli(
      ["keys", "signing", "export-public", "--workspace", "rotating", "--out", "old.pem"],
      {
        cwd: root,
      },
    );
    assert.equal(oldPublic.code, 0, oldPublic.stderr);
    const rotated = runCli(["keys", "signing", "rotate", "--workspace", "rotating"], { cwd: root });
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(
      rotated.stdout,
      /^retired key sha256:[0-9a-f]{64} \(public half kept in rotating\/retired-signing-keys\/[0-9a-f]{64}\.pem\)\nnew key {5}sha256:/,
    );
    const request = join("ws", "examples", "refund-small.json");
    assert.equal(runCli(["decide", request, "--workspace", "rotating"], { cwd: root }).code, 0);
    assert.equal(
      runCli(["keys", "signing", "export-public", "--workspace", "rotating", "--out", "new.pem"], {
        cwd: root,
      }).code,
      0,
    );

    const both = verify("rotating");
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.report.checkpoints.key_ids.length, 2);
    assert.equal(both.report.checkpoints.verified, both.report.checkpoints.total);
    const newOnly = verify("rotating", "--public-key", "new.pem");
    assert.equal(newOnly.report.broken.reason, "unknown_key", "the old key's checkpoints need the old key");
    const given = verify("rotating", "--public-key", "new.pem", "--public-key", "old.pem");
    assert.equal(given.code, 0, given.stderr);

    const none = runCli(["keys", "signing", "rotate", "--workspace", "plain-rotate"], { cwd: root });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no signing key in .*plain-rotate; run `lumyn keys signing create`/);
  });
});
