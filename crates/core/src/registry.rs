//! The CA registry: the state every capability shares, and nothing else.
//!
//! It holds storage, the keystore, the key engines, the clock, the CAs loaded for signing (record, signing
//! handle, chain), the trust anchors for client certificates and the VA's revocation-sensitive caches.
//! Capabilities (`Cas`, `Issuance`, `Va`, `Enrollment`, `Devices`, …) each own their rules and *use* the
//! registry; none of them adds methods to it for its own job. The registry is built once per process by
//! [`crate::Services::open`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use shedu_keys::{CaSigner, Keystore};
use shedu_pki::rcgen::Issuer;
use shedu_pki::{KeyType, Profile, parse_names, pem_encode_cert};
use shedu_store::{CaRow, CaVaSettings, Store};

use crate::engines::Engines;
use crate::error::{poisoned, store_err};
use crate::trust::Anchors;
use crate::va::{VaConfig, VaState};
use crate::{Ca, CaKind, Clock, Error, Status};

/// The sealed canary that proves at start-up that the master key opens this database's keys.
pub(crate) const CANARY_KEY: &str = "keystore_canary";
pub(crate) const CANARY_CONTEXT: &[u8] = b"shedu-keystore-canary";

/// A CA ready to sign: its record, its signing handle and its chain.
pub(crate) struct LoadedCa {
    pub(crate) ca: Ca,
    /// How relying parties check this CA's certificates.
    pub(crate) va: CaVaSettings,
    pub(crate) issuer: Option<Issuer<'static, CaSigner>>,
    /// This CA's certificate and every known ancestor, PEM, leaf-most first.
    pub(crate) chain_pem: String,
}

/// A CA certificate's validity period, Unix seconds.
#[derive(Clone, Debug)]
pub(crate) struct Period {
    pub(crate) ca_id: String,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
}

impl Period {
    pub(crate) fn contains(&self, now: i64) -> bool {
        (self.not_before..=self.not_after).contains(&now)
    }
}

/// The shared CA registry. Cheap to share (`Arc`); every service holds one.
pub struct Registry {
    pub(crate) store: Store,
    pub(crate) keystore: Keystore,
    pub(crate) clock: Arc<dyn Clock>,
    loaded: RwLock<HashMap<String, Arc<LoadedCa>>>,
    /// [`Registry::chain_validity`]'s cache.
    periods: RwLock<HashMap<String, Arc<[Period]>>>,
    /// The VA's caches, which revocations anywhere must purge before they return.
    pub(crate) va: VaState,
    pub(crate) va_config: VaConfig,
    pub(crate) engines: Engines,
    pub(crate) anchors: Anchors,
    /// This replica's lease on its caches (`cluster.rs`).
    pub(crate) coherence: crate::cluster::Coherence,
    /// Moves on every secret-store token or policy change, here or (through the change feed) on another
    /// replica: the secret store's cached callers of an older generation are not used.
    pub(crate) secrets_generation: std::sync::atomic::AtomicU64,
    /// The KMIP objects reads used recently (`kmip/cache.rs`), which changes anywhere must forget.
    pub(crate) kmip_objects: crate::kmip::ObjectCache,
    /// Moves on every RA change and every ACME account update, here or (through the change feed) on
    /// another replica: ACME's cached RA settings and accounts, and EST's RAs, of an older generation are
    /// not used.
    pub(crate) ra_generation: std::sync::atomic::AtomicU64,
    /// Moves on every certificate revocation, here or (through the change feed) on another replica: client
    /// certificates remembered under an older generation are read again.
    pub(crate) revocation_generation: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens the registry. Fails with a clear error, changing nothing, when `keystore`'s master key is not
    /// the one this database's keys were sealed with.
    pub(crate) async fn open(
        store: Store,
        keystore: Keystore,
        clock: Arc<dyn Clock>,
        va_config: VaConfig,
        engines: Engines,
    ) -> Result<Registry, Error> {
        match store
            .meta_get(CANARY_KEY)
            .await
            .map_err(store_err("meta"))?
        {
            Some(sealed) => {
                keystore.open_secret(CANARY_CONTEXT, &sealed).map_err(|_| {
                    Error::invalid(
                        "wrong-master-key",
                        "the master key does not open this database's keys (wrong SHEDU_MASTER_KEY or key file); \
                         nothing was changed",
                    )
                })?;
            }
            None => {
                let sealed = keystore.seal_secret(CANARY_CONTEXT, b"shedu")?;
                store
                    .meta_put(CANARY_KEY, &sealed)
                    .await
                    .map_err(store_err("meta"))?;
            }
        }
        let registry = Registry {
            coherence: crate::cluster::Coherence::new(store.backend()),
            secrets_generation: std::sync::atomic::AtomicU64::new(0),
            kmip_objects: crate::kmip::ObjectCache::default(),
            ra_generation: std::sync::atomic::AtomicU64::new(0),
            revocation_generation: std::sync::atomic::AtomicU64::new(0),
            store,
            keystore,
            clock,
            loaded: RwLock::new(HashMap::new()),
            periods: RwLock::new(HashMap::new()),
            va: VaState::default(),
            va_config,
            engines,
            anchors: Anchors::default(),
        };
        registry.refresh_trust_anchors().await?;
        Ok(registry)
    }

    /// The clock every service runs on.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The VA configuration (public URL, validity of OCSP answers and CRLs).
    pub fn va_config(&self) -> &VaConfig {
        &self.va_config
    }

    /// The loaded CA, from the cache or storage.
    pub(crate) async fn loaded(&self, id: &str) -> Result<Arc<LoadedCa>, Error> {
        if let Some(hit) = self.loaded.read().map_err(|_| poisoned())?.get(id) {
            return Ok(hit.clone());
        }
        let row = self.ca_row(id).await?;
        let mut chain_pem = pem_encode_cert(&row.certificate_der);
        for p in self.ancestors(&row).await? {
            chain_pem.push_str(&pem_encode_cert(&p.certificate_der));
        }
        let issuer = match (&row.engine, &row.key_sealed) {
            (Some(engine), Some(record)) => {
                let key_type: KeyType = row
                    .key_type
                    .parse()
                    .map_err(|_| Error::Internal("stored key type".into()))?;
                let signer = self.open_key(engine, &row.id, key_type, record).await?;
                Some(
                    Issuer::from_ca_cert_der(&row.certificate_der.clone().into(), signer)
                        .map_err(|e| Error::Internal(format!("CA certificate of {id}: {e}")))?,
                )
            }
            _ => None,
        };
        let va = self
            .store
            .va_settings(id)
            .await
            .map_err(store_err(format!("CA {id}")))?;
        let loaded = Arc::new(LoadedCa {
            ca: ca_from_row(row)?,
            va,
            issuer,
            chain_pem,
        });
        self.loaded
            .write()
            .map_err(|_| poisoned())?
            .insert(id.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// The stored row of CA `id`.
    async fn ca_row(&self, id: &str) -> Result<CaRow, Error> {
        self.store
            .get_ca(id)
            .await
            .map_err(store_err(format!("CA {id}")))
    }

    /// The managed CAs above `row`, nearest first.
    async fn ancestors(&self, row: &CaRow) -> Result<Vec<CaRow>, Error> {
        let mut found = Vec::new();
        let mut parent = row.parent_id.clone();
        // CAs form a tree; the depth bound only guards against a corrupt cycle.
        for _ in 0..16 {
            let Some(pid) = parent else { break };
            let p = self.ca_row(&pid).await?;
            parent = p.parent_id.clone();
            found.push(p);
        }
        Ok(found)
    }

    /// The validity periods of CA `id` and of every managed CA above it, nearest first. A CA's period
    /// never changes, so they are cached for good; unlike [`Registry::loaded`], no key is opened.
    pub(crate) async fn chain_validity(&self, id: &str) -> Result<Arc<[Period]>, Error> {
        if let Some(hit) = self.periods.read().map_err(|_| poisoned())?.get(id) {
            return Ok(hit.clone());
        }
        let row = self.ca_row(id).await?;
        let ancestors = self.ancestors(&row).await?;
        let periods: Arc<[Period]> = std::iter::once(&row)
            .chain(&ancestors)
            .map(|r| Period {
                ca_id: r.id.clone(),
                not_before: r.not_before,
                not_after: r.not_after,
            })
            .collect();
        self.periods
            .write()
            .map_err(|_| poisoned())?
            .insert(id.to_string(), periods.clone());
        Ok(periods)
    }

    /// Every stored CA, oldest first, with its status as of now.
    pub(crate) async fn all_cas(&self) -> Result<Vec<Ca>, Error> {
        let rows = self.store.list_cas().await.map_err(store_err("CAs"))?;
        rows.into_iter()
            .map(|r| {
                let mut ca = ca_from_row(r)?;
                ca.status = self.effective_ca_status(&ca);
                Ok(ca)
            })
            .collect()
    }

    /// Every stored CA's certificate, DER (anchors for judging a certificate a host serves).
    pub(crate) async fn ca_certificates(&self) -> Result<Vec<Vec<u8>>, Error> {
        Ok(self
            .all_cas()
            .await?
            .into_iter()
            .map(|c| c.certificate_der)
            .collect())
    }

    /// A CA's status as of now.
    pub(crate) fn effective_ca_status(&self, ca: &Ca) -> Status {
        ca.status.effective(
            self.clock.now(),
            ca.not_after,
            i64::from(ca.profile.expiry_warning_days) * 86_400,
        )
    }

    /// Called once a CA is committed: it becomes an OCSP issuer and a client-certificate anchor at once.
    pub(crate) fn on_ca_added(&self, der: &[u8]) -> Result<(), Error> {
        self.va.forget_issuers();
        self.anchors.add(der)
    }

    /// Forgets what is cached about CA `id` (a replica created or changed it): its loaded record and the
    /// OCSP issuer index; its trust anchor is reloaded in the background. Signed OCSP answers stay: they
    /// follow the certificates' revocations, and a change of a CA row (its status, its re-sealed key) does
    /// not change them.
    pub(crate) fn forget_ca(self: &Arc<Self>, id: &str) {
        if let Ok(mut loaded) = self.loaded.write() {
            loaded.remove(id);
        }
        self.va.forget_issuers();
        self.reload_anchors();
    }

    /// Forgets every cache (changes may have been missed).
    pub(crate) fn forget_everything(self: &Arc<Self>) {
        self.forget_secret_callers();
        self.kmip_objects.forget_all();
        self.forget_ras();
        self.revocation_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Ok(mut loaded) = self.loaded.write() {
            loaded.clear();
        }
        self.va.forget_all();
        self.reload_anchors();
    }

    fn reload_anchors(self: &Arc<Self>) {
        let reg = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Some(reg) = reg.upgrade()
                && let Err(e) = reg.refresh_trust_anchors().await
            {
                tracing::warn!(error = %e, "trust anchor reload failed; retrying at the next lifecycle tick");
            }
        });
    }
}

/// The CA's signing handle, if it may sign now.
pub(crate) fn usable_issuer(
    loaded: &LoadedCa,
    now: i64,
) -> Result<&Issuer<'static, CaSigner>, Error> {
    let ca = &loaded.ca;
    let issuer = loaded.issuer.as_ref().ok_or_else(|| {
        Error::conflict(
            "ca-without-key",
            format!(
                "CA {} was imported without a private key and cannot issue",
                ca.id
            ),
        )
    })?;
    match ca.status.effective(now, ca.not_after, 0) {
        Status::Expired => Err(Error::conflict(
            "ca-expired",
            format!("CA {} has expired", ca.id),
        )),
        Status::Revoked => Err(Error::conflict(
            "ca-revoked",
            format!("CA {} is revoked", ca.id),
        )),
        _ => Ok(issuer),
    }
}

pub(crate) fn ca_from_row(r: CaRow) -> Result<Ca, Error> {
    let corrupt = |what: &str| Error::Internal(format!("stored CA {} has an invalid {what}", r.id));
    let profile = Profile {
        default_validity_days: u32::try_from(r.default_validity_days)
            .map_err(|_| corrupt("validity"))?,
        key_usages: parse_names(&r.key_usages).map_err(|_| corrupt("key usage"))?,
        ext_key_usages: parse_names(&r.ext_key_usages)
            .map_err(|_| corrupt("extended key usage"))?,
        path_len: r
            .path_len
            .map(|p| u8::try_from(p).map_err(|_| corrupt("path length")))
            .transpose()?,
        allowed_key_types: parse_names(&r.allowed_key_types)
            .map_err(|_| corrupt("key type list"))?,
        expiry_warning_days: u32::try_from(r.expiry_warning_days)
            .map_err(|_| corrupt("warning window"))?,
        names: crate::names::decode(r.name_policy.as_deref())?,
    };
    let engine = r
        .engine
        .as_deref()
        .map(str::parse::<crate::EngineKind>)
        .transpose()
        .map_err(|_| corrupt("key engine"))?;
    Ok(Ca {
        kind: CaKind::parse(&r.kind)?,
        key_type: r.key_type.parse().map_err(|_| corrupt("key type"))?,
        status: r.status.parse().map_err(|_| corrupt("status"))?,
        key_handle: match (engine, &r.key_sealed) {
            (Some(engine), Some(record)) => Some(engine.key_handle(record)),
            _ => None,
        },
        engine,
        id: r.id,
        name: r.name,
        parent_id: r.parent_id,
        certificate_der: r.certificate_der,
        subject: r.subject,
        serial: r.serial,
        fingerprint: r.fingerprint,
        not_before: r.not_before,
        not_after: r.not_after,
        profile,
        created_at: r.created_at,
    })
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
