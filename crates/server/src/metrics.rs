//! Prometheus metrics: every request's count and latency by route (the matched path template, so the label
//! set stays small), the services' counters (`core/src/metrics.rs`), and gauges read at scrape time. Served at
//! `GET /metrics` on the plain-HTTP listener, in the Prometheus text format.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// The process's recorder (one per process: several servers in one test process share it).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder was installed first; then this handle renders nothing of the
        // services' metrics, which the metrics test would show.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only its own");
        }
        handle
    })
}

/// Installs the process's recorder, so that what is counted from then on is kept: call it before anything
/// counts (the event dispatchers set their gauges when they start). Idempotent.
pub fn install() {
    handle();
}

/// Counts the request and times it, labelled by method, route template and status.
pub(crate) async fn layer(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("shedu_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("shedu_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Counts a completed TLS handshake on the HTTPS listener: `full`, or `resumed` from a session ticket.
pub(crate) fn tls_handshake(kind: Option<rustls::HandshakeKind>) {
    let kind = match kind {
        Some(rustls::HandshakeKind::Resumed) => "resumed",
        _ => "full",
    };
    metrics::counter!("shedu_tls_handshakes_total", "kind" => kind).increment(1);
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(state): State<AppState>) -> Response {
    if let Err(e) = state.services.refresh_gauges().await {
        tracing::warn!(error = %e, "metrics gauges not refreshed");
    }
    let mut response = handle().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
