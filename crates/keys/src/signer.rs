//! The one signing interface every engine implements.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use shedu_pki::rcgen::{self, PublicKeyData, SignatureAlgorithm, SigningKey};
use shedu_pki::{KeyType, Signs};

use crate::Error;

/// A private key held by an engine.
///
/// Contract: `sign` receives the whole message (the DER to-be-signed bytes) and hashes it itself with the
/// digest of [`KeyType::signature_algorithm`]; it returns the signature in its X.509 encoding (an
/// `Ecdsa-Sig-Value` DER for ECDSA, the raw block for RSA and Ed25519).
pub trait Signer: Send + Sync + fmt::Debug {
    /// The key's type, which fixes the signature algorithm.
    fn key_type(&self) -> KeyType;
    /// The subjectPublicKey bits of the key's SPKI.
    fn public_key(&self) -> &[u8];
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
}

/// A shared handle to a CA key that rcgen can sign certificates and CRLs with.
///
/// rcgen lets a key's `sign` answer only `RemoteKeyError`, so a failed signature keeps the engine's
/// [`Error`] aside, and pki takes it back ([`Signs::take_sign_failure`]) into the source of its
/// `Error::Signing`: callers can then tell a token that is gone from a bug.
#[derive(Clone, Debug)]
pub struct CaSigner(pub Arc<dyn Signer>);

thread_local! {
    /// The engine error of the last `CaSigner::sign` on this thread that failed, until taken. Per thread
    /// because one `CaSigner` is shared by concurrent requests, and rcgen calls `sign` and returns its
    /// error on the caller's thread: the signature that failed is the one whose error path takes it. A
    /// cause nobody takes (rcgen used directly) is dropped by the next signature on the thread.
    static SIGN_FAILURE: Cell<Option<Error>> = const { Cell::new(None) };
}

impl PublicKeyData for CaSigner {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.key_type().signature_algorithm()
    }
}

impl SigningKey for CaSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let result = self.0.sign(msg);
        match result {
            Ok(signature) => {
                SIGN_FAILURE.set(None);
                Ok(signature)
            }
            Err(e) => {
                SIGN_FAILURE.set(Some(e));
                Err(rcgen::Error::RemoteKeyError)
            }
        }
    }
}

impl Signs for CaSigner {
    fn take_sign_failure(&self) -> Option<Box<dyn std::error::Error + Send + Sync>> {
        SIGN_FAILURE
            .take()
            .map(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    }
}
