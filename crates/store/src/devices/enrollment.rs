//! Enrolment: everything one successful (re-)enrolment changes, in one transaction with its certificate.

use super::status::{
    DeviceRevocation, LogRow, StatusChange, event_id, insert_log, log_revocation, rederive_known,
};
use super::{
    DEVICE_ALREADY_ENROLLED, DEVICE_DECOMMISSIONED, DEVICE_RA_MISMATCH, DEVICE_SLOT_NOT_CA,
    conflict, device_event, lock_device,
};
use crate::audit::Audited;
use crate::writer::{WriteRows, insert_events, insert_rows, placeholder, push_placeholders};
use crate::{Backend, CertRow, Error, EventWords, NewEvent, Store, events};

/// The certificate writer's refusal of a first enrolment whose device it did not create (registered
/// before, or by an earlier enrolment of its batch): [`Store::record_enrollment`] takes the general path.
pub(crate) const DEVICE_EXISTS: &str = "device_exists";

/// Everything one successful (re-)enrolment writes, in ONE transaction: the certificate row and its
/// `certificate.issued` event, the device (created when `register` and missing), the slot's new active
/// certificate, the device log entries, device events, the new device status, the one-time secret consumed
/// (when given), and the previous certificate of the slot revoked with reason superseded (when asked).
#[derive(Clone, Debug)]
pub struct EnrollmentRecord {
    /// The new certificate.
    pub cert: CertRow,
    /// Its `certificate.issued` event.
    pub cert_event: NewEvent,
    /// The device.
    pub device_id: String,
    /// The enrolling RA; must be the device's.
    pub ra_id: String,
    /// The slot: the CA id, which must be the certificate's.
    pub slot: String,
    /// Create the device when missing (auto-register).
    pub register: bool,
    /// A re-enrolment (logged and announced as such).
    pub reenroll: bool,
    /// Revoke the slot's previous active certificate with reason `superseded`.
    pub revoke_previous: bool,
    /// SHA-256 of the one-time enrolment secret presented: it must match the stored one, which is cleared
    /// atomically, else [`Error::Unauthorized`].
    pub consume_secret_sha256: Option<Vec<u8>>,
    /// The time of the enrolment, Unix seconds.
    pub now: i64,
}

/// What an enrolment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollmentOutcome {
    /// The device was created by this enrolment.
    pub device_created: bool,
    /// Serial of the slot's previous active certificate.
    pub previous: Option<String>,
    /// The previous certificate was revoked by this enrolment (the caller purges its OCSP cache).
    pub previous_revoked: bool,
    /// The device status after the enrolment.
    pub status: String,
}

impl Store {
    /// Writes one successful (re-)enrolment in one transaction; see [`EnrollmentRecord`]. Errors leave
    /// nothing behind: `NotFound` (missing and not `register`), `Conflict` ([`DEVICE_DECOMMISSIONED`],
    /// [`DEVICE_RA_MISMATCH`], [`DEVICE_SLOT_NOT_CA`], [`DEVICE_ALREADY_ENROLLED`] for a first enrolment into
    /// a slot whose certificate is still valid, or a serial collision), [`Error::Unauthorized`] (the secret
    /// does not match or was used).
    pub async fn record_enrollment(
        &self,
        r: EnrollmentRecord,
        audit: &Audited<'_>,
    ) -> Result<EnrollmentOutcome, Error> {
        if r.slot != r.cert.ca_id {
            return Err(conflict(DEVICE_SLOT_NOT_CA));
        }
        let pending = crate::audit::pending(audit, &r.device_id, r.now);
        // A first enrolment that registers its device and spends no secret (a factory line, a fleet's first
        // contact) rides the certificate writer's batches: a few multi-row statements for the whole batch
        // (`enroll_new_devices`) instead of seven and a savepoint each. A device that exists already is
        // sent back and enrols below, under its lock.
        if r.register && !r.reenroll && r.consume_secret_sha256.is_none() {
            let change = WriteRows {
                enrollment: Some(r.clone()),
                ..WriteRows::default()
            };
            match self.certs.commit(change, pending.clone()).await {
                Ok(committed) => {
                    return Ok(EnrollmentOutcome {
                        device_created: true,
                        previous: None,
                        previous_revoked: false,
                        status: committed.device_status.unwrap_or_default(),
                    });
                }
                Err(Error::Conflict { constraint })
                    if constraint.as_deref() == Some(DEVICE_EXISTS) => {}
                Err(e) => return Err(e),
            }
        }
        let (words, backend, chain) = (self.words, self.backend, self.chain.clone());
        self.write_tx(move |tx| Box::pin(enroll(tx, backend, words, chain, pending, r)))
            .await
    }
}

/// The statements of [`Store::record_enrollment`], inside the caller's transaction. A first enrolment of a
/// new device is seven statements: the device, the certificate, the slot, the slot's history, the status,
/// then every log entry in one and every event in one (in the order the changes happened).
async fn enroll(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    words: &'static EventWords,
    chain: crate::audit::Chain,
    pending: crate::audit::Pending,
    r: EnrollmentRecord,
) -> Result<EnrollmentOutcome, Error> {
    let now = r.now;
    let mut written = Written::default();
    let device_created =
        r.register && register_for_enrollment(tx, backend, words, &r, &mut written).await?;
    // A device this transaction created is ours, locked (PostgreSQL: a racing enrolment of the same new id
    // waits on its key, then finds it), pending and without slots; any other is locked and read.
    let held = if device_created {
        Held {
            status: "pending_provisioning".into(),
            previous: None,
            valid: false,
        }
    } else {
        held(tx, backend, &r).await?
    };
    if let Some(hash) = &r.consume_secret_sha256 {
        // Equality on a SHA-256 of a 256-bit random secret: timing reveals nothing usable.
        let consumed = sqlx::query(
            "UPDATE devices SET secret_sha256 = NULL WHERE id = $1 AND secret_sha256 = $2",
        )
        .bind(&r.device_id)
        .bind(hash.clone())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if consumed == 0 {
            return Err(Error::Unauthorized);
        }
    }
    // Checked under the device lock (PostgreSQL; SQLite has one writer), so two racing first enrolments
    // cannot both pass; after the secret, so a spent secret still answers as spent. The rollback keeps an
    // unspent secret.
    if !r.reenroll && held.valid {
        return Err(conflict(DEVICE_ALREADY_ENROLLED));
    }
    insert_rows(tx, &[&r.cert], backend).await?;
    written.events.push(r.cert_event.clone());
    insert_slots(tx, backend, &[&r]).await?;
    written.enrolled(words, &r, held.previous.as_deref());
    let previous_revoked = match (&held.previous, r.revoke_previous) {
        (Some(prev), true) => {
            // Its log entry and event come after the enrolment's.
            written.flush(tx, backend).await?;
            revoke_superseded(tx, backend, words, &r, prev).await?
        }
        _ => false,
    };
    // The slot now holds the new certificate: the status follows from it, not from the one superseded.
    let change = rederive_known(
        tx,
        backend,
        &[(&r.device_id, &held.status)],
        now,
        r.log_kind(),
    )
    .await?
    .pop()
    .flatten();
    let status = written
        .status_changed(words, &r, change)
        .unwrap_or(held.status);
    written.flush(tx, backend).await?;
    crate::audit::append(tx, &chain, &[&pending]).await?;
    Ok(EnrollmentOutcome {
        device_created,
        previous: held.previous,
        previous_revoked,
        status,
    })
}

impl EnrollmentRecord {
    /// The device log's word for this enrolment (and the cause of the status change it brings).
    fn log_kind(&self) -> &'static str {
        if self.reenroll {
            "reenrolled"
        } else {
            "enrolled"
        }
    }

    /// The slot history's word for this enrolment.
    fn history_kind(&self) -> &'static str {
        if self.reenroll { "reenroll" } else { "enroll" }
    }
}

/// First enrolments in the certificate writer's batch, step one (before the certificates are inserted):
/// creates the devices of `records` in one statement. Returns, for each record, whether this batch
/// created its device; one it did not (registered before, or named by an earlier record of the batch) is
/// refused with [`DEVICE_EXISTS`] by the writer, and enrols through the general path.
pub(crate) async fn register_new_devices(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    records: &[&EnrollmentRecord],
) -> Result<Vec<bool>, Error> {
    use std::collections::HashSet;
    use std::fmt::Write;
    let asks = asks(records);
    let asking: Vec<&EnrollmentRecord> = records
        .iter()
        .zip(&asks)
        .filter(|(_, asks)| **asks)
        .map(|(r, _)| *r)
        .collect();
    let mut sql = String::from(
        "INSERT INTO devices (id, ra_id, alias, tags, metadata, status, created_at, updated_at) VALUES ",
    );
    for n in 0..asking.len() {
        let sep = if n == 0 { "" } else { ", " };
        let p = |k: usize| placeholder(backend, n * 4 + k);
        let _ = write!(
            sql,
            "{sep}({}, {}, NULL, '', '{{}}', 'pending_provisioning', {}, {})",
            p(1),
            p(2),
            p(3),
            p(4)
        );
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in &asking {
        q = q
            .bind(r.device_id.clone())
            .bind(r.ra_id.clone())
            .bind(r.now)
            .bind(r.now);
    }
    let created: HashSet<String> = q
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| sqlx::Row::try_get(row, 0))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(records
        .iter()
        .zip(asks)
        .map(|(r, asked)| asked && created.contains(&r.device_id))
        .collect())
}

/// Whether each record asks for its device: the first record of an id does; a later one of the same id
/// did not create it.
fn asks(records: &[&EnrollmentRecord]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    records
        .iter()
        .map(|r| seen.insert(r.device_id.as_str()))
        .collect()
}

/// The status of a device an enrolment registers, before its slot is written.
const CREATED: &str = "pending_provisioning";

/// What a first enrolment of a new device writes besides its rows in the registry: its events in order
/// (`registered`, `certificate.issued`, `enrolled`, `status_changed`), its log entries, and its new status.
#[derive(Debug)]
pub(crate) struct FirstEnrolment {
    pub(crate) events: Vec<NewEvent>,
    pub(crate) log: Vec<LogRow>,
    pub(crate) status: String,
}

impl FirstEnrolment {
    /// The events and log entries of `r`, whose device moved as `change` says.
    fn new(words: &EventWords, r: &EnrollmentRecord, change: Option<StatusChange>) -> Self {
        let mut written = Written::default();
        written.registered(words, r);
        written.events.push(r.cert_event.clone());
        written.enrolled(words, r, None);
        let status = written
            .status_changed(words, r, change)
            .unwrap_or_else(|| CREATED.to_string());
        FirstEnrolment {
            events: written.events,
            log: written.log,
            status,
        }
    }
}

/// PostgreSQL: first enrolments in the certificate writer's batch, in ONE statement of one text whatever the
/// batch holds (every record bound as one JSON recordset): creates each record's device unless it exists,
/// with the status its one slot gives it ([`super::status::derived_from`], the derivation of
/// [`rederive_known`]), and for each device created its certificate, slot and history row. Returns, per
/// record, the rest of its enrolment (for the writer's statement of the batch's events and log entries), or
/// `None` when this batch did not create its device (registered before, or by an earlier record of the
/// batch): the writer refuses it with [`DEVICE_EXISTS`].
pub(crate) async fn enroll_new_devices_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    words: &EventWords,
    records: &[&EnrollmentRecord],
) -> Result<Vec<Option<FirstEnrolment>>, Error> {
    use crate::writer::{CERT_RECORD_PG, Recordset, cert_record, insert_certs_pg};
    let asks = asks(records);
    let mut set = Recordset::default();
    for (r, _) in records.iter().zip(&asks).filter(|(_, asks)| **asks) {
        let mut row = cert_record(&r.cert);
        if let Some(row) = row.as_object_mut() {
            row.insert("device_id".into(), r.device_id.clone().into());
            row.insert("ra_id".into(), r.ra_id.clone().into());
            row.insert("slot".into(), r.slot.clone().into());
            row.insert("now".into(), r.now.into());
            row.insert("kind".into(), r.history_kind().into());
        }
        set.push(row);
    }
    let status =
        super::status::derived_from("s.active_status", "(SELECT r.status AS active_status) s");
    let sql = format!(
        "WITH r AS (SELECT * FROM json_to_recordset($1::json) AS r({CERT_RECORD_PG}, device_id text, \
         ra_id text, slot text, now bigint, kind text)), \
         d AS (INSERT INTO devices (id, ra_id, alias, tags, metadata, status, created_at, updated_at) \
         SELECT device_id, ra_id, NULL, '', '{{}}', {status}, now, now FROM r \
         ON CONFLICT (id) DO NOTHING RETURNING id, status), \
         n AS (SELECT r.* FROM r JOIN d ON d.id = r.device_id), \
         c AS ({}), \
         s AS (INSERT INTO device_slots (device_id, ca_id, active_serial, active_status, active_not_after, \
         created_at, updated_at) SELECT device_id, slot, serial, status, not_after, now, now FROM n), \
         h AS (INSERT INTO device_certificates (ca_id, serial, device_id, issued_at, kind) \
         SELECT slot, serial, device_id, now, kind FROM n) \
         SELECT id, status FROM d",
        insert_certs_pg("n")
    );
    let mut created: std::collections::HashMap<String, String> =
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(set.finish())
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| Ok((sqlx::Row::try_get(row, 0)?, sqlx::Row::try_get(row, 1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
    Ok(records
        .iter()
        .zip(asks)
        .map(|(r, asked)| {
            let to = created.remove(&r.device_id).filter(|_| asked)?;
            let change =
                (to != CREATED).then(|| StatusChange::new(&r.device_id, CREATED, to, "enrolled"));
            Some(FirstEnrolment::new(words, r, change))
        })
        .collect())
}

/// SQLite: first enrolments in the certificate writer's batch, step two (after their certificates): the
/// devices [`register_new_devices`] created get their slots, slot history, status, log entries and events,
/// as [`enroll`] writes them for one device (a device just created is pending, without slots, and holds no
/// secret). Four statements for the batch; the log entries are written, the events returned per record, for
/// the writer's one INSERT of the batch's events, with each device's new status.
pub(crate) async fn enroll_new_devices(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    words: &EventWords,
    records: &[&EnrollmentRecord],
) -> Result<Vec<FirstEnrolment>, Error> {
    insert_slots(tx, backend, records).await?;
    // One statement per second of request time (each device's `updated_at` is its own enrolment's time).
    let mut changes: Vec<Option<StatusChange>> = records.iter().map(|_| None).collect();
    let mut nows: Vec<i64> = records.iter().map(|r| r.now).collect();
    nows.dedup();
    nows.sort_unstable();
    nows.dedup();
    for now in nows {
        let at: Vec<usize> = (0..records.len())
            .filter(|i| records[*i].now == now)
            .collect();
        let devices: Vec<(&str, &str)> = at
            .iter()
            .map(|i| (records[*i].device_id.as_str(), CREATED))
            .collect();
        let moved = rederive_known(tx, backend, &devices, now, "enrolled").await?;
        for (i, change) in at.into_iter().zip(moved) {
            changes[i] = change;
        }
    }
    let done: Vec<FirstEnrolment> = records
        .iter()
        .zip(changes)
        .map(|(r, change)| FirstEnrolment::new(words, r, change))
        .collect();
    let log: Vec<LogRow> = done.iter().flat_map(|f| f.log.iter().cloned()).collect();
    insert_log(tx, backend, &log).await?;
    Ok(done)
}

/// Each record's certificate becomes its slot's active one (the slot created or replaced), and enters the
/// slot's history: two statements for all of them.
async fn insert_slots(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    records: &[&EnrollmentRecord],
) -> Result<(), Error> {
    let mut sql = String::from(
        "INSERT INTO device_slots (device_id, ca_id, active_serial, active_status, active_not_after, created_at, updated_at) VALUES ",
    );
    push_placeholders(&mut sql, records.len(), 7, backend);
    sql.push_str(
        " ON CONFLICT (device_id, ca_id) DO UPDATE SET \
         active_serial = excluded.active_serial, active_status = excluded.active_status, \
         active_not_after = excluded.active_not_after, updated_at = excluded.updated_at",
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in records {
        q = q
            .bind(r.device_id.clone())
            .bind(r.slot.clone())
            .bind(r.cert.serial.clone())
            .bind(r.cert.status.clone())
            .bind(r.cert.not_after)
            .bind(r.now)
            .bind(r.now);
    }
    q.execute(&mut **tx).await?;
    let mut sql = String::from(
        "INSERT INTO device_certificates (ca_id, serial, device_id, issued_at, kind) VALUES ",
    );
    push_placeholders(&mut sql, records.len(), 5, backend);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in records {
        q = q
            .bind(r.slot.clone())
            .bind(r.cert.serial.clone())
            .bind(r.device_id.clone())
            .bind(r.now)
            .bind(r.history_kind());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// The device log entries and events of an enrolment not written yet: written together, two statements
/// for all of them, in the order they were recorded.
#[derive(Default)]
struct Written {
    log: Vec<LogRow>,
    events: Vec<NewEvent>,
}

impl Written {
    /// A log entry and its event, whose data is the entry's.
    fn record(
        &mut self,
        words: &EventWords,
        r: &EnrollmentRecord,
        ty: &str,
        kind: &'static str,
        message: String,
        data: String,
    ) {
        self.events.push(device_event(
            words.source,
            ty,
            &r.device_id,
            r.now,
            data.clone(),
        ));
        self.log.push(LogRow {
            device_id: r.device_id.clone(),
            time: r.now,
            kind,
            message,
            data,
        });
    }

    /// The `registered` entry and event of a device its enrolment created.
    fn registered(&mut self, words: &EventWords, r: &EnrollmentRecord) {
        let data = serde_json::json!({"device_id": r.device_id, "ra_id": r.ra_id}).to_string();
        let message = format!("registered by its enrolment through RA {}", r.ra_id);
        self.record(
            words,
            r,
            words.device_registered,
            "registered",
            message,
            data,
        );
    }

    /// The `enrolled` (or `reenrolled`) entry and event: the slot's certificate replaced `previous`.
    fn enrolled(&mut self, words: &EventWords, r: &EnrollmentRecord, previous: Option<&str>) {
        let data = serde_json::json!({
            "device_id": r.device_id, "ra_id": r.ra_id, "ca_id": r.slot, "serial": r.cert.serial,
            "previous": previous,
        })
        .to_string();
        let ty = if r.reenroll {
            words.device_reenrolled
        } else {
            words.device_enrolled
        };
        let message = format!("certificate {} issued in slot {}", r.cert.serial, r.slot);
        self.record(words, r, ty, r.log_kind(), message, data);
    }

    /// The `status_changed` entry and event of `change`, if any; returns the new status.
    fn status_changed(
        &mut self,
        words: &EventWords,
        r: &EnrollmentRecord,
        change: Option<StatusChange>,
    ) -> Option<String> {
        let change = change?;
        let ty = words.device_status_changed;
        self.record(words, r, ty, "status_changed", change.message, change.data);
        Some(change.to)
    }

    async fn flush(
        &mut self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        backend: Backend,
    ) -> Result<(), Error> {
        insert_log(tx, backend, &std::mem::take(&mut self.log)).await?;
        let events = std::mem::take(&mut self.events);
        if !events.is_empty() {
            let events: Vec<&NewEvent> = events.iter().collect();
            insert_events(tx, &events, backend).await?;
        }
        Ok(())
    }
}

/// An existing device as an enrolment finds it, under its lock.
struct Held {
    status: String,
    /// The slot's active certificate.
    previous: Option<String>,
    /// Whether that certificate is still valid (not revoked, not past its notAfter): a first enrolment must
    /// not replace it, or whoever holds any accepted credential could take the device over.
    valid: bool,
}

/// Locks the device (PostgreSQL; SQLite has one writer) and reads its slot's active certificate. The slot
/// is read after the lock is taken, in a statement of its own: on PostgreSQL a statement that waited for
/// the lock still sees the rows of the other tables as of its start, not what the holder committed.
async fn held(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    r: &EnrollmentRecord,
) -> Result<Held, Error> {
    let (status, ra_id) = lock_device(tx, backend, &r.device_id)
        .await?
        .ok_or(Error::NotFound)?;
    if status == "decommissioned" {
        return Err(conflict(DEVICE_DECOMMISSIONED));
    }
    if ra_id != r.ra_id {
        return Err(conflict(DEVICE_RA_MISMATCH));
    }
    let slot: Option<(String, i64)> = sqlx::query_as(
        "SELECT s.active_serial, CASE WHEN c.status <> 'revoked' AND c.not_after > $3 THEN 1 ELSE 0 END \
         FROM device_slots s LEFT JOIN certificates c ON c.ca_id = s.ca_id AND c.serial = s.active_serial \
         WHERE s.device_id = $1 AND s.ca_id = $2",
    )
    .bind(&r.device_id)
    .bind(&r.slot)
    .bind(r.now)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(Held {
        status,
        valid: slot.as_ref().is_some_and(|s| s.1 == 1),
        previous: slot.map(|s| s.0),
    })
}

/// Creates the device of an auto-registering enrolment when missing, and records its `registered` log entry
/// and event. Returns whether it was created.
async fn register_for_enrollment(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    words: &EventWords,
    r: &EnrollmentRecord,
    written: &mut Written,
) -> Result<bool, Error> {
    let created = register_new_devices(tx, backend, &[r]).await?.first() == Some(&true);
    if created {
        written.registered(words, r);
    }
    Ok(created)
}

/// Revokes the slot's previous certificate (reason `superseded`) with its `certificate.revoked` event and
/// log entry. Returns whether it changed (it may have been revoked already).
async fn revoke_superseded(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    words: &EventWords,
    r: &EnrollmentRecord,
    serial: &str,
) -> Result<bool, Error> {
    let revoked = sqlx::query(
        "UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = 'superseded' \
         WHERE ca_id = $2 AND serial = $3 AND status <> 'revoked'",
    )
    .bind(r.now)
    .bind(&r.slot)
    .bind(serial)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if revoked {
        let revocation = DeviceRevocation {
            device_id: &r.device_id,
            ca_id: &r.slot,
            serial,
            reason: "superseded",
            now: r.now,
        };
        let data = log_revocation(tx, backend, &revocation).await?;
        let ev = NewEvent {
            id: event_id(),
            source: words.source.to_string(),
            ty: words.certificate_revoked.to_string(),
            subject: format!("cas/{}/certificates/{serial}", r.slot),
            time: r.now,
            data,
        };
        events::append(tx, &ev).await?;
    }
    Ok(revoked)
}
