-- A CA profile's name policy (which subject attributes a request may set, which are fixed, which are
-- dropped; the SAN cap; the URI schemes), one JSON document read and written whole. NULL, as every CA made
-- before this migration has, means the default policy.
ALTER TABLE cas ADD COLUMN name_policy TEXT;
