-- Cloud connectors (AWS IoT Core today): where a connector reaches its cloud, its settings as JSON, and its
-- credentials sealed under the master key (never stored or returned in clear). cloud_sync holds one row per
-- (connector, CA) and (connector, certificate): what the cloud should show (desired), where the connector
-- stands (pending, synced, failed with the error and the next attempt), and the cloud's own ids, so that a
-- retry or a restart looks up what it already made instead of making it twice.
CREATE TABLE cloud_connectors (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    provider     TEXT NOT NULL,
    region       TEXT NOT NULL,
    endpoint_url TEXT,
    settings     TEXT NOT NULL,
    credentials  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE TABLE cloud_sync (
    connector_id TEXT NOT NULL REFERENCES cloud_connectors (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    ca_id        TEXT NOT NULL,
    serial       TEXT NOT NULL,
    desired      TEXT NOT NULL,
    state        TEXT NOT NULL,
    error        TEXT,
    attempts     BIGINT NOT NULL,
    retry_at     BIGINT NOT NULL,
    cloud_id     TEXT,
    cloud_arn    TEXT,
    thing_name   TEXT,
    detail       TEXT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (connector_id, kind, ca_id, serial)
);
CREATE INDEX cloud_sync_due ON cloud_sync (state, retry_at);
