//! OIDC bearer tokens from external identity providers (Keycloak, Auth0, …): a JWT the provider signed,
//! checked against the keys it publishes (its JWKS), becomes a [`Principal`] whose role comes from a claim.
//!
//! Design decisions, and why:
//! - **Which token is which.** [`crate::AuthService::authenticate`] asks this module first: a token that
//!   parses as a JWT whose *unverified* `iss` names a configured issuer is verified here and only here (a
//!   refusal is final, never retried as a session token); anything else takes the session-token path. The
//!   unverified `iss` only picks the verifier; it grants nothing.
//! - **Asymmetric algorithms only.** With an HMAC algorithm the verifier would use public key material as a
//!   shared secret (the RS256→HS256 confusion), so `none` and `HS*` are refused from the header, before any
//!   key is looked up, and the configuration refuses them in `algorithms`. A key verifies only the
//!   algorithms its JWK type and curve (and its `alg`, when given) allow; symmetric JWKs are ignored.
//! - **Every token names its key** (`kid`); a JWKS is not searched by trial.
//! - **The JWKS is cached per issuer** and fetched on first use, not at start-up, so a provider that is down
//!   does not keep shedu from starting. An unknown `kid` triggers one refetch (key rotation), and a cache
//!   older than an hour is refreshed so that retired keys stop working; fetches for one issuer happen one
//!   at a time and at most once per 10 s of the service clock, so a flood of random `kid`s cannot hammer
//!   the provider. A failed fetch keeps the keys already cached.
//! - **One answer for every refusal**: `Error::Unauthenticated` with a generic detail (the reason is logged
//!   at debug level, never the token). That includes a valid token that names no shedu role: core has no
//!   "forbidden" class, and such a token authenticates no shedu principal, so the API answers 401.
//! - **Roles are never stored**: every request takes the role from the token it carries, so a change at
//!   the provider applies as soon as the provider issues a new token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use crate::{Error, Principal, PrincipalKind, Role};

/// The algorithms an issuer accepts unless its configuration narrows them.
const DEFAULT_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];
/// At most one JWKS fetch per issuer in this many seconds (service clock).
const REFETCH_INTERVAL: i64 = 10;
/// Cached keys older than this are refreshed on use, so keys the provider retired stop working.
const KEYS_MAX_AGE: i64 = 3600;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS holds a handful of public keys; anything much larger is not one.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Strongest first: when a token names several shedu roles, the first one here wins.
const STRONGEST_FIRST: [Role; 3] = [Role::Admin, Role::Operator, Role::Auditor];
/// The session tokens' own issuer; an OIDC issuer of that name would capture them.
const SESSION_ISSUER: &str = "shedu";

/// One trusted identity provider.
#[derive(Clone, Debug)]
pub struct OidcIssuer {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must carry for shedu (a string, or one of an array).
    pub audience: String,
    /// Where it publishes its signing keys: `https://`, or `http://` to a loopback address.
    pub jwks_url: String,
    /// The claim naming the roles: a top-level claim of exactly this name, else a dotted path through
    /// nested objects (`realm_access.roles`). Its value is a string or an array of strings; `admin`,
    /// `operator` and `auditor` count, the strongest wins.
    pub roles_claim: String,
    /// The claim (same path rules) shown as the principal's name; `sub` when the token lacks it.
    pub username_claim: String,
    /// JWS algorithm names its tokens may use; never `HS*`.
    pub algorithms: Vec<String>,
    /// Tolerated clock difference for `exp` and `nbf`.
    pub leeway: Duration,
    /// Sign-in to the web console through this provider (authorization code with PKCE); `None`: its
    /// tokens are only accepted as bearer tokens.
    pub sign_in: Option<OidcSignIn>,
}

/// The web console's client at an identity provider: the authorization code flow with PKCE (RFC 7636,
/// `S256`). The provider's endpoints come from its discovery document
/// (`{issuer}/.well-known/openid-configuration`); the ID token it returns must pass the same checks as
/// any bearer token of this issuer, so the issuer's `audience` is this `client_id`.
#[derive(Clone)]
pub struct OidcSignIn {
    /// The client registered at the provider for the console.
    pub client_id: String,
    /// Its secret, for a confidential client (`client_secret_basic`); `None` for a public client.
    pub client_secret: Option<String>,
    /// The label of its button on the sign-in page.
    pub label: String,
}

/// Never the client secret.
impl std::fmt::Debug for OidcSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSignIn")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("label", &self.label)
            .finish()
    }
}

impl OidcIssuer {
    /// An issuer with the defaults: RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA; the name from
    /// `preferred_username`; 60 s leeway.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks_url: impl Into<String>,
        roles_claim: impl Into<String>,
    ) -> OidcIssuer {
        OidcIssuer {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: jwks_url.into(),
            roles_claim: roles_claim.into(),
            username_claim: "preferred_username".into(),
            algorithms: DEFAULT_ALGORITHMS.map(String::from).to_vec(),
            leeway: Duration::from_secs(60),
            sign_in: None,
        }
    }
}

/// Verifies the bearer JWTs of the configured issuers.
pub(crate) struct OidcVerifier {
    providers: Vec<Provider>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issuers: Vec<&str> = self.providers.iter().map(|p| p.issuer.as_str()).collect();
        f.debug_struct("OidcVerifier")
            .field("issuers", &issuers)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// Checks every issuer's configuration; `Invalid` names what to fix.
    pub(crate) fn new(issuers: Vec<OidcIssuer>) -> Result<OidcVerifier, Error> {
        let mut providers: Vec<Provider> = Vec::with_capacity(issuers.len());
        for config in issuers {
            if providers.iter().any(|p| p.issuer == config.issuer) {
                return Err(invalid_config(format!(
                    "OIDC issuer {:?} is configured twice",
                    config.issuer
                )));
            }
            providers.push(Provider::new(config)?);
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("shedu/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("OIDC HTTP client: {e}")))?;
        Ok(OidcVerifier { providers, http })
    }

    /// The principal of `token` when it is a JWT whose unverified `iss` names a configured issuer (then any
    /// failure is final); `None` when it is not such a token and belongs to another path.
    pub(crate) async fn authenticate(
        &self,
        token: &str,
        now: i64,
    ) -> Option<Result<Principal, Error>> {
        let iss = token_issuer(token)?;
        let provider = self.providers.iter().find(|p| p.issuer == iss)?;
        Some(
            provider
                .verify(&self.http, token, now)
                .await
                .map_err(|refusal| {
                    tracing::debug!(issuer = %provider.issuer, reason = %refusal, "OIDC token refused");
                    Error::Unauthenticated("the bearer token is not valid".into())
                }),
        )
    }
}

impl OidcVerifier {
    /// The providers the console signs in with: their index (stable while the configuration is) and label.
    pub(crate) fn sign_in_providers(&self) -> Vec<(usize, String)> {
        self.providers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.sign_in.as_ref().map(|s| (i, s.label.clone())))
            .collect()
    }

    fn sign_in_provider(&self, index: usize) -> Result<(&Provider, &OidcSignIn), Error> {
        self.providers
            .get(index)
            .and_then(|p| p.sign_in.as_ref().map(|s| (p, s)))
            .ok_or_else(|| Error::NotFound(format!("OIDC sign-in provider {index}")))
    }

    /// The provider's endpoints from its discovery document, each https (or http to loopback).
    async fn endpoints(&self, provider: &Provider) -> Result<Discovery, Error> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            provider.issuer.trim_end_matches('/')
        );
        let unreachable = |why: String| {
            tracing::warn!(issuer = %provider.issuer, %why, "OIDC discovery failed");
            Error::Unauthenticated(
                "the identity provider cannot be reached; try again later".into(),
            )
        };
        let parsed = reqwest::Url::parse(&url).map_err(|e| unreachable(e.to_string()))?;
        if !https_or_loopback(&parsed) {
            return Err(unreachable("the issuer is not https".into()));
        }
        let res = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unreachable(format!("HTTP {}", res.status())));
        }
        let body = crate::webhook::read_capped(res, MAX_JWKS_BYTES)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let doc: Discovery =
            serde_json::from_slice(&body).map_err(|e| unreachable(e.to_string()))?;
        if doc.issuer != provider.issuer {
            return Err(unreachable(format!(
                "the discovery document names issuer {:?}",
                doc.issuer
            )));
        }
        for endpoint in [&doc.authorization_endpoint, &doc.token_endpoint] {
            let ok = reqwest::Url::parse(endpoint).is_ok_and(|u| https_or_loopback(&u));
            if !ok {
                return Err(unreachable(format!("endpoint {endpoint:?} is not https")));
            }
        }
        Ok(doc)
    }

    /// Where the browser goes to sign in: the provider's authorization endpoint with the code flow's
    /// parameters (`state`, `nonce`, and the PKCE `code_challenge` made with `S256`).
    pub(crate) async fn authorization_url(
        &self,
        index: usize,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<String, Error> {
        let (provider, sign_in) = self.sign_in_provider(index)?;
        let doc = self.endpoints(provider).await?;
        let mut url = reqwest::Url::parse(&doc.authorization_endpoint)
            .map_err(|e| Error::Internal(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &sign_in.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Trades the authorization `code` (with the PKCE verifier) for the provider's tokens. The caller
    /// verifies the ID token like any bearer token and checks its nonce.
    pub(crate) async fn exchange_code(
        &self,
        index: usize,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<ProviderTokens, Error> {
        let answer = self
            .token_request(
                index,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", code_verifier),
                ],
            )
            .await?;
        if answer.id_token.is_none() {
            return Err(self.refused(index, "no id_token in the answer"));
        }
        Ok(answer)
    }

    /// Presents a console login's refresh token to the provider (RFC 6749 §6) and reads who the user is
    /// now: from the new ID token when the provider sends one (verified like any bearer token, and of the
    /// same `sub`), else from its userinfo endpoint with the new access token. `Unauthenticated` when the
    /// provider refuses (the login was ended there, or the user lost every shedu role).
    pub(crate) async fn refresh(
        &self,
        index: usize,
        refresh_token: &str,
        principal_id: &str,
        now: i64,
    ) -> Result<(Principal, Option<String>), Error> {
        let (provider, _) = self.sign_in_provider(index)?;
        let answer = self
            .token_request(
                index,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?;
        let principal = match &answer.id_token {
            Some(id_token) => provider.verify(&self.http, id_token, now).await,
            None => {
                let claims = self.userinfo(provider, &answer.access_token).await?;
                provider.principal(&claims)
            }
        }
        .map_err(|refusal| self.refused(index, &refusal.to_string()))?;
        if principal.id != principal_id {
            return Err(self.refused(index, "the refreshed identity is another user"));
        }
        Ok((principal, answer.refresh_token))
    }

    /// The claims of the provider's userinfo endpoint (OIDC Core §5.3) for `access_token`.
    async fn userinfo(&self, provider: &Provider, access_token: &str) -> Result<Value, Error> {
        let doc = self.endpoints(provider).await?;
        let refused = |why: String| {
            tracing::warn!(issuer = %provider.issuer, %why, "OIDC userinfo failed");
            Error::Unauthenticated("the identity provider did not confirm the sign-in".into())
        };
        let url = doc
            .userinfo_endpoint
            .ok_or_else(|| refused("the discovery document names no userinfo endpoint".into()))?;
        if !reqwest::Url::parse(&url).is_ok_and(|u| https_or_loopback(&u)) {
            return Err(refused(format!("endpoint {url:?} is not https")));
        }
        json_answer(self.http.get(&url).bearer_auth(access_token), refused).await
    }

    fn refused(&self, index: usize, why: &str) -> Error {
        let issuer = self.issuer(index).unwrap_or_default();
        tracing::warn!(%issuer, %why, "OIDC token request refused");
        Error::Unauthenticated("the identity provider did not confirm the sign-in".into())
    }

    /// A request to the provider's token endpoint with the console client's credentials: a confidential
    /// client authenticates with HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1: the one method every
    /// provider must accept, and OIDC's default), a public client names itself in the form; its answer.
    async fn token_request(
        &self,
        index: usize,
        params: &[(&str, &str)],
    ) -> Result<ProviderTokens, Error> {
        let (provider, sign_in) = self.sign_in_provider(index)?;
        let doc = self.endpoints(provider).await?;
        let refused = |why: String| self.refused(index, &why);
        // application/x-www-form-urlencoded, built with the URL serializer.
        let mut form = reqwest::Url::parse("http://form.invalid/")
            .map_err(|e| Error::Internal(e.to_string()))?;
        {
            let mut pairs = form.query_pairs_mut();
            for (name, value) in params {
                pairs.append_pair(name, value);
            }
            if sign_in.client_secret.is_none() {
                pairs.append_pair("client_id", &sign_in.client_id);
            }
        }
        let mut request = self.http.post(&doc.token_endpoint);
        if let Some(secret) = &sign_in.client_secret {
            // The id and the secret are form-encoded before they are joined (RFC 6749 §2.3.1).
            request =
                request.basic_auth(form_encode(&sign_in.client_id), Some(form_encode(secret)));
        }
        let request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.query().unwrap_or_default().to_string());
        json_answer(request, refused).await
    }

    /// The issuer of the sign-in provider `index`.
    pub(crate) fn issuer(&self, index: usize) -> Option<&str> {
        self.providers.get(index).map(|p| p.issuer.as_str())
    }
}

/// The parts of a provider's discovery document the console's sign-in uses.
#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
}

/// A token endpoint's answer (RFC 6749 §5.1, OIDC Core §3.1.3.3). Never logged.
#[derive(serde::Deserialize)]
pub(crate) struct ProviderTokens {
    /// The ID token (a code exchange always has one; a refresh may).
    pub(crate) id_token: Option<String>,
    pub(crate) access_token: String,
    /// The refresh token, when the provider issues one (a refresh may rotate it).
    pub(crate) refresh_token: Option<String>,
}

/// What [`OidcVerifier`] decides for `token` when `issuer`'s JWKS is `jwks`, without fetching anything:
/// every decoder OIDC applies to network input (the unverified `iss`, the header, the JWKS body, the
/// signature and the claims), in the order and with the checks of a real request. `None` when the token
/// is not one of `issuer`'s, as for [`OidcVerifier::authenticate`]. Used by the fuzz target and tests.
pub fn check_token_offline(
    issuer: OidcIssuer,
    jwks: &[u8],
    token: &str,
    now: i64,
) -> Result<Option<Principal>, Error> {
    let provider = Provider::new(issuer)?;
    if token_issuer(token).is_none_or(|iss| iss != provider.issuer) {
        return Ok(None);
    }
    let refused = |refusal: Refusal| {
        Error::Unauthenticated(format!("the bearer token is not valid: {refusal}"))
    };
    let (alg, kid) = provider.header(token).map_err(refused)?;
    let keys = parse_jwks(jwks).map_err(|e| Error::invalid("invalid-jwks", e))?;
    let key = keys.get(&kid).ok_or(Refusal::UnknownKey).map_err(refused)?;
    provider
        .check(token, alg, key, now)
        .map(Some)
        .map_err(refused)
}

/// The `iss` of a JWT, read without verifying anything: it only picks the verifier.
fn token_issuer(token: &str) -> Option<String> {
    jsonwebtoken::dangerous::insecure_decode_claims::<UnverifiedIssuer>(token)
        .ok()?
        .iss
}

#[derive(serde::Deserialize)]
struct UnverifiedIssuer {
    iss: Option<String>,
}

/// One issuer's checked configuration and its key cache.
struct Provider {
    sign_in: Option<OidcSignIn>,
    issuer: String,
    audience: String,
    jwks_url: reqwest::Url,
    roles_claim: String,
    username_claim: String,
    algorithms: Vec<Algorithm>,
    leeway: i64,
    keys: RwLock<Keys>,
    /// The time of the last fetch attempt. Held across a fetch, so concurrent misses wait for one fetch.
    last_fetch: Mutex<Option<i64>>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<i64>,
}

struct VerifyingKey {
    key: DecodingKey,
    /// What this key may verify: its JWK type and curve, narrowed by its `alg`.
    algorithms: Vec<Algorithm>,
}

/// Why a token was refused; logged, never shown.
#[derive(Debug)]
enum Refusal {
    Header,
    Algorithm(Algorithm),
    NoKid,
    UnknownKey,
    KeyAlgorithm(Algorithm),
    Token(jsonwebtoken::errors::ErrorKind),
    Expired,
    NotYetValid,
    NoSubject,
    NoRole,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Header => f.write_str("unreadable header or unsupported alg (e.g. none)"),
            Refusal::Algorithm(a) => write!(f, "algorithm {a:?} is not allowed"),
            Refusal::NoKid => f.write_str("the header names no kid"),
            Refusal::UnknownKey => f.write_str("no usable key with this kid in the JWKS"),
            Refusal::KeyAlgorithm(a) => write!(f, "the key with this kid does not do {a:?}"),
            Refusal::Token(kind) => write!(f, "signature or claims: {kind:?}"),
            Refusal::Expired => f.write_str("expired (exp)"),
            Refusal::NotYetValid => f.write_str("not yet valid (nbf)"),
            Refusal::NoSubject => f.write_str("no sub claim"),
            Refusal::NoRole => f.write_str("the roles claim names no shedu role"),
        }
    }
}

impl Provider {
    fn new(c: OidcIssuer) -> Result<Provider, Error> {
        if c.issuer.is_empty() || c.issuer == SESSION_ISSUER {
            return Err(invalid_config(format!(
                "OIDC issuer {:?} is not usable (empty, or shedu's own)",
                c.issuer
            )));
        }
        for (what, value) in [
            ("audience", &c.audience),
            ("roles claim", &c.roles_claim),
            ("username claim", &c.username_claim),
        ] {
            if value.trim().is_empty() {
                return Err(invalid_config(format!(
                    "OIDC issuer {:?}: the {what} is empty",
                    c.issuer
                )));
            }
        }
        let jwks_url = jwks_url(&c.issuer, &c.jwks_url)?;
        let algorithms = c
            .algorithms
            .iter()
            .map(|name| match Algorithm::from_str(name) {
                Ok(a) if a.family() != AlgorithmFamily::Hmac => Ok(a),
                _ => Err(invalid_config(format!(
                    "OIDC issuer {:?}: algorithm {name:?} is not allowed; use {}",
                    c.issuer,
                    DEFAULT_ALGORITHMS.join(", ")
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err(invalid_config(format!(
                "OIDC issuer {:?}: the algorithm list is empty",
                c.issuer
            )));
        }
        if let Some(sign_in) = &c.sign_in
            && (sign_in.client_id.trim().is_empty() || c.audience != sign_in.client_id)
        {
            return Err(invalid_config(format!(
                "OIDC issuer {:?}: console sign-in needs a client_id, and the audience must be that \
                 client_id (the console's session is the ID token)",
                c.issuer
            )));
        }
        Ok(Provider {
            sign_in: c.sign_in,
            issuer: c.issuer,
            audience: c.audience,
            jwks_url,
            roles_claim: c.roles_claim,
            username_claim: c.username_claim,
            algorithms,
            leeway: i64::try_from(c.leeway.as_secs()).unwrap_or(i64::MAX),
            keys: RwLock::new(Keys::default()),
            last_fetch: Mutex::new(None),
        })
    }

    async fn verify(
        &self,
        http: &reqwest::Client,
        token: &str,
        now: i64,
    ) -> Result<Principal, Refusal> {
        let (alg, kid) = self.header(token)?;
        let key = self.key(http, &kid, now).await?;
        self.check(token, alg, &key, now)
    }

    /// The token's algorithm and `kid`. `alg: none` does not parse as an `Algorithm`; HS* is not in the
    /// allow-list. Both end here, before any key is looked up.
    fn header(&self, token: &str) -> Result<(Algorithm, String), Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Header)?;
        if !self.algorithms.contains(&header.alg) {
            return Err(Refusal::Algorithm(header.alg));
        }
        Ok((header.alg, header.kid.ok_or(Refusal::NoKid)?))
    }

    /// The signature and the claims of `token`, whose header named `alg` and the key `key`.
    fn check(
        &self,
        token: &str,
        alg: Algorithm,
        key: &VerifyingKey,
        now: i64,
    ) -> Result<Principal, Refusal> {
        if !key.algorithms.contains(&alg) {
            return Err(Refusal::KeyAlgorithm(alg));
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // The service clock (not the wall clock) decides expiry, as for session tokens.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|e| Refusal::Token(e.into_kind()))?
            .claims;
        // RFC 7519 §4.1.4/§4.1.5: now must be before `exp` and not before `nbf`, give or take the leeway.
        let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t as i64);
        if time("exp").is_none_or(|exp| now >= exp.saturating_add(self.leeway)) {
            return Err(Refusal::Expired);
        }
        if time("nbf").is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(Refusal::NotYetValid);
        }
        self.principal(&claims)
    }

    /// The principal that verified `claims` (of an ID token, or of the userinfo endpoint) name.
    fn principal(&self, claims: &Value) -> Result<Principal, Refusal> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(Refusal::NoSubject)?;
        let role = claim_at(claims, &self.roles_claim)
            .and_then(strongest_role)
            .ok_or(Refusal::NoRole)?;
        let name = claim_at(claims, &self.username_claim)
            .and_then(Value::as_str)
            .unwrap_or(sub);
        Ok(Principal {
            id: format!("oidc:{}#{sub}", self.issuer),
            name: name.to_string(),
            role,
            kind: PrincipalKind::Oidc,
        })
    }

    /// The key named `kid`, refreshing the cache when it lacks the key or is old (within the rate limit).
    async fn key(
        &self,
        http: &reqwest::Client,
        kid: &str,
        now: i64,
    ) -> Result<Arc<VerifyingKey>, Refusal> {
        let (cached, stale) = self.cached(kid, now);
        match cached {
            Some(key) if !stale => return Ok(key),
            // Old keys keep working while another request refreshes them.
            Some(_) => {
                if let Ok(last_fetch) = self.last_fetch.try_lock() {
                    self.refresh(http, last_fetch, now).await;
                }
            }
            None => self.refresh(http, self.last_fetch.lock().await, now).await,
        }
        self.cached(kid, now).0.ok_or(Refusal::UnknownKey)
    }

    /// The cached key named `kid`, and whether the cache is due for a refresh.
    fn cached(&self, kid: &str, now: i64) -> (Option<Arc<VerifyingKey>>, bool) {
        // A poisoned lock only means a panic elsewhere while replacing the map; the map itself is whole.
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let stale = keys.fetched_at.is_none_or(|at| now - at >= KEYS_MAX_AGE);
        (keys.by_kid.get(kid).cloned(), stale)
    }

    /// Fetches the JWKS unless a fetch was attempted less than [`REFETCH_INTERVAL`] ago.
    async fn refresh(
        &self,
        http: &reqwest::Client,
        mut last_fetch: MutexGuard<'_, Option<i64>>,
        now: i64,
    ) {
        if last_fetch.is_some_and(|at| now - at < REFETCH_INTERVAL) {
            return;
        }
        *last_fetch = Some(now);
        match fetch_jwks(http, &self.jwks_url).await {
            Ok(by_kid) => {
                tracing::debug!(issuer = %self.issuer, keys = by_kid.len(), "JWKS fetched");
                let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
                *keys = Keys {
                    by_kid,
                    fetched_at: Some(now),
                };
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, url = %self.jwks_url, %error, "cannot fetch the OIDC JWKS");
            }
        }
    }
}

/// The JSON answer of a provider's endpoint to `request`; `refused(why)` for a failure (the OAuth `error`
/// code of a refusal goes into `why`, never the body).
async fn json_answer<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    refused: impl Fn(String) -> Error,
) -> Result<T, Error> {
    let res = request
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| refused(e.to_string()))?;
    let status = res.status();
    let body = crate::webhook::read_capped(res, MAX_JWKS_BYTES)
        .await
        .map_err(|e| refused(e.to_string()))?;
    if !status.is_success() {
        let error = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        return Err(refused(format!("HTTP {status} {error}")));
    }
    serde_json::from_slice(&body).map_err(|e| refused(e.to_string()))
}

/// `s` form-encoded (`application/x-www-form-urlencoded`), with the URL serializer.
fn form_encode(s: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse("http://form.invalid/") else {
        return s.to_string();
    };
    url.query_pairs_mut().append_pair("v", s);
    url.query()
        .and_then(|q| q.strip_prefix("v="))
        .unwrap_or(s)
        .to_string()
}

fn invalid_config(detail: String) -> Error {
    Error::invalid("invalid-oidc-config", detail)
}

/// Whether a token may be sent to `url`: over https, or over plain http only to a loopback address (a
/// provider on this host, tests). The rule for every OIDC URL, the server's JWKS and the CLI's login alike.
pub fn https_or_loopback(url: &reqwest::Url) -> bool {
    let loopback = match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match url.scheme() {
        "https" => true,
        "http" => loopback,
        _ => false,
    }
}

/// The JWKS URL, which must be HTTPS; plain HTTP only to a loopback address (a provider on this host, tests).
fn jwks_url(issuer: &str, url: &str) -> Result<reqwest::Url, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        invalid_config(format!(
            "OIDC issuer {issuer:?}: JWKS URL {url:?} is not a URL: {e}"
        ))
    })?;
    if !https_or_loopback(&parsed) {
        return Err(invalid_config(format!(
            "OIDC issuer {issuer:?}: the JWKS URL must be https:// (http:// only to a loopback address)"
        )));
    }
    Ok(parsed)
}

async fn fetch_jwks(
    http: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
    let res = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("HTTP {}", res.status()));
    }
    let body = crate::webhook::read_capped(res, MAX_JWKS_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    parse_jwks(&body)
}

/// A JWKS body's usable signing keys by `kid` ([`usable_keys`]); an error when it is not a JWKS.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    Ok(usable_keys(&set))
}

/// The set's signing keys by `kid`; keys without a `kid`, for encryption, symmetric or unreadable are left
/// out.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<VerifyingKey>> {
    set.keys
        .iter()
        .filter(|jwk| {
            jwk.common
                .public_key_use
                .as_ref()
                .is_none_or(|u| *u == PublicKeyUse::Signature)
        })
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let algorithms = key_algorithms(jwk);
            if algorithms.is_empty() {
                return None;
            }
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, Arc::new(VerifyingKey { key, algorithms })))
        })
        .collect()
}

/// The algorithms a JWK can verify: those of its type and curve, narrowed to its `alg` when it has one.
fn key_algorithms(jwk: &Jwk) -> Vec<Algorithm> {
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => &[],
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        // Symmetric (`oct`) keys would turn a published key into an HMAC secret.
        _ => &[],
    };
    by_type
        .iter()
        .copied()
        .filter(|a| {
            jwk.common
                .key_algorithm
                .is_none_or(|declared| declared == KeyAlgorithm::from(*a))
        })
        .collect()
}

/// The claim at `path`: a top-level claim of exactly that name (Auth0's namespaced claims are URLs with
/// dots), else the dotted path through nested objects (Keycloak's `realm_access.roles`).
fn claim_at<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    claims
        .get(path)
        .or_else(|| path.split('.').try_fold(claims, |v, step| v.get(step)))
}

/// The strongest shedu role a claim value (a string or an array of strings) names.
fn strongest_role(value: &Value) -> Option<Role> {
    let names: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    STRONGEST_FIRST
        .into_iter()
        .find(|role| names.contains(&role.as_str()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn claim_paths_walk_objects_and_prefer_an_exact_top_level_name() {
        let claims = json!({
            "realm_access": {"roles": ["operator"]},
            "roles": "auditor",
            "https://shedu.example/roles": ["admin"],
            "deep": {"a": {"b": "admin"}},
        });
        assert_eq!(
            claim_at(&claims, "realm_access.roles"),
            Some(&json!(["operator"]))
        );
        assert_eq!(claim_at(&claims, "roles"), Some(&json!("auditor")));
        assert_eq!(
            claim_at(&claims, "https://shedu.example/roles"),
            Some(&json!(["admin"]))
        );
        assert_eq!(claim_at(&claims, "deep.a.b"), Some(&json!("admin")));
        assert_eq!(claim_at(&claims, "realm_access.missing"), None);
        assert_eq!(
            claim_at(&claims, "roles.nested"),
            None,
            "a string has no members"
        );
        assert_eq!(claim_at(&claims, "groups"), None);
    }

    #[test]
    fn the_strongest_named_role_wins_and_nothing_else_counts() {
        let role = |v: Value| strongest_role(&v);
        assert_eq!(role(json!("operator")), Some(Role::Operator));
        assert_eq!(
            role(json!(["auditor", "admin", "operator"])),
            Some(Role::Admin)
        );
        assert_eq!(role(json!(["auditor", "operator"])), Some(Role::Operator));
        assert_eq!(
            role(json!(["offline_access", "auditor"])),
            Some(Role::Auditor)
        );
        assert_eq!(
            role(json!(["Admin", "ADMIN", " admin"])),
            None,
            "exact names only"
        );
        assert_eq!(
            role(json!("admin operator")),
            None,
            "one string is one role"
        );
        assert_eq!(
            role(json!(["device"])),
            None,
            "a machine role is never granted"
        );
        assert_eq!(role(json!([1, true, {"admin": true}])), None);
        assert_eq!(role(json!({"admin": true})), None);
        assert_eq!(role(json!([])), None);
    }

    #[test]
    fn keys_verify_only_what_their_type_curve_and_alg_allow() {
        let jwk = |v: Value| serde_json::from_value::<Jwk>(v).unwrap();
        let rsa = json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"});
        assert_eq!(
            key_algorithms(&jwk(rsa.clone())),
            AlgorithmFamily::Rsa.algorithms()
        );
        let mut rs256 = rsa;
        rs256["alg"] = json!("RS256");
        assert_eq!(key_algorithms(&jwk(rs256)), [Algorithm::RS256]);
        let p256 = json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
        assert_eq!(key_algorithms(&jwk(p256.clone())), [Algorithm::ES256]);
        let mut mislabelled = p256;
        mislabelled["alg"] = json!("ES384");
        assert!(key_algorithms(&jwk(mislabelled)).is_empty());
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"});
        assert_eq!(key_algorithms(&jwk(ed)), [Algorithm::EdDSA]);
        let oct = json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"});
        assert!(key_algorithms(&jwk(oct)).is_empty(), "never an HMAC key");
    }

    /// RFC 8032 §7.1 test 1 as PKCS#8, and its public key as the JWK of RFC 8037 §A.2.
    const ED25519_PKCS8: &str = "302e020100300506032b6570042204209d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const ED25519_JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    #[test]
    fn an_offline_check_takes_the_request_path() {
        let issuer = || OidcIssuer::new("https://idp", "shedu", "https://idp/jwks", "roles");
        let key = jsonwebtoken::EncodingKey::from_ed_der(&hex::decode(ED25519_PKCS8).unwrap());
        let sign = |kid: &str, claims: Value| {
            let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
            header.kid = Some(kid.into());
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        };
        let claims = json!({"iss": "https://idp", "aud": "shedu", "sub": "u1", "exp": 2000, "roles": ["operator"]});
        let check =
            |token: &str, jwks: &str| check_token_offline(issuer(), jwks.as_bytes(), token, 1000);
        let principal = check(&sign("k1", claims.clone()), ED25519_JWKS)
            .unwrap()
            .unwrap();
        assert_eq!(
            (principal.role, principal.name.as_str()),
            (Role::Operator, "u1")
        );
        // Another issuer's token is not this path's; an unknown kid, a JWKS that is not one, an expired
        // token and garbage are refusals, never panics.
        let other = json!({"iss": "https://other", "aud": "shedu", "sub": "u1", "exp": 2000});
        assert!(check(&sign("k1", other), ED25519_JWKS).unwrap().is_none());
        assert!(matches!(
            check(&sign("k2", claims.clone()), ED25519_JWKS),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            check(&sign("k1", claims), "[]"),
            Err(Error::Invalid {
                code: "invalid-jwks",
                ..
            })
        ));
        let expired =
            json!({"iss": "https://idp", "aud": "shedu", "sub": "u1", "exp": 10, "roles": "admin"});
        assert!(check(&sign("k1", expired), ED25519_JWKS).is_err());
        assert!(check("a.b.c", ED25519_JWKS).unwrap().is_none());
    }

    #[test]
    fn configuration_mistakes_are_refused() {
        let ok = || OidcIssuer::new("https://idp", "shedu", "https://idp/jwks", "roles");
        assert!(OidcVerifier::new(vec![ok()]).is_ok());
        let refused = |c: OidcIssuer| OidcVerifier::new(vec![c]).unwrap_err().to_string();
        let mut c = ok();
        c.algorithms = vec!["RS256".into(), "HS256".into()];
        assert!(refused(c).contains("\"HS256\" is not allowed"));
        let mut c = ok();
        c.algorithms = vec!["none".into()];
        assert!(refused(c).contains("\"none\" is not allowed"));
        let mut c = ok();
        c.algorithms.clear();
        assert!(refused(c).contains("empty"));
        let mut c = ok();
        c.jwks_url = "http://idp.example/jwks".into();
        assert!(refused(c).contains("https://"));
        let mut c = ok();
        c.jwks_url = "http://127.0.0.1:8080/jwks".into();
        assert!(
            OidcVerifier::new(vec![c]).is_ok(),
            "loopback may be plain HTTP"
        );
        let mut c = ok();
        c.audience = String::new();
        assert!(refused(c).contains("audience"));
        let mut c = ok();
        c.issuer = "shedu".into();
        assert!(refused(c).contains("shedu's own"));
        // Console sign-in: the session is the ID token, whose audience is the client id.
        let sign_in = |client_id: &str| OidcSignIn {
            client_id: client_id.into(),
            client_secret: None,
            label: "Sign in".into(),
        };
        let mut c = ok();
        c.sign_in = Some(sign_in("console"));
        assert!(refused(c).contains("the audience must be that client_id"));
        let mut c = ok();
        c.sign_in = Some(sign_in(""));
        c.audience = String::new();
        assert!(refused(c).contains("audience"));
        let mut c = ok();
        c.issuer = "https://idp-2".into();
        c.sign_in = Some(sign_in("shedu"));
        let verifier = OidcVerifier::new(vec![ok(), c]).unwrap();
        assert_eq!(verifier.sign_in_providers(), [(1, "Sign in".to_string())]);
        assert!(
            OidcVerifier::new(vec![ok(), ok()])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
