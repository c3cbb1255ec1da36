//! The device registry: operators pre-register devices and hand out one-time enrolment secrets, look devices
//! up with their identity slots and log, edit them, and decommission them; EST enrolments write into it
//! (`Store::record_enrollment`, from `est.rs`). Saved groups with live counts are in [`groups`].
//!
//! A device's status is derived from its slots' active certificates and stored by the store in the same
//! transaction as whatever moved it (an enrolment, a revocation, the lifecycle sweep), so listings filter and
//! count it directly.

mod groups;

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value, json};
use shedu_store::{
    DEVICE_DECOMMISSIONED, DEVICE_LIVE_CERTIFICATES, DeviceChanges, DeviceFilter, DeviceRow, Page,
};

pub use self::groups::{DeviceGroup, DeviceGroupDetail, DeviceGroupFilter, NewDeviceGroup};
use std::sync::Arc;

use shedu_pki::{RevocationReason, Serial};

use crate::error::store_err;
use crate::events::{EventKind, event};
use crate::{AuditAction, AuditContext, Enrollment, Error, Issuance, Registry, Status};

/// A device's status, derived from its slots by precedence: decommissioned > with warnings > requires
/// action > fully provisioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// Registered, no certificate yet.
    PendingProvisioning,
    /// Every slot's active certificate is valid.
    FullyProvisioned,
    /// A slot's active certificate is about to expire.
    RequiresAction,
    /// A slot's active certificate expired or was revoked.
    WithWarnings,
    /// Retired (terminal); its certificates were revoked.
    Decommissioned,
}

impl DeviceStatus {
    /// Every status.
    pub const ALL: [DeviceStatus; 5] = [
        DeviceStatus::PendingProvisioning,
        DeviceStatus::FullyProvisioned,
        DeviceStatus::RequiresAction,
        DeviceStatus::WithWarnings,
        DeviceStatus::Decommissioned,
    ];

    /// The API and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::PendingProvisioning => "pending_provisioning",
            DeviceStatus::FullyProvisioned => "fully_provisioned",
            DeviceStatus::RequiresAction => "requires_action",
            DeviceStatus::WithWarnings => "with_warnings",
            DeviceStatus::Decommissioned => "decommissioned",
        }
    }

    /// A stored status; an unknown one is corrupt data, not bad input.
    fn stored(s: &str) -> Result<DeviceStatus, Error> {
        s.parse()
            .map_err(|_| Error::Internal(format!("stored device status {s:?} is unknown")))
    }
}

impl fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<DeviceStatus, Error> {
        DeviceStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::invalid("invalid-status", format!("unknown device status {s:?}")))
    }
}

/// A device.
#[derive(Clone, Debug)]
pub struct Device {
    /// Stable id: the CSR's CN by default, or chosen at pre-registration.
    pub id: String,
    /// The RA it enrols through.
    pub ra_id: String,
    /// A display name.
    pub alias: Option<String>,
    /// Labels for filtering and groups.
    pub tags: Vec<String>,
    /// Free-form attributes (a JSON object).
    pub metadata: Map<String, Value>,
    /// Derived status.
    pub status: DeviceStatus,
    /// Registration time, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

/// A device with its slots and its most recent log entries.
#[derive(Clone, Debug)]
pub struct DeviceDetail {
    /// The device.
    pub device: Device,
    /// One per CA it holds a certificate from.
    pub slots: Vec<Slot>,
    /// Newest first.
    pub log: Vec<DeviceLogEntry>,
}

/// An identity slot: the device's certificates from one CA.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The slot id: the CA id.
    pub ca_id: String,
    /// The current certificate.
    pub active: Option<SlotCertificate>,
    /// Every certificate issued into the slot, oldest first.
    pub history: Vec<SlotCertificate>,
}

/// A certificate issued into a slot.
#[derive(Clone, Debug)]
pub struct SlotCertificate {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Status as of the last sweep or revocation (the one the device status derives from).
    pub status: Status,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// When it was issued into the slot.
    pub issued_at: i64,
    /// A re-enrolment rather than a first enrolment.
    pub reenrollment: bool,
}

/// One entry of a device's log.
#[derive(Clone, Debug)]
pub struct DeviceLogEntry {
    /// Unix seconds.
    pub time: i64,
    /// `registered`, `enrolled`, `reenrolled`, `status_changed`, `certificate_revoked`, `updated`,
    /// `secret_set` or `decommissioned`.
    pub kind: String,
    /// What happened, for people.
    pub message: String,
    /// Details: the data of the event written with the entry.
    pub data: Value,
}

/// A device to pre-register.
#[derive(Clone, Debug, Default)]
pub struct NewDevice {
    /// The id the device will enrol with (its CSR's CN by default).
    pub id: String,
    /// The RA it will enrol through; must exist.
    pub ra_id: String,
    /// A display name.
    pub alias: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// Attributes (a JSON object).
    pub metadata: Map<String, Value>,
}

/// Changes to a device; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct DeviceUpdate {
    /// A new alias; `Some(None)` clears it.
    pub alias: Option<Option<String>>,
    /// New tags (replacing the old).
    pub tags: Option<Vec<String>>,
    /// New metadata (replacing the old).
    pub metadata: Option<Map<String, Value>>,
}

/// Device listing filters.
#[derive(Clone, Debug, Default)]
pub struct DeviceQuery {
    /// Registered by this RA.
    pub ra_id: Option<String>,
    /// In this status.
    pub status: Option<DeviceStatus>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<i64>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<i64>,
}

/// Most entries of a device's log shown with it.
const LOG_ENTRIES: i64 = 100;
/// Bounds on what operators may store per device.
const MAX_ID: usize = 128;
const MAX_TAGS: usize = 32;
const MAX_TAG: usize = 64;
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The stored form of a one-time enrolment secret: SHA-256 of its text, which is what EST hashes from the
/// secret a device presents.
fn enrollment_secret_sha256(secret: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// The device registry and its saved groups.
#[derive(Debug)]
pub struct Devices {
    reg: Arc<Registry>,
    issuance: Arc<Issuance>,
    enrollment: Arc<Enrollment>,
}

impl Devices {
    pub(crate) fn new(
        reg: Arc<Registry>,
        issuance: Arc<Issuance>,
        enrollment: Arc<Enrollment>,
    ) -> Devices {
        Devices {
            reg,
            issuance,
            enrollment,
        }
    }

    /// Pre-registers a device for an existing RA (`pending_provisioning` until it enrols).
    pub async fn register_device(
        &self,
        actor: &AuditContext,
        input: NewDevice,
    ) -> Result<Device, Error> {
        check_id(&input.id)?;
        let tags = check_tags(input.tags)?;
        let metadata = check_metadata(&input.metadata)?;
        self.enrollment.ra(&input.ra_id).await?;
        let now = self.reg.clock.now();
        let row = DeviceRow {
            seq: 0,
            id: input.id,
            ra_id: input.ra_id,
            alias: check_alias(input.alias.filter(|a| !a.is_empty()))?,
            tags,
            metadata,
            status: DeviceStatus::PendingProvisioning.as_str().to_string(),
            created_at: now,
            updated_at: now,
        };
        let ev = device_event(
            EventKind::DeviceRegistered,
            &row.id,
            now,
            json!({"device_id": row.id, "ra_id": row.ra_id, "alias": row.alias, "tags": row.tags,
                   "metadata": input.metadata}),
        );
        self.reg
            .store
            .insert_device(&row, &ev, &AuditAction::DeviceRegister.by(actor))
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict { .. } => Error::conflict(
                    "device-exists",
                    format!("device {} is already registered", row.id),
                ),
                other => store_err("device")(other),
            })?;
        device_from_row(row)
    }

    /// Sets a new one-time enrolment secret (replacing an unused one) and returns it. It is shown this once:
    /// only its SHA-256 is stored, and the device's first enrolment that presents it consumes it.
    pub async fn set_enrollment_secret(
        &self,
        actor: &AuditContext,
        device_id: &str,
    ) -> Result<String, Error> {
        let secret = base64url(&rand::random::<[u8; 32]>());
        let now = self.reg.clock.now();
        let ev = device_event(
            EventKind::DeviceEnrollmentSecretSet,
            device_id,
            now,
            json!({"device_id": device_id}),
        );
        self.reg
            .store
            .set_device_secret(
                device_id,
                &enrollment_secret_sha256(&secret),
                now,
                &ev,
                &AuditAction::DeviceEnrollmentSecret.by(actor),
            )
            .await
            .map_err(device_err(device_id))?;
        Ok(secret)
    }

    /// Lists devices newest first, one page at a time.
    pub async fn list(&self, q: DeviceQuery) -> Result<Page<Device>, Error> {
        let filter = DeviceFilter {
            ra_id: q.ra_id,
            status: q.status.map(|s| s.as_str().to_string()),
            tags: q.tag.into_iter().collect(),
            metadata: Vec::new(),
            before_seq: q.cursor,
            limit: q.limit.unwrap_or(100),
        };
        let page = self
            .reg
            .store
            .list_devices(&filter)
            .await
            .map_err(store_err("devices"))?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(device_from_row)
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// A device with its slots (active certificate and history) and its latest log entries.
    pub async fn device(&self, id: &str) -> Result<DeviceDetail, Error> {
        let what = || format!("device {id}");
        let row = self
            .reg
            .store
            .get_device(id)
            .await
            .map_err(store_err(what()))?;
        let slots = self
            .reg
            .store
            .device_slots(id)
            .await
            .map_err(store_err(what()))?;
        let certs = self
            .reg
            .store
            .device_certificates(id)
            .await
            .map_err(store_err(what()))?;
        let log = self
            .reg
            .store
            .device_log(id, LOG_ENTRIES)
            .await
            .map_err(store_err(what()))?;
        let slots = slots
            .into_iter()
            .map(|slot| {
                let history = certs
                    .iter()
                    .filter(|c| c.ca_id == slot.ca_id)
                    .map(|c| {
                        Ok(SlotCertificate {
                            serial: c.serial.clone(),
                            status: stored_status(&c.status)?,
                            not_after: c.not_after,
                            issued_at: c.issued_at,
                            reenrollment: c.kind == "reenroll",
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                let active = history
                    .iter()
                    .find(|c| c.serial == slot.active_serial)
                    .cloned();
                Ok(Slot {
                    ca_id: slot.ca_id,
                    active,
                    history,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let log = log
            .into_iter()
            .map(|l| {
                Ok(DeviceLogEntry {
                    data: serde_json::from_str(&l.data).map_err(|_| {
                        Error::Internal(format!("stored log entry {} is not JSON", l.seq))
                    })?,
                    time: l.time,
                    kind: l.kind,
                    message: l.message,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(DeviceDetail {
            device: device_from_row(row)?,
            slots,
            log,
        })
    }

    /// Changes a device's alias, tags or metadata.
    pub async fn update_device(
        &self,
        actor: &AuditContext,
        id: &str,
        update: DeviceUpdate,
    ) -> Result<Device, Error> {
        let tags = update.tags.map(check_tags).transpose()?;
        let metadata = update.metadata.as_ref().map(check_metadata).transpose()?;
        let alias = update
            .alias
            .map(|a| check_alias(a.filter(|a| !a.is_empty())))
            .transpose()?;
        let now = self.reg.clock.now();
        let mut data = json!({"device_id": id});
        if let Some(a) = &alias {
            data["alias"] = json!(a);
        }
        if let Some(t) = &tags {
            data["tags"] = json!(t);
        }
        if let Some(m) = &update.metadata {
            data["metadata"] = Value::Object(m.clone());
        }
        let ev = device_event(EventKind::DeviceUpdated, id, now, data);
        let changes = DeviceChanges {
            alias,
            tags,
            metadata,
        };
        let row = self
            .reg
            .store
            .update_device(id, &changes, now, &ev, &AuditAction::DeviceUpdate.by(actor))
            .await
            .map_err(store_err(format!("device {id}")))?;
        device_from_row(row)
    }

    /// Retires a device: revokes every unexpired, unrevoked certificate it ever held, the slots' active ones
    /// and those a re-enrolment superseded without revoking (reason `cessation_of_operation`, through
    /// [`Issuance::revoke`], so OCSP stops saying `good` at once), then marks it decommissioned. Terminal: a
    /// second call is a conflict.
    pub async fn decommission_device(
        &self,
        actor: &AuditContext,
        id: &str,
    ) -> Result<Device, Error> {
        let device = self
            .reg
            .store
            .get_device(id)
            .await
            .map_err(device_err(id))?;
        if device.status == DeviceStatus::Decommissioned.as_str() {
            return Err(decommissioned(id));
        }
        let certificates = self
            .reg
            .store
            .device_certificates(id)
            .await
            .map_err(device_err(id))?;
        let now = self.reg.clock.now();
        for cert in certificates {
            // The stored status of an expired certificate may lag the sweep: notAfter decides.
            if cert.status == Status::Revoked.as_str() || cert.not_after <= now {
                continue;
            }
            let serial: Serial = cert
                .serial
                .parse()
                .map_err(|_| Error::Internal(format!("stored serial of device {id}")))?;
            match self
                .issuance
                .revoke(
                    actor,
                    &cert.ca_id,
                    &serial,
                    RevocationReason::CessationOfOperation,
                    None,
                )
                .await
            {
                Ok(_)
                | Err(Error::Conflict {
                    code: "already-revoked",
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        let ev = device_event(
            EventKind::DeviceDecommissioned,
            id,
            now,
            json!({"device_id": id}),
        );
        self.reg
            .store
            .decommission_device(id, now, &ev, &AuditAction::DeviceDecommission.by(actor))
            .await
            .map_err(device_err(id))?;
        let row = self
            .reg
            .store
            .get_device(id)
            .await
            .map_err(device_err(id))?;
        device_from_row(row)
    }
}

fn device_event(ty: EventKind, device_id: &str, time: i64, data: Value) -> shedu_store::NewEvent {
    event(ty, format!("devices/{device_id}"), time, data)
}

fn device_from_row(r: DeviceRow) -> Result<Device, Error> {
    let metadata = match serde_json::from_str(&r.metadata) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(Error::Internal(format!(
                "stored metadata of device {} is not a JSON object",
                r.id
            )));
        }
    };
    Ok(Device {
        status: DeviceStatus::stored(&r.status)?,
        id: r.id,
        ra_id: r.ra_id,
        alias: r.alias,
        tags: r.tags,
        metadata,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn stored_status(s: &str) -> Result<Status, Error> {
    s.parse()
        .map_err(|_| Error::Internal(format!("stored certificate status {s:?} is unknown")))
}

fn decommissioned(id: &str) -> Error {
    Error::conflict(
        "device-decommissioned",
        format!("device {id} is decommissioned"),
    )
}

/// Maps a store error of a device operation, naming the device.
fn device_err(id: &str) -> impl FnOnce(shedu_store::Error) -> Error {
    let id = id.to_string();
    move |e| match e {
        shedu_store::Error::Conflict {
            constraint: Some(c),
        } if c == DEVICE_DECOMMISSIONED => decommissioned(&id),
        shedu_store::Error::Conflict {
            constraint: Some(c),
        } if c == DEVICE_LIVE_CERTIFICATES => Error::conflict(
            "device-busy",
            format!("device {id} enrolled meanwhile; decommission it again"),
        ),
        other => store_err(format!("device {id}"))(other),
    }
}

/// An alias is a display name (see `model::check_name`).
fn check_alias(alias: Option<String>) -> Result<Option<String>, Error> {
    if let Some(a) = &alias {
        crate::model::check_name(a)?;
    }
    Ok(alias)
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty()
        || id.chars().count() > MAX_ID
        || id.trim() != id
        || id.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "invalid-device-id",
            format!(
                "a device id is 1 to {MAX_ID} characters, no control characters, no outer spaces"
            ),
        ));
    }
    Ok(())
}

/// Tags: letters, digits and `-_.:=/@`, 1 to 64 each, at most 32; duplicates dropped, order kept.
pub(crate) fn check_tags(tags: Vec<String>) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let ok = !tag.is_empty()
            && tag.len() <= MAX_TAG
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:=/@".contains(c));
        if !ok {
            return Err(Error::invalid(
                "invalid-tag",
                format!("tag {tag:?}: 1 to {MAX_TAG} of letters, digits and -_.:=/@"),
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(Error::invalid(
            "invalid-tag",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    Ok(out)
}

fn check_metadata(metadata: &Map<String, Value>) -> Result<String, Error> {
    let text = Value::Object(metadata.clone()).to_string();
    if text.len() > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            "invalid-metadata",
            format!("metadata is at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    Ok(text)
}

/// Base64url without padding (RFC 4648 §5), for secrets typed into device configurations.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_follows_rfc_4648() {
        let vectors: [(&[u8], &str); 8] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff], "-_8"),
        ];
        for (input, expected) in vectors {
            assert_eq!(base64url(input), expected);
        }
        assert_eq!(base64url(&[0u8; 32]).len(), 43);
    }

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_refused() {
        for s in DeviceStatus::ALL {
            assert_eq!(s.as_str().parse::<DeviceStatus>().ok(), Some(s));
        }
        assert!(matches!(
            "sleepy".parse::<DeviceStatus>(),
            Err(Error::Invalid {
                code: "invalid-status",
                ..
            })
        ));
        assert!(matches!(
            DeviceStatus::stored("sleepy"),
            Err(Error::Internal(_))
        ));
    }

    #[test]
    fn tags_are_checked_and_deduplicated() {
        let tags = |v: &[&str]| check_tags(v.iter().map(|t| t.to_string()).collect());
        assert_eq!(
            tags(&["line-a", "site=berlin", "line-a"]).ok(),
            Some(vec!["line-a".to_string(), "site=berlin".to_string()])
        );
        for bad in ["", "a,b", "with space", &"x".repeat(65)] {
            assert!(tags(&[bad]).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        assert!(check_tags(many).is_err());
    }

    #[test]
    fn device_ids_refuse_control_characters_and_outer_spaces() {
        assert!(check_id("sensor-0042 (hall 3)").is_ok());
        for bad in ["", " x", "x ", "a\nb", &"d".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
