//! Client certificates on the HTTPS listener.
//!
//! The listener asks every client for a certificate but never requires one, so browsers and API users
//! are not forced into mTLS. A certificate that is presented must chain to a CA the platform manages
//! ([`CaService::trust_anchors`]); otherwise the handshake fails. What a handshake cannot know — whether
//! the certificate is revoked, or whether it is the one a device is enrolled with — is checked per
//! request against storage by the code that uses the identity (the gateway and EST), which is why the
//! verified chain travels with each request as a [`ClientCertificate`].
//!
//! One deliberate leniency: a certificate outside its validity period (expired, or not yet valid) still
//! completes the handshake — its chain is checked as of the middle of its own validity — because the
//! platform judges time by its service clock in one place, [`CaService::client_certificate`], which every
//! consumer calls, and because an RA may allow a device to re-enrol with an expired certificate.

use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use shedu_core::CaService;

/// The chain a client presented and the handshake verified (leaf first).
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Arc<Vec<CertificateDer<'static>>>);

impl ClientCertificate {
    /// The leaf certificate, DER.
    pub fn leaf(&self) -> Option<&[u8]> {
        self.0.first().map(|c| c.as_ref())
    }
}

/// A verifier whose trust anchors follow the managed CAs.
pub struct ClientTrust {
    cas: Arc<CaService>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// The verifier built for an anchor generation; `None` when no CA exists yet.
    current: RwLock<(u64, Option<Arc<dyn ClientCertVerifier>>)>,
}

impl std::fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTrust").finish_non_exhaustive()
    }
}

impl ClientTrust {
    /// A verifier over `cas`' anchors.
    pub fn new(cas: Arc<CaService>) -> Arc<ClientTrust> {
        Arc::new(ClientTrust {
            cas,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            current: RwLock::new((u64::MAX, None)),
        })
    }

    /// The verifier for the current anchors, rebuilt when their generation moved.
    fn verifier(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        let (generation, anchors) = self.cas.trust_anchors();
        if let Ok(current) = self.current.read()
            && current.0 == generation
        {
            return current.1.clone();
        }
        let built = self.build(&anchors);
        if let Ok(mut current) = self.current.write() {
            *current = (generation, built.clone());
        }
        built
    }

    fn build(&self, anchors: &[Vec<u8>]) -> Option<Arc<dyn ClientCertVerifier>> {
        let mut roots = RootCertStore::empty();
        for der in anchors {
            // A CA certificate webpki cannot use as an anchor (say, an unusual key type) is skipped, not
            // fatal: the other CAs keep working.
            if let Err(e) = roots.add(CertificateDer::from(der.clone())) {
                tracing::warn!(error = %e, "a CA certificate cannot be a client-certificate anchor");
            }
        }
        if roots.is_empty() {
            return None;
        }
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| tracing::warn!(error = %e, "cannot build the client certificate verifier"))
            .ok()
    }
}

impl ClientCertVerifier for ClientTrust {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: clients send the certificate they were configured with.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verifier = self.verifier().ok_or(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ))?;
        match verifier.verify_client_cert(end_entity, intermediates, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            )) => {
                // See the module comment: verify the chain as of the middle of the leaf's validity.
                let info = shedu_pki::CertInfo::from_der(end_entity).map_err(|_| {
                    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
                })?;
                let middle = info.not_before + (info.not_after - info.not_before) / 2;
                let then = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    u64::try_from(middle).unwrap_or(0),
                ));
                verifier.verify_client_cert(end_entity, intermediates, then)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
