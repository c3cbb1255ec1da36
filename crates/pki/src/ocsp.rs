//! OCSP (RFC 6960, with the RFC 5019 profile): parsing requests and encoding signed responses.
//!
//! Requests are parsed with the bounds-checked reader in [`crate::der`]; responses are written with yasna
//! (which rcgen already uses) and signed through `rcgen::SigningKey`, so the same key engines that sign
//! certificates sign OCSP responses. Each request's CertID is echoed back byte for byte, as clients compare
//! it verbatim.

use yasna::Tag;
use yasna::models::{GeneralizedTime, ObjectIdentifier};

use crate::der::Reader;
use crate::{Error, KeyType, RevocationReason, Serial, Signs};

/// Most CertIDs accepted in one request; real clients send one.
const MAX_ENTRIES: usize = 32;

/// The hash algorithm a CertID was computed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// SHA-1 (what openssl and most clients send).
    Sha1,
    /// SHA-256.
    Sha256,
    /// Anything else: answered `unknown`, since no issuer can be matched.
    Unsupported,
}

/// One CertID of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertId {
    /// The hash algorithm of the two hashes.
    pub hash: CertIdHash,
    /// Hash of the issuer's DN (DER).
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's public key bits.
    pub issuer_key_hash: Vec<u8>,
    /// The certificate's serial.
    pub serial: Serial,
    /// The CertID as received, echoed verbatim in the response.
    pub raw: Vec<u8>,
}

/// A parsed OCSP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspRequest {
    /// The certificates asked about.
    pub entries: Vec<CertId>,
    /// The nonce extension (RFC 8954) as received (the whole Extension), echoed in the response.
    pub nonce: Option<Vec<u8>>,
}

// id-pkix-ocsp-nonce 1.3.6.1.5.5.7.48.1.2
const NONCE_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
// id-sha1 1.3.14.3.2.26
const SHA1_OID: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
// id-sha256 2.16.840.1.101.3.4.2.1
const SHA256_OID: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

impl OcspRequest {
    /// Parses a DER `OCSPRequest`. Signed requests are accepted; their signature is ignored (RFC 6960
    /// §4.1.2 makes it optional and shedu does not authorize by it).
    pub fn from_der(der: &[u8]) -> Result<OcspRequest, Error> {
        const W: &str = "OCSP request";
        let mut outer = Reader::new(der, W);
        let request = outer.expect(0x30)?;
        outer.finish()?;
        let mut req = Reader::new(request.content, W);
        let tbs = req.expect(0x30)?;
        req.optional(0xa0)?; // optionalSignature
        req.finish()?;

        let mut tbs = Reader::new(tbs.content, W);
        if let Some(v) = tbs.optional(0xa0)? {
            // version [0] EXPLICIT Version DEFAULT v1: only v1 (0) exists.
            if v.content != [0x02, 0x01, 0x00] {
                return Err(Error::malformed(W, "unsupported version"));
            }
        }
        tbs.optional(0xa1)?; // requestorName
        let list = tbs.expect(0x30)?;
        let extensions = tbs.optional(0xa2)?;
        tbs.finish()?;

        let mut entries = Vec::new();
        let mut list = Reader::new(list.content, W);
        while !list.is_empty() {
            if entries.len() == MAX_ENTRIES {
                return Err(Error::malformed(W, "too many certificates in one request"));
            }
            let single = list.expect(0x30)?;
            let mut single = Reader::new(single.content, W);
            let cert_id = single.expect(0x30)?;
            single.optional(0xa0)?; // singleRequestExtensions
            single.finish()?;
            entries.push(parse_cert_id(cert_id.content, cert_id.raw)?);
        }
        if entries.is_empty() {
            return Err(Error::malformed(W, "no certificate asked about"));
        }

        let mut nonce = None;
        if let Some(exts) = extensions {
            let mut exts = Reader::new(exts.content, W);
            let seq = exts.expect(0x30)?;
            exts.finish()?;
            let mut seq = Reader::new(seq.content, W);
            while !seq.is_empty() {
                let ext = seq.expect(0x30)?;
                let mut e = Reader::new(ext.content, W);
                let oid = e.expect(0x06)?;
                if oid.content == NONCE_OID {
                    e.optional(0x01)?;
                    let value = e.expect(0x04)?;
                    // RFC 8954: the nonce is 1 to 32 octets.
                    if value.content.len() > 34 {
                        return Err(Error::malformed(W, "nonce longer than 32 octets"));
                    }
                    nonce = Some(ext.raw.to_vec());
                }
            }
        }
        Ok(OcspRequest { entries, nonce })
    }
}

fn parse_cert_id(content: &[u8], raw: &[u8]) -> Result<CertId, Error> {
    const W: &str = "OCSP CertID";
    let mut r = Reader::new(content, W);
    let alg = r.expect(0x30)?;
    let name_hash = r.expect(0x04)?;
    let key_hash = r.expect(0x04)?;
    let serial = r.expect(0x02)?;
    r.finish()?;
    let mut a = Reader::new(alg.content, W);
    let oid = a.expect(0x06)?;
    let hash = match oid.content {
        SHA1_OID => CertIdHash::Sha1,
        SHA256_OID => CertIdHash::Sha256,
        _ => CertIdHash::Unsupported,
    };
    if serial.content.is_empty() || serial.content.len() > 21 {
        return Err(Error::malformed(W, "serial must be 1 to 20 octets"));
    }
    Ok(CertId {
        hash,
        issuer_name_hash: name_hash.content.to_vec(),
        issuer_key_hash: key_hash.content.to_vec(),
        serial: Serial::from_bytes(serial.content),
        raw: raw.to_vec(),
    })
}

/// What the responder says about one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked at this time (Unix seconds) for this reason.
    Revoked {
        /// revocationTime
        at: i64,
        /// revocationReason; `None` for unspecified, which RFC 5280 says to leave out.
        reason: Option<RevocationReason>,
    },
    /// Not known to this responder.
    Unknown,
}

/// One answer of a response.
#[derive(Clone, Debug)]
pub struct SingleResponse<'a> {
    /// The CertID exactly as the request had it.
    pub cert_id_raw: &'a [u8],
    /// The status.
    pub status: CertStatus,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
}

/// The signer of a response: the CA itself or its delegated responder.
pub struct Responder<'a, S: Signs> {
    /// The signing key.
    pub key: &'a S,
    /// Its key type (fixes the signature algorithm).
    pub key_type: KeyType,
    /// SHA-1 of the responder's public key bits (ResponderID byKey).
    pub key_hash: [u8; 20],
    /// Certificates to include (the delegated responder's certificate), DER.
    pub certs: &'a [Vec<u8>],
}

/// `OCSPResponseStatus` values for unsuccessful responses (RFC 6960 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspError {
    /// malformedRequest (1)
    MalformedRequest = 1,
    /// internalError (2)
    InternalError = 2,
    /// tryLater (3)
    TryLater = 3,
    /// unauthorized (6)
    Unauthorized = 6,
}

/// The DER of an RFC 5019 §5 GET request's last path segment (`{url}/{base64 of the DER OCSPRequest}`),
/// already percent-decoded: whitespace is dropped and the standard and URL-safe alphabets, with or without
/// padding, are accepted, as clients differ. The DER is not parsed here; [`OcspRequest::from_der`] does it.
pub fn decode_get(path: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let text: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(&text)
        .or_else(|_| URL_SAFE.decode(&text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(&text))
        .map_err(|e| Error::malformed("OCSP request", e))
}

/// An unsigned error response: `OCSPResponse { responseStatus }`.
pub fn error_response(status: OcspError) -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

/// Encodes and signs a successful response.
pub fn build_response<S: Signs>(
    responder: &Responder<'_, S>,
    produced_at: i64,
    responses: &[SingleResponse<'_>],
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let tbs = yasna::try_construct_der(|w| {
        w.write_sequence(|w| {
            // responderID byKey: [2] EXPLICIT KeyHash (OCTET STRING).
            w.next()
                .write_tagged(Tag::context(2), |w| w.write_bytes(&responder.key_hash));
            w.next().write_generalized_time(&gtime(produced_at)?);
            w.next().write_sequence(|w| {
                for r in responses {
                    w.next().write_sequence(|w| {
                        w.next().write_der(r.cert_id_raw);
                        let st = w.next();
                        match r.status {
                            CertStatus::Good => {
                                st.write_tagged_implicit(Tag::context(0), |w| w.write_null())
                            }
                            CertStatus::Revoked { at, reason } => {
                                let at = gtime(at)?;
                                st.write_tagged_implicit(Tag::context(1), |w| {
                                    w.write_sequence(|w| {
                                        w.next().write_generalized_time(&at);
                                        if let Some(reason) = reason {
                                            w.next().write_tagged(Tag::context(0), |w| {
                                                w.write_enum(i64::from(reason.code()))
                                            });
                                        }
                                    })
                                })
                            }
                            CertStatus::Unknown => {
                                st.write_tagged_implicit(Tag::context(2), |w| w.write_null())
                            }
                        }
                        w.next().write_generalized_time(&gtime(r.this_update)?);
                        let next = gtime(r.next_update)?;
                        w.next()
                            .write_tagged(Tag::context(0), |w| w.write_generalized_time(&next));
                        Ok::<(), Error>(())
                    })?;
                }
                Ok::<(), Error>(())
            })?;
            if let Some(nonce) = nonce {
                w.next().write_tagged(Tag::context(1), |w| {
                    w.write_sequence(|w| w.next().write_der(nonce))
                });
            }
            Ok::<(), Error>(())
        })
    })?;
    let signature = responder
        .key
        .sign(&tbs)
        .map_err(|e| Error::signing(responder.key, e))?;
    let basic = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            w.next()
                .write_der(responder.key_type.signature_algorithm_der());
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
            if !responder.certs.is_empty() {
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| {
                        for c in responder.certs {
                            w.next().write_der(c);
                        }
                    })
                });
            }
        })
    });
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_enum(0); // successful
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    // id-pkix-ocsp-basic 1.3.6.1.5.5.7.48.1.1
                    w.next().write_oid(&ObjectIdentifier::from_slice(&[
                        1, 3, 6, 1, 5, 5, 7, 48, 1, 1,
                    ]));
                    w.next().write_bytes(&basic);
                })
            });
        })
    }))
}

/// Whole-second GeneralizedTime, as RFC 5280 §4.1.2.5.2 requires (no fractions).
fn gtime(secs: i64) -> Result<GeneralizedTime, Error> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(GeneralizedTime::from_datetime)
        .map_err(|e| Error::InvalidValidity(e.to_string()))
}

/// SHA-1 and SHA-256 of the issuer name DER and key bits: what CertIDs for this issuer contain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerHashes {
    /// SHA-1 (name hash, key hash).
    pub sha1: (Vec<u8>, Vec<u8>),
    /// SHA-256 (name hash, key hash).
    pub sha256: (Vec<u8>, Vec<u8>),
}

impl IssuerHashes {
    /// Computes the hashes from the issuer's subject DN DER and its public key bits.
    pub fn new(subject_der: &[u8], public_key_bits: &[u8]) -> IssuerHashes {
        use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
        let h = |alg, data| digest(alg, data).as_ref().to_vec();
        IssuerHashes {
            sha1: (
                h(&SHA1_FOR_LEGACY_USE_ONLY, subject_der),
                h(&SHA1_FOR_LEGACY_USE_ONLY, public_key_bits),
            ),
            sha256: (h(&SHA256, subject_der), h(&SHA256, public_key_bits)),
        }
    }

    /// Whether a CertID names this issuer.
    pub fn matches(&self, id: &CertId) -> bool {
        let (n, k) = match id.hash {
            CertIdHash::Sha1 => &self.sha1,
            CertIdHash::Sha256 => &self.sha256,
            CertIdHash::Unsupported => return false,
        };
        *n == id.issuer_name_hash && *k == id.issuer_key_hash
    }
}

/// SHA-1 of public key bits: the ResponderID byKey value.
pub fn key_hash(public_key_bits: &[u8]) -> [u8; 20] {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        public_key_bits,
    );
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: [&[u8]; 3] = [
        include_bytes!("../../../fuzz/seeds/ocsp_request/plain.der"),
        include_bytes!("../../../fuzz/seeds/ocsp_request/nonce.der"),
        include_bytes!("../../../fuzz/seeds/ocsp_request/sha256-two.der"),
    ];

    #[test]
    fn parses_openssl_requests() {
        let plain = OcspRequest::from_der(SEEDS[0]).unwrap();
        assert_eq!(
            (
                plain.entries.len(),
                plain.nonce.is_some(),
                plain.entries[0].hash
            ),
            (1, false, CertIdHash::Sha1)
        );
        let nonce = OcspRequest::from_der(SEEDS[1]).unwrap();
        assert!(nonce.nonce.is_some());
        let two = OcspRequest::from_der(SEEDS[2]).unwrap();
        assert_eq!(two.entries.len(), 2);
        assert_eq!(two.entries[0].hash, CertIdHash::Sha256);
        assert_eq!(two.entries[1].serial.to_hex(), "02");
    }

    /// A cheap stand-in for the fuzzer that runs in every test run: every single-bit flip and every
    /// truncation of real requests parses or fails cleanly, never panics.
    #[test]
    fn mutations_of_real_requests_never_panic() {
        for seed in SEEDS {
            for len in 0..seed.len() {
                let _ = OcspRequest::from_der(&seed[..len]);
            }
            for i in 0..seed.len() * 8 {
                let mut m = seed.to_vec();
                m[i / 8] ^= 1 << (i % 8);
                let _ = OcspRequest::from_der(&m);
            }
        }
    }

    #[test]
    fn get_paths_decode_in_every_alphabet() {
        // 0xfb 0xff: "+/8=" in the standard alphabet, "-_8=" URL-safe, "-_8" unpadded.
        for path in ["+/8=", "-_8=", "-_8", " +/8=\n"] {
            assert_eq!(decode_get(path).unwrap(), [0xfb, 0xff], "{path}");
        }
        assert!(matches!(
            decode_get("not*base64"),
            Err(Error::Malformed {
                what: "OCSP request",
                ..
            })
        ));
        assert_eq!(decode_get("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x00],
            &[0x30, 0x02, 0x30, 0x00],
            &[0xff; 10],
        ] {
            assert!(OcspRequest::from_der(input).is_err());
        }
        assert_eq!(
            error_response(OcspError::MalformedRequest),
            vec![0x30, 0x03, 0x0a, 0x01, 0x01]
        );
    }
}
