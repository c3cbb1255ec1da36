//! The JSON objects of RFC 8555 §7 (requests in, resources out), with the RFC 9773 (ARI) and profiles
//! extension members. Requests refuse what they cannot hold; unknown members are ignored as RFC 8555
//! §7.1 asks of servers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The directory (RFC 8555 §7.1.1).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// newNonce URL.
    pub new_nonce: String,
    /// newAccount URL.
    pub new_account: String,
    /// newOrder URL.
    pub new_order: String,
    /// revokeCert URL.
    pub revoke_cert: String,
    /// keyChange URL.
    pub key_change: String,
    /// renewalInfo URL (RFC 9773).
    pub renewal_info: String,
    /// Metadata.
    pub meta: DirectoryMeta,
}

/// The directory's `meta`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// Whether newAccount needs an external account binding.
    pub external_account_required: bool,
    /// Terms of service URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// Profile names and descriptions.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub profiles: serde_json::Map<String, Value>,
}

/// newAccount (RFC 8555 §7.3).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    /// `mailto:` URLs.
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    /// Agreement to the terms.
    #[serde(default)]
    pub terms_of_service_agreed: Option<bool>,
    /// Only look the account up.
    #[serde(default)]
    pub only_return_existing: Option<bool>,
    /// The EAB inner JWS.
    #[serde(default)]
    pub external_account_binding: Option<Value>,
}

/// An account update (RFC 8555 §7.3.2, §7.3.6).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdate {
    /// New contacts.
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    /// `deactivated` to deactivate.
    #[serde(default)]
    pub status: Option<String>,
}

/// An identifier (RFC 8555 §9.7.7: `dns`; RFC 8738: `ip`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The name or address.
    pub value: String,
}

/// newOrder (RFC 8555 §7.4).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    /// The identifiers.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore (RFC 3339); refused here.
    #[serde(default)]
    pub not_before: Option<String>,
    /// Requested notAfter (RFC 3339); refused here.
    #[serde(default)]
    pub not_after: Option<String>,
    /// The profile (profiles extension).
    #[serde(default)]
    pub profile: Option<String>,
    /// The certificate this order replaces (RFC 9773 §5), as its ARI identifier.
    #[serde(default)]
    pub replaces: Option<String>,
}

/// finalize (RFC 8555 §7.4).
#[derive(Clone, Debug, Deserialize)]
pub struct Finalize {
    /// The CSR, base64url DER.
    pub csr: String,
}

/// revokeCert (RFC 8555 §7.6).
#[derive(Clone, Debug, Deserialize)]
pub struct Revocation {
    /// The certificate, base64url DER.
    pub certificate: String,
    /// RFC 5280 reason code.
    #[serde(default)]
    pub reason: Option<u8>,
}

/// The inner payload of keyChange (RFC 8555 §7.3.5).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChange {
    /// The account URL.
    pub account: String,
    /// The old key.
    pub old_key: Value,
}

/// An account resource.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// Contacts.
    pub contact: Vec<String>,
    /// Orders list URL.
    pub orders: String,
    /// The EAB, when one was used (RFC 8555 §7.3.4 asks for it to be returned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<Value>,
}

/// An order resource.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// `pending`, `ready`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// RFC 3339 expiry.
    pub expires: String,
    /// Identifiers.
    pub identifiers: Vec<Identifier>,
    /// Authorization URLs.
    pub authorizations: Vec<String>,
    /// Finalize URL.
    pub finalize: String,
    /// Certificate URL once valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The replaced certificate's identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Why the order is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// An authorization resource.
#[derive(Clone, Debug, Serialize)]
pub struct Authorization {
    /// The identifier (without `*.`).
    pub identifier: Identifier,
    /// `pending`, `valid`, `invalid`, `deactivated`, `expired` or `revoked`.
    pub status: String,
    /// RFC 3339 expiry.
    pub expires: String,
    /// Challenges.
    pub challenges: Vec<Challenge>,
    /// Whether the order asked for `*.` + identifier.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wildcard: bool,
}

/// A challenge resource.
#[derive(Clone, Debug, Serialize)]
pub struct Challenge {
    /// `http-01`, `dns-01` or `tls-alpn-01`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its URL.
    pub url: String,
    /// `pending`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// The token.
    pub token: String,
    /// RFC 3339 validation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    /// Why validation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// Renewal information (RFC 9773 §4.2).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfo {
    /// The window.
    pub suggested_window: Window,
}

/// A suggested renewal window.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    /// RFC 3339 start.
    pub start: String,
    /// RFC 3339 end.
    pub end: String,
}

/// A problem document (RFC 7807) as ACME uses it (RFC 8555 §6.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `urn:ietf:params:acme:error:…`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What went wrong.
    pub detail: String,
    /// The HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The identifier a subproblem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Subproblems of a `compound` problem.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Problem>,
}

/// RFC 3339 UTC time from Unix seconds (`1970-01-01T00:00:00Z`), as ACME timestamps are written.
pub fn rfc3339(unix: i64) -> String {
    // Civil-from-days (H. Hinnant's algorithm), valid for every i64 second count we store.
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_515_199), "2026-12-05T23:59:59Z");
    }

    #[test]
    fn requests_parse_and_refuse() {
        let o: NewOrder = serde_json::from_str(
            r#"{"identifiers":[{"type":"dns","value":"a.test"}],"profile":"short","extra":1}"#,
        )
        .unwrap();
        assert_eq!(o.identifiers[0].value, "a.test");
        assert_eq!(o.profile.as_deref(), Some("short"));
        assert!(serde_json::from_str::<NewOrder>(r#"{"identifiers":"x"}"#).is_err());
        assert!(
            serde_json::from_str::<Revocation>(r#"{"certificate":"AA","reason":300}"#).is_err()
        );
    }
}
