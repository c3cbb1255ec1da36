-- The audit chain's lock and head in one call, so that an appender's batch statement can take the lock and
-- read the head in the same round trip (crates/store/src/audit.rs, crates/store/src/writer.rs). The head must
-- be read with a snapshot taken after the lock is granted: a statement's own snapshot predates its wait for
-- the lock and would miss the rows another appender committed meanwhile. A VOLATILE SQL function takes a new
-- snapshot for each statement it runs, so its second statement sees every row committed before the lock was
-- granted. `after` is not read: passing a value of the calling statement makes PostgreSQL evaluate that value
-- (the batch's token spends) before it takes the lock, in the order every appender takes them.
CREATE FUNCTION shedu_audit_lock_head(lock_id BIGINT, after TEXT)
RETURNS TABLE (seq BIGINT, hash BYTEA) LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock(lock_id);
    SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1;
$$;
