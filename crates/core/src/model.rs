//! Domain types the services return. Edges render them; they are not `Serialize`.

use std::fmt;
use std::str::FromStr;

use shedu_pki::{KeyType, Profile, RevocationReason, Serial};

use crate::Error;

/// The lifecycle status of a certificate or CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Valid and not near its end.
    Active,
    /// Valid, inside its CA's expiry warning window.
    AboutToExpire,
    /// Past notAfter.
    Expired,
    /// Revoked (terminal).
    Revoked,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 4] = [
        Status::Active,
        Status::AboutToExpire,
        Status::Expired,
        Status::Revoked,
    ];

    /// The API and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::AboutToExpire => "about_to_expire",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }

    /// The status as of `now`: the stored status refined by time, so a read is exact even between two
    /// runs of the lifecycle sweep (which is what moves the stored value and emits the events).
    pub fn effective(self, now: i64, not_after: i64, warning_secs: i64) -> Status {
        match self {
            Status::Active | Status::AboutToExpire if not_after <= now => Status::Expired,
            Status::Active if not_after <= now + warning_secs => Status::AboutToExpire,
            s => s,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;

    fn from_str(s: &str) -> Result<Status, Error> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::invalid("invalid-status", format!("unknown status {s:?}")))
    }
}

/// How a CA came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaKind {
    /// Self-signed, created here.
    Root,
    /// Signed by another managed CA, created here.
    Intermediate,
    /// Imported with its private key: it can issue.
    Imported,
    /// Imported without a key: its certificates are tracked, it cannot issue.
    External,
}

impl CaKind {
    /// The API and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaKind::Root => "root",
            CaKind::Intermediate => "intermediate",
            CaKind::Imported => "imported",
            CaKind::External => "external",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<CaKind, Error> {
        [
            CaKind::Root,
            CaKind::Intermediate,
            CaKind::Imported,
            CaKind::External,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| Error::Internal(format!("stored CA kind {s:?} is unknown")))
    }
}

/// A certificate authority.
#[derive(Clone, Debug)]
pub struct Ca {
    /// Stable id (32 hex digits).
    pub id: String,
    /// Unique display name.
    pub name: String,
    /// Root, intermediate, imported or external.
    pub kind: CaKind,
    /// The managed CA that signed this one, if known.
    pub parent_id: Option<String>,
    /// The CA key's type.
    pub key_type: KeyType,
    /// The key engine holding the key, or `None` when shedu holds no key.
    pub engine: Option<crate::EngineKind>,
    /// Where the key is, never the key: the token label for `pkcs11`, `sealed` for `software`.
    pub key_handle: Option<String>,
    /// The CA certificate, DER.
    pub certificate_der: Vec<u8>,
    /// One-line subject.
    pub subject: String,
    /// The CA certificate's serial.
    pub serial: String,
    /// SHA-256 fingerprint of the CA certificate.
    pub fingerprint: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Status as of the read.
    pub status: Status,
    /// The issuance profile.
    pub profile: Profile,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl Ca {
    /// Whether this CA can sign.
    pub fn can_issue(&self) -> bool {
        self.engine.is_some()
    }
}

/// An issued or tracked certificate.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// Insertion sequence (the listing cursor).
    pub seq: i64,
    /// Issuer CA id.
    pub ca_id: String,
    /// Serial, lowercase hex.
    pub serial: Serial,
    /// SHA-256 fingerprint, lowercase hex.
    pub fingerprint: String,
    /// One-line subject.
    pub subject: String,
    /// Rendered SANs.
    pub sans: Vec<String>,
    /// Subject key type.
    pub key_type: KeyType,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// DER.
    pub der: Vec<u8>,
    /// Status as of the read.
    pub status: Status,
    /// When revoked.
    pub revoked_at: Option<i64>,
    /// Why revoked.
    pub revocation_reason: Option<RevocationReason>,
    /// Insert time.
    pub created_at: i64,
}

/// The rule for every display name people give (CA, RA, device group, API key, device alias): 1 to 128
/// characters, not only spaces, and no control characters. A name ends up in terminals, logs and
/// certificates' neighbours; an escape sequence in one (`ESC]0;…BEL`) rewrites a terminal that lists it.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid-name",
            "a name is 1 to 128 characters, without control characters",
        ));
    }
    Ok(())
}
