-- Cluster notifications are PostgreSQL's (see postgres/0031_secret_changes.sql): a SQLite database has one
-- process, which forgets its cached secret-store callers itself. Nothing to change here.
SELECT 1;
