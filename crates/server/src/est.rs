//! EST (RFC 7030, with the RFC 8951 clarifications) on the HTTPS listener:
//! `/.well-known/est/[{ra}/]{cacerts|simpleenroll|simplereenroll|serverkeygen|csrattrs}`. The label is the
//! RA id; without one, the configured default RA answers.
//!
//! Bodies are what the RFC says: base64 DER in and out (line breaks tolerated), PKCS#7 certs-only for
//! certificates, `multipart/mixed` for `serverkeygen`. Errors are short `text/plain` bodies with the status
//! the RFC expects (401 with `WWW-Authenticate` when no credential was given, 403 when the credentials or
//! the request are not allowed, 400 for a bad CSR): EST clients do not read problem JSON.
//!
//! Enrolments are audited like API changes: the audit layer wraps these routes, the enrolling device is
//! the principal, and the enrolment's transaction carries its `device.enroll` record.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use shedu_core::{Error, EstOperation, EstRequest, Principal, PrincipalKind, Ra, Role};
use zeroize::Zeroizing;

use crate::AppState;
use crate::mtls::ClientCertificate;

/// A CSR, even RSA-4096 with many SANs, is a few KiB; base64 adds a third.
const MAX_EST_BODY: usize = 64 * 1024;

/// The EST routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/est/{op}", any(unlabeled))
        .route("/.well-known/est/{label}/{op}", any(labeled))
        .layer(DefaultBodyLimit::max(MAX_EST_BODY))
}

/// The parts of an HTTP request EST looks at.
struct Call {
    method: Method,
    headers: HeaderMap,
    client: Option<ClientCertificate>,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Call, Response> {
        let (parts, body) = req.into_parts();
        let client = parts.extensions.get::<ClientCertificate>().cloned();
        let (method, headers) = (parts.method.clone(), parts.headers.clone());
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Call {
            method,
            headers,
            client,
            body,
        })
    }
}

async fn unlabeled(State(state): State<AppState>, Path(op): Path<String>, call: Call) -> Response {
    dispatch(&state, None, &op, call).await
}

async fn labeled(
    State(state): State<AppState>,
    Path((label, op)): Path<(String, String)>,
    call: Call,
) -> Response {
    dispatch(&state, Some(&label), &op, call).await
}

async fn dispatch(state: &AppState, label: Option<&str>, op: &str, call: Call) -> Response {
    let operation = match (op, &call.method) {
        ("cacerts" | "csrattrs", &Method::GET) => None,
        ("simpleenroll", &Method::POST) => Some(EstOperation::Enroll),
        ("simplereenroll", &Method::POST) => Some(EstOperation::Reenroll),
        ("serverkeygen", &Method::POST) => Some(EstOperation::ServerKeygen),
        ("cacerts" | "csrattrs" | "simpleenroll" | "simplereenroll" | "serverkeygen", _) => {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        _ => return text(StatusCode::NOT_FOUND, "unknown EST operation"),
    };
    let ra = match state.services.enrollment.est_ra(label).await {
        Ok(ra) => ra,
        Err(e) => return error(e),
    };
    match operation {
        None if op == "cacerts" => cacerts(state, &ra).await,
        None => csrattrs(&ra),
        Some(operation) => enroll(state, &ra, operation, call).await,
    }
}

async fn cacerts(state: &AppState, ra: &Ra) -> Response {
    match state.services.enrollment.est_cacerts(ra).await {
        Ok(chain) => {
            let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
            base64_body("application/pkcs7-mime", &shedu_pki::est::certs_only(&refs))
        }
        Err(e) => error(e),
    }
}

fn csrattrs(ra: &Ra) -> Response {
    if ra.enrollment.csr_attributes.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    match shedu_pki::est::csr_attributes(&ra.enrollment.csr_attributes) {
        Ok(der) => base64_body("application/csrattrs", &der),
        Err(e) => error(e.into()),
    }
}

async fn enroll(state: &AppState, ra: &Ra, operation: EstOperation, call: Call) -> Response {
    // RFC 7030 §4.2.1: the body is an application/pkcs10 request. A client that sends something else
    // (JSON, a form) gets told the type is wrong rather than that its "base64" is.
    if let Some(ct) = call.headers.get(header::CONTENT_TYPE) {
        let essence = ct.to_str().unwrap_or_default();
        let essence = essence.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/pkcs10") {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "EST requests carry an application/pkcs10 body (RFC 7030 section 4.2.1)",
            );
        }
    }
    let Ok(csr_der) = shedu_pki::est::decode_body(&call.body) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the body must be a base64-encoded DER PKCS#10 request",
        );
    };
    let (secret_user, secret) = credentials(&call.headers);
    if let Some(caller) = est_principal(call.client.as_ref(), secret_user.as_deref()) {
        crate::audit::identify(&caller);
    }
    let request = EstRequest {
        operation,
        csr_der,
        client_chain: call
            .client
            .map(|c| c.0.iter().map(|d| d.to_vec()).collect())
            .unwrap_or_default(),
        secret_user,
        secret,
    };
    let actor = crate::audit::current_actor();
    let issued = match state
        .services
        .enrollment
        .est_enroll(&actor, ra, request)
        .await
    {
        Ok(issued) => issued,
        Err(e) => return error(e),
    };
    tracing::info!(ra = %ra.id, device = %issued.device_id, ?operation, "EST enrolment");
    let pkcs7 = shedu_pki::est::certs_only(&[&issued.certificate_der]);
    match issued.private_key_pkcs8 {
        None => base64_body("application/pkcs7-mime; smime-type=certs-only", &pkcs7),
        Some(key) => server_keygen_body(&key, &pkcs7),
    }
}

/// Who is enrolling, for the audit log: the client certificate's subject, or the HTTP Basic device id.
fn est_principal(client: Option<&ClientCertificate>, user: Option<&str>) -> Option<Principal> {
    match (client.and_then(ClientCertificate::leaf), user) {
        (Some(der), _) => Some(Principal {
            id: format!("cert:{}", shedu_pki::fingerprint_sha256(der)),
            name: shedu_pki::CertInfo::from_der(der)
                .map(|i| i.subject)
                .unwrap_or_default(),
            role: Role::Device,
            kind: PrincipalKind::Certificate,
        }),
        (None, Some(user)) => Some(Principal {
            id: format!("device:{user}"),
            name: user.to_string(),
            role: Role::Device,
            kind: PrincipalKind::DeviceSecret,
        }),
        (None, None) => None,
    }
}

/// RFC 7030 §4.4.2: the key part then the certificate part, each base64.
fn server_keygen_body(key_pkcs8: &[u8], pkcs7: &[u8]) -> Response {
    let boundary = format!("est-{}", uuid::Uuid::new_v4().simple());
    let key = Zeroizing::new(wrap64(&STANDARD.encode(key_pkcs8)));
    let body = Zeroizing::new(format!(
        "--{boundary}\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--{boundary}--\r\n",
        key.as_str(),
        wrap64(&STANDARD.encode(pkcs7)),
    ));
    let mut res = (StatusCode::OK, body.as_bytes().to_vec()).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}")) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    no_store(res)
}

/// HTTP Basic `device:secret` or a bearer secret ([`shedu_pki::est::credentials`]).
fn credentials(headers: &HeaderMap) -> (Option<String>, Option<Zeroizing<String>>) {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map_or((None, None), shedu_pki::est::credentials)
}

fn base64_body(content_type: &'static str, der: &[u8]) -> Response {
    let mut res = (StatusCode::OK, wrap64(&STANDARD.encode(der))).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "content-transfer-encoding",
        HeaderValue::from_static("base64"),
    );
    no_store(res)
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Base64 in 64-character lines ending in LF, as PEM writes it: coreutils `base64 -d` (what a device's shell
/// script has) refuses CR, while every EST client accepts either.
fn wrap64(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 1);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut res = (status, format!("{body}\n")).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// Service errors in EST's terms.
fn error(e: Error) -> Response {
    match e {
        Error::Invalid { detail, .. } => text(StatusCode::BAD_REQUEST, &detail),
        Error::Unauthenticated(detail) => {
            let mut res = text(StatusCode::UNAUTHORIZED, &detail);
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"est\""),
            );
            res
        }
        Error::Forbidden { detail, .. } => text(StatusCode::FORBIDDEN, &detail),
        Error::NotFound(what) => text(StatusCode::NOT_FOUND, &format!("{what} not found")),
        Error::RateLimited { detail, .. } => text(StatusCode::TOO_MANY_REQUESTS, &detail),
        Error::Unavailable(_) | Error::KeyUnavailable(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the CA cannot issue right now; retry later",
        ),
        other => {
            tracing::error!(error = %other, "EST request failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
