-- The secret store (a subset of the Vault/OpenBao KV v2 API). Values are sealed (AES-256-GCM under a data
-- key that is itself sealed under the master key, in `meta`), bound to mount, path and version; a destroyed
-- version keeps its row with `sealed` NULL. Tokens are kept only as SHA-256 hashes; `parent` links a child
-- token to the token that created it, so revoking a token revokes its descendants.
CREATE TABLE secret_paths (
    mount           TEXT NOT NULL,
    path            TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    oldest_version  BIGINT NOT NULL,
    max_versions    BIGINT NOT NULL,
    cas_required    BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (mount, path)
);
CREATE TABLE secret_versions (
    mount      TEXT NOT NULL,
    path       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    sealed     BYTEA,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (mount, path, version),
    FOREIGN KEY (mount, path) REFERENCES secret_paths (mount, path) ON DELETE CASCADE
);
CREATE TABLE secret_policies (
    name       TEXT PRIMARY KEY,
    document   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE secret_tokens (
    accessor       TEXT PRIMARY KEY,
    token_sha256   BYTEA NOT NULL UNIQUE,
    parent         TEXT,
    policies       TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    service        TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    max_expires_at BIGINT NOT NULL,
    ttl            BIGINT NOT NULL,
    period         BIGINT NOT NULL,
    renewable      BIGINT NOT NULL
);
CREATE INDEX secret_tokens_parent ON secret_tokens (parent);
CREATE INDEX secret_tokens_expires ON secret_tokens (expires_at);
CREATE INDEX secret_tokens_service ON secret_tokens (service);
