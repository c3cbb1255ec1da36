-- Counts kept as rows change, so that `GET /status`, the dashboard and device group counts read a handful of
-- rows instead of grouping millions: certificates per (CA, status) and per (status, day of notAfter) (the
-- expiry timeline: whole days from the counts, the two partial days at the ends from the expiry indexes),
-- devices per (RA, status). Triggers keep
-- them, in the transaction of every statement that inserts, deletes or moves a row between statuses, so no
-- path (issuance, import, revocation, hold and release, the sweep, purges, device changes) can forget them.
-- SQLite has one writer: a row trigger updating the count in place contends with nothing and costs a few
-- microseconds per row. The `*_count_deltas` tables exist for PostgreSQL (see its script); they stay empty
-- here, and the readers sum both tables on either database.
CREATE TABLE certificate_counts (
    ca_id  TEXT NOT NULL,
    status TEXT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (ca_id, status)
);
CREATE TABLE certificate_count_deltas (
    ca_id  TEXT NOT NULL,
    status TEXT NOT NULL,
    n      BIGINT NOT NULL
);
CREATE TABLE certificate_expiry_counts (
    status TEXT NOT NULL,
    day    BIGINT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (status, day)
);
CREATE TABLE certificate_expiry_count_deltas (
    status TEXT NOT NULL,
    day    BIGINT NOT NULL,
    n      BIGINT NOT NULL
);
CREATE TABLE device_counts (
    ra_id  TEXT NOT NULL,
    status TEXT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (ra_id, status)
);
CREATE TABLE device_count_deltas (
    ra_id  TEXT NOT NULL,
    status TEXT NOT NULL,
    n      BIGINT NOT NULL
);
-- A trigger body holds `;`: the `$$` marks keep it one statement for the migration runner, which drops them
-- on SQLite.
CREATE TRIGGER certificate_counts_insert AFTER INSERT ON certificates BEGIN $$
    INSERT INTO certificate_counts (ca_id, status, n) VALUES (NEW.ca_id, NEW.status, 1)
        ON CONFLICT (ca_id, status) DO UPDATE SET n = n + 1;
    INSERT INTO certificate_expiry_counts (status, day, n) VALUES (NEW.status, NEW.not_after / 86400, 1)
        ON CONFLICT (status, day) DO UPDATE SET n = n + 1;
$$ END;
CREATE TRIGGER certificate_counts_update AFTER UPDATE OF ca_id, status, not_after ON certificates
    WHEN OLD.ca_id IS NOT NEW.ca_id OR OLD.status IS NOT NEW.status OR OLD.not_after IS NOT NEW.not_after
    BEGIN $$
    UPDATE certificate_counts SET n = n - 1 WHERE ca_id = OLD.ca_id AND status = OLD.status;
    INSERT INTO certificate_counts (ca_id, status, n) VALUES (NEW.ca_id, NEW.status, 1)
        ON CONFLICT (ca_id, status) DO UPDATE SET n = n + 1;
    UPDATE certificate_expiry_counts SET n = n - 1 WHERE status = OLD.status AND day = OLD.not_after / 86400;
    INSERT INTO certificate_expiry_counts (status, day, n) VALUES (NEW.status, NEW.not_after / 86400, 1)
        ON CONFLICT (status, day) DO UPDATE SET n = n + 1;
$$ END;
CREATE TRIGGER certificate_counts_delete AFTER DELETE ON certificates BEGIN $$
    UPDATE certificate_counts SET n = n - 1 WHERE ca_id = OLD.ca_id AND status = OLD.status;
    UPDATE certificate_expiry_counts SET n = n - 1 WHERE status = OLD.status AND day = OLD.not_after / 86400;
$$ END;
CREATE TRIGGER device_counts_insert AFTER INSERT ON devices BEGIN $$
    INSERT INTO device_counts (ra_id, status, n) VALUES (NEW.ra_id, NEW.status, 1)
        ON CONFLICT (ra_id, status) DO UPDATE SET n = n + 1;
$$ END;
CREATE TRIGGER device_counts_update AFTER UPDATE OF ra_id, status ON devices
    WHEN OLD.ra_id IS NOT NEW.ra_id OR OLD.status IS NOT NEW.status BEGIN $$
    UPDATE device_counts SET n = n - 1 WHERE ra_id = OLD.ra_id AND status = OLD.status;
    INSERT INTO device_counts (ra_id, status, n) VALUES (NEW.ra_id, NEW.status, 1)
        ON CONFLICT (ra_id, status) DO UPDATE SET n = n + 1;
$$ END;
CREATE TRIGGER device_counts_delete AFTER DELETE ON devices BEGIN $$
    UPDATE device_counts SET n = n - 1 WHERE ra_id = OLD.ra_id AND status = OLD.status;
$$ END;
INSERT INTO certificate_counts (ca_id, status, n)
    SELECT ca_id, status, COUNT(*) FROM certificates GROUP BY ca_id, status;
INSERT INTO certificate_expiry_counts (status, day, n)
    SELECT status, not_after / 86400, COUNT(*) FROM certificates GROUP BY status, not_after / 86400;
INSERT INTO device_counts (ra_id, status, n)
    SELECT ra_id, status, COUNT(*) FROM devices GROUP BY ra_id, status;
