//! The HTTPS side of the client commands: where the server is, which CA to trust for its TLS, which bearer
//! token to present, and how to turn the API's RFC 7807 problem documents into one readable error line.
//! Each comes from the flags, else the chosen context (`shedu login`, `shedu context`), else the
//! `./shedu-data` defaults of a local `shedu serve`. A login session's access token is refreshed once
//! when the server answers 401, and the renewed session is saved.
//!
//! Every call returns the server's JSON as a [`serde_json::Value`] so that `--output json` can print it
//! unchanged; the table views pick the fields they need.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ClientArgs;
use super::context::{Context as Ctx, Contexts, Session};

/// The server a command talks to when neither `--url` nor a context names one.
pub(crate) const DEFAULT_URL: &str = "https://127.0.0.1:8443";

/// Where `shedu serve` keeps the admin token by default, relative to the working directory; read when no
/// token is given so that running the CLI next to a fresh `serve` needs no flags.
const DEFAULT_TOKEN_FILE: &str = "shedu-data/admin-token";

/// The internal TLS CA `shedu serve` writes by default, trusted when no `--ca-file` is given.
const DEFAULT_CA_FILE: &str = "shedu-data/tls/ca.pem";

/// How long to wait for the TCP and TLS handshake; a wrong address should fail fast, not hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound for one whole request; issuing with a large RSA CA key still fits easily.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest silence on an open event stream before it counts as broken (the server's keep-alive is 15 s).
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(45);

/// Which timeout a client gets: one for the whole request, or one per read (streams).
#[derive(Clone, Copy)]
enum Timeout {
    Request,
    Read,
}

/// A configured connection to one server. `Debug` is deliberately not derived: it would print the token.
pub(crate) struct Api {
    http: reqwest::Client,
    /// The same client without the whole-request timeout, for streams that stay open (`events tail`); a
    /// read timeout (the server sends a keep-alive every 15 s) still notices a dead connection.
    streaming: reqwest::Client,
    base: Url,
    /// The bearer token; `None` for the calls that need none (login).
    token: std::sync::Mutex<Option<String>>,
    /// The context whose login session gave the token: refreshed on a 401, and saved.
    session_of: Option<String>,
}

/// The RFC 7807 fields the error line needs.
#[derive(Deserialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    status: Option<u16>,
    detail: Option<String>,
    request_id: Option<String>,
    /// The connector answers in Kyma's form, `{"code", "error"}`.
    error: Option<String>,
    /// The secret store answers in Vault's form, `{"errors": [...]}`.
    errors: Option<Vec<String>>,
}

/// The server answered with an error status: the exit code tells a refusal (4xx) from a server error.
#[derive(Debug)]
pub(crate) struct HttpError {
    pub status: u16,
    /// The problem document's `type` (`urn:shedu:problem:device-exists`), when the answer was one.
    pub problem_type: Option<String>,
    message: String,
}

impl HttpError {
    /// Whether the answer was a problem document of this type (its last `:`-separated word, so
    /// `device-exists` matches `urn:shedu:problem:device-exists`).
    pub(crate) fn is(&self, code: &str) -> bool {
        self.problem_type
            .as_deref()
            .is_some_and(|t| t == code || t.rsplit(':').next() == Some(code))
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

impl Api {
    /// Resolves the URL, token and trust anchors from the options, else the chosen context, else the
    /// `./shedu-data` defaults. A context's credentials go only to its own URL: with a `--url` naming
    /// another server, they are not sent there.
    pub(crate) fn new(args: &ClientArgs) -> anyhow::Result<Api> {
        let contexts = Contexts::load()?;
        let picked = contexts.pick(args.context.as_deref())?;
        let ctx = picked
            .as_ref()
            .map(|(_, c)| *c)
            .filter(|c| args.url.as_ref().is_none_or(|u| same_server(u, &c.url)));
        let url = args
            .url
            .clone()
            .or_else(|| ctx.map(|c| c.url.clone()))
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let ca = args
            .ca_file
            .clone()
            .or_else(|| ctx.and_then(|c| c.ca_file.clone()));
        let explicit = args.token.is_some() || args.token_file.is_some();
        let (token, session_of) = match ctx {
            Some(Ctx {
                session: Some(s), ..
            }) if !explicit => (
                s.token.clone(),
                picked.as_ref().map(|(name, _)| name.clone()),
            ),
            Some(Ctx {
                token_file: Some(f),
                ..
            }) if !explicit => (read_token_file(f)?, None),
            _ => (resolve_token(args)?, None),
        };
        let mut api = Api::anonymous(&url, ca)?;
        api.token = std::sync::Mutex::new(Some(token));
        api.session_of = session_of;
        Ok(api)
    }

    /// A connection to `url` that presents no token, trusting `ca_file` (else `./shedu-data/tls/ca.pem`
    /// when it exists, else the system roots).
    pub(crate) fn anonymous(url: &str, ca_file: Option<PathBuf>) -> anyhow::Result<Api> {
        let base = base_url(url)?;
        let trusted = match ca_file.or_else(default_ca_file) {
            Some(path) => Some(read_ca_file(&path)?),
            None => None,
        };
        let client = |timeout: Timeout| {
            let builder = reqwest::Client::builder()
                .user_agent(concat!("shedu-cli/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(CONNECT_TIMEOUT);
            let mut builder = match timeout {
                Timeout::Request => builder.timeout(REQUEST_TIMEOUT),
                Timeout::Read => builder.read_timeout(STREAM_READ_TIMEOUT),
            };
            if let Some(certs) = &trusted {
                // A CA file names exactly whom to trust: the system roots are left out, so a server
                // presenting a publicly trusted but unexpected certificate is refused.
                builder = builder.tls_certs_only(certs.clone());
            }
            builder.build().context("cannot set up the HTTPS client")
        };
        Ok(Api {
            http: client(Timeout::Request)?,
            streaming: client(Timeout::Read)?,
            base,
            token: std::sync::Mutex::new(None),
            session_of: None,
        })
    }

    /// The server's base URL, as the context stores it.
    pub(crate) fn base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// `GET` a path under the base URL, with optional query parameters (empty values are left out).
    pub(crate) async fn get(
        &self,
        path: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let mut url = self.url(path)?;
        let pairs: Vec<_> = query.iter().filter(|(_, v)| !v.is_empty()).collect();
        if !pairs.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        self.send(Method::GET, url, &[], None::<&()>).await
    }

    /// `GET` a path with `token` as the bearer token, whatever this connection's own is.
    pub(crate) async fn get_with_token(&self, path: &[&str], token: &str) -> anyhow::Result<Value> {
        let url = self.url(path)?;
        let where_ = format!("GET {}", shown(&url));
        let (status, bytes) = self
            .send_once(&Method::GET, &url, &[], None::<&()>, &where_, Some(token))
            .await?;
        answer(status, &bytes, &where_)
    }

    /// `POST` a JSON body to a path under the base URL.
    pub(crate) async fn post<B: Serialize>(
        &self,
        path: &[&str],
        body: &B,
    ) -> anyhow::Result<Value> {
        let url = self.url(path)?;
        self.send(Method::POST, url, &[], Some(body)).await
    }

    /// `POST` to a path under the base URL with extra request headers (the connector's token call takes
    /// its parameters as headers, as Kyma's does) and an optional JSON body.
    pub(crate) async fn post_with_headers<B: Serialize>(
        &self,
        path: &[&str],
        headers: &[(&str, &str)],
        body: Option<&B>,
    ) -> anyhow::Result<Value> {
        let url = self.url(path)?;
        self.send(Method::POST, url, headers, body).await
    }

    /// `PUT` a JSON body to a path under the base URL.
    pub(crate) async fn put<B: Serialize>(&self, path: &[&str], body: &B) -> anyhow::Result<Value> {
        let url = self.url(path)?;
        self.send(Method::PUT, url, &[], Some(body)).await
    }

    /// `PATCH` a JSON body to a path under the base URL.
    pub(crate) async fn patch<B: Serialize>(
        &self,
        path: &[&str],
        body: &B,
    ) -> anyhow::Result<Value> {
        let url = self.url(path)?;
        self.send(Method::PATCH, url, &[], Some(body)).await
    }

    /// `DELETE` a path under the base URL; `Value::Null` for an empty answer (204).
    pub(crate) async fn delete(&self, path: &[&str]) -> anyhow::Result<Value> {
        self.delete_with_query(path, &[]).await
    }

    /// `DELETE` a path under the base URL with query parameters.
    pub(crate) async fn delete_with_query(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        let mut url = self.url(path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(Method::DELETE, url, &[], None::<&()>).await
    }

    /// Opens a Server-Sent Events stream (`GET`, `Accept: text/event-stream`), resuming after
    /// `last_event_id` when given; returns the response once the server has accepted it, or the error
    /// line of its refusal. A login session is renewed once on a 401, as for the other calls.
    pub(crate) async fn open_stream(
        &self,
        path: &[&str],
        last_event_id: Option<i64>,
    ) -> anyhow::Result<reqwest::Response> {
        let url = self.url(path)?;
        let where_ = format!("GET {}", shown(&url));
        let mut renewed = false;
        loop {
            let mut req = self
                .streaming
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "text/event-stream");
            if let Some(token) = self.token.lock().ok().and_then(|t| t.clone()) {
                req = req.bearer_auth(token);
            }
            if let Some(id) = last_event_id {
                req = req.header("last-event-id", id.to_string());
            }
            let res = req
                .send()
                .await
                .map_err(|e| anyhow::Error::new(e.without_url()))
                .with_context(|| format!("cannot reach the server ({where_})"))?;
            let status = res.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                && !renewed
                && let Some(context) = &self.session_of
                && self.refresh(context).await?
            {
                renewed = true;
                continue;
            }
            if !status.is_success() {
                let body = res.bytes().await.unwrap_or_default();
                return Err(problem_error(status, &body, &where_));
            }
            return Ok(res);
        }
    }

    /// The base URL with `path` appended segment by segment, so ids and serials are escaped.
    fn url(&self, path: &[&str]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("{} cannot be used as a base URL", shown(&self.base)))?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        body: Option<&B>,
    ) -> anyhow::Result<Value> {
        let where_ = format!("{method} {}", shown(&url));
        let (mut status, mut bytes) = self
            .send_once(&method, &url, headers, body, &where_, None)
            .await?;
        if status == reqwest::StatusCode::UNAUTHORIZED
            && let Some(context) = &self.session_of
            && self.refresh(context).await?
        {
            (status, bytes) = self
                .send_once(&method, &url, headers, body, &where_, None)
                .await?;
        }
        answer(status, &bytes, &where_)
    }

    async fn send_once<B: Serialize>(
        &self,
        method: &Method,
        url: &Url,
        headers: &[(&str, &str)],
        body: Option<&B>,
        where_: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let token = match token {
            Some(t) => Some(t.to_string()),
            None => self.token.lock().ok().and_then(|t| t.clone()),
        };
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => {
                let e = anyhow::Error::new(e.without_url());
                // rustls reports an untrusted server certificate deep in the chain; say what to do.
                let hint = if format!("{e:#}").contains("invalid peer certificate") {
                    "; if the server uses its internal TLS CA, pass <data-dir>/tls/ca.pem with --ca-file"
                } else {
                    ""
                };
                return Err(e.context(format!("cannot reach the server ({where_}){hint}")));
            }
        };
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| anyhow::Error::new(e.without_url()))
            .with_context(|| format!("the response to {where_} was cut off"))?;
        Ok((status, bytes.to_vec()))
    }

    /// Renews the login session of `context` with its refresh token and saves the new one; false when
    /// the login has ended (then the 401 stands, and its message says to log in again).
    async fn refresh(&self, context: &str) -> anyhow::Result<bool> {
        let mut contexts = Contexts::load()?;
        let Some(session) = contexts
            .contexts
            .get(context)
            .and_then(|c| c.session.clone())
        else {
            return Ok(false);
        };
        if let Some(oidc) = &session.oidc {
            let Some(renewed) = super::oidc::refresh(&session, oidc).await? else {
                return Ok(false);
            };
            return self.keep(&mut contexts, context, renewed);
        }
        let url = self.url(&["api", "v1", "auth", "refresh"])?;
        let body = serde_json::json!({ "refresh_token": session.refresh_token });
        let res = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e.without_url()))
            .context("cannot reach the server to renew the login session")?;
        if !res.status().is_success() {
            return Ok(false);
        }
        let renewed: Value = res.json().await.context("renewing the login session")?;
        let session = session_from(&session.user, &renewed)?;
        self.keep(&mut contexts, context, session)
    }

    /// Uses `session`'s token from now on and saves it in `context`.
    fn keep(
        &self,
        contexts: &mut Contexts,
        context: &str,
        session: Session,
    ) -> anyhow::Result<bool> {
        if let Ok(mut token) = self.token.lock() {
            *token = Some(session.token.clone());
        }
        if let Some(c) = contexts.contexts.get_mut(context) {
            c.session = Some(session);
            contexts.save()?;
        }
        Ok(true)
    }
}

/// A successful answer's JSON (`Value::Null` when it has no body: 204), or the error line of a refusal.
fn answer(status: reqwest::StatusCode, bytes: &[u8], where_: &str) -> anyhow::Result<Value> {
    if !status.is_success() {
        return Err(problem_error(status, bytes, where_));
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .with_context(|| format!("the response to {where_} is not JSON (HTTP {status})"))
}

/// The session in a login or refresh answer.
pub(crate) fn session_from(user: &str, answer: &Value) -> anyhow::Result<Session> {
    let field = |name: &str| {
        answer[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the server's session has no {name}"))
    };
    Ok(Session {
        user: user.to_string(),
        token: field("token")?,
        refresh_token: field("refresh_token")?,
        expires_at: field("expires_at")?,
        oidc: None,
    })
}

/// Whether two URLs name the same server (scheme, host and port; the `/api/v1` suffix aside).
fn same_server(a: &str, b: &str) -> bool {
    match (base_url(a), base_url(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin() && a.path() == b.path(),
        _ => false,
    }
}

/// `detail (HTTP status title, type, request id)` from a problem document; a short excerpt of anything
/// else (a proxy's HTML page, say), so the user sees what actually answered.
fn problem_error(status: reqwest::StatusCode, body: &[u8], where_: &str) -> anyhow::Error {
    let mut problem_type = None;
    let message = if let Ok(p) = serde_json::from_slice::<Problem>(body) {
        let code = p.status.unwrap_or(status.as_u16());
        let title = p.title.filter(|t| !t.is_empty());
        let detail = p
            .detail
            .filter(|d| !d.is_empty())
            .or(p.error)
            .or(p.errors.map(|e| e.join("; ")).filter(|e| !e.is_empty()))
            .or(title.clone())
            .unwrap_or_else(|| status.to_string());
        // The title names the kind (`Conflict`): beside the status, unless it is all there is.
        let title = title
            .filter(|t| *t != detail)
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let request = p
            .request_id
            .map(|id| format!(", request {id}"))
            .unwrap_or_default();
        problem_type = p.kind.clone();
        match p.kind {
            Some(kind) => format!("{detail} (HTTP {code}{title}, {kind}{request})"),
            None => format!("{detail} (HTTP {code}{title}{request})"),
        }
    } else {
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text.trim().chars().take(200).collect();
        if excerpt.is_empty() {
            format!("{where_} failed with HTTP {status}")
        } else {
            format!("{where_} failed with HTTP {status}: {excerpt}")
        }
    };
    anyhow::Error::new(HttpError {
        status: status.as_u16(),
        problem_type,
        message,
    })
}

/// Parses `--url`, accepting the `…/api/v1` form `shedu serve` prints as well as the bare origin.
fn base_url(text: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(text.trim()).with_context(|| format!("invalid --url {text:?}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        bail!("--url must start with https:// (got {})", shown(&url));
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--url must not have a query or fragment");
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/api/v1").unwrap_or(path).to_string();
    url.set_path(&path);
    Ok(url)
}

/// A URL for messages, without any user name or password it may carry.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    // Both setters only fail for URLs that cannot have credentials, which then have none to hide.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// `--token`, else `--token-file`, else `./shedu-data/admin-token`.
fn resolve_token(args: &ClientArgs) -> anyhow::Result<String> {
    if let Some(t) = &args.token {
        return check_token(t, "--token");
    }
    match &args.token_file {
        Some(p) => read_token_file(p),
        None if Path::new(DEFAULT_TOKEN_FILE).is_file() => {
            read_token_file(Path::new(DEFAULT_TOKEN_FILE))
        }
        None => bail!("not logged in: use `shedu login`, --token-file, --token or SHEDU_TOKEN"),
    }
}

/// The token a file holds.
pub(crate) fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    check_token(&text, &path.display().to_string())
}

/// A token without its surrounding white space, checked so that a stray character gives a clear message
/// instead of an opaque header error; the message names where the token came from, never the token.
fn check_token(token: &str, source: &str) -> anyhow::Result<String> {
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("the token from {source} is empty");
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        bail!("the token from {source} contains characters that cannot go in an HTTP header");
    }
    Ok(token)
}

/// `./shedu-data/tls/ca.pem` when it exists.
fn default_ca_file() -> Option<PathBuf> {
    let p = PathBuf::from(DEFAULT_CA_FILE);
    p.is_file().then_some(p)
}

fn read_ca_file(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the CA file {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test reports failure
mod tests {
    use super::*;

    #[test]
    fn base_url_accepts_the_printed_api_url() {
        let u = base_url("https://127.0.0.1:8443/api/v1/").unwrap();
        assert_eq!(u.as_str(), "https://127.0.0.1:8443/");
        let u = base_url("https://example.org/pki").unwrap();
        assert_eq!(u.as_str(), "https://example.org/pki");
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("not a url").is_err());
    }

    #[test]
    fn problem_documents_become_one_line() {
        let body = br#"{"type":"urn:shedu:problem:already-revoked","title":"Conflict","status":409,
            "detail":"certificate 1a is already revoked","request_id":"r1"}"#;
        let e = problem_error(reqwest::StatusCode::CONFLICT, body, "POST x");
        assert_eq!(
            e.to_string(),
            "certificate 1a is already revoked (HTTP 409 Conflict, urn:shedu:problem:already-revoked, request r1)"
        );
        let e = problem_error(
            reqwest::StatusCode::BAD_GATEWAY,
            b"<html>bad</html>",
            "GET y",
        );
        assert_eq!(
            e.to_string(),
            "GET y failed with HTTP 502 Bad Gateway: <html>bad</html>"
        );
    }

    #[test]
    fn shown_urls_hide_credentials() {
        let u = Url::parse("https://me:secret@example.org/x").unwrap();
        assert_eq!(shown(&u), "https://example.org/x");
    }
}
