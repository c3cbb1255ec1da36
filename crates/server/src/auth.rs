//! Authentication. Today one principal source, the bootstrap admin bearer token; the [`Principal`] and
//! [`Role`] types are what users, API keys and OIDC tokens will produce too.

use std::fmt;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
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

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Who (for logs and, later, the audit trail).
    pub name: String,
    /// What they may do.
    pub role: Role,
}

/// Middleware for `/api/`: every call needs a valid bearer token, checked before any handler runs.
pub(crate) async fn require_principal(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        None => Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send Authorization: Bearer <token>",
        )
        .into_response(),
        Some(token) if state.admin_token.matches(token) => {
            req.extensions_mut().insert(Principal {
                name: "bootstrap-admin".into(),
                role: Role::Admin,
            });
            next.run(req).await
        }
        Some(_) => Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            "the bearer token is not valid",
        )
        .into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "authentication required",
            )
        })
    }
}
