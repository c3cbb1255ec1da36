//! CA management: creating roots and intermediates and importing existing CAs. Signing handles are kept
//! loaded by the [`Registry`], which every capability shares.

use std::sync::Arc;

use shedu_keys::{Signer, SoftwareKey};
use shedu_pki::{
    CertInfo, ExtKeyUsage, KeyType, KeyUsage, Profile, Serial, SubjectName, Validity,
    build_ca_params, join_names, parse_names,
};
use shedu_store::{CaProfileUpdate, CaRow, CaVaSettings};

use crate::engines::EngineKind;
use crate::error::store_err;
use crate::events::{EventKind, event};
use crate::registry::{Registry, new_id, usable_issuer};
use crate::{AuditAction, AuditContext, Ca, CaKind, Error, Status};

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
    /// Which names a request may put into a certificate.
    pub names: crate::NamePolicyInput,
}

/// A request to create a root (no parent) or an intermediate.
#[derive(Clone, Debug)]
pub struct NewCa {
    /// Unique name.
    pub name: String,
    /// The CA key's type.
    pub key_type: KeyType,
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
    /// Key engine; the configured default when `None`.
    pub engine: Option<EngineKind>,
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
        self.resolve_over(CaVaSettings::default())
    }

    /// `d` with the settings given here replaced, checked.
    fn resolve_over(&self, d: CaVaSettings) -> Result<CaVaSettings, Error> {
        let ocsp_signing = self.ocsp_signing.clone().unwrap_or(d.ocsp_signing);
        if ocsp_signing != "delegated" && ocsp_signing != "ca" {
            return Err(Error::invalid(
                "invalid-profile",
                "ocsp_signing must be \"delegated\" or \"ca\"",
            ));
        }
        let crl_shards = self.crl_shards.map_or(d.crl_shards, i64::from);
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
    pub engine: Option<EngineKind>,
}

/// CA management: creating roots and intermediates, importing existing CAs, and reading them.
#[derive(Debug)]
pub struct Cas {
    reg: Arc<Registry>,
}

impl Cas {
    pub(crate) fn new(reg: Arc<Registry>) -> Cas {
        Cas { reg }
    }

    /// Creates a root or, with `parent_id`, an intermediate CA with a fresh software key.
    pub async fn create(&self, actor: &AuditContext, req: NewCa) -> Result<Ca, Error> {
        let now = self.reg.clock.now();
        let key_type = req.key_type;
        let profile = build_profile(&req.profile, req.path_len)?;
        let va = req.va.resolve()?;
        crate::model::check_name(&req.name)?;
        let dn = req.subject.to_dn()?;
        let engine = self.reg.engine(req.engine)?;
        let parent = match &req.parent_id {
            Some(pid) => Some(self.reg.loaded(pid).await?),
            None => None,
        };
        let serial = Serial::random();
        let id = new_id();
        let key = self.reg.generate_key(&engine, &id, key_type).await?;
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
            let record = Some((engine.kind(), key.record.clone()));
            self.insert(
                actor,
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
            self.reg.discard_key(&engine, &id);
        }
        result
    }

    /// Imports an existing CA certificate, with its private key (then it can issue) or without.
    pub async fn import(&self, actor: &AuditContext, req: ImportCa) -> Result<Ca, Error> {
        let now = self.reg.clock.now();
        crate::model::check_name(&req.name)?;
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
                let engine = self.reg.engine(req.engine)?;
                let record = self.reg.store_key(&engine, &id, key).await?;
                (CaKind::Imported, Some((engine.kind(), record)))
            }
            None => (CaKind::External, None),
        };
        let parent_id = if info.self_issued {
            None
        } else {
            self.find_parent(&der).await?
        };
        self.insert(
            actor,
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
        let mut ca = self.reg.loaded(id).await?.ca.clone();
        ca.status = self.reg.effective_ca_status(&ca);
        Ok(ca)
    }

    /// Every CA, oldest first.
    pub async fn list(&self) -> Result<Vec<Ca>, Error> {
        self.reg.all_cas().await
    }

    /// Changes a CA's issuance profile and validation settings: each setting given replaces the current
    /// one, and the result is checked as a new CA's profile is; what is left out stays. Certificates
    /// already issued keep what they were issued with. The partition count of its CRLs is fixed.
    pub async fn update_profile(
        &self,
        actor: &AuditContext,
        id: &str,
        profile: ProfileInput,
        va: VaInput,
    ) -> Result<Ca, Error> {
        let now = self.reg.clock.now();
        let loaded = self.reg.loaded(id).await?;
        let current = &loaded.ca.profile;
        let new = build_profile_over(current.clone(), &profile, current.path_len)?;
        if va
            .crl_shards
            .is_some_and(|n| i64::from(n) != loaded.va.crl_shards)
        {
            return Err(Error::invalid(
                "invalid-profile",
                "crl_shards is fixed when the CA is created",
            ));
        }
        let new_va = va.resolve_over(loaded.va.clone())?;
        let changed: Vec<&str> = [
            (
                "default_validity_days",
                profile.default_validity_days.is_some(),
            ),
            ("key_usages", profile.key_usages.is_some()),
            ("ext_key_usages", profile.ext_key_usages.is_some()),
            ("allowed_key_types", profile.allowed_key_types.is_some()),
            ("expiry_warning_days", profile.expiry_warning_days.is_some()),
            ("subject_policy", profile.names.subject.is_some()),
            ("max_sans", profile.names.max_sans.is_some()),
            ("uri_schemes", profile.names.uri_schemes.is_some()),
            ("ocsp_signing", va.ocsp_signing.is_some()),
            ("aia", va.aia.is_some()),
            (
                "crl_distribution_point",
                va.crl_distribution_point.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect();
        let ev = event(
            EventKind::CaUpdated,
            format!("cas/{id}"),
            now,
            serde_json::json!({"ca_id": id, "name": loaded.ca.name, "changed": changed}),
        );
        let update = CaProfileUpdate {
            default_validity_days: i64::from(new.default_validity_days),
            key_usages: join_names(&new.key_usages),
            ext_key_usages: join_names(&new.ext_key_usages),
            allowed_key_types: join_names(&new.allowed_key_types),
            expiry_warning_days: i64::from(new.expiry_warning_days),
            name_policy: crate::names::encode(&new.names),
        };
        self.reg
            .store
            .update_ca_profile(
                id,
                &update,
                &new_va,
                &ev,
                &AuditAction::CaUpdate.by(actor),
                now,
            )
            .await
            .map_err(store_err("CA"))?;
        self.reg.on_ca_changed(id).await;
        self.get(id).await
    }

    /// The PEM chain of a CA: its certificate then its ancestors.
    pub async fn chain_pem(&self, id: &str) -> Result<String, Error> {
        Ok(self.reg.loaded(id).await?.chain_pem.clone())
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        actor: &AuditContext,
        id: String,
        name: String,
        kind: CaKind,
        parent_id: Option<String>,
        der: &[u8],
        key_record: Option<(EngineKind, Vec<u8>)>,
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
            engine: key_record.as_ref().map(|(e, _)| e.as_str().to_string()),
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
            name_policy: Some(crate::names::encode(&profile.names)),
        };
        let (ty, action) = if matches!(kind, CaKind::Imported | CaKind::External) {
            (EventKind::CaImported, AuditAction::CaImport)
        } else {
            (EventKind::CaCreated, AuditAction::CaCreate)
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
        self.reg
            .store
            .insert_ca_with_settings(&row, &va, &ev, &action.by(actor))
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict { .. } => Error::conflict(
                    "ca-exists",
                    format!("a CA named {name:?} or with this certificate already exists"),
                ),
                other => store_err("CA")(other),
            })?;
        self.reg.on_ca_added(der)?;
        Ok(self.reg.loaded(&id).await?.ca.clone())
    }

    /// The managed CA whose key signed `der`, if any.
    async fn find_parent(&self, der: &[u8]) -> Result<Option<String>, Error> {
        let cas = self.reg.store.list_cas().await.map_err(store_err("CAs"))?;
        Ok(cas
            .into_iter()
            .find(|c| shedu_pki::is_signed_by(der, &c.certificate_der))
            .map(|c| c.id))
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
    build_profile_over(Profile::default(), input, path_len)
}

/// `d` with the settings `input` gives replaced, checked as a new profile is.
fn build_profile_over(
    d: Profile,
    input: &ProfileInput,
    path_len: Option<u8>,
) -> Result<Profile, Error> {
    let names = |list: &Option<Vec<String>>| list.as_ref().map(|v| v.join(","));
    // A refused name says which setting held it, so that a form can show it next to that field.
    let of = |field: &'static str| {
        move |e: shedu_pki::Error| match Error::from(e) {
            Error::Invalid { code, detail } => Error::Invalid {
                code,
                detail: format!("{field}: {detail}"),
            },
            other => other,
        }
    };
    let profile = Profile {
        default_validity_days: input
            .default_validity_days
            .unwrap_or(d.default_validity_days),
        key_usages: match names(&input.key_usages) {
            Some(s) => parse_names::<KeyUsage>(&s).map_err(of("key_usages"))?,
            None => d.key_usages,
        },
        ext_key_usages: match names(&input.ext_key_usages) {
            Some(s) => parse_names::<ExtKeyUsage>(&s).map_err(of("ext_key_usages"))?,
            None => d.ext_key_usages,
        },
        path_len,
        allowed_key_types: match names(&input.allowed_key_types) {
            Some(s) => parse_names::<KeyType>(&s).map_err(of("allowed_key_types"))?,
            None => d.allowed_key_types,
        },
        expiry_warning_days: input.expiry_warning_days.unwrap_or(d.expiry_warning_days),
        names: input.names.resolve_over(d.names)?,
    };
    if profile.default_validity_days == 0 {
        return Err(Error::invalid(
            "invalid-validity",
            "default_validity_days must be at least 1",
        ));
    }
    profile.check_leaf()?;
    if profile.allowed_key_types.is_empty() {
        return Err(Error::invalid(
            "invalid-profile",
            "allowed_key_types must not be empty",
        ));
    }
    Ok(profile)
}
