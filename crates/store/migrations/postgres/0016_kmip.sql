-- KMIP managed objects: attributes in the clear (JSON TTLV, never key material) and the object's TTLV
-- sealed under the master key with its uid as associated data (NULL once destroyed: a destroyed object
-- keeps its metadata). kmip_access holds the grants an owner gave other users, per operation
-- (Cosmian's read_access model).
CREATE TABLE kmip_objects (
    uid          TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    object_type  BIGINT NOT NULL,
    state        BIGINT NOT NULL,
    attributes   TEXT NOT NULL,
    sealed       BYTEA,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX kmip_objects_owner ON kmip_objects (owner);
CREATE TABLE kmip_access (
    uid        TEXT NOT NULL REFERENCES kmip_objects (uid),
    user_id    TEXT NOT NULL,
    operation  TEXT NOT NULL,
    PRIMARY KEY (uid, user_id, operation)
);
CREATE INDEX kmip_access_user ON kmip_access (user_id);
