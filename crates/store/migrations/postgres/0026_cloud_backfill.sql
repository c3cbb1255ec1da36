-- Cloud connectors catch up with the fleet that existed before them, and can take back what they made.
-- cloud_sync.backfill_after, on a CA item: the certificates of that CA (by certificates.seq) after this
-- position still have to be queued; NULL when there is nothing left to catch up with. A page of certificates
-- is queued and the position moved in one transaction, so a restart resumes where the last page ended.
-- cloud_connectors.deregister_at: when an operator deleted the connector asking that what it registered be
-- removed from the cloud; the row stays (and takes no new work) until the worker has done so.
ALTER TABLE cloud_sync ADD COLUMN backfill_after BIGINT;
ALTER TABLE cloud_connectors ADD COLUMN deregister_at BIGINT;
CREATE INDEX cloud_sync_backfill ON cloud_sync (connector_id) WHERE backfill_after IS NOT NULL;
