/**
 * Schema migrations of the embedded store, applied in order; `PRAGMA user_version` counts the applied ones.
 * A migration is never edited once released: a change is a new entry. The SQL stays portable (no SQLite-only
 * types) so that the PostgreSQL backend can keep the same tables.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE decisions (
    decision_id   TEXT PRIMARY KEY,
    created_at    TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    subject_id    TEXT,
    action_type   TEXT NOT NULL,
    verdict       TEXT NOT NULL,
    policy_hash   TEXT NOT NULL,
    inputs_digest TEXT NOT NULL,
    request_id    TEXT,
    record_json   TEXT NOT NULL
  );
  CREATE UNIQUE INDEX decisions_request ON decisions (tenant_id, request_id) WHERE request_id IS NOT NULL;
  -- Lists and stats are bounded by time (and often tenant); verdict, action type and subject filter within
  -- that range. Fewer indexes keep each durable insert cheap on the embedded store.
  CREATE INDEX decisions_created ON decisions (created_at);
  CREATE INDEX decisions_tenant_created ON decisions (tenant_id, created_at);

  CREATE TABLE decision_reason_codes (
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    position    INTEGER NOT NULL,
    reason_code TEXT NOT NULL,
    PRIMARY KEY (decision_id, position)
  );
  CREATE INDEX decision_reason_codes_code ON decision_reason_codes (reason_code);

  CREATE TABLE decision_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    type        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    data_json   TEXT NOT NULL
  );
  CREATE INDEX decision_events_decision ON decision_events (decision_id, seq);
  CREATE TRIGGER decision_events_no_update BEFORE UPDATE ON decision_events
    BEGIN SELECT RAISE(ABORT, 'decision events are append-only'); END;
  CREATE TRIGGER decision_events_no_delete BEFORE DELETE ON decision_events
    BEGIN SELECT RAISE(ABORT, 'decision events are append-only'); END;

  CREATE TABLE policy_snapshots (
    policy_hash    TEXT PRIMARY KEY,
    policy_id      TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    policy_text    TEXT NOT NULL,
    created_at     TEXT NOT NULL
  );
  `,
  `
  -- Labelled decisions, as memory uses them: the latest label of each decision and its fingerprint. The
  -- label events themselves (the history) are in decision_events.
  CREATE TABLE memory_cases (
    decision_id TEXT PRIMARY KEY REFERENCES decisions (decision_id),
    tenant_id   TEXT NOT NULL,
    action_type TEXT NOT NULL,
    label       TEXT NOT NULL,
    summary     TEXT NOT NULL,
    severity    INTEGER,
    projection  TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    labelled_at TEXT NOT NULL
  );
  CREATE INDEX memory_cases_scope ON memory_cases (tenant_id, action_type);
  `,
  `
  -- The tamper-evident log: one entry per stored decision and event, in storage order. Each entry's hash
  -- covers the previous entry's hash and the entry's canonical bytes (src/audit/chain.ts), so an edit, a
  -- deletion, an insertion or a reordering breaks the chain from that entry on.
  CREATE TABLE audit_chain (
    seq    INTEGER PRIMARY KEY,
    kind   TEXT NOT NULL,
    ref_id TEXT NOT NULL,
    hash   TEXT NOT NULL
  );
  CREATE INDEX audit_chain_ref ON audit_chain (ref_id);
  CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
    BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;
  CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
    BEGIN SELECT RAISE(ABORT, 'the audit chain is append-only'); END;

  -- Signed heads of the chain (Ed25519), written when the workspace has a signing key.
  CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY,
    head_hash  TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL,
    signed_at  TEXT NOT NULL
  );
  `,
  `
  -- API keys of the HTTP service. Only a hash of each key is kept; scopes and roles are JSON arrays.
  CREATE TABLE api_keys (
    key_id                TEXT PRIMARY KEY,
    key_hash              TEXT NOT NULL UNIQUE,
    name                  TEXT NOT NULL,
    scopes_json           TEXT NOT NULL,
    tenant_id             TEXT,
    roles_json            TEXT NOT NULL,
    rate_limit_per_second DOUBLE PRECISION,
    created_at            TEXT NOT NULL,
    revoked_at            TEXT
  );
  `,
  `
  -- Approvals that decisions opened: the current version of each as JSON, with the columns that lists and
  -- the timeout sweep filter on. Every change is also an event of the decision (and so in the audit chain).
  CREATE TABLE approvals (
    approval_id   TEXT PRIMARY KEY,
    decision_id   TEXT NOT NULL UNIQUE REFERENCES decisions (decision_id),
    tenant_id     TEXT NOT NULL,
    state         TEXT NOT NULL,
    version       INTEGER NOT NULL,
    deadline      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    approval_json TEXT NOT NULL
  );
  CREATE INDEX approvals_due ON approvals (state, deadline);
  CREATE INDEX approvals_tenant_created ON approvals (tenant_id, created_at);
  `,
  `
  -- Webhooks: where approval transitions are delivered, and how far each has got in the event log (every
  -- event after cursor_seq of the kinds it receives is still to deliver, in order). A lease lets one process
  -- at a time deliver for a webhook. Every attempt is kept in webhook_deliveries.
  CREATE TABLE webhooks (
    webhook_id      TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    name            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    cursor_seq      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT,
    lease_holder    TEXT,
    lease_until     TEXT
  );
  CREATE TABLE webhook_deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    http_status INTEGER,
    error       TEXT,
    at          TEXT NOT NULL
  );
  CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, seq);
  `,
  `
  -- The policy registry: per tenant ('*' is the default for tenants without their own), every version
  -- published, activated, rolled back or rejected, in order. Each row also carries the tenant's active policy
  -- hash after it, so the active policy is the latest row's and a change can be made compare-and-set.
  CREATE TABLE policy_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    policy_hash TEXT,
    active_hash TEXT,
    detail_json TEXT NOT NULL,
    created_at  TEXT NOT NULL
  );
  CREATE INDEX policy_events_tenant ON policy_events (tenant_id, seq);
  `,
  `
  -- Reason codes as one B-tree keyed by (decision_id, position), without rowids and without the index by
  -- code. Every query reaches them from decisions (lists filter with EXISTS on the decision, stats join the
  -- decisions of a window), so the index by code was read by none, yet written by every commit: a page per
  -- distinct code, about a fifth of the WAL a decision writes (docs/benchmarks.md).
  CREATE TABLE decision_reason_codes_next (
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    position    INTEGER NOT NULL,
    reason_code TEXT NOT NULL,
    PRIMARY KEY (decision_id, position)
  ) WITHOUT ROWID;
  INSERT INTO decision_reason_codes_next (decision_id, position, reason_code)
    SELECT decision_id, position, reason_code FROM decision_reason_codes;
  DROP TABLE decision_reason_codes;
  ALTER TABLE decision_reason_codes_next RENAME TO decision_reason_codes;
  `,
  `
  -- Each key's principal: who holds it, the identity approvals compare (keys of one holder share it). Keys
  -- stored before have none, and are read with their name, else their id (as are keys that a process not yet
  -- upgraded writes to a shared store).
  ALTER TABLE api_keys ADD COLUMN principal TEXT;
  `,
  `
  -- The audit log covers what decides besides decisions and their events: policy snapshots (the text any
  -- record's policy is recovered from) and the registry's history (which policy is active). Rows stored
  -- before join the chain when this migration is applied (database.ts).
  --
  -- Checkpoints sign the root of the Merkle tree over the log's entries as well as its head (RFC 9162), so that
  -- one entry can be proved part of a signed log with a few hashes; each keeps the tree's frontier, from which
  -- the next checkpoint's tree grows. Checkpoints made before have neither.
  ALTER TABLE audit_checkpoints ADD COLUMN tree_root TEXT;
  ALTER TABLE audit_checkpoints ADD COLUMN frontier_json TEXT;
  `,
];
