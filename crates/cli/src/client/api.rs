//! The HTTPS side of the client commands: where the server is, which CA to trust for its TLS, which bearer
//! token to present, and how to turn the API's RFC 7807 problem documents into one readable error line.
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

/// Where `shedu serve` keeps the admin token by default, relative to the working directory; read when no
/// token is given so that running the CLI next to a fresh `serve` needs no flags.
const DEFAULT_TOKEN_FILE: &str = "shedu-data/admin-token";

/// The internal TLS CA `shedu serve` writes by default, trusted when no `--ca-file` is given.
const DEFAULT_CA_FILE: &str = "shedu-data/tls/ca.pem";

/// How long to wait for the TCP and TLS handshake; a wrong address should fail fast, not hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound for one whole request; issuing with a large RSA CA key still fits easily.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A configured connection to one server. `Debug` is deliberately not derived: it would print the token.
pub(crate) struct Api {
    http: reqwest::Client,
    base: Url,
    token: String,
}

/// The RFC 7807 fields the error line needs.
#[derive(Deserialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    status: Option<u16>,
    detail: Option<String>,
}

impl Api {
    /// Resolves the URL, token and trust anchors from the options (and the `./shedu-data` defaults).
    pub(crate) fn new(args: &ClientArgs) -> anyhow::Result<Api> {
        let base = base_url(&args.url)?;
        let token = resolve_token(args)?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("shedu-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        if let Some(path) = ca_file(args) {
            // A CA file names exactly whom to trust: the system roots are left out, so a server presenting
            // a publicly trusted but unexpected certificate is refused.
            builder = builder.tls_certs_only(read_ca_file(&path)?);
        }
        let http = builder.build().context("cannot set up the HTTPS client")?;
        Ok(Api { http, base, token })
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
        self.send(Method::GET, url, None::<&()>).await
    }

    /// `POST` a JSON body to a path under the base URL.
    pub(crate) async fn post<B: Serialize>(
        &self,
        path: &[&str],
        body: &B,
    ) -> anyhow::Result<Value> {
        let url = self.url(path)?;
        self.send(Method::POST, url, Some(body)).await
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
        body: Option<&B>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            req = req.json(body);
        }
        let where_ = format!("{method} {}", shown(&url));
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
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("the response to {where_} is not JSON (HTTP {status})"));
        }
        Err(problem_error(status, &bytes, &where_))
    }
}

/// `detail (HTTP status, type)` from a problem document; a short excerpt of anything else (a proxy's HTML
/// page, say), so the user sees what actually answered.
fn problem_error(status: reqwest::StatusCode, body: &[u8], where_: &str) -> anyhow::Error {
    if let Ok(p) = serde_json::from_slice::<Problem>(body) {
        let code = p.status.unwrap_or(status.as_u16());
        let detail = p
            .detail
            .filter(|d| !d.is_empty())
            .or(p.title)
            .unwrap_or_else(|| status.to_string());
        return match p.kind {
            Some(kind) => anyhow!("{detail} (HTTP {code}, {kind})"),
            None => anyhow!("{detail} (HTTP {code})"),
        };
    }
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text.trim().chars().take(200).collect();
    if excerpt.is_empty() {
        anyhow!("{where_} failed with HTTP {status}")
    } else {
        anyhow!("{where_} failed with HTTP {status}: {excerpt}")
    }
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
    let (token, source) = if let Some(t) = &args.token {
        (t.clone(), "--token".to_string())
    } else {
        let path = match &args.token_file {
            Some(p) => p.clone(),
            None if Path::new(DEFAULT_TOKEN_FILE).is_file() => PathBuf::from(DEFAULT_TOKEN_FILE),
            None => bail!("no token: use --token, --token-file or SHEDU_TOKEN"),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        (text, path.display().to_string())
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("the token from {source} is empty");
    }
    // Checked here so a stray character gives a clear message instead of an opaque header error; the
    // message names where the token came from, never the token.
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        bail!("the token from {source} contains characters that cannot go in an HTTP header");
    }
    Ok(token)
}

/// `--ca-file`, else `./shedu-data/tls/ca.pem` when it exists, else none (system roots).
fn ca_file(args: &ClientArgs) -> Option<PathBuf> {
    args.ca_file.clone().or_else(|| {
        let p = PathBuf::from(DEFAULT_CA_FILE);
        p.is_file().then_some(p)
    })
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
            "certificate 1a is already revoked (HTTP 409, urn:shedu:problem:already-revoked)"
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
