-- The secret store's token and policy changes reach every replica (see 0020_cluster.sql): a replica caches
-- the callers it authenticated (token, ancestors' expiry, parsed policies) and forgets them when any
-- token is revoked, renewed or deleted, or any policy changes. One notification per transaction is enough
-- (PostgreSQL folds identical payloads sent in one transaction).
CREATE FUNCTION shedu_secrets_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shedu_changes', 'secrets');
    RETURN NULL;
END
$$;
CREATE TRIGGER secret_tokens_changed AFTER UPDATE OR DELETE ON secret_tokens
    FOR EACH ROW EXECUTE FUNCTION shedu_secrets_changed();
CREATE TRIGGER secret_policies_changed AFTER INSERT OR UPDATE OR DELETE ON secret_policies
    FOR EACH ROW EXECUTE FUNCTION shedu_secrets_changed();
