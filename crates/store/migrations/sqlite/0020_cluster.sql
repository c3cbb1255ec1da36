-- Cluster coherence is PostgreSQL's (see postgres/0020_cluster.sql): a SQLite database has one process. The
-- table exists on both backends so that the schema is the same.
CREATE TABLE replica_leases (
    id          TEXT PRIMARY KEY,
    synced_at   BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);
-- The latest revocation time a replica must have synced past to take a lease that is not live (a replica
-- that comes back, or a new one): no lease from a heartbeat older than a revocation that did not wait for
-- it.
CREATE TABLE cluster_fence (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
INSERT INTO cluster_fence (id, at) VALUES (1, 0);
