-- ACME's cached settings and accounts reach every replica (see 0020_cluster.sql): a replica keeps each RA's
-- ACME settings and each account's key and status in memory, and forgets them when any RA is created,
-- changed or deleted, or any account is updated (status, contacts, key). One notification per transaction
-- is enough (PostgreSQL folds identical payloads sent in one transaction).
CREATE FUNCTION shedu_acme_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shedu_changes', 'acme');
    RETURN NULL;
END
$$;
CREATE TRIGGER ras_acme_changed AFTER INSERT OR UPDATE OR DELETE ON ras
    FOR EACH ROW EXECUTE FUNCTION shedu_acme_changed();
CREATE TRIGGER acme_accounts_changed AFTER UPDATE OR DELETE ON acme_accounts
    FOR EACH ROW EXECUTE FUNCTION shedu_acme_changed();
