//! The trust anchors for client certificates: the certificate of every CA the platform manages (created,
//! imported or external). Devices and RAs present certificates issued by these CAs over mTLS.
//!
//! The TLS handshake cannot wait for the database, so the set lives in memory with a generation number:
//! a CA created or imported here is added before `create`/`import` returns (a client may use it at once),
//! and the lifecycle job reloads the set from storage so CAs added through another replica arrive within
//! one tick. The TLS layer rebuilds its verifier when it sees a new generation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::{poisoned, store_err};
use crate::{Error, Registry};

/// The anchor set and its generation.
#[derive(Debug, Default)]
pub(crate) struct Anchors {
    generation: AtomicU64,
    certs: RwLock<Arc<Vec<Vec<u8>>>>,
}

impl Anchors {
    fn replace_if_changed(&self, mut certs: Vec<Vec<u8>>) -> Result<(), Error> {
        certs.sort();
        let mut current = self.certs.write().map_err(|_| poisoned())?;
        if **current != certs {
            *current = Arc::new(certs);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    pub(crate) fn add(&self, der: &[u8]) -> Result<(), Error> {
        let mut certs = self.certs.read().map_err(|_| poisoned())?.to_vec();
        certs.push(der.to_vec());
        self.replace_if_changed(certs)
    }
}

/// Why a client certificate does not identify anyone right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCertProblem {
    /// Not a certificate this platform issued (fail closed: its revocation status is unknown).
    Unknown,
    /// Revoked.
    Revoked,
    /// Past its notAfter.
    Expired,
    /// A CA certificate of its chain is expired or not yet valid.
    IssuerOutsideValidity,
}

impl ClientCertProblem {
    /// A short explanation for error documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientCertProblem::Unknown => "the client certificate was not issued by this platform",
            ClientCertProblem::Revoked => "the client certificate is revoked",
            ClientCertProblem::Expired => "the client certificate has expired",
            ClientCertProblem::IssuerOutsideValidity => {
                "a CA certificate in the client certificate's chain is expired or not yet valid"
            }
        }
    }
}

impl Registry {
    /// The current anchors (DER) and their generation, for the TLS layer.
    pub fn trust_anchors(&self) -> (u64, Arc<Vec<Vec<u8>>>) {
        let certs = match self.anchors.certs.read() {
            Ok(c) => c.clone(),
            Err(_) => Arc::new(Vec::new()),
        };
        (self.anchors.generation.load(Ordering::Acquire), certs)
    }

    /// Reloads the anchors from storage (start-up and every lifecycle tick).
    pub async fn refresh_trust_anchors(&self) -> Result<(), Error> {
        let cas = self.store.list_cas().await.map_err(store_err("CAs"))?;
        self.anchors
            .replace_if_changed(cas.into_iter().map(|c| c.certificate_der).collect())
    }
}
