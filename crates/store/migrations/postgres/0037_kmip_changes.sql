-- KMIP object and grant changes reach every replica (see 0020_cluster.sql): a replica caches the objects
-- it read (sealed material, attributes, owner, grants) and forgets one when its row or a grant on it
-- changes. New objects need no notification: nobody cached them.
CREATE FUNCTION shedu_kmip_object_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shedu_changes', 'kmip ' || OLD.uid);
    RETURN NULL;
END
$$;
CREATE TRIGGER kmip_objects_changed AFTER UPDATE OR DELETE ON kmip_objects
    FOR EACH ROW EXECUTE FUNCTION shedu_kmip_object_changed();
CREATE FUNCTION shedu_kmip_grant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('shedu_changes', 'kmip ' || NEW.uid);
    ELSE
        PERFORM pg_notify('shedu_changes', 'kmip ' || OLD.uid);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER kmip_access_changed AFTER INSERT OR UPDATE OR DELETE ON kmip_access
    FOR EACH ROW EXECUTE FUNCTION shedu_kmip_grant_changed();
