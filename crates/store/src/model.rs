//! Plain rows as stored. Services turn them into domain types; nothing here is `Serialize`.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Error;

/// A certificate authority as stored.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct CaRow {
    pub id: String,
    pub name: String,
    /// `root`, `intermediate`, `imported` (with key) or `external` (certificate only).
    pub kind: String,
    pub parent_id: Option<String>,
    pub key_type: String,
    /// The key engine (`software`), `None` when shedu holds no key.
    pub engine: Option<String>,
    /// The engine's sealed key or handle; never plaintext.
    pub key_sealed: Option<Vec<u8>>,
    pub certificate_der: Vec<u8>,
    pub subject: String,
    pub serial: String,
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
    pub status: String,
    pub default_validity_days: i64,
    /// Comma-separated API names.
    pub key_usages: String,
    /// Comma-separated API names.
    pub ext_key_usages: String,
    pub path_len: Option<i64>,
    /// Comma-separated key type names.
    pub allowed_key_types: String,
    pub expiry_warning_days: i64,
    pub created_at: i64,
    /// The profile's name policy, a JSON document core reads and writes; `None` is the default policy.
    pub name_policy: Option<String>,
}

pub(crate) const CA_COLUMNS: &str = "id, name, kind, parent_id, key_type, engine, key_sealed, certificate_der, \
    subject, serial, fingerprint, not_before, not_after, status, default_validity_days, key_usages, \
    ext_key_usages, path_len, allowed_key_types, expiry_warning_days, created_at, name_policy";

impl CaRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<CaRow, Error> {
        Ok(CaRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            parent_id: r.try_get("parent_id")?,
            key_type: r.try_get("key_type")?,
            engine: r.try_get("engine")?,
            key_sealed: r.try_get("key_sealed")?,
            certificate_der: r.try_get("certificate_der")?,
            subject: r.try_get("subject")?,
            serial: r.try_get("serial")?,
            fingerprint: r.try_get("fingerprint")?,
            not_before: r.try_get("not_before")?,
            not_after: r.try_get("not_after")?,
            status: r.try_get("status")?,
            default_validity_days: r.try_get("default_validity_days")?,
            key_usages: r.try_get("key_usages")?,
            ext_key_usages: r.try_get("ext_key_usages")?,
            path_len: r.try_get("path_len")?,
            allowed_key_types: r.try_get("allowed_key_types")?,
            expiry_warning_days: r.try_get("expiry_warning_days")?,
            created_at: r.try_get("created_at")?,
            name_policy: r.try_get("name_policy")?,
        })
    }
}

/// An issued (or tracked) certificate as stored.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct CertRow {
    /// Insertion order; the pagination cursor. Ignored on insert.
    pub seq: i64,
    pub ca_id: String,
    pub serial: String,
    pub fingerprint: String,
    pub subject: String,
    /// SANs joined with `, `.
    pub sans: String,
    pub key_type: String,
    pub not_before: i64,
    pub not_after: i64,
    pub der: Vec<u8>,
    pub status: String,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    pub created_at: i64,
}

pub(crate) const CERT_COLUMNS: &str = "seq, ca_id, serial, fingerprint, subject, sans, key_type, not_before, \
    not_after, der, status, revoked_at, revocation_reason, created_at";

impl CertRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<CertRow, Error> {
        Ok(CertRow {
            seq: r.try_get("seq")?,
            ca_id: r.try_get("ca_id")?,
            serial: r.try_get("serial")?,
            fingerprint: r.try_get("fingerprint")?,
            subject: r.try_get("subject")?,
            sans: r.try_get("sans")?,
            key_type: r.try_get("key_type")?,
            not_before: r.try_get("not_before")?,
            not_after: r.try_get("not_after")?,
            der: r.try_get("der")?,
            status: r.try_get("status")?,
            revoked_at: r.try_get("revoked_at")?,
            revocation_reason: r.try_get("revocation_reason")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// A CloudEvents 1.0 event to append to the outbox with a change. `data` is JSON text.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct NewEvent {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub subject: String,
    pub time: i64,
    pub data: String,
}

/// A stored event, with its outbox position.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct EventRow {
    pub seq: i64,
    pub event: NewEvent,
}

/// The event columns, in the order [`EventRow::from_row`] reads.
pub(crate) const EVENT_COLUMNS: &str = "seq, id, source, type, subject, time, data";

impl EventRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<EventRow, Error> {
        Ok(EventRow {
            seq: r.try_get("seq")?,
            event: NewEvent {
                id: r.try_get("id")?,
                source: r.try_get("source")?,
                ty: r.try_get("type")?,
                subject: r.try_get("subject")?,
                time: r.try_get("time")?,
                data: r.try_get("data")?,
            },
        })
    }
}
