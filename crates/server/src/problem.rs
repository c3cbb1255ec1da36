//! RFC 7807 (RFC 9457) problem documents: the only error form of the REST API.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An `application/problem+json` document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:shedu:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this instance and what to do about it.
    pub detail: String,
    /// The request id, to find the request in logs and the audit trail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A header that goes with the document (not in the body).
    #[serde(skip)]
    pub header: Option<ProblemHeader>,
}

/// The one header a problem may add to its response.
#[derive(Debug)]
pub enum ProblemHeader {
    /// `Retry-After`: seconds to wait before trying again (429, 503).
    RetryAfter(u64),
    /// `Allow`: the methods the route answers (405).
    Allow(Box<str>),
}

impl Problem {
    /// A problem with a stable `code`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:shedu:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: crate::request_id::current(),
            header: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, Json(&self)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        match &self.header {
            Some(ProblemHeader::RetryAfter(seconds)) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(*seconds));
            }
            Some(ProblemHeader::Allow(methods)) => {
                if let Ok(v) = header::HeaderValue::from_str(methods) {
                    res.headers_mut().insert(header::ALLOW, v);
                }
            }
            None => {}
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

/// The one mapping from service errors to HTTP. 5xx details stay in the log, not the response.
impl From<shedu_core::Error> for Problem {
    fn from(e: shedu_core::Error) -> Problem {
        use shedu_core::Error as E;
        match e {
            E::Invalid { code, detail } => Problem::new(StatusCode::BAD_REQUEST, code, detail),
            E::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{what} not found"),
            ),
            E::Conflict { code, detail } => Problem::new(StatusCode::CONFLICT, code, detail),
            E::Forbidden { code, detail } => Problem::new(StatusCode::FORBIDDEN, code, detail),
            E::Unavailable(source) => {
                tracing::error!(error = %source, source = ?std::error::Error::source(&source), "storage unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is unavailable; nothing was changed",
                )
            }
            E::Unauthenticated(detail) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
            }
            E::RateLimited {
                detail,
                retry_after,
            } => Problem {
                header: Some(ProblemHeader::RetryAfter(retry_after)),
                ..Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", detail)
            },
            E::KeyUnavailable(detail) => {
                tracing::error!(%detail, "CA key unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ca-key-unavailable",
                    detail,
                )
            }
            E::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
            other => {
                tracing::error!(error = %other, "unclassified error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

/// `Json` whose rejections are problem documents (bad syntax 400, wrong content type 415, too large 413).
#[derive(Debug, FromRequest)]
#[from_request(via(Json), rejection(Problem))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Problem {
        let code = match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            _ => "invalid-json",
        };
        Problem::new(r.status(), code, r.body_text())
    }
}

/// `Query` whose rejections are problem documents (400 `invalid-query`, naming the parameter), not text.
#[derive(Debug, FromRequestParts)]
#[from_request(via(Query), rejection(Problem))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-query", r.body_text())
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
