-- Validation authority: per-CA VA settings, delegated OCSP responders, CRLs and their numbers.
ALTER TABLE certificates ADD COLUMN invalidity_date BIGINT;

-- CRL generation reads only revoked rows of one CA, oldest first.
CREATE INDEX certificates_revoked ON certificates (ca_id, revoked_at) WHERE status = 'revoked';

CREATE TABLE ca_va_settings (
    ca_id        TEXT PRIMARY KEY REFERENCES cas(id),
    ocsp_signing TEXT NOT NULL,
    aia          BIGINT NOT NULL,
    crldp        BIGINT NOT NULL,
    crl_shards   BIGINT NOT NULL
);

CREATE TABLE ocsp_responders (
    ca_id           TEXT PRIMARY KEY REFERENCES cas(id),
    certificate_der BYTEA NOT NULL,
    key_type        TEXT NOT NULL,
    key_sealed      BYTEA NOT NULL,
    not_after       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE crl_numbers (
    ca_id       TEXT PRIMARY KEY REFERENCES cas(id),
    last_number BIGINT NOT NULL
);

CREATE TABLE crls (
    ca_id       TEXT NOT NULL REFERENCES cas(id),
    shard       BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    number      BIGINT NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    der         BYTEA NOT NULL,
    PRIMARY KEY (ca_id, shard, kind)
)
