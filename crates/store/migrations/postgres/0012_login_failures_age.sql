-- Failed-login counters quiet for a day are deleted as new attempts come in; this finds them.
CREATE INDEX login_failures_updated ON login_failures (updated_at);
