-- shedu schema v1 (SQLite). Times are Unix seconds; ids and serials are lowercase hex text.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE cas (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    parent_id             TEXT REFERENCES cas(id),
    key_type              TEXT NOT NULL,
    engine                TEXT,
    key_sealed            BLOB,
    certificate_der       BLOB NOT NULL,
    subject               TEXT NOT NULL,
    serial                TEXT NOT NULL,
    fingerprint           TEXT NOT NULL,
    not_before            BIGINT NOT NULL,
    not_after             BIGINT NOT NULL,
    status                TEXT NOT NULL,
    default_validity_days BIGINT NOT NULL,
    key_usages            TEXT NOT NULL,
    ext_key_usages        TEXT NOT NULL,
    path_len              BIGINT,
    allowed_key_types     TEXT NOT NULL,
    expiry_warning_days   BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    CONSTRAINT cas_name_unique UNIQUE (name),
    CONSTRAINT cas_fingerprint_unique UNIQUE (fingerprint)
);

CREATE TABLE certificates (
    seq               INTEGER PRIMARY KEY,
    ca_id             TEXT NOT NULL REFERENCES cas(id),
    serial            TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    subject           TEXT NOT NULL,
    sans              TEXT NOT NULL,
    key_type          TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    der               BLOB NOT NULL,
    status            TEXT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason TEXT,
    created_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX certificates_ca_serial ON certificates (ca_id, serial);
CREATE UNIQUE INDEX certificates_fingerprint ON certificates (fingerprint);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_ca_seq ON certificates (ca_id, seq);
CREATE INDEX certificates_status_seq ON certificates (status, seq);
-- The lifecycle sweep reads only these: its cost follows the rows that change, not the table's size.
CREATE INDEX certificates_active_expiry ON certificates (not_after) WHERE status = 'active';
CREATE INDEX certificates_warning_expiry ON certificates (not_after) WHERE status = 'about_to_expire';

-- CloudEvents 1.0, written in the same transaction as the change they describe (the outbox).
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY,
    id      TEXT NOT NULL,
    source  TEXT NOT NULL,
    type    TEXT NOT NULL,
    subject TEXT NOT NULL,
    time    BIGINT NOT NULL,
    data    TEXT NOT NULL,
    CONSTRAINT events_id_unique UNIQUE (id)
);
CREATE INDEX events_type_seq ON events (type, seq);
