-- ACME (RFC 8555) per RA. Nonces are rows so that every replica on one PostgreSQL database accepts a
-- nonce any of them issued, exactly once (consumed by a DELETE that only one transaction can win).
CREATE TABLE acme_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX acme_nonces_expiry ON acme_nonces (expires_at);

-- Accounts are keyed by their JWK thumbprint (RFC 7638) within an RA.
CREATE TABLE acme_accounts (
    id         TEXT PRIMARY KEY,
    ra_id      TEXT NOT NULL,
    thumbprint TEXT NOT NULL,
    jwk        TEXT NOT NULL,
    status     TEXT NOT NULL,
    contact    TEXT NOT NULL,
    eab_kid    TEXT,
    created_at BIGINT NOT NULL,
    CONSTRAINT acme_accounts_key_unique UNIQUE (ra_id, thumbprint)
);

-- External account binding keys, made by an operator; the HMAC key is sealed under the master key.
CREATE TABLE acme_eab_keys (
    kid         TEXT PRIMARY KEY,
    ra_id       TEXT NOT NULL,
    hmac_sealed BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    account_id  TEXT
);
CREATE INDEX acme_eab_keys_ra ON acme_eab_keys (ra_id);

-- Orders; identifiers and the error are JSON documents read whole. The certificate is named by its issuer
-- and serial once issued (the certificates table holds it).
CREATE TABLE acme_orders (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES acme_accounts (id),
    status      TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    profile     TEXT,
    ca_id       TEXT NOT NULL,
    replaces    TEXT,
    expires_at  BIGINT NOT NULL,
    error       TEXT,
    cert_serial TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX acme_orders_account ON acme_orders (account_id);
CREATE INDEX acme_orders_cert ON acme_orders (ca_id, cert_serial);
-- One order may replace a given certificate (RFC 9773 §5: alreadyReplaced).
CREATE UNIQUE INDEX acme_orders_replaces ON acme_orders (replaces);

-- Authorizations, one per identifier of an order. All of an authorization's challenges share its token;
-- the one the client chose is recorded with its outcome.
CREATE TABLE acme_authzs (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES acme_orders (id),
    identifier_type  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    wildcard         BIGINT NOT NULL,
    status           TEXT NOT NULL,
    expires_at       BIGINT NOT NULL,
    token            TEXT NOT NULL,
    challenge        TEXT,
    validated_at     BIGINT,
    error            TEXT
);
CREATE INDEX acme_authzs_order ON acme_authzs (order_id);
