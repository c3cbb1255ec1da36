//! `shedu login --oidc`: the OAuth 2.0 Device Authorization Grant (RFC 8628) against the identity provider
//! the platform trusts. The CLI asks the provider for a device code, shows the user where to approve it (a
//! browser on any machine), polls the token endpoint at the pace the provider sets, and presents the
//! provider's ID token (or access token) to shedu as a bearer JWT. The refresh token renews it at the
//! provider when shedu answers 401, as a password login's session renews at shedu.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::Session;

/// How long one call to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);

/// Which of the provider's tokens shedu is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenKind {
    /// The ID token (its `aud` is the client id; what kubectl's OIDC login presents).
    #[default]
    Id,
    /// The access token, when the provider issues it as a JWT with shedu's audience.
    Access,
}

/// What a login session needs to renew itself at the provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcSession {
    pub token_endpoint: String,
    pub client_id: String,
    pub token_kind: TokenKind,
}

/// The provider's discovery document (the fields used here).
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
}

/// RFC 8628 §3.2.
#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

/// A token response (RFC 6749 §5.1), or its error (§5.2).
#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// An HTTP client for the provider (every URL it is given passes [`check_url`]).
fn provider_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("shedu-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .context("cannot set up the HTTPS client for the identity provider")
}

/// `url` parsed, when a token may be sent there: https, or http to a loopback address only (a token must
/// not cross a network in the clear; the server's rule for JWKS URLs, `shedu_core::https_or_loopback`).
fn check_url(url: &str, what: &str) -> anyhow::Result<Url> {
    let parsed = Url::parse(url).with_context(|| format!("{what} {url:?} is not a URL"))?;
    if !shedu_core::https_or_loopback(&parsed) {
        bail!("{what} {url:?} must be https (http only to a loopback address)");
    }
    Ok(parsed)
}

/// Logs in with the device flow; returns the session (its `user` is filled in by the caller, from shedu's
/// `whoami`).
pub(crate) async fn device_login(
    issuer: &str,
    client_id: &str,
    scope: &str,
    token_kind: TokenKind,
) -> anyhow::Result<Session> {
    let http = provider_client()?;
    let issuer = issuer.trim_end_matches('/');
    let discovery_url = check_url(
        &format!("{issuer}/.well-known/openid-configuration"),
        "the issuer",
    )?;
    let discovery: Discovery = http
        .get(discovery_url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| anyhow::Error::new(e.without_url()))
        .context("cannot read the provider's discovery document")?
        .json()
        .await
        .context("the provider's discovery document is not valid")?;
    if discovery.issuer.trim_end_matches('/') != issuer {
        bail!(
            "the discovery document names the issuer {:?}, not {issuer:?}",
            discovery.issuer
        );
    }
    let Some(device_endpoint) = discovery.device_authorization_endpoint else {
        bail!(
            "the provider does not offer the device authorization grant (RFC 8628); use a password or --token-file"
        );
    };
    let device_endpoint = check_url(&device_endpoint, "the device authorization endpoint")?;
    let token_endpoint = check_url(&discovery.token_endpoint, "the token endpoint")?;
    let grant: DeviceAuthorization = http
        .post(device_endpoint)
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| anyhow::Error::new(e.without_url()))
        .context("the provider refused the device authorization request")?
        .json()
        .await
        .context("the provider's device authorization answer is not valid")?;
    match &grant.verification_uri_complete {
        Some(complete) => eprintln!(
            "To log in, open {complete}\n(or open {} and enter the code {})",
            grant.verification_uri, grant.user_code
        ),
        None => eprintln!(
            "To log in, open {} and enter the code {}",
            grant.verification_uri, grant.user_code
        ),
    }
    let mut interval = Duration::from_secs(grant.interval.unwrap_or(5).max(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(grant.expires_in.min(3600));
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", grant.device_code.as_str()),
        ("client_id", client_id),
    ];
    loop {
        if tokio::time::Instant::now() >= deadline {
            bail!("the code expired before it was approved; run shedu login --oidc again");
        }
        tokio::time::sleep(interval).await;
        let answer = token_call(&http, &token_endpoint, &form).await?;
        match answer.error.as_deref() {
            None => {
                let oidc = OidcSession {
                    token_endpoint: token_endpoint.to_string(),
                    client_id: client_id.to_string(),
                    token_kind,
                };
                return to_session(answer, None, oidc);
            }
            Some("authorization_pending") => {}
            // RFC 8628 §3.5: slow down by 5 seconds, for this and every later poll.
            Some("slow_down") => interval += Duration::from_secs(5),
            Some("access_denied") => bail!("the login was denied at the identity provider"),
            Some("expired_token") => {
                bail!("the code expired before it was approved; run shedu login --oidc again")
            }
            Some(other) => bail!(
                "the identity provider refused the login: {other}{}",
                describe(&answer)
            ),
        }
    }
}

/// Renews `session` at the provider with its refresh token; `None` when the provider refuses (the login
/// has ended: log in again).
pub(crate) async fn refresh(
    session: &Session,
    oidc: &OidcSession,
) -> anyhow::Result<Option<Session>> {
    let http = provider_client()?;
    let endpoint = check_url(&oidc.token_endpoint, "the token endpoint")?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", session.refresh_token.as_str()),
        ("client_id", oidc.client_id.as_str()),
    ];
    let answer = token_call(&http, &endpoint, &form).await?;
    if answer.error.is_some() {
        return Ok(None);
    }
    let mut renewed = to_session(answer, Some(&session.refresh_token), oidc.clone())?;
    renewed.user = session.user.clone();
    Ok(Some(renewed))
}

async fn token_call(
    http: &reqwest::Client,
    endpoint: &Url,
    form: &[(&str, &str)],
) -> anyhow::Result<TokenAnswer> {
    let res = http
        .post(endpoint.clone())
        .form(form)
        .send()
        .await
        .map_err(|e| anyhow::Error::new(e.without_url()))
        .context("cannot reach the identity provider's token endpoint")?;
    let status = res.status();
    let body: Value = res
        .json()
        .await
        .with_context(|| format!("the token endpoint answered HTTP {status} without JSON"))?;
    serde_json::from_value(body).context("the token endpoint's answer is not valid")
}

fn describe(answer: &TokenAnswer) -> String {
    answer
        .error_description
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// The session of a token answer; a refresh may omit the refresh token (then the old one stays).
fn to_session(
    answer: TokenAnswer,
    old_refresh: Option<&str>,
    oidc: OidcSession,
) -> anyhow::Result<Session> {
    let token = match oidc.token_kind {
        TokenKind::Id => answer.id_token,
        TokenKind::Access => answer.access_token,
    }
    .ok_or_else(|| {
        anyhow!(
            "the identity provider's answer has no {:?} token",
            oidc.token_kind
        )
    })?;
    let refresh_token = answer
        .refresh_token
        .or_else(|| old_refresh.map(str::to_string))
        .ok_or_else(|| {
            anyhow!(
                "the identity provider gave no refresh token (ask for the offline_access scope)"
            )
        })?;
    let expires_at = answer
        .expires_in
        .and_then(|s| {
            let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(s);
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into());
    Ok(Session {
        user: String::new(),
        token,
        refresh_token,
        expires_at,
        oidc: Some(oidc),
    })
}
