//! Issued certificates: lookups, filtered listing with a stable cursor, revocation.

use sqlx::AssertSqlSafe;

use crate::audit::Audited;
use crate::counts::{self, Counted};
use crate::model::CERT_COLUMNS;
use crate::{CertRow, Error, NewEvent, Store, events};

/// Filters for listing certificates; every field is optional and they combine with AND.
#[derive(Clone, Debug, Default)]
pub struct CertificateFilter {
    /// Issued by this CA.
    pub ca_id: Option<String>,
    /// In this status.
    pub status: Option<String>,
    /// The subject's common name starts with this text (case-insensitive on ASCII): a range scan of the
    /// index `certificates_common_name` (migration 0033), whatever the table's size. Certificates whose subject
    /// has no CN are not found by it.
    pub common_name_prefix: Option<String>,
    /// notAfter strictly before this time.
    pub expires_before: Option<i64>,
    /// notAfter at or after this time.
    pub expires_after: Option<i64>,
    /// Return only rows older than this cursor (a `seq`); pages go newest first.
    pub before_seq: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// One page of a listing, and the cursor of the next page when there is one.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass back as `before_seq` for the next page.
    pub next_cursor: Option<i64>,
}

/// What a revocation did.
#[derive(Clone, Debug)]
pub enum RevokeOutcome {
    /// The certificate is now revoked; the row as it is after the change.
    Revoked(CertRow),
    /// It was revoked before; nothing changed.
    AlreadyRevoked(CertRow),
}

impl Store {
    /// Inserts a certificate with its event through the group-commit writer. Returns once both are
    /// durably committed.
    pub async fn insert_certificate(
        &self,
        cert: CertRow,
        event: NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        self.certs.insert(cert, event, audit).await
    }

    /// Inserts many certificates without events, in one transaction: for imports of existing inventories,
    /// and for the tests and benchmarks that need millions of rows.
    #[cfg(any(test, feature = "testing"))]
    pub async fn bulk_insert_certificates(&self, certs: &[CertRow]) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        for chunk in certs.chunks(crate::writer::MAX_BATCH) {
            let refs: Vec<&CertRow> = chunk.iter().collect();
            crate::writer::insert_rows(&mut tx, &refs, self.backend).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A certificate by issuer and serial (lowercase hex).
    pub async fn get_certificate(&self, ca_id: &str, serial: &str) -> Result<CertRow, Error> {
        let sql =
            format!("SELECT {CERT_COLUMNS} FROM certificates WHERE ca_id = $1 AND serial = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(ca_id)
            .bind(serial)
            .fetch_optional(&self.read)
            .await?;
        CertRow::from_row(&row.ok_or(Error::NotFound)?)
    }

    /// A certificate by SHA-256 fingerprint (lowercase hex).
    pub async fn get_certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<CertRow, Error> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE fingerprint = $1");
        self.read_optional(sql, fingerprint, CertRow::from_row)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Lists certificates newest first. The cursor is the insertion sequence, so a page boundary does not
    /// move when certificates are inserted meanwhile (new rows only ever appear before the first page).
    pub async fn list_certificates(&self, f: &CertificateFilter) -> Result<Page<CertRow>, Error> {
        let limit = f.limit.clamp(1, 1000);
        let sql = self.list_sql(f, "");
        let rows = bind_list(sqlx::query(AssertSqlSafe(sql)), f, limit + 1)
            .fetch_all(&self.read)
            .await?;
        let mut items = rows
            .iter()
            .map(CertRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|c| c.seq)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// The query plan of [`Store::list_certificates`] for `f` (the same statement and values), one line per
    /// plan row: for the benchmark, which checks that a search reads an index rather than the table.
    #[cfg(any(test, feature = "testing"))]
    pub async fn explain_certificate_list(
        &self,
        f: &CertificateFilter,
    ) -> Result<Vec<String>, Error> {
        use sqlx::Row;
        let (prefix, column) = self.backend.explain();
        let sql = self.list_sql(f, prefix);
        let rows = bind_list(
            sqlx::query(AssertSqlSafe(sql)),
            f,
            f.limit.clamp(1, 1000) + 1,
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(column).map_err(Error::from))
            .collect()
    }

    /// The statement of [`Store::list_certificates`] (after `prefix`), its parameters in the order
    /// [`bind_list`] binds them.
    fn list_sql(&self, f: &CertificateFilter, prefix: &str) -> String {
        let mut conds: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if f.ca_id.is_some() {
            conds.push(format!("ca_id = {}", next()));
        }
        if f.status.is_some() {
            conds.push(format!("status = {}", next()));
        }
        if f.common_name_prefix.is_some() {
            let (key, has_key) = common_name_key(self.backend);
            conds.push(format!(
                "{has_key} AND {key} >= {} AND {key} < {}",
                next(),
                next()
            ));
        }
        if f.expires_before.is_some() {
            conds.push(format!("not_after < {}", next()));
        }
        if f.expires_after.is_some() {
            conds.push(format!("not_after >= {}", next()));
        }
        if f.before_seq.is_some() {
            conds.push(format!("seq < {}", next()));
        }
        let where_clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        format!(
            "{prefix}SELECT {CERT_COLUMNS} FROM certificates {where_clause} ORDER BY seq DESC LIMIT {}",
            next()
        )
    }

    /// Revokes a certificate and appends `event`, in one transaction. Revoking twice changes nothing.
    #[allow(clippy::too_many_arguments)] // the revocation's fields, its event and its audit record
    pub async fn revoke_certificate(
        &self,
        ca_id: &str,
        serial: &str,
        revoked_at: i64,
        reason: &str,
        invalidity_date: Option<i64>,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<RevokeOutcome, Error> {
        self.revoke_certificate_announced(
            ca_id,
            serial,
            revoked_at,
            reason,
            invalidity_date,
            &[event],
            audit,
        )
        .await
    }

    /// [`Store::revoke_certificate`] appending several events (the revocation's, and one of the capability
    /// that asked for it), all in the revocation's transaction and only when it changed the row.
    #[allow(clippy::too_many_arguments)] // the revocation's fields, its events and its audit record
    pub async fn revoke_certificate_announced(
        &self,
        ca_id: &str,
        serial: &str,
        revoked_at: i64,
        reason: &str,
        invalidity_date: Option<i64>,
        announced: &[&NewEvent],
        audit: &Audited<'_>,
    ) -> Result<RevokeOutcome, Error> {
        let mut tx = self.write.begin().await?;
        // The device holding the certificate (locked first, the registry's lock order) follows in this tx.
        let device =
            crate::devices::status::lock_certificate_device(&mut tx, self.backend, ca_id, serial)
                .await?;
        let updated = sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2, \
             invalidity_date = $5 WHERE ca_id = $3 AND serial = $4 AND status <> 'revoked'",
        )
        .bind(revoked_at)
        .bind(reason)
        .bind(ca_id)
        .bind(serial)
        .bind(invalidity_date)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 1 {
            for event in announced {
                events::append(&mut tx, event).await?;
            }
            if let Some(device) = &device {
                let (backend, words) = (self.backend, self.words);
                let revocation = crate::devices::status::DeviceRevocation {
                    device_id: device,
                    ca_id,
                    serial,
                    reason,
                    now: revoked_at,
                };
                crate::devices::status::certificate_revoked(&mut tx, backend, &revocation, words)
                    .await?;
            }
            let target = format!("{ca_id}/{serial}");
            crate::audit::record(&mut tx, &self.chain, audit, &target, revoked_at).await?;
        }
        let sql =
            format!("SELECT {CERT_COLUMNS} FROM certificates WHERE ca_id = $1 AND serial = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(ca_id)
            .bind(serial)
            .fetch_optional(&mut *tx)
            .await?;
        let row = CertRow::from_row(&row.ok_or(Error::NotFound)?)?;
        tx.commit().await?;
        Ok(if updated == 1 {
            RevokeOutcome::Revoked(row)
        } else {
            RevokeOutcome::AlreadyRevoked(row)
        })
    }

    /// Counts certificates per status, for one CA or all.
    pub async fn count_certificates_by_status(
        &self,
        ca_id: Option<&str>,
    ) -> Result<Vec<(String, i64)>, Error> {
        let rows = counts::read(&self.read, Counted::Certificates, ca_id, None).await?;
        Ok(counts::by_status(&rows))
    }
}

/// Binds the parameters of [`Store::list_certificates`]'s statement, `rows` last.
fn bind_list<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    f: &CertificateFilter,
    rows: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    if let Some(v) = &f.ca_id {
        q = q.bind(v.clone());
    }
    if let Some(v) = &f.status {
        q = q.bind(v.clone());
    }
    if let Some(v) = &f.common_name_prefix {
        let (low, high) = prefix_range(v);
        q = q.bind(low).bind(high);
    }
    if let Some(v) = f.expires_before {
        q = q.bind(v);
    }
    if let Some(v) = f.expires_after {
        q = q.bind(v);
    }
    if let Some(v) = f.before_seq {
        q = q.bind(v);
    }
    q.bind(rows)
}

/// The search key of a certificate's subject, and the condition that it has one, per backend: the
/// subject's text from the value of its first `CN=` on, lowercased (ASCII only on SQLite, as SQLite's
/// `lower` does), so that a prefix of the CN's value is a prefix of the key. The same expressions make the
/// partial index `certificates_common_name` of migration 0033 (a planner matches an index expression by
/// its text: both must stay identical). PostgreSQL compares the key byte-wise (`COLLATE "C"`, as SQLite's
/// `BINARY` does), so the keys with a prefix are one contiguous range of the index.
fn common_name_key(backend: crate::Backend) -> (&'static str, &'static str) {
    match backend {
        crate::Backend::Sqlite => (
            "lower(substr(subject, instr(subject, 'CN=') + 3))",
            "instr(subject, 'CN=') > 0",
        ),
        crate::Backend::Postgres => (
            "(lower(substr(subject, strpos(subject, 'CN=') + 3)) COLLATE \"C\")",
            "strpos(subject, 'CN=') > 0",
        ),
    }
}

/// `[low, high)` holding every key that starts with `prefix` (lowercased as the key is): `high` is the prefix
/// followed by the largest code point, above every character that can follow it.
fn prefix_range(prefix: &str) -> (String, String) {
    let low = prefix.to_lowercase();
    let high = format!("{low}{}", char::MAX);
    (low, high)
}
