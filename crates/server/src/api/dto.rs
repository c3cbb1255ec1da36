//! Wire types of the REST API. Core types are not `Serialize`; these are, and they are converted here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shedu_core::{Ca, Certificate, NamePolicyInput, ProfileInput, VaInput};
use shedu_pki::{AttrRule, SubjectName};
use utoipa::{IntoParams, ToSchema};

use super::time_fmt::rfc3339;

/// A subject distinguished name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectDto {
    /// CN (required).
    pub common_name: String,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    /// Two-letter country code.
    pub country: Option<String>,
    pub state: Option<String>,
    pub locality: Option<String>,
}

impl From<SubjectDto> for SubjectName {
    fn from(s: SubjectDto) -> SubjectName {
        SubjectName {
            common_name: s.common_name,
            organization: s.organization,
            organizational_unit: s.organizational_unit,
            country: s.country,
            state: s.state,
            locality: s.locality,
        }
    }
}

/// Issuance profile settings; omitted fields take the defaults (365 days, digital_signature +
/// key_encipherment, server_auth + client_auth, every key type, 30-day warning).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileRequest {
    pub default_validity_days: Option<u32>,
    /// `digital_signature`, `content_commitment`, `key_encipherment`, `data_encipherment`, `key_agreement`,
    /// `key_cert_sign`, `crl_sign`.
    pub key_usages: Option<Vec<String>>,
    /// `server_auth`, `client_auth`, `code_signing`, `email_protection`, `time_stamping`, `ocsp_signing`.
    pub ext_key_usages: Option<Vec<String>>,
    /// `ec-p256`, `ec-p384`, `rsa-2048`, `rsa-3072`, `rsa-4096`, `ed25519`.
    pub allowed_key_types: Option<Vec<String>>,
    /// About-to-expire threshold, days.
    pub expiry_warning_days: Option<u32>,
    /// `delegated` (default: a responder certificate signs OCSP answers) or `ca` (the CA key signs them).
    pub ocsp_signing: Option<String>,
    /// Write AIA (OCSP URL and caIssuers) into issued certificates (default true).
    pub aia: Option<bool>,
    /// Write a CRL distribution point into issued certificates (default true).
    pub crl_distribution_point: Option<bool>,
    /// Number of CRL partitions (default 1); fixed at creation.
    pub crl_shards: Option<u32>,
    /// Which subject attributes of a CSR reach the certificate: per attribute (`CN`, `O`, `OU`, `C`, `ST`,
    /// `L`, `serialNumber`, `DC`, `emailAddress`) `"allow"` (copied from the CSR, validated), `"drop"`, or
    /// `{"fixed": "value"}` (always this value). Attributes not listed are dropped. Default `{"CN": "allow"}`.
    pub subject_policy: Option<BTreeMap<String, SubjectRuleDto>>,
    /// The most SANs one certificate may carry (1 to 1000, default 100).
    pub max_sans: Option<u32>,
    /// The schemes a URI SAN may have (default `["https", "spiffe", "urn"]`).
    pub uri_schemes: Option<Vec<String>>,
}

/// What a profile does with one subject attribute of a CSR.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SubjectRuleDto {
    /// Copied from the CSR, validated.
    Allow,
    /// Left out.
    Drop,
    /// Always this value.
    Fixed(String),
}

impl From<SubjectRuleDto> for AttrRule {
    fn from(r: SubjectRuleDto) -> AttrRule {
        match r {
            SubjectRuleDto::Allow => AttrRule::Allow,
            SubjectRuleDto::Drop => AttrRule::Drop,
            SubjectRuleDto::Fixed(v) => AttrRule::Fixed(v),
        }
    }
}

impl From<&AttrRule> for SubjectRuleDto {
    fn from(r: &AttrRule) -> SubjectRuleDto {
        match r {
            AttrRule::Allow => SubjectRuleDto::Allow,
            AttrRule::Drop => SubjectRuleDto::Drop,
            AttrRule::Fixed(v) => SubjectRuleDto::Fixed(v.clone()),
        }
    }
}

impl ProfileRequest {
    pub(crate) fn va(&self) -> VaInput {
        VaInput {
            ocsp_signing: self.ocsp_signing.clone(),
            aia: self.aia,
            crl_distribution_point: self.crl_distribution_point,
            crl_shards: self.crl_shards,
        }
    }
}

impl From<ProfileRequest> for ProfileInput {
    fn from(p: ProfileRequest) -> ProfileInput {
        ProfileInput {
            default_validity_days: p.default_validity_days,
            key_usages: p.key_usages,
            ext_key_usages: p.ext_key_usages,
            allowed_key_types: p.allowed_key_types,
            expiry_warning_days: p.expiry_warning_days,
            names: NamePolicyInput {
                subject: p.subject_policy.map(|rules| {
                    rules
                        .into_iter()
                        .map(|(name, rule)| (name, rule.into()))
                        .collect()
                }),
                max_sans: p.max_sans,
                uri_schemes: p.uri_schemes,
            },
        }
    }
}

/// Create a root CA (no `parent_id`) or an intermediate under a managed CA.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCaRequest {
    pub name: String,
    /// `ec-p256`, `ec-p384`, `rsa-2048`, `rsa-3072`, `rsa-4096` or `ed25519`.
    pub key_type: String,
    pub subject: SubjectDto,
    /// Lifetime of the CA certificate (default: 3650 for roots, 1825 for intermediates, cut to the parent's end).
    pub validity_days: Option<u32>,
    pub parent_id: Option<String>,
    /// pathLenConstraint of the new CA certificate.
    pub path_len: Option<u8>,
    /// The key engine: `software` (sealed keystore) or `pkcs11` (HSM); the server's default when omitted.
    pub engine: Option<String>,
    pub profile: Option<ProfileRequest>,
}

/// Import an existing CA certificate, optionally with its private key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportCaRequest {
    pub name: String,
    pub certificate_pem: String,
    /// PKCS#8, SEC1 or PKCS#1 PEM. Without it the CA tracks certificates but cannot issue.
    pub private_key_pem: Option<String>,
    /// The engine the key goes into: `software` or `pkcs11` (created there as sensitive, non-extractable).
    pub engine: Option<String>,
    pub profile: Option<ProfileRequest>,
}

/// Changes to a CA: the profile settings given replace the current ones, the others stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateCaRequest {
    pub profile: ProfileRequest,
}

/// A CA's issuance profile.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProfileDto {
    pub default_validity_days: u32,
    pub key_usages: Vec<String>,
    pub ext_key_usages: Vec<String>,
    /// pathLenConstraint of this CA's own certificate; `null` when unconstrained.
    pub path_len: Option<u8>,
    pub allowed_key_types: Vec<String>,
    pub expiry_warning_days: u32,
    /// Per subject attribute: `"allow"`, `"drop"` or `{"fixed": "value"}`; attributes not listed are dropped.
    pub subject_policy: BTreeMap<String, SubjectRuleDto>,
    pub max_sans: u32,
    pub uri_schemes: Vec<String>,
}

/// A certificate authority.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CaDto {
    pub id: String,
    pub name: String,
    /// `root`, `intermediate`, `imported` or `external` (no key: cannot issue).
    pub kind: String,
    pub parent_id: Option<String>,
    pub key_type: String,
    /// Where the key lives (`software` or `pkcs11`), or `null` when shedu holds no key.
    pub engine: Option<String>,
    /// The key's handle in its engine (the token label for `pkcs11`); never key material.
    pub key_handle: Option<String>,
    pub can_issue: bool,
    pub subject: String,
    pub serial: String,
    pub fingerprint_sha256: String,
    pub not_before: String,
    pub not_after: String,
    /// `active`, `about_to_expire`, `expired` or `revoked`.
    pub status: String,
    pub profile: ProfileDto,
    pub certificate_pem: String,
    pub created_at: String,
}

impl From<Ca> for CaDto {
    fn from(ca: Ca) -> CaDto {
        CaDto {
            can_issue: ca.can_issue(),
            certificate_pem: shedu_pki::pem_encode_cert(&ca.certificate_der),
            profile: ProfileDto {
                default_validity_days: ca.profile.default_validity_days,
                key_usages: ca
                    .profile
                    .key_usages
                    .iter()
                    .map(|k| k.to_string())
                    .collect(),
                ext_key_usages: ca
                    .profile
                    .ext_key_usages
                    .iter()
                    .map(|k| k.to_string())
                    .collect(),
                path_len: ca.profile.path_len,
                allowed_key_types: ca
                    .profile
                    .allowed_key_types
                    .iter()
                    .map(|k| k.to_string())
                    .collect(),
                expiry_warning_days: ca.profile.expiry_warning_days,
                subject_policy: ca
                    .profile
                    .names
                    .subject
                    .iter()
                    .map(|(ty, rule)| (ty.to_string(), rule.into()))
                    .collect(),
                max_sans: ca.profile.names.max_sans,
                uri_schemes: ca.profile.names.uri_schemes.clone(),
            },
            id: ca.id,
            name: ca.name,
            kind: ca.kind.as_str().to_string(),
            parent_id: ca.parent_id,
            key_type: ca.key_type.to_string(),
            engine: ca.engine.map(|e| e.as_str().to_string()),
            key_handle: ca.key_handle,
            subject: ca.subject,
            serial: ca.serial,
            fingerprint_sha256: ca.fingerprint,
            not_before: rfc3339(ca.not_before),
            not_after: rfc3339(ca.not_after),
            status: ca.status.to_string(),
            created_at: rfc3339(ca.created_at),
        }
    }
}

/// The CA list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CaList {
    pub items: Vec<CaDto>,
}

/// Issue a certificate from a PKCS#10 CSR.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueRequest {
    /// The CSR as PEM, or its DER in base64.
    pub csr_pem: String,
    /// Validity in days (default: the CA profile's); may not outlive the CA.
    pub validity_days: Option<u32>,
    /// SANs to use instead of the CSR's: `dns:name`, `ip:addr`, `email:addr`, `uri:…`, or bare.
    pub sans: Option<Vec<String>>,
}

/// Revoke a certificate.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeRequest {
    /// RFC 5280 reason: `unspecified` (default), `key_compromise`, `ca_compromise`, `affiliation_changed`,
    /// `superseded`, `cessation_of_operation`, `certificate_hold`, `privilege_withdrawn`, `aa_compromise`.
    pub reason: Option<String>,
    /// When the key is known or suspected to have been compromised (RFC 5280 §5.3.2), RFC 3339 or Unix seconds.
    pub invalidity_date: Option<String>,
}

/// A certificate.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CertificateDto {
    pub ca_id: String,
    /// Lowercase hex, no separators.
    pub serial: String,
    pub fingerprint_sha256: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_type: String,
    pub not_before: String,
    pub not_after: String,
    /// `active`, `about_to_expire`, `expired` or `revoked`.
    pub status: String,
    pub revoked_at: Option<String>,
    pub revocation_reason: Option<String>,
    pub certificate_pem: String,
    pub created_at: String,
}

impl From<Certificate> for CertificateDto {
    fn from(c: Certificate) -> CertificateDto {
        CertificateDto {
            certificate_pem: shedu_pki::pem_encode_cert(&c.der),
            ca_id: c.ca_id,
            serial: c.serial.to_hex(),
            fingerprint_sha256: c.fingerprint,
            subject: c.subject,
            sans: c.sans,
            key_type: c.key_type.to_string(),
            not_before: rfc3339(c.not_before),
            not_after: rfc3339(c.not_after),
            status: c.status.to_string(),
            revoked_at: c.revoked_at.map(rfc3339),
            revocation_reason: c.revocation_reason.map(|r| r.to_string()),
            created_at: rfc3339(c.created_at),
        }
    }
}

/// An issued certificate and the chain to verify it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssuedDto {
    #[serde(flatten)]
    pub certificate: CertificateDto,
    /// The issuing CA and its ancestors up to the root, PEM.
    pub chain_pem: String,
}

/// One page of certificates.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CertificatePage {
    pub items: Vec<CertificateDto>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Certificate listing filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertificateListQuery {
    /// Issuer CA id.
    pub ca_id: Option<String>,
    /// `active`, `about_to_expire`, `expired` or `revoked`.
    pub status: Option<String>,
    /// The start of the subject's common name (case-insensitive on ASCII; `sensor` finds `CN=Sensor-1,O=…`),
    /// answered from an index. Certificates without a CN are not found by it.
    pub subject: Option<String>,
    /// notAfter before this time (RFC 3339 or Unix seconds).
    pub expires_before: Option<String>,
    /// notAfter at or after this time (RFC 3339 or Unix seconds).
    pub expires_after: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}
