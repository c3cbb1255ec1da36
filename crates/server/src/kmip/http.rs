//! KMIP over the HTTPS listener, as Cosmian's KMS serves it: `POST /kmip/2_1` takes one bare operation in
//! JSON TTLV and answers its response payload (a failure is HTTP 422 with the result reason and message),
//! and `POST /kmip` takes a whole Request Message, JSON TTLV or binary TTLV by its content type, and
//! answers the Response Message in the same form (batch failures inside it, as on the TLS listener).
//!
//! Both routes sit behind the gateway like the API (`permissions::ROUTES`: users, API keys, OIDC tokens,
//! console sessions; admins and operators). The KMIP user is the principal's name, so a user `alice` and
//! a KMIP client certificate with CN `alice` own the same objects. Handlers parse, call
//! [`shedu_core::Kmip`], encode.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shedu_kmip::{ResponseMessage, result_reason, tag};

use crate::AppState;
use crate::audit::Actor;
use crate::kmip::listener::MAX_MESSAGE;

const JSON: &str = "application/json";
const BINARY: &str = "application/octet-stream";

/// Run one KMIP operation, JSON TTLV (Cosmian's `/kmip/2_1`).
///
/// The body is the operation: `{"tag": "Create", "type": "Structure", "value": [<payload items>]}`; the
/// answer is `{"tag": "CreateResponse", …}`. A failure, an unknown operation or a body that does not
/// read is HTTP 422 with `<Result Reason>: <message>` as text.
#[utoipa::path(post, path = "/kmip/2_1", tag = "kmip",
    responses((status = 200, description = "The operation's response payload, JSON TTLV"),
        (status = 413, description = "A body over 1 MiB"),
        (status = 422, description = "The operation failed: `<Result Reason>: <message>`")))]
pub(crate) async fn operation(
    State(state): State<AppState>,
    Actor(actor): Actor,
    body: Body,
) -> Response {
    let bytes = match read(body).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let (op, payload) = match shedu_kmip::operation_from_json(&bytes) {
        Ok(read) => read,
        Err(e) => return unprocessable(result_reason::INVALID_MESSAGE, &e.to_string()),
    };
    match state
        .services
        .kmip
        .process_operation(&actor, op, payload)
        .await
    {
        Ok(answer) => (
            [(header::CONTENT_TYPE, JSON)],
            shedu_kmip::operation_response_json(op, &answer).to_string(),
        )
            .into_response(),
        Err(f) => unprocessable(f.reason, &f.message),
    }
}

/// Run a KMIP Request Message, JSON TTLV (`application/json`) or binary TTLV
/// (`application/octet-stream`).
///
/// The answer is the Response Message in the request's form, failures of batch items inside it. A
/// message that does not read is HTTP 400 with an `Invalid Message` response.
#[utoipa::path(post, path = "/kmip", tag = "kmip",
    responses((status = 200, description = "The Response Message, in the request's encoding"),
        (status = 400, description = "An `Invalid Message` Response Message"),
        (status = 413, description = "A body over 1 MiB"),
        (status = 415, description = "Neither application/json nor application/octet-stream")))]
pub(crate) async fn message(
    State(state): State<AppState>,
    Actor(actor): Actor,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json = match content_type.as_str() {
        JSON => true,
        BINARY => false,
        _ => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("send the Request Message as {JSON} (JSON TTLV) or {BINARY} (binary TTLV)"),
            );
        }
    };
    let bytes = match read(body).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let kmip = &state.services.kmip;
    let decoded = if json {
        shedu_kmip::from_json_slice(&bytes)
    } else {
        shedu_kmip::decode(&bytes)
    };
    let answer = match decoded {
        Ok(item) => kmip.process(&actor, &item).await,
        Err(e) => kmip.invalid_message(None, &e.to_string()),
    };
    let status = if unreadable(&answer) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let ttlv = answer.to_ttlv();
    if json {
        let body = shedu_kmip::to_json(&ttlv).to_string();
        return (status, [(header::CONTENT_TYPE, JSON)], body).into_response();
    }
    match shedu_kmip::encode(&ttlv) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, BINARY)], bytes).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a KMIP response does not encode");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    }
}

/// The body, at most [`MAX_MESSAGE`] bytes (413 beyond).
async fn read(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_MESSAGE).await.map_err(|_| {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a KMIP message is at most {MAX_MESSAGE} bytes"),
        )
    })
}

/// Whether a response answers a message that could not be read (its one item has no operation).
fn unreadable(answer: &ResponseMessage) -> bool {
    matches!(answer.batch_items.as_slice(), [only] if only.operation.is_none()
        && only.result_reason == Some(result_reason::INVALID_MESSAGE))
}

/// A failed operation of `/kmip/2_1`: 422 with the reason's name and the message.
fn unprocessable(reason: u32, message: &str) -> Response {
    let name = shedu_kmip::enum_name(tag::RESULT_REASON, reason).unwrap_or("GeneralFailure");
    text(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("{name}: {message}"),
    )
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
