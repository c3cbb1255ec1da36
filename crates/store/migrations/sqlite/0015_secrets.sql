-- The secret store (a subset of the Vault/OpenBao KV v2 API). Values are sealed (AES-256-GCM under a data
-- key that is itself sealed under the master key, in `meta`), bound to mount, path and version; a destroyed
-- version keeps its row with `sealed` NULL. Tokens are kept only as SHA-256 hashes; `parent` links a child
-- token to the token that created it, so revoking a token revokes its descendants.
CREATE TABLE secret_paths (
    mount           TEXT NOT NULL,
    path            TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    oldest_version  INTEGER NOT NULL,
    max_versions    INTEGER NOT NULL,
    cas_required    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (mount, path)
);
CREATE TABLE secret_versions (
    mount      TEXT NOT NULL,
    path       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    sealed     BLOB,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (mount, path, version),
    FOREIGN KEY (mount, path) REFERENCES secret_paths (mount, path) ON DELETE CASCADE
);
CREATE TABLE secret_policies (
    name       TEXT PRIMARY KEY,
    document   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE secret_tokens (
    accessor       TEXT PRIMARY KEY,
    token_sha256   BLOB NOT NULL UNIQUE,
    parent         TEXT,
    policies       TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    service        TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    max_expires_at INTEGER NOT NULL,
    ttl            INTEGER NOT NULL,
    period         INTEGER NOT NULL,
    renewable      INTEGER NOT NULL
);
CREATE INDEX secret_tokens_parent ON secret_tokens (parent);
CREATE INDEX secret_tokens_expires ON secret_tokens (expires_at);
CREATE INDEX secret_tokens_service ON secret_tokens (service);
