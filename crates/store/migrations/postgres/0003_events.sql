-- Event delivery (shedu-events): per-sink cursors into the outbox, alert subscriptions, their deliveries,
-- and the expiry reminders already emitted. Times are Unix seconds.

-- One row per durable sink: the outbox position it has acknowledged. Only ever moves forward.
CREATE TABLE event_cursors (
    sink       TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Alert subscriptions. event_types: comma-separated (`*` and `prefix.*` allowed); channel and condition: JSON.
CREATE TABLE subscriptions (
    id          TEXT PRIMARY KEY,
    event_types TEXT NOT NULL,
    channel     TEXT NOT NULL,
    condition   TEXT,
    created_at  BIGINT NOT NULL
);

-- One row per (subscription, event): the primary key makes each event enqueue at most once per subscription.
-- status: pending | delivered | dead.
CREATE TABLE deliveries (
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_seq       BIGINT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, event_id)
);
-- The delivery worker reads only due pending rows.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_status_seq ON deliveries (status, event_seq);

-- Expiry reminders already emitted: one per certificate and threshold (days before notAfter).
CREATE TABLE expiry_reminders (
    ca_id       TEXT NOT NULL,
    serial      TEXT NOT NULL,
    days_before BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (ca_id, serial, days_before)
);
