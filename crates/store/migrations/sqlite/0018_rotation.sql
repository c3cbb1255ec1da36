-- Agentless certificate rotation (issue 16): the asset inventory, executors, ordered routes and runs.
-- Times are Unix seconds.

-- An asset is a host reached from outside (no agent). The Ottr fields are columns so that every one can be
-- searched; subject_alternative_name is a JSON array and labels a JSON object. The computed fields
-- (certificate_expiration, current_fingerprint, current_serial, next_rotation_at, last_run, skip_reason,
-- failures) are written by scans and runs only. next_rotation_at is NULL while a run is queued or running:
-- the scheduler's due query reads only the partial index, so it costs O(due) whatever the inventory's size.
CREATE TABLE rotation_assets (
    seq                      INTEGER PRIMARY KEY,
    system_name              TEXT NOT NULL,
    common_name              TEXT NOT NULL,
    subject_alternative_name TEXT NOT NULL,
    ip_address               TEXT,
    port                     BIGINT NOT NULL,
    data_center              TEXT,
    host_platform            TEXT,
    os_version               TEXT,
    device_model             TEXT,
    origin                   TEXT,
    certificate_validation   BIGINT NOT NULL,
    ca_id                    TEXT,
    labels                   TEXT NOT NULL,
    certificate_expiration   BIGINT,
    current_fingerprint      TEXT,
    current_serial           TEXT,
    next_rotation_at         BIGINT,
    last_run                 TEXT,
    skip_reason              TEXT,
    failures                 BIGINT NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    CONSTRAINT rotation_assets_name_unique UNIQUE (system_name)
);
CREATE INDEX rotation_assets_due ON rotation_assets (next_rotation_at) WHERE next_rotation_at IS NOT NULL;
CREATE INDEX rotation_assets_expiration ON rotation_assets (certificate_expiration);

-- An executor: how rotation reaches a kind of host. config is JSON without secrets; sealed holds the
-- secret (an SSH private key) sealed under the master key with the executor id as associated data.
CREATE TABLE rotation_executors (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    config      TEXT NOT NULL,
    sealed      BLOB,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT rotation_executors_name_unique UNIQUE (name)
);

-- Routes, first match by position wins. settings is core's JSON (match, CA, validity, key mode).
CREATE TABLE rotation_routes (
    id           TEXT PRIMARY KEY,
    position     BIGINT NOT NULL,
    executor_id  TEXT NOT NULL REFERENCES rotation_executors (id),
    settings     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX rotation_routes_position ON rotation_routes (position);

-- Runs: queued (FIFO by seq), running, then succeeded, failed or rolled_back. steps is the JSON log.
CREATE TABLE rotation_runs (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL,
    system_name  TEXT NOT NULL,
    state        TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    steps        TEXT NOT NULL,
    serial       TEXT,
    error        TEXT,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    CONSTRAINT rotation_runs_id_unique UNIQUE (id)
);
-- At most one active run per asset, on every replica.
CREATE UNIQUE INDEX rotation_runs_active ON rotation_runs (system_name) WHERE state IN ('queued', 'running');
CREATE INDEX rotation_runs_state_seq ON rotation_runs (state, seq);
CREATE INDEX rotation_runs_asset_seq ON rotation_runs (system_name, seq);
