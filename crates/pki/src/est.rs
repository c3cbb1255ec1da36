//! The DER bodies EST (RFC 7030) answers with: a "certs-only" PKCS#7 / CMS SignedData (RFC 7030 §4.1.3,
//! RFC 5652 §5, degenerate: no signers) and the CSR attributes response (§4.5.2).
//!
//! Both are a few fixed wrappers around data we already hold, so they are encoded with yasna here rather
//! than with a CMS library.

use yasna::models::ObjectIdentifier;

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
}
