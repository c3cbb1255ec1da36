//! The DER bodies EST (RFC 7030) answers with: a "certs-only" PKCS#7 / CMS SignedData (RFC 7030 §4.1.3,
//! RFC 5652 §5, degenerate: no signers) and the CSR attributes response (§4.5.2).
//!
//! Both are a few fixed wrappers around data we already hold, so they are encoded with yasna here rather
//! than with a CMS library. The request side is decoded here too: the base64 body ([`decode_body`]) and
//! the credentials of the `Authorization` header ([`credentials`]), both bytes from the network.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use yasna::models::ObjectIdentifier;
use zeroize::Zeroizing;

use crate::Error;

/// id-signedData (1.2.840.113549.1.7.2).
const SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
/// id-data (1.2.840.113549.1.7.1).
const DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];

/// A certs-only SignedData carrying `certs` (DER, in order). `openssl pkcs7 -print_certs` reads it.
pub fn certs_only(certs: &[&[u8]]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_oid(&ObjectIdentifier::from_slice(SIGNED_DATA));
            w.next().write_tagged(yasna::Tag::context(0), |w| {
                w.write_sequence(|w| {
                    // version 1: no attribute certificates, no other formats (RFC 5652 §5.1).
                    w.next().write_u8(1);
                    w.next().write_set(|_| {}); // digestAlgorithms: none, no signers
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&ObjectIdentifier::from_slice(DATA));
                    });
                    w.next().write_tagged_implicit(yasna::Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            for cert in certs {
                                w.next().write_der(cert);
                            }
                        })
                    });
                    w.next().write_set(|_| {}); // signerInfos: none
                });
            });
        })
    })
}

/// The CSR attributes response: a SEQUENCE of the OIDs a client should use in its CSR (for example an
/// algorithm such as ecdsa-with-SHA256, or challengePassword). OIDs are given in dotted form.
pub fn csr_attributes(oids: &[String]) -> Result<Vec<u8>, Error> {
    let parsed = oids
        .iter()
        .map(|s| parse_oid(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            for oid in &parsed {
                w.next().write_oid(oid);
            }
        })
    }))
}

/// Parses a dotted OID ("1.2.840.10045.4.3.2"), refusing what DER cannot encode.
pub fn parse_oid(s: &str) -> Result<ObjectIdentifier, Error> {
    let bad = || Error::Malformed {
        what: "OID",
        detail: format!("{s:?} is not a dotted object identifier"),
    };
    let arcs = s
        .split('.')
        .map(|a| a.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    match arcs.as_slice() {
        [first, second, ..] if *first <= 2 && (*first == 2 || *second < 40) => {
            Ok(ObjectIdentifier::from_slice(&arcs))
        }
        _ => Err(bad()),
    }
}

/// An EST request body: base64 DER (RFC 8951 §3.2), whitespace and line breaks ignored; raw DER (a first
/// byte of SEQUENCE) is accepted too. The DER itself is judged by whoever parses it.
pub fn decode_body(body: &[u8]) -> Result<Vec<u8>, Error> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    match STANDARD.decode(&text) {
        Ok(der) if !der.is_empty() => Ok(der),
        _ if body.first() == Some(&0x30) => Ok(body.to_vec()),
        _ => Err(Error::malformed(
            "EST body",
            "not base64-encoded DER (RFC 8951 section 3.2)",
        )),
    }
}

/// The credentials of an EST `Authorization` header value: HTTP Basic `device:secret` (RFC 7617) gives
/// both, a bearer token gives the secret alone, anything else neither.
pub fn credentials(authorization: &str) -> (Option<String>, Option<Zeroizing<String>>) {
    let (scheme, rest) = authorization.split_once(' ').unwrap_or((authorization, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return (None, Some(Zeroizing::new(rest.trim().to_string())));
    }
    if scheme.eq_ignore_ascii_case("basic")
        && let Ok(decoded) = STANDARD.decode(rest.trim())
        && let Ok(decoded) = String::from_utf8(decoded)
    {
        let decoded = Zeroizing::new(decoded);
        if let Some((user, pass)) = decoded.split_once(':') {
            return (
                Some(user.to_string()),
                Some(Zeroizing::new(pass.to_string())),
            );
        }
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_only_wraps_certificates_in_a_degenerate_signed_data() {
        let a = yasna::construct_der(|w| w.write_sequence(|w| w.next().write_u8(7)));
        let der = certs_only(&[&a]);
        // ContentInfo { id-signedData, [0] { SignedData { 1, {}, { id-data }, [0] { a }, {} } } }
        let expected: Vec<u8> = [
            &[0x30, 0x2a, 0x06, 0x09][..],
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02],
            &[0xa0, 0x1d, 0x30, 0x1b, 0x02, 0x01, 0x01, 0x31, 0x00],
            &[
                0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
            ],
            &[0xa0, 0x05],
            &a,
            &[0x31, 0x00],
        ]
        .concat();
        assert_eq!(der, expected);
    }

    #[test]
    fn csr_attributes_encode_oids_and_refuse_garbage() {
        let der = csr_attributes(&["1.2.840.10045.4.3.2".into()]).unwrap();
        assert_eq!(
            der,
            [
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02
            ]
        );
        assert!(csr_attributes(&["1.2.x".into()]).is_err());
        assert!(csr_attributes(&["7.1".into()]).is_err());
        assert!(csr_attributes(&["1".into()]).is_err());
    }

    #[test]
    fn bodies_are_base64_with_any_line_breaks_or_raw_der() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x07];
        assert_eq!(decode_body(b"MAMCAQc=").unwrap(), der);
        assert_eq!(decode_body(b"MAMC\r\nAQc=\n").unwrap(), der);
        assert_eq!(decode_body(&der).unwrap(), der);
        assert!(matches!(
            decode_body(b"not base64!"),
            Err(Error::Malformed {
                what: "EST body",
                ..
            })
        ));
        assert!(decode_body(b"").is_err());
        assert!(decode_body(b" \n").is_err());
    }

    #[test]
    fn credentials_are_basic_or_bearer() {
        // "dev-1:s3:cr3t": the secret may hold colons, the device id cannot.
        let (user, secret) = credentials("Basic ZGV2LTE6czM6Y3IzdA==");
        assert_eq!(user.as_deref(), Some("dev-1"));
        assert_eq!(secret.as_deref().map(String::as_str), Some("s3:cr3t"));
        let (user, secret) = credentials("bearer  tok ");
        assert_eq!(user, None);
        assert_eq!(secret.as_deref().map(String::as_str), Some("tok"));
        // No colon, bad base64, not UTF-8, an unknown scheme: no credentials.
        for value in [
            "Basic ZGV2",
            "Basic %%%",
            "Basic /w==",
            "Digest x",
            "Basic",
            "",
        ] {
            let (user, secret) = credentials(value);
            assert!(user.is_none() && secret.is_none(), "{value}");
        }
    }
}
