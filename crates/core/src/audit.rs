//! The audit log and its vocabulary. Every service method that changes something somebody asked for takes
//! the acting principal (an [`AuditContext`]) as an explicit argument and names its [`AuditAction`]; storage
//! appends the record inside the change's own transaction. The gateway records requests that changed
//! nothing (refused, failed, logins) through [`Audit::record`]. Records are hash-chained; [`Audit::verify`]
//! finds the first tampered one.

use std::fmt;
use std::sync::Arc;

use shedu_store::Audited;
pub use shedu_store::audit::{
    AuditContext, AuditEntry, AuditFilter, AuditRecord, AuditVerdict, ChainBreak, Outcome,
};

/// Every action the audit log names, with its wire name (`<noun>.<verb>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A CA was created.
    CaCreate,
    /// A CA was imported.
    CaImport,
    /// A certificate was issued from a CSR.
    CertificateIssue,
    /// A certificate was revoked.
    CertificateRevoke,
    /// An RA was created.
    RaCreate,
    /// An RA was replaced.
    RaUpdate,
    /// An RA was deleted.
    RaDelete,
    /// A device was pre-registered.
    DeviceRegister,
    /// A device was edited.
    DeviceUpdate,
    /// A device's one-time enrolment secret was set.
    DeviceEnrollmentSecret,
    /// A device was decommissioned.
    DeviceDecommission,
    /// A device enrolled or re-enrolled over EST.
    DeviceEnroll,
    /// A device group was created.
    GroupCreate,
    /// A device group was deleted.
    GroupDelete,
    /// A local user was created.
    UserCreate,
    /// A user's password was changed.
    UserPassword,
    /// A user was disabled.
    UserDisable,
    /// A disabled user was enabled again.
    UserEnable,
    /// A user was deleted.
    UserDelete,
    /// A user's role was changed.
    UserRole,
    /// An API key was created.
    ApiKeyCreate,
    /// An API key was revoked.
    ApiKeyRevoke,
    /// An alert subscription was created.
    SubscriptionCreate,
    /// An alert subscription was deleted.
    SubscriptionDelete,
    /// A dead delivery was queued again.
    DeliveryRetry,
    /// A login attempt (recorded by the gateway, success or failure).
    AuthLogin,
}

impl AuditAction {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::CaCreate => "ca.create",
            AuditAction::CaImport => "ca.import",
            AuditAction::CertificateIssue => "certificate.issue",
            AuditAction::CertificateRevoke => "certificate.revoke",
            AuditAction::RaCreate => "ra.create",
            AuditAction::RaUpdate => "ra.update",
            AuditAction::RaDelete => "ra.delete",
            AuditAction::DeviceRegister => "device.register",
            AuditAction::DeviceUpdate => "device.update",
            AuditAction::DeviceEnrollmentSecret => "device.enrollment_secret",
            AuditAction::DeviceDecommission => "device.decommission",
            AuditAction::DeviceEnroll => "device.enroll",
            AuditAction::GroupCreate => "group.create",
            AuditAction::GroupDelete => "group.delete",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserPassword => "user.password",
            AuditAction::UserDisable => "user.disable",
            AuditAction::UserEnable => "user.enable",
            AuditAction::UserDelete => "user.delete",
            AuditAction::UserRole => "user.role",
            AuditAction::ApiKeyCreate => "api_key.create",
            AuditAction::ApiKeyRevoke => "api_key.revoke",
            AuditAction::SubscriptionCreate => "subscription.create",
            AuditAction::SubscriptionDelete => "subscription.delete",
            AuditAction::DeliveryRetry => "delivery.retry",
            AuditAction::AuthLogin => "auth.login",
        }
    }

    /// The record `actor`'s change writes with itself, for storage.
    pub fn by(self, actor: &AuditContext) -> Audited<'_> {
        Audited {
            actor,
            action: self.as_str(),
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

use crate::error::store_err;
use crate::{Error, Page, Registry};

/// The audit log service.
#[derive(Debug)]
pub struct Audit {
    reg: Arc<Registry>,
}

impl Audit {
    pub(crate) fn new(reg: Arc<Registry>) -> Audit {
        Audit { reg }
    }

    /// Appends a record of a request that wrote nothing itself (refused, failed, or a login).
    pub async fn record(&self, entry: AuditEntry) -> Result<(), Error> {
        self.reg
            .store
            .append_audit(entry)
            .await
            .map_err(store_err("audit log"))
    }

    /// Records, newest first, filtered.
    pub async fn records(&self, filter: &AuditFilter) -> Result<Page<AuditRecord>, Error> {
        self.reg
            .store
            .audit_records(filter)
            .await
            .map_err(store_err("audit log"))
    }

    /// Checks the whole chain.
    pub async fn verify(&self) -> Result<AuditVerdict, Error> {
        self.reg
            .store
            .verify_audit_chain()
            .await
            .map_err(store_err("audit log"))
    }
}
