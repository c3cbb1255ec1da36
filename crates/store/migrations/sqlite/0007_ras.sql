-- Registration authorities: who may enrol for which CA, and how devices prove who they are. The
-- enrolment settings are one JSON document: read and written whole, never queried inside.
CREATE TABLE ras (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    settings        TEXT NOT NULL,
    certificate_der BLOB,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT ras_name_unique UNIQUE (name)
)
