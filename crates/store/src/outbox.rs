//! The delivery side of the events outbox (used by `shedu-events`): per-sink cursors, the cross-replica sink
//! lock, alert subscriptions and their deliveries, and expiry reminders.
//!
//! Why it lives here: the store is the only crate that names sqlx, and the guarantees the dispatcher promises
//! (cursor advanced only after an acknowledgement, each event enqueued at most once per subscription, each
//! reminder emitted once) are properties of these statements and their transactions.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};

use crate::audit::Audited;
use crate::migrate::now_secs;
use crate::{Backend, Error, EventRow, Store};

/// Lock class for sink locks (the first key of PostgreSQL's two-key advisory locks): "SHEV". Two-key locks
/// never collide with the sweep's one-key lock.
const SINK_LOCK_CLASS: i32 = 0x5348_4556;

/// An alert subscription as stored. `channel` and `condition` are JSON text owned by `shedu-events`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRow {
    /// Identifier (lowercase hex).
    pub id: String,
    /// Comma-separated event types (`*` and `prefix.*` are patterns).
    pub event_types: String,
    /// Where to send (JSON).
    pub channel: String,
    /// Optional filter (JSON).
    pub condition: Option<String>,
    /// The webhook signing secret, sealed under the master key (rows from before migration 10 have none
    /// and may carry the secret in `channel` until it is sealed).
    pub secret_sealed: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A delivery to enqueue: one event for one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// The subscription.
    pub subscription_id: String,
    /// The CloudEvents id of the event.
    pub event_id: String,
    /// The event's outbox position (for ordering and listing).
    pub event_seq: i64,
}

/// One delivery as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The subscription.
    pub subscription_id: String,
    /// The CloudEvents id of the event.
    pub event_id: String,
    /// The event's outbox position.
    pub event_seq: i64,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// Attempts started so far (a claim counts as an attempt).
    pub attempts: i64,
    /// When a pending delivery is due next (Unix seconds); while claimed, the end of the claim.
    pub next_attempt_at: i64,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

const DELIVERY_COLUMNS: &str = "subscription_id, event_id, event_seq, status, attempts, next_attempt_at, \
    last_error, created_at, updated_at";

impl DeliveryRow {
    fn from_row(r: &AnyRow) -> Result<DeliveryRow, Error> {
        Ok(DeliveryRow {
            subscription_id: r.try_get("subscription_id")?,
            event_id: r.try_get("event_id")?,
            event_seq: r.try_get("event_seq")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            next_attempt_at: r.try_get("next_attempt_at")?,
            last_error: r.try_get("last_error")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

impl SubscriptionRow {
    fn from_row(r: &AnyRow) -> Result<SubscriptionRow, Error> {
        Ok(SubscriptionRow {
            id: r.try_get("id")?,
            event_types: r.try_get("event_types")?,
            channel: r.try_get("channel")?,
            condition: r.try_get("condition")?,
            secret_sealed: r.try_get("secret_sealed")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// Which deliveries [`Store::list_deliveries`] returns.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Only this status (`pending`, `delivered`, `dead`).
    pub status: Option<String>,
    /// Only this subscription.
    pub subscription_id: Option<String>,
    /// Only rows with `event_seq` below this (pagination, newest first); `None` starts at the newest.
    pub before_seq: Option<i64>,
    /// At most this many rows.
    pub limit: i64,
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The channel accepted it.
    Delivered,
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// Unix seconds.
        next_attempt_at: i64,
        /// Why it failed.
        error: String,
    },
    /// Failed for the last time (dead letter).
    Dead {
        /// Why it failed.
        error: String,
    },
}

/// Exclusive right to dispatch one sink. On PostgreSQL a session advisory lock held on a dedicated connection
/// (taken out of the pool): it is released when this value is dropped or the connection dies, so a crashed
/// replica never blocks the others. On SQLite (one process per database file) it is a token.
#[derive(Debug)]
pub struct SinkLock {
    conn: Option<AnyConnection>,
}

impl SinkLock {
    /// Whether the lock is still held: on PostgreSQL, whether its connection still answers.
    pub async fn is_held(&mut self) -> bool {
        match self.conn.as_mut() {
            None => true,
            Some(c) => c.ping().await.is_ok(),
        }
    }

    /// Releases the lock now (dropping it also releases it, when the connection closes). The lock is given
    /// back before the connection closes: a closed connection's server process drops its locks only when it
    /// exits, after `close` returned, so the next attempt (of this replica's next tick) could still find the
    /// lock taken and skip its turn.
    pub async fn release(mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
                .execute(&mut c)
                .await;
            let _ = c.close().await;
        }
    }
}

impl Store {
    /// Appends one event to the outbox in its own transaction (for events that accompany no other change,
    /// such as audit checkpoints, and for tests).
    pub async fn append_event(&self, e: &crate::NewEvent) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        crate::events::append(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends `e` in a transaction that stays open until [`HeldTransaction::commit`]: how tests make a
    /// slow writer whose event becomes visible after later ones.
    #[cfg(any(test, feature = "testing"))]
    pub async fn append_event_held(&self, e: &crate::NewEvent) -> Result<HeldTransaction, Error> {
        let mut tx = self.write.begin().await?;
        crate::events::append(&mut tx, e).await?;
        Ok(HeldTransaction(tx))
    }

    /// Appends events in order, in one transaction (multi-row INSERTs).
    #[cfg(any(test, feature = "testing"))]
    pub async fn append_events(&self, es: &[crate::NewEvent]) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        for chunk in es.chunks(crate::writer::MAX_BATCH) {
            let refs: Vec<&crate::NewEvent> = chunk.iter().collect();
            crate::writer::insert_events(&mut tx, &refs, self.backend).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest outbox position (0 when empty).
    pub async fn max_event_seq(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM events")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("m")?)
    }

    /// One event by its CloudEvents id.
    pub async fn get_event(&self, id: &str) -> Result<EventRow, Error> {
        let sql = format!(
            "SELECT {} FROM events WHERE id = $1",
            crate::model::EVENT_COLUMNS
        );
        let r = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(Error::NotFound)?;
        EventRow::from_row(&r)
    }

    /// The acknowledged position of a sink, if it has one.
    pub async fn sink_cursor(&self, sink: &str) -> Result<Option<i64>, Error> {
        let row = sqlx::query("SELECT last_seq FROM event_cursors WHERE sink = $1")
            .bind(sink)
            .fetch_optional(&self.write)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("last_seq")?),
            None => None,
        })
    }

    /// The position of a sink, creating it at `start` if the sink is new.
    pub async fn init_sink_cursor(&self, sink: &str, start: i64) -> Result<i64, Error> {
        sqlx::query(
            "INSERT INTO event_cursors (sink, last_seq, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sink) DO NOTHING",
        )
        .bind(sink)
        .bind(start)
        .bind(now_secs())
        .execute(&self.write)
        .await?;
        self.sink_cursor(sink).await?.ok_or(Error::NotFound)
    }

    /// Moves a sink's position forward to `seq` (never backwards, so a stale replica cannot rewind it).
    pub async fn advance_sink_cursor(&self, sink: &str, seq: i64) -> Result<(), Error> {
        let mut conn = self.write.acquire().await?;
        advance_cursor(&mut conn, sink, seq).await
    }

    /// Deletes a sink's position (the sink starts over as new).
    #[cfg(any(test, feature = "testing"))]
    pub async fn reset_sink_cursor(&self, sink: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM event_cursors WHERE sink = $1")
            .bind(sink)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The ids of the transactions now running in this database that have written something, except the
    /// caller's; `None` on SQLite, where the single writer commits in `seq` order. The dispatcher uses them to
    /// tell an outbox gap that a running transaction may still fill from one a rolled-back insert left.
    /// Transactions in other databases of the cluster are not listed: they cannot fill this outbox, so they
    /// never hold its delivery back (a cluster-wide `xmin` would). Prepared (two-phase) transactions are not
    /// listed either; shedu never prepares one.
    pub async fn outbox_writers(&self) -> Result<Option<Vec<String>>, Error> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT backend_xid::text AS xid FROM pg_stat_activity \
             WHERE datname = current_database() AND backend_xid IS NOT NULL \
             AND pid <> pg_backend_pid()",
        )
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("xid").map_err(Error::from))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Tries to become the only dispatcher of `sink` across replicas. `None`: another replica holds it.
    pub async fn try_lock_sink(&self, sink: &str) -> Result<Option<SinkLock>, Error> {
        self.try_lock_job(&format!("shedu-sink:{sink}")).await
    }

    /// Tries to become the only runner of the job `name` across replicas (the rotation scheduler's tick);
    /// `None`: another replica holds it. Released as a [`SinkLock`] is.
    pub async fn try_lock_job(&self, name: &str) -> Result<Option<SinkLock>, Error> {
        if self.backend != Backend::Postgres {
            return Ok(Some(SinkLock { conn: None }));
        }
        let mut conn = self.write.acquire().await?;
        let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1, hashtext($2)) AS got")
            .bind(SINK_LOCK_CLASS)
            .bind(name)
            .fetch_one(&mut *conn)
            .await?
            .try_get("got")?;
        if got {
            // Detached from the pool: the lock lives exactly as long as this dedicated session. A refused
            // attempt returns its (lock-free) connection to the pool instead.
            Ok(Some(SinkLock {
                conn: Some(conn.detach()),
            }))
        } else {
            Ok(None)
        }
    }

    // ----- subscriptions -----

    /// Inserts a subscription.
    pub async fn insert_subscription(
        &self,
        s: &SubscriptionRow,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO subscriptions (id, event_types, channel, condition, secret_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id)
        .bind(&s.event_types)
        .bind(&s.channel)
        .bind(&s.condition)
        .bind(&s.secret_sealed)
        .bind(s.created_at)
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(tx, &self.chain, audit, &s.id, s.created_at).await
    }

    /// Every subscription, oldest first (subscriptions are few).
    pub async fn list_subscriptions(&self) -> Result<Vec<SubscriptionRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, event_types, channel, condition, secret_sealed, created_at FROM subscriptions \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(SubscriptionRow::from_row).collect()
    }

    /// One subscription.
    pub async fn get_subscription(&self, id: &str) -> Result<SubscriptionRow, Error> {
        let row = sqlx::query(
            "SELECT id, event_types, channel, condition, secret_sealed, created_at FROM subscriptions \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(Error::NotFound)?;
        SubscriptionRow::from_row(&row)
    }

    /// Replaces a subscription's channel JSON and sealed secret, unless it has a sealed secret already (so
    /// two replicas sealing the same legacy row at start do not overwrite each other). Returns whether the
    /// row changed.
    pub async fn seal_subscription_secret(
        &self,
        id: &str,
        channel: &str,
        secret_sealed: &[u8],
    ) -> Result<bool, Error> {
        let n = sqlx::query(
            "UPDATE subscriptions SET channel = $1, secret_sealed = $2 \
             WHERE id = $3 AND secret_sealed IS NULL",
        )
        .bind(channel)
        .bind(secret_sealed)
        .bind(id)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Deletes a subscription and its deliveries; `NotFound` if it did not exist.
    pub async fn delete_subscription(&self, id: &str, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM deliveries WHERE subscription_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM subscriptions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        crate::error::found(n)?;
        crate::audit::commit(tx, &self.chain, audit, id, now_secs()).await
    }

    // ----- deliveries -----

    /// Enqueues deliveries (each at most once per subscription and event; deliveries for subscriptions deleted
    /// meanwhile are skipped) and moves `sink`'s cursor to `up_to_seq`, in one transaction. Returns how many
    /// deliveries were new.
    pub async fn enqueue_deliveries(
        &self,
        sink: &str,
        up_to_seq: i64,
        deliveries: &[NewDelivery],
    ) -> Result<u64, Error> {
        let now = now_secs();
        let mut tx = self.write.begin().await?;
        let mut added = 0;
        for d in deliveries {
            added += sqlx::query(
                "INSERT INTO deliveries (subscription_id, event_id, event_seq, status, attempts, \
                 next_attempt_at, last_error, created_at, updated_at) \
                 SELECT $1, $2, $3, 'pending', 0, $4, NULL, $4, $4 \
                 WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = $1) \
                 ON CONFLICT (subscription_id, event_id) DO NOTHING",
            )
            .bind(&d.subscription_id)
            .bind(&d.event_id)
            .bind(d.event_seq)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        advance_cursor(&mut tx, sink, up_to_seq).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Claims up to `limit` due pending deliveries for one attempt: counts the attempt and pushes
    /// `next_attempt_at` to `lease_until`, so another worker (or replica) only retries it if this one dies.
    /// Rows come back with their new `attempts`.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, Error> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $2, updated_at = $1 \
             WHERE (subscription_id, event_id) IN (SELECT subscription_id, event_id FROM deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, event_seq \
             LIMIT $3{lock}) RETURNING {DELIVERY_COLUMNS}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        let mut out = rows
            .iter()
            .map(DeliveryRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|d| d.event_seq);
        Ok(out)
    }

    /// Records how a claimed attempt ended.
    pub async fn finish_delivery(
        &self,
        subscription_id: &str,
        event_id: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<(), Error> {
        let now = now_secs();
        let (status, next, error) = match outcome {
            DeliveryOutcome::Delivered => ("delivered", now, None),
            DeliveryOutcome::Retry {
                next_attempt_at,
                error,
            } => ("pending", *next_attempt_at, Some(error.as_str())),
            DeliveryOutcome::Dead { error } => ("dead", now, Some(error.as_str())),
        };
        sqlx::query(
            "UPDATE deliveries SET status = $3, next_attempt_at = $4, last_error = $5, updated_at = $6 \
             WHERE subscription_id = $1 AND event_id = $2",
        )
        .bind(subscription_id)
        .bind(event_id)
        .bind(status)
        .bind(next)
        .bind(error)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Puts a dead delivery back in the queue: pending, due now, attempts counted afresh. `NotFound` unless
    /// the delivery exists and is dead.
    pub async fn requeue_delivery(
        &self,
        subscription_id: &str,
        event_id: &str,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let now = now_secs();
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $3, updated_at = $3 \
             WHERE subscription_id = $1 AND event_id = $2 AND status = 'dead'",
        )
        .bind(subscription_id)
        .bind(event_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        crate::error::found(n)?;
        let target = format!("{subscription_id}/{event_id}");
        crate::audit::commit(tx, &self.chain, audit, &target, now).await
    }

    /// Deliveries, newest event first.
    pub async fn list_deliveries(&self, f: &DeliveryFilter) -> Result<Vec<DeliveryRow>, Error> {
        let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if f.status.is_some() {
            sql.push_str(&format!(" AND status = ${}", next()));
        }
        if f.subscription_id.is_some() {
            sql.push_str(&format!(" AND subscription_id = ${}", next()));
        }
        if f.before_seq.is_some() {
            sql.push_str(&format!(" AND event_seq < ${}", next()));
        }
        sql.push_str(&format!(
            " ORDER BY event_seq DESC, subscription_id LIMIT ${}",
            next()
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(s) = &f.status {
            q = q.bind(s.clone());
        }
        if let Some(s) = &f.subscription_id {
            q = q.bind(s.clone());
        }
        if let Some(s) = f.before_seq {
            q = q.bind(s);
        }
        let rows = q.bind(f.limit.max(0)).fetch_all(&self.read).await?;
        rows.iter().map(DeliveryRow::from_row).collect()
    }

    /// One delivery.
    pub async fn get_delivery(
        &self,
        subscription_id: &str,
        event_id: &str,
    ) -> Result<DeliveryRow, Error> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE subscription_id = $1 AND event_id = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(subscription_id)
            .bind(event_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(Error::NotFound)?;
        DeliveryRow::from_row(&row)
    }

    // ----- expiry reminders -----

    /// Emits a `certificate.expiry_reminder` event for every `active`/`about_to_expire` certificate that has
    /// entered a reminder window and has not had that reminder yet, recording it in `expiry_reminders` in the
    /// same transaction (so each is emitted once, across restarts and replicas). `days_before` are the
    /// thresholds (e.g. 30, 7, 1); a certificate's window for threshold `d` runs from `d` days before notAfter
    /// to the next smaller threshold, so a certificate first seen 5 days before expiry gets the 7-day reminder
    /// only. Returns how many reminders were emitted.
    pub async fn emit_expiry_reminders(&self, now: i64, days_before: &[i64]) -> Result<u64, Error> {
        let (source, ty) = (
            self.words.source,
            crate::sql_word(self.words.certificate_expiry_reminder),
        );
        let mut days: Vec<i64> = days_before.iter().copied().filter(|d| *d > 0).collect();
        days.sort_unstable_by(|a, b| b.cmp(a));
        days.dedup();
        let mut tx = self.write.begin().await?;
        let mut total = 0;
        for (i, d) in days.iter().enumerate() {
            let lo = now + days.get(i + 1).copied().unwrap_or(0) * 86_400;
            let hi = now + d * 86_400;
            let stmts = reminder_statements(self.backend, &ty);
            let mut moved = 0;
            for (k, sql) in stmts.into_iter().enumerate() {
                let n = sqlx::query(AssertSqlSafe(sql))
                    .bind(now)
                    .bind(source.to_string())
                    .bind(lo)
                    .bind(hi)
                    .bind(*d)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if k == 0 {
                    moved = n;
                }
            }
            total += moved;
        }
        tx.commit().await?;
        Ok(total)
    }

    /// The query plans of the reminder statements for the window of `days` days before `now + days` (for
    /// tests), one line per plan row.
    #[cfg(any(test, feature = "testing"))]
    pub async fn explain_expiry_reminders(
        &self,
        now: i64,
        days: i64,
    ) -> Result<Vec<String>, Error> {
        let (prefix, column) = self.backend.explain();
        let ty = crate::sql_word(self.words.certificate_expiry_reminder);
        let mut out = Vec::new();
        for sql in reminder_statements(self.backend, &ty) {
            let rows = sqlx::query(AssertSqlSafe(format!("{prefix}{sql}")))
                .bind(now)
                .bind(self.words.source)
                .bind(now)
                .bind(now + days * 86_400)
                .bind(days)
                .fetch_all(&self.write)
                .await?;
            for row in rows {
                out.push(row.try_get::<String, _>(column)?);
            }
        }
        Ok(out)
    }
}

async fn advance_cursor(conn: &mut AnyConnection, sink: &str, seq: i64) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO event_cursors (sink, last_seq, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (sink) DO UPDATE SET \
         last_seq = CASE WHEN excluded.last_seq > event_cursors.last_seq THEN excluded.last_seq \
         ELSE event_cursors.last_seq END, updated_at = excluded.updated_at",
    )
    .bind(sink)
    .bind(seq)
    .bind(now_secs())
    .execute(conn)
    .await?;
    Ok(())
}

/// An open transaction from [`Store::append_event_held`].
#[cfg(any(test, feature = "testing"))]
#[derive(Debug)]
pub struct HeldTransaction(sqlx::Transaction<'static, sqlx::Any>);

#[cfg(any(test, feature = "testing"))]
impl HeldTransaction {
    /// Commits it.
    pub async fn commit(self) -> Result<(), Error> {
        self.0.commit().await?;
        Ok(())
    }
}

/// The statements that emit one threshold's reminders (values: `$1` now, `$2` the events' source, `$3`..`$4`
/// the window of notAfter, `$5` the threshold in days). They read the certificates through the notAfter index:
/// SQLite without statistics would otherwise walk every active certificate by status, six times a tick, and
/// pull the whole table through the writer's page cache (found by the idle RSS of the benchmark).
fn reminder_statements(backend: Backend, ty: &str) -> Vec<String> {
    let pred =
        "c.status IN ('active', 'about_to_expire') AND c.not_after > $3 AND c.not_after <= $4";
    match backend {
        Backend::Sqlite => {
            let indexed = " INDEXED BY certificates_not_after";
            let fresh = "NOT EXISTS (SELECT 1 FROM expiry_reminders r WHERE r.ca_id = c.ca_id \
                         AND r.serial = c.serial AND r.days_before = $5)";
            vec![
                format!(
                    "INSERT INTO events (id, source, type, subject, time, data) \
                     SELECT lower(hex(randomblob(16))), $2, {ty}, \
                     'cas/' || c.ca_id || '/certificates/' || c.serial, $1, \
                     json_object('ca_id', c.ca_id, 'serial', c.serial, 'subject', c.subject, \
                     'not_after', c.not_after, 'days_before', $5, 'days_left', (c.not_after - $1) / 86400) \
                     FROM certificates c{indexed} WHERE {pred} AND {fresh} ORDER BY c.not_after, c.seq"
                ),
                format!(
                    "INSERT INTO expiry_reminders (ca_id, serial, days_before, created_at) \
                     SELECT c.ca_id, c.serial, $5, $1 FROM certificates c{indexed} WHERE {pred} AND {fresh}"
                ),
            ]
        }
        Backend::Postgres => vec![format!(
            "WITH due AS (INSERT INTO expiry_reminders (ca_id, serial, days_before, created_at) \
             SELECT c.ca_id, c.serial, $5, $1 FROM certificates c WHERE {pred} \
             ON CONFLICT DO NOTHING RETURNING ca_id, serial) \
             INSERT INTO events (id, source, type, subject, time, data) \
             SELECT replace(gen_random_uuid()::text, '-', ''), $2, {ty}, \
             'cas/' || c.ca_id || '/certificates/' || c.serial, $1, \
             json_build_object('ca_id', c.ca_id, 'serial', c.serial, 'subject', c.subject, \
             'not_after', c.not_after, 'days_before', $5::bigint, \
             'days_left', (c.not_after - $1::bigint) / 86400)::text \
             FROM due d JOIN certificates c ON c.ca_id = d.ca_id AND c.serial = d.serial \
             ORDER BY c.not_after, c.seq"
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::{ScratchDb, TEST_WORDS, TestBackend};

    /// A job lock released by one tick is free for the next one at once (the rotation scheduler and CRL
    /// signing take it on every tick; a lock still held by a closing connection made a tick skip its turn).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_released_job_lock_is_free_at_once() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        // Several jobs side by side keep the server busy, as a loaded machine does: a server process
        // that exits slowly is when a lock outlived its closed connection.
        let jobs: Vec<_> = (0..6)
            .map(|job| {
                let store = store.clone();
                tokio::spawn(async move {
                    for round in 0..50 {
                        let lock = store
                            .try_lock_job(&format!("test-job-{job}"))
                            .await
                            .unwrap();
                        let lock = lock.unwrap_or_else(|| {
                            panic!("job {job}, round {round}: the lock was still taken")
                        });
                        lock.release().await;
                    }
                })
            })
            .collect();
        for j in jobs {
            j.await.unwrap();
        }
    }
}
