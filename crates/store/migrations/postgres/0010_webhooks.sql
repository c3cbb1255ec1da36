-- Webhook signing secrets are sealed under the master key (AES-256-GCM, bound to the subscription id) and
-- kept apart from the channel JSON; rows written before this migration still carry the secret in the JSON
-- until the next start seals it.
ALTER TABLE subscriptions ADD COLUMN secret_sealed BYTEA;
