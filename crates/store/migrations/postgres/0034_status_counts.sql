-- Counts kept as rows change, so that `GET /status`, the dashboard and device group counts read a handful of
-- rows instead of grouping millions: certificates per (CA, status) and per (status, day of notAfter) (the
-- expiry timeline: whole days from the counts, the two partial days at the ends from the expiry indexes),
-- devices per (RA, status). Triggers keep
-- them, in the transaction of every statement that inserts, deletes or moves a row between statuses, so no
-- path (issuance, import, revocation, hold and release, the sweep, purges, device changes) can forget them.
--
-- Why deltas and statement triggers here: a trigger that updated `certificate_counts` in place would make every
-- issuing transaction lock the same (CA, 'active') row until it commits, serialising the group-commit writer's
-- concurrent batches and enrolments on one hot row (and risking deadlocks between transactions that move
-- several counts). Instead each statement appends its net change, aggregated per key over the statement's
-- transition tables (one row per (CA, status) for a 32-certificate batch or a 100,000-row sweep, never one per
-- row), to `*_count_deltas`: inserts only, which never wait on each other. A count is its folded row plus its
-- pending deltas (`Store::status_counts` reads both in one snapshot); the status sweep, which already runs
-- periodically under an advisory lock, folds the deltas into the counts (`Store::fold_counts`), so only
-- one transaction at a time ever updates a folded row.
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
-- Transition tables allow one event per trigger, hence one function per kind of statement.
CREATE FUNCTION shedu_certificate_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO certificate_count_deltas (ca_id, status, n)
        SELECT ca_id, status, COUNT(*) FROM new_rows GROUP BY ca_id, status;
    INSERT INTO certificate_expiry_count_deltas (status, day, n)
        SELECT status, not_after / 86400, COUNT(*) FROM new_rows GROUP BY status, not_after / 86400;
    RETURN NULL;
END
$$;
CREATE FUNCTION shedu_certificate_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO certificate_count_deltas (ca_id, status, n)
        SELECT ca_id, status, SUM(n) FROM (
            SELECT ca_id, status, 1 AS n FROM new_rows
            UNION ALL SELECT ca_id, status, -1 AS n FROM old_rows) d
        GROUP BY ca_id, status HAVING SUM(n) <> 0;
    INSERT INTO certificate_expiry_count_deltas (status, day, n)
        SELECT status, day, SUM(n) FROM (
            SELECT status, not_after / 86400 AS day, 1 AS n FROM new_rows
            UNION ALL SELECT status, not_after / 86400 AS day, -1 AS n FROM old_rows) d
        GROUP BY status, day HAVING SUM(n) <> 0;
    RETURN NULL;
END
$$;
CREATE FUNCTION shedu_certificate_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO certificate_count_deltas (ca_id, status, n)
        SELECT ca_id, status, -COUNT(*) FROM old_rows GROUP BY ca_id, status;
    INSERT INTO certificate_expiry_count_deltas (status, day, n)
        SELECT status, not_after / 86400, -COUNT(*) FROM old_rows GROUP BY status, not_after / 86400;
    RETURN NULL;
END
$$;
CREATE TRIGGER certificate_counts_insert AFTER INSERT ON certificates
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION shedu_certificate_counts_insert();
CREATE TRIGGER certificate_counts_update AFTER UPDATE ON certificates
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION shedu_certificate_counts_update();
CREATE TRIGGER certificate_counts_delete AFTER DELETE ON certificates
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION shedu_certificate_counts_delete();
CREATE FUNCTION shedu_device_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_count_deltas (ra_id, status, n)
        SELECT ra_id, status, COUNT(*) FROM new_rows GROUP BY ra_id, status;
    RETURN NULL;
END
$$;
CREATE FUNCTION shedu_device_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_count_deltas (ra_id, status, n)
        SELECT ra_id, status, SUM(n) FROM (
            SELECT ra_id, status, 1 AS n FROM new_rows
            UNION ALL SELECT ra_id, status, -1 AS n FROM old_rows) d
        GROUP BY ra_id, status HAVING SUM(n) <> 0;
    RETURN NULL;
END
$$;
CREATE FUNCTION shedu_device_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_count_deltas (ra_id, status, n)
        SELECT ra_id, status, -COUNT(*) FROM old_rows GROUP BY ra_id, status;
    RETURN NULL;
END
$$;
CREATE TRIGGER device_counts_insert AFTER INSERT ON devices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION shedu_device_counts_insert();
CREATE TRIGGER device_counts_update AFTER UPDATE ON devices
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION shedu_device_counts_update();
CREATE TRIGGER device_counts_delete AFTER DELETE ON devices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION shedu_device_counts_delete();
-- After the triggers: `CREATE TRIGGER` waited for every writer of the table, and blocks new ones until this
-- migration commits, so the backfill below sees every row the triggers will not.
INSERT INTO certificate_counts (ca_id, status, n)
    SELECT ca_id, status, COUNT(*) FROM certificates GROUP BY ca_id, status;
INSERT INTO certificate_expiry_counts (status, day, n)
    SELECT status, not_after / 86400, COUNT(*) FROM certificates GROUP BY status, not_after / 86400;
INSERT INTO device_counts (ra_id, status, n)
    SELECT ra_id, status, COUNT(*) FROM devices GROUP BY ra_id, status;
