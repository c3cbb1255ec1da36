-- Nothing on SQLite: an UPDATE there removes a row's old index entries at once, so the sweep's range scans
-- over the partial expiry indexes never meet the rows an earlier sweep moved, and it keeps no horizon
-- (PostgreSQL's `sweep_horizons`, crates/store/src/sweep.rs).
SELECT 1;
