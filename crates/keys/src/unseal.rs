//! Auto-unseal: the master key kept on disk only wrapped (AES-256-GCM) under a key-encryption key derived
//! with HKDF-SHA256 from machine-bound input and a random salt kept beside the data. Pure: the caller reads
//! the input (a file, `/etc/machine-id`, a program's output) and the files.
//!
//! Wrapped form: `version (1 byte) || nonce (12 bytes) || ciphertext of the 32 key bytes || tag (16 bytes)`,
//! with associated data naming the purpose and the version, so the blob opens as nothing else.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use crate::software::KekLen;
use crate::{Error, MasterKey};

/// The format version of the wrapped master key.
const VERSION: u8 = 1;
/// HKDF info and AEAD associated data: what the key and the blob are for.
const PURPOSE: &[u8] = b"shedu master key wrap v1";
/// The length of a wrapped master key.
pub const WRAPPED_LEN: usize = 1 + NONCE_LEN + 32 + 16;
/// The shortest machine-bound input accepted (bytes): less is no secret worth deriving from.
pub const MIN_INPUT_LEN: usize = 16;

/// The key-encryption key that wraps the master key. Its `Debug` never prints it.
pub struct UnsealKek(LessSafeKey);

impl UnsealKek {
    /// HKDF-SHA256 with `salt` (random, kept in the data folder) over `input` (the machine-bound key
    /// material), info naming the purpose.
    pub fn derive(input: &[u8], salt: &[u8]) -> Result<UnsealKek, Error> {
        if input.len() < MIN_INPUT_LEN {
            return Err(Error::MasterKey(format!(
                "the unseal input has {} bytes, at least {MIN_INPUT_LEN} are needed",
                input.len()
            )));
        }
        if salt.len() < 16 {
            return Err(Error::MasterKey("the unseal salt is too short".into()));
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(input);
        let mut kek = Zeroizing::new([0u8; 32]);
        prk.expand(&[PURPOSE], KekLen)
            .and_then(|okm| okm.fill(kek.as_mut()))
            .map_err(|_| Error::Crypto("HKDF failed"))?;
        let key =
            UnboundKey::new(&AES_256_GCM, kek.as_ref()).map_err(|_| Error::Crypto("AES key"))?;
        Ok(UnsealKek(LessSafeKey::new(key)))
    }

    /// Wraps `master` under a fresh random nonce.
    pub fn wrap(&self, master: &MasterKey) -> Result<Vec<u8>, Error> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut body = master.bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(PURPOSE),
                &mut body,
            )
            .map_err(|_| Error::Crypto("AES-GCM seal"))?;
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a wrapped master key; fails when the key-encryption key is not the one that wrapped it (the
    /// machine-bound input or the salt changed) or the blob was altered.
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<MasterKey, Error> {
        if wrapped.len() != WRAPPED_LEN || wrapped[0] != VERSION {
            return Err(Error::MasterKey(format!(
                "not a wrapped master key of version {VERSION} ({WRAPPED_LEN} bytes)"
            )));
        }
        let (nonce, body) = wrapped[1..].split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Crypto("nonce"))?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(PURPOSE), &mut body)
            .map_err(|_| {
                Error::MasterKey(
                    "the wrapped master key does not open with the key derived from this input \
                     (the machine fingerprint, the input or the salt changed, or the file was altered)"
                        .into(),
                )
            })?;
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(plain);
        Ok(MasterKey::from_bytes(key))
    }
}

impl std::fmt::Debug for UnsealKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsealKek(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &[u8] = b"machine-bound input, 32 bytes ok";
    const SALT: &[u8] = b"sixteen byte slt";

    #[test]
    fn wraps_and_unwraps_with_the_same_input_and_salt() {
        let master = MasterKey::generate();
        let wrapped = UnsealKek::derive(INPUT, SALT)
            .unwrap()
            .wrap(&master)
            .unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert!(
            !wrapped.windows(32).any(|w| w == master.bytes()),
            "the clear key is not in the wrapped form"
        );
        let again = UnsealKek::derive(INPUT, SALT)
            .unwrap()
            .unwrap(&wrapped)
            .unwrap();
        assert_eq!(again.bytes(), master.bytes());
        // A fresh nonce each time.
        let other = UnsealKek::derive(INPUT, SALT)
            .unwrap()
            .wrap(&master)
            .unwrap();
        assert_ne!(other, wrapped);
    }

    #[test]
    fn another_input_salt_or_a_tampered_blob_does_not_open() {
        let master = MasterKey::generate();
        let wrapped = UnsealKek::derive(INPUT, SALT)
            .unwrap()
            .wrap(&master)
            .unwrap();
        let other_input = UnsealKek::derive(b"machine-bound input, 32 bytes OK", SALT).unwrap();
        let err = other_input.unwrap(&wrapped).unwrap_err().to_string();
        assert!(err.contains("does not open"), "{err}");
        let other_salt = UnsealKek::derive(INPUT, b"another salt 16b").unwrap();
        assert!(other_salt.unwrap(&wrapped).is_err());
        let kek = UnsealKek::derive(INPUT, SALT).unwrap();
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 1;
            assert!(kek.unwrap(&bad).is_err(), "byte {i} flipped still opens");
        }
        assert!(kek.unwrap(&wrapped[..wrapped.len() - 1]).is_err());
        assert!(kek.unwrap(&[]).is_err());
    }

    #[test]
    fn short_input_or_salt_is_refused_and_debug_redacts() {
        assert!(UnsealKek::derive(b"short", SALT).is_err());
        assert!(UnsealKek::derive(INPUT, b"salt").is_err());
        let kek = UnsealKek::derive(INPUT, SALT).unwrap();
        assert_eq!(format!("{kek:?}"), "UnsealKek(<redacted>)");
    }
}
