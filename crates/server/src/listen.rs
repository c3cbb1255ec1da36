//! The two listeners: HTTPS (API) and plain HTTP (health now; OCSP and CRLs later, which are signed data
//! and conventionally served without TLS). Both serve routers built from the same state.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
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
    /// Connection timeouts and the connection cap (both listeners).
    pub limits: ConnectionLimits,
    /// The secret store's token socket (mode 0660), when configured.
    pub secrets_socket: Option<std::path::PathBuf>,
    /// The KMIP listener (binary TTLV over TLS), if any.
    pub kmip: Option<KmipListen>,
}

/// Where the KMIP listener binds.
#[derive(Clone, Copy, Debug)]
pub struct KmipListen {
    /// The address (`127.0.0.1:5696` by default).
    pub addr: SocketAddr,
    /// When the address is taken: serve without KMIP (a warning) rather than fail. For the default
    /// address, which the operator did not choose.
    pub optional: bool,
}

/// How long a client may take to send a request's header.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay open with no request in flight.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many connections both listeners hold open together.
const MAX_CONNECTIONS: usize = 4096;
/// How often an HTTP/2 connection with a request in flight pings its peer (a peer that does not answer
/// within [`HTTP2_PING_TIMEOUT`] is gone, and its connection is closed).
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// At most one `accept failed` warning per this period; the others are counted and reported with it.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(5);
/// How long, and how many bytes at most, the server reads and discards of what a client still sends
/// after it was answered: the rest of a request body the application did not read ([`Unread`]), and
/// what arrives on a connection the server is closing ([`Lingering`]).
const DISCARD_FOR: Duration = Duration::from_secs(5);
const DISCARD_BYTES: usize = 16 * 1024 * 1024;

/// Connection timeouts and the connection cap; `Default` gives the documented constants.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// A new connection's TLS handshake, each request's header (HTTP/1.1) and a new connection's first
    /// request (either version) must arrive within this time (10 s by default); it is also
    /// the time a connection gets to close after the server began closing it.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this time (60 s by default).
    pub idle_timeout: Duration,
    /// Connections held open at once, both listeners together (4096 by default); when all are
    /// taken, the listeners stop accepting until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Handles of the running listeners; dropping it stops them.
#[derive(Debug)]
pub struct Running {
    /// The bound HTTPS address (useful with port 0).
    pub https_addr: SocketAddr,
    /// The bound plain-HTTP address.
    pub http_addr: SocketAddr,
    /// The bound KMIP address, when the KMIP listener runs.
    pub kmip_addr: Option<SocketAddr>,
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

/// The HTTPS application: health, the API, the validation endpoints, EST (which needs TLS: client
/// certificates, and `serverkeygen` returns a private key), the connector (under its base path) and the
/// secret store's Vault-compatible API (`/v1/`).
pub fn https_app(state: AppState) -> Router {
    let routes = crate::api::router(state.clone())
        .merge(crate::va::router())
        .merge(
            crate::est::router().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::audit::layer,
            )),
        )
        .merge(crate::acme::router(state.clone()))
        .merge(crate::connector::router(
            state.clone(),
            &state.services.connector.config().base_path,
        ))
        .merge(crate::secrets::router(state.clone()))
        .merge(crate::console::router(state.clone()));
    common(routes, state)
}

/// The host (and port) the client addressed: HTTP/2's `:authority`, else HTTP/1.1's `Host`. The front-ends
/// that answer with absolute URLs (ACME, the connector) build them from it.
pub(crate) fn request_authority(
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
) -> Option<String> {
    uri.authority().map(|a| a.as_str().to_string()).or_else(|| {
        headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
    })
}

/// The plain-HTTP application: health, OCSP, CRLs and CA certificates (signed data, conventionally
/// served without TLS). The API is never served over plain HTTP.
pub fn http_app(state: AppState) -> Router {
    common(
        crate::va::router().route("/metrics", get(crate::metrics::scrape)),
        state,
    )
}

fn common(router: Router<AppState>, state: AppState) -> Router {
    crate::metrics::install();
    router
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(crate::metrics::layer))
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

/// Readiness for load balancers: 200 while the database answers (within 2 s) with this binary's whole
/// schema and, unless `--ready-bus report`, every configured event bus answered its last probe; else 503.
/// The body lists each bus's state either way. `/health` only says the process runs.
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let buses = state
        .delivery
        .as_ref()
        .map(|d| d.bus().states())
        .unwrap_or_default();
    let database = state
        .services
        .ready(std::time::Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string());
    let bus_ready = match state.ready_bus {
        crate::ReadyBus::Require => shedu_events::BusHealth::verdict(&buses),
        crate::ReadyBus::Report => Ok(()),
    };
    match database.and(bus_ready) {
        Ok(()) => {
            axum::Json(serde_json::json!({ "status": "ready", "bus": buses })).into_response()
        }
        Err(e) => Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            format!("not ready: {e}"),
        )
        .into_response(),
    }
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
    let slots = Arc::new(Semaphore::new(cfg.limits.max_connections));
    let limits = Arc::new(cfg.limits);
    let https_task = tokio::spawn(serve_tls(
        https,
        TlsAcceptor::from(
            cfg.tls
                .server_config(clients)
                .map_err(std::io::Error::other)?,
        ),
        app,
        slots.clone(),
        limits.clone(),
    ));
    let renew_task = tokio::spawn(keep_certificate_fresh(
        cfg.tls.clone(),
        state.services.registry.clone(),
        cfg.tls_check_interval,
    ));
    let mut tasks = vec![https_task, renew_task];
    let mut kmip_addr = None;
    if let Some(kmip) = cfg.kmip {
        match TcpListener::bind(kmip.addr).await {
            Ok(listener) => {
                kmip_addr = Some(listener.local_addr()?);
                let acceptor = TlsAcceptor::from(crate::kmip::tls_config(
                    &cfg.tls,
                    state.services.registry.clone(),
                ));
                tasks.push(tokio::spawn(crate::kmip::serve(
                    listener,
                    acceptor,
                    state.clone(),
                    slots.clone(),
                    limits.clone(),
                )));
            }
            Err(e) if kmip.optional && e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!(addr = %kmip.addr, "the KMIP address is taken; serving without KMIP");
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(path) = &cfg.secrets_socket {
        let socket = crate::secrets::socket::bind(path)?;
        tasks.push(tokio::spawn(crate::secrets::socket::serve(
            socket,
            state.clone(),
            limits.clone(),
        )));
    }
    let http_task = tokio::spawn(serve_plain(http, http_app(state), slots, limits));
    tasks.insert(1, http_task);
    Ok(Running {
        https_addr,
        http_addr,
        kmip_addr,
        tasks,
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

async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    slots: Arc<Semaphore>,
    limits: Arc<ConnectionLimits>,
) {
    accept_loop(listener, slots, move |tcp, peer| {
        let (acceptor, app, limits) = (acceptor.clone(), app.clone(), limits.clone());
        async move {
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    crate::metrics::tls_handshake(tls.get_ref().1.handshake_kind());
                    let client = tls.get_ref().1.peer_certificates().map(|chain| {
                        crate::mtls::ClientCertificate(Arc::new(
                            chain.iter().map(|c| c.clone().into_owned()).collect(),
                        ))
                    });
                    let io = TokioIo::new(Lingering::new(tls));
                    serve_connection(io, peer, client, app, &limits).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    })
    .await
}

async fn serve_plain(
    listener: TcpListener,
    app: Router,
    slots: Arc<Semaphore>,
    limits: Arc<ConnectionLimits>,
) {
    accept_loop(listener, slots, move |tcp, peer| {
        let (app, limits) = (app.clone(), limits.clone());
        async move {
            let io = TokioIo::new(Lingering::new(tcp));
            serve_connection(io, peer, None, app, &limits).await
        }
    })
    .await
}

/// Accepts connections forever, each served on its own task holding one of `slots`: when every slot is
/// taken, nothing is accepted until a connection closes (new clients wait in the kernel's backlog instead
/// of costing a file descriptor each). Accept errors (such as running out of file descriptors) are
/// retried after a pause instead of ending the listener, and warned about at most once per
/// [`ACCEPT_WARN_EVERY`].
pub(crate) async fn accept_loop<F, Fut>(listener: TcpListener, slots: Arc<Semaphore>, handle: F)
where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut warnings = RateLimited::new(ACCEPT_WARN_EVERY);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return; // never closed
        };
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let conn = handle(tcp, peer);
                tokio::spawn(async move {
                    conn.await;
                    drop(slot);
                });
            }
            Err(e) => {
                if let Some(suppressed) = warnings.admit(Instant::now()) {
                    tracing::warn!(error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Lets one event through per period and counts the ones held back in between.
#[derive(Debug)]
struct RateLimited {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn new(every: Duration) -> Self {
        RateLimited {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(how many were held back since the last one)` if this event may be reported now.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Serves one connection (HTTP/1.1 or HTTP/2) until the client closes it or it stays without a request
/// in flight for too long: `header_read_timeout` before its first request, `idle_timeout` after one.
/// HTTP/1.1 also times out every request header (hyper's `header_read_timeout`, which covers a
/// keep-alive connection waiting for its next request too). A request body the application leaves
/// unread is drained after the answer ([`Unread`]).
pub(crate) async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    client: Option<crate::mtls::ClientCertificate>,
    app: Router,
    limits: &ConnectionLimits,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let svc = tower::service_fn({
        let activity = activity.clone();
        move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            if let Some(client) = &client {
                req.extensions_mut().insert(client.clone());
            }
            let in_flight = activity.begin();
            let app = app.clone();
            let unread = Unread::default();
            let req = req.map(|body| axum::body::Body::new(unread.watch(body)));
            async move {
                let res = app.oneshot(req).await?;
                unread.drain_in_background();
                Ok::<_, std::convert::Infallible>(res.map(|body| {
                    axum::body::Body::new(Tracked {
                        body,
                        _in_flight: in_flight,
                    })
                }))
            }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_PING_INTERVAL)
        .keep_alive_timeout(HTTP2_PING_TIMEOUT);
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(svc));
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = activity.idle_for(limits) => {
            tracing::debug!(%peer, "closing an idle connection");
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.header_read_timeout, conn.as_mut()).await {
                Ok(ended) => ended,
                Err(_) => {
                    tracing::debug!(%peer, "connection did not close in time; dropped");
                    return;
                }
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A connection's requests: how many are in flight, whether there was one, and since when none is.
#[derive(Clone, Copy, Debug)]
struct Load {
    in_flight: usize,
    served: bool,
    since: Instant,
}

#[derive(Clone, Debug)]
struct Activity(Arc<watch::Sender<Load>>);

impl Activity {
    fn new() -> Self {
        Activity(Arc::new(watch::Sender::new(Load {
            in_flight: 0,
            served: false,
            since: Instant::now(),
        })))
    }

    /// Marks a request in flight until the returned guard (carried by the response body) is dropped.
    fn begin(&self) -> InFlight {
        self.0.send_modify(|l| {
            l.in_flight += 1;
            l.served = true;
        });
        InFlight(self.0.clone())
    }

    /// Completes once the connection has had no request in flight for its allowed idle time.
    async fn idle_for(&self, limits: &ConnectionLimits) {
        let mut changes = self.0.subscribe();
        loop {
            let load = *changes.borrow_and_update();
            if load.in_flight > 0 {
                let _ = changes.changed().await;
                continue;
            }
            let allowed = if load.served {
                limits.idle_timeout
            } else {
                limits.header_read_timeout
            };
            tokio::select! {
                () = tokio::time::sleep_until(load.since + allowed) => return,
                _ = changes.changed() => {}
            }
        }
    }
}

/// A request in flight; dropping it (with the response body) marks the connection idle from now.
#[derive(Debug)]
struct InFlight(Arc<watch::Sender<Load>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|l| {
            l.in_flight -= 1;
            l.since = Instant::now();
        });
    }
}

/// A response body that keeps its request counted as in flight until it is sent or dropped.
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A request body the application may leave unread, such as one refused with 413 or a request answered
/// 401 before its body arrived. Dropping it unread would make hyper reset the HTTP/2 stream or close the
/// HTTP/1.1 connection at once, while the client is still sending: many clients (curl among them) then
/// report the reset and lose the answer they were about to read. So once the answer exists, what is left
/// of the body is read and discarded in the background, for at most [`DISCARD_FOR`] and
/// [`DISCARD_BYTES`]; a client that reads the answer stops sending well before. Past those bounds the
/// body is dropped: HTTP/2 then resets the stream with `NO_ERROR` after the complete answer (RFC 9113
/// §8.1), HTTP/1.1 closes the connection through [`Lingering`].
#[derive(Clone, Default)]
struct Unread(Arc<Mutex<Option<Incoming>>>);

impl Unread {
    /// `body`, handed back here if the application drops it before its end.
    fn watch(&self, body: Incoming) -> Watched {
        Watched {
            body: Some(body),
            unread: self.clone(),
        }
    }

    /// Drains, on its own task, what the application left of the body (if it has dropped the body).
    fn drain_in_background(&self) {
        let left = self.0.lock().ok().and_then(|mut slot| slot.take());
        if let Some(body) = left {
            tokio::spawn(discard(body));
        }
    }
}

/// Reads `body` to its end and throws it away, within [`DISCARD_FOR`] and [`DISCARD_BYTES`].
async fn discard(mut body: Incoming) {
    let mut left = DISCARD_BYTES;
    let reading = async {
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| hyper::body::Body::poll_frame(Pin::new(&mut body), cx)).await
        {
            left = left.saturating_sub(frame.data_ref().map_or(0, |d| d.len()));
            if left == 0 {
                break;
            }
        }
    };
    let finished = tokio::time::timeout(DISCARD_FOR, reading).await.is_ok();
    tracing::debug!(
        discarded = DISCARD_BYTES - left,
        finished,
        "discarded an unread request body"
    );
}

/// A request body that goes back to its [`Unread`] when dropped before its end.
struct Watched {
    body: Option<Incoming>,
    unread: Unread,
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(body) = self.body.take()
            && !hyper::body::Body::is_end_stream(&body)
            && let Ok(mut slot) = self.unread.0.lock()
        {
            *slot = Some(body);
        }
    }
}

impl hyper::body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        match &mut self.get_mut().body {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(hyper::body::Body::is_end_stream)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body
            .as_ref()
            .map(hyper::body::Body::size_hint)
            .unwrap_or_default()
    }
}

/// A connection's stream that closes in stages, as RFC 9112 §9.6 asks of a server: when hyper closes it
/// (after an answer whose request body was not read to its end, or to close an idle connection), the write side
/// is closed first (TLS `close_notify`, then a TCP FIN), and what the client still sends is read and
/// discarded until it closes its side, for at most [`DISCARD_FOR`] and [`DISCARD_BYTES`]. Closing the socket
/// with unread bytes would make the kernel answer with a reset, and a client still sending its body often
/// loses the response it was about to read.
struct Lingering<S> {
    io: S,
    closing: Option<Linger>,
}

/// How much longer a closing connection reads.
struct Linger {
    until: Pin<Box<tokio::time::Sleep>>,
    bytes_left: usize,
}

impl<S> Lingering<S> {
    fn new(io: S) -> Self {
        Lingering { io, closing: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let linger = match &mut this.closing {
            Some(linger) => linger,
            None => {
                ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                this.closing.insert(Linger {
                    until: Box::pin(tokio::time::sleep(DISCARD_FOR)),
                    bytes_left: DISCARD_BYTES,
                })
            }
        };
        let mut scratch = [0u8; 8192];
        loop {
            if linger.bytes_left == 0 || linger.until.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.io).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => {
                    linger.bytes_left = linger.bytes_left.saturating_sub(buf.filled().len());
                }
                // The client closed its side too (or the connection broke): nothing is left to lose.
                _ => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_warnings_are_rate_limited_and_counted() {
        let mut w = RateLimited::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(w.admit(t0), Some(0));
        for i in 1..=99 {
            assert_eq!(w.admit(t0 + Duration::from_millis(i * 50)), None);
        }
        assert_eq!(w.admit(t0 + Duration::from_secs(5)), Some(99));
        assert_eq!(w.admit(t0 + Duration::from_secs(6)), None);
        assert_eq!(w.admit(t0 + Duration::from_secs(11)), Some(1));
    }
}
