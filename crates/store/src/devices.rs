//! The device registry: devices, their identity slots and the certificates issued into them, the device log,
//! and filtered listing. Status derivation is in [`status`], the enrolment write in [`enrollment`], saved
//! groups in [`groups`].
//!
//! A slot binds a device to one CA (the slot id is the CA id) and holds the history of certificates issued
//! into it; the latest is the active one, whose status and notAfter the slot row copies. Every change here
//! writes its device log entries and CloudEvents in its own transaction.

pub(crate) mod enrollment;
mod groups;
pub(crate) mod status;

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use self::status::{Arg, Data, LogEntry, bind, event_id, log};
use crate::audit::Audited;
use crate::counts::{self, Counted};
use crate::{Backend, Error, NewEvent, Page, Store, events};
pub use enrollment::{EnrollmentOutcome, EnrollmentRecord};
pub use groups::{GROUP_HAS_CHILDREN, GroupRow};

/// `Conflict` reason: the device is decommissioned (terminal).
pub const DEVICE_DECOMMISSIONED: &str = "device_decommissioned";
/// `Conflict` reason: the device belongs to another RA than the one enrolling it.
pub const DEVICE_RA_MISMATCH: &str = "device_ra_mismatch";
/// `Conflict` reason: the device still holds a valid (unrevoked, unexpired) certificate, current or superseded
/// (decommissioning raced an enrolment, or the caller did not revoke them all).
pub const DEVICE_LIVE_CERTIFICATES: &str = "device_live_certificates";
/// `Conflict` reason: a first enrolment into a slot whose active certificate is still valid (renewing is a
/// re-enrolment).
pub const DEVICE_ALREADY_ENROLLED: &str = "device_already_enrolled";
/// `Conflict` reason: an enrolment named a slot other than its certificate's CA.
pub const DEVICE_SLOT_NOT_CA: &str = "device_slot_not_ca";

/// A device as stored.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct DeviceRow {
    /// Insertion order; the pagination cursor. Ignored on insert.
    pub seq: i64,
    pub id: String,
    pub ra_id: String,
    pub alias: Option<String>,
    pub tags: Vec<String>,
    /// A JSON object.
    pub metadata: String,
    /// Derived from the slots: `pending_provisioning`, `fully_provisioned`, `requires_action`,
    /// `with_warnings` or `decommissioned`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const DEVICE_COLUMNS: &str =
    "seq, id, ra_id, alias, tags, metadata, status, created_at, updated_at";

impl DeviceRow {
    fn from_row(r: &AnyRow) -> Result<DeviceRow, Error> {
        Ok(DeviceRow {
            seq: r.try_get("seq")?,
            id: r.try_get("id")?,
            ra_id: r.try_get("ra_id")?,
            alias: r.try_get("alias")?,
            tags: split_tags(&r.try_get::<String, _>("tags")?),
            metadata: r.try_get("metadata")?,
            status: r.try_get("status")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// A device's slot for one CA, with a copy of its active certificate's serial, status and notAfter.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct SlotRow {
    pub device_id: String,
    /// The slot id.
    pub ca_id: String,
    pub active_serial: String,
    /// The active certificate's status as of the last sweep or revocation.
    pub active_status: String,
    pub active_not_after: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const SLOT_COLUMNS: &str =
    "device_id, ca_id, active_serial, active_status, active_not_after, created_at, updated_at";

impl SlotRow {
    fn from_row(r: &AnyRow) -> Result<SlotRow, Error> {
        Ok(SlotRow {
            device_id: r.try_get("device_id")?,
            ca_id: r.try_get("ca_id")?,
            active_serial: r.try_get("active_serial")?,
            active_status: r.try_get("active_status")?,
            active_not_after: r.try_get("active_not_after")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// A certificate issued into a slot, with its stored status.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct SlotCertificateRow {
    pub ca_id: String,
    pub serial: String,
    pub issued_at: i64,
    /// `enroll` or `reenroll`.
    pub kind: String,
    pub status: String,
    pub not_after: i64,
}

/// One entry of a device's log.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct DeviceLogRow {
    pub seq: i64,
    pub time: i64,
    /// `registered`, `enrolled`, `reenrolled`, `status_changed`, `certificate_revoked`, `updated`,
    /// `secret_set` or `decommissioned`.
    pub kind: String,
    pub message: String,
    /// A JSON object: the data of the event written with the entry.
    pub data: String,
}

/// Filters for listing and counting devices; every field is optional and they combine with AND.
#[derive(Clone, Debug, Default)]
pub struct DeviceFilter {
    /// Registered by this RA.
    pub ra_id: Option<String>,
    /// In this status.
    pub status: Option<String>,
    /// Carrying every one of these tags.
    pub tags: Vec<String>,
    /// `(key, JSON scalar)`: the metadata value under each key equals the scalar. Keys are validated by the
    /// caller (letters, digits, `_`, `-`, `.`).
    pub metadata: Vec<(String, String)>,
    /// Return only rows older than this cursor (a `seq`); pages go newest first.
    pub before_seq: Option<i64>,
    /// Page size (ignored when counting).
    pub limit: i64,
}

/// The fields an update replaces; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct DeviceChanges {
    /// `Some(None)` clears the alias.
    pub alias: Option<Option<String>>,
    /// The new tags.
    pub tags: Option<Vec<String>>,
    /// The new metadata (a JSON object).
    pub metadata: Option<String>,
}

impl Store {
    /// Registers a device ahead of its enrolment, with its `registered` log entry and `event`, in one
    /// transaction. A taken id is a `Conflict`.
    pub async fn insert_device(
        &self,
        d: &DeviceRow,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO devices (id, ra_id, alias, tags, metadata, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&d.id)
        .bind(&d.ra_id)
        .bind(&d.alias)
        .bind(d.tags.join(","))
        .bind(&d.metadata)
        .bind(&d.status)
        .bind(d.created_at)
        .bind(d.updated_at)
        .execute(&mut *tx)
        .await?;
        replace_tags(&mut tx, &d.id, &d.tags).await?;
        let entry = LogEntry {
            device_id: &d.id,
            time: d.created_at,
            kind: "registered",
            message: format!("registered for RA {}", d.ra_id),
            data: Data::Json(event.data.clone()),
        };
        log(&mut tx, self.backend, entry).await?;
        events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, &d.id, d.created_at).await
    }

    /// A device by id; `NotFound` when missing.
    pub async fn get_device(&self, id: &str) -> Result<DeviceRow, Error> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        self.read_optional(sql, id, DeviceRow::from_row)
            .await?
            .ok_or(Error::NotFound)
    }

    /// The device a certificate was issued to, if it was issued through an enrolment.
    pub async fn device_by_certificate(
        &self,
        ca_id: &str,
        serial: &str,
    ) -> Result<Option<DeviceRow>, Error> {
        let sql = format!(
            "SELECT {} FROM devices d JOIN device_certificates dc ON dc.device_id = d.id \
             WHERE dc.ca_id = $1 AND dc.serial = $2",
            prefixed("d", DEVICE_COLUMNS)
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(ca_id)
            .bind(serial)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(DeviceRow::from_row).transpose()
    }

    /// Lists devices newest first. The cursor is the insertion sequence, stable under inserts.
    pub async fn list_devices(&self, f: &DeviceFilter) -> Result<Page<DeviceRow>, Error> {
        let limit = f.limit.clamp(1, 1000);
        let (sql, args) = list_sql(f, self.backend, limit);
        let rows = bind(sqlx::query(AssertSqlSafe(sql)), &args)
            .fetch_all(&self.read)
            .await?;
        let mut items = rows
            .iter()
            .map(DeviceRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|d| d.seq)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Counts the devices matching `f` per status (cursor and limit are ignored): from the maintained counts
    /// (`counts`) when `f` names at most an RA and a status; with tags from the tag index's copies of RA and
    /// status (the devices read only for a metadata filter); else in one `GROUP BY` over the matching rows.
    pub async fn count_devices_by_status(
        &self,
        f: &DeviceFilter,
    ) -> Result<Vec<(String, i64)>, Error> {
        if f.tags.is_empty() && f.metadata.is_empty() {
            let rows = counts::read(
                &self.read,
                Counted::Devices,
                f.ra_id.as_deref(),
                f.status.as_deref(),
            )
            .await?;
            return Ok(counts::by_status(&rows));
        }
        let (sql, args) = count_sql(f, self.backend);
        let rows = bind(sqlx::query(AssertSqlSafe(sql)), &args)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Replaces the given fields, with an `updated` log entry and `event`, in one transaction.
    pub async fn update_device(
        &self,
        id: &str,
        changes: &DeviceChanges,
        now: i64,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<DeviceRow, Error> {
        let mut tx = self.write.begin().await?;
        let mut sets = vec!["updated_at = $1".to_string()];
        let mut args = vec![Arg::Int(now)];
        let mut set = |column: &str, value: Arg| {
            args.push(value);
            sets.push(format!("{column} = ${}", args.len()));
        };
        if let Some(alias) = &changes.alias {
            set("alias", Arg::OptText(alias.clone()));
        }
        if let Some(tags) = &changes.tags {
            set("tags", Arg::Text(tags.join(",")));
        }
        if let Some(metadata) = &changes.metadata {
            set("metadata", Arg::Text(metadata.clone()));
        }
        args.push(Arg::Text(id.to_string()));
        let sql = format!(
            "UPDATE devices SET {} WHERE id = ${}",
            sets.join(", "),
            args.len()
        );
        let updated = bind(sqlx::query(AssertSqlSafe(sql)), &args)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        crate::error::found(updated)?;
        if let Some(tags) = &changes.tags {
            replace_tags(&mut tx, id, tags).await?;
        }
        let entry = LogEntry {
            device_id: id,
            time: now,
            kind: "updated",
            message: "alias, tags or metadata changed".into(),
            data: Data::Json(event.data.clone()),
        };
        log(&mut tx, self.backend, entry).await?;
        events::append(&mut tx, event).await?;
        crate::audit::record(&mut tx, &self.chain, audit, id, now).await?;
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let device = DeviceRow::from_row(&row)?;
        tx.commit().await?;
        Ok(device)
    }

    /// Stores the SHA-256 of a new one-time enrolment secret (replacing any unused one), with a `secret_set`
    /// log entry and `event`. `NotFound`, or `Conflict` for a decommissioned device.
    pub async fn set_device_secret(
        &self,
        id: &str,
        secret_sha256: &[u8],
        now: i64,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let updated = sqlx::query(
            "UPDATE devices SET secret_sha256 = $1, updated_at = $2 WHERE id = $3 AND status <> 'decommissioned'",
        )
        .bind(secret_sha256.to_vec())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM devices WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => conflict(DEVICE_DECOMMISSIONED),
                None => Error::NotFound,
            });
        }
        let entry = LogEntry {
            device_id: id,
            time: now,
            kind: "secret_set",
            message: "one-time enrolment secret set".into(),
            data: Data::Json(event.data.clone()),
        };
        log(&mut tx, self.backend, entry).await?;
        events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, id, now).await
    }

    /// Marks a device decommissioned (terminal) and drops its unused secret, with its `status_changed` and
    /// `decommissioned` log entries and events (`event` is the `device.decommissioned` one). `Conflict` when
    /// it already is ([`DEVICE_DECOMMISSIONED`]) or when any certificate ever issued to it, superseded ones
    /// included, is still unrevoked and unexpired ([`DEVICE_LIVE_CERTIFICATES`]: revoke those first).
    pub async fn decommission_device(
        &self,
        id: &str,
        now: i64,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let status = lock_device(&mut tx, self.backend, id)
            .await?
            .ok_or(Error::NotFound)?
            .0;
        if status == "decommissioned" {
            return Err(conflict(DEVICE_DECOMMISSIONED));
        }
        // Every certificate the device held, not only the slots' active ones: a superseded certificate that
        // was not revoked at re-enrolment still authenticates the retired device until it expires.
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) FROM device_certificates dc \
             JOIN certificates c ON c.ca_id = dc.ca_id AND c.serial = dc.serial \
             WHERE dc.device_id = $1 AND c.status <> 'revoked' AND c.not_after > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if live > 0 {
            return Err(conflict(DEVICE_LIVE_CERTIFICATES));
        }
        sqlx::query(
            "UPDATE devices SET status = 'decommissioned', secret_sha256 = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let entry = LogEntry {
            device_id: id,
            time: now,
            kind: "status_changed",
            message: format!("{status} -> decommissioned"),
            data: Data::Fields(vec![
                ("device_id", Arg::Text(id.into())),
                ("from", Arg::Text(status)),
                ("to", Arg::Text("decommissioned".into())),
                ("cause", Arg::Text("decommissioned".into())),
            ]),
        };
        let data = log(&mut tx, self.backend, entry).await?;
        let changed = device_event(
            self.words.source,
            self.words.device_status_changed,
            id,
            now,
            data,
        );
        events::append(&mut tx, &changed).await?;
        let entry = LogEntry {
            device_id: id,
            time: now,
            kind: "decommissioned",
            message: "decommissioned".into(),
            data: Data::Json(event.data.clone()),
        };
        log(&mut tx, self.backend, entry).await?;
        events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, id, now).await
    }

    /// A device's slots, by CA id.
    pub async fn device_slots(&self, device_id: &str) -> Result<Vec<SlotRow>, Error> {
        let sql =
            format!("SELECT {SLOT_COLUMNS} FROM device_slots WHERE device_id = $1 ORDER BY ca_id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(device_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(SlotRow::from_row).collect()
    }

    /// One slot of a device (the slot id is the CA id).
    pub async fn device_slot(&self, device_id: &str, slot: &str) -> Result<Option<SlotRow>, Error> {
        let sql =
            format!("SELECT {SLOT_COLUMNS} FROM device_slots WHERE device_id = $1 AND ca_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(device_id)
            .bind(slot)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(SlotRow::from_row).transpose()
    }

    /// Every certificate issued into a device's slots, by CA, oldest first.
    pub async fn device_certificates(
        &self,
        device_id: &str,
    ) -> Result<Vec<SlotCertificateRow>, Error> {
        let rows = sqlx::query(
            "SELECT dc.ca_id, dc.serial, dc.issued_at, dc.kind, c.status, c.not_after \
             FROM device_certificates dc JOIN certificates c ON c.ca_id = dc.ca_id AND c.serial = dc.serial \
             WHERE dc.device_id = $1 ORDER BY dc.ca_id, dc.issued_at, c.seq",
        )
        .bind(device_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SlotCertificateRow {
                    ca_id: r.try_get("ca_id")?,
                    serial: r.try_get("serial")?,
                    issued_at: r.try_get("issued_at")?,
                    kind: r.try_get("kind")?,
                    status: r.try_get("status")?,
                    not_after: r.try_get("not_after")?,
                })
            })
            .collect()
    }

    /// A device's most recent log entries, newest first.
    pub async fn device_log(
        &self,
        device_id: &str,
        limit: i64,
    ) -> Result<Vec<DeviceLogRow>, Error> {
        let rows = sqlx::query(
            "SELECT seq, time, kind, message, data FROM device_log WHERE device_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(device_id)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceLogRow {
                    seq: r.try_get("seq")?,
                    time: r.try_get("time")?,
                    kind: r.try_get("kind")?,
                    message: r.try_get("message")?,
                    data: r.try_get("data")?,
                })
            })
            .collect()
    }
}
/// The device's `(status, ra_id)`, its row locked for the transaction on PostgreSQL (SQLite has one writer).
async fn lock_device(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    id: &str,
) -> Result<Option<(String, String)>, Error> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    let sql = format!("SELECT status, ra_id FROM devices WHERE id = $1{lock}");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Rewrites a device's rows in the tag index.
async fn replace_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    tags: &[String],
) -> Result<(), Error> {
    sqlx::query("DELETE FROM device_tags WHERE device_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for tag in tags {
        sqlx::query(
            "INSERT INTO device_tags (tag, device_id, device_seq, ra_id, status) \
             SELECT $1, id, seq, ra_id, status FROM devices WHERE id = $2",
        )
        .bind(tag)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A listing's statement and values: a page of `limit` rows and one more (whether a next page exists).
fn list_sql(f: &DeviceFilter, backend: Backend, limit: i64) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let q = filter_sql(f, backend, &mut args, true);
    args.push(Arg::Int(limit + 1));
    let sql = format!(
        "SELECT {} FROM {} {} ORDER BY {} DESC LIMIT ${}",
        prefixed("d", DEVICE_COLUMNS),
        q.from,
        q.where_clause,
        q.seq,
        args.len()
    );
    (sql, args)
}

/// A count's statement and values (the cursor ignored), for filters the maintained counts cannot answer.
fn count_sql(f: &DeviceFilter, backend: Backend) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let filter = DeviceFilter {
        before_seq: None,
        ..f.clone()
    };
    let q = filter_sql(&filter, backend, &mut args, false);
    // The status of the rows the filter reads: the tag index's copy when the tags drive.
    let status = if f.tags.is_empty() {
        "d.status"
    } else {
        "t.status"
    };
    let sql = format!(
        "SELECT {status}, COUNT(*) FROM {} {} GROUP BY {status} ORDER BY {status}",
        q.from, q.where_clause
    );
    (sql, args)
}

impl Store {
    /// The query plans of a listing and of a count with `f`, the very statements [`Store::list_devices`] and
    /// [`Store::count_devices_by_status`] run (for tests and the benchmark), one line per plan row.
    #[cfg(any(test, feature = "testing"))]
    pub async fn explain_device_reads(&self, f: &DeviceFilter) -> Result<Vec<String>, Error> {
        let (prefix, column) = self.backend.explain();
        let mut out = Vec::new();
        for (sql, args) in [list_sql(f, self.backend, 50), count_sql(f, self.backend)] {
            for row in bind(sqlx::query(AssertSqlSafe(format!("{prefix}{sql}"))), &args)
                .fetch_all(&self.read)
                .await?
            {
                out.push(row.try_get::<String, _>(column)?);
            }
        }
        Ok(out)
    }
}

/// A filter as SQL: the rows it reads (`from`), its `WHERE` clause, and the column a listing orders by.
struct FilterSql {
    from: String,
    where_clause: String,
    seq: &'static str,
}

/// The SQL of a filter, its values appended to `args` (placeholders follow their positions).
///
/// Without tags it reads `devices d`. With tags the tag index drives: the rows of the first tag (`t`, which
/// carries the device's `seq`, RA and status, migration 0038) in `seq` order, each further tag an index
/// probe on the same device, and the device row (`d`) joined only when the listing needs its columns or the
/// filter its metadata. So a page of a tag reads a page of index entries, and counting a group with tags
/// reads the `(tag, ra_id, status)` index alone.
fn filter_sql(f: &DeviceFilter, backend: Backend, args: &mut Vec<Arg>, rows: bool) -> FilterSql {
    fn push(args: &mut Vec<Arg>, a: Arg) -> usize {
        args.push(a);
        args.len()
    }
    let mut conds = Vec::new();
    let (from, owner, seq) = match f.tags.split_first() {
        None => ("devices d".to_string(), "d", "d.seq"),
        Some((first, rest)) => {
            let n = push(args, Arg::Text(first.clone()));
            conds.push(format!("t.tag = ${n}"));
            for tag in rest {
                let n = push(args, Arg::Text(tag.clone()));
                conds.push(format!(
                    "EXISTS (SELECT 1 FROM device_tags o WHERE o.tag = ${n} AND o.device_id = t.device_id)"
                ));
            }
            let from = if rows || !f.metadata.is_empty() {
                "device_tags t JOIN devices d ON d.seq = t.device_seq"
            } else {
                "device_tags t"
            };
            (from.to_string(), "t", "t.device_seq")
        }
    };
    if let Some(ra) = &f.ra_id {
        let n = push(args, Arg::Text(ra.clone()));
        conds.push(format!("{owner}.ra_id = ${n}"));
    }
    if let Some(status) = &f.status {
        let n = push(args, Arg::Text(status.clone()));
        conds.push(format!("{owner}.status = ${n}"));
    }
    for (key, value) in &f.metadata {
        // JSON equality on both backends: the string "5" is not the number 5, and true is not 1.
        let cond = match backend {
            Backend::Sqlite => {
                let path = push(args, Arg::Text(format!("$.\"{key}\"")));
                let v = push(args, Arg::Text(value.clone()));
                format!(
                    "json_extract(d.metadata, ${path}) = json_extract(${v}, '$') \
                     AND (json_type(d.metadata, ${path}) IN ('true', 'false')) = (json_type(${v}) IN ('true', 'false'))"
                )
            }
            Backend::Postgres => {
                let k = push(args, Arg::Text(key.clone()));
                let v = push(args, Arg::Text(value.clone()));
                format!("(d.metadata::jsonb -> CAST(${k} AS TEXT)) = CAST(${v} AS jsonb)")
            }
        };
        conds.push(cond);
    }
    if let Some(before) = f.before_seq {
        let n = push(args, Arg::Int(before));
        conds.push(format!("{seq} < ${n}"));
    }
    let where_clause = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    FilterSql {
        from,
        where_clause,
        seq,
    }
}

/// A device event built here, with data already rendered by the database (see [`status::log`]).
fn device_event(source: &str, ty: &str, device_id: &str, time: i64, data: String) -> NewEvent {
    NewEvent {
        id: event_id(),
        source: source.to_string(),
        ty: ty.to_string(),
        subject: format!("devices/{device_id}"),
        time,
        data,
    }
}

fn conflict(reason: &str) -> Error {
    Error::Conflict {
        constraint: Some(reason.to_string()),
    }
}

fn split_tags(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// `a, b` → `p.a, p.b`.
fn prefixed(prefix: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{prefix}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
