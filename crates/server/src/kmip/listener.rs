//! Binary TTLV over TLS (`--kmip-listen`, port 5696 by convention).
//!
//! Every client must present a certificate that chains to a managed CA (the handshake, through
//! [`ClientTrust::required`]), lists clientAuth in its extendedKeyUsage, and is stored, unrevoked and
//! unexpired now ([`shedu_core::Issuance::client_certificate`]: fail closed). Its common name is the KMIP
//! user. Messages are read one at a time: the 8-byte header says the length, a message longer than
//! [`MAX_MESSAGE`] is answered `Invalid Message` and the connection closed; one that does not decode is
//! answered `Invalid Message` and the connection kept (its framing was sound). A connection idle for the
//! idle timeout, or slower than the header timeout to deliver a message it began, is closed.

use std::net::SocketAddr;
use std::sync::Arc;

use shedu_core::AuditContext;
use shedu_kmip::{HEADER_LEN, ResponseMessage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::AppState;
use crate::listen::{ConnectionLimits, accept_loop};
use crate::mtls::ClientTrust;
use crate::tls::ServerTls;

/// The largest request message accepted, bytes.
pub(crate) const MAX_MESSAGE: usize = 1024 * 1024;

/// The role written into the audit records of KMIP clients.
const ROLE: &str = "kmip";

/// The TLS configuration of the KMIP listener: the HTTPS listener's certificate, client certificates
/// required, TLS 1.2 and 1.3 with rustls' AEAD suites (ECDHE with AES-GCM among them), no ALPN.
pub(crate) fn tls_config(
    tls: &Arc<ServerTls>,
    registry: Arc<shedu_core::Registry>,
) -> Arc<rustls::ServerConfig> {
    Arc::new(
        rustls::ServerConfig::builder()
            .with_client_cert_verifier(ClientTrust::required(registry))
            .with_cert_resolver(tls.clone()),
    )
}

/// Serves KMIP connections forever.
pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: AppState,
    slots: Arc<Semaphore>,
    limits: Arc<ConnectionLimits>,
) {
    accept_loop(listener, slots, move |tcp, peer| {
        let (acceptor, state, limits) = (acceptor.clone(), state.clone(), limits.clone());
        async move {
            let tls = match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp))
                .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    return tracing::debug!(%peer, error = %e, "KMIP TLS handshake failed");
                }
                Err(_) => return tracing::debug!(%peer, "KMIP TLS handshake timed out"),
            };
            let leaf = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec());
            let Some(user) = identify(&state, leaf.as_deref()).await else {
                tracing::info!(%peer, "KMIP client certificate refused");
                return;
            };
            if let Err(e) = session(tls, peer, &user, &state, &limits).await {
                tracing::debug!(%peer, error = %e, "KMIP connection closed");
            }
        }
    })
    .await
}

/// The KMIP user a verified client certificate names, if it may connect now.
async fn identify(state: &AppState, leaf: Option<&[u8]>) -> Option<String> {
    let der = leaf?;
    let info = shedu_pki::CertInfo::from_der(der).ok()?;
    if !info.client_auth {
        tracing::info!(subject = %info.subject, "KMIP client certificate lacks the clientAuth usage");
        return None;
    }
    match state.services.issuance.client_certificate(der, false).await {
        Ok(Ok(_)) => {}
        Ok(Err(problem)) => {
            tracing::info!(subject = %info.subject, problem = problem.as_str(), "KMIP client refused");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a KMIP client certificate; refusing it");
            return None;
        }
    }
    info.common_name.filter(|cn| !cn.is_empty())
}

/// Reads requests and writes responses until the client closes, idles out or sends garbage.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    peer: SocketAddr,
    user: &str,
    state: &AppState,
    limits: &ConnectionLimits,
) -> std::io::Result<()> {
    let kmip = &state.services.kmip;
    loop {
        let mut header = [0u8; HEADER_LEN];
        match tokio::time::timeout(limits.idle_timeout, io.read_exact(&mut header)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let len = match shedu_kmip::message_len(&header) {
            Ok(len) if len <= MAX_MESSAGE => len,
            Ok(len) => {
                let answer = kmip.invalid_message(None, &format!("{len} bytes is over the limit"));
                return write(&mut io, &answer).await;
            }
            Err(e) => {
                let answer = kmip.invalid_message(None, &e.to_string());
                return write(&mut io, &answer).await;
            }
        };
        let mut message = vec![0u8; len];
        message[..HEADER_LEN].copy_from_slice(&header);
        match tokio::time::timeout(
            limits.header_read_timeout,
            io.read_exact(&mut message[HEADER_LEN..]),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let answer = match shedu_kmip::decode(&message) {
            Ok(item) => {
                // An ordered request id, as the HTTP listeners make (the audit log indexes it).
                let actor = AuditContext::new(
                    user,
                    "",
                    ROLE,
                    peer.ip().to_string(),
                    shedu_core::ordered_id(),
                );
                kmip.process(&actor, &item).await
            }
            Err(e) => kmip.invalid_message(None, &e.to_string()),
        };
        write(&mut io, &answer).await?;
    }
}

async fn write<S: AsyncWrite + Unpin>(io: &mut S, answer: &ResponseMessage) -> std::io::Result<()> {
    let bytes = shedu_kmip::encode(&answer.to_ttlv())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    io.write_all(&bytes).await?;
    io.flush().await
}
