-- The revocation marker a stored CRL was built at (count of revoked certificates of the CA, latest
-- revocation time), so any replica can serve the stored CRL while it is current instead of signing its own.
-- -1: built before markers were stored (rebuilt at the next request).
ALTER TABLE crls ADD COLUMN revoked_count BIGINT NOT NULL DEFAULT -1;
ALTER TABLE crls ADD COLUMN revoked_latest BIGINT NOT NULL DEFAULT -1;
