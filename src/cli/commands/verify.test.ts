import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { EXAMPLE_REQUESTS } from "../../assets/example-requests.ts";
import { chainHash, decisionEntry, eventEntry } from "../../domain/chain.ts";
import { Lumyn } from "../../lumyn.ts";
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
    assert.equal(report.length, 5, "4 decisions and 1 label event");
    assert.match(report.head_hash, /^sha256:[0-9a-f]{64}$/);
    assert.equal(report.checkpoints.total, 1, "signed when the store closed");
    assert.equal(report.checkpoints.verified, 1);
    const text = runCli(["verify", "--workspace", "ws"], { cwd: root });
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^ok: 5 entries, head sha256:[0-9a-f]{64}\n1 of 1 signed checkpoints verified/);
  });

  it("finds an edited record", () => {
    const dir = tampered(
      `UPDATE decisions SET record_json = replace(record_json, '"ALLOW"', '"DENY"') WHERE decision_id = '${ids[0]}'`,
    );
    const { code, report } = verify(dir);
    assert.equal(code, 1);
    assert.deepEqual([report.broken.seq, report.broken.reason, report.broken.ref_id], [1, "edited", ids[0]]);
    const text = runCli(["verify", "--workspace", dir], { cwd: root });
    assert.match(text.stdout, /^broken at entry 1: entry 1 \(decision \w+\) does not match its hash/);
  });

  it("finds an edited event", () => {
    const { code, report } = verify(tampered(`UPDATE decision_events SET data_json = '{"label":"success"}'`));
    assert.equal(code, 1);
    assert.deepEqual([report.broken.seq, report.broken.kind, report.broken.reason], [5, "event", "edited"]);
  });

  it("finds a deleted decision and a deleted log entry", () => {
    const row = verify(
      tampered(
        `DELETE FROM decision_reason_codes WHERE decision_id = '${ids[2]}'; DELETE FROM decisions WHERE decision_id = '${ids[2]}'`,
      ),
    );
    assert.equal(row.code, 1);
    assert.deepEqual([row.report.broken.seq, row.report.broken.reason], [3, "missing_row"]);
    const entry = verify(tampered("DELETE FROM audit_chain WHERE seq = 2"));
    assert.equal(entry.code, 1);
    assert.deepEqual([entry.report.broken.seq, entry.report.broken.reason], [2, "missing_entry"]);
  });

  it("finds entries deleted from the end by the signed checkpoint", () => {
    const { code, report } = verify(
      tampered("DELETE FROM audit_chain WHERE seq = 5; DELETE FROM decision_events"),
    );
    assert.equal(code, 1);
    assert.deepEqual([report.broken.seq, report.broken.reason], [5, "truncated"]);
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
    assert.deepEqual([report.broken.seq, report.broken.reason], [1, "edited"]);
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
      const update = db.prepare("UPDATE audit_chain SET hash = ? WHERE seq = ?");
      for (const link of links) {
        const seq = Number(link.seq);
        const entry =
          link.kind === "decision"
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
    assert.deepEqual([rewritten.report.broken.seq, rewritten.report.broken.reason], [5, "rewritten"]);

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
    assert.match(again.stderr, /exists; pass --force/);
  });
});
