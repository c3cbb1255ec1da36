//! The gateway's audit step: every state-changing API request (POST, PUT, PATCH or DELETE under `/api/`)
//! leaves at least one row in the hash-chained audit log (`shedu_core::Audit`).
//!
//! - [`layer`] wraps the whole API, so requests refused before authentication are recorded too, as
//!   `anonymous`. The authentication middleware calls [`identify`] once it knows the caller; a handler takes
//!   the caller as an [`Actor`] and passes it to the service explicitly, which records the change
//!   (`certificate.issue`, …) in the change's own transaction.
//! - After the handler, a request that wrote no row, or that did not succeed, gets one row here, named
//!   `<METHOD> <route template>`, with outcome `denied` (401, 403), `failure` (any other 4xx or 5xx) or
//!   `success` (it changed nothing). A failure is recorded even after a write, since that write's
//!   transaction may have rolled back; if it committed, both rows stand, which is what happened.
//! - The login (a public route) is recorded as `auth.login` with the attempted user name as the principal
//!   and outcome `success` or `failure`; the password is never read here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shedu_core::Principal;
use shedu_core::{AuditAction, AuditContext, Outcome};

use crate::AppState;
use crate::problem::Problem;

/// The principal of a request nobody authenticated.
const ANONYMOUS: &str = "anonymous";
const LOGIN_ROUTE: &str = "/api/v1/auth/login";
/// Longest user name recorded for a login attempt (the name is the caller's choice).
const MAX_NAME: usize = 256;

tokio::task_local! {
    /// The audit context of the request being served; [`identify`] replaces it once the caller is known.
    static CURRENT: Arc<Mutex<AuditContext>>;
}

/// Middleware over the API router: records every state-changing request (see the module documentation).
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    let request_id = crate::request_id::current().unwrap_or_default();
    let login = method == Method::POST && route == LOGIN_ROUTE;
    let (req, principal) = if login {
        login_attempt(req).await
    } else {
        (Ok(req), ANONYMOUS.to_string())
    };
    let current = Arc::new(Mutex::new(AuditContext::new(
        principal, "", "", source, request_id,
    )));
    let response = match req {
        Ok(req) => CURRENT.scope(current.clone(), next.run(req)).await,
        Err(refused) => refused,
    };
    let ctx = lock(&current).clone();
    let status = response.status();
    if ctx.written() && status.is_success() {
        return response;
    }
    let (action, outcome) = if login {
        let outcome = if status.is_success() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        (AuditAction::AuthLogin.as_str().to_string(), outcome)
    } else {
        (format!("{method} {route}"), outcome_of(status))
    };
    let detail = format!("HTTP {}", status.as_u16());
    let entry = ctx.entry(
        &action,
        &path,
        outcome,
        Some(detail),
        state.services.registry.now(),
    );
    if let Err(e) = state.services.audit.record(entry).await {
        tracing::error!(error = %e, %action, "cannot append to the audit log");
    }
    response
}

/// Makes `principal` the caller of the request being recorded (a no-op for requests that are not).
pub(crate) fn identify(principal: &Principal) {
    identify_as(&principal.name, &principal.id, principal.role.as_str());
}

/// Makes a caller that is not a [`Principal`] (a secret-store token) the caller of the request being
/// recorded.
pub(crate) fn identify_as(name: &str, id: &str, role: &str) {
    let _ = CURRENT.try_with(|cell| {
        let mut ctx = lock(cell);
        *ctx = AuditContext::new(name, id, role, ctx.source.clone(), ctx.request_id.clone());
    });
}

/// The caller of the request being served, as the services record it: what [`identify`] set, or
/// `anonymous` outside a recorded request. Clones share the "written" flag with the gateway's copy.
pub(crate) fn current_actor() -> AuditContext {
    CURRENT
        .try_with(|cell| lock(cell).clone())
        .unwrap_or_else(|_| AuditContext::new(ANONYMOUS, "", "", "", ""))
}

/// The acting principal of a request, handed to the service call explicitly.
#[derive(Clone, Debug)]
pub(crate) struct Actor(pub(crate) AuditContext);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Infallible;

    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Actor, Infallible> {
        Ok(Actor(current_actor()))
    }
}

fn outcome_of(status: StatusCode) -> Outcome {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Outcome::Denied,
        s if s.is_client_error() || s.is_server_error() => Outcome::Failure,
        _ => Outcome::Success,
    }
}

fn lock(cell: &Mutex<AuditContext>) -> MutexGuard<'_, AuditContext> {
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The user name of a login attempt. Only this field is decoded; the password is never looked at.
#[derive(Deserialize)]
struct LoginName {
    username: String,
}

/// Reads the login body for the attempted user name and hands the body on unchanged; a body too large to
/// read is refused here, as the handler would have.
async fn login_attempt(req: Request) -> (Result<Request, Response>, String) {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, crate::api::MAX_BODY).await {
        Ok(bytes) => {
            let name = serde_json::from_slice::<LoginName>(&bytes)
                .map(|l| l.username.chars().take(MAX_NAME).collect())
                .unwrap_or_else(|_| ANONYMOUS.to_string());
            (Ok(Request::from_parts(parts, Body::from(bytes))), name)
        }
        Err(_) => {
            let refused = Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!(
                    "the request body could not be read within {} bytes",
                    crate::api::MAX_BODY
                ),
            );
            (Err(refused.into_response()), ANONYMOUS.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(outcome_of(StatusCode::UNAUTHORIZED), Outcome::Denied);
        assert_eq!(outcome_of(StatusCode::FORBIDDEN), Outcome::Denied);
        assert_eq!(outcome_of(StatusCode::BAD_REQUEST), Outcome::Failure);
        assert_eq!(outcome_of(StatusCode::CONFLICT), Outcome::Failure);
        assert_eq!(
            outcome_of(StatusCode::SERVICE_UNAVAILABLE),
            Outcome::Failure
        );
        assert_eq!(outcome_of(StatusCode::NO_CONTENT), Outcome::Success);
    }
}
