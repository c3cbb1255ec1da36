//! Registration authorities (the seed's "DMS"): which CAs devices may enrol for through an RA, how they
//! prove who they are, and the rules of re-enrolment and server-side key generation. EST (`est.rs`)
//! applies these settings; this module validates and stores them.

use serde::{Deserialize, Serialize};
use shedu_pki::{Csr, KeyType, SubjectName};
use shedu_store::{RaRow, RaWrite};

use std::sync::Arc;

use crate::error::store_err;
use crate::events::{EventKind, event};
use crate::registry::{Registry, new_id};
use crate::{
    AuditAction, AuditContext, CaKind, Cas, Error, Issuance, NewCa, ProfileInput, VaInput,
};

/// How a device proves who it is when it enrols for the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// mTLS with a bootstrap (manufacturing) certificate from one of the RA's bootstrap CAs.
    ClientCertificate,
    /// A pre-registered device id and a one-time secret (HTTP Basic or bearer), consumed on use.
    OneTimeSecret,
    /// An external service approves each request (explicit allow within a timeout).
    Webhook,
}

impl AuthMode {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::ClientCertificate => "client_certificate",
            AuthMode::OneTimeSecret => "one_time_secret",
            AuthMode::Webhook => "webhook",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Result<AuthMode, Error> {
        [
            AuthMode::ClientCertificate,
            AuthMode::OneTimeSecret,
            AuthMode::Webhook,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| {
            Error::invalid(
                "invalid-auth-mode",
                format!("unknown auth mode {s:?}: client_certificate, one_time_secret or webhook"),
            )
        })
    }
}

/// An RA's enrolment rules. (Serde here is the storage encoding of the `settings` column only; the
/// API has its own DTOs.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentSettings {
    /// Credential modes, any one of which authenticates a first enrolment; `webhook`, when listed,
    /// must approve as well (alone, it decides by itself).
    pub auth_modes: Vec<AuthMode>,
    /// CAs whose certificates are accepted as bootstrap certificates (`client_certificate` mode).
    pub bootstrap_ca_ids: Vec<String>,
    /// Register a device on its first enrolment when it is not pre-registered.
    pub auto_register: bool,
    /// A device may re-enrol only when its certificate expires within this many days.
    pub reenroll_window_days: u32,
    /// Whether a device whose certificate has expired may still re-enrol with it.
    pub allow_expired_reenroll: bool,
    /// Revoke the replaced certificate (reason superseded) on re-enrolment; otherwise it stays valid
    /// until it expires.
    pub revoke_on_reenroll: bool,
    /// Whether `serverkeygen` is allowed.
    pub server_keygen: bool,
    /// The key type generated for `serverkeygen`.
    #[serde(with = "key_type_name")]
    pub server_keygen_key_type: KeyType,
    /// OIDs advertised by `csrattrs` (dotted form).
    pub csr_attributes: Vec<String>,
    /// The approval service (`webhook` mode).
    pub webhook: Option<WebhookSettings>,
}

/// Where approvals are asked and how long to wait.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// `http(s)://` URL receiving a JSON POST per enrolment.
    pub url: String,
    /// Milliseconds to wait for the answer; no answer in time is a refusal.
    pub timeout_ms: u64,
}

/// What the API sends to create or replace an RA; unset fields take defaults.
#[derive(Clone, Debug, Default)]
pub struct RaInput {
    /// Unique name.
    pub name: String,
    /// CAs devices may enrol for through this RA.
    pub ca_ids: Vec<String>,
    /// The CA of an enrolment that names none (the EST label names the RA only); the first of `ca_ids`
    /// when unset.
    pub default_ca_id: Option<String>,
    /// Credential modes (`client_certificate`, `one_time_secret`, `webhook`).
    pub auth_modes: Vec<AuthMode>,
    /// Bootstrap CAs.
    pub bootstrap_ca_ids: Vec<String>,
    /// Register unknown devices on first enrolment (default false).
    pub auto_register: Option<bool>,
    /// Re-enrolment window (default 30 days).
    pub reenroll_window_days: Option<u32>,
    /// Allow re-enrolment with an expired certificate (default false).
    pub allow_expired_reenroll: Option<bool>,
    /// Revoke the replaced certificate on re-enrolment (default false).
    pub revoke_on_reenroll: Option<bool>,
    /// Allow `serverkeygen` (default false).
    pub server_keygen: Option<bool>,
    /// Key type for `serverkeygen` (default `ec-p256`).
    pub server_keygen_key_type: Option<String>,
    /// OIDs for `csrattrs`.
    pub csr_attributes: Vec<String>,
    /// Approval webhook URL.
    pub webhook_url: Option<String>,
    /// Approval webhook timeout (default 5000 ms).
    pub webhook_timeout_ms: Option<u64>,
    /// A CSR for the RA's own certificate (PEM or DER), issued by the internal RA CA. The RA's operator
    /// keeps the key; the certificate lets an RA service enrol on behalf of its devices over mTLS.
    pub csr: Option<Vec<u8>>,
    /// ACME settings (`None`: no ACME directory).
    pub acme: Option<crate::AcmeSettings>,
}

/// A registration authority.
#[derive(Clone, Debug)]
pub struct Ra {
    /// Id (the EST label).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Authorized CAs.
    pub ca_ids: Vec<String>,
    /// CA of enrolments that name none.
    pub default_ca_id: String,
    /// Enrolment rules.
    pub enrollment: EnrollmentSettings,
    /// The RA's own certificate (DER), when it has one.
    pub certificate_der: Option<Vec<u8>>,
    /// ACME settings, when the RA has (or had) an ACME directory.
    pub acme: Option<crate::AcmeSettings>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// The stored settings document.
#[derive(Serialize, Deserialize)]
struct Stored {
    ca_ids: Vec<String>,
    default_ca_id: String,
    enrollment: EnrollmentSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acme: Option<crate::AcmeSettings>,
}

/// `meta` key naming the internal CA that issues RA certificates.
const RA_CA_META: &str = "internal_ra_ca_id";
/// The internal RA CA's name (CA names are unique: replicas racing to make it end up with one).
const RA_CA_NAME: &str = "shedu internal RA CA";
const DEFAULT_REENROLL_WINDOW_DAYS: u32 = 30;
const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 5_000;

/// Enrolment: RAs (who may enrol for which CA, and how) and EST, which applies their rules (`est.rs`).
#[derive(Debug)]
pub struct Enrollment {
    pub(crate) reg: Arc<Registry>,
    cas: Arc<Cas>,
    pub(crate) issuance: Arc<Issuance>,
    /// The RA of EST requests whose URL names none.
    pub(crate) est_default_ra: Option<String>,
    /// Approval webhooks: their target policy and client.
    pub(crate) webhooks: Arc<crate::Webhooks>,
    /// EST's RAs by the label of their URLs (or the default RA's id or name), until the next RA change.
    pub(crate) est_ras: crate::cluster::Remembered<String, Ra>,
}

impl Enrollment {
    /// `est_default_ra` (an id or name) serves EST requests without a label
    /// (`/.well-known/est/simpleenroll`).
    pub(crate) fn new(
        reg: Arc<Registry>,
        cas: Arc<Cas>,
        issuance: Arc<Issuance>,
        est_default_ra: Option<String>,
        webhooks: Arc<crate::Webhooks>,
    ) -> Enrollment {
        Enrollment {
            reg,
            cas,
            issuance,
            est_default_ra,
            webhooks,
            est_ras: crate::cluster::Remembered::default(),
        }
    }

    /// Creates an RA.
    pub async fn create_ra(&self, actor: &AuditContext, input: RaInput) -> Result<Ra, Error> {
        let now = self.reg.now();
        let mut ra = self.validate_ra(new_id(), input.clone(), now, now).await?;
        if let Some(csr) = &input.csr {
            ra.certificate_der = Some(self.issue_ra_certificate(actor, csr).await?);
        }
        let ev = ra_event(EventKind::RaCreated, &ra, now);
        self.reg
            .store
            .write_ra(
                RaWrite::Insert(&ra_row(&ra)?),
                &ev,
                &AuditAction::RaCreate.by(actor),
            )
            .await
            .map_err(ra_store_err(&ra.name))?;
        Ok(ra)
    }

    /// Replaces an RA's settings (a new CSR replaces its certificate; none keeps it).
    pub async fn update_ra(
        &self,
        actor: &AuditContext,
        id: &str,
        input: RaInput,
    ) -> Result<Ra, Error> {
        let now = self.reg.now();
        let old = self.ra(id).await?;
        let mut ra = self
            .validate_ra(id.to_string(), input.clone(), old.created_at, now)
            .await?;
        ra.certificate_der = match &input.csr {
            Some(csr) => Some(self.issue_ra_certificate(actor, csr).await?),
            None => old.certificate_der,
        };
        let ev = ra_event(EventKind::RaUpdated, &ra, now);
        self.reg
            .store
            .write_ra(
                RaWrite::Update(&ra_row(&ra)?),
                &ev,
                &AuditAction::RaUpdate.by(actor),
            )
            .await
            .map_err(ra_store_err(&ra.name))?;
        // ACME serves RAs from memory: no replica answers for the old settings once this returns.
        self.reg.on_ra_changed().await;
        Ok(ra)
    }

    /// Deletes an RA. Refused (`ra-has-devices`) while one of its devices is not decommissioned: that device
    /// could never enrol or renew again. Decommissioned devices and their certificates stay.
    pub async fn delete_ra(&self, actor: &AuditContext, id: &str) -> Result<(), Error> {
        let ra = self.ra(id).await?;
        let now = self.reg.now();
        self.reg
            .store
            .write_ra(
                RaWrite::Delete(id),
                &ra_event(EventKind::RaDeleted, &ra, now),
                &AuditAction::RaDelete.by(actor),
            )
            .await
            .map_err(ra_store_err(&ra.name))?;
        self.reg.on_ra_changed().await;
        Ok(())
    }

    /// One RA.
    pub async fn ra(&self, id: &str) -> Result<Ra, Error> {
        let row = self
            .reg
            .store
            .get_ra(id)
            .await
            .map_err(store_err(format!("RA {id}")))?;
        ra_from_row(row)
    }

    /// An RA by id, or else by name (URLs of EST and ACME may name either).
    pub async fn ra_by_id_or_name(&self, id_or_name: &str) -> Result<Ra, Error> {
        let row = self
            .reg
            .store
            .get_ra_by_id_or_name(id_or_name)
            .await
            .map_err(store_err(format!("RA {id_or_name}")))?;
        ra_from_row(row)
    }

    /// Every RA.
    pub async fn ras(&self) -> Result<Vec<Ra>, Error> {
        let rows = self.reg.store.list_ras().await.map_err(store_err("RAs"))?;
        rows.into_iter().map(ra_from_row).collect()
    }

    async fn validate_ra(
        &self,
        id: String,
        input: RaInput,
        created_at: i64,
        now: i64,
    ) -> Result<Ra, Error> {
        crate::model::check_name(&input.name)?;
        if input.ca_ids.is_empty() {
            return Err(Error::invalid(
                "no-authorized-ca",
                "an RA needs at least one CA in ca_ids",
            ));
        }
        for ca_id in &input.ca_ids {
            let ca = self.reg.loaded(ca_id).await.map_err(not_found_is_invalid)?;
            if ca.ca.kind == CaKind::External {
                return Err(Error::invalid(
                    "ca-cannot-issue",
                    format!("CA {ca_id} has no key here and cannot issue"),
                ));
            }
        }
        let default_ca_id = input
            .default_ca_id
            .clone()
            .unwrap_or_else(|| input.ca_ids[0].clone());
        if !input.ca_ids.contains(&default_ca_id) {
            return Err(Error::invalid(
                "ca-not-authorized",
                format!("default_ca_id {default_ca_id} is not among the RA's ca_ids"),
            ));
        }
        let auth_modes = input.auth_modes.clone();
        if auth_modes.is_empty() {
            return Err(Error::invalid(
                "no-auth-mode",
                "enrollment.auth_modes needs at least one of client_certificate, one_time_secret, webhook",
            ));
        }
        if auth_modes.contains(&AuthMode::ClientCertificate) && input.bootstrap_ca_ids.is_empty() {
            return Err(Error::invalid(
                "no-bootstrap-ca",
                "client_certificate authentication needs bootstrap_ca_ids",
            ));
        }
        for ca_id in &input.bootstrap_ca_ids {
            self.reg.loaded(ca_id).await.map_err(not_found_is_invalid)?;
        }
        let webhook = match (&input.webhook_url, auth_modes.contains(&AuthMode::Webhook)) {
            (Some(url), _) if url.starts_with("https://") || url.starts_with("http://") => {
                self.webhooks.policy().check_url("webhook.url", url).await?;
                Some(WebhookSettings {
                    url: url.clone(),
                    timeout_ms: input
                        .webhook_timeout_ms
                        .unwrap_or(DEFAULT_WEBHOOK_TIMEOUT_MS)
                        .clamp(100, 60_000),
                })
            }
            (Some(url), _) => {
                return Err(Error::invalid(
                    "invalid-webhook",
                    format!("webhook URL {url:?} must be http(s)"),
                ));
            }
            (None, true) => {
                return Err(Error::invalid(
                    "invalid-webhook",
                    "webhook authentication needs webhook.url",
                ));
            }
            (None, false) => None,
        };
        for oid in &input.csr_attributes {
            shedu_pki::est::parse_oid(oid)?;
        }
        if let Some(acme) = &input.acme {
            crate::acme::validate_settings(acme, &input.ca_ids)?;
        }
        let window = input
            .reenroll_window_days
            .unwrap_or(DEFAULT_REENROLL_WINDOW_DAYS);
        if window == 0 || window > 3650 {
            return Err(Error::invalid(
                "invalid-reenroll-window",
                "reenroll_window_days must be 1 to 3650",
            ));
        }
        Ok(Ra {
            id,
            name: input.name,
            ca_ids: input.ca_ids,
            default_ca_id,
            enrollment: EnrollmentSettings {
                auth_modes,
                bootstrap_ca_ids: input.bootstrap_ca_ids,
                auto_register: input.auto_register.unwrap_or(false),
                reenroll_window_days: window,
                allow_expired_reenroll: input.allow_expired_reenroll.unwrap_or(false),
                revoke_on_reenroll: input.revoke_on_reenroll.unwrap_or(false),
                server_keygen: input.server_keygen.unwrap_or(false),
                server_keygen_key_type: input
                    .server_keygen_key_type
                    .as_deref()
                    .unwrap_or("ec-p256")
                    .parse()?,
                csr_attributes: input.csr_attributes,
                webhook,
            },
            certificate_der: None,
            acme: input.acme,
            created_at,
            updated_at: now,
        })
    }

    /// Issues an RA's certificate from its CSR under the internal RA CA (created on first use).
    async fn issue_ra_certificate(
        &self,
        actor: &AuditContext,
        csr: &[u8],
    ) -> Result<Vec<u8>, Error> {
        Csr::parse(csr)?;
        let ca_id = self.internal_ra_ca(actor).await?;
        let issued = self
            .issuance
            .issue(
                actor,
                &ca_id,
                crate::IssueInput {
                    csr: csr.to_vec(),
                    validity_days: None,
                    sans: None,
                },
            )
            .await?;
        Ok(issued.certificate.der)
    }

    /// The internal CA that issues RA certificates: a root made the first time an RA needs one, its id
    /// kept in `meta`.
    /// `actor` is who made the RA that needs it: the CA's creation is recorded as theirs.
    pub async fn internal_ra_ca(&self, actor: &AuditContext) -> Result<String, Error> {
        if let Some(id) = self
            .reg
            .store
            .meta_get(RA_CA_META)
            .await
            .map_err(store_err("meta"))?
        {
            return String::from_utf8(id).map_err(|_| Error::Internal("corrupt RA CA id".into()));
        }
        let created = self
            .cas
            .create(
                actor,
                NewCa {
                    name: RA_CA_NAME.into(),
                    key_type: KeyType::EcP256,
                    subject: SubjectName {
                        common_name: "shedu internal RA CA".into(),
                        organization: Some("shedu".into()),
                        ..Default::default()
                    },
                    validity_days: None,
                    parent_id: None,
                    path_len: Some(0),
                    profile: ProfileInput {
                        default_validity_days: Some(365),
                        ext_key_usages: Some(vec!["client_auth".into()]),
                        ..Default::default()
                    },
                    va: VaInput::default(),
                    engine: None,
                },
            )
            .await;
        let id = match created {
            Ok(ca) => ca.id,
            // Another replica made it at the same moment (the name is unique): use that one.
            Err(Error::Conflict {
                code: "ca-exists", ..
            }) => self
                .reg
                .all_cas()
                .await?
                .into_iter()
                .find(|c| c.name == RA_CA_NAME)
                .map(|c| c.id)
                .ok_or_else(|| Error::Internal("internal RA CA vanished".into()))?,
            Err(e) => return Err(e),
        };
        self.reg
            .store
            .meta_insert_new(RA_CA_META, id.as_bytes())
            .await
            .map_err(store_err("meta"))?;
        Ok(id)
    }
}

/// A CA named in RA settings that does not exist is bad input, not a missing route target.
fn not_found_is_invalid(e: Error) -> Error {
    match e {
        Error::NotFound(what) => Error::invalid("unknown-ca", format!("{what} not found")),
        other => other,
    }
}

fn ra_store_err(name: &str) -> impl FnOnce(shedu_store::Error) -> Error + '_ {
    move |e| match e {
        shedu_store::Error::Conflict { constraint }
            if constraint.as_deref() == Some(shedu_store::RA_HAS_DEVICES) =>
        {
            Error::conflict(
                "ra-has-devices",
                format!("RA {name:?} still has devices; decommission them first"),
            )
        }
        shedu_store::Error::Conflict { .. } => {
            Error::conflict("ra-exists", format!("an RA named {name:?} already exists"))
        }
        other => store_err(format!("RA {name}"))(other),
    }
}

fn ra_event(ty: EventKind, ra: &Ra, now: i64) -> shedu_store::NewEvent {
    event(
        ty,
        format!("ras/{}", ra.id),
        now,
        serde_json::json!({ "ra_id": ra.id, "name": ra.name, "ca_ids": ra.ca_ids }),
    )
}

fn ra_row(ra: &Ra) -> Result<RaRow, Error> {
    let settings = serde_json::to_string(&Stored {
        ca_ids: ra.ca_ids.clone(),
        default_ca_id: ra.default_ca_id.clone(),
        enrollment: ra.enrollment.clone(),
        acme: ra.acme.clone(),
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(RaRow {
        id: ra.id.clone(),
        name: ra.name.clone(),
        settings,
        certificate_der: ra.certificate_der.clone(),
        created_at: ra.created_at,
        updated_at: ra.updated_at,
    })
}

fn ra_from_row(row: RaRow) -> Result<Ra, Error> {
    let stored: Stored = serde_json::from_str(&row.settings)
        .map_err(|e| Error::Internal(format!("stored RA {} has corrupt settings: {e}", row.id)))?;
    Ok(Ra {
        id: row.id,
        name: row.name,
        ca_ids: stored.ca_ids,
        default_ca_id: stored.default_ca_id,
        enrollment: stored.enrollment,
        certificate_der: row.certificate_der,
        acme: stored.acme,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Stores a key type by its API name (`ec-p256`).
mod key_type_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use shedu_pki::KeyType;

    pub(super) fn serialize<S: Serializer>(k: &KeyType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(k.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyType, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
