//! The two listeners: HTTPS (API) and plain HTTP (health now; OCSP and CRLs later, which are signed data
//! and conventionally served without TLS). Both serve routers built from the same state.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::AppState;
use crate::problem::Problem;

/// Where to listen and with which TLS configuration.
#[derive(Debug)]
pub struct ServerConfig {
    /// HTTPS address (API).
    pub listen: SocketAddr,
    /// Plain HTTP address (health, later OCSP/CRL).
    pub http_listen: SocketAddr,
    /// The HTTPS listener's certificate.
    pub tls: Arc<crate::tls::ServerTls>,
    /// How often the certificate is checked for renewal (internal CA) or replacement (operator files).
    pub tls_check_interval: Duration,
    /// Client certificates forwarded by TLS-terminating proxies (none by default).
    pub proxied_certificates: crate::mtls::ProxiedCertificates,
}

/// Handles of the running listeners; dropping it stops them.
#[derive(Debug)]
pub struct Running {
    /// The bound HTTPS address (useful with port 0).
    pub https_addr: SocketAddr,
    /// The bound plain-HTTP address.
    pub http_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits until a listener stops (which only happens on an accept error).
    pub async fn wait(&mut self) {
        if let Some(t) = self.tasks.first_mut() {
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The HTTPS application: health, the API, the validation endpoints and EST (which needs TLS: client
/// certificates, and `serverkeygen` returns a private key).
pub fn https_app(state: AppState) -> Router {
    let routes = crate::api::router(state.clone())
        .merge(crate::va::router())
        .merge(
            crate::est::router().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::audit::layer,
            )),
        );
    common(routes, state)
}

/// The plain-HTTP application: health, OCSP, CRLs and CA certificates (signed data, conventionally
/// served without TLS). The API is never served over plain HTTP.
pub fn http_app(state: AppState) -> Router {
    common(crate::va::router(), state)
}

fn common(router: Router<AppState>, state: AppState) -> Router {
    router
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| {
            use axum::response::IntoResponse;
            Problem::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
            .into_response()
        }))
        .layer(axum::middleware::from_fn(crate::request_id::layer))
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> Problem {
    Problem::new(
        axum::http::StatusCode::NOT_FOUND,
        "not-found",
        "no such route",
    )
}

/// Binds both listeners and serves until the returned handle is dropped.
pub async fn start(state: AppState, cfg: ServerConfig) -> std::io::Result<Running> {
    let https = TcpListener::bind(cfg.listen).await?;
    let http = TcpListener::bind(cfg.http_listen).await?;
    let https_addr = https.local_addr()?;
    let http_addr = http.local_addr()?;
    let clients = crate::mtls::ClientTrust::new(state.services.registry.clone());
    let mut app = https_app(state.clone());
    if cfg.proxied_certificates.is_enabled() {
        let (trust, proxied) = (clients.clone(), Arc::new(cfg.proxied_certificates));
        app = app.layer(axum::middleware::from_fn(move |req, next| {
            crate::mtls::from_proxy(trust.clone(), proxied.clone(), req, next)
        }));
    }
    let https_task = tokio::spawn(serve_tls(
        https,
        TlsAcceptor::from(cfg.tls.server_config(clients)),
        app,
    ));
    let renew_task = tokio::spawn(keep_certificate_fresh(
        cfg.tls,
        state.services.registry.clone(),
        cfg.tls_check_interval,
    ));
    let http_task = tokio::spawn(serve_plain(http, http_app(state)));
    Ok(Running {
        https_addr,
        http_addr,
        tasks: vec![https_task, http_task, renew_task],
    })
}

/// Renews the internal server certificate before it expires, or picks up replaced operator files.
async fn keep_certificate_fresh(
    tls: Arc<crate::tls::ServerTls>,
    registry: Arc<shedu_core::Registry>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let (tls, now) = (tls.clone(), registry.now());
        match tokio::task::spawn_blocking(move || tls.reload(now)).await {
            Ok(Ok(true)) => tracing::info!("TLS server certificate renewed; serving the new one"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "TLS certificate check failed; keeping the current one")
            }
            Err(e) => tracing::warn!(error = %e, "TLS certificate check panicked"),
        }
    }
}

async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    accept_loop(listener, move |tcp, peer| {
        let (acceptor, app) = (acceptor.clone(), app.clone());
        async move {
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let client = tls.get_ref().1.peer_certificates().map(|chain| {
                        crate::mtls::ClientCertificate(Arc::new(
                            chain.iter().map(|c| c.clone().into_owned()).collect(),
                        ))
                    });
                    serve_connection(TokioIo::new(tls), peer, client, app).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    })
    .await
}

async fn serve_plain(listener: TcpListener, app: Router) {
    accept_loop(listener, move |tcp, peer| {
        serve_connection(TokioIo::new(tcp), peer, None, app.clone())
    })
    .await
}

/// Accepts connections forever, each served on its own task. Accept errors (such as running out of file
/// descriptors) are logged and retried after a pause instead of ending the listener.
async fn accept_loop<F, Fut>(listener: TcpListener, handle: F)
where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(handle(tcp, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    client: Option<crate::mtls::ClientCertificate>,
    app: Router,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = app.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(client) = &client {
            req.extensions_mut().insert(client.clone());
        }
        req
    });
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(io, TowerToHyperService::new(svc))
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
