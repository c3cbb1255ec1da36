-- The certificate search by subject (GET /api/v1/certificates?subject=, the console's filter): a
-- case-insensitive prefix of the common name, answered by a range scan of this index instead of a
-- substring scan of every row. The key is the subject's text from its first CN's value on, lowercased; the
-- expression is the one `certificates::common_name_key` queries with, character for character.
CREATE INDEX certificates_common_name ON certificates (lower(substr(subject, instr(subject, 'CN=') + 3)))
    WHERE instr(subject, 'CN=') > 0;

-- A console login through an OIDC provider is a refresh-token family like a local user's (`user_id` is the
-- principal's `oidc:<issuer>#<sub>`); each of its tokens holds the provider's refresh token, sealed under
-- the master key, which the server presents to the provider at each refresh. Never sent to the browser.
ALTER TABLE refresh_tokens ADD COLUMN provider_token BLOB;
