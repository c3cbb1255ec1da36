//! Enrolment: everything one successful (re-)enrolment changes, in one transaction with its certificate.

use super::status::{DeviceRevocation, LogRow, event_id, insert_log, log_revocation, rederive_one};
use super::{
    DEVICE_ALREADY_ENROLLED, DEVICE_DECOMMISSIONED, DEVICE_RA_MISMATCH, DEVICE_SLOT_NOT_CA,
    conflict, device_event, lock_device,
};
use crate::audit::Audited;
use crate::writer::{insert_events, insert_rows};
use crate::{Backend, CertRow, Error, EventWords, NewEvent, Store, events};

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
        let (words, backend, chain) = (self.words, self.backend, self.chain.clone());
        let pending = crate::audit::pending(audit, &r.device_id, r.now);
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
    let device_created = r.register && register_for_enrollment(tx, words, &r, &mut written).await?;
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
    sqlx::query(
        "INSERT INTO device_slots (device_id, ca_id, active_serial, active_status, active_not_after, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (device_id, ca_id) DO UPDATE SET \
         active_serial = excluded.active_serial, active_status = excluded.active_status, \
         active_not_after = excluded.active_not_after, updated_at = excluded.updated_at",
    )
    .bind(&r.device_id)
    .bind(&r.slot)
    .bind(&r.cert.serial)
    .bind(&r.cert.status)
    .bind(r.cert.not_after)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let (kind, log_kind) = if r.reenroll {
        ("reenroll", "reenrolled")
    } else {
        ("enroll", "enrolled")
    };
    sqlx::query(
        "INSERT INTO device_certificates (ca_id, serial, device_id, issued_at, kind) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&r.slot)
    .bind(&r.cert.serial)
    .bind(&r.device_id)
    .bind(now)
    .bind(kind)
    .execute(&mut **tx)
    .await?;
    let data = serde_json::json!({
        "device_id": r.device_id, "ra_id": r.ra_id, "ca_id": r.slot, "serial": r.cert.serial,
        "previous": held.previous,
    })
    .to_string();
    let ty = if r.reenroll {
        words.device_reenrolled
    } else {
        words.device_enrolled
    };
    written.record(
        &r.device_id,
        now,
        log_kind,
        format!("certificate {} issued in slot {}", r.cert.serial, r.slot),
        data,
        device_event(words.source, ty, &r.device_id, now, String::new()),
    );
    let previous_revoked = match (&held.previous, r.revoke_previous) {
        (Some(prev), true) => {
            // Its log entry and event come after the enrolment's.
            written.flush(tx, backend).await?;
            revoke_superseded(tx, backend, words, &r, prev).await?
        }
        _ => false,
    };
    // The slot now holds the new certificate: the status follows from it, not from the one superseded.
    let status = match rederive_one(tx, &r.device_id, &held.status, now, log_kind).await? {
        Some(change) => {
            let event = device_event(
                words.source,
                words.device_status_changed,
                &r.device_id,
                now,
                String::new(),
            );
            written.record(
                &r.device_id,
                now,
                "status_changed",
                change.message,
                change.data,
                event,
            );
            change.to
        }
        None => held.status,
    };
    written.flush(tx, backend).await?;
    crate::audit::append(tx, &chain, &[&pending]).await?;
    Ok(EnrollmentOutcome {
        device_created,
        previous: held.previous,
        previous_revoked,
        status,
    })
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
        device_id: &str,
        time: i64,
        kind: &'static str,
        message: String,
        data: String,
        mut event: NewEvent,
    ) {
        event.data.clone_from(&data);
        self.events.push(event);
        self.log.push(LogRow {
            device_id: device_id.to_string(),
            time,
            kind,
            message,
            data,
        });
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
    words: &EventWords,
    r: &EnrollmentRecord,
    written: &mut Written,
) -> Result<bool, Error> {
    let created = sqlx::query(
        "INSERT INTO devices (id, ra_id, alias, tags, metadata, status, created_at, updated_at) \
         VALUES ($1, $2, NULL, '', '{}', 'pending_provisioning', $3, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&r.device_id)
    .bind(&r.ra_id)
    .bind(r.now)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if created {
        let data = serde_json::json!({"device_id": r.device_id, "ra_id": r.ra_id}).to_string();
        let ev = device_event(
            words.source,
            words.device_registered,
            &r.device_id,
            r.now,
            String::new(),
        );
        written.record(
            &r.device_id,
            r.now,
            "registered",
            format!("registered by its enrolment through RA {}", r.ra_id),
            data,
            ev,
        );
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
