-- Cluster notifications are PostgreSQL's (see postgres/0036_acme_changes.sql): a SQLite database has one
-- process, which forgets its cached RA settings and ACME accounts itself. Nothing to change here.
SELECT 1;
