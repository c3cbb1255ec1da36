-- Cluster coherence (several replicas on one database). Every replica keeps caches (signed OCSP answers, loaded
-- CAs, the OCSP issuer index, trust anchors); a change committed on one replica reaches the others as a
-- notification on channel shedu_changes, sent by these triggers in the change's own transaction (PostgreSQL
-- delivers it at commit, in commit order). A replica may use its caches only while it holds a lease: it
-- renews the lease each time its own heartbeat notification comes back, which proves every change committed
-- before the heartbeat was applied. A revocation returns once every replica with a live lease has synced past
-- it (or its lease ran out); it raises the fence first, so that no replica whose lease is not live takes one
-- from a heartbeat sent before it.
CREATE TABLE replica_leases (
    id          TEXT PRIMARY KEY,
    synced_at   BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);
-- The latest revocation time a replica must have synced past to take a lease that is not live (a replica
-- that comes back, or a new one): no lease from a heartbeat older than a revocation that did not wait for
-- it.
CREATE TABLE cluster_fence (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
INSERT INTO cluster_fence (id, at) VALUES (1, 0);
CREATE FUNCTION shedu_certificate_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shedu_changes', 'certificate ' || NEW.ca_id || ' ' || NEW.serial);
    RETURN NULL;
END
$$;
CREATE TRIGGER certificates_revocation_changed AFTER UPDATE OF status ON certificates
    FOR EACH ROW WHEN ((OLD.status = 'revoked') IS DISTINCT FROM (NEW.status = 'revoked'))
    EXECUTE FUNCTION shedu_certificate_changed();
CREATE FUNCTION shedu_ca_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shedu_changes', 'ca ' || NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER cas_changed AFTER INSERT OR UPDATE ON cas
    FOR EACH ROW EXECUTE FUNCTION shedu_ca_changed();
CREATE FUNCTION shedu_ca_settings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shedu_changes', 'ca ' || NEW.ca_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER ca_va_settings_changed AFTER INSERT OR UPDATE ON ca_va_settings
    FOR EACH ROW EXECUTE FUNCTION shedu_ca_settings_changed();
