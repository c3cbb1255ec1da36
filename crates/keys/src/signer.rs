//! The one signing interface every engine implements.

use std::fmt;
use std::sync::Arc;

use shedu_pki::KeyType;
use shedu_pki::rcgen::{self, PublicKeyData, SignatureAlgorithm, SigningKey};

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
#[derive(Clone, Debug)]
pub struct CaSigner(pub Arc<dyn Signer>);

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
        self.0.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}
