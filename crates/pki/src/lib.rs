//! Pure X.509 logic for shedu: key types, CSR parsing and verification, issuance profiles, building
//! certificates, and reading certificates back.
//!
//! This crate does no I/O and never panics on input: every decoder returns [`Error`]. Signing goes through
//! `rcgen::SigningKey` (extended by [`Signs`] so an engine's failure keeps its cause), so the caller decides
//! where keys live (the `shedu-keys` engines).
#![warn(missing_docs)]

mod cert;
mod crl;
mod csr;
pub mod der;
mod error;
pub mod est;
mod issue;
mod key_type;
mod name;
mod names;
pub mod ocsp;
mod profile;
mod reason;
mod serial;
mod signs;

pub use cert::{
    AcmeIdentifier, CertInfo, escaped_pem_to_der_certs, fingerprint_sha256, is_signed_by,
    pem_encode_cert, pem_to_der_certs,
};
pub use crl::{CrlParams, CrlScope, RevokedEntry, build_crl};
pub use csr::Csr;
pub use error::Error;
pub use issue::{
    IssueRequest, RevocationUrls, Validity, build_ca_params, ca_issuer, issue_leaf,
    issue_ocsp_responder, issue_root_ca, issue_tls_server,
};
pub use key_type::KeyType;
pub use name::SubjectName;
pub use names::{
    AttrRule, AttrType, DEFAULT_MAX_SANS, DEFAULT_URI_SCHEMES, MAX_SANS_LIMIT, NamePolicy,
    RequestedAttr, Subject, check_dns_name, check_email, check_san, check_uri,
};
pub use profile::{ExtKeyUsage, KeyUsage, Profile, join_names, parse_names};
pub use reason::RevocationReason;
pub use serial::Serial;
pub use signs::Signs;

/// Re-exported so callers name the same rcgen types this crate builds with.
pub use rcgen;
