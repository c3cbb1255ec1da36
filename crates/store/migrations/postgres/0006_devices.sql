-- Device registry: devices, their identity slots (one per CA) with the certificates issued into each, a tag
-- index, the device log, and saved device groups. Times are Unix seconds.

-- status (pending_provisioning | fully_provisioned | requires_action | with_warnings | decommissioned) is
-- derived from the slots and stored, so that it can be filtered and counted at a million devices. tags is the
-- comma-separated display copy (device_tags is the index); metadata is a JSON object; secret_sha256 is the
-- one-time enrolment secret's hash, cleared when used. ra_id has no foreign key: RAs arrive in a later
-- migration, and operators may pre-register devices for an RA that is created afterwards.
CREATE TABLE devices (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL,
    ra_id         TEXT NOT NULL,
    alias         TEXT,
    tags          TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    status        TEXT NOT NULL,
    secret_sha256 BYTEA,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT devices_id_unique UNIQUE (id)
);
-- Listings go newest first (seq DESC) by RA, by status, or both.
CREATE INDEX devices_ra_seq ON devices (ra_id, seq);
CREATE INDEX devices_status_seq ON devices (status, seq);
CREATE INDEX devices_ra_status_seq ON devices (ra_id, status, seq);

CREATE TABLE device_tags (
    tag       TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices(id),
    PRIMARY KEY (tag, device_id)
);
CREATE INDEX device_tags_device ON device_tags (device_id);

-- One slot per (device, CA). The slot's active certificate's status and notAfter are copied here so that the
-- lifecycle sweep moves slots, and the devices they belong to, with the same set-based statements over
-- partial indexes it uses for certificates.
CREATE TABLE device_slots (
    device_id        TEXT NOT NULL REFERENCES devices(id),
    ca_id            TEXT NOT NULL REFERENCES cas(id),
    active_serial    TEXT NOT NULL,
    active_status    TEXT NOT NULL,
    active_not_after BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (device_id, ca_id)
);
CREATE INDEX device_slots_active_expiry ON device_slots (active_not_after) WHERE active_status = 'active';
CREATE INDEX device_slots_warning_expiry ON device_slots (active_not_after) WHERE active_status = 'about_to_expire';

-- Every certificate issued into a slot (kind: enroll | reenroll); the primary key finds a certificate's device.
CREATE TABLE device_certificates (
    ca_id     TEXT NOT NULL,
    serial    TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices(id),
    issued_at BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    PRIMARY KEY (ca_id, serial),
    FOREIGN KEY (ca_id, serial) REFERENCES certificates (ca_id, serial)
);
CREATE INDEX device_certificates_device ON device_certificates (device_id, ca_id, issued_at);

-- What happened to a device, newest last; data is a JSON object (the matching event's data).
CREATE TABLE device_log (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    time      BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    message   TEXT NOT NULL,
    data      TEXT NOT NULL
);
CREATE INDEX device_log_device_seq ON device_log (device_id, seq);

-- Saved filters. A child's filter is ANDed with its ancestors'. tags: comma-separated, all must match;
-- metadata: a JSON object of key to scalar, every pair must be equal.
CREATE TABLE device_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    parent_id  TEXT REFERENCES device_groups(id),
    ra_id      TEXT,
    status     TEXT,
    tags       TEXT NOT NULL,
    metadata   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT device_groups_name_unique UNIQUE (name)
);
CREATE INDEX device_groups_parent ON device_groups (parent_id)
