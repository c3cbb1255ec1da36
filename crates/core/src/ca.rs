//! Certificate authorities: creating roots and intermediates, importing existing CAs, and keeping each
//! CA's signing handle loaded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use shedu_keys::{CaSigner, Keystore, Signer, SoftwareKey};
use shedu_pki::rcgen::Issuer;
use shedu_pki::{
    CertInfo, ExtKeyUsage, KeyType, KeyUsage, Profile, Serial, SubjectName, Validity,
    build_ca_params, join_names, parse_names, pem_encode_cert,
};
use shedu_store::{CaRow, CaVaSettings, Store};

use crate::error::{poisoned, store_err};
use crate::events::event;
use crate::va::{VaConfig, VaState};
use crate::{Ca, CaKind, Clock, Error, Status};

/// Default lifetime of a root CA certificate: ten years.
const DEFAULT_ROOT_DAYS: u32 = 3650;
/// Default lifetime of an intermediate: five years, cut to the parent's end.
const DEFAULT_INTERMEDIATE_DAYS: u32 = 1825;

/// Optional profile settings; anything left out takes [`Profile::default`].
#[derive(Clone, Debug, Default)]
pub struct ProfileInput {
    /// Validity of issued certificates when a request names none.
    pub default_validity_days: Option<u32>,
    /// Key usage names (`digital_signature`, …).
    pub key_usages: Option<Vec<String>>,
    /// Extended key usage names (`server_auth`, …).
    pub ext_key_usages: Option<Vec<String>>,
    /// Key types accepted in CSRs.
    pub allowed_key_types: Option<Vec<String>>,
    /// About-to-expire threshold in days.
    pub expiry_warning_days: Option<u32>,
}

/// A request to create a root (no parent) or an intermediate.
#[derive(Clone, Debug)]
pub struct NewCa {
    /// Unique name.
    pub name: String,
    /// Key type name (`ec-p256`, …).
    pub key_type: String,
    /// The CA's subject.
    pub subject: SubjectName,
    /// Lifetime of the CA certificate.
    pub validity_days: Option<u32>,
    /// The managed CA to sign this one; `None` makes a self-signed root.
    pub parent_id: Option<String>,
    /// pathLenConstraint of this CA's certificate.
    pub path_len: Option<u8>,
    /// Issuance profile.
    pub profile: ProfileInput,
    /// OCSP/CRL settings.
    pub va: VaInput,
    /// Key engine (`software` or `pkcs11`); the configured default when `None`.
    pub engine: Option<String>,
}

/// Optional validation settings of a CA; anything left out takes the defaults (delegated responder, AIA
/// and CRL distribution point on, one CRL).
#[derive(Clone, Debug, Default)]
pub struct VaInput {
    /// `delegated` or `ca`.
    pub ocsp_signing: Option<String>,
    /// Write AIA (OCSP + caIssuers) into issued certificates.
    pub aia: Option<bool>,
    /// Write a CRL distribution point into issued certificates.
    pub crl_distribution_point: Option<bool>,
    /// Number of CRL partitions (1..=1024); fixed at creation.
    pub crl_shards: Option<u32>,
}

impl VaInput {
    fn resolve(&self) -> Result<CaVaSettings, Error> {
        let d = CaVaSettings::default();
        let ocsp_signing = self.ocsp_signing.clone().unwrap_or(d.ocsp_signing);
        if ocsp_signing != "delegated" && ocsp_signing != "ca" {
            return Err(Error::invalid(
                "invalid-profile",
                "ocsp_signing must be \"delegated\" or \"ca\"",
            ));
        }
        let crl_shards = i64::from(self.crl_shards.unwrap_or(1));
        if !(1..=1024).contains(&crl_shards) {
            return Err(Error::invalid(
                "invalid-profile",
                "crl_shards must be 1 to 1024",
            ));
        }
        Ok(CaVaSettings {
            ocsp_signing,
            aia: self.aia.unwrap_or(d.aia),
            crldp: self.crl_distribution_point.unwrap_or(d.crldp),
            crl_shards,
        })
    }
}

/// A request to import an existing CA certificate, with or without its key.
#[derive(Clone, Debug)]
pub struct ImportCa {
    /// Unique name.
    pub name: String,
    /// The CA certificate (the first PEM block is used).
    pub certificate_pem: String,
    /// Its private key (PKCS#8, SEC1 or PKCS#1 PEM); without it the CA only tracks certificates.
    pub private_key_pem: Option<String>,
    /// Issuance profile.
    pub profile: ProfileInput,
    /// OCSP/CRL settings.
    pub va: VaInput,
    /// Key engine the imported key goes into; the configured default when `None`.
    pub engine: Option<String>,
}

/// A CA ready to sign: its record, its signing handle and its chain.
pub(crate) struct LoadedCa {
    pub(crate) ca: Ca,
    /// How relying parties check this CA's certificates.
    pub(crate) va: CaVaSettings,
    pub(crate) issuer: Option<Issuer<'static, CaSigner>>,
    /// This CA's certificate and every known ancestor, PEM, leaf-most first.
    pub(crate) chain_pem: String,
}

/// The CA service: the one place CAs are created, loaded and used to sign.
pub struct CaService {
    pub(crate) store: Store,
    pub(crate) keystore: Keystore,
    pub(crate) clock: Arc<dyn Clock>,
    loaded: RwLock<HashMap<String, Arc<LoadedCa>>>,
    pub(crate) va: VaState,
    pub(crate) va_config: VaConfig,
    pub(crate) engines: crate::engines::Engines,
    pub(crate) anchors: crate::trust::Anchors,
    /// The RA of EST requests whose URL names none.
    pub(crate) est_default_ra: Option<String>,
}

impl std::fmt::Debug for CaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaService").finish_non_exhaustive()
    }
}

/// The sealed canary that proves at start-up that the master key opens this database's keys.
pub(crate) const CANARY_KEY: &str = "keystore_canary";
pub(crate) const CANARY_CONTEXT: &[u8] = b"shedu-keystore-canary";

impl CaService {
    /// Opens the service. Fails with a clear error, changing nothing, when `keystore`'s master key is not
    /// the one this database's keys were sealed with.
    pub async fn open(
        store: Store,
        keystore: Keystore,
        clock: Arc<dyn Clock>,
        va_config: VaConfig,
    ) -> Result<CaService, Error> {
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
        let service = CaService {
            store,
            keystore,
            clock,
            loaded: RwLock::new(HashMap::new()),
            va: VaState::default(),
            va_config,
            engines: crate::engines::Engines::default(),
            anchors: crate::trust::Anchors::default(),
            est_default_ra: None,
        };
        service.refresh_trust_anchors().await?;
        Ok(service)
    }

    /// The clock the service runs on.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The storage handle, for the gateway's audit log: it records requests rather than domain changes, so
    /// it has no service of its own and the server appends to and reads it directly.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates a root or, with `parent_id`, an intermediate CA with a fresh software key.
    pub async fn create(&self, req: NewCa) -> Result<Ca, Error> {
        let now = self.clock.now();
        let key_type: KeyType = req.key_type.parse()?;
        let profile = build_profile(&req.profile, req.path_len)?;
        let va = req.va.resolve()?;
        check_name(&req.name)?;
        let dn = req.subject.to_dn()?;
        let engine = self.engine(req.engine.as_deref())?;
        let parent = match &req.parent_id {
            Some(pid) => Some(self.loaded(pid).await?),
            None => None,
        };
        let serial = Serial::random();
        let id = new_id();
        let key = self.generate_key(&engine, &id, key_type).await?;
        let result = async {
            let (der, kind) = match &parent {
                None => {
                    let validity =
                        Validity::root(now, req.validity_days.unwrap_or(DEFAULT_ROOT_DAYS))?;
                    let params = build_ca_params(dn, validity, &serial, req.path_len, true)?;
                    let cert = params
                        .self_signed(&key.signer)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    (cert.der().to_vec(), CaKind::Root)
                }
                Some(parent) => {
                    let issuer = usable_issuer(parent, now)?;
                    let path_len = child_path_len(&parent.ca, req.path_len)?;
                    let validity = Validity::within_issuer(
                        now,
                        req.validity_days,
                        DEFAULT_INTERMEDIATE_DAYS,
                        parent.ca.not_after,
                    )?;
                    let params = build_ca_params(dn, validity, &serial, path_len, false)?;
                    let cert = params
                        .signed_by(&key.signer, issuer)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    (cert.der().to_vec(), CaKind::Intermediate)
                }
            };
            let record = Some((engine.name(), key.record.clone()));
            self.insert(
                id.clone(),
                req.name,
                kind,
                req.parent_id,
                &der,
                record,
                (profile, va),
                now,
            )
            .await
        }
        .await;
        if result.is_err() {
            self.discard_key(&engine, &id);
        }
        result
    }

    /// Imports an existing CA certificate, with its private key (then it can issue) or without.
    pub async fn import(&self, req: ImportCa) -> Result<Ca, Error> {
        let now = self.clock.now();
        check_name(&req.name)?;
        let der = shedu_pki::pem_to_der_certs(req.certificate_pem.as_bytes())?
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("malformed-input", "no certificate given"))?;
        let info = CertInfo::from_der(&der)?;
        if !info.is_ca {
            return Err(shedu_pki::Error::NotCa.into());
        }
        let profile = build_profile(&req.profile, None)?;
        let va = req.va.resolve()?;
        let id = new_id();
        let (kind, sealed) = match &req.private_key_pem {
            Some(pem) => {
                let key = SoftwareKey::from_pem(pem, info.key_type)?;
                if key.public_key() != info.public_key_bits.as_slice() {
                    return Err(shedu_pki::Error::KeyMismatch.into());
                }
                let engine = self.engine(req.engine.as_deref())?;
                let record = self.store_key(&engine, &id, key).await?;
                (CaKind::Imported, Some((engine.name(), record)))
            }
            None => (CaKind::External, None),
        };
        let parent_id = if info.self_issued {
            None
        } else {
            self.find_parent(&der).await?
        };
        self.insert(
            id,
            req.name,
            kind,
            parent_id,
            &der,
            sealed,
            (profile, va),
            now,
        )
        .await
    }

    /// One CA.
    pub async fn get(&self, id: &str) -> Result<Ca, Error> {
        Ok(self.loaded(id).await?.ca.clone()).map(|mut ca| {
            ca.status = self.effective_ca_status(&ca);
            ca
        })
    }

    /// Every CA, oldest first.
    pub async fn list(&self) -> Result<Vec<Ca>, Error> {
        let rows = self.store.list_cas().await.map_err(store_err("CAs"))?;
        rows.into_iter()
            .map(|r| {
                let mut ca = ca_from_row(r)?;
                ca.status = self.effective_ca_status(&ca);
                Ok(ca)
            })
            .collect()
    }

    /// The PEM chain of a CA: its certificate then its ancestors.
    pub async fn chain_pem(&self, id: &str) -> Result<String, Error> {
        Ok(self.loaded(id).await?.chain_pem.clone())
    }

    fn effective_ca_status(&self, ca: &Ca) -> Status {
        ca.status.effective(
            self.clock.now(),
            ca.not_after,
            i64::from(ca.profile.expiry_warning_days) * 86_400,
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        id: String,
        name: String,
        kind: CaKind,
        parent_id: Option<String>,
        der: &[u8],
        key_record: Option<(&'static str, Vec<u8>)>,
        (profile, va): (Profile, CaVaSettings),
        now: i64,
    ) -> Result<Ca, Error> {
        let info = CertInfo::from_der(der)?;
        let status = Status::Active.effective(
            now,
            info.not_after,
            i64::from(profile.expiry_warning_days) * 86_400,
        );
        let row = CaRow {
            id: id.clone(),
            name: name.clone(),
            kind: kind.as_str().to_string(),
            parent_id: parent_id.clone(),
            key_type: info.key_type.as_str().to_string(),
            engine: key_record.as_ref().map(|(e, _)| e.to_string()),
            key_sealed: key_record.map(|(_, r)| r),
            certificate_der: der.to_vec(),
            subject: info.subject.clone(),
            serial: info.serial.to_hex(),
            fingerprint: info.fingerprint.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
            status: status.as_str().to_string(),
            default_validity_days: i64::from(profile.default_validity_days),
            key_usages: join_names(&profile.key_usages),
            ext_key_usages: join_names(&profile.ext_key_usages),
            path_len: profile.path_len.map(i64::from),
            allowed_key_types: join_names(&profile.allowed_key_types),
            expiry_warning_days: i64::from(profile.expiry_warning_days),
            created_at: now,
        };
        let ty = if matches!(kind, CaKind::Imported | CaKind::External) {
            "ca.imported"
        } else {
            "ca.created"
        };
        let ev = event(
            ty,
            format!("cas/{id}"),
            now,
            serde_json::json!({
                "ca_id": id, "name": name, "kind": kind.as_str(), "parent_id": parent_id,
                "subject": info.subject, "serial": info.serial.to_hex(), "not_after": info.not_after,
            }),
        );
        self.store
            .insert_ca_with_settings(&row, &va, &ev)
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict { .. } => Error::conflict(
                    "ca-exists",
                    format!("a CA named {name:?} or with this certificate already exists"),
                ),
                other => store_err("CA")(other),
            })?;
        self.on_ca_added();
        self.anchors.add(der)?;
        Ok(self.loaded(&id).await?.ca.clone())
    }

    /// The loaded CA, from the cache or storage.
    pub(crate) async fn loaded(&self, id: &str) -> Result<Arc<LoadedCa>, Error> {
        if let Some(hit) = self.loaded.read().map_err(|_| poisoned())?.get(id) {
            return Ok(hit.clone());
        }
        let row = self
            .store
            .get_ca(id)
            .await
            .map_err(store_err(format!("CA {id}")))?;
        let mut chain_pem = pem_encode_cert(&row.certificate_der);
        let mut parent = row.parent_id.clone();
        // CAs form a tree; the depth bound only guards against a corrupt cycle.
        for _ in 0..16 {
            let Some(pid) = parent else { break };
            let p = self
                .store
                .get_ca(&pid)
                .await
                .map_err(store_err(format!("CA {pid}")))?;
            chain_pem.push_str(&pem_encode_cert(&p.certificate_der));
            parent = p.parent_id;
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

    /// The managed CA whose key signed `der`, if any.
    async fn find_parent(&self, der: &[u8]) -> Result<Option<String>, Error> {
        let cas = self.store.list_cas().await.map_err(store_err("CAs"))?;
        Ok(cas
            .into_iter()
            .find(|c| shedu_pki::is_signed_by(der, &c.certificate_der))
            .map(|c| c.id))
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

/// The pathLenConstraint of a new sub-CA: what was asked, within what the parent allows (RFC 5280 §4.2.1.9).
fn child_path_len(parent: &Ca, requested: Option<u8>) -> Result<Option<u8>, Error> {
    match (parent.profile.path_len, requested) {
        (Some(0), _) => Err(Error::invalid(
            "path-length-exceeded",
            format!("CA {} has path length 0 and cannot sign sub-CAs", parent.id),
        )),
        (Some(max), Some(req)) if req >= max => Err(Error::invalid(
            "path-length-exceeded",
            format!("path_len {req} must be below the parent's {max}"),
        )),
        (Some(max), None) => Ok(Some(max - 1)),
        (_, req) => Ok(req),
    }
}

fn build_profile(input: &ProfileInput, path_len: Option<u8>) -> Result<Profile, Error> {
    let d = Profile::default();
    let names = |list: &Option<Vec<String>>| list.as_ref().map(|v| v.join(","));
    let profile = Profile {
        default_validity_days: input
            .default_validity_days
            .unwrap_or(d.default_validity_days),
        key_usages: match names(&input.key_usages) {
            Some(s) => parse_names::<KeyUsage>(&s)?,
            None => d.key_usages,
        },
        ext_key_usages: match names(&input.ext_key_usages) {
            Some(s) => parse_names::<ExtKeyUsage>(&s)?,
            None => d.ext_key_usages,
        },
        path_len,
        allowed_key_types: match names(&input.allowed_key_types) {
            Some(s) => parse_names::<KeyType>(&s)?,
            None => d.allowed_key_types,
        },
        expiry_warning_days: input.expiry_warning_days.unwrap_or(d.expiry_warning_days),
    };
    if profile.default_validity_days == 0 {
        return Err(Error::invalid(
            "invalid-validity",
            "default_validity_days must be at least 1",
        ));
    }
    if profile.allowed_key_types.is_empty() {
        return Err(Error::invalid(
            "invalid-profile",
            "allowed_key_types must not be empty",
        ));
    }
    Ok(profile)
}

pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.len() > 128 {
        return Err(Error::invalid(
            "invalid-name",
            "name must be 1 to 128 characters",
        ));
    }
    Ok(())
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
    };
    Ok(Ca {
        kind: CaKind::parse(&r.kind)?,
        key_type: r.key_type.parse().map_err(|_| corrupt("key type"))?,
        status: r.status.parse().map_err(|_| corrupt("status"))?,
        id: r.id,
        name: r.name,
        parent_id: r.parent_id,
        key_handle: match (r.engine.as_deref(), &r.key_sealed) {
            (Some("pkcs11"), Some(label)) => Some(String::from_utf8_lossy(label).into_owned()),
            (Some(_), Some(_)) => Some("sealed".to_string()),
            _ => None,
        },
        engine: r.engine,
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
