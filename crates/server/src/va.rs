//! The validation endpoints, served on both listeners: OCSP (`POST /ocsp`, `GET /ocsp/{base64}` per
//! RFC 5019 with HTTP caching headers), CRLs (`/crl/{ca}[/{partition}][/delta]`, DER or `.pem`), and CA
//! certificates for AIA caIssuers (`/ca/{id}`). A request OCSP can answer gets an OCSP answer, errors
//! included (`malformedRequest`, `unauthorized`, …); what HTTP refuses before OCSP is reached (an unknown
//! CRL or CA, a body over the limit, storage down) is an RFC 7807 problem like everywhere else.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use shedu_core::{CrlKind, OcspAnswer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::AppState;
use crate::problem::Problem;

/// OCSP requests are small; RFC 5019 clients send one CertID.
const MAX_OCSP_REQUEST: usize = 16 * 1024;

/// The VA routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/ocsp",
            post(ocsp_post).layer(DefaultBodyLimit::max(MAX_OCSP_REQUEST)),
        )
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/crl/{ca}", get(crl_root))
        .route("/crl/{ca}/{part}", get(crl_part))
        .route("/crl/{ca}/{part}/delta", get(crl_part_delta))
        .route("/ca/{ca}", get(ca_certificate))
}

async fn ocsp_post(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Problem::new(
                r.status(),
                "body-too-large",
                format!("an OCSP request is at most {MAX_OCSP_REQUEST} bytes"),
            )
            .into_response();
        }
        Err(r) => return Problem::new(r.status(), "invalid-body", r.body_text()).into_response(),
    };
    let answer = state.services.va.ocsp(&body).await;
    ocsp_response(answer, false)
}

/// RFC 5019 §5: `GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}`. axum has already
/// percent-decoded the path; [`shedu_pki::ocsp::decode_get`] takes the base64.
async fn ocsp_get(State(state): State<AppState>, Path(request): Path<String>) -> Response {
    let answer = match shedu_pki::ocsp::decode_get(&request) {
        Ok(der) if der.len() <= MAX_OCSP_REQUEST => state.services.va.ocsp(&der).await,
        _ => state.services.va.ocsp(&[]).await,
    };
    ocsp_response(answer, true)
}

fn ocsp_response(answer: OcspAnswer, cacheable: bool) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ocsp-response"),
    );
    if let (true, Some(this_update), Some(next_update)) =
        (cacheable, answer.this_update, answer.next_update)
    {
        // RFC 5019 §6.2: max-age no later than nextUpdate; ETag and Last-Modified let caches revalidate.
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let max_age = (next_update - now).max(0);
        insert(
            &mut headers,
            header::CACHE_CONTROL,
            format!("max-age={max_age}, public, no-transform, must-revalidate"),
        );
        insert(&mut headers, header::ETAG, format!("\"{}\"", answer.etag));
        insert(&mut headers, header::LAST_MODIFIED, http_date(this_update));
        insert(&mut headers, header::EXPIRES, http_date(next_update));
    } else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    (StatusCode::OK, headers, answer.der.as_ref().clone()).into_response()
}

async fn crl_root(State(state): State<AppState>, Path(ca): Path<String>) -> Response {
    let (ca, pem) = strip_pem(&ca);
    serve_crl(&state, ca, 0, CrlKind::Full, pem).await
}

async fn crl_part(
    State(state): State<AppState>,
    Path((ca, part)): Path<(String, String)>,
) -> Response {
    let (part, pem) = strip_pem(&part);
    if part == "delta" {
        return serve_crl(&state, &ca, 0, CrlKind::Delta, pem).await;
    }
    match part.parse::<i64>() {
        Ok(shard) => serve_crl(&state, &ca, shard, CrlKind::Full, pem).await,
        Err(_) => not_found("CRL partition"),
    }
}

async fn crl_part_delta(
    State(state): State<AppState>,
    Path((ca, part)): Path<(String, String)>,
) -> Response {
    match part.parse::<i64>() {
        Ok(shard) => serve_crl(&state, &ca, shard, CrlKind::Delta, false).await,
        Err(_) => not_found("CRL partition"),
    }
}

async fn serve_crl(state: &AppState, ca: &str, shard: i64, kind: CrlKind, pem: bool) -> Response {
    match state.services.va.crl(ca, shard, kind).await {
        Ok(crl) => {
            let mut headers = HeaderMap::new();
            let body = if pem {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-pem-file"),
                );
                pem_block("X509 CRL", &crl.der)
            } else {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/pkix-crl"),
                );
                crl.der.as_ref().clone()
            };
            let now = OffsetDateTime::now_utc().unix_timestamp();
            insert(
                &mut headers,
                header::CACHE_CONTROL,
                format!("max-age={}, public", ((crl.next_update - now) / 2).max(0)),
            );
            insert(
                &mut headers,
                header::LAST_MODIFIED,
                http_date(crl.this_update),
            );
            insert(&mut headers, header::EXPIRES, http_date(crl.next_update));
            (StatusCode::OK, headers, body).into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

async fn ca_certificate(State(state): State<AppState>, Path(ca): Path<String>) -> Response {
    let (id, pem) = strip_pem(&ca);
    match state.services.cas.get(id).await {
        Ok(ca) if pem => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            pem_block("CERTIFICATE", &ca.certificate_der),
        )
            .into_response(),
        Ok(ca) => (
            [(header::CONTENT_TYPE, "application/pkix-cert")],
            ca.certificate_der,
        )
            .into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

fn strip_pem(s: &str) -> (&str, bool) {
    match s.strip_suffix(".pem") {
        Some(base) => (base, true),
        None => (
            s.strip_suffix(".crl")
                .or_else(|| s.strip_suffix(".der"))
                .unwrap_or(s),
            false,
        ),
    }
}

fn pem_block(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

fn not_found(what: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("{what} not found"),
    )
    .into_response()
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(name, v);
    }
}

/// An RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
fn http_date(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc2822).ok())
        .map(|s| s.replace("+0000", "GMT"))
        .unwrap_or_default()
}
