//! Enrolment over EST (RFC 7030): the rules behind `simpleenroll`, `simplereenroll` and `serverkeygen`.
//!
//! Order of a first enrolment: the RA and its CA → the CSR (signature verified) → who is asking
//! (bootstrap certificate or one-time secret, each bound to the device the CSR names; or the RA's own
//! certificate, which enrols any of its devices) → if the RA has an approval webhook, the device (registered,
//! or registrable) and the webhook → sign → one transaction checks the device (registered or registrable,
//! of this RA, not decommissioned), records the certificate, the device, its slot, its log and events, and
//! consumes the secret; it refuses a device whose slot still holds a valid certificate (renewing is
//! `simplereenroll`'s job). A refusal at any step stores nothing.
//! The HTTP edge (`server::est`) only decodes the request and encodes the answer.

use std::time::Duration;

use shedu_keys::ExportedKey;
use shedu_pki::{CertInfo, Csr, is_signed_by, pem_encode_cert};
use shedu_store::EnrollmentRecord;
use zeroize::Zeroizing;

use crate::certificates::{insert_err, prepare};
use crate::error::store_err;
use crate::ra::{AuthMode, Enrollment, Ra};
use crate::{AuditAction, AuditContext, ClientCertProblem, Error};

/// Which EST operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EstOperation {
    /// `simpleenroll`.
    Enroll,
    /// `simplereenroll`.
    Reenroll,
    /// `serverkeygen`.
    ServerKeygen,
}

/// What a device sent.
#[derive(Clone, Debug)]
pub struct EstRequest {
    /// The operation.
    pub operation: EstOperation,
    /// The PKCS#10 request, DER.
    pub csr_der: Vec<u8>,
    /// The client certificate the TLS handshake verified (leaf, DER) and the intermediates it sent.
    pub client_chain: Vec<Vec<u8>>,
    /// HTTP Basic user name (the device id), when Basic was used.
    pub secret_user: Option<String>,
    /// The one-time secret (HTTP Basic password or bearer token).
    pub secret: Option<Zeroizing<String>>,
}

/// What the device gets back.
#[derive(Debug)]
pub struct EstIssued {
    /// The device the certificate belongs to.
    pub device_id: String,
    /// The new certificate, DER.
    pub certificate_der: Vec<u8>,
    /// `serverkeygen`: the private key generated for the device, PKCS#8 DER.
    pub private_key_pkcs8: Option<Zeroizing<Vec<u8>>>,
}

/// What authenticated a first enrolment.
enum Credential {
    /// A bootstrap certificate, the RA's own certificate, or (webhook-only RAs) nothing.
    Accepted,
    /// A one-time secret, consumed in the enrolment's transaction.
    Secret(Vec<u8>),
}

fn forbidden(code: &'static str, detail: impl Into<String>) -> Error {
    Error::Forbidden {
        code,
        detail: detail.into(),
    }
}

fn not_registered(device_id: &str) -> Error {
    forbidden(
        "device-not-registered",
        format!("device {device_id} is not registered and this RA does not register devices"),
    )
}

fn other_ra(device_id: &str) -> Error {
    forbidden(
        "device-of-another-ra",
        format!("device {device_id} enrols through another RA"),
    )
}

fn decommissioned(device_id: &str) -> Error {
    forbidden(
        "device-decommissioned",
        format!("device {device_id} is decommissioned"),
    )
}

/// A credential made for one device (a one-time secret's HTTP Basic user, a bootstrap certificate's subject
/// common name) enrols that device only: the id it names must be the CSR's common name, the device id.
/// Otherwise one factory certificate or secret would enrol, or take over, any device of the RA.
fn bound_to(credential_for: Option<&str>, device_id: &str) -> Result<(), Error> {
    if credential_for == Some(device_id) {
        Ok(())
    } else {
        Err(forbidden(
            "device-id-mismatch",
            "the credentials belong to another device than the CSR's common name",
        ))
    }
}

/// One EST request as the enrolment steps see it: who asks (as the gateway identified it), through which
/// RA, and what was sent.
#[derive(Clone, Copy)]
struct Call<'a> {
    actor: &'a AuditContext,
    ra: &'a Ra,
    req: &'a EstRequest,
}

impl Enrollment {
    /// The RA an EST request is for: the label's (an RA id), or the configured default RA (by id or name)
    /// when the URL has none. Served from memory once read, until any RA changes (here or on another
    /// replica: every RA change moves `Registry::ra_generation` before it returns).
    pub async fn est_ra(&self, label: Option<&str>) -> Result<Ra, Error> {
        let reg = &self.reg;
        if let Some(id) = label {
            return self
                .est_ras
                .get_or_read(&reg.coherence, &reg.ra_generation, id, || self.ra(id))
                .await;
        }
        let Some(default) = self.est_default_ra.as_deref() else {
            return Err(Error::NotFound(
                "EST without a label (no default RA is configured)".into(),
            ));
        };
        // A default RA is kept under a key no label can be (labels are ids, in the URL's path).
        self.est_ras
            .get_or_read(
                &reg.coherence,
                &reg.ra_generation,
                &format!("/{default}"),
                || self.ra_by_id_or_name(default),
            )
            .await
    }

    /// `cacerts`: the RA's default CA and its ancestors (DER, issuing CA first).
    pub async fn est_cacerts(&self, ra: &Ra) -> Result<Vec<Vec<u8>>, Error> {
        let chain = self.reg.loaded(&ra.default_ca_id).await?.chain_pem.clone();
        Ok(shedu_pki::pem_to_der_certs(chain.as_bytes())?)
    }

    /// `simpleenroll`, `simplereenroll` and `serverkeygen`.
    /// `actor` is the enrolling device (or RA) as the gateway identified it.
    pub async fn est_enroll(
        &self,
        actor: &AuditContext,
        ra: &Ra,
        req: EstRequest,
    ) -> Result<EstIssued, Error> {
        let csr = Csr::from_der(&req.csr_der)?;
        let call = Call {
            actor,
            ra,
            req: &req,
        };
        match req.operation {
            EstOperation::Reenroll => self.reenroll(call, csr).await,
            EstOperation::Enroll | EstOperation::ServerKeygen => self.first_enroll(call, csr).await,
        }
    }

    async fn first_enroll(&self, call: Call<'_>, csr: Csr) -> Result<EstIssued, Error> {
        let Call { actor, ra, req } = call;
        let settings = &ra.enrollment;
        let server_key = match req.operation {
            EstOperation::ServerKeygen if !settings.server_keygen => {
                return Err(forbidden(
                    "serverkeygen-not-allowed",
                    "this RA does not generate keys for devices",
                ));
            }
            EstOperation::ServerKeygen => {
                Some(ExportedKey::generate(settings.server_keygen_key_type)?)
            }
            _ => None,
        };
        let device_id = csr
            .common_name()
            .map(str::to_string)
            .ok_or_else(|| Error::invalid("no-device-id", "the CSR subject has no common name"))?;
        if !ra.ca_ids.contains(&ra.default_ca_id) {
            return Err(forbidden(
                "ca-not-authorized",
                "the RA's CA is not authorized",
            ));
        }
        let credential = self.authenticate_enrollment(ra, &device_id, req).await?;
        if settings.auth_modes.contains(&AuthMode::Webhook) {
            // The approval service is asked only about a device that may enrol. Without one, the
            // transaction's checks (under the device's lock) are the only ones: a refused device costs a
            // signature, an accepted one a read less.
            self.may_enrol(ra, &device_id).await?;
            self.ask_approval(ra, &device_id, &csr, req).await?;
        }
        let csr = match &server_key {
            Some(key) => csr.with_public_key(&key.spki)?,
            None => csr,
        };
        let consume = match credential {
            Credential::Secret(hash) => Some(hash),
            Credential::Accepted => None,
        };
        let issued = self
            .record_enrollment(
                actor,
                ra,
                &ra.default_ca_id,
                &device_id,
                &csr,
                false,
                consume,
            )
            .await?;
        Ok(EstIssued {
            device_id,
            certificate_der: issued,
            private_key_pkcs8: server_key.map(|k| k.pkcs8),
        })
    }

    async fn reenroll(&self, call: Call<'_>, csr: Csr) -> Result<EstIssued, Error> {
        let Call { actor, ra, req } = call;
        let settings = &ra.enrollment;
        let leaf = req.client_chain.first().ok_or_else(|| {
            Error::Unauthenticated(
                "re-enrolment is authenticated by the current certificate over mTLS".into(),
            )
        })?;
        let current = match self
            .issuance
            .client_certificate(leaf, settings.allow_expired_reenroll)
            .await?
        {
            Ok(cert) => cert,
            Err(problem) => return Err(forbidden("client-certificate-refused", problem.as_str())),
        };
        let serial = current.serial.to_hex();
        let device = self
            .reg
            .store
            .device_by_certificate(&current.ca_id, &serial)
            .await
            .map_err(store_err("device"))?
            .filter(|d| d.ra_id == ra.id && d.status != "decommissioned")
            .ok_or_else(|| {
                forbidden(
                    "not-an-enrolled-device",
                    "the certificate is not the identity of an active device of this RA",
                )
            })?;
        let slot = self
            .reg
            .store
            .device_slot(&device.id, &current.ca_id)
            .await
            .map_err(store_err("device slot"))?;
        if slot.map(|s| s.active_serial) != Some(serial) {
            return Err(forbidden(
                "not-current-certificate",
                "the certificate is no longer the device's current one",
            ));
        }
        if !ra.ca_ids.contains(&current.ca_id) {
            return Err(forbidden(
                "ca-not-authorized",
                "the device's CA is no longer authorized for this RA",
            ));
        }
        let mut requested = csr.sans_display().to_vec();
        let mut held = current.sans.clone();
        requested.sort();
        held.sort();
        // The subject the profile would issue for this CSR, not the CSR's own: the policy may fix or
        // drop attributes, and the current certificate went through the same policy.
        let loaded = self.reg.loaded(&current.ca_id).await?;
        let subject = loaded.ca.profile.names.subject_for(csr.subject())?;
        if subject.display()? != current.subject || requested != held {
            return Err(forbidden(
                "subject-mismatch",
                "a re-enrolment must request the subject and SANs of the current certificate",
            ));
        }
        let opens = current.not_after - i64::from(settings.reenroll_window_days) * 86_400;
        let now = self.reg.now();
        if now < opens {
            return Err(forbidden(
                "outside-reenroll-window",
                format!(
                    "the certificate can be renewed {} days before it expires, in {} days",
                    settings.reenroll_window_days,
                    (opens - now + 86_399) / 86_400
                ),
            ));
        }
        let certificate_der = self
            .record_enrollment(actor, ra, &current.ca_id, &device.id, &csr, true, None)
            .await?;
        Ok(EstIssued {
            device_id: device.id,
            certificate_der,
            private_key_pkcs8: None,
        })
    }

    /// Whether the device may enrol through this RA as stored now: registered with it (or registrable) and
    /// not decommissioned. The enrolment's transaction checks the same again under the device's lock.
    async fn may_enrol(&self, ra: &Ra, device_id: &str) -> Result<(), Error> {
        match self.reg.store.get_device(device_id).await {
            Ok(device) if device.ra_id != ra.id => Err(other_ra(device_id)),
            Ok(device) if device.status == "decommissioned" => Err(decommissioned(device_id)),
            Ok(_) => Ok(()),
            Err(shedu_store::Error::NotFound) if ra.enrollment.auto_register => Ok(()),
            Err(shedu_store::Error::NotFound) => Err(not_registered(device_id)),
            Err(e) => Err(store_err("device")(e)),
        }
    }

    /// Signs, then commits the certificate with everything the enrolment changes in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn record_enrollment(
        &self,
        actor: &AuditContext,
        ra: &Ra,
        ca_id: &str,
        device_id: &str,
        csr: &Csr,
        reenroll: bool,
        consume_secret_sha256: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, Error> {
        let prepared = prepare(&self.reg, ca_id, csr, None, None).await?;
        let der = prepared.row.der.clone();
        let outcome = self
            .reg
            .store
            .record_enrollment(
                EnrollmentRecord {
                    cert: prepared.row,
                    cert_event: prepared.event,
                    device_id: device_id.to_string(),
                    ra_id: ra.id.clone(),
                    slot: ca_id.to_string(),
                    register: ra.enrollment.auto_register,
                    reenroll,
                    revoke_previous: reenroll && ra.enrollment.revoke_on_reenroll,
                    consume_secret_sha256,
                    now: self.reg.now(),
                },
                &AuditAction::DeviceEnroll.by(actor),
            )
            .await
            .map_err(|e| match e {
                shedu_store::Error::Unauthorized => forbidden(
                    "invalid-secret",
                    "the one-time secret is wrong or was already used",
                ),
                shedu_store::Error::NotFound => not_registered(device_id),
                shedu_store::Error::Conflict { constraint }
                    if constraint.as_deref() == Some(shedu_store::DEVICE_DECOMMISSIONED) =>
                {
                    decommissioned(device_id)
                }
                shedu_store::Error::Conflict { constraint }
                    if constraint.as_deref() == Some(shedu_store::DEVICE_ALREADY_ENROLLED) =>
                {
                    forbidden(
                        "device-already-enrolled",
                        format!(
                            "device {device_id} already holds a valid certificate of this CA; \
                             renew it with simplereenroll"
                        ),
                    )
                }
                shedu_store::Error::Conflict { constraint }
                    if constraint.as_deref() == Some(shedu_store::DEVICE_RA_MISMATCH) =>
                {
                    other_ra(device_id)
                }
                other => insert_err(other),
            })?;
        crate::metrics::issued("est");
        if let (true, Some(previous)) = (outcome.previous_revoked, &outcome.previous)
            && let Ok(serial) = previous.parse()
        {
            self.reg.on_revoked(ca_id, &serial).await;
        }
        Ok(der)
    }

    /// Checks the credentials of a first enrolment against the RA's modes. Any one accepted credential
    /// suffices; an RA with only the webhook mode leaves the decision to the webhook. No credential at
    /// all is `Unauthenticated` (401); credentials that do not pass are `Forbidden` (403).
    async fn authenticate_enrollment(
        &self,
        ra: &Ra,
        device_id: &str,
        req: &EstRequest,
    ) -> Result<Credential, Error> {
        let modes = &ra.enrollment.auth_modes;
        let mut refusal = None;
        if let Some(leaf) = req.client_chain.first() {
            let is_ra = ra.certificate_der.as_deref() == Some(leaf.as_slice());
            // The RA's own certificate needs no chain to a bootstrap CA (each link is a signature check).
            let is_bootstrap = !is_ra
                && modes.contains(&AuthMode::ClientCertificate)
                && self.chains_to_bootstrap_ca(ra, &req.client_chain).await?;
            if is_ra || is_bootstrap {
                match self.issuance.client_certificate(leaf, false).await? {
                    // The RA's own certificate acts for all of its devices.
                    Ok(_) if is_ra => return Ok(Credential::Accepted),
                    Ok(_) => {
                        let leaf = CertInfo::from_der(leaf)?;
                        bound_to(leaf.common_name.as_deref(), device_id)?;
                        return Ok(Credential::Accepted);
                    }
                    Err(problem) => refusal = Some(problem),
                }
            } else {
                refusal = Some(ClientCertProblem::Unknown);
            }
        }
        if let Some(secret) = &req.secret
            && modes.contains(&AuthMode::OneTimeSecret)
        {
            // A bearer token names no device: the stored secret it must match is the device's own.
            if let Some(user) = req.secret_user.as_deref() {
                bound_to(Some(user), device_id)?;
            }
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
            return Ok(Credential::Secret(hash.as_ref().to_vec()));
        }
        if modes.iter().all(|m| *m == AuthMode::Webhook) {
            return Ok(Credential::Accepted);
        }
        match (refusal, &req.secret) {
            (Some(ClientCertProblem::Unknown), _) => Err(forbidden(
                "client-certificate-refused",
                "the client certificate is not a bootstrap certificate of this RA",
            )),
            (Some(problem), _) => Err(forbidden("client-certificate-refused", problem.as_str())),
            (None, Some(_)) => Err(forbidden(
                "auth-mode-not-allowed",
                "this RA does not accept one-time secrets",
            )),
            (None, None) => Err(Error::Unauthenticated(
                "enrolment needs a bootstrap certificate (mTLS) or a one-time secret".into(),
            )),
        }
    }

    /// Whether the presented chain leads to one of the RA's bootstrap CAs: the leaf, or an intermediate the
    /// client sent, signed by a bootstrap CA's certificate.
    async fn chains_to_bootstrap_ca(&self, ra: &Ra, chain: &[Vec<u8>]) -> Result<bool, Error> {
        let mut anchors = Vec::with_capacity(ra.enrollment.bootstrap_ca_ids.len());
        for id in &ra.enrollment.bootstrap_ca_ids {
            match self.reg.loaded(id).await {
                Ok(ca) => anchors.push(ca.ca.certificate_der.clone()),
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(mut current) = chain.first() else {
            return Ok(false);
        };
        // A chain longer than a handful is not a device's; the bound also guards against cycles.
        for _ in 0..chain.len().min(8) {
            if anchors.iter().any(|a| is_signed_by(current, a)) {
                return Ok(true);
            }
            match chain
                .iter()
                .find(|c| *c != current && is_signed_by(current, c))
            {
                Some(parent) => current = parent,
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Asks the RA's approval webhook; only an explicit `{"allow": true}` within the timeout proceeds.
    async fn ask_approval(
        &self,
        ra: &Ra,
        device_id: &str,
        csr: &Csr,
        req: &EstRequest,
    ) -> Result<(), Error> {
        let Some(hook) = &ra.enrollment.webhook else {
            return Err(forbidden(
                "no-approval",
                "the RA's approval webhook is not set",
            ));
        };
        let body = serde_json::json!({
            "ra_id": ra.id,
            "device_id": device_id,
            "operation": match req.operation {
                EstOperation::Enroll => "simpleenroll",
                EstOperation::Reenroll => "simplereenroll",
                EstOperation::ServerKeygen => "serverkeygen",
            },
            "csr": {
                "subject": csr.subject_display(),
                "sans": csr.sans_display(),
                "key_type": csr.key_type().as_str(),
            },
            "client_certificate": req.client_chain.first().map(|c| pem_encode_cert(c)),
        });
        let request = self
            .webhooks
            .shared_client()
            .post(&hook.url)
            .map_err(|why| {
                tracing::warn!(ra = %ra.id, %why, "approval webhook refused by the target policy");
                forbidden(
                    "not-approved",
                    "the RA's approval service did not allow this enrolment",
                )
            })?;
        let answer = request
            .timeout(Duration::from_millis(hook.timeout_ms))
            .json(&body)
            .send()
            .await;
        let allowed = match answer {
            Ok(resp) if resp.status().is_success() => {
                match crate::webhook::read_capped(resp, MAX_APPROVAL_REPLY).await {
                    Ok(reply) => approval_allows(&reply),
                    Err(why) => {
                        tracing::warn!(ra = %ra.id, %why, "approval webhook reply not read; refused");
                        false
                    }
                }
            }
            Ok(resp) => {
                tracing::info!(ra = %ra.id, status = %resp.status(), "approval webhook refused");
                false
            }
            Err(e) => {
                tracing::warn!(ra = %ra.id, error = %e, "approval webhook did not answer");
                false
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(forbidden(
                "not-approved",
                "the RA's approval service did not allow this enrolment",
            ))
        }
    }
}

/// The largest approval-webhook reply read; a larger one refuses the enrolment.
const MAX_APPROVAL_REPLY: usize = 64 * 1024;

/// Whether an approval webhook's reply (the body of a 2xx answer) allows the enrolment: only a JSON object
/// whose `allow` is `true` does; anything else, malformed or not, refuses.
pub fn approval_allows(reply: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(reply)
        .ok()
        .and_then(|v| v.get("allow").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::approval_allows;

    #[test]
    fn only_an_explicit_allow_true_approves() {
        assert!(approval_allows(br#"{"allow": true}"#));
        assert!(approval_allows(
            br#"{"allow": true, "reason": "known device"}"#
        ));
        for reply in [
            &br#"{"allow": false}"#[..],
            br#"{"allow": "true"}"#,
            br#"{"allow": 1}"#,
            br#"[{"allow": true}]"#,
            br#"{"Allow": true}"#,
            b"true",
            b"",
            b"\xff{",
        ] {
            assert!(
                !approval_allows(reply),
                "{}",
                String::from_utf8_lossy(reply)
            );
        }
    }
}
