//! The web console: a small single-page application (plain JavaScript modules and CSS in
//! `crates/server/console/`, embedded at build time) served under `/ui/`, and the cookie session it signs in
//! with. The pages call the REST API (`/api/v1/…`) like any client; the gateway accepts the console's
//! session cookie in place of a bearer token ([`session_credential`]).
//!
//! Security: every console response carries a strict Content-Security-Policy (own scripts and styles
//! only: nothing inline, no other origin), and refuses framing. The cookies are `Secure; HttpOnly;
//! SameSite=Strict`; a request that changes something with a cookie (any method but GET, HEAD and
//! OPTIONS) must also be same-origin: `Origin` naming this server, `Sec-Fetch-Site: same-origin` when the
//! browser sends it, and the `X-Requested-With: shedu-console` header, which no other site can add
//! without a CORS preflight that this server never grants.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shedu_core::{AuditAction, AuditContext, Outcome};

use crate::AppState;
use crate::auth::Principal;
use crate::problem::{ApiJson, Problem};

/// The session cookie: an access token (or the bootstrap token). `__Host-`: Secure, Path=/, no Domain.
const SESSION_COOKIE: &str = "__Host-shedu-session";
/// The refresh token, sent only to the console's session routes.
const REFRESH_COOKIE: &str = "__Secure-shedu-refresh";
const REFRESH_PATH: &str = "/ui/session";
/// An OIDC sign-in under way: the provider, `state`, `nonce` and the PKCE verifier, for ten minutes.
/// `SameSite=Lax`, since the provider's redirect back is a cross-site navigation.
const OIDC_COOKIE: &str = "__Host-shedu-oidc";
const OIDC_CALLBACK: &str = "/ui/oidc/callback";
/// The header a console request that changes something carries.
pub(crate) const CSRF_HEADER: &str = "x-requested-with";
const CSRF_VALUE: &str = "shedu-console";

/// The policy of every console response: the console's own files, API calls to this origin, nothing else.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The embedded files: name, media type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/api.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/pages.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../console/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../console/icon.svg"),
    ),
];
const INDEX: &str = include_str!("../console/index.html");

/// `/` (to the console), `/ui/` (the page), `/ui/assets/{name}` and the session routes.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let session = Router::new()
        .route("/ui/session", post(login).delete(logout))
        .route("/ui/session/refresh", post(refresh))
        .layer(axum::middleware::from_fn(same_origin_writes))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::audit::layer,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/assets/{name}", get(asset))
        .route("/ui/oidc", get(oidc_providers))
        .route("/ui/oidc/{provider}/start", get(oidc_start))
        .route(OIDC_CALLBACK, get(oidc_callback))
        .merge(session)
        .layer(axum::middleware::from_fn(security_headers))
}

async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, media_type, body)) => {
            ([(header::CONTENT_TYPE, *media_type)], *body).into_response()
        }
        None => {
            Problem::new(StatusCode::NOT_FOUND, "not-found", "no such console file").into_response()
        }
    }
}

/// The headers of every console response.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

/// Refuses a console session request that changes something unless it is same-origin.
async fn same_origin_writes(req: Request, next: Next) -> Response {
    match check_same_origin(req.method(), req.uri(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(p) => p.into_response(),
    }
}

fn csrf_refused(why: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "csrf",
        format!(
            "a console request that changes something must come from the console itself: {why}"
        ),
    )
}

/// `Ok` for safe methods; otherwise the request must carry the console's header, a matching `Origin`,
/// and (when the browser says) `Sec-Fetch-Site: same-origin`.
fn check_same_origin(
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<(), Problem> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header(CSRF_HEADER) != Some(CSRF_VALUE) {
        return Err(csrf_refused("the X-Requested-With header is missing"));
    }
    if let Some(site) = header("sec-fetch-site")
        && site != "same-origin"
    {
        return Err(csrf_refused("Sec-Fetch-Site is not same-origin"));
    }
    let authority = crate::listen::request_authority(uri, headers)
        .ok_or_else(|| csrf_refused("the request names no host"))?;
    match header("origin") {
        Some(origin) if origin.eq_ignore_ascii_case(&format!("https://{authority}")) => Ok(()),
        Some(_) => Err(csrf_refused("Origin is another site")),
        None => Err(csrf_refused("the Origin header is missing")),
    }
}

/// One cookie's value from the `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The console session's token, for a request without a bearer token: `Ok(None)` without the cookie; a
/// request with the cookie that changes something must be same-origin (else 403).
pub(crate) fn session_credential(req: &Request) -> Result<Option<String>, Problem> {
    let Some(token) = cookie(req.headers(), SESSION_COOKIE) else {
        return Ok(None);
    };
    check_same_origin(req.method(), req.uri(), req.headers())?;
    Ok(Some(token.to_string()))
}

/// A console sign-in: a local user's name and password, or the bootstrap admin token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
}

/// Who signed in.
#[derive(Debug, Serialize)]
struct SignedIn {
    name: String,
    role: String,
}

fn set_cookie(name: &str, value: &str, path: &str, clear: bool) -> (header::HeaderName, String) {
    let age = if clear { "; Max-Age=0" } else { "" };
    (
        header::SET_COOKIE,
        format!("{name}={value}; Path={path}; Secure; HttpOnly; SameSite=Strict{age}"),
    )
}

fn signed_in(p: &Principal, session: &str, refresh: Option<&str>) -> Response {
    let mut cookies = vec![set_cookie(SESSION_COOKIE, session, "/", false)];
    cookies.push(match refresh {
        Some(r) => set_cookie(REFRESH_COOKIE, r, REFRESH_PATH, false),
        None => set_cookie(REFRESH_COOKIE, "", REFRESH_PATH, true),
    });
    let mut res = Json(SignedIn {
        name: p.name.clone(),
        role: p.role.as_str().into(),
    })
    .into_response();
    for (name, value) in cookies {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().append(name, v);
        }
    }
    res
}

/// `POST /ui/session`: signs in and sets the session cookies.
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, Problem> {
    match (req.username, req.password, req.token) {
        (Some(user), Some(password), None) => {
            let session = state
                .services
                .auth
                .login(&user, &password, &peer.ip().to_string())
                .await?;
            let p = crate::auth::authenticate(&state, Some(&session.token)).await?;
            Ok(signed_in(&p, &session.token, Some(&session.refresh_token)))
        }
        (None, None, Some(token)) => {
            let p = crate::auth::authenticate(&state, Some(&token)).await?;
            if p.kind != crate::PrincipalKind::Bootstrap {
                return Err(Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid-token",
                    "the console signs in with a user name and password, or the bootstrap token",
                ));
            }
            Ok(signed_in(&p, &token, None))
        }
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-input",
            "send either username and password, or token",
        )),
    }
}

/// `POST /ui/session/refresh`: a new access token for the refresh cookie (the console calls it when the
/// API answers 401).
async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let presented = cookie(&headers, REFRESH_COOKIE).ok_or_else(|| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "no console session to refresh; sign in",
        )
    })?;
    let session = state.services.auth.refresh(presented).await?;
    let p = crate::auth::authenticate(&state, Some(&session.token)).await?;
    Ok(signed_in(&p, &session.token, Some(&session.refresh_token)))
}

/// `DELETE /ui/session`: ends the login (its refresh tokens, and with them its access tokens) and clears
/// the cookies.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    if let Some(presented) = cookie(&headers, REFRESH_COOKIE) {
        state.services.auth.logout(presented).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    for (name, value) in [
        set_cookie(SESSION_COOKIE, "", "/", true),
        set_cookie(REFRESH_COOKIE, "", REFRESH_PATH, true),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().append(name, v);
        }
    }
    Ok(res)
}

/// One identity provider the console offers on its sign-in page.
#[derive(Debug, Serialize)]
struct SignInProvider {
    id: usize,
    label: String,
}

/// `GET /ui/oidc`: the identity providers configured for console sign-in.
async fn oidc_providers(State(state): State<AppState>) -> Json<serde_json::Value> {
    let providers: Vec<SignInProvider> = state
        .services
        .auth
        .oidc_sign_in_providers()
        .into_iter()
        .map(|(id, label)| SignInProvider { id, label })
        .collect();
    Json(serde_json::json!({ "providers": providers }))
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The console's redirect URI at this server, as the browser reached it.
fn callback_uri(uri: &axum::http::Uri, headers: &HeaderMap) -> Result<String, Problem> {
    let authority = crate::listen::request_authority(uri, headers).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-input",
            "the request names no host",
        )
    })?;
    Ok(format!("https://{authority}{OIDC_CALLBACK}"))
}

/// `GET /ui/oidc/{provider}/start`: begins the authorization code flow with PKCE: a fresh `state`,
/// `nonce` and code verifier go into a short-lived cookie, and the browser to the provider.
async fn oidc_start(
    State(state): State<AppState>,
    axum::extract::Path(provider): axum::extract::Path<usize>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let redirect_uri = callback_uri(&uri, &headers)?;
    let (flow_state, nonce, verifier) = (
        b64url(&rand::random::<[u8; 24]>()),
        b64url(&rand::random::<[u8; 24]>()),
        b64url(&rand::random::<[u8; 32]>()),
    );
    // RFC 7636 §4.2: S256, the SHA-256 of the verifier, base64url without padding.
    let challenge =
        b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    let to = match state
        .services
        .auth
        .oidc_authorization_url(provider, &redirect_uri, &flow_state, &nonce, &challenge)
        .await
    {
        Ok(to) => to,
        Err(e @ shedu_core::Error::NotFound(_)) => return Err(e.into()),
        // The provider is down or its discovery document unusable (logged): back to the sign-in page.
        Err(_) => return Ok(sign_in_failed("unavailable")),
    };
    let mut res = Redirect::to(&to).into_response();
    let cookie = format!(
        "{OIDC_COOKIE}={provider}.{flow_state}.{nonce}.{verifier}; Path=/; Secure; HttpOnly; \
         SameSite=Lax; Max-Age=600"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// The provider's redirect back: `code` and `state`, or `error`.
#[derive(Debug, Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Back to the sign-in page with a reason the page explains (`state`, `denied`, `refused` or
/// `unavailable`).
fn sign_in_failed(reason: &str) -> Response {
    let mut res = Redirect::to(&format!("/ui/?oidc-error={reason}")).into_response();
    let (name, value) = set_cookie(OIDC_COOKIE, "", "/", true);
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(name, v);
    }
    res
}

/// `GET /ui/oidc/callback`: checks `state` against the cookie, trades the code (with the PKCE verifier)
/// for the ID token, verifies it like any bearer token of that issuer and checks its `nonce`; the ID
/// token becomes the console's session cookie. With a refresh token from the provider, the login is kept
/// (see [`shedu_core::AuthService::oidc_login`]) and the console's refresh cookie set: it renews the
/// session as a local user's does, for as long as the provider renews its token. Every outcome is recorded in
/// the audit log as `auth.login` (the user when known, the provider; never the code or a token).
async fn oidc_callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    axum::extract::Query(back): axum::extract::Query<Callback>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let mut attempt = SignInAttempt::default();
    let result = oidc_sign_in(&state, back, &uri, &headers, &mut attempt).await;
    let (outcome, detail) = match &result {
        Ok(_) => (Outcome::Success, "console sign-in through OIDC".to_string()),
        Err(reason) => (
            if *reason == "denied" {
                Outcome::Denied
            } else {
                Outcome::Failure
            },
            format!(
                "console sign-in through OIDC refused: {}",
                sign_in_reason(reason)
            ),
        ),
    };
    let ctx = AuditContext::new(
        attempt.name.as_deref().unwrap_or("anonymous"),
        attempt.id.as_deref().unwrap_or(""),
        attempt.role.unwrap_or(""),
        peer.ip().to_string(),
        crate::request_id::current().unwrap_or_default(),
    );
    let entry = ctx.entry(
        AuditAction::AuthLogin.as_str(),
        attempt.issuer.as_deref().unwrap_or(OIDC_CALLBACK),
        outcome,
        Some(detail),
        state.services.registry.now(),
    );
    if let Err(e) = state.services.audit.record(entry).await {
        tracing::error!(error = %e, "cannot append the OIDC sign-in to the audit log");
    }
    let (id_token, refresh) = match result {
        Ok(tokens) => tokens,
        Err(reason) => return sign_in_failed(reason),
    };
    let mut res = Redirect::to("/ui/").into_response();
    for (name, value) in [
        set_cookie(SESSION_COOKIE, &id_token, "/", false),
        match &refresh {
            Some(r) => set_cookie(REFRESH_COOKIE, r, REFRESH_PATH, false),
            None => set_cookie(REFRESH_COOKIE, "", REFRESH_PATH, true),
        },
        set_cookie(OIDC_COOKIE, "", "/", true),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().append(name, v);
        }
    }
    res
}

/// What an OIDC sign-in learnt about who tried, for its audit record.
#[derive(Default)]
struct SignInAttempt {
    /// The provider's issuer, once the pending sign-in names it.
    issuer: Option<String>,
    /// The user's name and principal id: from the verified token, or for a refused token from the one
    /// the provider's token endpoint returned (the direct channel, OIDC Core §3.1.3.7).
    name: Option<String>,
    id: Option<String>,
    role: Option<&'static str>,
}

/// What the sign-in page says for a refusal reason, as recorded in the audit log.
fn sign_in_reason(reason: &str) -> &'static str {
    match reason {
        "denied" => "the provider denied it",
        "state" => "it did not start in this browser or expired (state)",
        "unavailable" => "the provider cannot be reached",
        _ => "the provider's answer was not accepted",
    }
}

/// The claims of a JWT, not verified.
fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let claims = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The callback's checks (see [`oidc_callback`]): the ID token to sign in with and the console's refresh
/// token of the login (when the provider gave a refresh token), or the reason for the sign-in page.
async fn oidc_sign_in(
    state: &AppState,
    back: Callback,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    attempt: &mut SignInAttempt,
) -> Result<(String, Option<String>), &'static str> {
    let pending: Option<Vec<&str>> = cookie(headers, OIDC_COOKIE).map(|p| p.split('.').collect());
    let provider = pending
        .as_ref()
        .and_then(|parts| parts.first()?.parse::<usize>().ok());
    let auth = &state.services.auth;
    attempt.issuer = provider.and_then(|p| auth.oidc_issuer(p)).map(String::from);
    // An error answer signs nobody in, whatever its state (some providers leave `state` out of it).
    if back.error.is_some() {
        return Err("denied");
    }
    let (Some(provider), Some([_, expected_state, nonce, verifier])) =
        (provider, pending.as_deref())
    else {
        return Err("state");
    };
    let state_ok = back.state.as_deref().is_some_and(|s| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            s.as_bytes(),
            expected_state.as_bytes(),
        ))
    });
    if !state_ok {
        return Err("state");
    }
    let code = back.code.ok_or("refused")?;
    let redirect_uri = callback_uri(uri, headers).map_err(|_| "refused")?;
    let tokens = auth
        .oidc_exchange_code(provider, &code, verifier, &redirect_uri)
        .await
        .map_err(|e| {
            tracing::info!(error = %e, "console OIDC sign-in refused");
            "refused"
        })?;
    let id_token = tokens.id_token;
    let claims = unverified_claims(&id_token);
    if let (Some(iss), Some(sub)) = (
        attempt.issuer.as_deref(),
        claims.as_ref().and_then(|c| c["sub"].as_str()),
    ) {
        attempt.name = Some(sub.chars().take(256).collect());
        attempt.id = Some(format!(
            "oidc:{iss}#{}",
            attempt.name.as_deref().unwrap_or("")
        ));
    }
    let principal = crate::auth::authenticate(state, Some(&id_token))
        .await
        .map_err(|_| "refused")?;
    attempt.name = Some(principal.name.clone());
    attempt.id = Some(principal.id.clone());
    attempt.role = Some(principal.role.as_str());
    let issuer_ok = attempt
        .issuer
        .as_deref()
        .is_some_and(|iss| principal.id.starts_with(&format!("oidc:{iss}#")));
    // The signature was verified above; the claims are read again only for the nonce.
    let nonce_ok = claims.is_some_and(|claims| claims["nonce"].as_str() == Some(*nonce));
    if principal.kind != crate::PrincipalKind::Oidc || !issuer_ok || !nonce_ok {
        return Err("refused");
    }
    // With the provider's refresh token the login outlives the ID token: the server keeps it and
    // presents it at each refresh; the browser gets only the console's own refresh token.
    let refresh = match tokens.refresh_token {
        Some(provider_refresh) => Some(
            auth.oidc_login(provider, &principal, &provider_refresh)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "cannot keep the OIDC console login");
                    "refused"
                })?,
        ),
        None => None,
    };
    tracing::info!(principal = %principal.id, role = principal.role.as_str(), "console OIDC sign-in");
    Ok((id_token, refresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn writes_must_be_same_origin() {
        let uri: axum::http::Uri = "/api/v1/cas".parse().unwrap_or_default();
        let good = [
            ("host", "pki.example:8443"),
            ("origin", "https://pki.example:8443"),
            ("x-requested-with", "shedu-console"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert!(check_same_origin(&Method::POST, &uri, &headers(&good)).is_ok());
        assert!(check_same_origin(&Method::GET, &uri, &headers(&[])).is_ok());
        for drop in 0..3 {
            let fewer: Vec<_> = (0..good.len())
                .filter(|i| *i != drop)
                .map(|i| good[i])
                .collect();
            let verdict = check_same_origin(&Method::DELETE, &uri, &headers(&fewer));
            assert!(verdict.is_err(), "without {:?}", good[drop]);
        }
        assert!(check_same_origin(&Method::POST, &uri, &headers(&good[..3])).is_ok());
        // Another site (Origin), or a sibling site the browser names (Sec-Fetch-Site).
        for (origin, site) in [
            ("https://evil.example", "cross-site"),
            ("https://pki.example:8443", "same-site"),
        ] {
            let h = [
                ("host", "pki.example:8443"),
                ("origin", origin),
                ("x-requested-with", "shedu-console"),
                ("sec-fetch-site", site),
            ];
            assert!(check_same_origin(&Method::PUT, &uri, &headers(&h)).is_err());
        }
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let h = headers(&[("cookie", "a=1; __Host-shedu-session=tok; x=2")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "__Host-shedu"), None);
    }
}
