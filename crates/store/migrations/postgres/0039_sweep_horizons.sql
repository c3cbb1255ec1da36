-- Where the status sweep's certificate range scans start. PostgreSQL keeps an index entry for every row
-- version until VACUUM, so once a sweep has moved a wave of certificates out of `active`, the partial
-- expiry indexes still hold an entry for each of them, and every later sweep whose range covers them visited
-- each one's table page (0.3 s per no-op sweep at 1M certificates after a 1 % wave). A horizon per status is
-- a notAfter at or below which no certificate of that status is left: the sweep scans only above it, then
-- raises it. Rows that arrive below it later (an import of an expired certificate, a certificate issued
-- inside its CA's warning window) are seen in the expiry count deltas (0034) the sweep folds, which lower it
-- again (`crates/store/src/sweep.rs`). No row for a status: nothing is known, the sweep scans from the start.
CREATE TABLE sweep_horizons (
    status    TEXT PRIMARY KEY,
    not_after BIGINT NOT NULL
);
