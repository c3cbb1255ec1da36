-- Gateway hardening (issue 12): a per-user token generation that every session and refresh token carries
-- (bumped when the user's access changes, so older tokens stop working at once), single-use refresh
-- tokens grouped in families (only SHA-256 of each token is stored), the owner of an API key, and failed
-- logins counted per (user name, client address) with a lock-out time.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;

ALTER TABLE api_keys ADD COLUMN owner_id TEXT;

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE login_failures (
    username     TEXT NOT NULL,
    source       TEXT NOT NULL,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (username, source)
);
