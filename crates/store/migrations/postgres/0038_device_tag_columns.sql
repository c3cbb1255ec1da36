-- The tag index carries what a tag listing orders by and a group counts by: the device's `seq`, RA and
-- status. A listing filtered by a tag then reads its page from `(tag, device_seq)` instead of every device
-- with the tag, and a group with tags counts from `(tag, ra_id, status)` without visiting the devices. A row
-- trigger keeps RA and status equal to the device's in the transaction of every statement that changes them,
-- and runs only for rows whose RA or status changed; `seq` never changes. The price is paid by status
-- changes: each rewrites the device's tag rows and their index entries (at 200k devices a sweep wave of 4,000
-- devices took about 0.65 s longer, with a row trigger or a statement trigger alike; BENCHMARKS.md, § Device
-- registry).
ALTER TABLE device_tags ADD COLUMN device_seq BIGINT, ADD COLUMN ra_id TEXT, ADD COLUMN status TEXT;
CREATE FUNCTION shedu_device_tags_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE device_tags SET ra_id = NEW.ra_id, status = NEW.status WHERE device_id = NEW.id;
    RETURN NULL;
END
$$;
-- The trigger before the backfill: `CREATE TRIGGER` waits for every writer of devices and blocks new ones
-- until this migration commits, so the backfill sees every row the trigger will not.
CREATE TRIGGER device_tags_follow AFTER UPDATE OF ra_id, status ON devices FOR EACH ROW
    WHEN (OLD.ra_id IS DISTINCT FROM NEW.ra_id OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION shedu_device_tags_follow();
UPDATE device_tags t SET device_seq = d.seq, ra_id = d.ra_id, status = d.status FROM devices d WHERE d.id = t.device_id;
ALTER TABLE device_tags ALTER COLUMN device_seq SET NOT NULL, ALTER COLUMN ra_id SET NOT NULL,
    ALTER COLUMN status SET NOT NULL;
CREATE INDEX device_tags_tag_seq ON device_tags (tag, device_seq);
CREATE INDEX device_tags_tag_ra_status ON device_tags (tag, ra_id, status, device_seq);
