//! Certify (KMIP 1.4 §4.7, 2.1 §6.1.5): a certificate for a PKCS#10 request, or for a stored public key
//! the caller owns (named by its Unique Identifier or the ID Placeholder; its subject is one common
//! name, the request's `x-shedu-common-name` attribute or else the key's first Name; the certificate is
//! linked to the key), issued by one of shedu's managed CAs through core issuance (the CA's profile, validity and revocation URLs, the certificate
//! stored, audited and announced as every issued certificate is), then kept as a KMIP Certificate object
//! owned by the caller.
//!
//! Who may: issuing is what admins and operators do on the API, so the KMIP user must be one of them: a
//! caller of `/kmip` with that role, or a TLS client whose certificate CN names an enabled shedu user with
//! that role (the KMIP user and the shedu user of one name are the same user). Anyone else gets
//! `Permission Denied`. Which CA: the request's custom attribute `x-shedu-ca`, the CA's id or name.

use shedu_kmip::{
    Attribute, Ttlv, Value, certificate_request_type, certificate_type, link_type, name_text,
    object_type, result_reason, state, tag,
};

use super::{Batch, Ctx, Out, answer, expect_type, link};
use crate::kmip::Failure;
use crate::kmip::object::{Managed, key_material};

/// The attribute naming the issuing CA.
pub(crate) const CA_ATTRIBUTE: &str = "x-shedu-ca";

/// The attribute giving the common name of a stored public key's certificate.
pub(crate) const CN_ATTRIBUTE: &str = "x-shedu-common-name";

impl Ctx<'_> {
    pub(super) async fn certify(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        self.may_issue().await?;
        let attributes = Self::attributes(p, tag::TEMPLATE_ATTRIBUTE, tag::ATTRIBUTES)?;
        let ca_id = self
            .ca_id(text_attribute(&attributes, CA_ATTRIBUTE)?.ok_or_else(|| {
                Failure::new(
                    result_reason::MISSING_DATA,
                    format!("name the issuing CA (its id or name) in the {CA_ATTRIBUTE} attribute"),
                )
            })?)
            .await?;
        let request = p
            .child(tag::CERTIFICATE_REQUEST_VALUE)
            .or_else(|| p.child(tag::CERTIFICATE_REQUEST));
        let (csr, public_key) = match request {
            Some(request) => {
                let kind = p
                    .child(tag::CERTIFICATE_REQUEST_TYPE)
                    .map(|t| t.as_enum("Certificate Request Type"))
                    .transpose()?;
                if !matches!(
                    kind,
                    None | Some(certificate_request_type::PKCS10 | certificate_request_type::PEM)
                ) {
                    return Err(Failure::new(
                        result_reason::FEATURE_NOT_SUPPORTED,
                        "the Certificate Request Type must be PKCS#10 or PEM",
                    ));
                }
                let csr = shedu_pki::Csr::parse(request.as_bytes("Certificate Request")?)
                    .map_err(|e| Failure::invalid(format!("the certificate request: {e}")))?;
                (csr, None)
            }
            None => {
                let (csr, uid) = self.public_key_request(p, batch, &attributes).await?;
                (csr, Some(uid))
            }
        };
        let reg = &self.kmip.reg;
        let prepared = crate::certificates::prepare(reg, &ca_id, &csr, None, None)
            .await
            .map_err(issue_failure)?;
        let issued = crate::certificates::Issuance::new(reg.clone())
            .commit(self.actor, prepared)
            .await
            .map_err(issue_failure)?;
        let object = Ttlv::structure(
            tag::CERTIFICATE,
            vec![
                Ttlv::enumeration(tag::CERTIFICATE_TYPE, certificate_type::X_509),
                Ttlv::bytes(tag::CERTIFICATE_VALUE, issued.certificate.der),
            ],
        );
        let m = Managed::new(
            &reg.keystore,
            &self.actor.principal,
            &object,
            object_type::CERTIFICATE,
            attributes,
            self.now(),
        )?;
        let mut m = m;
        if let Some(uid) = public_key {
            m.set(link(link_type::PUBLIC_KEY_LINK, &uid));
        }
        self.store_new(&[&m]).await?;
        Ok(answer(m.uid, vec![]))
    }

    /// The request for a stored public key: the caller's own (Certify is not grantable), Pre-Active or
    /// Active, a SubjectPublicKeyInfo; its common name from the request or the key's first Name.
    async fn public_key_request(
        &self,
        p: &Ttlv,
        batch: &Batch,
        attributes: &[Attribute],
    ) -> Result<(shedu_pki::Csr, String), Failure> {
        let m = self.object(p, batch).await?;
        expect_type(
            &m,
            object_type::PUBLIC_KEY,
            "Certify needs a Certificate Request or a public key",
        )?;
        if !matches!(m.state, state::PRE_ACTIVE | state::ACTIVE) {
            return Err(Failure::state(
                "only a Pre-Active or Active key can be certified",
            ));
        }
        let common_name = match text_attribute(attributes, CN_ATTRIBUTE)? {
            Some(cn) => cn.to_owned(),
            None => m
                .attr(tag::NAME)
                .and_then(name_text)
                .map(str::to_owned)
                .ok_or_else(|| {
                    Failure::new(
                        result_reason::MISSING_DATA,
                        format!(
                            "give the certificate's common name in {CN_ATTRIBUTE}, or name the key"
                        ),
                    )
                })?,
        };
        let object = m
            .open(&self.kmip.reg.keystore)?
            .ok_or_else(|| self.destroyed())?;
        let spki = key_material(&object).ok_or(Failure::new(
            result_reason::KEY_VALUE_NOT_PRESENT,
            "the key holds no key material",
        ))?;
        let csr = shedu_pki::Csr::for_public_key(spki, &common_name).map_err(|e| {
            Failure::invalid(format!(
                "the public key (a SubjectPublicKeyInfo is needed): {e}"
            ))
        })?;
        Ok((csr, m.uid))
    }

    /// `Permission Denied` unless the caller is an admin or operator (see the module's comment).
    async fn may_issue(&self) -> Result<(), Failure> {
        let issuer = |role: &str| matches!(role, "admin" | "operator");
        if issuer(&self.actor.role) {
            return Ok(());
        }
        let user = self
            .kmip
            .reg
            .store
            .user_by_name(&self.actor.principal)
            .await
            .map_err(|_| Failure::general("storage unavailable"))?;
        match user {
            Some(u) if !u.disabled && issuer(&u.role) => Ok(()),
            _ => Err(Failure::new(
                result_reason::PERMISSION_DENIED,
                "Certify needs a shedu admin or operator of the KMIP user's name",
            )),
        }
    }

    /// The id of the CA whose id or name is `reference`.
    async fn ca_id(&self, reference: &str) -> Result<String, Failure> {
        let cas = self
            .kmip
            .reg
            .store
            .list_cas()
            .await
            .map_err(|_| Failure::general("storage unavailable"))?;
        cas.into_iter()
            .find(|c| c.id == reference || c.name == reference)
            .map(|c| c.id)
            .ok_or_else(|| {
                Failure::new(result_reason::ITEM_NOT_FOUND, format!("no CA {reference}"))
            })
    }
}

/// The text of the request's attribute `name`, if given.
fn text_attribute<'a>(attributes: &'a [Attribute], name: &str) -> Result<Option<&'a str>, Failure> {
    match attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| &a.value.value)
    {
        None => Ok(None),
        Some(Value::TextString(s)) => Ok(Some(s)),
        Some(_) => Err(Failure::invalid(format!("{name} must be text"))),
    }
}

/// What a client hears when issuance refused or failed.
fn issue_failure(e: crate::Error) -> Failure {
    match e {
        crate::Error::NotFound(what) => {
            Failure::new(result_reason::ITEM_NOT_FOUND, format!("{what} not found"))
        }
        crate::Error::Invalid { detail, .. } => Failure::invalid(detail),
        crate::Error::Conflict { detail, .. } | crate::Error::Forbidden { detail, .. } => {
            Failure::new(result_reason::PERMISSION_DENIED, detail)
        }
        crate::Error::Unavailable(_) => Failure::general("storage unavailable"),
        _ => Failure::general("the certificate could not be issued"),
    }
}
