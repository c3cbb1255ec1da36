//! The gateway's authentication and authorization step for `/api/`: one middleware resolves the bearer
//! token to a [`Principal`] (bootstrap admin token, session token, or API key) and checks the route's
//! declared permission before any handler runs.

use std::fmt;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
pub use shedu_core::{Principal, PrincipalKind, Role};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::mtls::ClientCertificate;
use crate::permissions;
use crate::problem::Problem;

/// The bootstrap admin token. `Debug` never prints it.
pub struct AdminToken(String);

impl AdminToken {
    /// Wraps a token; refuses tokens too short to resist guessing.
    pub fn new(token: String) -> Result<AdminToken, String> {
        if token.len() < 16 {
            return Err("the admin token must be at least 16 characters".into());
        }
        Ok(AdminToken(token))
    }

    /// Constant-time comparison.
    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Middleware for the authenticated API routes.
pub(crate) async fn require_principal(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    // A bearer token wins; without one, a client certificate from the TLS handshake identifies a device.
    let client_cert = req.extensions().get::<ClientCertificate>().cloned();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // Without a bearer token, the console's session cookie (same-origin for writes) stands in for one.
    let session = if bearer(req.headers()).is_some() {
        None
    } else {
        match crate::console::session_credential(&req) {
            Ok(s) => s,
            Err(problem) => return problem.into_response(),
        }
    };
    let principal = match authorize(
        &state,
        req.headers(),
        session,
        client_cert,
        req.method(),
        &path,
    )
    .await
    {
        Ok(p) => p,
        Err(problem) => return problem.into_response(),
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// The bearer token of the `Authorization` header, if any.
fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|v| v.trim().to_string())
}

/// The principal of a request's credentials (a bearer token; without one, the console's `session` token;
/// without either, `client_cert`), provided its role holds the permission [`permissions::ROUTES`]
/// declares for `route` (a route template). The one check of [`require_principal`], also used by
/// front-ends mounted outside `/api/` (the connector's internal API).
pub(crate) async fn authorize(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    session: Option<String>,
    client_cert: Option<ClientCertificate>,
    method: &axum::http::Method,
    route: &str,
) -> Result<Principal, Problem> {
    let presented = bearer(headers).or(session);
    let principal = match (presented.as_deref(), client_cert) {
        (None, Some(cert)) => certificate_principal(state, &cert).await,
        (presented, _) => authenticate(state, presented).await,
    }?;
    crate::audit::identify(&principal);
    let Some(permission) = permissions::required(method, route) else {
        // A route that exists for other methods: the method is wrong, not the server.
        let allowed = permissions::methods(route);
        if !allowed.is_empty() {
            let mut problem = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!(
                    "{method} is not allowed on {route}; allowed: {}",
                    allowed.join(", ")
                ),
            );
            problem.header = Some(crate::problem::ProblemHeader::Allow(
                allowed.join(", ").into(),
            ));
            return Err(problem);
        }
        tracing::error!(%method, %route, "route has no declared permission; refusing");
        return Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "route without a declared permission",
        ));
    };
    if !permissions::allows(principal.role, permission) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role {} may not do this ({permission:?})",
                principal.role.as_str()
            ),
        ));
    }
    tracing::Span::current().record("principal", principal.name.as_str());
    Ok(principal)
}

/// The principal of a bearer token of the platform's API (bootstrap token, session, API key); also used by
/// the secret store's front-end, where an admin acts as root.
pub(crate) async fn authenticate(
    state: &AppState,
    presented: Option<&str>,
) -> Result<Principal, Problem> {
    let presented = presented.ok_or_else(|| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send Authorization: Bearer <token>",
        )
    })?;
    if state.admin_token.matches(presented) {
        if state.bootstrap_until_admin
            && state
                .services
                .auth
                .admin_exists()
                .await
                .map_err(Problem::from)?
        {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-token",
                "the bootstrap token is disabled now that an admin user exists",
            ));
        }
        return Ok(Principal {
            id: "bootstrap".into(),
            name: "bootstrap-admin".into(),
            role: Role::Admin,
            kind: PrincipalKind::Bootstrap,
        });
    }
    state
        .services
        .auth
        .authenticate(presented)
        .await
        .map_err(|e| match e {
            shedu_core::Error::Unauthenticated(_) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-token",
                "the bearer token is not valid",
            ),
            other => Problem::from(other),
        })
}

/// The principal of a client certificate the handshake verified: a device (machine role), provided the
/// certificate is one this platform issued and is neither revoked nor expired (fail closed).
pub(crate) async fn certificate_principal(
    state: &AppState,
    cert: &ClientCertificate,
) -> Result<Principal, Problem> {
    let der = cert.leaf().unwrap_or_default();
    match state
        .services
        .issuance
        .client_certificate(der, false)
        .await?
    {
        Ok(c) => Ok(Principal {
            id: format!("cert:{}", c.fingerprint),
            name: c.subject,
            role: Role::Device,
            kind: PrincipalKind::Certificate,
        }),
        Err(why) => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid-client-certificate",
            why.as_str(),
        )),
    }
}

/// Handlers take the principal the middleware established.
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "authentication required",
                )
            })
    }
}
