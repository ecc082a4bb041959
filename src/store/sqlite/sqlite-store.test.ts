import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { verifyStoreChain } from "../../audit/verify.ts";
import { canonicalJson } from "../../core/json.ts";
import { StorageError } from "../../core/problem.ts";
import { type DecisionRecord, recordKeys } from "../../domain/decision-record.ts";
import { makeRecord } from "../conformance/backend.conformance.ts";
import { storeConformance } from "../conformance/store.conformance.ts";
import { MIGRATIONS } from "./schema.ts";
import { SqliteStore } from "./sqlite-store.ts";

const root = mkdtempSync(join(tmpdir(), "lumyn-sqlite-"));
after(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
const freshPath = (): string => join(root, `store-${++count}`, "lumyn.db");
const signedPath = (writer: string): string => join(root, `signed-${writer}`, "lumyn.db");

for (const writer of ["inline", "thread"] as const) {
  storeConformance({
    name: `sqlite, ${writer} writer`,
    open: async (options = {}) => {
      // A signing store reopens the same file (the test closes it, then checks what closing signed).
      const path = options.signingKeyPem ? signedPath(writer) : freshPath();
      return SqliteStore.open(path, { writer, ...options });
    },
  });
}

for (const writer of ["inline", "thread"] as const)
  describe(`SqliteStore, ${writer} writer`, () => {
    it("keeps records across close and reopen (the file is the truth)", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path, { writer });
      const record = makeRecord({ requestId: "durable" });
      await store.decisions.put(record);
      await store.close();
      const reopened = SqliteStore.open(path, { writer });
      assert.equal((await reopened.decisions.get(record.decision_id))?.decision_id, record.decision_id);
      assert.equal((await reopened.decisions.put(makeRecord({ requestId: "durable" }))).status, "duplicate");
      await reopened.close();
    });

    it("reads what it wrote as soon as the write resolves, though reads of a turn share a snapshot", async () => {
      const store = SqliteStore.open(freshPath(), { writer });
      let polling = true;
      // A read every turn keeps a snapshot open when each write's reply arrives.
      const poller = (async () => {
        while (polling) {
          await store.decisions.getJson("no-such-decision");
          await new Promise(setImmediate);
        }
      })();
      try {
        for (let i = 0; i < 200; i++) {
          const record = makeRecord({ requestId: `fresh-${i}` });
          await store.decisions.put(record);
          assert.ok(await store.decisions.getJson(record.decision_id), `decision ${i} not visible`);
        }
      } finally {
        polling = false;
        await poller;
        await store.close();
      }
    });

    it("sees another connection's writes from the next turn, or a millisecond later", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path, { writer });
      const other = SqliteStore.open(path, { writer: "inline" });
      const raw = new DatabaseSync(path);
      try {
        const record = makeRecord({ requestId: "elsewhere" });
        assert.equal(await store.decisions.getJson(record.decision_id), undefined);
        await other.decisions.put(record);
        await new Promise(setImmediate);
        assert.ok(await store.decisions.getJson(record.decision_id));
        // A snapshot opened in the check phase lasts into the next turn's timers; its age ends it there.
        const late = makeRecord({ requestId: "elsewhere-late" });
        const seen = await new Promise<unknown>((resolve, reject) => {
          setTimeout(() => store.decisions.getJson(late.decision_id).then(resolve, reject), 2);
          setImmediate(() => {
            void store.decisions.getJson("no-such-decision");
            raw
              .prepare(
                `INSERT INTO decisions (decision_id, created_at, tenant_id, action_type, verdict, policy_hash,
                   inputs_digest, record_json) VALUES (?, ?, 'acme', 'x', 'ALLOW', 'p', 'd', ?)`,
              )
              .run(late.decision_id, late.created_at, canonicalJson(late));
            const until = performance.now() + 3;
            while (performance.now() < until);
          });
        });
        assert.ok(seen, "a write by another connection is seen a few milliseconds later");
      } finally {
        raw.close();
        await other.close();
        await store.close();
      }
    });

    it("commits concurrent writes together (group commit) and stores every one", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path, { maxBatch: 64, writer });
      const records = Array.from({ length: 500 }, (_, i) => makeRecord({ requestId: `bulk-${i}` }));
      const results = await Promise.all(records.map((record) => store.decisions.put(record)));
      assert.ok(results.every((r) => r.status === "stored"));
      assert.equal((await store.decisions.stats({ by: "verdict" })).total, 500);
      await store.close();
      const db = new DatabaseSync(path);
      const reasons = db.prepare("SELECT count(*) AS n FROM decision_reason_codes").get() as { n: number };
      db.close();
      assert.equal(reasons.n, 500);
    });

    it("fails the whole batch with a StorageError and writes nothing when the database is locked", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path, { busyTimeoutMs: 50, writer });
      await store.decisions.put(makeRecord());
      const other = new DatabaseSync(path);
      other.exec("BEGIN EXCLUSIVE");
      try {
        const results = await Promise.allSettled([
          store.decisions.put(makeRecord()),
          store.decisions.put(makeRecord()),
        ]);
        for (const result of results) {
          assert.equal(result.status, "rejected");
          assert.ok(result.status === "rejected" && result.reason instanceof StorageError);
        }
      } finally {
        other.exec("ROLLBACK");
        other.close();
      }
      assert.equal((await store.decisions.stats({ by: "verdict" })).total, 1);
      assert.equal(
        (await store.decisions.put(makeRecord())).status,
        "stored",
        "the store recovers once the lock is gone",
      );
      await store.close();
    });

    it("refuses to change or delete events", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path, { writer });
      const record = makeRecord();
      await store.decisions.put(record);
      await store.log.append({ decisionId: record.decision_id, type: "label", data: {} });
      await store.close();
      const db = new DatabaseSync(path);
      assert.throws(() => db.exec("UPDATE decision_events SET type = 'x'"), /append-only/);
      assert.throws(() => db.exec("DELETE FROM decision_events"), /append-only/);
      db.close();
    });

    it("reports a store that cannot be opened as a StorageError", () => {
      const file = join(root, "not-a-folder");
      writeFileSync(file, "");
      assert.throws(() => SqliteStore.open(join(file, "lumyn.db"), { writer }), StorageError);
    });
  });

describe("SqliteStore audit chain", () => {
  it("stays one chain when two stores (an inline writer and a writer thread) write the same file at once", async () => {
    const path = freshPath();
    const inline = SqliteStore.open(path);
    const thread = SqliteStore.open(path, { writer: "thread" });
    try {
      const writes = Array.from({ length: 200 }, (_, i) =>
        (i % 2 === 0 ? inline : thread).decisions.put(makeRecord({ requestId: `two-writers-${i}` })),
      );
      assert.ok((await Promise.all(writes)).every((result) => result.status === "stored"));
      const report = await verifyStoreChain(inline);
      assert.equal(report.broken, undefined);
      assert.equal(report.length, 200);
      assert.deepEqual(await verifyStoreChain(thread), report);
    } finally {
      await inline.close();
      await thread.close();
    }
  });
});

/** A decision and its reason codes as the store wrote them before the audit chain: the rows, no entry. */
function insertAsBefore(db: DatabaseSync, record: DecisionRecord): void {
  const keys = recordKeys(record);
  db.prepare(
    `INSERT INTO decisions (decision_id, created_at, tenant_id, subject_id, action_type, verdict, policy_hash,
       inputs_digest, request_id, record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    keys.decisionId,
    keys.createdAt,
    keys.tenantId,
    keys.subjectId,
    keys.actionType,
    keys.verdict,
    keys.policyHash,
    keys.inputsDigest,
    keys.requestId,
    canonicalJson(record),
  );
  for (const [position, code] of keys.reasonCodes.entries())
    db.prepare("INSERT INTO decision_reason_codes (decision_id, position, reason_code) VALUES (?, ?, ?)").run(
      keys.decisionId,
      position,
      code,
    );
}

describe("SqliteStore upgrade", () => {
  it("chains the decisions and events of a database made before the audit chain, in storage order", async () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path);
    // A database as the migrations before the chain's left it.
    const before = MIGRATIONS.findIndex((sql) => sql.includes("CREATE TABLE audit_chain"));
    for (const sql of MIGRATIONS.slice(0, before)) db.exec(sql);
    db.exec(`PRAGMA user_version = ${before}`);
    const records = [
      makeRecord({ now: new Date("2026-01-02T00:00:00Z") }),
      makeRecord({ now: new Date("2026-01-01T00:00:00Z") }),
    ];
    for (const record of records) insertAsBefore(db, record);
    db.prepare(
      "INSERT INTO decision_events (event_id, decision_id, type, created_at, data_json) VALUES ('01EVENT', ?, 'note', '2026-01-03T00:00:00Z', '{}')",
    ).run(records[0]?.decision_id as string);
    db.close();

    const upgraded = SqliteStore.open(path);
    try {
      const refs: string[] = [];
      await upgraded.log.readChain((link) => refs.push(link.refId) > 0);
      assert.deepEqual(refs, [records[1]?.decision_id, records[0]?.decision_id, "01EVENT"]);
      assert.equal((await verifyStoreChain(upgraded)).broken, undefined);
      await upgraded.decisions.put(makeRecord());
      assert.equal((await verifyStoreChain(upgraded)).length, 4);
    } finally {
      await upgraded.close();
    }
    const check = new DatabaseSync(path);
    assert.equal(
      (check.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      MIGRATIONS.length,
    );
    check.close();
  });

  it("reads the keys stored before keys had principals with their name, else their id, as principal", async () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path);
    const before = MIGRATIONS.findIndex((sql) => sql.includes("ADD COLUMN principal"));
    for (const sql of MIGRATIONS.slice(0, before)) db.exec(sql);
    db.exec(`PRAGMA user_version = ${before}`);
    const insert = db.prepare(
      `INSERT INTO api_keys (key_id, key_hash, name, scopes_json, roles_json, created_at)
       VALUES (?, ?, ?, '["approve"]', '["finance"]', '2026-01-01T00:00:00Z')`,
    );
    insert.run("01OLDNAMED", `sha256:${"a".repeat(64)}`, "alice");
    insert.run("01OLDUNNAMED", `sha256:${"b".repeat(64)}`, "");
    db.close();

    const upgraded = SqliteStore.open(path);
    try {
      assert.deepEqual(
        (await upgraded.apiKeys.list()).map((key) => [key.keyId, key.principal]),
        [
          ["01OLDNAMED", "alice"],
          ["01OLDUNNAMED", "01OLDUNNAMED"],
        ],
      );
    } finally {
      await upgraded.close();
    }
  });

  it("keeps every reason code when it moves them to one B-tree without the index by code", async () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path);
    // A database as the migrations before that move left it: a rowid table of codes and an index by code.
    const moved = MIGRATIONS.findIndex((sql) => sql.includes("decision_reason_codes_next"));
    for (const sql of MIGRATIONS.slice(0, moved)) db.exec(sql);
    db.exec(`PRAGMA user_version = ${moved}`);
    const records = [
      makeRecord({ now: new Date("2026-03-01T00:00:00Z") }),
      makeRecord({ now: new Date("2026-03-02T00:00:00Z"), ticket: "" }),
      makeRecord({ now: new Date("2026-03-03T00:00:00Z"), amount: 500 }),
    ];
    for (const record of records) insertAsBefore(db, record);
    const everyCode = "SELECT decision_id, position, reason_code FROM decision_reason_codes ORDER BY 1, 2";
    const before = db.prepare(everyCode).all();
    db.close();

    const upgraded = SqliteStore.open(path);
    try {
      const check = new DatabaseSync(path, { readOnly: true });
      assert.deepEqual(check.prepare(everyCode).all(), before);
      assert.deepEqual(
        check
          .prepare(
            "SELECT name FROM sqlite_schema WHERE tbl_name = 'decision_reason_codes' AND type = 'index'",
          )
          .all(),
        [],
        "the primary key is the table itself, and there is no index by code",
      );
      check.close();
      const escalated = await upgraded.decisions.list({ reasonCode: "REFUND_OVER_ESCALATION_LIMIT" });
      assert.deepEqual(
        escalated.decisions.map((decision) => decision.decisionId),
        [records[2]?.decision_id],
      );
      const stats = await upgraded.decisions.stats({ by: "reason_code", since: "2026-03-02T00:00:00Z" });
      assert.equal(stats.total, 2);
      const inWindow = before.filter((row) => row.decision_id !== records[0]?.decision_id);
      assert.equal(
        stats.groups.reduce((sum, group) => sum + group.count, 0),
        inWindow.length,
      );
    } finally {
      await upgraded.close();
    }
  });
});
