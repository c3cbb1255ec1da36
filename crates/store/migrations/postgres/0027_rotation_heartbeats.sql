-- Rotation runs carry their owner's heartbeat (issue 16): a worker stamps heartbeat_at while it runs a run, so a
-- run whose replica died (its heartbeat stopped) or that outlived its budget can be told from one in progress,
-- marked failed once (a guarded update) and its asset made due again. ca_id is the CA of the certificate the
-- run issued (recorded with serial as soon as it is issued), so whoever ends an abandoned run can revoke it.
-- Times are Unix seconds.
ALTER TABLE rotation_runs ADD COLUMN heartbeat_at BIGINT;
ALTER TABLE rotation_runs ADD COLUMN ca_id TEXT;
CREATE INDEX rotation_runs_running ON rotation_runs (heartbeat_at) WHERE state = 'running';
