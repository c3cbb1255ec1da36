-- The tag index carries what a tag listing orders by and a group counts by: the device's `seq`, RA and
-- status. A listing filtered by a tag then reads its page from `(tag, device_seq)` instead of every device
-- with the tag, and a group with tags counts from `(tag, ra_id, status)` without visiting the devices. A
-- trigger keeps RA and status equal to the device's in the transaction of every statement that changes them
-- (the sweep, enrolments, decommissioning, edits); `seq` never changes. SQLite cannot add NOT NULL columns
-- to a table with rows, so the table is rebuilt.
CREATE TABLE device_tags_new (
    tag        TEXT NOT NULL,
    device_id  TEXT NOT NULL REFERENCES devices(id),
    device_seq BIGINT NOT NULL,
    ra_id      TEXT NOT NULL,
    status     TEXT NOT NULL,
    PRIMARY KEY (tag, device_id)
);
INSERT INTO device_tags_new (tag, device_id, device_seq, ra_id, status)
    SELECT t.tag, t.device_id, d.seq, d.ra_id, d.status FROM device_tags t JOIN devices d ON d.id = t.device_id;
DROP TABLE device_tags;
ALTER TABLE device_tags_new RENAME TO device_tags;
CREATE INDEX device_tags_device ON device_tags (device_id);
CREATE INDEX device_tags_tag_seq ON device_tags (tag, device_seq);
CREATE INDEX device_tags_tag_ra_status ON device_tags (tag, ra_id, status, device_seq);
CREATE TRIGGER device_tags_follow AFTER UPDATE OF ra_id, status ON devices
    WHEN OLD.ra_id IS NOT NEW.ra_id OR OLD.status IS NOT NEW.status BEGIN $$
    UPDATE device_tags SET ra_id = NEW.ra_id, status = NEW.status WHERE device_id = NEW.id;
$$ END;
