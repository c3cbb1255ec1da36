//! Counts by status kept as rows change: certificates per (CA, status) and per (status, day of notAfter),
//! devices per (RA, status), for `GET /status`, the console's dashboard and device group counts. Grouping a million rows at each read cost
//! seconds; these reads cost a few rows.
//!
//! Triggers keep the counts (migration `0034_status_counts`), in the transaction of each statement that
//! inserts, deletes or moves a row, so no write path can forget them and the group-commit writer pays one
//! aggregated row per batch on PostgreSQL. On SQLite (one writer) a row trigger updates the count in place. On
//! PostgreSQL a statement trigger appends the statement's net change to a delta table instead: an in-place
//! update would lock the hot (CA, `active`) row from each issuing transaction to its commit, serialising
//! concurrent batches. [`read`] sums the folded counts and the pending deltas in one snapshot; [`fold`], run
//! by the status sweep under its advisory lock, moves the deltas into the counts.

use sqlx::{AssertSqlSafe, Row};

use crate::Error;

/// What is counted.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counted {
    /// `certificate_counts`, by CA.
    Certificates,
    /// `device_counts`, by RA.
    Devices,
}

impl Counted {
    /// The tables' prefix and the owner's column.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Counted::Certificates => ("certificate", "ca_id"),
            Counted::Devices => ("device", "ra_id"),
        }
    }
}

/// The prefix of the certificates' expiry-day count tables.
const EXPIRY: &str = "certificate_expiry";

/// Each pair of count and delta tables (by prefix) with its key columns.
const TABLES: [(&str, &str); 3] = [
    ("certificate", "ca_id, status"),
    (EXPIRY, "status, day"),
    ("device", "ra_id, status"),
];

const DAY: i64 = 86_400;

/// `(owner, status, count)` by owner and status, only non-zero counts, optionally for one owner and one
/// status.
pub(crate) async fn read<'e, E>(
    db: E,
    counted: Counted,
    owner: Option<&str>,
    status: Option<&str>,
) -> Result<Vec<(String, String, i64)>, Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let (table, column) = counted.names();
    let mut conds = Vec::new();
    if owner.is_some() {
        conds.push(format!("{column} = $1"));
    }
    if status.is_some() {
        conds.push(format!("status = ${}", conds.len() + 1));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!(
        "SELECT {column}, status, CAST(SUM(n) AS BIGINT) FROM ( \
           SELECT {column}, status, n FROM {table}_counts \
           UNION ALL SELECT {column}, status, n FROM {table}_count_deltas) c \
         {filter} GROUP BY {column}, status HAVING SUM(n) <> 0 ORDER BY {column}, status"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(owner) = owner {
        q = q.bind(owner.to_string());
    }
    if let Some(status) = status {
        q = q.bind(status.to_string());
    }
    q.fetch_all(db)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// How many certificates in `status` have a notAfter in `[from, to)`: the whole days in between from
/// `certificate_expiry_counts`, the partial days at both ends by a range count over the status's expiry index
/// (at most a day of certificates each).
pub(crate) async fn expiring(
    pool: &sqlx::AnyPool,
    status: &str,
    from: i64,
    to: i64,
) -> Result<i64, Error> {
    // Days are `not_after / 86400`, as the triggers file them; whole days are [first, last).
    let (first, last) = ((from + DAY - 1) / DAY, to / DAY);
    let ranges = if first < last {
        vec![(from, first * DAY), (last * DAY, to)]
    } else {
        vec![(from, to)]
    };
    let mut n = 0;
    for (a, b) in ranges {
        let (c,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM certificates WHERE status = $1 AND not_after >= $2 AND not_after < $3",
        )
        .bind(status)
        .bind(a)
        .bind(b)
        .fetch_one(pool)
        .await?;
        n += c;
    }
    if first < last {
        let (c,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM ( \
               SELECT status, day, n FROM certificate_expiry_counts \
               UNION ALL SELECT status, day, n FROM certificate_expiry_count_deltas) c \
             WHERE status = $1 AND day >= $2 AND day < $3",
        )
        .bind(status)
        .bind(first)
        .bind(last)
        .fetch_one(pool)
        .await?;
        n += c;
    }
    Ok(n)
}

/// The counts of [`read`]'s rows summed over their owners, by status.
pub(crate) fn by_status(rows: &[(String, String, i64)]) -> Vec<(String, i64)> {
    let mut sums = std::collections::BTreeMap::<&str, i64>::new();
    for (_, status, n) in rows {
        *sums.entry(status).or_default() += n;
    }
    sums.into_iter().map(|(s, n)| (s.to_string(), n)).collect()
}

/// Folds PostgreSQL's pending deltas into the counts (SQLite's delta tables stay empty). The caller holds the
/// sweep's advisory lock, so only one transaction at a time updates the folded rows; a delta committed
/// meanwhile is not in this statement's snapshot and waits for the next fold.
///
/// Returns, by status, the earliest day of notAfter (`not_after / 86400`) into which another transaction
/// inserted or moved certificates (a positive expiry delta it folded): the sweep lowers its horizons with it
/// (`sweep`). The caller's own deltas are left out.
pub(crate) async fn fold(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<Vec<(String, i64)>, Error> {
    let mut arrived = Vec::new();
    for (table, keys) in TABLES {
        let fold = format!(
            "WITH moved AS (DELETE FROM {table}_count_deltas RETURNING {keys}, n, xmin), \
             folded AS (INSERT INTO {table}_counts ({keys}, n) \
               SELECT {keys}, SUM(n) FROM moved GROUP BY {keys} \
               ON CONFLICT ({keys}) DO UPDATE SET n = {table}_counts.n + EXCLUDED.n) "
        );
        if table == EXPIRY {
            let sql = format!(
                "{fold}SELECT status, MIN(day) FROM moved \
                 WHERE n > 0 AND xmin IS DISTINCT FROM pg_current_xact_id_if_assigned()::xid GROUP BY status"
            );
            arrived = sqlx::query_as(AssertSqlSafe(sql))
                .fetch_all(&mut **tx)
                .await?;
        } else {
            let sql = format!("{fold}SELECT 1");
            sqlx::query(AssertSqlSafe(sql)).execute(&mut **tx).await?;
        }
    }
    Ok(arrived)
}

/// What tests compare: the maintained counts against a fresh `GROUP BY` of the rows.
#[cfg(any(test, feature = "testing"))]
#[derive(Clone, Debug)]
pub struct CountCheck {
    /// `(table, owner, status, count)` as [`read`] gives them, certificates then devices, then
    /// `("expiry", status, day, count)`.
    pub maintained: Vec<(&'static str, String, String, i64)>,
    /// The same from the rows themselves.
    pub recounted: Vec<(&'static str, String, String, i64)>,
    /// Delta rows not folded yet (always 0 on SQLite).
    pub pending_deltas: i64,
}

#[cfg(any(test, feature = "testing"))]
impl crate::Store {
    /// The maintained counts beside a fresh `GROUP BY` (equal unless a write escaped the counts).
    pub async fn count_check(&self) -> Result<CountCheck, Error> {
        let mut check = CountCheck {
            maintained: Vec::new(),
            recounted: Vec::new(),
            pending_deltas: 0,
        };
        for (counted, rows) in [
            (Counted::Certificates, "certificates"),
            (Counted::Devices, "devices"),
        ] {
            let (_, column) = counted.names();
            for (o, s, n) in read(&self.read, counted, None, None).await? {
                check.maintained.push((rows, o, s, n));
            }
            let sql = format!(
                "SELECT {column}, status, COUNT(*) FROM {rows} GROUP BY {column}, status \
                 ORDER BY {column}, status"
            );
            let recounted: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(sql))
                .fetch_all(&self.read)
                .await?;
            for (o, s, n) in recounted {
                check.recounted.push((rows, o, s, n));
            }
        }
        // The expiry days, as `(\"expiry\", status, day, count)`.
        for (sql, into) in [
            (
                "SELECT status, day, CAST(SUM(n) AS BIGINT) FROM ( \
                   SELECT status, day, n FROM certificate_expiry_counts \
                   UNION ALL SELECT status, day, n FROM certificate_expiry_count_deltas) c \
                 GROUP BY status, day HAVING SUM(n) <> 0 ORDER BY status, day",
                &mut check.maintained,
            ),
            (
                "SELECT status, not_after / 86400, COUNT(*) FROM certificates \
                 GROUP BY status, not_after / 86400 ORDER BY status, not_after / 86400",
                &mut check.recounted,
            ),
        ] {
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(sql).fetch_all(&self.read).await?;
            into.extend(
                rows.into_iter()
                    .map(|(s, day, n)| ("expiry", s, day.to_string(), n)),
            );
        }
        for (table, _) in TABLES {
            let sql = format!("SELECT COUNT(*) FROM {table}_count_deltas");
            let (pending,): (i64,) = sqlx::query_as(AssertSqlSafe(sql))
                .fetch_one(&self.read)
                .await?;
            check.pending_deltas += pending;
        }
        Ok(check)
    }
}
