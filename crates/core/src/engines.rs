//! Key engines: which engine holds a CA's key, and the few operations the CA registry needs from each:
//! generate, store an imported key, open a stored key reference, and discard a key after a failed creation.
//! This file is the only place that dispatches on the engine.
//!
//! The CA record keeps the engine name and an engine-specific reference: for `software` the sealed key,
//! for `pkcs11` the key's label in the token (the key itself never leaves the token).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use shedu_keys::{CaSigner, Pkcs11Engine, Signer, SoftwareKey};
use shedu_pki::KeyType;

use crate::error::key_unavailable;
use crate::{Error, Registry};

/// The kinds of key engine a CA key can live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// A key sealed with AES-256-GCM under the master key, stored in the CA row.
    Software,
    /// A non-extractable key in a PKCS#11 token; the CA row keeps its label.
    Pkcs11,
}

impl EngineKind {
    /// The configuration and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Software => "software",
            EngineKind::Pkcs11 => "pkcs11",
        }
    }

    /// Where a key is, never the key: the token label for `pkcs11`, `sealed` for `software`.
    pub(crate) fn key_handle(self, record: &[u8]) -> String {
        match self {
            EngineKind::Software => "sealed".to_string(),
            EngineKind::Pkcs11 => String::from_utf8_lossy(record).into_owned(),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EngineKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<EngineKind, Error> {
        match s {
            "software" => Ok(EngineKind::Software),
            "pkcs11" => Ok(EngineKind::Pkcs11),
            other => Err(Error::invalid(
                "unsupported-engine",
                format!("unknown key engine {other:?} (software or pkcs11)"),
            )),
        }
    }
}

/// The configured engines: software always, a PKCS#11 token when one is configured.
#[derive(Clone, Debug)]
pub struct Engines {
    pkcs11: Option<Pkcs11Engine>,
    default: EngineKind,
}

impl Default for Engines {
    fn default() -> Self {
        Engines {
            pkcs11: None,
            default: EngineKind::Software,
        }
    }
}

impl Engines {
    /// Software keys, plus `pkcs11` when given; CAs that name no engine go to `default`.
    pub fn new(pkcs11: Option<Pkcs11Engine>, default: EngineKind) -> Engines {
        Engines { pkcs11, default }
    }
}

/// One engine, chosen for an operation.
pub(crate) enum Engine {
    Software,
    Pkcs11(Pkcs11Engine),
}

impl Engine {
    pub(crate) fn kind(&self) -> EngineKind {
        match self {
            Engine::Software => EngineKind::Software,
            Engine::Pkcs11(_) => EngineKind::Pkcs11,
        }
    }
}

/// A new key: the signer to use now and the record to store in the CA row.
pub(crate) struct NewKey {
    pub(crate) signer: CaSigner,
    pub(crate) record: Vec<u8>,
}

impl Registry {
    pub(crate) fn engine(&self, kind: Option<EngineKind>) -> Result<Engine, Error> {
        match kind.unwrap_or(self.engines.default) {
            EngineKind::Software => Ok(Engine::Software),
            EngineKind::Pkcs11 => {
                self.engines
                    .pkcs11
                    .clone()
                    .map(Engine::Pkcs11)
                    .ok_or_else(|| {
                        Error::invalid(
                            "engine-unavailable",
                            "no PKCS#11 token is configured (SHEDU_PKCS11_MODULE)",
                        )
                    })
            }
        }
    }

    /// Generates a CA key in `engine`. Key generation (RSA especially) is slow CPU or token work, so it runs
    /// on the blocking pool.
    pub(crate) async fn generate_key(
        &self,
        engine: &Engine,
        ca_id: &str,
        key_type: KeyType,
    ) -> Result<NewKey, Error> {
        match engine {
            Engine::Software => {
                let key = blocking(move || SoftwareKey::generate(key_type)).await??;
                let record = self.keystore.seal(ca_id, &key)?;
                Ok(NewKey {
                    signer: CaSigner(Arc::new(key)),
                    record,
                })
            }
            Engine::Pkcs11(token) => {
                let (token, label) = (token.clone(), label(ca_id));
                let l = label.clone();
                let signer = blocking(move || token.generate(&l, key_type))
                    .await?
                    .map_err(pkcs11_err)?;
                Ok(NewKey {
                    signer: CaSigner(signer),
                    record: label.into_bytes(),
                })
            }
        }
    }

    /// Puts an imported key into `engine`; returns the record to store.
    pub(crate) async fn store_key(
        &self,
        engine: &Engine,
        ca_id: &str,
        key: SoftwareKey,
    ) -> Result<Vec<u8>, Error> {
        match engine {
            Engine::Software => Ok(self.keystore.seal(ca_id, &key)?),
            Engine::Pkcs11(token) => {
                let (token, label) = (token.clone(), label(ca_id));
                let l = label.clone();
                blocking(move || token.import(&l, &key))
                    .await?
                    .map_err(pkcs11_err)?;
                Ok(label.into_bytes())
            }
        }
    }

    /// Opens a stored key reference.
    pub(crate) async fn open_key(
        &self,
        engine: &str,
        ca_id: &str,
        key_type: KeyType,
        record: &[u8],
    ) -> Result<CaSigner, Error> {
        let engine: EngineKind = engine
            .parse()
            .map_err(|_| Error::Internal(format!("CA {ca_id} names unknown engine {engine:?}")))?;
        match engine {
            EngineKind::Software => {
                let key = self.keystore.open(ca_id, key_type, record).map_err(|e| {
                    Error::KeyUnavailable(format!("the key of CA {ca_id} cannot be unsealed ({e})"))
                })?;
                Ok(CaSigner(Arc::new(key) as Arc<dyn Signer>))
            }
            EngineKind::Pkcs11 => {
                let token = self.engines.pkcs11.clone().ok_or_else(|| {
                    Error::KeyUnavailable(format!(
                        "CA {ca_id} keeps its key in a PKCS#11 token, and none is configured"
                    ))
                })?;
                let label = String::from_utf8_lossy(record).into_owned();
                let signer = blocking(move || token.find(&label, key_type))
                    .await?
                    .map_err(pkcs11_err)?;
                Ok(CaSigner(signer))
            }
        }
    }

    /// Removes a key made for a CA whose creation then failed (token keys only; software keys were never
    /// stored).
    pub(crate) fn discard_key(&self, engine: &Engine, ca_id: &str) {
        if let Engine::Pkcs11(token) = engine
            && let Err(e) = token.destroy(&label(ca_id))
        {
            tracing::warn!(error = %e, ca = ca_id, "could not remove the token key of a failed CA creation");
        }
    }
}

fn label(ca_id: &str) -> String {
    format!("shedu-ca-{ca_id}")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("key engine task: {e}")))
}

fn pkcs11_err(e: shedu_keys::Error) -> Error {
    use shedu_keys::Error as K;
    match e {
        e if key_unavailable(&e) => Error::KeyUnavailable(e.to_string()),
        K::UnsupportedAlgorithm(_) => Error::invalid("unsupported-key", e.to_string()),
        K::KeyExists { .. } => Error::conflict("key-exists", e.to_string()),
        other => Error::Internal(other.to_string()),
    }
}
