-- The connector (Kyma-compatible pairing): one-time tokens, kept only as SHA-256 hashes, and the client
-- identity behind every certificate the connector issued. A token is consumed (consumed_at set) in the
-- transaction of the success it buys; rows are purged a day after they expire.
CREATE TABLE connector_tokens (
    token_sha256 BLOB PRIMARY KEY,
    purpose      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    group_name   TEXT,
    tenant       TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    consumed_at  INTEGER
);
CREATE INDEX connector_tokens_expires ON connector_tokens (expires_at);
CREATE TABLE connector_certificates (
    fingerprint  TEXT PRIMARY KEY,
    ca_id        TEXT NOT NULL,
    serial       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    group_name   TEXT,
    tenant       TEXT,
    created_at   INTEGER NOT NULL,
    FOREIGN KEY (ca_id, serial) REFERENCES certificates (ca_id, serial)
);
