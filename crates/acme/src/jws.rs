//! Flattened JWS (RFC 7515 §7.2.2) as ACME restricts it (RFC 8555 §6.2): one signature, a protected
//! header only, and the header members ACME needs (`alg`, `nonce`, `url`, and exactly one of `jwk` and
//! `kid`).

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Jwk, ProblemType, b64_decode};

/// Largest request body accepted (a CSR with many names is a few KiB; RSA-8192 keys are 1.4 KiB).
pub const MAX_JWS_LEN: usize = 64 * 1024;

/// A JWS algorithm shedu accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA P-256 SHA-256.
    Es256,
    /// ECDSA P-384 SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// Ed25519.
    EdDsa,
    /// HMAC SHA-256: only for external account bindings (RFC 8555 §7.3.4).
    Hs256,
}

impl Alg {
    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Rs256 => "RS256",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
        }
    }

    /// The algorithms an account key may sign with, for error details and the directory.
    pub const ACCOUNT: [Alg; 4] = [Alg::Es256, Alg::Es384, Alg::Rs256, Alg::EdDsa];

    fn parse(s: &str) -> Result<Alg, Error> {
        [Alg::Es256, Alg::Es384, Alg::Rs256, Alg::EdDsa, Alg::Hs256]
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                Error::new(
                    ProblemType::BadSignatureAlgorithm,
                    format!("unsupported JWS algorithm {s:?}: use ES256, ES384, RS256 or EdDSA"),
                )
            })
    }
}

/// Who signed: a new key, or an account URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// `jwk`: the key itself (newAccount, revokeCert with the certificate's key, the inner keyChange JWS).
    Jwk(Jwk),
    /// `kid`: an account URL (or, in an EAB, the operator's key id).
    Kid(String),
}

/// The protected header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protected {
    /// The algorithm.
    pub alg: Alg,
    /// `nonce`; absent in inner JWSs (keyChange, EAB).
    pub nonce: Option<String>,
    /// `url`: the request URL.
    pub url: String,
    /// `jwk` or `kid`.
    pub key: KeyRef,
}

/// A parsed, not yet verified, JWS.
#[derive(Clone, Debug)]
pub struct Jws {
    /// The protected header.
    pub protected: Protected,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

impl Jws {
    /// Parses a flattened JWS from a request body.
    pub fn parse(body: &[u8]) -> Result<Jws, Error> {
        if body.len() > MAX_JWS_LEN {
            return Err(Error::malformed("the request is too large"));
        }
        let flat: Flattened = serde_json::from_slice(body).map_err(|_| {
            Error::malformed(
                "the body must be a flattened JWS: exactly protected, payload and signature",
            )
        })?;
        Jws::from_flattened(flat)
    }

    /// Parses a JWS given as a JSON value (the inner JWS of keyChange and of an EAB).
    pub fn from_value(v: &Value) -> Result<Jws, Error> {
        let flat: Flattened = Flattened::deserialize(v)
            .map_err(|_| Error::malformed("an inner JWS is a flattened JWS object"))?;
        Jws::from_flattened(flat)
    }

    fn from_flattened(flat: Flattened) -> Result<Jws, Error> {
        let header_bytes = b64_decode("protected", &flat.protected)?;
        let header: Value = serde_json::from_slice(&header_bytes)
            .map_err(|_| Error::malformed("the protected header is not JSON"))?;
        let header = header
            .as_object()
            .ok_or_else(|| Error::malformed("the protected header is not an object"))?;
        // RFC 7515 §4.1.11: a critical extension we do not understand must be refused; ACME uses none.
        if header.contains_key("crit") || header.get("b64").is_some() {
            return Err(Error::malformed("crit and b64 are not supported"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::malformed("the protected header has no alg"))?;
        let alg = Alg::parse(alg)?;
        let url = header
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::malformed("the protected header has no url"))?
            .to_string();
        let nonce = match header.get("nonce") {
            None => None,
            Some(Value::String(n)) => Some(n.clone()),
            Some(_) => {
                return Err(Error::new(
                    ProblemType::BadNonce,
                    "the nonce is not a string",
                ));
            }
        };
        let key = match (header.get("jwk"), header.get("kid")) {
            (Some(jwk), None) => KeyRef::Jwk(Jwk::from_value(jwk)?),
            (None, Some(Value::String(kid))) => KeyRef::Kid(kid.clone()),
            (None, Some(_)) => return Err(Error::malformed("kid is not a string")),
            _ => {
                return Err(Error::malformed(
                    "the header needs exactly one of jwk and kid",
                ));
            }
        };
        let payload = b64_decode("payload", &flat.payload)?;
        let signature = b64_decode("signature", &flat.signature)?;
        let mut signing_input = flat.protected.into_bytes();
        signing_input.push(b'.');
        signing_input.extend_from_slice(flat.payload.as_bytes());
        Ok(Jws {
            protected: Protected {
                alg,
                nonce,
                url,
                key,
            },
            payload,
            signing_input,
            signature,
        })
    }

    /// Verifies the signature with an account (or certificate) key. HS256 is refused here.
    pub fn verify(&self, key: &Jwk) -> Result<(), Error> {
        key.verify(self.protected.alg, &self.signing_input, &self.signature)
    }

    /// Verifies an HS256 MAC (an external account binding) with the operator's HMAC key.
    pub fn verify_hmac(&self, hmac_key: &[u8]) -> Result<(), Error> {
        if self.protected.alg != Alg::Hs256 {
            return Err(Error::new(
                ProblemType::BadSignatureAlgorithm,
                "an external account binding is signed with HS256",
            ));
        }
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, hmac_key);
        aws_lc_rs::hmac::verify(&key, &self.signing_input, &self.signature).map_err(|_| {
            Error::new(
                ProblemType::Unauthorized,
                "the external account binding MAC does not verify",
            )
        })
    }

    /// Whether this is a POST-as-GET (RFC 8555 §6.3): an empty payload.
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload as a request object.
    pub fn payload_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Error::malformed(format!("the payload does not fit the request: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    fn flattened(header: &Value, payload: &[u8], sign: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let protected = b64(header.to_string().as_bytes());
        let payload = b64(payload);
        let sig = sign(format!("{protected}.{payload}").as_bytes());
        serde_json::json!({"protected": protected, "payload": payload, "signature": b64(&sig)})
            .to_string()
            .into_bytes()
    }

    fn p256() -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let kp =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap();
        let point = kp.public_key().as_ref().to_vec();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
        (kp, jwk)
    }

    #[test]
    fn es256_jwk_request_verifies_and_tampering_fails() {
        let (kp, jwk) = p256();
        let rng = SystemRandom::new();
        let header = serde_json::json!({"alg": "ES256", "nonce": "n1", "url": "https://x/acme/ra/new-account", "jwk": jwk});
        let body = flattened(&header, br#"{"termsOfServiceAgreed":true}"#, |m| {
            kp.sign(&rng, m).unwrap().as_ref().to_vec()
        });
        let jws = Jws::parse(&body).unwrap();
        assert_eq!(jws.protected.url, "https://x/acme/ra/new-account");
        assert_eq!(jws.protected.nonce.as_deref(), Some("n1"));
        let KeyRef::Jwk(key) = &jws.protected.key else {
            panic!("jwk expected")
        };
        jws.verify(key).unwrap();
        // Another key does not verify it.
        let (_, other) = p256();
        let other = Jwk::from_value(&other).unwrap();
        assert_eq!(
            jws.verify(&other).unwrap_err().problem,
            ProblemType::Malformed
        );
        // A changed payload does not verify.
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["payload"] = Value::String(b64(b"{}"));
        let tampered = Jws::parse(v.to_string().as_bytes()).unwrap();
        assert!(tampered.verify(key).is_err());
    }

    #[test]
    fn eddsa_kid_post_as_get() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = Jwk::from_value(&serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())})).unwrap();
        let header = serde_json::json!({"alg": "EdDSA", "nonce": "n", "url": "u", "kid": "https://x/acme/ra/acct/1"});
        let body = flattened(&header, b"", |m| kp.sign(m).as_ref().to_vec());
        let jws = Jws::parse(&body).unwrap();
        assert!(jws.is_post_as_get());
        assert_eq!(
            jws.protected.key,
            KeyRef::Kid("https://x/acme/ra/acct/1".into())
        );
        jws.verify(&jwk).unwrap();
        // An EdDSA signature presented as ES256 is refused before any verification.
        assert_eq!(
            jwk.verify(Alg::Es256, b"m", &[0; 64]).unwrap_err().problem,
            ProblemType::BadSignatureAlgorithm
        );
    }

    #[test]
    fn rs256_verifies() {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let comps: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>> = kp.public_key().into();
        let jwk = serde_json::json!({"kty": "RSA", "n": b64(&comps.n), "e": b64(&comps.e)});
        let header = serde_json::json!({"alg": "RS256", "nonce": "n", "url": "u", "jwk": jwk});
        let rng = SystemRandom::new();
        let body = flattened(&header, b"{}", |m| {
            let mut sig = vec![0; kp.public_modulus_len()];
            kp.sign(&signature::RSA_PKCS1_SHA256, &rng, m, &mut sig)
                .unwrap();
            sig
        });
        let jws = Jws::parse(&body).unwrap();
        let KeyRef::Jwk(key) = &jws.protected.key else {
            panic!("jwk expected")
        };
        jws.verify(key).unwrap();
    }

    #[test]
    fn hs256_binding_verifies_only_with_its_key() {
        let key = b"0123456789abcdef0123456789abcdef";
        let header = serde_json::json!({"alg": "HS256", "url": "u", "kid": "eab1"});
        let body = flattened(&header, b"{}", |m| {
            let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
            aws_lc_rs::hmac::sign(&k, m).as_ref().to_vec()
        });
        let jws = Jws::parse(&body).unwrap();
        jws.verify_hmac(key).unwrap();
        assert_eq!(
            jws.verify_hmac(b"other").unwrap_err().problem,
            ProblemType::Unauthorized
        );
        // HS256 never verifies as an account signature.
        let (_, jwk) = p256();
        let jwk = Jwk::from_value(&jwk).unwrap();
        assert_eq!(
            jws.verify(&jwk).unwrap_err().problem,
            ProblemType::BadSignatureAlgorithm
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        let cases: [(&[u8], ProblemType); 6] = [
            (b"not json", ProblemType::Malformed),
            (br#"{"protected":"","payload":"","signature":"","header":{}}"#, ProblemType::Malformed),
            (br#"{"protected":"e30","payload":"","signature":""}"#, ProblemType::Malformed),
            // {"alg":"none","url":"u","kid":"k"}
            (br#"{"protected":"eyJhbGciOiJub25lIiwidXJsIjoidSIsImtpZCI6ImsifQ","payload":"","signature":""}"#, ProblemType::BadSignatureAlgorithm),
            // {"alg":"RS512","url":"u","kid":"k"}
            (br#"{"protected":"eyJhbGciOiJSUzUxMiIsInVybCI6InUiLCJraWQiOiJrIn0","payload":"","signature":""}"#, ProblemType::BadSignatureAlgorithm),
            // {"alg":"ES256","url":"u"}: neither jwk nor kid
            (br#"{"protected":"eyJhbGciOiJFUzI1NiIsInVybCI6InUifQ","payload":"","signature":""}"#, ProblemType::Malformed),
        ];
        for (body, want) in cases {
            let got = Jws::parse(body).unwrap_err().problem;
            assert_eq!(got, want, "{}", String::from_utf8_lossy(body));
        }
    }
}
