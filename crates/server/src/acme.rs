//! ACME (RFC 8555) on the HTTPS listener: `/acme/{ra}/…`, where `{ra}` is the RA's id or name. This
//! module builds the URLs clients see, checks the media type, decodes nothing itself (the JWS is
//! `shedu_acme`'s, the rules `shedu_core::Acme`'s) and encodes answers: resources as JSON with their
//! `Location`, `Link` and `Retry-After` headers, errors as `application/problem+json` with the RFC 8555
//! §6.7 types, a fresh `Replay-Nonce` on every answer.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shedu_acme::types::{self, rfc3339};
use shedu_acme::{Alg, ProblemType};
use shedu_core::{
    AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeFailure, AcmeOrder, AcmeSettings, AuditContext,
    Authenticated, Error, Ra, Signer,
};

use crate::AppState;

/// A JWS with an RSA-8192 key and a CSR with many names stays well under this.
const MAX_ACME_BODY: usize = shedu_acme::MAX_JWS_LEN;

/// The ACME routes.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/acme/{ra}/directory", get(directory))
        .route("/acme/{ra}/new-nonce", get(nonce_get).head(nonce_head))
        .route("/acme/{ra}/new-account", post(new_account))
        .route("/acme/{ra}/acct/{id}", post(account))
        .route("/acme/{ra}/acct/{id}/orders", post(orders))
        .route("/acme/{ra}/new-order", post(new_order))
        .route("/acme/{ra}/order/{id}", post(order))
        .route("/acme/{ra}/order/{id}/finalize", post(finalize))
        .route("/acme/{ra}/order/{id}/cert", post(certificate))
        .route("/acme/{ra}/authz/{id}", post(authz))
        .route("/acme/{ra}/chall/{id}/{kind}", post(challenge))
        .route("/acme/{ra}/revoke-cert", post(revoke))
        .route("/acme/{ra}/key-change", post(key_change))
        .route("/acme/{ra}/renewal-info/{id}", get(renewal_info))
        .layer(DefaultBodyLimit::max(MAX_ACME_BODY))
        .layer(axum::middleware::from_fn_with_state(state, replay_nonce))
}

/// RFC 8555 §6.5: every answer carries a fresh nonce; none may be cached.
async fn replay_nonce(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&state.services.acme.new_nonce()) {
        res.headers_mut().insert("replay-nonce", v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// An ACME error answer.
struct AcmeError {
    kind: ProblemType,
    status: StatusCode,
    detail: String,
    retry_after: Option<u64>,
    /// Per-identifier problems (RFC 8555 §6.7.1).
    subproblems: Vec<types::Problem>,
}

impl AcmeError {
    fn new(kind: ProblemType, detail: impl Into<String>) -> AcmeError {
        AcmeError {
            status: status_of(kind),
            kind,
            detail: detail.into(),
            retry_after: None,
            subproblems: Vec::new(),
        }
    }
}

/// The one mapping of ACME problem types to HTTP statuses.
fn status_of(kind: ProblemType) -> StatusCode {
    use ProblemType as P;
    match kind {
        P::Unauthorized | P::OrderNotReady => StatusCode::FORBIDDEN,
        P::AlreadyReplaced => StatusCode::CONFLICT,
        P::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        P::ServerInternal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<AcmeFailure> for AcmeError {
    fn from(f: AcmeFailure) -> AcmeError {
        match f {
            AcmeFailure::Protocol(e) => AcmeError {
                subproblems: problem_view(&e).subproblems,
                ..AcmeError::new(e.problem, e.detail)
            },
            AcmeFailure::Service(e) => e.into(),
        }
    }
}

impl From<Error> for AcmeError {
    fn from(e: Error) -> AcmeError {
        let (kind, status) = match &e {
            Error::NotFound(_) => (ProblemType::Malformed, StatusCode::NOT_FOUND),
            Error::Invalid { .. } => (ProblemType::Malformed, StatusCode::BAD_REQUEST),
            Error::Conflict { .. } => (ProblemType::Malformed, StatusCode::CONFLICT),
            Error::Forbidden { .. } | Error::Unauthenticated(_) => {
                (ProblemType::Unauthorized, StatusCode::FORBIDDEN)
            }
            Error::RateLimited { retry_after, .. } => {
                return AcmeError {
                    kind: ProblemType::RateLimited,
                    status: StatusCode::TOO_MANY_REQUESTS,
                    detail: e.to_string(),
                    retry_after: Some(*retry_after),
                    subproblems: Vec::new(),
                };
            }
            Error::Unavailable(_) | Error::KeyUnavailable(_) => {
                (ProblemType::ServerInternal, StatusCode::SERVICE_UNAVAILABLE)
            }
            _ => (
                ProblemType::ServerInternal,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        };
        let detail = if status.is_server_error() {
            tracing::error!(error = %e, "ACME request failed");
            "internal error".to_string()
        } else {
            e.to_string()
        };
        AcmeError {
            kind,
            status,
            detail,
            retry_after: None,
            subproblems: Vec::new(),
        }
    }
}

impl IntoResponse for AcmeError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "type": self.kind.urn(),
            "detail": self.detail,
            "status": self.status.as_u16(),
        });
        if !self.subproblems.is_empty() {
            body["subproblems"] = serde_json::to_value(&self.subproblems).unwrap_or_default();
        }
        if self.kind == ProblemType::BadSignatureAlgorithm {
            // RFC 8555 §6.2: the algorithms the server accepts.
            body["algorithms"] = Alg::ACCOUNT.iter().map(|a| a.name()).collect();
        }
        let mut res = (self.status, body.to_string()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

type Answer = Result<Response, AcmeError>;

/// The parts of a request ACME looks at.
struct Call {
    url: String,
    base: String,
    headers: HeaderMap,
    source: String,
    body: Bytes,
}

impl FromRequest<AppState> for Call {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Call, Response> {
        let (parts, body) = req.into_parts();
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(String::new, |c| c.0.ip().to_string());
        let host = crate::listen::request_authority(&parts.uri, &parts.headers).unwrap_or_default();
        let url = format!("https://{host}{}", parts.uri.path());
        // `/acme/{ra}`: the first two segments of the path, as the client wrote them.
        let ra_segment = parts
            .uri
            .path()
            .split('/')
            .nth(2)
            .unwrap_or_default()
            .to_string();
        let base = format!("https://{host}/acme/{ra_segment}");
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| {
                AcmeError::new(
                    ProblemType::Malformed,
                    "the body is too large or unreadable",
                )
                .into_response()
            })?;
        Ok(Call {
            url,
            base,
            headers,
            source,
            body,
        })
    }
}

/// The RA of the path and its ACME settings.
async fn ra(state: &AppState, id: &str) -> Result<(Ra, AcmeSettings), AcmeError> {
    Ok(state.services.acme.ra(id).await?)
}

/// Parses and verifies a POST: media type, JWS, url, nonce, signer and signature.
async fn authenticate(
    state: &AppState,
    ra: &Ra,
    call: &Call,
    signer: Signer,
) -> Result<Authenticated, AcmeError> {
    // RFC 8555 §6.2: POST bodies are application/jose+json.
    let ct = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/jose+json") {
        let mut e = AcmeError::new(
            ProblemType::Malformed,
            "ACME requests are application/jose+json",
        );
        e.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Err(e);
    }
    let actor = AuditContext::new(
        "acme-client",
        "",
        "acme",
        call.source.clone(),
        crate::request_id::current().unwrap_or_default(),
    );
    Ok(state
        .services
        .acme
        .authenticate(
            ra,
            &format!("{}/acct/", call.base),
            &call.url,
            &call.body,
            signer,
            &actor,
        )
        .await?)
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn with_header(mut res: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(name, v);
    }
    res
}

fn directory_link(res: Response, base: &str) -> Response {
    with_header(
        res,
        header::LINK,
        &format!("<{base}/directory>;rel=\"index\""),
    )
}

fn problem_view(e: &shedu_acme::Error) -> types::Problem {
    types::Problem {
        kind: e.problem.urn(),
        detail: e.detail.clone(),
        status: Some(status_of(e.problem).as_u16()),
        identifier: None,
        subproblems: e
            .subproblems
            .iter()
            .map(|(id, sub)| types::Problem {
                identifier: Some(id.clone()),
                ..problem_view(sub)
            })
            .collect(),
    }
}

async fn directory(State(state): State<AppState>, Path(ra_id): Path<String>, call: Call) -> Answer {
    let (_, s) = ra(&state, &ra_id).await?;
    let b = &call.base;
    let profiles = s
        .profiles
        .keys()
        .map(|name| {
            (
                name.clone(),
                serde_json::Value::String(format!("profile {name}")),
            )
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &types::Directory {
            new_nonce: format!("{b}/new-nonce"),
            new_account: format!("{b}/new-account"),
            new_order: format!("{b}/new-order"),
            revoke_cert: format!("{b}/revoke-cert"),
            key_change: format!("{b}/key-change"),
            renewal_info: format!("{b}/renewal-info"),
            meta: types::DirectoryMeta {
                external_account_required: s.eab_required,
                terms_of_service: s.terms_of_service,
                profiles,
            },
        },
    ))
}

/// RFC 8555 §7.2: HEAD answers 200, GET 204; the nonce layer adds the nonce.
async fn nonce_head(State(state): State<AppState>, Path(ra_id): Path<String>) -> Answer {
    ra(&state, &ra_id).await?;
    Ok(StatusCode::OK.into_response())
}

async fn nonce_get(State(state): State<AppState>, Path(ra_id): Path<String>) -> Answer {
    ra(&state, &ra_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn account_view(a: &AcmeAccount, base: &str) -> types::Account {
    types::Account {
        status: a.status.clone(),
        contact: a.contact.clone(),
        orders: format!("{base}/acct/{}/orders", a.id),
        external_account_binding: None,
    }
}

async fn new_account(
    State(state): State<AppState>,
    Path(ra_id): Path<String>,
    call: Call,
) -> Answer {
    let (ra, s) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::NewKey).await?;
    let url = format!("{}/new-account", call.base);
    let (account, created) = state.services.acme.new_account(&ra, &s, &req, &url).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let res = json(status, &account_view(&account, &call.base));
    Ok(with_header(
        directory_link(res, &call.base),
        header::LOCATION,
        &format!("{}/acct/{}", call.base, account.id),
    ))
}

async fn account(
    State(state): State<AppState>,
    Path((ra_id, id)): Path<(String, String)>,
    call: Call,
) -> Answer {
    let (ra, _) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let account = state.services.acme.update_account(&ra, &req, &id).await?;
    Ok(json(StatusCode::OK, &account_view(&account, &call.base)))
}

async fn orders(
    State(state): State<AppState>,
    Path((ra_id, id)): Path<(String, String)>,
    call: Call,
) -> Answer {
    let (ra, _) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let ids = state.services.acme.orders(&req, &id).await?;
    let urls: Vec<String> = ids
        .iter()
        .map(|o| format!("{}/order/{o}", call.base))
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "orders": urls })))
}

fn order_response(status: StatusCode, o: &AcmeOrder, base: &str) -> Response {
    let view = types::Order {
        status: o.status.clone(),
        expires: rfc3339(o.expires_at),
        identifiers: o.identifiers.clone(),
        authorizations: o
            .authz_ids
            .iter()
            .map(|a| format!("{base}/authz/{a}"))
            .collect(),
        finalize: format!("{base}/order/{}/finalize", o.id),
        certificate: o
            .has_certificate
            .then(|| format!("{base}/order/{}/cert", o.id)),
        profile: o.profile.clone(),
        replaces: o.replaces.clone(),
        error: o.error.as_ref().map(problem_view),
    };
    let mut res = with_header(
        json(status, &view),
        header::LOCATION,
        &format!("{base}/order/{}", o.id),
    );
    if matches!(o.status.as_str(), "pending" | "processing") {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

async fn new_order(State(state): State<AppState>, Path(ra_id): Path<String>, call: Call) -> Answer {
    let (ra, s) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let order = state.services.acme.new_order(&ra, &s, &req).await?;
    Ok(order_response(StatusCode::CREATED, &order, &call.base))
}

async fn order(
    State(state): State<AppState>,
    Path((ra_id, id)): Path<(String, String)>,
    call: Call,
) -> Answer {
    let (ra, _) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let order = state.services.acme.order(&req, &id).await?;
    Ok(order_response(StatusCode::OK, &order, &call.base))
}

async fn finalize(
    State(state): State<AppState>,
    Path((ra_id, id)): Path<(String, String)>,
    call: Call,
) -> Answer {
    let (ra, _) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let order = state.services.acme.finalize(&req, &id).await?;
    Ok(order_response(StatusCode::OK, &order, &call.base))
}

async fn certificate(
    State(state): State<AppState>,
    Path((ra_id, id)): Path<(String, String)>,
    call: Call,
) -> Answer {
    let (ra, _) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let pem = state.services.acme.certificate(&req, &id).await?;
    let mut res = (StatusCode::OK, Body::from(pem)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pem-certificate-chain"),
    );
    Ok(res)
}

fn challenge_view(c: &AcmeChallenge, authz_id: &str, base: &str) -> types::Challenge {
    types::Challenge {
        url: format!("{base}/chall/{authz_id}/{}", c.kind),
        kind: c.kind.clone(),
        status: c.status.clone(),
        token: c.token.clone(),
        validated: c.validated_at.map(rfc3339),
        error: c.error.as_ref().map(problem_view),
    }
}

fn authz_response(a: &AcmeAuthz, base: &str) -> Response {
    let view = types::Authorization {
        identifier: a.identifier.clone(),
        status: a.status.clone(),
        expires: rfc3339(a.expires_at),
        challenges: a
            .challenges
            .iter()
            .map(|c| challenge_view(c, &a.id, base))
            .collect(),
        wildcard: a.wildcard,
    };
    let mut res = json(StatusCode::OK, &view);
    if a.status == "pending" {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

async fn authz(
    State(state): State<AppState>,
    Path((ra_id, id)): Path<(String, String)>,
    call: Call,
) -> Answer {
    let (ra, s) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let a = state.services.acme.authz(&s, &req, &id).await?;
    Ok(authz_response(&a, &call.base))
}

async fn challenge(
    State(state): State<AppState>,
    Path((ra_id, id, kind)): Path<(String, String, String)>,
    call: Call,
) -> Answer {
    let (ra, s) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let (a, c) = state.services.acme.challenge(&s, &req, &id, &kind).await?;
    let res = json(StatusCode::OK, &challenge_view(&c, &a.id, &call.base));
    Ok(with_header(
        res,
        header::LINK,
        &format!("<{}/authz/{}>;rel=\"up\"", call.base, a.id),
    ))
}

async fn revoke(State(state): State<AppState>, Path(ra_id): Path<String>, call: Call) -> Answer {
    let (ra, _) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Either).await?;
    state.services.acme.revoke(&ra, &req).await?;
    Ok(StatusCode::OK.into_response())
}

async fn key_change(
    State(state): State<AppState>,
    Path(ra_id): Path<String>,
    call: Call,
) -> Answer {
    let (ra, _) = ra(&state, &ra_id).await?;
    let req = authenticate(&state, &ra, &call, Signer::Account).await?;
    let account_url = match &req.account {
        Some(a) => format!("{}/acct/{}", call.base, a.id),
        None => String::new(),
    };
    match state
        .services
        .acme
        .key_change(&ra, &req, &account_url)
        .await?
    {
        Ok(account) => Ok(json(StatusCode::OK, &account_view(&account, &call.base))),
        Err(other) => {
            let mut e = AcmeError::new(
                ProblemType::Malformed,
                "the new key already belongs to an account",
            );
            e.status = StatusCode::CONFLICT;
            Ok(with_header(
                e.into_response(),
                header::LOCATION,
                &format!("{}/acct/{other}", call.base),
            ))
        }
    }
}

async fn renewal_info(
    State(state): State<AppState>,
    Path((ra_id, id)): Path<(String, String)>,
) -> Answer {
    let (ra, _) = ra(&state, &ra_id).await?;
    let w = state.services.acme.renewal_info(&ra, &id).await?;
    let res = json(
        StatusCode::OK,
        &types::RenewalInfo {
            suggested_window: types::Window {
                start: rfc3339(w.start),
                end: rfc3339(w.end),
            },
        },
    );
    Ok(with_header(
        res,
        header::RETRY_AFTER,
        &w.retry_after.to_string(),
    ))
}
