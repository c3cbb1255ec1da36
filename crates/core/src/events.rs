//! CloudEvents 1.0 events: the vocabulary of event types, the builder every change uses (the event is
//! stored in the change's own transaction), and the read side of the outbox.

use std::fmt;
use std::sync::Arc;

use shedu_store::{EventWords, NewEvent};

use crate::error::store_err;
use crate::{Error, Registry};

/// The CloudEvents `source` of every event this platform emits.
pub const EVENT_SOURCE: &str = "/shedu";

/// Every event type a service builds, with its wire name (the CloudEvents `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A CA was created (root or intermediate).
    CaCreated,
    /// A CA was imported (with or without its key).
    CaImported,
    /// A CA's issuance profile or validation settings were changed.
    CaUpdated,
    /// A certificate was issued.
    CertificateIssued,
    /// A certificate was revoked.
    CertificateRevoked,
    /// An RA was created.
    RaCreated,
    /// An RA's settings were replaced.
    RaUpdated,
    /// An RA was deleted.
    RaDeleted,
    /// A device was registered (by an operator or by its first enrolment).
    DeviceRegistered,
    /// A device's one-time enrolment secret was set.
    DeviceEnrollmentSecretSet,
    /// A device was edited.
    DeviceUpdated,
    /// A device was decommissioned.
    DeviceDecommissioned,
    /// A device group was created.
    DeviceGroupCreated,
    /// A device group was deleted.
    DeviceGroupDeleted,
    /// A certificate's stored status moved (lifecycle sweep).
    CertificateStatusChanged,
    /// A CA's stored status moved (lifecycle sweep).
    CaStatusChanged,
    /// A device's derived status moved.
    DeviceStatusChanged,
    /// A device enrolled for the first time in a slot.
    DeviceEnrolled,
    /// A device re-enrolled.
    DeviceReenrolled,
    /// A certificate entered an expiry reminder window.
    CertificateExpiryReminder,
    /// A checkpoint of the audit chain's head (seq, value, time, tag under the audit key), published
    /// outside the audit table so that a cut tail shows.
    AuditCheckpoint,
    /// The connector issued a one-time pairing token (never in the event: its client identity only).
    ConnectorTokenIssued,
    /// The connector issued a client certificate for a paired application or runtime.
    ConnectorCertificateIssued,
    /// The connector renewed a client certificate over mTLS.
    ConnectorCertificateRenewed,
    /// A connector certificate was revoked (by its holder over mTLS, or by an operator by fingerprint).
    ConnectorCertificateRevoked,
    /// A KMIP managed object was created or registered (its uid, type, state; never key material).
    KmipObjectCreated,
    /// A KMIP managed object changed lifecycle state (activated, revoked, destroyed, re-keyed).
    KmipObjectStateChanged,
    /// A rotation installed a certificate and validation on the wire held.
    RotationSucceeded,
    /// A rotation failed (the new certificate, if any, is revoked); sent once per back-off period.
    RotationFailed,
    /// The scheduler passed over a due asset (`skip_reason`, such as `no_route`).
    RotationSkipped,
    /// An ACME account was created (its id, RA, key thumbprint and EAB kid; never contacts or keys).
    AcmeAccountCreated,
    /// An ACME account's contacts or key changed (`change`: `contact` or `key`).
    AcmeAccountUpdated,
    /// An ACME account was deactivated by its holder.
    AcmeAccountDeactivated,
    /// An ACME order became invalid (a failed validation: the problem type and identifier).
    AcmeOrderInvalid,
    /// A cloud connector was created (its id, name, type, region and CAs; never its credentials).
    CloudConnectorCreated,
    /// A cloud connector's settings were replaced.
    CloudConnectorUpdated,
    /// A cloud connector is gone (deleted, or done taking back what it registered).
    CloudConnectorDeleted,
    /// A sync item of a cloud connector failed: once per run of failures (its first failed attempt), with
    /// the error and the next attempt.
    CloudSyncFailed,
}

impl EventKind {
    /// Every kind, for tests and documentation.
    pub const ALL: [EventKind; 38] = [
        EventKind::CaCreated,
        EventKind::CaImported,
        EventKind::CaUpdated,
        EventKind::CertificateIssued,
        EventKind::CertificateRevoked,
        EventKind::RaCreated,
        EventKind::RaUpdated,
        EventKind::RaDeleted,
        EventKind::DeviceRegistered,
        EventKind::DeviceEnrollmentSecretSet,
        EventKind::DeviceUpdated,
        EventKind::DeviceDecommissioned,
        EventKind::DeviceGroupCreated,
        EventKind::DeviceGroupDeleted,
        EventKind::CertificateStatusChanged,
        EventKind::CaStatusChanged,
        EventKind::DeviceStatusChanged,
        EventKind::DeviceEnrolled,
        EventKind::DeviceReenrolled,
        EventKind::CertificateExpiryReminder,
        EventKind::AuditCheckpoint,
        EventKind::ConnectorTokenIssued,
        EventKind::ConnectorCertificateIssued,
        EventKind::ConnectorCertificateRenewed,
        EventKind::ConnectorCertificateRevoked,
        EventKind::KmipObjectCreated,
        EventKind::KmipObjectStateChanged,
        EventKind::RotationSucceeded,
        EventKind::RotationFailed,
        EventKind::RotationSkipped,
        EventKind::AcmeAccountCreated,
        EventKind::AcmeAccountUpdated,
        EventKind::AcmeAccountDeactivated,
        EventKind::AcmeOrderInvalid,
        EventKind::CloudConnectorCreated,
        EventKind::CloudConnectorUpdated,
        EventKind::CloudConnectorDeleted,
        EventKind::CloudSyncFailed,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::CaCreated => "ca.created",
            EventKind::CaImported => "ca.imported",
            EventKind::CaUpdated => "ca.updated",
            EventKind::CertificateIssued => "certificate.issued",
            EventKind::CertificateRevoked => "certificate.revoked",
            EventKind::RaCreated => "ra.created",
            EventKind::RaUpdated => "ra.updated",
            EventKind::RaDeleted => "ra.deleted",
            EventKind::DeviceRegistered => "device.registered",
            EventKind::DeviceEnrollmentSecretSet => "device.enrollment_secret_set",
            EventKind::DeviceUpdated => "device.updated",
            EventKind::DeviceDecommissioned => "device.decommissioned",
            EventKind::DeviceGroupCreated => "device_group.created",
            EventKind::DeviceGroupDeleted => "device_group.deleted",
            EventKind::CertificateStatusChanged => "certificate.status_changed",
            EventKind::CaStatusChanged => "ca.status_changed",
            EventKind::DeviceStatusChanged => "device.status_changed",
            EventKind::DeviceEnrolled => "device.enrolled",
            EventKind::DeviceReenrolled => "device.reenrolled",
            EventKind::CertificateExpiryReminder => "certificate.expiry_reminder",
            EventKind::AuditCheckpoint => "audit.checkpoint",
            EventKind::ConnectorTokenIssued => "connector.token_issued",
            EventKind::ConnectorCertificateIssued => "connector.certificate_issued",
            EventKind::ConnectorCertificateRenewed => "connector.certificate_renewed",
            EventKind::ConnectorCertificateRevoked => "connector.certificate_revoked",
            EventKind::KmipObjectCreated => "kmip.object_created",
            EventKind::KmipObjectStateChanged => "kmip.object_state_changed",
            EventKind::RotationSucceeded => "rotation.succeeded",
            EventKind::RotationFailed => "rotation.failed",
            EventKind::RotationSkipped => "rotation.skipped",
            EventKind::AcmeAccountCreated => "acme.account_created",
            EventKind::AcmeAccountUpdated => "acme.account_updated",
            EventKind::AcmeAccountDeactivated => "acme.account_deactivated",
            EventKind::AcmeOrderInvalid => "acme.order_invalid",
            EventKind::CloudConnectorCreated => "cloud_connector.created",
            EventKind::CloudConnectorUpdated => "cloud_connector.updated",
            EventKind::CloudConnectorDeleted => "cloud_connector.deleted",
            EventKind::CloudSyncFailed => "cloud_connector.sync_failed",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wire name of every event type, for what checks names against them (alert subscriptions).
pub static EVENT_TYPES: [&str; EventKind::ALL.len()] = {
    let mut out = [""; EventKind::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = EventKind::ALL[i].as_str();
        i += 1;
    }
    out
};

/// The words storage writes into the events it derives itself: hand this to `Store::connect`.
pub static EVENT_WORDS: EventWords = EventWords {
    source: EVENT_SOURCE,
    certificate_status_changed: EventKind::CertificateStatusChanged.as_str(),
    ca_status_changed: EventKind::CaStatusChanged.as_str(),
    device_status_changed: EventKind::DeviceStatusChanged.as_str(),
    device_registered: EventKind::DeviceRegistered.as_str(),
    device_enrolled: EventKind::DeviceEnrolled.as_str(),
    device_reenrolled: EventKind::DeviceReenrolled.as_str(),
    certificate_revoked: EventKind::CertificateRevoked.as_str(),
    certificate_expiry_reminder: EventKind::CertificateExpiryReminder.as_str(),
};

/// Builds an event with a fresh id.
pub(crate) fn event(
    kind: EventKind,
    subject: String,
    time: i64,
    data: serde_json::Value,
) -> NewEvent {
    NewEvent {
        id: shedu_store::ordered_id(),
        source: EVENT_SOURCE.to_string(),
        ty: kind.as_str().to_string(),
        subject,
        time,
        data: data.to_string(),
    }
}

/// The read side of the events outbox (delivery itself is `shedu-events`).
#[derive(Debug)]
pub struct Events {
    reg: Arc<Registry>,
}

impl Events {
    pub(crate) fn new(reg: Arc<Registry>) -> Events {
        Events { reg }
    }

    /// Outbox events after position `after_seq`, oldest first, optionally of one type and subject text.
    pub async fn list(
        &self,
        after_seq: i64,
        ty: Option<&str>,
        subject_contains: Option<&str>,
        limit: i64,
    ) -> Result<Vec<shedu_store::EventRow>, Error> {
        self.reg
            .store
            .list_events(after_seq, ty, subject_contains, limit)
            .await
            .map_err(store_err("events"))
    }

    /// The events `f` selects, oldest first; with `newest`, the last of them: what a live view shows
    /// before it follows the stream, read from the end of the outbox whatever its size.
    pub async fn read(
        &self,
        f: &shedu_store::EventFilter<'_>,
    ) -> Result<Vec<shedu_store::EventRow>, Error> {
        self.reg.store.events(f).await.map_err(store_err("events"))
    }
}
