//! Issuing certificates from CSRs, revoking them, and reading them back.

use shedu_pki::{
    CertInfo, Csr, IssueRequest, RevocationReason, RevocationUrls, Serial, Validity, issue_leaf,
    pem_encode_cert,
};
use shedu_store::{CertRow, CertificateFilter, Page, RevokeOutcome};

use std::sync::Arc;

use crate::cluster::Remembered;
use crate::error::{signing_err, store_err};
use crate::events::{EventKind, event};
use crate::registry::{LoadedCa, Registry, usable_issuer};
use crate::va::{crl_url, shard_of};
use crate::{AuditAction, AuditContext, Certificate, ClientCertProblem, Error, Status};

/// A request to issue one certificate.
#[derive(Clone, Debug)]
pub struct IssueInput {
    /// The PKCS#10 CSR, PEM or DER.
    pub csr: Vec<u8>,
    /// Validity; the profile's default when `None`.
    pub validity_days: Option<u32>,
    /// SANs to use instead of the CSR's (`dns:`, `ip:`, `email:`, `uri:` or bare).
    pub sans: Option<Vec<String>>,
}

/// An issued certificate with the chain a client needs to verify it.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The stored certificate.
    pub certificate: Certificate,
    /// The issuing CA's certificate and its ancestors up to the root, PEM.
    pub chain_pem: String,
}

/// A signed certificate not yet stored: its row, its event, and what the caller returns once committed.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) row: CertRow,
    pub(crate) event: shedu_store::NewEvent,
    pub(crate) issued: Issued,
}

/// Maps a failed certificate insert. A unique violation means a 126-bit serial or a SHA-256 collided:
/// not the caller's fault.
pub(crate) fn insert_err(e: shedu_store::Error) -> Error {
    match e {
        shedu_store::Error::Conflict { .. } => {
            Error::Internal("serial or fingerprint collision".into())
        }
        other => store_err("certificate")(other),
    }
}

/// Filters for listing certificates.
#[derive(Clone, Debug, Default)]
pub struct CertificateQuery {
    /// Issuer CA.
    pub ca_id: Option<String>,
    /// Stored status.
    pub status: Option<Status>,
    /// The start of the subject's common name (case-insensitive on ASCII).
    pub common_name_prefix: Option<String>,
    /// notAfter before (Unix seconds).
    pub expires_before: Option<i64>,
    /// notAfter at or after (Unix seconds).
    pub expires_after: Option<i64>,
    /// Cursor from the previous page.
    pub cursor: Option<i64>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<i64>,
}

/// Issuance: certificates from CSRs under a CA's profile, revocation, look-ups, listings and the status
/// sweep.
#[derive(Debug)]
pub struct Issuance {
    reg: Arc<Registry>,
    /// The rows of client certificates checked recently, by fingerprint, until the next revocation.
    client_certs: Remembered<String, CertRow>,
}

impl Issuance {
    pub(crate) fn new(reg: Arc<Registry>) -> Issuance {
        Issuance {
            reg,
            client_certs: Remembered::default(),
        }
    }

    /// Issues a certificate from a CSR under the CA's profile. The certificate and its event are committed
    /// before this returns.
    pub async fn issue(
        &self,
        actor: &AuditContext,
        ca_id: &str,
        input: IssueInput,
    ) -> Result<Issued, Error> {
        let prepared = self.prepare_input(ca_id, input).await?;
        self.commit(actor, prepared).await
    }

    async fn prepare_input(&self, ca_id: &str, input: IssueInput) -> Result<Prepared, Error> {
        let csr = Csr::parse(&input.csr)?;
        prepare(
            &self.reg,
            ca_id,
            &csr,
            input.validity_days,
            input.sans.as_deref(),
        )
        .await
    }

    /// [`Issuance::issue`] for the ACME order `order_id`, which is being finalized (`processing`): the
    /// order moves to `valid` with the certificate's serial in the certificate's own transaction.
    pub(crate) async fn issue_for_acme_order(
        &self,
        actor: &AuditContext,
        ca_id: &str,
        input: IssueInput,
        order_id: &str,
    ) -> Result<Issued, Error> {
        let prepared = self.prepare_input(ca_id, input).await?;
        self.reg
            .store
            .insert_acme_certificate(
                prepared.row,
                prepared.event,
                &AuditAction::CertificateIssue.by(actor),
                order_id,
            )
            .await
            .map_err(insert_err)?;
        crate::metrics::issued("api");
        Ok(prepared.issued)
    }

    /// Stores a prepared certificate with its event and audit record (committed before this returns).
    pub(crate) async fn commit(
        &self,
        actor: &AuditContext,
        prepared: Prepared,
    ) -> Result<Issued, Error> {
        self.reg
            .store
            .insert_certificate(
                prepared.row,
                prepared.event,
                &AuditAction::CertificateIssue.by(actor),
            )
            .await
            .map_err(insert_err)?;
        crate::metrics::issued("api");
        Ok(prepared.issued)
    }

    /// Revokes a certificate with an RFC 5280 reason and an optional invalidity date (RFC 5280 §5.3.2).
    /// Revoking twice is a conflict and changes nothing. Once this returns, no OCSP answer says `good`.
    pub async fn revoke(
        &self,
        actor: &AuditContext,
        ca_id: &str,
        serial: &Serial,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<Certificate, Error> {
        self.revoke_announced(actor, ca_id, serial, reason, invalidity_date, None)
            .await
    }

    /// [`Issuance::revoke`], with the event of the capability that asked for it (the connector's
    /// `connector.certificate_revoked`) in the revocation's transaction. `announce` gets the revocation
    /// time.
    pub(crate) async fn revoke_announced(
        &self,
        actor: &AuditContext,
        ca_id: &str,
        serial: &Serial,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
        announce: Option<&(dyn Fn(i64) -> shedu_store::NewEvent + Sync)>,
    ) -> Result<Certificate, Error> {
        let now = self.reg.now();
        let loaded = self.reg.loaded(ca_id).await?;
        let also = announce.map(|f| f(now));
        let ev = event(
            EventKind::CertificateRevoked,
            format!("cas/{ca_id}/certificates/{serial}"),
            now,
            serde_json::json!({ "ca_id": ca_id, "serial": serial.to_hex(), "reason": reason.as_str(), "revoked_at": now }),
        );
        let outcome = self
            .reg
            .store
            .revoke_certificate_announced(
                ca_id,
                &serial.to_hex(),
                now,
                reason.as_str(),
                invalidity_date,
                &std::iter::once(&ev)
                    .chain(also.as_ref())
                    .collect::<Vec<_>>(),
                &AuditAction::CertificateRevoke.by(actor),
            )
            .await
            .map_err(store_err(format!("certificate {serial} of CA {ca_id}")))?;
        match outcome {
            RevokeOutcome::Revoked(row) => {
                self.reg.on_revoked(ca_id, serial).await;
                crate::metrics::revoked();
                cert_from_row(row, now, loaded.ca.profile.expiry_warning_days)
            }
            RevokeOutcome::AlreadyRevoked(_) => Err(Error::conflict(
                "already-revoked",
                format!("certificate {serial} is already revoked"),
            )),
        }
    }

    /// A certificate by issuer and serial.
    pub async fn certificate(&self, ca_id: &str, serial: &Serial) -> Result<Certificate, Error> {
        let loaded = self.reg.loaded(ca_id).await?;
        let row = self
            .reg
            .store
            .get_certificate(ca_id, &serial.to_hex())
            .await
            .map_err(store_err(format!("certificate {serial} of CA {ca_id}")))?;
        cert_from_row(
            row,
            self.reg.clock.now(),
            loaded.ca.profile.expiry_warning_days,
        )
    }

    /// A certificate by SHA-256 fingerprint (hex, `:` separators and case ignored).
    pub async fn certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Certificate, Error> {
        let fp: String = fingerprint
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if fp.len() != 64 || !fp.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "malformed-input",
                "a SHA-256 fingerprint is 64 hex digits",
            ));
        }
        let row = self.row_by_fingerprint(&fp).await?;
        self.judged_now(row).await
    }

    /// The stored row of the certificate with fingerprint `fp` (64 lowercase hex digits).
    async fn row_by_fingerprint(&self, fp: &str) -> Result<CertRow, Error> {
        self.reg
            .store
            .get_certificate_by_fingerprint(fp)
            .await
            .map_err(store_err(format!("certificate with fingerprint {fp}")))
    }

    /// A stored row as a certificate now.
    async fn judged_now(&self, row: CertRow) -> Result<Certificate, Error> {
        let loaded = self.reg.loaded(&row.ca_id).await?;
        cert_from_row(
            row,
            self.reg.clock.now(),
            loaded.ca.profile.expiry_warning_days,
        )
    }

    /// Lists certificates newest first, one page at a time.
    pub async fn certificates(&self, q: CertificateQuery) -> Result<Page<Certificate>, Error> {
        let filter = CertificateFilter {
            ca_id: q.ca_id,
            status: q.status.map(|s| s.as_str().to_string()),
            common_name_prefix: q.common_name_prefix,
            expires_before: q.expires_before,
            expires_after: q.expires_after,
            before_seq: q.cursor,
            limit: q.limit.unwrap_or(100),
        };
        let page = self
            .reg
            .store
            .list_certificates(&filter)
            .await
            .map_err(store_err("certificates"))?;
        let now = self.reg.clock.now();
        let mut items = Vec::with_capacity(page.items.len());
        for row in page.items {
            let warn = self
                .reg
                .loaded(&row.ca_id)
                .await?
                .ca
                .profile
                .expiry_warning_days;
            items.push(cert_from_row(row, now, warn)?);
        }
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// Runs the lifecycle sweep once as of the service clock.
    pub async fn sweep(&self) -> Result<shedu_store::SweepReport, Error> {
        self.reg
            .store
            .sweep_statuses(self.reg.now())
            .await
            .map_err(store_err("sweep"))
    }

    /// The PEM of a certificate.
    pub fn pem(cert: &Certificate) -> String {
        pem_encode_cert(&cert.der)
    }

    /// The stored certificate a TLS client presented, with its effective status. The handshake has
    /// already verified the chain up to a managed CA; this adds what the handshake cannot know:
    /// revocation (fail closed: a certificate missing from storage is refused) and expiry.
    /// `allow_expired` serves re-enrolment of an expired certificate where an RA permits it.
    pub async fn client_certificate(
        &self,
        der: &[u8],
        allow_expired: bool,
    ) -> Result<Result<Certificate, ClientCertProblem>, Error> {
        let fingerprint = shedu_pki::fingerprint_sha256(der);
        // The row, not the certificate, is remembered: its status and validity are judged now, each time.
        // Any revocation makes every remembered row unusable before the revoking call returns.
        let reg = &self.reg;
        let row = self
            .client_certs
            .get_or_read(
                &reg.coherence,
                &reg.revocation_generation,
                &fingerprint,
                || self.row_by_fingerprint(&fingerprint),
            )
            .await;
        let cert = match row {
            Ok(row) => self.judged_now(row).await?,
            Err(Error::NotFound(_)) => return Ok(Err(ClientCertProblem::Unknown)),
            Err(e) => return Err(e),
        };
        let now = self.reg.now();
        let leaf = match cert.status {
            Status::Revoked => Err(ClientCertProblem::Revoked),
            Status::Expired if !allow_expired => Err(ClientCertProblem::Expired),
            _ if cert.not_before > now => Err(ClientCertProblem::Unknown),
            _ => Ok(()),
        };
        if let Err(problem) = leaf {
            return Ok(Err(problem));
        }
        // The handshake does not judge the CAs' validity (they are its anchors), and a CA may expire
        // before a certificate it issued (an imported hierarchy need not nest): every CA up the chain
        // must be valid now, whatever the RA allows for the leaf.
        let chain = self.reg.chain_validity(&cert.ca_id).await?;
        if let Some(period) = chain.iter().find(|period| !period.contains(now)) {
            tracing::info!(ca_id = %period.ca_id, serial = %cert.serial.to_hex(),
                "client certificate refused: a CA of its chain is outside its validity period");
            return Ok(Err(ClientCertProblem::IssuerOutsideValidity));
        }
        Ok(Ok(cert))
    }
}

/// Signs a certificate for a verified CSR and builds its row and `certificate.issued` event, storing
/// nothing: the caller commits them (alone, or with an enrolment) before handing the certificate out.
pub(crate) async fn prepare(
    reg: &Registry,
    ca_id: &str,
    csr: &Csr,
    validity_days: Option<u32>,
    sans: Option<&[String]>,
) -> Result<Prepared, Error> {
    let now = reg.clock.now();
    let loaded = reg.loaded(ca_id).await?;
    let issuer = usable_issuer(&loaded, now)?;
    let profile = &loaded.ca.profile;
    let validity = Validity::within_issuer(
        now,
        validity_days,
        profile.default_validity_days,
        loaded.ca.not_after,
    )?;
    let serial = Serial::random();
    let revocation_urls = revocation_urls(reg, &loaded, &serial);
    let der = issue_leaf(
        &IssueRequest {
            csr,
            sans,
            validity,
            serial: &serial,
            profile,
            revocation_urls: &revocation_urls,
        },
        issuer,
    )
    .map_err(signing_err(ca_id))?;
    let info = CertInfo::from_der(&der)?;
    let status = Status::Active.effective(
        now,
        info.not_after,
        i64::from(profile.expiry_warning_days) * 86_400,
    );
    let row = CertRow {
        seq: 0,
        ca_id: ca_id.to_string(),
        serial: serial.to_hex(),
        fingerprint: info.fingerprint,
        subject: info.subject,
        sans: info.sans.join(", "),
        key_type: info.key_type.as_str().to_string(),
        not_before: info.not_before,
        not_after: info.not_after,
        der,
        status: status.as_str().to_string(),
        revoked_at: None,
        revocation_reason: None,
        created_at: now,
    };
    let ev = event(
        EventKind::CertificateIssued,
        format!("cas/{ca_id}/certificates/{}", row.serial),
        now,
        serde_json::json!({
            "ca_id": ca_id, "serial": row.serial, "subject": row.subject,
            "fingerprint": row.fingerprint, "not_after": row.not_after,
        }),
    );
    let certificate = cert_from_row(row.clone(), now, profile.expiry_warning_days)?;
    Ok(Prepared {
        row,
        event: ev,
        issued: Issued {
            certificate,
            chain_pem: loaded.chain_pem.clone(),
        },
    })
}

/// The AIA and CRL distribution point URLs for a certificate of this CA, per its VA settings. The CRL
/// partition is fixed here, at issuance, from the serial.
fn revocation_urls(reg: &Registry, loaded: &LoadedCa, serial: &Serial) -> RevocationUrls {
    let config = reg.va_config();
    let base = &config.public_url;
    let ca_id = &loaded.ca.id;
    let shards = loaded.va.crl_shards;
    RevocationUrls {
        ocsp: loaded.va.aia.then(|| format!("{base}/ocsp")),
        ca_issuers: loaded.va.aia.then(|| format!("{base}/ca/{ca_id}")),
        crl: loaded
            .va
            .crldp
            .then(|| crl_url(config, ca_id, shard_of(serial, shards), shards)),
    }
}

fn cert_from_row(r: CertRow, now: i64, warning_days: u32) -> Result<Certificate, Error> {
    let corrupt = |what: &str| {
        Error::Internal(format!(
            "stored certificate {} has an invalid {what}",
            r.serial
        ))
    };
    let stored: Status = r.status.parse().map_err(|_| corrupt("status"))?;
    Ok(Certificate {
        seq: r.seq,
        serial: r.serial.parse().map_err(|_| corrupt("serial"))?,
        status: stored.effective(now, r.not_after, i64::from(warning_days) * 86_400),
        revocation_reason: r
            .revocation_reason
            .as_deref()
            .map(|s| s.parse::<RevocationReason>())
            .transpose()
            .map_err(|_| corrupt("revocation reason"))?,
        sans: if r.sans.is_empty() {
            Vec::new()
        } else {
            r.sans.split(", ").map(str::to_string).collect()
        },
        ca_id: r.ca_id,
        fingerprint: r.fingerprint,
        subject: r.subject,
        key_type: r.key_type.parse().map_err(|_| corrupt("key type"))?,
        not_before: r.not_before,
        not_after: r.not_after,
        der: r.der,
        revoked_at: r.revoked_at,
        created_at: r.created_at,
    })
}
