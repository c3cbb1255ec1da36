//! Which key engine holds a CA's key, and the few operations the CA service needs from each: generate,
//! store an imported key, open a stored key reference, and discard a key after a failed creation.
//!
//! The CA record keeps the engine name and an engine-specific reference: for `software` the sealed key,
//! for `pkcs11` the key's label in the token (the key itself never leaves the token).

use std::sync::Arc;

use shedu_keys::{CaSigner, Pkcs11Engine, Signer, SoftwareKey};
use shedu_pki::KeyType;

use crate::error::key_unavailable;
use crate::{CaService, Error};

/// The configured engines.
#[derive(Clone, Default)]
pub(crate) struct Engines {
    pkcs11: Option<Pkcs11Engine>,
    default_pkcs11: bool,
}

/// One engine, chosen for an operation.
pub(crate) enum Engine {
    Software,
    Pkcs11(Pkcs11Engine),
}

impl Engine {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Engine::Software => "software",
            Engine::Pkcs11(_) => "pkcs11",
        }
    }
}

/// A new key: the signer to use now and the record to store in the CA row.
pub(crate) struct NewKey {
    pub(crate) signer: CaSigner,
    pub(crate) record: Vec<u8>,
}

impl CaService {
    /// Adds a PKCS#11 token; with `default`, CAs that name no engine go there.
    pub fn with_pkcs11(mut self, engine: Pkcs11Engine, default: bool) -> CaService {
        self.engines = Engines {
            pkcs11: Some(engine),
            default_pkcs11: default,
        };
        self
    }

    pub(crate) fn engine(&self, name: Option<&str>) -> Result<Engine, Error> {
        let wanted = name.unwrap_or(if self.engines.default_pkcs11 {
            "pkcs11"
        } else {
            "software"
        });
        match wanted {
            "software" => Ok(Engine::Software),
            "pkcs11" => self
                .engines
                .pkcs11
                .clone()
                .map(Engine::Pkcs11)
                .ok_or_else(|| {
                    Error::invalid(
                        "engine-unavailable",
                        "no PKCS#11 token is configured (SHEDU_PKCS11_MODULE)",
                    )
                }),
            other => Err(Error::invalid(
                "unsupported-engine",
                format!("unknown key engine {other:?}"),
            )),
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
        match engine {
            "software" => {
                let key = self.keystore.open(ca_id, key_type, record).map_err(|e| {
                    Error::KeyUnavailable(format!("the key of CA {ca_id} cannot be unsealed ({e})"))
                })?;
                Ok(CaSigner(Arc::new(key) as Arc<dyn Signer>))
            }
            "pkcs11" => {
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
            other => Err(Error::Internal(format!(
                "CA {ca_id} names unknown engine {other:?}"
            ))),
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
