//! The lifecycle sweep: moves certificates and CAs between statuses with set-based statements.
//!
//! Each transition is one statement over a partial index (`certificates_active_expiry`,
//! `certificates_warning_expiry`), so its cost follows the rows that change, not the table's size. The
//! events for a transition are written by the same statement set in the same transaction: on PostgreSQL an
//! `UPDATE … RETURNING` feeds the `INSERT` in one CTE; on SQLite, where all writes are serialised through
//! one connection, an `INSERT … SELECT` with the same predicate runs just before the `UPDATE`.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

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

/// The predicate of a transition. `$1` is now, `$3` now plus the largest warning window (bounding the
/// index range scan; the per-CA window then filters exactly).
fn predicate(table: Table, mv: Move) -> String {
    match (table, mv) {
        (_, Move::Expire { from }) => format!("status = '{from}' AND not_after <= $1"),
        (Table::Certificates, Move::Warn) => "status = 'active' AND not_after > $1 AND not_after <= $3 \
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
            vec![format!(
                "WITH moved AS (UPDATE {tbl} SET status = '{to}' WHERE {pred} RETURNING {returning}) \
                 INSERT INTO events (id, source, type, subject, time, data) \
                 SELECT replace(gen_random_uuid()::text, '-', ''), $2, {ty}, {subject}, $1, {data} FROM moved ORDER BY {order}"
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
) -> Query<'static, Any, AnyArguments> {
    let q = sqlx::query(AssertSqlSafe(format!("{prefix}{sql}")))
        .bind(now)
        .bind(source.to_string());
    match (table, mv) {
        (Table::Certificates, Move::Warn) => q.bind(warn_end),
        _ => q,
    }
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
        let source = self.words.source;
        let mut tx = self.write.begin().await?;
        if self.backend == Backend::Postgres {
            // 0x5348_4544 is "SHED": one lock id for the sweep across replicas.
            let got: bool = sqlx::query("SELECT pg_try_advisory_xact_lock(1397245252)")
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if !got {
                return Ok(SweepReport::default());
            }
        }
        let warn_end = warning_end(&mut tx, now).await?;
        // Devices whose slots move are locked before any certificate: the registry's lock order.
        crate::devices::status::lock_due(&mut tx, self.backend, now, warn_end).await?;
        let mut report = SweepReport::default();
        for (table, mv) in MOVES {
            let mut moved = 0;
            for sql in statements(table, mv, self.backend, self.words) {
                moved = bound("", &sql, (table, mv), now, source, warn_end)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            match (table, mv) {
                (Table::Certificates, Move::Expire { .. }) => report.certificates_expired += moved,
                (Table::Certificates, Move::Warn) => report.certificates_about_to_expire += moved,
                (Table::Cas, _) => report.cas_changed += moved,
            }
        }
        report.devices_changed =
            crate::devices::status::sweep(&mut tx, self.backend, now, warn_end, self.words).await?;
        if self.backend == Backend::Postgres {
            // Under the advisory lock taken above: one folder at a time (see `counts`).
            crate::counts::fold(&mut tx).await?;
        }
        tx.commit().await?;
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
        let mut out = Vec::new();
        for (table, mv) in MOVES {
            for sql in statements(table, mv, self.backend, self.words) {
                let rows = bound(prefix, &sql, (table, mv), now, self.words.source, warn_end)
                    .fetch_all(&mut *conn)
                    .await?;
                for row in rows {
                    out.push(row.try_get::<String, _>(column)?);
                }
            }
        }
        Ok(out)
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
