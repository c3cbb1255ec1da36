//! The `software` engine: keys generated or imported in process, stored only sealed with AES-256-GCM.
//!
//! Sealed format (version 1): `0x01 || nonce (12) || AES-256-GCM(plaintext) || tag (16)`, where the plaintext
//! is one format byte (PKCS#8, SEC1 or PKCS#1) followed by the private key DER, and the associated data is
//! `"shedu-key-v1:" || owner id || ":" || key type`. The key-encryption key is HKDF-SHA256 of the master
//! secret, so a later passphrase-derived master secret plugs in without changing the format.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use shedu_pki::KeyType;
use shedu_pki::rcgen::{KeyPair, RsaKeySize, SigningKey};
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, MasterKey, Signer};

const VERSION: u8 = 1;

/// How a private key's DER is encoded; kept so the key is rebuilt exactly as it was imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyFormat {
    Pkcs8 = 0,
    Sec1 = 1,
    Pkcs1 = 2,
}

impl KeyFormat {
    fn from_byte(b: u8) -> Option<KeyFormat> {
        match b {
            0 => Some(KeyFormat::Pkcs8),
            1 => Some(KeyFormat::Sec1),
            2 => Some(KeyFormat::Pkcs1),
            _ => None,
        }
    }

    fn wrap(self, der: &[u8]) -> rustls_pki_types::PrivateKeyDer<'_> {
        use rustls_pki_types::{
            PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
        };
        match self {
            KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
            KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
        }
    }
}

/// A private key in process memory. Zeroized when dropped; `Debug` shows only the key type.
pub struct SoftwareKey {
    key_type: KeyType,
    format: KeyFormat,
    pair: KeyPair,
}

impl SoftwareKey {
    /// Generates a new key of `key_type`.
    pub fn generate(key_type: KeyType) -> Result<SoftwareKey, Error> {
        let alg = key_type.signature_algorithm();
        let pair = match key_type.rsa_bits() {
            Some(bits) => {
                let size = match bits {
                    2048 => RsaKeySize::_2048,
                    3072 => RsaKeySize::_3072,
                    _ => RsaKeySize::_4096,
                };
                KeyPair::generate_rsa_for(alg, size)
            }
            None => KeyPair::generate_for(alg),
        }
        .map_err(|_| Error::Crypto("key generation failed"))?;
        Ok(SoftwareKey {
            key_type,
            format: KeyFormat::Pkcs8,
            pair,
        })
    }

    /// Decodes a PEM private key: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`). `key_type` comes from the certificate the key belongs to.
    pub fn from_pem(pem_text: &str, key_type: KeyType) -> Result<SoftwareKey, Error> {
        let block =
            pem::parse(pem_text.trim()).map_err(|e| Error::InvalidKey(format!("not PEM: {e}")))?;
        let format = match block.tag() {
            "PRIVATE KEY" => KeyFormat::Pkcs8,
            "EC PRIVATE KEY" => KeyFormat::Sec1,
            "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(Error::InvalidKey(
                    "encrypted PKCS#8 is not supported; decrypt it first".into(),
                ));
            }
            other => return Err(Error::InvalidKey(format!("unexpected PEM label {other:?}"))),
        };
        let der = Zeroizing::new(block.into_contents());
        SoftwareKey::from_der(format, &der, key_type)
    }

    fn from_der(format: KeyFormat, der: &[u8], key_type: KeyType) -> Result<SoftwareKey, Error> {
        let pair =
            KeyPair::from_der_and_sign_algo(&format.wrap(der), key_type.signature_algorithm())
                .map_err(|_| Error::InvalidKey(format!("not a valid {key_type} private key")))?;
        Ok(SoftwareKey {
            key_type,
            format,
            pair,
        })
    }
}

/// A key pair made for someone else: EST `serverkeygen` generates a device's key and hands it to the
/// device over TLS (RFC 7030 §4.4), the one case where a private key leaves the platform.
pub struct ExportedKey {
    /// PKCS#8 DER of the private key; zeroized on drop.
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// SubjectPublicKeyInfo DER of the public key.
    pub spki: Vec<u8>,
}

impl fmt::Debug for ExportedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportedKey(<redacted>)")
    }
}

impl ExportedKey {
    /// Generates a key pair of `key_type` for export.
    pub fn generate(key_type: KeyType) -> Result<ExportedKey, Error> {
        let key = SoftwareKey::generate(key_type)?;
        Ok(ExportedKey {
            pkcs8: Zeroizing::new(key.pair.serialize_der()),
            spki: shedu_pki::rcgen::PublicKeyData::subject_public_key_info(&key.pair),
        })
    }

    /// The private key as PKCS#8 PEM (`PRIVATE KEY`), for a key file handed to its user (the bootstrap
    /// PKI's service keys); zeroized on drop.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let block = pem::Pem::new("PRIVATE KEY", self.pkcs8.to_vec());
        let text = pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );
        // The copy the PEM block held is wiped too.
        drop(Zeroizing::new(block.into_contents()));
        Zeroizing::new(text)
    }
}

impl SoftwareKey {
    /// The key as PKCS#8/SEC1/PKCS#1 DER for rustls. Only for the platform's own TLS server key, which the
    /// TLS stack must hold in memory; CA keys never leave this crate.
    pub fn to_tls_private_key(&self) -> rustls_pki_types::PrivateKeyDer<'static> {
        self.format.wrap(self.pair.serialized_der()).clone_key()
    }

    /// The private key DER, borrowed (no copy), for importing the key into a PKCS#11 token.
    pub(crate) fn private_key_der(&self) -> rustls_pki_types::PrivateKeyDer<'_> {
        self.format.wrap(self.pair.serialized_der())
    }
}

impl Signer for SoftwareKey {
    fn key_type(&self) -> KeyType {
        self.key_type
    }

    fn public_key(&self) -> &[u8] {
        self.pair.public_key_raw()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.pair
            .sign(message)
            .map_err(|_| Error::Crypto("signing failed"))
    }
}

impl Drop for SoftwareKey {
    fn drop(&mut self) {
        self.pair.zeroize();
    }
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SoftwareKey({})", self.key_type)
    }
}

/// Seals and opens software keys under the key-encryption key derived from the master secret.
pub struct Keystore {
    kek: LessSafeKey,
    /// HKDF-SHA256's pseudorandom key of the master secret, for [`Keystore::mac_key`].
    prk: hkdf::Prk,
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keystore(<sealed>)")
    }
}

pub(crate) struct KekLen;

impl hkdf::KeyType for KekLen {
    fn len(&self) -> usize {
        32
    }
}

impl Keystore {
    /// Derives the key-encryption key: HKDF-SHA256(salt "shedu-keystore", ikm master, info "kek-v1").
    pub fn new(master: &MasterKey) -> Result<Keystore, Error> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"shedu-keystore").extract(master.bytes());
        let mut kek = Zeroizing::new([0u8; 32]);
        prk.expand(&[b"kek-v1"], KekLen)
            .and_then(|okm| okm.fill(kek.as_mut()))
            .map_err(|_| Error::Crypto("HKDF failed"))?;
        let key =
            UnboundKey::new(&AES_256_GCM, kek.as_ref()).map_err(|_| Error::Crypto("AES key"))?;
        Ok(Keystore {
            kek: LessSafeKey::new(key),
            prk,
        })
    }

    /// An HMAC-SHA256 key for `purpose` (HKDF-SHA256 of the master secret, info `"mac-v1:" || purpose`):
    /// the same on every replica that shares the master secret, and never stored.
    pub fn mac_key(&self, purpose: &str) -> Result<hmac::Key, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.prk
            .expand(&[b"mac-v1:", purpose.as_bytes()], KekLen)
            .and_then(|okm| okm.fill(key.as_mut()))
            .map_err(|_| Error::Crypto("HKDF failed"))?;
        Ok(hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()))
    }

    /// Seals `key` for `owner` (a CA id).
    pub fn seal(&self, owner: &str, key: &SoftwareKey) -> Result<Vec<u8>, Error> {
        let mut plain = Zeroizing::new(Vec::with_capacity(key.pair.serialized_der().len() + 1));
        plain.push(key.format as u8);
        plain.extend_from_slice(key.pair.serialized_der());
        self.seal_secret(&key_aad(owner, key.key_type), &plain)
    }

    /// Opens a sealed key of `owner`.
    pub fn open(
        &self,
        owner: &str,
        key_type: KeyType,
        sealed: &[u8],
    ) -> Result<SoftwareKey, Error> {
        let unseal = || Error::Unseal {
            owner: owner.to_string(),
        };
        let plain = self
            .open_secret(&key_aad(owner, key_type), sealed)
            .map_err(|_| unseal())?;
        let (&format, der) = plain.split_first().ok_or_else(unseal)?;
        let format = KeyFormat::from_byte(format).ok_or_else(unseal)?;
        SoftwareKey::from_der(format, der, key_type)
    }

    /// Seals any secret under the key-encryption key, bound to `context` as associated data.
    pub fn seal_secret(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, Error> {
        let mut buf = Zeroizing::new(plain.to_vec());
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        self.kek
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut *buf,
            )
            .map_err(|_| Error::Crypto("seal failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a secret sealed by [`Keystore::seal_secret`] with the same `context`.
    pub fn open_secret(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let fail = || Error::Unseal {
            owner: String::from_utf8_lossy(context).into_owned(),
        };
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(fail());
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| fail())?;
        let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .kek
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| fail())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn key_aad(owner: &str, key_type: KeyType) -> Vec<u8> {
    format!("shedu-key-v1:{owner}:{key_type}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_binds_owner_and_detects_tampering() {
        let ks = Keystore::new(&MasterKey::generate()).unwrap();
        let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
        let sealed = ks.seal("ca-1", &key).unwrap();
        let opened = ks.open("ca-1", KeyType::EcP256, &sealed).unwrap();
        assert_eq!(opened.public_key(), key.public_key());
        assert!(matches!(
            ks.open("ca-2", KeyType::EcP256, &sealed),
            Err(Error::Unseal { .. })
        ));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 20;
        tampered[last] ^= 1;
        assert!(matches!(
            ks.open("ca-1", KeyType::EcP256, &tampered),
            Err(Error::Unseal { .. })
        ));
        let other = Keystore::new(&MasterKey::generate()).unwrap();
        assert!(other.open("ca-1", KeyType::EcP256, &sealed).is_err());
    }

    #[test]
    fn every_key_type_generates_and_signs() {
        for kt in [
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
        ] {
            let key = SoftwareKey::generate(kt).unwrap();
            assert!(!key.sign(b"hello").unwrap().is_empty(), "{kt}");
        }
    }
}
