//! The signing keys pki takes, and how a failed signature keeps its cause.

use rcgen::SigningKey;

use crate::Error;

/// A key pki signs certificates, CRLs and OCSP responses with: rcgen's [`SigningKey`], able to say why its
/// last signature failed.
///
/// rcgen lets [`SigningKey::sign`] return only `rcgen::Error::RemoteKeyError`, which erases why a key
/// engine failed, and a token that is gone is not a bug. A key that keeps the cause hands it over in
/// [`take_sign_failure`](Signs::take_sign_failure), and [`Error::Signing`] carries it as its source, so
/// callers can tell an unavailable key from a broken one. The default keeps nothing.
pub trait Signs: SigningKey {
    /// Takes the cause of this key's last failed `sign` on the current thread; `None` when it kept none
    /// (or it was taken already).
    fn take_sign_failure(&self) -> Option<Box<dyn std::error::Error + Send + Sync>> {
        None
    }
}

/// In-memory rcgen keys fail only inside the crypto library; rcgen's own error says all there is.
impl Signs for rcgen::KeyPair {}

impl Error {
    /// A failed signature with `key`: its source is the key's own cause when rcgen reports a remote key
    /// error and the key kept one, otherwise rcgen's error.
    pub(crate) fn signing(key: &impl Signs, e: rcgen::Error) -> Error {
        let cause = match e {
            rcgen::Error::RemoteKeyError => key.take_sign_failure(),
            _ => None,
        };
        Error::Signing {
            source: cause.unwrap_or_else(|| Box::new(e)),
        }
    }
}
