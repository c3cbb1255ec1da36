//! JSON Web Keys (RFC 7517/7518) of the types ACME accounts may use, and their RFC 7638 thumbprints.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

use crate::jws::Alg;
use crate::{Error, ProblemType, b64, b64_decode};

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (aws-lc-rs verifies up to 8192).
const MAX_RSA_BITS: usize = 8192;

/// An account public key. The base64url members are kept as sent, so the thumbprint is the client's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jwk {
    /// `kty: EC`, `crv: P-256` or `P-384`.
    Ec {
        /// `P-256` or `P-384`.
        crv: &'static str,
        /// The x coordinate, base64url.
        x: String,
        /// The y coordinate, base64url.
        y: String,
    },
    /// `kty: RSA`.
    Rsa {
        /// The modulus, base64url.
        n: String,
        /// The public exponent, base64url.
        e: String,
    },
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519 {
        /// The public key, base64url.
        x: String,
    },
}

fn member<'a>(
    obj: &'a serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, Error> {
    obj.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::malformed(format!("the JWK has no string member {name:?}")))
}

fn bad_key(detail: impl Into<String>) -> Error {
    Error::new(ProblemType::BadPublicKey, detail)
}

impl Jwk {
    /// Reads a public JWK. A private key (`d`), an unknown `kty` or curve, a wrong coordinate length or an
    /// RSA modulus outside 2048..=8192 bits is refused (`badPublicKey`, `malformed` for non-keys).
    pub fn from_value(v: &Value) -> Result<Jwk, Error> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::malformed("a JWK is a JSON object"))?;
        if obj.contains_key("d") {
            return Err(bad_key("the JWK carries a private key"));
        }
        let jwk = match member(obj, "kty")? {
            "EC" => {
                let (crv, len) = match member(obj, "crv")? {
                    "P-256" => ("P-256", 32),
                    "P-384" => ("P-384", 48),
                    other => return Err(bad_key(format!("unsupported EC curve {other:?}"))),
                };
                let (x, y) = (member(obj, "x")?, member(obj, "y")?);
                if b64_decode("x", x)?.len() != len || b64_decode("y", y)?.len() != len {
                    return Err(bad_key(format!("{crv} coordinates are {len} octets")));
                }
                Jwk::Ec {
                    crv,
                    x: x.to_string(),
                    y: y.to_string(),
                }
            }
            "RSA" => {
                let (n, e) = (member(obj, "n")?, member(obj, "e")?);
                let modulus = b64_decode("n", n)?;
                let bits = modulus.iter().position(|b| *b != 0).map_or(0, |i| {
                    (modulus.len() - i) * 8 - modulus[i].leading_zeros() as usize
                });
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(bad_key(format!(
                        "an RSA modulus of {bits} bits is outside {MIN_RSA_BITS}..={MAX_RSA_BITS}"
                    )));
                }
                let exponent = b64_decode("e", e)?;
                if exponent.is_empty() || exponent.len() > 4 {
                    return Err(bad_key("unsupported RSA exponent"));
                }
                Jwk::Rsa {
                    n: n.to_string(),
                    e: e.to_string(),
                }
            }
            "OKP" => {
                if member(obj, "crv")? != "Ed25519" {
                    return Err(bad_key("the only OKP curve supported is Ed25519"));
                }
                let x = member(obj, "x")?;
                if b64_decode("x", x)?.len() != 32 {
                    return Err(bad_key("an Ed25519 key is 32 octets"));
                }
                Jwk::Ed25519 { x: x.to_string() }
            }
            other => return Err(bad_key(format!("unsupported key type {other:?}"))),
        };
        Ok(jwk)
    }

    /// Parses a JWK from JSON text (as stored).
    pub fn from_json(text: &str) -> Result<Jwk, Error> {
        let v: Value =
            serde_json::from_str(text).map_err(|_| Error::malformed("the JWK is not JSON"))?;
        Jwk::from_value(&v)
    }

    /// The RFC 7638 §3 canonical form: the required members only, in lexicographic order, no
    /// whitespace. It is itself a valid JWK, so it is also the stored form.
    pub fn canonical_json(&self) -> String {
        // The members are base64url strings and fixed names: no escaping is ever needed.
        match self {
            Jwk::Ec { crv, x, y } => {
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            Jwk::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            Jwk::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        }
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256(canonical JSON)).
    pub fn thumbprint(&self) -> String {
        b64(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.canonical_json().as_bytes())
                .as_ref(),
        )
    }

    /// The key as an X.509 SubjectPublicKeyInfo's BIT STRING content: the uncompressed point (EC), the
    /// raw key (Ed25519), or the DER `RSAPublicKey` (RFC 8017 §A.1.1). Matches a certificate's key
    /// (revocation with the certificate's own key, RFC 8555 §7.6).
    pub fn public_key_bits(&self) -> Result<Vec<u8>, Error> {
        Ok(match self {
            Jwk::Ec { x, y, .. } => {
                let mut point = vec![4u8];
                point.extend(b64_decode("x", x)?);
                point.extend(b64_decode("y", y)?);
                point
            }
            Jwk::Ed25519 { x } => b64_decode("x", x)?,
            Jwk::Rsa { n, e } => {
                let mut body = der_uint(&b64_decode("n", n)?);
                body.extend(der_uint(&b64_decode("e", e)?));
                der_tlv(0x30, &body)
            }
        })
    }

    /// The JWS algorithm this key signs with (one per key type here).
    pub fn alg(&self) -> Alg {
        match self {
            Jwk::Ec { crv: "P-384", .. } => Alg::Es384,
            Jwk::Ec { .. } => Alg::Es256,
            Jwk::Rsa { .. } => Alg::Rs256,
            Jwk::Ed25519 { .. } => Alg::EdDsa,
        }
    }

    /// Verifies `signature` over `message` with algorithm `alg`, which must be this key's
    /// (`badSignatureAlgorithm` otherwise). A wrong signature is `malformed` (RFC 8555 §6.2 has no
    /// dedicated type).
    pub fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> Result<(), Error> {
        if alg != self.alg() {
            return Err(Error::new(
                ProblemType::BadSignatureAlgorithm,
                format!("{} does not fit a {} key", alg.name(), self.alg().name()),
            ));
        }
        let ok = match self {
            Jwk::Ec { crv, x, y } => {
                let algorithm: &'static dyn signature::VerificationAlgorithm = if *crv == "P-384" {
                    &signature::ECDSA_P384_SHA384_FIXED
                } else {
                    &signature::ECDSA_P256_SHA256_FIXED
                };
                let mut point = vec![4u8];
                point.extend(b64_decode("x", x)?);
                point.extend(b64_decode("y", y)?);
                UnparsedPublicKey::new(algorithm, point).verify(message, sig)
            }
            Jwk::Rsa { n, e } => RsaPublicKeyComponents {
                n: b64_decode("n", n)?,
                e: b64_decode("e", e)?,
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig),
            Jwk::Ed25519 { x } => UnparsedPublicKey::new(&signature::ED25519, b64_decode("x", x)?)
                .verify(message, sig),
        };
        ok.map_err(|_| Error::malformed("the JWS signature does not verify"))
    }
}

/// A DER INTEGER of an unsigned big-endian value (leading zeros dropped, a zero added before a set high
/// bit).
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut v = Vec::with_capacity(bytes.len() + 1);
    if bytes.get(start).is_none_or(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(&bytes[start..]);
    der_tlv(0x02, &v)
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let len = body.len();
    if len < 0x80 {
        v.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().position(|b| *b != 0).unwrap_or(be.len() - 1);
        v.push(0x80 | (be.len() - skip) as u8);
        v.extend_from_slice(&be[skip..]);
    }
    v.extend_from_slice(body);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let v: Value = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let jwk = Jwk::from_value(&v).unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(Jwk::from_json(&jwk.canonical_json()).unwrap(), jwk);
    }

    #[test]
    fn rsa_public_key_bits_are_der() {
        let jwk = Jwk::Rsa {
            n: b64(&[0x80; 256]),
            e: "AQAB".into(),
        };
        let bits = jwk.public_key_bits().unwrap();
        // SEQUENCE (2-octet length) { INTEGER 257 octets (00 + 256), INTEGER 010001 }
        assert_eq!(&bits[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(&bits[4..9], &[0x02, 0x82, 0x01, 0x01, 0x00]);
        assert_eq!(&bits[bits.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
    }

    #[test]
    fn refuses_weak_private_and_unknown_keys() {
        let short_rsa = serde_json::json!({"kty": "RSA", "n": b64(&[0xc1; 128]), "e": "AQAB"});
        let private =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 32]), "d": "AA"});
        let curve = serde_json::json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"});
        let short_point = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 31]), "y": b64(&[1; 32])});
        for v in [short_rsa, private, curve, short_point] {
            assert_eq!(
                Jwk::from_value(&v).unwrap_err().problem,
                ProblemType::BadPublicKey,
                "{v}"
            );
        }
        for v in [serde_json::json!("x"), serde_json::json!({"kty": 1})] {
            assert_eq!(
                Jwk::from_value(&v).unwrap_err().problem,
                ProblemType::Malformed
            );
        }
    }
}
