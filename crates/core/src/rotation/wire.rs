//! Reading the certificate a host serves, and judging it: what a scan records and what validation after a
//! rotation checks. The handshake itself trusts nothing (the point is to see what is served, whatever it
//! is, with handshake signatures still checked); the served chain is then verified separately against the
//! anchors the caller names, with the asset's common name.

use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Connects to `address:port` with SNI `sni` (none when it is an IP address) and returns the served
/// chain, leaf first, as DER.
pub(crate) async fn served_chain(
    address: &str,
    port: u16,
    sni: &str,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, String> {
    Ok(handshake(address, port, sni, &[], timeout).await?.chain)
}

/// What a TLS server showed in a handshake.
pub(crate) struct Served {
    /// The served chain, leaf first, DER (never empty).
    pub(crate) chain: Vec<Vec<u8>>,
    /// The application protocol the server chose (ALPN), if any.
    pub(crate) alpn: Option<Vec<u8>>,
}

/// A TLS handshake with `address:port` offering `alpn` (none when empty), trusting whatever certificate is
/// served (the handshake signature is still checked): the chain and the chosen protocol. Also the ACME
/// tls-alpn-01 validation's probe (RFC 8737): with `alpn`, the handshake is TLS 1.3 and its signature is
/// checked against the leaf's raw key, as a tls-alpn-01 certificate carries a critical extension
/// (acmeIdentifier) that a certificate parser for TLS refuses.
pub(crate) async fn handshake(
    address: &str,
    port: u16,
    sni: &str,
    alpn: &[&[u8]],
    timeout: Duration,
) -> Result<Served, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let raw_key = !alpn.is_empty();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone());
    let builder = if raw_key {
        builder.with_protocol_versions(&[&rustls::version::TLS13])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .map_err(|e| e.to_string())?;
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SeeAnything(provider, raw_key)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(sni.to_string()).map_err(|e| format!("SNI {sni:?}: {e}"))?;
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((address, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let session = tls.get_ref().1;
        let chain = session
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect::<Vec<_>>())
            .unwrap_or_default();
        if chain.is_empty() {
            return Err("no certificate served".to_string());
        }
        Ok(Served {
            chain,
            alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        })
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| format!("no TLS answer within {} s", timeout.as_secs()))?
}

/// Verifies a served chain (leaf first) to one of `anchors` (DER CA certificates) for `name` at `now`
/// (Unix seconds), as a TLS client would: signatures, validity, key usage, and the name.
pub(crate) fn verify_chain(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    name: &str,
    now: i64,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for a in anchors {
        roots
            .add(CertificateDer::from(a.clone()))
            .map_err(|e| format!("trust anchor: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let (leaf, intermediates) = chain.split_first().ok_or("no certificate served")?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(
            &CertificateDer::from(leaf.as_slice()),
            &intermediates,
            &server_name,
            &[],
            UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64)),
        )
        .map(|_| ())
        .map_err(|e| format!("does not verify to the CA for {name}: {e}"))
}

/// The names of `names` that the certificate's SANs (rendered `DNS:x`, `IP:y`) do not cover.
pub(crate) fn uncovered<'a>(sans: &[String], names: &'a [String]) -> Vec<&'a str> {
    names
        .iter()
        .filter(|n| {
            let want = match n.parse::<std::net::IpAddr>() {
                Ok(ip) => format!("IP:{ip}"),
                Err(_) => format!("DNS:{}", n.to_ascii_lowercase()),
            };
            !sans.iter().any(|s| s.eq_ignore_ascii_case(&want))
        })
        .map(String::as_str)
        .collect()
}

/// Accepts whatever certificate is served (the caller judges it afterwards), but still checks that the
/// server holds its key (the handshake signature); with `true`, by the leaf's raw key (TLS 1.3 only).
#[derive(Debug)]
struct SeeAnything(Arc<CryptoProvider>, bool);

impl ServerCertVerifier for SeeAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if self.1 {
            let info = shedu_pki::CertInfo::from_der(cert.as_ref()).map_err(|_| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
            })?;
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &rustls_pki_types::SubjectPublicKeyInfoDer::from(info.spki_der),
                dss,
                &self.0.signature_verification_algorithms,
            );
        }
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
