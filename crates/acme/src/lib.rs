//! The ACME (RFC 8555) wire format: flattened JWS requests and their verification ([`Jws`]), JWKs and
//! their RFC 7638 thumbprints ([`Jwk`]), the request and response JSON objects ([`types`]) and the
//! problem types of RFC 8555 §6.7 ([`ProblemType`]).
//!
//! Like `shedu-pki`, this crate does no I/O and never panics on input: every decoder returns [`Error`],
//! whose [`ProblemType`] is the answer the protocol expects (`malformed`, `badSignatureAlgorithm`, …), so
//! the HTTP edge maps it without deciding anything. Signatures are checked with aws-lc-rs, the same
//! backend rustls and rcgen use here. What is stored (nonces, accounts, orders) and what a request may do
//! are `shedu-core`'s business.
#![warn(missing_docs)]

mod error;
mod jwk;
mod jws;
pub mod types;

pub use error::{Error, ProblemType};
pub use jwk::Jwk;
pub use jws::{Alg, Jws, KeyRef, MAX_JWS_LEN, Protected};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// base64url without padding (RFC 7515 §2), the only encoding of binary values in ACME.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `what` names the field for the error.
pub fn b64_decode(what: &'static str, s: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Error::malformed(format!("{what} is not base64url without padding")))
}

/// The key authorization of a challenge (RFC 8555 §8.1): `token || '.' || base64url(thumbprint)`.
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The TXT record value of a dns-01 challenge (RFC 8555 §8.4): base64url(SHA-256(key authorization)).
pub fn dns01_txt(key_authorization: &str) -> String {
    b64(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes())
            .as_ref(),
    )
}

/// The certificate identifier of a renewal-information request (RFC 9773 §4.1):
/// `base64url(AKI keyIdentifier) '.' base64url(serial DER content octets)`. Returns both byte strings.
pub fn parse_cert_id(id: &str) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let (aki, serial) = id
        .split_once('.')
        .ok_or_else(|| Error::malformed("a certificate identifier is AKI.serial"))?;
    let aki = b64_decode("keyIdentifier", aki)?;
    let serial = b64_decode("serial", serial)?;
    if aki.is_empty() || serial.is_empty() || serial.len() > 21 {
        return Err(Error::malformed("empty keyIdentifier or bad serial length"));
    }
    Ok((aki, serial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_id_round_trip_and_rejects() {
        let id = format!("{}.{}", b64(&[1, 2, 3]), b64(&[0, 0x87]));
        assert_eq!(parse_cert_id(&id).unwrap(), (vec![1, 2, 3], vec![0, 0x87]));
        for bad in ["", ".", "abc", "AQID.", ".AQID", "AQID.AQ==", "A$.AQ"] {
            let e = parse_cert_id(bad).unwrap_err();
            assert_eq!(e.problem, ProblemType::Malformed, "{bad}");
        }
    }

    #[test]
    fn dns01_value_matches_rfc_8555_construction() {
        // SHA-256("a.b") base64url, computed independently with `printf a.b | openssl dgst -sha256 -binary | basenc --base64url`.
        assert_eq!(
            dns01_txt("a.b"),
            "LnM23I66h-9HLfVow1SCq_JXXcPl6sDFxiuP-urCyTQ"
        );
    }
}
