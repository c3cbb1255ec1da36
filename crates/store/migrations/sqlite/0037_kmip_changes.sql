-- Cluster notifications are PostgreSQL's (see postgres/0037_kmip_changes.sql): a SQLite database has one
-- process, which forgets its cached KMIP objects itself. Nothing to change here.
SELECT 1;
