/** What applying the migrations did (kept apart from the client's types, which the library does not export). */
export interface MigrationOutcome {
  /** Schema version before (0: no Lumyn tables). */
  readonly from: number;
  /** Schema version now. */
  readonly to: number;
}

/**
 * Schema migrations of the PostgreSQL store, applied in order; `lumyn_schema_migrations` records each one
 * applied. A migration is never edited once released: a change is a new entry. The tables are the embedded
 * store's (src/store/sqlite/schema.ts) with PostgreSQL types; text that is sorted or compared as a range
 * (ids, ISO 8601 times) uses the "C" collation, so that the order is the byte order on every server, as in
 * SQLite.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE decisions (
    decision_id   TEXT COLLATE "C" PRIMARY KEY,
    created_at    TEXT COLLATE "C" NOT NULL,
    tenant_id     TEXT COLLATE "C" NOT NULL,
    subject_id    TEXT COLLATE "C",
    action_type   TEXT COLLATE "C" NOT NULL,
    verdict       TEXT COLLATE "C" NOT NULL,
    policy_hash   TEXT NOT NULL,
    inputs_digest TEXT NOT NULL,
    request_id    TEXT,
    record_json   TEXT NOT NULL
  );
  CREATE UNIQUE INDEX decisions_request ON decisions (tenant_id, request_id) WHERE request_id IS NOT NULL;
  -- Lists and stats are bounded by time (and often tenant); verdict, action type and subject filter within
  -- that range. Both indexes lead with columns a monthly partitioning keeps (docs/postgres.md).
  CREATE INDEX decisions_created ON decisions (created_at);
  CREATE INDEX decisions_tenant_created ON decisions (tenant_id, created_at);

  CREATE TABLE decision_reason_codes (
    decision_id TEXT COLLATE "C" NOT NULL REFERENCES decisions (decision_id),
    position    INTEGER NOT NULL,
    reason_code TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (decision_id, position)
  );
  CREATE INDEX decision_reason_codes_code ON decision_reason_codes (reason_code);

  CREATE FUNCTION lumyn_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
  END
  $$;

  CREATE TABLE decision_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    TEXT COLLATE "C" NOT NULL UNIQUE,
    decision_id TEXT COLLATE "C" NOT NULL REFERENCES decisions (decision_id),
    type        TEXT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    data_json   TEXT NOT NULL
  );
  CREATE INDEX decision_events_decision ON decision_events (decision_id, seq);
  CREATE TRIGGER decision_events_append_only BEFORE UPDATE OR DELETE ON decision_events
    FOR EACH ROW EXECUTE FUNCTION lumyn_append_only('decision events are append-only');
  CREATE TRIGGER decision_events_no_truncate BEFORE TRUNCATE ON decision_events
    FOR EACH STATEMENT EXECUTE FUNCTION lumyn_append_only('decision events are append-only');

  CREATE TABLE policy_snapshots (
    policy_hash    TEXT PRIMARY KEY,
    policy_id      TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    policy_text    TEXT NOT NULL,
    created_at     TEXT NOT NULL
  );

  -- Labelled decisions, as memory uses them: the latest label of each decision and its fingerprint. The
  -- label events themselves (the history) are in decision_events.
  CREATE TABLE memory_cases (
    decision_id TEXT COLLATE "C" PRIMARY KEY REFERENCES decisions (decision_id),
    tenant_id   TEXT COLLATE "C" NOT NULL,
    action_type TEXT COLLATE "C" NOT NULL,
    label       TEXT NOT NULL,
    summary     TEXT NOT NULL,
    severity    INTEGER,
    projection  TEXT NOT NULL,
    fingerprint BYTEA NOT NULL,
    labelled_at TEXT NOT NULL
  );
  CREATE INDEX memory_cases_scope ON memory_cases (tenant_id, action_type);

  -- The tamper-evident log: one entry per stored decision and event, in storage order (src/audit/chain.ts).
  CREATE TABLE audit_chain (
    seq    BIGINT PRIMARY KEY,
    kind   TEXT NOT NULL,
    ref_id TEXT COLLATE "C" NOT NULL,
    hash   TEXT NOT NULL
  );
  CREATE INDEX audit_chain_ref ON audit_chain (ref_id);
  CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION lumyn_append_only('the audit chain is append-only');
  CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION lumyn_append_only('the audit chain is append-only');

  -- The chain's head, one row. Every write transaction locks it first (SELECT ... FOR UPDATE), so that
  -- writers in every process extend one chain, one transaction after another.
  CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
  );
  INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'sha256:${"0".repeat(64)}');

  -- Signed heads of the chain (Ed25519), written when the workspace has a signing key.
  CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    head_hash  TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL,
    signed_at  TEXT NOT NULL
  );

  -- API keys of the HTTP service. Only a hash of each key is kept; scopes and roles are JSON arrays.
  CREATE TABLE api_keys (
    key_id                TEXT COLLATE "C" PRIMARY KEY,
    key_hash              TEXT NOT NULL UNIQUE,
    name                  TEXT NOT NULL,
    scopes_json           TEXT NOT NULL,
    tenant_id             TEXT,
    roles_json            TEXT NOT NULL,
    rate_limit_per_second DOUBLE PRECISION,
    created_at            TEXT COLLATE "C" NOT NULL,
    revoked_at            TEXT
  );

  -- Approvals that decisions opened: the current version of each as JSON, with the columns that lists and
  -- the timeout sweep filter on. Every change is also an event of the decision (and so in the audit chain).
  CREATE TABLE approvals (
    approval_id   TEXT COLLATE "C" PRIMARY KEY,
    decision_id   TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES decisions (decision_id),
    tenant_id     TEXT COLLATE "C" NOT NULL,
    state         TEXT NOT NULL,
    version       INTEGER NOT NULL,
    deadline      TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT NOT NULL,
    approval_json TEXT NOT NULL
  );
  CREATE INDEX approvals_due ON approvals (state, deadline);
  CREATE INDEX approvals_tenant_created ON approvals (tenant_id, created_at);
  `,
  `
  -- Webhooks and the log of their delivery attempts (as the embedded store's migration 6).
  CREATE TABLE webhooks (
    webhook_id      TEXT COLLATE "C" PRIMARY KEY,
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    name            TEXT NOT NULL,
    created_at      TEXT COLLATE "C" NOT NULL,
    cursor_seq      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT COLLATE "C",
    lease_holder    TEXT,
    lease_until     TEXT COLLATE "C"
  );
  CREATE TABLE webhook_deliveries (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id  TEXT COLLATE "C" NOT NULL,
    event_id    TEXT COLLATE "C" NOT NULL,
    attempt     INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    http_status INTEGER,
    error       TEXT,
    at          TEXT COLLATE "C" NOT NULL
  );
  CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, seq);
  `,
  `
  -- The policy registry (as the embedded store's migration 7): every version published, activated, rolled
  -- back or rejected per tenant, each row with the tenant's active policy hash after it. Velocity conditions
  -- grouped by subject read decisions by (tenant, subject, time).
  CREATE TABLE policy_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL,
    type        TEXT NOT NULL,
    policy_hash TEXT,
    active_hash TEXT,
    detail_json TEXT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL
  );
  CREATE INDEX policy_events_tenant ON policy_events (tenant_id, seq);
  CREATE INDEX decisions_tenant_subject_created ON decisions (tenant_id, subject_id, created_at);
  `,
  `
  -- Every query reaches reason codes from decisions (lists filter with EXISTS on the decision, stats join the
  -- decisions of a window): the index by code was read by none and written by every decision.
  DROP INDEX IF EXISTS decision_reason_codes_code;
  `,
  `
  -- Each key's principal, as in the embedded store: keys stored before have none, and are read with their
  -- name, else their id.
  ALTER TABLE api_keys ADD COLUMN principal TEXT;
  `,
  `
  -- The audit log covers policy snapshots and the registry's history too; rows stored before join the chain
  -- when this migration is applied (migrate.ts). Checkpoints sign the root of the Merkle tree over the log's
  -- entries as well as its head (RFC 9162); each keeps the tree's frontier, from which the next checkpoint's
  -- tree grows. Checkpoints made before have neither.
  ALTER TABLE audit_checkpoints ADD COLUMN tree_root TEXT;
  ALTER TABLE audit_checkpoints ADD COLUMN frontier_json TEXT;
  `,
];
