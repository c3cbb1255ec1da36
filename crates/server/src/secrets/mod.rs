//! The secret store's HTTP front-end: a subset of the Vault/OpenBao HTTP API under `/v1/` on the HTTPS
//! listener, so that existing clients (`bao`, `vault`, hvac, the Go and Java SDKs) work unchanged.
//!
//! | path under `/v1/` | methods | does |
//! | --- | --- | --- |
//! | `{mount}/data/{path}` | GET (`?version=`), POST/PUT (`options.cas`), PATCH (merge patch), DELETE | a version |
//! | `{mount}/metadata/{path}` | GET, LIST (or `GET ?list=true`), POST/PUT, DELETE | versions, settings, listing |
//! | `{mount}/delete\|undelete\|destroy/{path}` | POST/PUT `{"versions": [..]}` | change versions |
//! | `{mount}/config` | GET | the mount's settings |
//! | `sys/internal/ui/mounts/{path}` | GET | the mount of a path, `options.version: "2"` (the CLI asks it first) |
//! | `sys/health`, `sys/seal-status`, `sys/leader` | GET | unauthenticated status (no HA: one node) |
//! | `sys/policies/acl/{name}`, `sys/policy/{name}` | GET, PUT/POST, DELETE, LIST | ACL policies (JSON form) |
//! | `auth/token/create`, `…/lookup-self`, `…/renew-self`, `…/revoke-self` | | tokens |
//!
//! The token travels in `X-Vault-Token` or `Authorization: Bearer`. A credential of the platform's own API
//! with the admin role (bootstrap token, session, API key) is also accepted and acts as root here: that is
//! how the first secret-store token is made (`auth/token/create` with the admin's bearer token).
//!
//! Answers use Vault's envelope (`request_id`, `lease_id`, `renewable`, `lease_duration`, `data`, `auth`,
//! `warnings`, `wrap_info`) and its error form `{"errors": [..]}`: 404 with an empty list for a missing
//! path, 403 `permission denied` for a missing, unknown or insufficient token, 400 for bad input and a
//! failed check-and-set, 204 where Vault answers without a body. The service's error classes are mapped
//! through the one REST mapping (`problem.rs`), so statuses agree with the rest of the API. Values never
//! reach a log line: the request log and the audit trail record the path only.

mod kv;
pub(crate) mod socket;
mod sys;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};
use shedu_core::{Role, SecretCaller};

use crate::AppState;
use crate::problem::Problem;

/// A value is at most 512 KiB sealed; JSON escaping adds some.
const MAX_BODY: usize = 1024 * 1024;

/// The secret store's router: every `/v1/` path goes to one dispatcher (Vault's paths are hierarchical
/// and its clients use the `LIST` method, which a route table cannot name), under the audit layer.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/{*rest}", any(dispatch))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::audit::layer,
        ))
}

/// One parsed request.
pub(crate) struct Call {
    pub(crate) method: Method,
    /// The path under `/v1/`, percent-decoding left to the router (Vault paths are plain).
    pub(crate) path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Call, Response> {
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path()
            .strip_prefix("/v1/")
            .unwrap_or_default()
            .to_string();
        let query = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (method, headers) = (parts.method.clone(), parts.headers.clone());
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|r| errors(r.status(), &[r.body_text()]).into_response())?;
        Ok(Call {
            method,
            path,
            query,
            headers,
            body,
        })
    }
}

impl Call {
    fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a listing: the `LIST` method, or `GET ?list=true`.
    fn is_list(&self) -> bool {
        self.method.as_str() == "LIST"
            || (self.method == Method::GET
                && matches!(self.query("list"), Some("true") | Some("1")))
    }

    /// The JSON object body (`{}` when empty), or Vault's 400.
    fn json(&self) -> Result<Map<String, Value>, Refusal> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(bad_request("the body must be a JSON object")),
            Err(e) => Err(bad_request(&format!("failed to parse JSON input: {e}"))),
        }
    }

    /// The token from `X-Vault-Token` or `Authorization: Bearer`.
    fn token(&self) -> Option<String> {
        let header = |name: &str| {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        header("x-vault-token")
            .or_else(|| {
                header("authorization").and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
            })
            .map(str::to_string)
    }
}

async fn dispatch(State(state): State<AppState>, call: Call) -> Response {
    match route(&state, &call).await {
        Ok(r) => r,
        Err(refusal) => refusal.into_response(),
    }
}

async fn route(state: &AppState, call: &Call) -> Result<Response, Refusal> {
    let path = call.path.as_str();
    match path {
        "sys/health" => return Ok(sys::health(state, call)),
        "sys/seal-status" => return Ok(sys::seal_status(state)),
        "sys/leader" => return Ok(sys::leader()),
        _ => {}
    }
    let caller = authenticate(state, call).await?;
    if let Some(rest) = path.strip_prefix("auth/token/") {
        return sys::token(state, call, &caller, rest).await;
    }
    if let Some(rest) = path.strip_prefix("sys/internal/ui/mounts/") {
        return sys::ui_mount(state, call, rest);
    }
    for base in ["sys/policies/acl", "sys/policy"] {
        if let Some(rest) = path.strip_prefix(base)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return sys::policy(state, call, &caller, rest.trim_start_matches('/')).await;
        }
    }
    let (mount, rest) = path.split_once('/').unwrap_or((path, ""));
    if state.services.secrets.is_mount(mount) {
        return kv::route(state, call, &caller, mount, rest).await;
    }
    Err(errors(
        StatusCode::NOT_FOUND,
        &[format!("no handler for route {path:?}")],
    ))
}

/// The caller: a secret-store token, or an admin credential of the platform's API (root here). Anything
/// else is Vault's 403.
async fn authenticate(state: &AppState, call: &Call) -> Result<SecretCaller, Refusal> {
    let token = call.token().ok_or_else(permission_denied)?;
    let secrets = &state.services.secrets;
    let caller = match secrets.authenticate(&token).await {
        Ok(caller) => caller,
        Err(shedu_core::Error::Unauthenticated(_)) => {
            match crate::auth::authenticate(state, Some(&token)).await {
                Ok(p) if p.role == Role::Admin => {
                    crate::audit::identify(&p);
                    return Ok(SecretCaller::platform_admin(&p.name));
                }
                _ => return Err(permission_denied()),
            }
        }
        Err(e) => return Err(error(e)),
    };
    let accessor = caller
        .token
        .as_ref()
        .map(|t| t.accessor.clone())
        .unwrap_or_default();
    crate::audit::identify_as(&caller.audit_name(), &accessor, "secret-token");
    Ok(caller)
}

/// Vault's envelope around `data`.
pub(crate) fn envelope(data: Value) -> Value {
    json!({
        "request_id": crate::request_id::current().unwrap_or_default(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    })
}

/// A JSON answer; never cached (it may carry a secret or a token).
pub(crate) fn answer(status: StatusCode, body: Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Vault's 204.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A refusal in Vault's error form, `{"errors": [..]}`.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    messages: Vec<String>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        answer(self.status, json!({ "errors": self.messages }))
    }
}

/// Vault's error form.
pub(crate) fn errors(status: StatusCode, messages: &[String]) -> Refusal {
    Refusal {
        status,
        messages: messages.to_vec(),
    }
}

pub(crate) fn bad_request(message: &str) -> Refusal {
    errors(StatusCode::BAD_REQUEST, &[message.to_string()])
}

pub(crate) fn permission_denied() -> Refusal {
    errors(StatusCode::FORBIDDEN, &["permission denied".to_string()])
}

/// A service error in Vault's form: a missing thing is 404 with no message, as Vault answers; a token
/// that does not authenticate is 403 `permission denied`; the rest keep the REST mapping's status and
/// detail.
pub(crate) fn error(e: shedu_core::Error) -> Refusal {
    match e {
        shedu_core::Error::NotFound(_) => errors(StatusCode::NOT_FOUND, &[]),
        shedu_core::Error::Unauthenticated(_) => permission_denied(),
        other => {
            let p = Problem::from(other);
            let status =
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            errors(status, &[p.detail])
        }
    }
}

/// RFC 3339 with nanoseconds, as Vault writes times; `""` for none.
pub(crate) fn time_text(secs: Option<i64>) -> String {
    use time::format_description::well_known::Rfc3339;
    secs.and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A Vault duration: a number of seconds, or Go's form (`90s`, `15m`, `1h30m`, `2d` is accepted too).
pub(crate) fn duration(value: &Value) -> Result<Option<i64>, Refusal> {
    let bad = || {
        bad_request(&format!(
            "{value} is not a duration (seconds, or like 1h30m)"
        ))
    };
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(bad),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => {
            if let Ok(n) = s.parse::<i64>() {
                return if n >= 0 { Ok(Some(n)) } else { Err(bad()) };
            }
            let mut total: i64 = 0;
            let mut digits = String::new();
            for c in s.chars() {
                if c.is_ascii_digit() {
                    digits.push(c);
                    continue;
                }
                let unit = match c {
                    's' => 1,
                    'm' => 60,
                    'h' => 3600,
                    'd' => 86_400,
                    _ => return Err(bad()),
                };
                let n: i64 = digits.parse().map_err(|_| bad())?;
                total = n
                    .checked_mul(unit)
                    .and_then(|v| total.checked_add(v))
                    .ok_or_else(bad)?;
                digits.clear();
            }
            if digits.is_empty() {
                Ok(Some(total))
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

/// Version numbers given as numbers or strings (`{"versions": ["2", 3]}`).
pub(crate) fn versions(body: &Map<String, Value>) -> Result<Vec<i64>, Refusal> {
    let list = match body.get("versions") {
        Some(Value::Array(list)) => list,
        Some(Value::String(s)) => {
            return s
                .split(',')
                .map(|v| v.trim().parse::<i64>().map_err(|_| bad_versions()))
                .collect();
        }
        _ => return Err(bad_versions()),
    };
    if list.is_empty() || list.len() > 1000 {
        return Err(bad_versions());
    }
    list.iter()
        .map(|v| match v {
            Value::Number(n) => n.as_i64().ok_or_else(bad_versions),
            Value::String(s) => s.trim().parse().map_err(|_| bad_versions()),
            _ => Err(bad_versions()),
        })
        .collect()
}

fn bad_versions() -> Refusal {
    bad_request("no version number provided")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_vault_forms() {
        assert_eq!(duration(&json!(30)).ok(), Some(Some(30)));
        assert_eq!(duration(&json!("45")).ok(), Some(Some(45)));
        assert_eq!(duration(&json!("1h30m")).ok(), Some(Some(5400)));
        assert_eq!(duration(&json!("2d")).ok(), Some(Some(172_800)));
        assert_eq!(duration(&json!(null)).ok(), Some(None));
        for bad in [json!("1x"), json!("h"), json!(-1), json!("5m3"), json!([1])] {
            assert!(duration(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_as_numbers_or_strings() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(
            versions(&body(json!({"versions": ["2", 3]}))).ok(),
            Some(vec![2, 3])
        );
        assert!(versions(&body(json!({"versions": []}))).is_err());
        assert!(versions(&body(json!({}))).is_err());
        assert!(versions(&body(json!({"versions": [true]}))).is_err());
    }
}
