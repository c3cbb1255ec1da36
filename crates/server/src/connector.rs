//! The connector's HTTP front-end, wire-compatible with Kyma's Connector Service (Application and Runtime
//! flows), mounted on the HTTPS listener under a configurable base (`/connector` by default):
//!
//! | route (under the base) | who | does |
//! | --- | --- | --- |
//! | `POST /v1/{kind}/tokens` | operator bearer token | a pairing token for `Application` / `RuntimeID` (+ `Group`, `Tenant`) |
//! | `GET /v1/{kind}/signingRequests/info` | pairing token | the subject to request and a CSR token in `csrUrl` |
//! | `POST /v1/{kind}/certificates` | CSR token | `{"csr"}` → the client certificate and its chain |
//! | `GET /v1/{kind}/management/info` | client certificate | identity and URLs |
//! | `POST /v1/{kind}/certificates/renewals` | client certificate | a new certificate |
//! | `POST /v1/{kind}/certificates/revocations` | client certificate, or operator with `{"hash"}` | revoke |
//! | `GET /v1/api.yaml`, `GET /v1/health` | anyone | the API description, liveness |
//!
//! Clients discover every URL after the first from the answers, so the base does not break them. Tokens
//! travel in the query (`?token=`) or a `Connector-Token` header; the request log and the audit trail
//! record the path only, never the query. Errors are Kyma's `{"code": <status>, "error": "<message>"}`,
//! mapped from the service's error classes through the one REST mapping (`problem.rs`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use shedu_core::{CertificateInfo, ClientIdentity, ConnectorIssued, ConnectorKind};

use crate::AppState;
use crate::mtls::ClientCertificate;
use crate::problem::Problem;

/// The base [`crate::permissions::CONNECTOR_ROUTES`] declares the routes under; a configured base maps to it.
pub(crate) const DECLARED_BASE: &str = "/connector";

/// A CSR, even RSA-4096, is a few KiB; JSON and base64 add a half.
const MAX_BODY: usize = 64 * 1024;

/// The API description served at `/v1/api.yaml`.
const API_YAML: &str = include_str!("connector/api.yaml");

/// Every route: (method, path under the base, handler). The router is built from this table, and a test
/// checks each entry against the permission table.
fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::POST, "/v1/{kind}/tokens", post(token)),
        (
            Method::GET,
            "/v1/{kind}/signingRequests/info",
            get(csr_info),
        ),
        (Method::POST, "/v1/{kind}/certificates", post(sign)),
        (
            Method::GET,
            "/v1/{kind}/management/info",
            get(management_info),
        ),
        (
            Method::POST,
            "/v1/{kind}/certificates/renewals",
            post(renew),
        ),
        (
            Method::POST,
            "/v1/{kind}/certificates/revocations",
            post(revoke),
        ),
        (Method::GET, "/v1/api.yaml", get(api_yaml)),
        (Method::GET, "/v1/health", get(health)),
    ]
}

/// The connector's router, mounted under `base`, with the audit layer (state-changing calls are recorded
/// like API calls).
pub(crate) fn router(state: AppState, base: &str) -> Router<AppState> {
    let mut inner = Router::new();
    for (method, path, handler) in routes() {
        // Another method on a known route: 405 in Kyma's form, with the `Allow` header RFC 9110 asks for.
        let allow = method.to_string();
        let handler = handler.fallback(move || async move {
            let mut response = kyma(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("this route answers {allow} only"),
            )
            .into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&allow) {
                response
                    .headers_mut()
                    .insert(axum::http::header::ALLOW, value);
            }
            response
        });
        inner = inner.route(path, handler);
    }
    let inner = inner
        .fallback(|| async { kyma(StatusCode::NOT_FOUND, "no such connector route") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::audit::layer,
        ));
    Router::new().nest(base, inner)
}

/// The parts of a request the connector looks at.
struct Call {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    client: Option<ClientCertificate>,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Call, Response> {
        let (parts, body) = req.into_parts();
        let client = parts.extensions.get::<ClientCertificate>().cloned();
        let (method, uri, headers) = (
            parts.method.clone(),
            parts.uri.clone(),
            parts.headers.clone(),
        );
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|r| kyma(r.status(), &r.body_text()).into_response())?;
        Ok(Call {
            method,
            uri,
            headers,
            client,
            body,
        })
    }
}

impl Call {
    /// The token from `?token=` or the `Connector-Token` header.
    fn token(&self) -> Result<String, Kyma> {
        let from_query = self.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "token")
                .map(|(_, v)| v.to_string())
        });
        from_query
            .or_else(|| header_text(&self.headers, "connector-token"))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                kyma(
                    StatusCode::FORBIDDEN,
                    "a token is required (?token= or Connector-Token)",
                )
            })
    }

    /// The verified client certificate's leaf.
    fn certificate(&self) -> Result<&[u8], Kyma> {
        self.client
            .as_ref()
            .and_then(ClientCertificate::leaf)
            .ok_or_else(|| {
                kyma(
                    StatusCode::FORBIDDEN,
                    "this call is authenticated by the client certificate the connector issued",
                )
            })
    }

    /// The connector's public URL, base included: `X-Forwarded-Host` (with `X-Forwarded-Proto` and
    /// `X-Forwarded-Prefix`) from a proxy in front, else the configured URL, else this request's host. The
    /// headers only shape the URLs answered to the same caller, so they are taken from anyone.
    fn public_base(&self, state: &AppState) -> String {
        let config = state.services.connector.config();
        if let Some(host) = header_text(&self.headers, "x-forwarded-host") {
            let proto = header_text(&self.headers, "x-forwarded-proto").unwrap_or("https".into());
            let prefix = header_text(&self.headers, "x-forwarded-prefix")
                .unwrap_or(config.base_path.clone());
            let host = host
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            return format!("{proto}://{host}{}", prefix.trim_end_matches('/'));
        }
        if let Some(url) = &config.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = crate::listen::request_authority(&self.uri, &self.headers)
            .unwrap_or_else(|| "localhost".into());
        format!("https://{host}{}", config.base_path)
    }

    /// The JSON body, or Kyma's 400.
    fn json(&self) -> Result<Value, Kyma> {
        serde_json::from_slice(&self.body).map_err(|e| {
            kyma(
                StatusCode::BAD_REQUEST,
                &format!("the body is not valid JSON: {e}"),
            )
        })
    }

    /// The CSR of `{"csr": "<base64 of PEM or DER>"}`.
    fn csr(&self) -> Result<Vec<u8>, Kyma> {
        let body = self.json()?;
        let text = body.get("csr").and_then(Value::as_str).ok_or_else(|| {
            kyma(
                StatusCode::BAD_REQUEST,
                "the body must be {\"csr\": \"<base64 CSR>\"}",
            )
        })?;
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        STANDARD.decode(compact).map_err(|_| {
            kyma(
                StatusCode::BAD_REQUEST,
                "csr must be base64 (of a PEM or DER CSR)",
            )
        })
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn kind_of(word: &str) -> Result<ConnectorKind, Kyma> {
    ConnectorKind::parse(word).ok_or_else(|| {
        kyma(
            StatusCode::NOT_FOUND,
            "the kind is applications or runtimes",
        )
    })
}

async fn token(State(state): State<AppState>, Path(kind): Path<String>, call: Call) -> Response {
    respond(token_inner(&state, &kind, &call).await)
}

async fn token_inner(state: &AppState, kind: &str, call: &Call) -> Result<Response, Kyma> {
    let kind = kind_of(kind)?;
    operator(state, call, "/v1/{kind}/tokens").await?;
    let name_header = match kind {
        ConnectorKind::Application => "application",
        ConnectorKind::Runtime => "runtimeid",
    };
    let name = header_text(&call.headers, name_header).ok_or_else(|| {
        kyma(
            StatusCode::BAD_REQUEST,
            &format!(
                "the {} header names the client",
                match kind {
                    ConnectorKind::Application => "Application",
                    ConnectorKind::Runtime => "RuntimeID",
                }
            ),
        )
    })?;
    let identity = ClientIdentity {
        kind,
        name,
        group: header_text(&call.headers, "group"),
        tenant: header_text(&call.headers, "tenant"),
    };
    let actor = crate::audit::current_actor();
    let issued = state
        .services
        .connector
        .issue_token(&actor, identity)
        .await
        .map_err(error)?;
    let url = format!(
        "{}/v1/{}/signingRequests/info?token={}",
        call.public_base(state),
        kind.as_str(),
        issued.token.as_str()
    );
    Ok(no_store(
        StatusCode::CREATED,
        json!({ "token": issued.token.as_str(), "url": url }),
    ))
}

async fn csr_info(State(state): State<AppState>, Path(kind): Path<String>, call: Call) -> Response {
    respond(csr_info_inner(&state, &kind, &call).await)
}

async fn csr_info_inner(state: &AppState, kind: &str, call: &Call) -> Result<Response, Kyma> {
    let kind = kind_of(kind)?;
    let token = call.token()?;
    let actor = crate::audit::current_actor();
    let info = state
        .services
        .connector
        .csr_info(&actor, kind, &token)
        .await
        .map_err(error)?;
    let base = call.public_base(state);
    let k = kind.as_str();
    let mut api = json!({
        "infoUrl": format!("{base}/v1/{k}/management/info"),
        "certificatesUrl": format!("{base}/v1/{k}/certificates"),
    });
    if let Some(gateway) = gateway_urls(state, &info.identity) {
        merge(&mut api, gateway);
    }
    Ok(no_store(
        StatusCode::OK,
        json!({
            "csrUrl": format!("{base}/v1/{k}/certificates?token={}", info.csr_token.token.as_str()),
            "api": api,
            "certificate": certificate_json(&info.certificate),
        }),
    ))
}

async fn sign(State(state): State<AppState>, Path(kind): Path<String>, call: Call) -> Response {
    respond(sign_inner(&state, &kind, &call).await)
}

async fn sign_inner(state: &AppState, kind: &str, call: &Call) -> Result<Response, Kyma> {
    let kind = kind_of(kind)?;
    let token = call.token()?;
    let csr = call.csr()?;
    let actor = crate::audit::current_actor();
    let issued = state
        .services
        .connector
        .sign(&actor, kind, &token, &csr)
        .await
        .map_err(error)?;
    Ok(certificates(&issued))
}

async fn management_info(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    call: Call,
) -> Response {
    respond(management_info_inner(&state, &kind, &call).await)
}

async fn management_info_inner(
    state: &AppState,
    kind: &str,
    call: &Call,
) -> Result<Response, Kyma> {
    let kind = kind_of(kind)?;
    let der = call.certificate()?;
    let info = state
        .services
        .connector
        .management_info(kind, der)
        .await
        .map_err(error)?;
    let base = call.public_base(state);
    let k = kind.as_str();
    let mut urls = json!({
        "renewCertUrl": format!("{base}/v1/{k}/certificates/renewals"),
        "revokeCertUrl": format!("{base}/v1/{k}/certificates/revocations"),
    });
    if let Some(gateway) = gateway_urls(state, &info.identity) {
        merge(&mut urls, gateway);
    }
    let id = &info.identity;
    let mut identity = json!({ "group": id.group, "tenant": id.tenant });
    let key = match kind {
        ConnectorKind::Application => "application",
        ConnectorKind::Runtime => "runtimeId",
    };
    identity[key] = json!(id.name);
    Ok(no_store(
        StatusCode::OK,
        json!({
            "clientIdentity": identity,
            "urls": urls,
            "certificate": certificate_json(&info.certificate),
        }),
    ))
}

async fn renew(State(state): State<AppState>, Path(kind): Path<String>, call: Call) -> Response {
    respond(renew_inner(&state, &kind, &call).await)
}

async fn renew_inner(state: &AppState, kind: &str, call: &Call) -> Result<Response, Kyma> {
    let kind = kind_of(kind)?;
    let der = call.certificate()?;
    let csr = call.csr()?;
    identify_client(call);
    let actor = crate::audit::current_actor();
    let issued = state
        .services
        .connector
        .renew(&actor, kind, der, &csr)
        .await
        .map_err(error)?;
    Ok(certificates(&issued))
}

async fn revoke(State(state): State<AppState>, Path(kind): Path<String>, call: Call) -> Response {
    respond(revoke_inner(&state, &kind, &call).await)
}

/// With a bearer token: the internal API, `{"hash"}` (key name case-insensitive). Without: the holder
/// revokes the certificate it presents.
async fn revoke_inner(state: &AppState, kind: &str, call: &Call) -> Result<Response, Kyma> {
    let kind = kind_of(kind)?;
    let connector = &state.services.connector;
    if call.headers.contains_key(header::AUTHORIZATION) {
        operator(state, call, "/v1/{kind}/certificates/revocations").await?;
        let body = call.json()?;
        let hash = body
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("hash")))
            .and_then(|(_, v)| v.as_str())
            .ok_or_else(|| {
                kyma(
                    StatusCode::BAD_REQUEST,
                    "the body must be {\"hash\": \"<sha256 hex>\"}",
                )
            })?;
        let actor = crate::audit::current_actor();
        connector
            .revoke_by_hash(&actor, kind, hash)
            .await
            .map_err(error)?;
    } else {
        let der = call.certificate()?;
        identify_client(call);
        let actor = crate::audit::current_actor();
        connector
            .revoke_presented(&actor, kind, der)
            .await
            .map_err(error)?;
    }
    Ok(StatusCode::CREATED.into_response())
}

async fn api_yaml() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], API_YAML).into_response()
}

async fn health() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

/// The operator's bearer token, checked against the permission table under [`DECLARED_BASE`].
async fn operator(state: &AppState, call: &Call, route: &str) -> Result<(), Kyma> {
    if !call.headers.contains_key(header::AUTHORIZATION) {
        return Err(kyma(
            StatusCode::UNAUTHORIZED,
            "the internal API needs Authorization: Bearer <operator or admin token>",
        ));
    }
    let declared = format!("{DECLARED_BASE}{route}");
    crate::auth::authorize(state, &call.headers, None, None, &call.method, &declared)
        .await
        .map(|_| ())
        .map_err(from_problem)
}

/// Names the certificate holder as the audit principal (the service still checks the certificate).
fn identify_client(call: &Call) {
    if let Some(der) = call.client.as_ref().and_then(ClientCertificate::leaf) {
        crate::audit::identify(&shedu_core::Principal {
            id: format!("cert:{}", shedu_pki::fingerprint_sha256(der)),
            name: shedu_pki::CertInfo::from_der(der)
                .map(|i| i.subject)
                .unwrap_or_default(),
            role: shedu_core::Role::Device,
            kind: shedu_core::PrincipalKind::Certificate,
        });
    }
}

/// The Application Gateway URLs of an application, when a gateway URL is configured.
fn gateway_urls(state: &AppState, identity: &ClientIdentity) -> Option<Value> {
    let gateway = state.services.connector.config().gateway_url.as_ref()?;
    if identity.kind != ConnectorKind::Application {
        return None;
    }
    let app = format!("{}/{}", gateway.trim_end_matches('/'), identity.name);
    Some(json!({
        "eventsUrl": format!("{app}/v1/events"),
        "eventsInfoUrl": format!("{app}/v1/events/subscribed"),
        "metadataUrl": format!("{app}/v1/metadata/services"),
    }))
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn certificate_json(c: &CertificateInfo) -> Value {
    json!({
        "subject": c.subject,
        "extensions": c.extensions,
        "key-algorithm": c.key_algorithm,
    })
}

/// Kyma's certificate answer: base64 of the PEM chain (leaf first), of the leaf, of the CA chain.
fn certificates(issued: &ConnectorIssued) -> Response {
    let leaf = shedu_core::Issuance::pem(&issued.issued.certificate);
    let chain = &issued.issued.chain_pem;
    no_store(
        StatusCode::CREATED,
        json!({
            "crt": STANDARD.encode(format!("{leaf}{chain}")),
            "clientCrt": STANDARD.encode(&leaf),
            "caCrt": STANDARD.encode(chain),
        }),
    )
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

fn respond(r: Result<Response, Kyma>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// An error in Kyma's form, `{"code": <status>, "error": "<message>"}`.
#[derive(Debug)]
struct Kyma {
    status: StatusCode,
    message: String,
}

impl IntoResponse for Kyma {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.status.as_u16(), "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

fn kyma(status: StatusCode, message: &str) -> Kyma {
    Kyma {
        status,
        message: message.to_string(),
    }
}

fn from_problem(p: Problem) -> Kyma {
    kyma(
        StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &p.detail,
    )
}

/// A service error in Kyma's form, through the REST mapping.
fn error(e: shedu_core::Error) -> Kyma {
    from_problem(Problem::from(e))
}

#[cfg(test)]
mod tests {
    use crate::permissions::CONNECTOR_ROUTES;

    /// The router is built from [`super::routes`]; the permission table lists exactly those routes.
    #[test]
    fn the_permission_table_lists_exactly_the_connector_routes() {
        let mut built: Vec<(String, String)> = super::routes()
            .iter()
            .map(|(m, p, _)| (m.to_string(), format!("{}{p}", super::DECLARED_BASE)))
            .collect();
        built.sort();
        let mut declared: Vec<(String, String)> = CONNECTOR_ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        declared.sort();
        assert_eq!(built, declared);
    }
}
