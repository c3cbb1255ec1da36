-- Nothing on SQLite: one writer connection appends to the audit chain, so no lock is taken and the head is
-- read in a statement of its own (PostgreSQL's `shedu_audit_lock_head`, crates/store/src/audit.rs).
SELECT 1;
