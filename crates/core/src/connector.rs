//! The connector: Kyma-compatible pairing of applications and runtimes. An operator asks for a one-time
//! token for a client identity; the client exchanges it for the CSR information (the subject to request
//! and a second one-time token), then the second token and a CSR for a client certificate. With that
//! certificate it reads its management information, renews, or revokes it; an operator revokes by
//! fingerprint.
//!
//! What this does better than Kyma's connector, by construction: tokens are 256 random bits, stored only
//! as SHA-256 hashes (in the database, so they survive restarts and work on every replica), and consumed
//! in the transaction of the success they buy (`shedu_store::ConnectorIssuance`), so a failed request
//! keeps the token and N concurrent redemptions make one success. The CSR's subject is compared as parsed
//! names with the advertised one. Certificates go through the issuance path (`certificates::prepare`,
//! committed with the token before they are returned); revocation goes through [`Issuance`]'s, so it
//! reaches OCSP, CRLs and every mTLS check at once.
//!
//! The HTTP edge (`server::connector`) decodes requests, builds the URLs and encodes Kyma's JSON.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use aws_lc_rs::digest;
use shedu_pki::{AttrType, Csr, ExtKeyUsage, KeyType, RevocationReason, Subject};
use shedu_store::{ConnectorCertRow, ConnectorIssuance, ConnectorTokenRow};
use zeroize::Zeroizing;

use crate::certificates::{Issued, insert_err, prepare};
use crate::error::{poisoned, store_err};
use crate::events::{EventKind, event};
use crate::{AuditAction, AuditContext, Error, Issuance, Registry};

/// Which kind of client: the path word of Kyma's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectorKind {
    /// An external application (`applications`).
    Application,
    /// A runtime, e.g. a Kubernetes cluster (`runtimes`).
    Runtime,
}

impl ConnectorKind {
    /// The path word and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Application => "applications",
            ConnectorKind::Runtime => "runtimes",
        }
    }

    /// The kind of a path word.
    pub fn parse(s: &str) -> Option<ConnectorKind> {
        match s {
            "applications" => Some(ConnectorKind::Application),
            "runtimes" => Some(ConnectorKind::Runtime),
            _ => None,
        }
    }
}

/// Who a token or certificate is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Application or runtime.
    pub kind: ConnectorKind,
    /// The application name or runtime id: the certificate's common name.
    pub name: String,
    /// The client's group.
    pub group: Option<String>,
    /// The client's tenant.
    pub tenant: Option<String>,
}

/// The connector's settings.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    /// The path the HTTP edge mounts the connector under (`/connector`).
    pub base_path: String,
    /// The connector's public URL, base path included (`https://pki.example/connector`); when `None` the
    /// edge derives it from the request (`Host`, `X-Forwarded-*`).
    pub public_url: Option<String>,
    /// The application gateway's URL, for the `eventsUrl`/`metadataUrl` Kyma clients expect; left out
    /// when `None`.
    pub gateway_url: Option<String>,
    /// The CA (id or name) that signs application certificates.
    pub application_ca: String,
    /// The CA (id or name) that signs runtime certificates.
    pub runtime_ca: String,
    /// The subject attributes besides the CN (`O`, `OU`, `L`, `ST`, `C`), in the advertised order.
    pub subject: Vec<(AttrType, String)>,
    /// Validity of issued certificates, days (1 to 92).
    pub validity_days: u32,
    /// Lifetime of an application's pairing token, seconds.
    pub application_token_ttl: i64,
    /// Lifetime of a runtime's pairing token, seconds.
    pub runtime_token_ttl: i64,
    /// Lifetime of the CSR token an info call hands out, seconds.
    pub csr_token_ttl: i64,
}

impl Default for ConnectorConfig {
    /// Kyma's subject template and validity (92 days), tokens of 5 minutes (10 for runtimes), and the CA
    /// named `connector` for both kinds.
    fn default() -> Self {
        ConnectorConfig {
            base_path: "/connector".into(),
            public_url: None,
            gateway_url: None,
            application_ca: DEFAULT_CA.into(),
            runtime_ca: DEFAULT_CA.into(),
            subject: vec![
                (AttrType::Organization, "Organization".into()),
                (AttrType::OrganizationalUnit, "OrgUnit".into()),
                (AttrType::Locality, "Waldorf".into()),
                (AttrType::State, "Waldorf".into()),
                (AttrType::Country, "DE".into()),
            ],
            validity_days: 92,
            application_token_ttl: 300,
            runtime_token_ttl: 600,
            csr_token_ttl: 300,
        }
    }
}

impl ConnectorConfig {
    /// The subject template of `O=Acme,OU=Apps,L=Berlin,ST=Berlin,C=DE` (O, OU, L, ST and C only: the CN
    /// is the client's), each value checked.
    pub fn parse_subject(text: &str) -> Result<Vec<(AttrType, String)>, Error> {
        let mut out: Vec<(AttrType, String)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((ty, value)) = part.split_once('=') else {
                return Err(Error::invalid(
                    "invalid-name",
                    format!("{part:?} is not TYPE=value"),
                ));
            };
            let ty: AttrType = ty.trim().parse()?;
            if !matches!(
                ty,
                AttrType::Organization
                    | AttrType::OrganizationalUnit
                    | AttrType::Locality
                    | AttrType::State
                    | AttrType::Country
            ) {
                return Err(Error::invalid(
                    "invalid-name",
                    "the connector's subject takes O, OU, L, ST and C (the CN is the client's)",
                ));
            }
            out.push((ty, value.trim().to_string()));
        }
        // Checks every value and refuses repeats.
        Subject::new(out.clone())?;
        Ok(out)
    }
}

/// The CA name the connector uses unless configured otherwise.
pub(crate) const DEFAULT_CA: &str = "connector";
/// The longest validity a connector certificate may have, days.
pub const MAX_VALIDITY_DAYS: u32 = 92;

/// A token just issued: shown once, never stored.
#[derive(Debug)]
pub struct ConnectorToken {
    /// The token (64 hex digits, 256 random bits).
    pub token: Zeroizing<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What a client must request: the answer to a CSR-info call.
#[derive(Debug)]
pub struct CsrInfo {
    /// Whose it is.
    pub identity: ClientIdentity,
    /// The token for the signing call.
    pub csr_token: ConnectorToken,
    /// The certificate's requirements.
    pub certificate: CertificateInfo,
}

/// The certificate a client must request.
#[derive(Clone, Debug)]
pub struct CertificateInfo {
    /// The subject, `O=…,OU=…,L=…,ST=…,C=…,CN=<name>`.
    pub subject: String,
    /// Extensions requested in the CSR (none).
    pub extensions: String,
    /// The advertised key algorithm (`rsa2048` when the CA accepts it, as Kyma's clients make; any key
    /// type the CA's profile allows is accepted).
    pub key_algorithm: String,
}

/// A certificate the connector issued.
#[derive(Debug)]
pub struct ConnectorIssued {
    /// The certificate and its CA chain.
    pub issued: Issued,
    /// Whose it is.
    pub identity: ClientIdentity,
}

/// What management/info answers.
#[derive(Debug)]
pub struct ManagementInfo {
    /// The certificate's owner.
    pub identity: ClientIdentity,
    /// What a renewal must request.
    pub certificate: CertificateInfo,
}

const PAIRING: &str = "pairing";
const CSR: &str = "csr";

/// The connector service.
#[derive(Debug)]
pub struct Connector {
    reg: Arc<Registry>,
    issuance: Arc<Issuance>,
    config: ConnectorConfig,
    /// CA names resolved to ids (CA names are unique and CAs are never deleted).
    resolved: RwLock<Vec<(String, String)>>,
    /// The unspent tokens this replica made, so the next step finds its token without a read.
    minted: Minted,
}

/// How many tokens [`Minted`] remembers (the oldest is forgotten first).
const MINTED_CAP: usize = 4096;

/// The token rows this replica wrote and has not seen spent, by hash (never the tokens): the info and sign
/// steps read their token's identity here instead of from the database when the previous step ran on this
/// replica. Only a shortcut for the read: a hit is still checked for kind, purpose and expiry, and the
/// token is spent by the write that buys the success, which alone decides whether it was live (a token
/// spent through another replica fails there). A miss (restart, another replica, eviction) reads the row.
#[derive(Debug, Default)]
struct Minted {
    rows: Mutex<(MintedRows, VecDeque<Vec<u8>>)>,
}

/// Remembered token rows by their hash.
type MintedRows = HashMap<Vec<u8>, ConnectorTokenRow>;

impl Minted {
    fn remember(&self, row: &ConnectorTokenRow) {
        let Ok(mut guard) = self.rows.lock() else {
            return;
        };
        let (rows, order) = &mut *guard;
        // `order` holds every remembered hash, spent or not, so bounding it bounds both.
        while order.len() >= MINTED_CAP {
            if let Some(oldest) = order.pop_front() {
                rows.remove(&oldest);
            }
        }
        order.push_back(row.token_sha256.clone());
        rows.insert(row.token_sha256.clone(), row.clone());
    }

    fn get(&self, hash: &[u8]) -> Option<ConnectorTokenRow> {
        self.rows.lock().ok()?.0.get(hash).cloned()
    }

    /// Forgets a spent token (its place in the eviction order goes when it comes up).
    fn forget(&self, hash: &[u8]) {
        if let Ok(mut guard) = self.rows.lock() {
            guard.0.remove(hash);
        }
    }
}

fn forbidden(code: &'static str, detail: impl Into<String>) -> Error {
    Error::Forbidden {
        code,
        detail: detail.into(),
    }
}

fn bad_token() -> Error {
    forbidden(
        "invalid-token",
        "the token is invalid, expired or was already used",
    )
}

impl Connector {
    pub(crate) fn new(
        reg: Arc<Registry>,
        issuance: Arc<Issuance>,
        config: ConnectorConfig,
    ) -> Connector {
        Connector {
            reg,
            issuance,
            config,
            resolved: RwLock::new(Vec::new()),
            minted: Minted::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ConnectorConfig {
        &self.config
    }

    /// Issues a pairing token for `identity` (operator). Checks first that the kind's CA can issue what
    /// the connector advertises, so a misconfiguration shows to the operator, not to the client.
    pub async fn issue_token(
        &self,
        actor: &AuditContext,
        identity: ClientIdentity,
    ) -> Result<ConnectorToken, Error> {
        check_label("application or runtime id", &identity.name)?;
        for (what, v) in [("group", &identity.group), ("tenant", &identity.tenant)] {
            if let Some(v) = v {
                check_label(what, v)?;
            }
        }
        self.certificate_info(&identity).await?;
        let now = self.reg.now();
        let ttl = match identity.kind {
            ConnectorKind::Application => self.config.application_token_ttl,
            ConnectorKind::Runtime => self.config.runtime_token_ttl,
        };
        let (token, row) = new_token(&identity, PAIRING, now, ttl);
        let ev = event(
            EventKind::ConnectorTokenIssued,
            format!("connector/{}/{}", identity.kind.as_str(), identity.name),
            now,
            serde_json::json!({
                "kind": identity.kind.as_str(), "name": identity.name, "group": identity.group,
                "tenant": identity.tenant, "expires_at": row.expires_at,
            }),
        );
        self.reg
            .store
            .insert_connector_token(&row, &ev, &AuditAction::ConnectorTokenIssue.by(actor))
            .await
            .map_err(store_err("connector token"))?;
        self.minted.remember(&row);
        Ok(ConnectorToken {
            token,
            expires_at: row.expires_at,
        })
    }

    /// Exchanges a pairing token for the CSR information and a CSR token.
    pub async fn csr_info(
        &self,
        actor: &AuditContext,
        kind: ConnectorKind,
        token: &str,
    ) -> Result<CsrInfo, Error> {
        let row = self.live_token(kind, token, PAIRING).await?;
        let identity = identity_of(kind, row.name, row.group, row.tenant);
        let certificate = self.certificate_info(&identity).await?;
        let (csr_token, next) =
            new_token(&identity, CSR, self.reg.now(), self.config.csr_token_ttl);
        let exchanged = self
            .reg
            .store
            .exchange_connector_token(
                &row.token_sha256,
                PAIRING,
                &next,
                &AuditAction::ConnectorTokenIssue.by(actor),
            )
            .await
            .map_err(token_err);
        // Spent (here or through another replica) either way: the shortcut must not keep offering it.
        self.minted.forget(&row.token_sha256);
        exchanged?;
        self.minted.remember(&next);
        Ok(CsrInfo {
            identity,
            csr_token: ConnectorToken {
                token: csr_token,
                expires_at: next.expires_at,
            },
            certificate,
        })
    }

    /// Signs a CSR for a CSR token. The CSR's subject must be the advertised one; the certificate is
    /// committed with the token's consumption before this returns.
    pub async fn sign(
        &self,
        actor: &AuditContext,
        kind: ConnectorKind,
        token: &str,
        csr: &[u8],
    ) -> Result<ConnectorIssued, Error> {
        let row = self.live_token(kind, token, CSR).await?;
        let identity = identity_of(kind, row.name, row.group, row.tenant);
        let consume = Some((row.token_sha256.clone(), CSR.to_string()));
        let issued = self
            .issue(
                actor,
                identity,
                csr,
                consume,
                EventKind::ConnectorCertificateIssued,
            )
            .await;
        if matches!(&issued, Ok(_) | Err(Error::Forbidden { .. })) {
            self.minted.forget(&row.token_sha256);
        }
        issued
    }

    /// The identity of a client certificate presented over mTLS, refused unless it is a valid (unrevoked,
    /// unexpired) certificate the connector issued for `kind`.
    pub async fn client(&self, kind: ConnectorKind, der: &[u8]) -> Result<ClientIdentity, Error> {
        let cert = match self.issuance.client_certificate(der, false).await? {
            Ok(cert) => cert,
            Err(problem) => return Err(forbidden("client-certificate-refused", problem.as_str())),
        };
        let record = self
            .reg
            .store
            .connector_certificate(&cert.fingerprint)
            .await
            .map_err(store_err("connector certificate"))?
            .filter(|r| r.kind == kind.as_str())
            .ok_or_else(|| {
                forbidden(
                    "not-a-connector-certificate",
                    format!(
                        "the client certificate was not issued by the connector for {}",
                        kind.as_str()
                    ),
                )
            })?;
        Ok(identity_of(kind, record.name, record.group, record.tenant))
    }

    /// management/info: who the certificate belongs to and what a renewal must request.
    pub async fn management_info(
        &self,
        kind: ConnectorKind,
        der: &[u8],
    ) -> Result<ManagementInfo, Error> {
        let identity = self.client(kind, der).await?;
        let certificate = self.certificate_info(&identity).await?;
        Ok(ManagementInfo {
            identity,
            certificate,
        })
    }

    /// Renews the presented certificate: a new certificate for the same identity and subject.
    pub async fn renew(
        &self,
        actor: &AuditContext,
        kind: ConnectorKind,
        der: &[u8],
        csr: &[u8],
    ) -> Result<ConnectorIssued, Error> {
        let identity = self.client(kind, der).await?;
        self.issue(
            actor,
            identity,
            csr,
            None,
            EventKind::ConnectorCertificateRenewed,
        )
        .await
    }

    /// Revokes the presented certificate (its holder).
    pub async fn revoke_presented(
        &self,
        actor: &AuditContext,
        kind: ConnectorKind,
        der: &[u8],
    ) -> Result<(), Error> {
        self.client(kind, der).await?;
        self.revoke_fingerprint(actor, kind, &shedu_pki::fingerprint_sha256(der))
            .await
    }

    /// Revokes a connector certificate of `kind` by the SHA-256 of its DER (operator). `NotFound` when the
    /// connector issued no such certificate; revoking a revoked one changes nothing and succeeds.
    pub async fn revoke_by_hash(
        &self,
        actor: &AuditContext,
        kind: ConnectorKind,
        hash: &str,
    ) -> Result<(), Error> {
        let fp = hash.trim().to_ascii_lowercase();
        if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "malformed-input",
                "the hash is the SHA-256 of the certificate's DER, 64 hex digits",
            ));
        }
        self.revoke_fingerprint(actor, kind, &fp).await
    }

    async fn revoke_fingerprint(
        &self,
        actor: &AuditContext,
        kind: ConnectorKind,
        fingerprint: &str,
    ) -> Result<(), Error> {
        let record = self
            .reg
            .store
            .connector_certificate(fingerprint)
            .await
            .map_err(store_err("connector certificate"))?
            .filter(|r| r.kind == kind.as_str())
            .ok_or_else(|| Error::NotFound(format!("connector certificate {fingerprint}")))?;
        let serial = record
            .serial
            .parse()
            .map_err(|_| Error::Internal("stored connector serial".into()))?;
        let announce = |now: i64| {
            event(
                EventKind::ConnectorCertificateRevoked,
                format!("connector/{}/{}", record.kind, record.name),
                now,
                serde_json::json!({
                    "kind": record.kind, "name": record.name, "ca_id": record.ca_id,
                    "serial": record.serial, "fingerprint": record.fingerprint,
                }),
            )
        };
        match self
            .issuance
            .revoke_announced(
                actor,
                &record.ca_id,
                &serial,
                RevocationReason::Unspecified,
                None,
                Some(&announce),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Conflict {
                code: "already-revoked",
                ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Checks the CSR against the identity's subject, signs, and commits the certificate with its records
    /// (and the token's consumption) in one transaction.
    async fn issue(
        &self,
        actor: &AuditContext,
        identity: ClientIdentity,
        csr: &[u8],
        consume: Option<(Vec<u8>, String)>,
        kind: EventKind,
    ) -> Result<ConnectorIssued, Error> {
        let csr = Csr::parse(csr)?;
        let ca_id = self.ca_id(identity.kind).await?;
        let wanted = self.subject(&identity)?;
        if requested(&csr).map(sorted) != Some(sorted(wanted.attrs().to_vec())) {
            return Err(Error::invalid(
                "subject-mismatch",
                format!(
                    "the CSR's subject must be {} (compared as names, in any order)",
                    kyma_subject(&wanted)
                ),
            ));
        }
        self.check_ca(&ca_id, &wanted).await?;
        let prepared = prepare(
            &self.reg,
            &ca_id,
            &csr,
            Some(self.config.validity_days),
            Some(&[]),
        )
        .await?;
        let now = self.reg.now();
        let row = &prepared.row;
        let record = ConnectorCertRow {
            fingerprint: row.fingerprint.clone(),
            ca_id: row.ca_id.clone(),
            serial: row.serial.clone(),
            kind: identity.kind.as_str().to_string(),
            name: identity.name.clone(),
            group: identity.group.clone(),
            tenant: identity.tenant.clone(),
            created_at: now,
        };
        let connector_event = event(
            kind,
            format!("connector/{}/{}", record.kind, record.name),
            now,
            serde_json::json!({
                "kind": record.kind, "name": record.name, "group": record.group,
                "tenant": record.tenant, "ca_id": record.ca_id, "serial": record.serial,
                "fingerprint": record.fingerprint, "not_after": row.not_after,
            }),
        );
        let action = match kind {
            EventKind::ConnectorCertificateRenewed => AuditAction::ConnectorCertificateRenew,
            _ => AuditAction::ConnectorCertificateIssue,
        };
        self.reg
            .store
            .record_connector_issuance(
                &ConnectorIssuance {
                    cert: prepared.row,
                    cert_event: prepared.event,
                    connector_event,
                    record,
                    consume,
                    now,
                },
                &action.by(actor),
            )
            .await
            .map_err(|e| match e {
                shedu_store::Error::Unauthorized => bad_token(),
                other => insert_err(other),
            })?;
        Ok(ConnectorIssued {
            issued: prepared.issued,
            identity,
        })
    }

    /// The unspent, unexpired token of `kind` and `purpose`; the generic refusal otherwise (which one of
    /// those it is would help a guesser, not the client).
    async fn live_token(
        &self,
        kind: ConnectorKind,
        token: &str,
        purpose: &str,
    ) -> Result<ConnectorTokenRow, Error> {
        let hash = sha256(token);
        let row = match self.minted.get(&hash) {
            Some(row) => Some(row),
            None => self
                .reg
                .store
                .connector_token(&hash)
                .await
                .map_err(store_err("connector token"))?,
        };
        let row = row
            .filter(|r| {
                r.kind == kind.as_str()
                    && r.purpose == purpose
                    && r.consumed_at.is_none()
                    && r.expires_at > self.reg.now()
            })
            .ok_or_else(bad_token)?;
        Ok(row)
    }

    /// The advertised subject of `identity`.
    fn subject(&self, identity: &ClientIdentity) -> Result<Subject, Error> {
        let mut attrs = self.config.subject.clone();
        attrs.push((AttrType::CommonName, identity.name.clone()));
        Ok(Subject::new(attrs)?)
    }

    /// What a client of `identity` must request, after checking that the kind's CA issues it.
    async fn certificate_info(&self, identity: &ClientIdentity) -> Result<CertificateInfo, Error> {
        let subject = self.subject(identity)?;
        let ca_id = self.ca_id(identity.kind).await?;
        let allowed = self.check_ca(&ca_id, &subject).await?;
        let key_algorithm = if allowed.contains(&KeyType::Rsa2048) {
            "rsa2048".to_string()
        } else {
            allowed
                .first()
                .map(|k| k.as_str().to_string())
                .unwrap_or_default()
        };
        Ok(CertificateInfo {
            subject: kyma_subject(&subject),
            extensions: String::new(),
            key_algorithm,
        })
    }

    /// Checks that CA `ca_id` can issue connector certificates with `subject`: it has a key, its profile
    /// gives clientAuth, and its name policy keeps the subject as it is. Returns its allowed key types.
    async fn check_ca(&self, ca_id: &str, subject: &Subject) -> Result<Vec<KeyType>, Error> {
        let loaded = self.reg.loaded(ca_id).await?;
        crate::registry::usable_issuer(&loaded, self.reg.now())?;
        let profile = &loaded.ca.profile;
        let not_configured = |detail: String| Error::Conflict {
            code: "connector-ca-unsuitable",
            detail,
        };
        if !profile.ext_key_usages.contains(&ExtKeyUsage::ClientAuth) {
            return Err(not_configured(format!(
                "CA {ca_id} does not issue client_auth certificates; the connector needs a CA whose profile does"
            )));
        }
        let requested: Vec<shedu_pki::RequestedAttr> = subject
            .attrs()
            .iter()
            .map(|(ty, v)| shedu_pki::RequestedAttr {
                oid: ty.oid().to_vec(),
                value: Some(v.clone()),
            })
            .collect();
        let issued = profile.names.subject_for(&requested)?;
        if sorted(issued.attrs().to_vec()) != sorted(subject.attrs().to_vec()) {
            return Err(not_configured(format!(
                "the subject policy of CA {ca_id} does not keep the connector's subject {}; allow (or fix) its \
                 attributes in the CA's subject_policy",
                kyma_subject(subject)
            )));
        }
        Ok(profile.allowed_key_types.clone())
    }

    /// The id of the CA that signs certificates of `kind` (configured by id or name).
    async fn ca_id(&self, kind: ConnectorKind) -> Result<String, Error> {
        let wanted = match kind {
            ConnectorKind::Application => &self.config.application_ca,
            ConnectorKind::Runtime => &self.config.runtime_ca,
        };
        if let Some((_, id)) = self
            .resolved
            .read()
            .map_err(|_| poisoned())?
            .iter()
            .find(|(name, _)| name == wanted)
        {
            return Ok(id.clone());
        }
        let id = self
            .reg
            .all_cas()
            .await?
            .into_iter()
            .find(|ca| &ca.id == wanted || &ca.name == wanted)
            .map(|ca| ca.id)
            .ok_or_else(|| Error::Conflict {
                code: "connector-not-configured",
                detail: format!(
                    "no CA {wanted:?} signs connector certificates for {}: create a CA with that name (or \
                     configure --connector-{}-ca)",
                    kind.as_str(),
                    match kind {
                        ConnectorKind::Application => "application",
                        ConnectorKind::Runtime => "runtime",
                    }
                ),
            })?;
        self.resolved
            .write()
            .map_err(|_| poisoned())?
            .push((wanted.clone(), id.clone()));
        Ok(id)
    }
}

/// Names and groups become certificate subjects and audit targets: printable, 1 to 64 characters.
fn check_label(what: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() || value.chars().count() > 64 || value.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "invalid-name",
            format!("the {what} is 1 to 64 characters, without control characters"),
        ));
    }
    Ok(())
}

fn identity_of(
    kind: ConnectorKind,
    name: String,
    group: Option<String>,
    tenant: Option<String>,
) -> ClientIdentity {
    ClientIdentity {
        kind,
        name,
        group,
        tenant,
    }
}

/// A fresh token (256 random bits, hex) and its row.
fn new_token(
    identity: &ClientIdentity,
    purpose: &str,
    now: i64,
    ttl: i64,
) -> (Zeroizing<String>, ConnectorTokenRow) {
    let token = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
    let row = ConnectorTokenRow {
        token_sha256: sha256(&token),
        purpose: purpose.to_string(),
        kind: identity.kind.as_str().to_string(),
        name: identity.name.clone(),
        group: identity.group.clone(),
        tenant: identity.tenant.clone(),
        created_at: now,
        expires_at: now + ttl,
        consumed_at: None,
    };
    (token, row)
}

fn sha256(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn token_err(e: shedu_store::Error) -> Error {
    match e {
        shedu_store::Error::Unauthorized => bad_token(),
        other => store_err("connector token")(other),
    }
}

/// The CSR's subject as names; `None` when an attribute is not one the connector knows or not a string.
fn requested(csr: &Csr) -> Option<Vec<(AttrType, String)>> {
    csr.subject()
        .iter()
        .map(|a| Some((AttrType::from_oid(&a.oid)?, a.value.clone()?)))
        .collect()
}

fn sorted(mut v: Vec<(AttrType, String)>) -> Vec<(AttrType, String)> {
    v.sort();
    v
}

/// Kyma's subject form, `O=…,OU=…,CN=…`, with RFC 4514 escapes for the characters that would split it.
fn kyma_subject(subject: &Subject) -> String {
    subject
        .attrs()
        .iter()
        .map(|(ty, v)| {
            let mut escaped = String::with_capacity(v.len());
            for c in v.chars() {
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            format!("{}={escaped}", ty.as_str())
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kyma_subject_escapes_what_would_split_it() {
        let s = Subject::new(vec![
            (AttrType::Organization, "Acme, Inc".into()),
            (AttrType::CommonName, "app".into()),
        ])
        .unwrap();
        assert_eq!(kyma_subject(&s), "O=Acme\\, Inc,CN=app");
    }

    #[test]
    fn tokens_are_256_bits_and_stored_hashed() {
        let id = identity_of(ConnectorKind::Application, "a".into(), None, None);
        let (token, row) = new_token(&id, PAIRING, 100, 300);
        assert_eq!(token.len(), 64);
        assert_eq!(row.token_sha256, sha256(&token));
        assert_ne!(row.token_sha256, token.as_bytes());
        assert_eq!(row.expires_at, 400);
    }

    #[test]
    fn minted_tokens_are_bounded_and_forgotten_when_spent() {
        let id = identity_of(ConnectorKind::Application, "a".into(), None, None);
        let minted = Minted::default();
        let rows: Vec<ConnectorTokenRow> = (0..MINTED_CAP + 10)
            .map(|_| new_token(&id, PAIRING, 100, 300).1)
            .collect();
        for row in &rows {
            minted.remember(row);
        }
        let held = |m: &Minted| {
            let g = m.rows.lock().unwrap();
            (g.0.len(), g.1.len())
        };
        assert_eq!(held(&minted), (MINTED_CAP, MINTED_CAP));
        assert_eq!(
            minted.get(&rows[0].token_sha256),
            None,
            "the oldest went first"
        );
        let last = &rows[rows.len() - 1];
        assert_eq!(minted.get(&last.token_sha256).as_ref(), Some(last));
        minted.forget(&last.token_sha256);
        assert_eq!(minted.get(&last.token_sha256), None);
        // Spent tokens keep no row, and the order stays bounded however many come and go.
        for _ in 0..3 * MINTED_CAP {
            let row = new_token(&id, CSR, 100, 300).1;
            minted.remember(&row);
            minted.forget(&row.token_sha256);
        }
        let (live, order) = held(&minted);
        assert!(
            order <= MINTED_CAP && live <= order,
            "{live} rows, {order} in order"
        );
    }
}
