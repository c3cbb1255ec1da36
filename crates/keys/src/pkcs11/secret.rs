//! Secrets sealed under an AES-256 key that lives in the token: the master key's `pkcs11` auto-unseal
//! (the master key is on disk only encrypted by a key that never leaves the HSM).
//!
//! Sealed format: `iv (12) || AES-256-GCM ciphertext || tag (16)`, the caller's associated data bound in.
//! The token key is a secret-key object, sensitive, non-extractable, usable only to encrypt and decrypt.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use zeroize::Zeroizing;

use super::{Pkcs11Engine, check_label, ck, read, write};
use crate::Error;

const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;

impl Pkcs11Engine {
    /// Encrypts `plain` under the token's AES-256 key labelled `label`, generating that key in the token
    /// when there is none (sensitive, non-extractable, encrypt/decrypt only). AES-GCM with a random IV
    /// and `aad` as associated data.
    pub fn seal_secret(&self, label: &str, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, Error> {
        check_label(label)?;
        let _create = write(&self.inner.objects);
        self.inner.with_session(|session, _| {
            let key = match secret_key(session, label)? {
                Some(key) => key,
                None => session
                    .generate_key(&Mechanism::AesKeyGen, &secret_key_template(label))
                    .map_err(ck)?,
            };
            let mut iv: [u8; IV_LEN] = rand::random();
            let params = GcmParams::new(&mut iv, aad, Ulong::from(TAG_BITS)).map_err(ck)?;
            let sealed = session
                .encrypt(&Mechanism::AesGcm(params), key, plain)
                .map_err(ck)?;
            let mut out = iv.to_vec();
            out.extend(sealed);
            Ok(out)
        })
    }

    /// Decrypts what [`Pkcs11Engine::seal_secret`] made with the key labelled `label` and the same `aad`.
    /// [`Error::KeyNotFound`] when the token has no such key; [`Error::Crypto`] when it does not open.
    pub fn open_secret(
        &self,
        label: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        check_label(label)?;
        if sealed.len() < IV_LEN + 16 {
            return Err(Error::Crypto("the sealed secret is too short"));
        }
        let _search = read(&self.inner.objects);
        self.inner.with_session(|session, _| {
            let key = secret_key(session, label)?.ok_or_else(|| Error::KeyNotFound {
                label: label.to_string(),
                reason: "the token has no secret key with this label",
            })?;
            let mut iv = [0u8; IV_LEN];
            iv.copy_from_slice(&sealed[..IV_LEN]);
            let params = GcmParams::new(&mut iv, aad, Ulong::from(TAG_BITS)).map_err(ck)?;
            session
                .decrypt(&Mechanism::AesGcm(params), key, &sealed[IV_LEN..])
                .map(Zeroizing::new)
                .map_err(|e| match e {
                    // SoftHSM2 reports a GCM tag that does not verify as CKR_GENERAL_ERROR, which
                    // elsewhere means a broken session: here it is a secret that does not open, and the
                    // session stays.
                    CkError::Pkcs11(RvError::GeneralError, _) => not_open(),
                    e => match ck(e) {
                        Error::TokenUnavailable(m) => Error::TokenUnavailable(m),
                        _ => not_open(),
                    },
                })
        })
    }
}

fn not_open() -> Error {
    Error::Crypto("the sealed secret does not open under the token's key")
}

fn secret_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>, Error> {
    // The caller holds the module's object lock: exclusive when it may create the key, shared otherwise.
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(ck)?;
    match found.as_slice() {
        [] => Ok(None),
        [h] => Ok(Some(*h)),
        more => Err(Error::Pkcs11(format!(
            "{} secret keys are labelled {label:?}",
            more.len()
        ))),
    }
}

fn secret_key_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(CkKeyType::AES),
        Attribute::ValueLen(Ulong::from(32u64)),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ]
}
