//! Turns a software key's private DER (PKCS#8, SEC1 or PKCS#1) into the key-specific attributes of the
//! `C_CreateObject` templates. Every attribute that holds private key material lives in a
//! [`SecretTemplate`], which zeroizes it when dropped; the DER itself is only borrowed.

use cryptoki::object::{Attribute, KeyType as CkKeyType};
use rustls_pki_types::PrivateKeyDer;
use shedu_pki::KeyType;
use zeroize::Zeroize;

use shedu_pki::der::{Reader, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE};

use super::curve_oid;
use super::encode::{ec_point_attribute, push_tlv};
use crate::Error;

/// What the private key readers name in their errors (which `key_templates` replaces by its own).
const W: &str = "private key";

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A template whose secret attributes (`CKA_VALUE`, the RSA private exponent, primes, CRT exponents and
/// coefficient) are zeroized on drop.
pub(crate) struct SecretTemplate(pub(crate) Vec<Attribute>);

impl Drop for SecretTemplate {
    fn drop(&mut self) {
        for attr in &mut self.0 {
            match attr {
                Attribute::Value(v)
                | Attribute::PrivateExponent(v)
                | Attribute::Prime1(v)
                | Attribute::Prime2(v)
                | Attribute::Exponent1(v)
                | Attribute::Exponent2(v)
                | Attribute::Coefficient(v) => v.zeroize(),
                _ => {}
            }
        }
    }
}

/// The key-specific attributes of the private and the public key object.
pub(crate) struct KeyTemplates {
    pub(crate) private: SecretTemplate,
    pub(crate) public: Vec<Attribute>,
}

/// The parts of a private key, borrowed from its DER.
enum Parts<'a> {
    Ec {
        curve: Option<&'a [u8]>,
        d: &'a [u8],
    },
    Ed25519 {
        seed: &'a [u8],
    },
    Rsa {
        n: &'a [u8],
        e: &'a [u8],
        d: &'a [u8],
        p: &'a [u8],
        q: &'a [u8],
        dp: &'a [u8],
        dq: &'a [u8],
        qinv: &'a [u8],
    },
}

/// Builds the templates for a key of `key_type` whose public key bits (as `Signer::public_key` returns
/// them) are `public_key`.
pub(crate) fn key_templates(
    der: &PrivateKeyDer<'_>,
    key_type: KeyType,
    public_key: &[u8],
) -> Result<KeyTemplates, Error> {
    let invalid = || Error::InvalidKey(format!("cannot decode the {key_type} private key DER"));
    let parts = match der {
        PrivateKeyDer::Pkcs8(k) => parse_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Sec1(k) => parse_sec1(k.secret_sec1_der(), None),
        PrivateKeyDer::Pkcs1(k) => parse_pkcs1(k.secret_pkcs1_der()),
        _ => return Err(invalid()),
    }
    .map_err(|_| invalid())?;
    let mismatch = || Error::InvalidKey(format!("the private key is not a {key_type} key"));

    match (parts, key_type) {
        (Parts::Ec { curve, d }, KeyType::EcP256 | KeyType::EcP384) => {
            let oid = curve_oid(key_type).ok_or_else(mismatch)?;
            if curve.is_some_and(|c| c != oid) {
                return Err(mismatch());
            }
            let params = oid_der(oid);
            Ok(KeyTemplates {
                private: SecretTemplate(vec![
                    Attribute::KeyType(CkKeyType::EC),
                    Attribute::EcParams(params.clone()),
                    Attribute::Value(d.to_vec()),
                ]),
                public: vec![
                    Attribute::KeyType(CkKeyType::EC),
                    Attribute::EcParams(params),
                    Attribute::EcPoint(ec_point_attribute(public_key)),
                ],
            })
        }
        (Parts::Ed25519 { seed }, KeyType::Ed25519) => {
            let params = oid_der(OID_ED25519);
            Ok(KeyTemplates {
                private: SecretTemplate(vec![
                    Attribute::KeyType(CkKeyType::EC_EDWARDS),
                    Attribute::EcParams(params.clone()),
                    Attribute::Value(seed.to_vec()),
                ]),
                public: vec![
                    Attribute::KeyType(CkKeyType::EC_EDWARDS),
                    Attribute::EcParams(params),
                    Attribute::EcPoint(ec_point_attribute(public_key)),
                ],
            })
        }
        (
            Parts::Rsa {
                n,
                e,
                d,
                p,
                q,
                dp,
                dq,
                qinv,
            },
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096,
        ) => {
            if Some(bit_len(n)) != key_type.rsa_bits() {
                return Err(mismatch());
            }
            Ok(KeyTemplates {
                private: SecretTemplate(vec![
                    Attribute::KeyType(CkKeyType::RSA),
                    Attribute::Modulus(n.to_vec()),
                    Attribute::PublicExponent(e.to_vec()),
                    Attribute::PrivateExponent(d.to_vec()),
                    Attribute::Prime1(p.to_vec()),
                    Attribute::Prime2(q.to_vec()),
                    Attribute::Exponent1(dp.to_vec()),
                    Attribute::Exponent2(dq.to_vec()),
                    Attribute::Coefficient(qinv.to_vec()),
                ]),
                public: vec![
                    Attribute::KeyType(CkKeyType::RSA),
                    Attribute::Modulus(n.to_vec()),
                    Attribute::PublicExponent(e.to_vec()),
                ],
            })
        }
        _ => Err(mismatch()),
    }
}

/// The DER of an OBJECT IDENTIFIER with the given contents (what `CKA_EC_PARAMS` holds).
pub(crate) fn oid_der(oid: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(oid.len() + 2);
    push_tlv(&mut out, TAG_OID, oid);
    out
}

/// The bit length of an unsigned big-endian number.
pub(crate) fn bit_len(magnitude: &[u8]) -> usize {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    match magnitude.get(start) {
        None => 0,
        Some(first) => (magnitude.len() - start - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

/// The next INTEGER, which must be a small non-negative number (a version field).
fn read_small(r: &mut Reader<'_>) -> Result<u8, shedu_pki::Error> {
    match r.unsigned()? {
        [b] => Ok(*b),
        _ => Err(r.malformed("version out of range")),
    }
}

/// `PrivateKeyInfo` / `OneAsymmetricKey` (RFC 5208 / 5958).
fn parse_pkcs8(buf: &[u8]) -> Result<Parts<'_>, shedu_pki::Error> {
    let mut outer = Reader::new(buf, W);
    let mut seq = Reader::new(outer.expect(TAG_SEQUENCE)?.content, W);
    if read_small(&mut seq)? > 1 {
        return Err(seq.malformed("unsupported PKCS#8 version"));
    }
    let mut alg = Reader::new(seq.expect(TAG_SEQUENCE)?.content, W);
    let oid = alg.expect(TAG_OID)?.content;
    let key = seq.expect(TAG_OCTET_STRING)?.content;
    match oid {
        OID_EC_PUBLIC_KEY => {
            let curve = alg.expect(TAG_OID)?.content;
            parse_sec1(key, Some(curve))
        }
        OID_RSA_ENCRYPTION => parse_pkcs1(key),
        OID_ED25519 => {
            // CurvePrivateKey ::= OCTET STRING
            let mut inner = Reader::new(key, W);
            let seed = inner.expect(TAG_OCTET_STRING)?.content;
            if seed.len() != 32 || !inner.is_empty() {
                return Err(inner.malformed("an Ed25519 seed is 32 bytes"));
            }
            Ok(Parts::Ed25519 { seed })
        }
        _ => Err(alg.malformed("unsupported key algorithm")),
    }
}

/// `ECPrivateKey` (RFC 5915). The curve comes from the PKCS#8 algorithm or from the `[0]` parameters.
fn parse_sec1<'a>(buf: &'a [u8], curve: Option<&'a [u8]>) -> Result<Parts<'a>, shedu_pki::Error> {
    let mut outer = Reader::new(buf, W);
    let mut seq = Reader::new(outer.expect(TAG_SEQUENCE)?.content, W);
    if read_small(&mut seq)? != 1 {
        return Err(seq.malformed("unsupported ECPrivateKey version"));
    }
    let d = seq.expect(TAG_OCTET_STRING)?.content;
    if d.is_empty() {
        return Err(seq.malformed("empty private key"));
    }
    let curve = match (curve, seq.optional(0xa0)?) {
        (Some(c), _) => Some(c),
        (None, Some(params)) => Some(Reader::new(params.content, W).expect(TAG_OID)?.content),
        (None, None) => None,
    };
    Ok(Parts::Ec { curve, d })
}

/// `RSAPrivateKey` (RFC 8017), two-prime only.
fn parse_pkcs1(buf: &[u8]) -> Result<Parts<'_>, shedu_pki::Error> {
    let mut outer = Reader::new(buf, W);
    let mut seq = Reader::new(outer.expect(TAG_SEQUENCE)?.content, W);
    if read_small(&mut seq)? != 0 {
        return Err(seq.malformed("unsupported RSAPrivateKey version"));
    }
    Ok(Parts::Rsa {
        n: seq.unsigned()?,
        e: seq.unsigned()?,
        d: seq.unsigned()?,
        p: seq.unsigned()?,
        q: seq.unsigned()?,
        dp: seq.unsigned()?,
        dq: seq.unsigned()?,
        qinv: seq.unsigned()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Signer, SoftwareKey};

    #[test]
    fn software_keys_decode() {
        for kt in [
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
        ] {
            let key = SoftwareKey::generate(kt).unwrap();
            let t = key_templates(&key.private_key_der(), kt, key.public_key()).unwrap();
            assert!(
                t.private
                    .0
                    .iter()
                    .any(|a| matches!(a, Attribute::Value(_) | Attribute::PrivateExponent(_))),
                "{kt}"
            );
            assert!(!t.public.is_empty());
        }
        let ec = SoftwareKey::generate(KeyType::EcP256).unwrap();
        assert!(matches!(
            key_templates(&ec.private_key_der(), KeyType::EcP384, ec.public_key()),
            Err(Error::InvalidKey(_))
        ));
    }

    /// The inner key of a PKCS#8 (the SEC1 or PKCS#1 structure), re-labelled as the traditional PEM.
    fn traditional(key: &SoftwareKey, label: &str) -> String {
        let PrivateKeyDer::Pkcs8(p8) = key.private_key_der() else {
            panic!("generated keys are PKCS#8")
        };
        let mut outer = Reader::new(p8.secret_pkcs8_der(), W);
        let mut seq = Reader::new(outer.expect(TAG_SEQUENCE).unwrap().content, W);
        read_small(&mut seq).unwrap();
        seq.expect(TAG_SEQUENCE).unwrap();
        let inner = seq.expect(TAG_OCTET_STRING).unwrap().content;
        pem::encode(&pem::Pem::new(label, inner.to_vec()))
    }

    #[test]
    fn sec1_and_pkcs1_decode() {
        for (kt, label) in [
            (KeyType::EcP384, "EC PRIVATE KEY"),
            (KeyType::Rsa2048, "RSA PRIVATE KEY"),
        ] {
            let generated = SoftwareKey::generate(kt).unwrap();
            let key = SoftwareKey::from_pem(&traditional(&generated, label), kt).unwrap();
            assert!(!matches!(key.private_key_der(), PrivateKeyDer::Pkcs8(_)));
            let t = key_templates(&key.private_key_der(), kt, key.public_key()).unwrap();
            assert_eq!(
                t.private.0.len(),
                if kt == KeyType::Rsa2048 { 9 } else { 3 }
            );
        }
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
    }
}
