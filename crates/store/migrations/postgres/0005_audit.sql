-- The audit log: one row per state-changing API request or per change it made, append-only, each row chained
-- to the previous one by SHA-256 (see crates/store/src/audit.rs). `seq` is assigned by the appender as the
-- head's seq + 1 under the chain's lock, so it has no gaps: a missing seq is a removed row. Times are Unix
-- seconds.
CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY,
    id           TEXT NOT NULL,
    time         BIGINT NOT NULL,
    principal    TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    role         TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    source       TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    detail       TEXT,
    prev_hash    BYTEA NOT NULL,
    hash         BYTEA NOT NULL,
    CONSTRAINT audit_log_id_unique UNIQUE (id)
);
-- The listing filters, newest first.
CREATE INDEX audit_log_principal_seq ON audit_log (principal, seq);
CREATE INDEX audit_log_action_seq ON audit_log (action, seq);
CREATE INDEX audit_log_outcome_seq ON audit_log (outcome, seq);
CREATE INDEX audit_log_request_id ON audit_log (request_id);
