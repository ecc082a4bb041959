/**
 * A database administrator's attacks on the log (the security review's attacks 5 to 8), on both backends:
 * rows edited, forged or deleted with SQL behind Lumyn's back. Each must be found by `verifyStoreChain` (and
 * refused at read time where that is cheap), naming what was changed.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { EXAMPLE_REQUESTS } from "../assets/example-requests.ts";
import { canonicalJson, type JsonObject } from "../core/json.ts";
import { explainDecision, Lumyn } from "../lumyn.ts";
import { loadPolicy } from "../policy/policy.ts";
import { parseStoreLocation } from "../store/location.ts";
import { PostgresStore } from "../store/postgres/postgres-store.ts";
import { SqliteStore } from "../store/sqlite/sqlite-store.ts";
import type { Store } from "../store/store.ts";
import { bigRefundPolicy } from "../testing/approval-policy.ts";
import { assertProblem, call } from "../testing/http.ts";
import { createTestDatabase, type TestDatabase } from "../testing/postgres.ts";
import { exampleRequest, startTestServer, type TestServer } from "../testing/server.ts";
import { verifyStoreChain } from "./verify.ts";

interface Tamperable {
  readonly name: string;
  open(options?: { signingKeyPem?: string; checkpointEvery?: number }): Promise<Store>;
  /** Runs statements as a database administrator would, around every guard Lumyn put in the database. */
  sql(statements: string): Promise<void>;
  /** One value, read as the administrator would. */
  value(query: string): Promise<unknown>;
}

const POLICY = bigRefundPolicy("{ approver_roles: [finance] }");

function refund(id: string, value: number, tenant = "acme"): JsonObject {
  const request = structuredClone(EXAMPLE_REQUESTS["refund-small"]?.request) as JsonObject;
  return {
    ...request,
    request_id: id,
    tenant: { tenant_id: tenant },
    action: { ...(request.action as JsonObject), amount: { value, currency: "USD" } },
  };
}

async function gatewayOver(store: Store): Promise<Lumyn> {
  const policy = loadPolicy(POLICY);
  assert.ok(policy.ok);
  const lumyn = new Lumyn({ policy: policy.value, store });
  await lumyn.loadMemory();
  return lumyn;
}

function attacks(backend: Tamperable): void {
  describe(`an administrator's edits are found: ${backend.name}`, () => {
    it("a decision's verdict, tenant or reason codes edited in their columns (attack 5)", async () => {
      for (const edit of [
        "UPDATE decisions SET verdict = 'DENY' WHERE request_id = 'r-1'",
        "UPDATE decisions SET tenant_id = 'beta' WHERE request_id = 'r-1'",
        "UPDATE decision_reason_codes SET reason_code = 'FORGED' WHERE decision_id = (SELECT decision_id FROM decisions WHERE request_id = 'r-1')",
        "DELETE FROM decision_reason_codes WHERE decision_id = (SELECT decision_id FROM decisions WHERE request_id = 'r-1')",
      ]) {
        const store = await backend.open();
        const lumyn = await gatewayOver(store);
        try {
          assert.ok((await lumyn.decide(refund("r-1", 20))).ok);
          assert.ok((await lumyn.decide(refund("r-2", 30))).ok);
          assert.equal((await verifyStoreChain(store)).broken, undefined);
          await backend.sql(edit);
          const broken = (await verifyStoreChain(store)).broken;
          assert.equal(broken?.reason, "inconsistent", edit);
          assert.match(broken?.message ?? "", /differs from its chained record/);
        } finally {
          await lumyn.close();
        }
      }
    });

    it("an approval moved to APPROVED in its row and JSON, with no vote on record (attack 6)", async () => {
      const store = await backend.open();
      const lumyn = await gatewayOver(store);
      try {
        const decided = await lumyn.decide(refund("big", 900));
        assert.ok(decided.ok && decided.value.approval);
        const approval = decided.value.approval;
        const forged = { ...approval, state: "APPROVED", outcome: "ALLOW" };
        await backend.sql(
          `UPDATE approvals SET state = 'APPROVED', approval_json = '${canonicalJson(forged as unknown as JsonObject)}'
             WHERE approval_id = '${approval.approval_id}'`,
        );
        const consumed = await lumyn.approvals.consume(
          approval.approval_id,
          { id: "agent", roles: [] },
          approval.inputs_digest,
        );
        assert.equal(consumed.ok, false);
        assert.equal(!consumed.ok && consumed.problems[0]?.code, "tampered");
        const broken = (await verifyStoreChain(store)).broken;
        assert.equal(broken?.reason, "inconsistent");
        assert.match(broken?.message ?? "", /never recorded|differs from the version its log recorded/);
      } finally {
        await lumyn.close();
      }
    });

    it("a policy snapshot's text edited, and a memory case's label flipped (attack 7)", async () => {
      const store = await backend.open();
      const lumyn = await gatewayOver(store);
      try {
        const decided = await lumyn.decide(refund("p-1", 20));
        assert.ok(decided.ok);
        const id = decided.value.record.decision_id;
        assert.ok((await lumyn.label(id, "success")).ok);
        await backend.sql("UPDATE memory_cases SET label = 'failure'");
        const flipped = (await verifyStoreChain(store)).broken;
        assert.equal(flipped?.reason, "inconsistent");
        assert.match(flipped?.message ?? "", /memory case of decision .*: its label/);
        await backend.sql("UPDATE memory_cases SET label = 'success'");
        assert.equal((await verifyStoreChain(store)).broken, undefined);

        await backend.sql(
          "UPDATE policy_snapshots SET policy_text = replace(policy_text, 'gt: 500', 'gt: 50000')",
        );
        const edited = (await verifyStoreChain(store)).broken;
        assert.equal(edited?.reason, "edited");
        assert.equal(edited?.kind, "policy");
        // Explained from its snapshot (not from the policy this gateway holds): the edited text is refused.
        const explained = await explainDecision(store, id);
        assert.equal(explained.ok, false);
        assert.equal(!explained.ok && explained.kind, "tampered");
      } finally {
        await lumyn.close();
      }
    });

    it("registry events forged to activate another policy (what decides which policy applies)", async () => {
      const store = await backend.open();
      try {
        await store.policies.append({
          tenantId: "acme",
          type: "published",
          policyHash: "sha256:a",
          detail: {},
        });
        assert.equal((await verifyStoreChain(store)).broken, undefined);
        await backend.sql(
          `INSERT INTO policy_events (tenant_id, type, policy_hash, active_hash, detail_json, created_at)
             VALUES ('acme', 'activated', 'sha256:evil', 'sha256:evil', '{}', '2026-01-01T00:00:00Z')`,
        );
        const broken = (await verifyStoreChain(store)).broken;
        assert.equal(broken?.reason, "not_chained");
        assert.equal(broken?.kind, "policy_event");
      } finally {
        await store.close();
      }
    });

    it("the last entry, its decision and every checkpoint deleted, with a signing key (attack 8)", async () => {
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      const signing = { signingKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
      const store = await backend.open({ ...signing, checkpointEvery: 5 });
      const lumyn = await gatewayOver(store);
      for (let i = 0; i < 12; i++) assert.ok((await lumyn.decide(refund(`s-${i}`, 20))).ok);
      await lumyn.close();
      const reopened = await backend.open(signing);
      try {
        const anchors = await reopened.log.checkpoints();
        assert.deepEqual(
          anchors.map((checkpoint) => checkpoint.seq),
          [5, 10, 13],
          "signed every 5 entries, and on close (the policy's snapshot and 12 decisions)",
        );
        const options = { publicKeys: [publicKey], checkpointEvery: 5 };
        assert.equal((await verifyStoreChain(reopened, { ...options, anchors })).broken, undefined);
        const last = String(await backend.value("SELECT ref_id FROM audit_chain ORDER BY seq DESC LIMIT 1"));
        await backend.sql(`
          DELETE FROM audit_chain WHERE ref_id = '${last}';
          DELETE FROM decision_reason_codes WHERE decision_id = '${last}';
          DELETE FROM decisions WHERE decision_id = '${last}';
          DELETE FROM audit_checkpoints;`);
        // What the store alone still shows is a stretch of the log that should have been signed and is not.
        const unsigned = (await verifyStoreChain(reopened, options)).broken;
        assert.equal(unsigned?.reason, "checkpoint_missing");
        // Checkpoints anchored outside the database show the cut itself.
        const anchored = (await verifyStoreChain(reopened, { ...options, anchors })).broken;
        assert.equal(anchored?.reason, "truncated");
      } finally {
        await reopened.close();
      }
    });
  });
}

const root = mkdtempSync(join(tmpdir(), "lumyn-tamper-"));
after(() => rmSync(root, { recursive: true, force: true }));
let sqliteCount = 0;
let sqlitePath = "";
attacks({
  name: "SQLite",
  open: async (options = {}) => {
    // A signing store reopens the same file (the test closes it, then checks what closing signed).
    if (!options.signingKeyPem || options.checkpointEvery)
      sqlitePath = join(root, `tamper-${++sqliteCount}.db`);
    return SqliteStore.open(sqlitePath, options);
  },
  sql: async (statements) => {
    const db = new DatabaseSync(sqlitePath);
    try {
      const triggers = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger'").all();
      for (const { name } of triggers) db.exec(`DROP TRIGGER ${String(name)}`);
      db.exec(statements);
    } finally {
      db.close();
    }
  },
  value: async (query) => {
    const db = new DatabaseSync(sqlitePath, { readOnly: true });
    try {
      return Object.values(db.prepare(query).get() ?? {})[0];
    } finally {
      db.close();
    }
  },
});

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase("tamper");
});
after(() => database.drop());
let schemaCount = 0;
let schema = "";
const administrator = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(`SET search_path TO ${schema}; SET session_replication_role = replica`);
    return await work(client);
  } finally {
    await client.end();
  }
};
attacks({
  name: "PostgreSQL",
  open: async (options = {}) => {
    if (!options.signingKeyPem || options.checkpointEvery) schema = `t${++schemaCount}`;
    const location = parseStoreLocation(`${database.url}?schema=${schema}`);
    assert.ok(location.ok && location.value.kind === "postgres");
    return PostgresStore.open(location.value, options);
  },
  // session_replication_role = replica turns off the triggers that keep the log append-only.
  sql: (statements) => administrator(async (client) => void (await client.query(statements))),
  value: (query) =>
    administrator(async (client) => Object.values((await client.query(query)).rows[0] ?? {})[0]),
});

describe("an administrator's edits are refused at read time: the HTTP service", () => {
  let server: TestServer;
  after(() => server?.close());

  it("does not hand a record to the tenant its column was edited to (attack 5)", async () => {
    server = await startTestServer();
    const acme = await server.key({ scopes: ["decide", "read"], tenantId: "acme" });
    const beta = await server.key({ scopes: ["read"], tenantId: "beta" });
    const decided = await call(server, "POST", "/v1/decide", {
      key: acme,
      body: exampleRequest("refund-small", { request_id: "moved", tenant: { tenant_id: "acme" } }),
    });
    assert.equal(decided.status, 200, decided.text);
    const id = decided.body.decision_id;
    const db = new DatabaseSync(join(server.dir, "ws", "lumyn.db"));
    db.prepare("UPDATE decisions SET tenant_id = 'beta' WHERE decision_id = ?").run(id);
    db.close();

    assertProblem(await call(server, "GET", `/v1/decisions/${id}`, { key: beta }), 404, "decision_not_found");
    const listed = await call(server, "GET", "/v1/decisions", { key: beta });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.decisions, [], "the edited column found it; its record names acme");
    assert.ok(
      server.logs().some((line) => Array.isArray(line.decision_ids) && line.decision_ids.includes(id)),
      "the left-out record is logged",
    );
    const own = await call(server, "GET", `/v1/decisions/${id}`, { key: acme });
    assert.equal(own.status, 200, "the record still names acme");
    assert.equal((await verifyStoreChain(server.lumyn.store)).broken?.reason, "inconsistent");
  });
});
