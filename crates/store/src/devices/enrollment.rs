//! Enrolment: everything one successful (re-)enrolment changes, in one transaction with its certificate.

use sqlx::Row;

use super::status::{
    Arg, Data, DeviceRevocation, LogEntry, Scope, event_id, log, log_revocation, rederive,
};
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

/// The statements of [`Store::record_enrollment`], inside the caller's transaction.
async fn enroll(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    words: &'static EventWords,
    chain: crate::audit::Chain,
    pending: crate::audit::Pending,
    r: EnrollmentRecord,
) -> Result<EnrollmentOutcome, Error> {
    {
        let now = r.now;
        let device_created = r.register && register_for_enrollment(tx, backend, words, &r).await?;
        let (status, ra_id) = lock_device(tx, backend, &r.device_id)
            .await?
            .ok_or(Error::NotFound)?;
        if status == "decommissioned" {
            return Err(conflict(DEVICE_DECOMMISSIONED));
        }
        if ra_id != r.ra_id {
            return Err(conflict(DEVICE_RA_MISMATCH));
        }
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
        if !r.reenroll && holds_valid_certificate(tx, &r).await? {
            return Err(conflict(DEVICE_ALREADY_ENROLLED));
        }
        insert_rows(tx, &[&r.cert], backend).await?;
        insert_events(tx, &[&r.cert_event], backend).await?;
        let previous: Option<String> = sqlx::query(
            "SELECT active_serial FROM device_slots WHERE device_id = $1 AND ca_id = $2",
        )
        .bind(&r.device_id)
        .bind(&r.slot)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
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
        let entry = LogEntry {
            device_id: &r.device_id,
            time: now,
            kind: log_kind,
            message: format!("certificate {} issued in slot {}", r.cert.serial, r.slot),
            data: Data::Fields(vec![
                ("device_id", Arg::Text(r.device_id.clone())),
                ("ra_id", Arg::Text(r.ra_id.clone())),
                ("ca_id", Arg::Text(r.slot.clone())),
                ("serial", Arg::Text(r.cert.serial.clone())),
                ("previous", Arg::OptText(previous.clone())),
            ]),
        };
        let data = log(tx, backend, entry).await?;
        let ty = if r.reenroll {
            words.device_reenrolled
        } else {
            words.device_enrolled
        };
        let enrolled = device_event(words.source, ty, &r.device_id, now, data);
        events::append(tx, &enrolled).await?;
        let previous_revoked = match (&previous, r.revoke_previous) {
            (Some(prev), true) => revoke_superseded(tx, backend, words, &r, prev).await?,
            _ => false,
        };
        rederive(
            tx,
            backend,
            &Scope::Device(&r.device_id),
            now,
            words,
            log_kind,
        )
        .await?;
        crate::audit::append(tx, &chain, &[&pending]).await?;
        let status: String = sqlx::query("SELECT status FROM devices WHERE id = $1")
            .bind(&r.device_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        Ok(EnrollmentOutcome {
            device_created,
            previous,
            previous_revoked,
            status,
        })
    }
}

/// Whether the slot's active certificate is still valid (not revoked, not past its notAfter): a first
/// enrolment must not replace it, or whoever holds any accepted credential could take the device over.
async fn holds_valid_certificate(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    r: &EnrollmentRecord,
) -> Result<bool, Error> {
    let valid: i64 = sqlx::query(
        "SELECT COUNT(*) FROM device_slots s \
         JOIN certificates c ON c.ca_id = s.ca_id AND c.serial = s.active_serial \
         WHERE s.device_id = $1 AND s.ca_id = $2 AND c.status <> 'revoked' AND c.not_after > $3",
    )
    .bind(&r.device_id)
    .bind(&r.slot)
    .bind(r.now)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    Ok(valid > 0)
}

/// Creates the device of an auto-registering enrolment when missing, with its `registered` log entry and
/// event. Returns whether it was created.
async fn register_for_enrollment(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    words: &EventWords,
    r: &EnrollmentRecord,
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
        let entry = LogEntry {
            device_id: &r.device_id,
            time: r.now,
            kind: "registered",
            message: format!("registered by its enrolment through RA {}", r.ra_id),
            data: Data::Fields(vec![
                ("device_id", Arg::Text(r.device_id.clone())),
                ("ra_id", Arg::Text(r.ra_id.clone())),
            ]),
        };
        let data = log(tx, backend, entry).await?;
        let ev = device_event(
            words.source,
            words.device_registered,
            &r.device_id,
            r.now,
            data,
        );
        events::append(tx, &ev).await?;
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
