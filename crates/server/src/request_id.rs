//! Request ids: taken from `X-Request-Id` or generated, echoed in the response, recorded in the tracing
//! span and in every problem document of the request; and the access log (`--log debug`: one `served`
//! line per request with its status and duration).

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if called inside one.
pub(crate) fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Middleware: establishes the request id for the rest of the stack.
pub(crate) async fn layer(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(shedu_core::ordered_id);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        principal = tracing::field::Empty
    );
    let started = std::time::Instant::now();
    let served = async move {
        let response = next.run(req).await;
        // The access log, at debug level: the path (never the query, which may hold a one-time token),
        // the status and the time taken, inside the request's span.
        tracing::debug!(
            status = response.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "served"
        );
        response
    };
    let mut response = REQUEST_ID
        .scope(id.clone(), tracing::Instrument::instrument(served, span))
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
