-- ACME rate limits that hold under concurrent requests. A limited write (a new order, a new account) first
-- upserts the lock row of each key it counts against, in sorted order, inside its own transaction: on
-- PostgreSQL the upsert holds the row lock until commit, so the next writer of the same key waits, then
-- counts the rows the first one committed; on SQLite the one writer connection serializes them anyway.
CREATE TABLE acme_rate_locks (
    key        TEXT PRIMARY KEY,
    touched_at BIGINT NOT NULL
);
CREATE INDEX acme_rate_locks_touched ON acme_rate_locks (touched_at);

-- The limit on new accounts per client address counts an RA's accounts created from one address.
ALTER TABLE acme_accounts ADD COLUMN created_from TEXT;
CREATE INDEX acme_accounts_created_from ON acme_accounts (ra_id, created_from, created_at);
