//! Client certificates on the HTTPS listener.
//!
//! The listener asks every client for a certificate but never requires one, so browsers and API users
//! are not forced into mTLS. A certificate that is presented must chain to a CA the platform manages
//! ([`Registry::trust_anchors`]); otherwise the handshake fails. What a handshake cannot know — whether
//! the certificate is revoked, or whether it is the one a device is enrolled with — is checked per
//! request against storage by the code that uses the identity (the gateway and EST), which is why the
//! verified chain travels with each request as a [`ClientCertificate`].
//!
//! One deliberate leniency: a certificate outside its validity period (expired, or not yet valid) still
//! completes the handshake — its chain is checked as of the middle of its own validity — because the
//! platform judges time by its service clock in one place, [`shedu_core::Issuance::client_certificate`], which every
//! consumer calls, and because an RA may allow a device to re-enrol with an expired certificate. That check
//! covers every CA above the leaf as well: the handshake never judges them, since they are its anchors.

use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use shedu_core::Registry;

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
    registry: Arc<Registry>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// Whether a handshake without a client certificate fails (the KMIP listener) rather than
    /// continuing unauthenticated (the HTTPS listener).
    mandatory: bool,
    /// The verifier built for an anchor generation; `None` when no CA exists yet.
    current: RwLock<(u64, Option<Arc<dyn ClientCertVerifier>>)>,
}

impl std::fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTrust").finish_non_exhaustive()
    }
}

impl ClientTrust {
    /// A verifier over the registry's anchors.
    pub fn new(registry: Arc<Registry>) -> Arc<ClientTrust> {
        Self::build_trust(registry, false)
    }

    /// A verifier over the registry's anchors that requires a client certificate.
    pub fn required(registry: Arc<Registry>) -> Arc<ClientTrust> {
        Self::build_trust(registry, true)
    }

    fn build_trust(registry: Arc<Registry>, mandatory: bool) -> Arc<ClientTrust> {
        Arc::new(ClientTrust {
            registry,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            mandatory,
            current: RwLock::new((u64::MAX, None)),
        })
    }

    /// The verifier for the current anchors, rebuilt when their generation moved.
    fn verifier(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        let (generation, anchors) = self.registry.trust_anchors();
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
        self.mandatory
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

/// Client certificates forwarded by a TLS-terminating proxy (nginx `$ssl_client_escaped_cert`: the PEM,
/// URL-encoded, in a header), accepted only from the configured proxy addresses. From anyone else the
/// header is ignored. A forwarded chain is verified exactly like one from a handshake; one that does not
/// verify is refused (401), never silently dropped.
///
/// From the same proxies, `X-Forwarded-For` names the client address: the right-most entry that is not
/// itself a trusted proxy becomes the request's peer address (`ConnectInfo`), which the login limiter
/// and the audit trail use. From anyone else the header is ignored.
#[derive(Clone, Debug, Default)]
pub struct ProxiedCertificates {
    proxies: Vec<std::net::IpAddr>,
    header: Option<axum::http::HeaderName>,
}

impl ProxiedCertificates {
    const DEFAULT_HEADER: &'static str = "x-client-cert";

    /// Believe `header` (default `X-Client-Cert`) from `proxies`; an invalid header name is refused.
    pub fn new(
        proxies: Vec<std::net::IpAddr>,
        header: Option<&str>,
    ) -> Result<ProxiedCertificates, String> {
        let header = header
            .map(|h| {
                axum::http::HeaderName::try_from(h)
                    .map_err(|_| format!("{h:?} is not a valid header name"))
            })
            .transpose()?;
        Ok(ProxiedCertificates { proxies, header })
    }

    /// Whether any proxy is trusted.
    pub fn is_enabled(&self) -> bool {
        !self.proxies.is_empty()
    }

    fn header(&self) -> axum::http::HeaderName {
        self.header
            .clone()
            .unwrap_or(axum::http::HeaderName::from_static(Self::DEFAULT_HEADER))
    }
}

/// Middleware (HTTPS app): replaces the request's client certificate by the one a trusted proxy forwarded.
pub(crate) async fn from_proxy(
    trust: Arc<ClientTrust>,
    config: Arc<ProxiedCertificates>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = config.header();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|ip| config.proxies.contains(&ip));
    if trusted
        && let Some(client) = forwarded_client(req.headers(), &config.proxies)
        && let Some(port) = peer_port(&req)
    {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
                client, port,
            )));
    }
    if let Some(value) = req.headers_mut().remove(&header)
        && trusted
    {
        match forwarded_chain(value.as_bytes(), &trust) {
            Ok(chain) => {
                req.extensions_mut().insert(chain);
            }
            Err(why) => {
                tracing::info!(?peer, %why, "forwarded client certificate refused");
                return crate::problem::Problem::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "invalid-client-certificate",
                    "the forwarded client certificate does not verify",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

/// The client a chain of proxies names in `X-Forwarded-For` (every header line, in order): the right-most
/// address that is not a trusted proxy. Entries to its left were written by the client itself and prove
/// nothing. `None` when there is no such header or its right-most untrusted entry is not an address.
fn forwarded_client(
    headers: &axum::http::HeaderMap,
    proxies: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        let ip: std::net::IpAddr = entry.parse().ok()?;
        if !proxies.contains(&ip) {
            return Some(ip);
        }
    }
    None
}

fn peer_port(req: &axum::extract::Request) -> Option<u16> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.port())
}

fn forwarded_chain(value: &[u8], trust: &ClientTrust) -> Result<ClientCertificate, String> {
    let ders = shedu_pki::escaped_pem_to_der_certs(value).map_err(|e| e.to_string())?;
    let chain: Vec<CertificateDer<'static>> = ders.into_iter().map(CertificateDer::from).collect();
    let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
    trust
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map_err(|e| e.to_string())?;
    Ok(ClientCertificate(Arc::new(chain)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_forwarded_client_is_the_right_most_untrusted_address() {
        let proxies: Vec<std::net::IpAddr> =
            vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let forwarded = |values: &[&str]| {
            let mut h = axum::http::HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            super::forwarded_client(&h, &proxies)
        };
        // The client wrote "1.1.1.1" itself; the first proxy saw 203.0.113.9.
        assert_eq!(
            forwarded(&["1.1.1.1, 203.0.113.9, 10.0.0.2"]),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            forwarded(&["1.1.1.1", "2001:db8::7"]),
            Some("2001:db8::7".parse().unwrap())
        );
        assert_eq!(forwarded(&["not-an-address, 10.0.0.1"]), None);
        assert_eq!(forwarded(&["10.0.0.1"]), None);
        assert_eq!(forwarded(&[]), None);
    }
}
