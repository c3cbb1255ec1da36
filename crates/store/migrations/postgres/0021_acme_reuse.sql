-- ACME authorization reuse and rate limits. A new order looks up the account's valid authorizations by
-- identifier, and the per-identifier rate limit counts an RA's recent orders naming an identifier.
CREATE INDEX acme_authzs_identifier ON acme_authzs (identifier_type, identifier_value);
-- The per-account rate limit counts an account's orders created since a time.
CREATE INDEX acme_orders_account_created ON acme_orders (account_id, created_at);
