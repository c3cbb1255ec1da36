-- Signed OCSP answers for one certificate, kept so that a restart or another replica serves them instead of
-- signing again (issue 19). An answer is served only while the certificate's status, revocation time and
-- reason are the ones it was signed for: the query that reads it compares them with the certificate's row,
-- so a revocation makes it stale at once without touching this table.
CREATE TABLE ocsp_answers (
    ca_id        TEXT NOT NULL,
    serial       TEXT NOT NULL,
    cert_id_hash TEXT NOT NULL,
    status       TEXT NOT NULL,
    revoked_at   BIGINT,
    reason       TEXT,
    this_update  BIGINT NOT NULL,
    der          BYTEA NOT NULL,
    PRIMARY KEY (ca_id, serial, cert_id_hash)
);
CREATE INDEX ocsp_answers_this_update ON ocsp_answers (this_update);
