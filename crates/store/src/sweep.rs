//! The lifecycle sweep: moves certificates and CAs between statuses with set-based statements.
//!
//! Each transition is one statement over a partial index (`certificates_active_expiry`,
//! `certificates_warning_expiry`), so its cost follows the rows that change, not the table's size. The
//! events for a transition are written by the same statement set in the same transaction: on PostgreSQL an
//! `UPDATE … RETURNING` feeds the `INSERT` in one CTE; on SQLite, where all writes are serialised through
//! one connection, an `INSERT … SELECT` with the same predicate runs just before the `UPDATE`.
//!
//! On PostgreSQL an `UPDATE` leaves the old row version's index entries in place until VACUUM, so after a
//! sweep has moved a wave of certificates out of `active`, the partial indexes still hold an entry for each,
//! and a range scan over them visits each one's table page (0.3 s for a sweep with nothing due at 1M
//! certificates after a 1 % wave). The sweep therefore starts its certificate range scans at a horizon per
//! status (`sweep_horizons`, migration 0039): a notAfter at or below which no certificate of that status is
//! left. Each sweep raises it to what it has just swept; certificates that arrive below it (an imported
//! expired certificate, one issued inside its CA's warning window, from any write path) show up as positive
//! expiry count deltas (migration 0034), which lower it again, to the day before their notAfter's day: the
//! sweep folds the deltas before it scans (lowering its own horizons) and again at its end (its own deltas,
//! left out, and those committed while it ran, lowering the next sweep's). With CAs of different warning
//! windows the `active` horizon rises only by the smallest, so the warning scan still meets the entries a wave
//! flagged between the smallest and the largest window. SQLite's `UPDATE`s remove old index entries at once:
//! there the scans start at the beginning, as before.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};

use crate::{Backend, Error, EventWords, Store};

/// How many rows each transition moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Certificates that became `expired`.
    pub certificates_expired: u64,
    /// Certificates that became `about_to_expire`.
    pub certificates_about_to_expire: u64,
    /// CA certificates whose status changed.
    pub cas_changed: u64,
    /// Devices whose derived status changed with their slots' certificates.
    pub devices_changed: u64,
}

#[derive(Clone, Copy)]
enum Table {
    Certificates,
    Cas,
}

#[derive(Clone, Copy)]
enum Move {
    /// `from` → `expired` once notAfter has passed.
    Expire { from: &'static str },
    /// `active` → `about_to_expire` inside the CA's warning window.
    Warn,
}

/// The predicate of a transition. `$1` is now. A certificate expiry's range starts above `$3`, the horizon of
/// its status; a certificate warning's range is (`$4`, `$3`]: from the larger of now and the `active` horizon
/// to now plus the largest warning window (bounding the index range scan; the per-CA window then filters
/// exactly).
fn predicate(table: Table, mv: Move) -> String {
    match (table, mv) {
        (Table::Certificates, Move::Expire { from }) => {
            format!("status = '{from}' AND not_after <= $1 AND not_after > $3")
        }
        (Table::Cas, Move::Expire { from }) => format!("status = '{from}' AND not_after <= $1"),
        (Table::Certificates, Move::Warn) => "status = 'active' AND not_after > $4 AND not_after <= $3 \
             AND not_after <= $1 + (SELECT c.expiry_warning_days * 86400 FROM cas c WHERE c.id = certificates.ca_id)"
            .to_string(),
        (Table::Cas, Move::Warn) => {
            "status = 'active' AND not_after > $1 AND not_after <= $1 + expiry_warning_days * 86400".to_string()
        }
    }
}

fn to_status(mv: Move) -> &'static str {
    match mv {
        Move::Expire { .. } => "expired",
        Move::Warn => "about_to_expire",
    }
}

fn from_status(mv: Move) -> &'static str {
    match mv {
        Move::Expire { from } => from,
        Move::Warn => "active",
    }
}

/// `(event type, subject expression, data expression)` for a table, in the backend's SQL dialect.
fn event_columns(table: Table, mv: Move, backend: Backend) -> (String, String) {
    let (from, to) = (from_status(mv), to_status(mv));
    let json = match backend {
        Backend::Sqlite => "json_object",
        Backend::Postgres => "json_build_object",
    };
    let cast = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "::text",
    };
    match table {
        Table::Certificates => (
            "'cas/' || ca_id || '/certificates/' || serial".to_string(),
            format!(
                "{json}('ca_id', ca_id, 'serial', serial, 'from', '{from}', 'to', '{to}', 'not_after', not_after){cast}"
            ),
        ),
        Table::Cas => (
            "'cas/' || id".to_string(),
            format!(
                "{json}('ca_id', id, 'from', '{from}', 'to', '{to}', 'not_after', not_after){cast}"
            ),
        ),
    }
}

/// The partial index a certificate transition must use on SQLite.
fn sqlite_index(table: Table, mv: Move) -> Option<&'static str> {
    match (table, mv) {
        (
            Table::Certificates,
            Move::Expire {
                from: "about_to_expire",
            },
        ) => Some("certificates_warning_expiry"),
        (Table::Certificates, _) => Some("certificates_active_expiry"),
        (Table::Cas, _) => None,
    }
}

fn statements(table: Table, mv: Move, backend: Backend, words: &EventWords) -> Vec<String> {
    let (tbl, ty, order) = match table {
        Table::Certificates => ("certificates", words.certificate_status_changed, "seq"),
        Table::Cas => ("cas", words.ca_status_changed, "created_at"),
    };
    let ty = crate::sql_word(ty);
    let pred = predicate(table, mv);
    let (subject, data) = event_columns(table, mv, backend);
    let to = to_status(mv);
    match backend {
        Backend::Sqlite => {
            // SQLite plans by statistics it only has after ANALYZE; name the partial index so the sweep is
            // O(changed rows) from the first run (found by the sweep benchmark).
            let indexed = sqlite_index(table, mv)
                .map(|i| format!(" INDEXED BY {i}"))
                .unwrap_or_default();
            vec![
                format!(
                    "INSERT INTO events (id, source, type, subject, time, data) \
                     SELECT lower(hex(randomblob(16))), $2, {ty}, {subject}, $1, {data} FROM {tbl}{indexed} WHERE {pred} ORDER BY {order}"
                ),
                format!("UPDATE {tbl}{indexed} SET status = '{to}' WHERE {pred}"),
            ]
        }
        Backend::Postgres => {
            let returning = match table {
                Table::Certificates => "seq, ca_id, serial, not_after",
                Table::Cas => "id, created_at, not_after",
            };
            // Returns the rows moved and the smallest warning window of any CA, read in the statement's own
            // snapshot, as the per-CA filter read it: the `active` horizon rises by it.
            vec![format!(
                "WITH moved AS (UPDATE {tbl} SET status = '{to}' WHERE {pred} RETURNING {returning}), \
                 logged AS (INSERT INTO events (id, source, type, subject, time, data) \
                 SELECT replace(gen_random_uuid()::text, '-', ''), $2, {ty}, {subject}, $1, {data} FROM moved ORDER BY {order}) \
                 SELECT (SELECT COUNT(*) FROM moved), (SELECT COALESCE(MIN(expiry_warning_days), 0) FROM cas)"
            )]
        }
    }
}

/// The sweep's certificate and CA transitions, in order. Expire first, so a certificate already past
/// notAfter goes straight to `expired` (one event).
const MOVES: [(Table, Move); 6] = [
    (Table::Certificates, Move::Expire { from: "active" }),
    (
        Table::Certificates,
        Move::Expire {
            from: "about_to_expire",
        },
    ),
    (Table::Certificates, Move::Warn),
    (Table::Cas, Move::Expire { from: "active" }),
    (
        Table::Cas,
        Move::Expire {
            from: "about_to_expire",
        },
    ),
    (Table::Cas, Move::Warn),
];

/// One of a transition's statements with its values bound, as the sweep runs it; `prefix` goes before the
/// statement (empty for the sweep, `EXPLAIN` for its plan).
fn bound(
    prefix: &str,
    sql: &str,
    (table, mv): (Table, Move),
    now: i64,
    source: &str,
    warn_end: i64,
    horizons: Horizons,
) -> Query<'static, Any, AnyArguments> {
    let q = sqlx::query(AssertSqlSafe(format!("{prefix}{sql}")))
        .bind(now)
        .bind(source.to_string());
    match (table, mv) {
        (Table::Certificates, Move::Expire { from }) => q.bind(horizons.of(from)),
        (Table::Certificates, Move::Warn) => q.bind(warn_end).bind(horizons.warn_start(now)),
        (Table::Cas, _) => q,
    }
}

const DAY: i64 = 86_400;

/// For each status the certificate transitions leave, a notAfter at or below which no certificate of that
/// status is left: the transitions' index ranges start above it. `i64::MIN` when nothing is known (no sweep
/// yet) and always on SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Horizons {
    active: i64,
    about_to_expire: i64,
}

impl Horizons {
    const NONE: Horizons = Horizons {
        active: i64::MIN,
        about_to_expire: i64::MIN,
    };

    fn of(self, status: &str) -> i64 {
        match status {
            "active" => self.active,
            _ => self.about_to_expire,
        }
    }

    /// Where the warning transition's range starts: above now, and above the `active` horizon.
    fn warn_start(self, now: i64) -> i64 {
        now.max(self.active)
    }

    /// Lowered for certificates that arrived in `status` with a notAfter on `day` (`not_after / 86400`,
    /// rounded towards zero): to the day before, which is below any notAfter of that day.
    fn lowered(mut self, arrived: &[(String, i64)]) -> Horizons {
        for (status, day) in arrived {
            let below = day.saturating_sub(1).saturating_mul(DAY);
            match status.as_str() {
                "active" => self.active = self.active.min(below),
                "about_to_expire" => self.about_to_expire = self.about_to_expire.min(below),
                _ => {}
            }
        }
        self
    }

    /// After a sweep as of `now` that scanned from `self`, whose warning transition moved every `active`
    /// certificate up to `warned_to` (now plus the smallest CA warning window, at most where its range
    /// ended): every `about_to_expire` certificate up to now has expired, and those it flagged lie above
    /// where its warning range started.
    fn raised(self, now: i64, warned_to: i64) -> Horizons {
        Horizons {
            active: self.active.max(now).max(warned_to),
            about_to_expire: self.about_to_expire.max(now).min(self.warn_start(now)),
        }
    }
}

/// The stored horizons (PostgreSQL; [`Horizons::NONE`] on SQLite).
async fn stored_horizons(conn: &mut AnyConnection, backend: Backend) -> Result<Horizons, Error> {
    if backend == Backend::Sqlite {
        return Ok(Horizons::NONE);
    }
    let stored: Vec<(String, i64)> = sqlx::query_as("SELECT status, not_after FROM sweep_horizons")
        .fetch_all(&mut *conn)
        .await?;
    let known = |status: &str| {
        stored
            .iter()
            .find(|(s, _)| s == status)
            .map_or(i64::MIN, |(_, h)| *h)
    };
    Ok(Horizons {
        active: known("active"),
        about_to_expire: known("about_to_expire"),
    })
}

/// Stores the horizons for the next sweep (PostgreSQL).
async fn store_horizons(conn: &mut AnyConnection, h: Horizons) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO sweep_horizons (status, not_after) VALUES ('active', $1), ('about_to_expire', $2) \
         ON CONFLICT (status) DO UPDATE SET not_after = EXCLUDED.not_after",
    )
    .bind(h.active)
    .bind(h.about_to_expire)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Runs a transition's statements; returns the rows moved and, on PostgreSQL, the smallest CA warning window
/// in days as the statement read it.
async fn run_move(
    conn: &mut AnyConnection,
    backend: Backend,
    statements: Vec<Query<'static, Any, AnyArguments>>,
) -> Result<(u64, Option<i64>), Error> {
    let mut result = (0, None);
    for q in statements {
        result = match backend {
            Backend::Sqlite => (q.execute(&mut *conn).await?.rows_affected(), None),
            Backend::Postgres => {
                let row = q.fetch_one(&mut *conn).await?;
                let moved: i64 = row.try_get(0)?;
                (u64::try_from(moved).unwrap_or(0), Some(row.try_get(1)?))
            }
        };
    }
    Ok(result)
}

/// Now plus the largest warning window of any CA: the upper bound of the warning transitions' index range.
pub(crate) async fn warning_end(conn: &mut AnyConnection, now: i64) -> Result<i64, Error> {
    let max_warn: i64 = sqlx::query("SELECT COALESCE(MAX(expiry_warning_days), 0) FROM cas")
        .fetch_one(conn)
        .await?
        .try_get(0)?;
    Ok(now + max_warn * 86_400)
}

impl Store {
    /// Applies every due status transition as of `now`, with one event per transition, in one
    /// transaction. On PostgreSQL an advisory lock makes concurrent replicas take turns.
    pub async fn sweep_statuses(&self, now: i64) -> Result<SweepReport, Error> {
        let mut tx = self.write.begin().await?;
        let report = self.sweep_in(&mut tx, now).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// The sweep inside `tx` (the caller commits).
    async fn sweep_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        now: i64,
    ) -> Result<SweepReport, Error> {
        let source = self.words.source;
        if self.backend == Backend::Postgres {
            // 0x5348_4544 is "SHED": one lock id for the sweep across replicas.
            let got: bool = sqlx::query("SELECT pg_try_advisory_xact_lock(1397245252)")
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?;
            if !got {
                return Ok(SweepReport::default());
            }
        }
        let warn_end = warning_end(tx, now).await?;
        let mut from = stored_horizons(tx, self.backend).await?;
        if self.backend == Backend::Postgres {
            // Under the advisory lock taken above: one folder at a time (see `counts`). Certificates that
            // arrived since the last sweep, possibly below the horizons, lower them for this one.
            from = from.lowered(&crate::counts::fold(tx).await?);
        }
        // Devices whose slots move are locked before any certificate: the registry's lock order.
        crate::devices::status::lock_due(tx, self.backend, now, warn_end).await?;
        let mut report = SweepReport::default();
        let mut warned_to = now;
        for (table, mv) in MOVES {
            let queries = statements(table, mv, self.backend, self.words)
                .iter()
                .map(|sql| bound("", sql, (table, mv), now, source, warn_end, from))
                .collect();
            let (moved, window) = run_move(tx, self.backend, queries).await?;
            match (table, mv) {
                (Table::Certificates, Move::Expire { .. }) => report.certificates_expired += moved,
                (Table::Certificates, Move::Warn) => {
                    report.certificates_about_to_expire += moved;
                    let window = window.unwrap_or(0).saturating_mul(DAY);
                    warned_to = now.saturating_add(window).min(warn_end);
                }
                (Table::Cas, _) => report.cas_changed += moved,
            }
        }
        report.devices_changed =
            crate::devices::status::sweep(tx, self.backend, now, warn_end, self.words).await?;
        if self.backend == Backend::Postgres {
            // This sweep's own deltas, and those of certificates that arrived while it ran (lowering the
            // horizons for the next sweep).
            let arrived = crate::counts::fold(tx).await?;
            store_horizons(tx, from.raised(now, warned_to).lowered(&arrived)).await?;
        }
        Ok(report)
    }

    /// The query plans of the sweep's certificate and CA statements as of `now` (for tests and the
    /// benchmark), one line per plan row: the very statements [`Store::sweep_statuses`] runs, with the same
    /// values bound. Its device step has [`Store::explain_device_sweep`].
    #[cfg(any(test, feature = "testing"))]
    pub async fn explain_sweep(&self, now: i64) -> Result<Vec<String>, Error> {
        let (prefix, column) = self.backend.explain();
        let mut conn = self.write.acquire().await?;
        let warn_end = warning_end(&mut conn, now).await?;
        // As the sweep would start: the stored horizons lowered for the pending arrivals it would fold.
        let mut from = stored_horizons(&mut conn, self.backend).await?;
        if self.backend == Backend::Postgres {
            let arrived: Vec<(String, i64)> = sqlx::query_as(
                "SELECT status, MIN(day) FROM certificate_expiry_count_deltas WHERE n > 0 GROUP BY status",
            )
            .fetch_all(&mut *conn)
            .await?;
            from = from.lowered(&arrived);
        }
        let mut out = Vec::new();
        for (table, mv) in MOVES {
            for sql in statements(table, mv, self.backend, self.words) {
                let rows = bound(
                    prefix,
                    &sql,
                    (table, mv),
                    now,
                    self.words.source,
                    warn_end,
                    from,
                )
                .fetch_all(&mut *conn)
                .await?;
                for row in rows {
                    out.push(row.try_get::<String, _>(column)?);
                }
            }
        }
        Ok(out)
    }

    /// How many index entries of `certificates` a sweep as of `now` would read, on PostgreSQL (`None` on
    /// SQLite): the sweep runs in a transaction that is rolled back, and the backend's own statistics count
    /// the entries its scans returned, those of dead row versions included (read before and after: they are
    /// flushed between transactions only, and may still hold earlier ones').
    #[cfg(any(test, feature = "testing"))]
    pub async fn sweep_index_reads(&self, now: i64) -> Result<Option<i64>, Error> {
        if self.backend == Backend::Sqlite {
            return Ok(None);
        }
        const READ: &str = "SELECT CAST(COALESCE(SUM(pg_stat_get_xact_tuples_returned(indexrelid)), 0) AS BIGINT) \
             FROM pg_index WHERE indrelid = 'certificates'::regclass";
        let mut tx = self.write.begin().await?;
        let (before,): (i64,) = sqlx::query_as(READ).fetch_one(&mut *tx).await?;
        self.sweep_in(&mut tx, now).await?;
        let (after,): (i64,) = sqlx::query_as(READ).fetch_one(&mut *tx).await?;
        tx.rollback().await?;
        Ok(Some(after - before))
    }
}

impl Store {
    /// Refreshes planner statistics (PostgreSQL `ANALYZE`, SQLite `ANALYZE`), as autovacuum would after a
    /// bulk load; used before reading query plans.
    #[cfg(any(test, feature = "testing"))]
    pub async fn analyze(&self) -> Result<(), Error> {
        sqlx::query("ANALYZE").execute(&self.write).await?;
        Ok(())
    }
}
