-- Gateway: local users, API keys. Secrets are stored only as hashes (Argon2id PHC strings for passwords,
-- SHA-256 for high-entropy API key secrets).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT users_username_unique UNIQUE (username)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
)
