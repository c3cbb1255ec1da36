//! ACME (RFC 8555) per RA: the rules behind every ACME request. The wire format (JWS, JWK, JSON objects,
//! problem types) is `shedu-acme`'s; the HTTP edge (`server::acme`) builds URLs, decodes bodies and
//! encodes answers. Here: nonces (single use; on PostgreSQL stored and valid on every replica, on SQLite
//! kept in memory: [`nonces`]), who signed a request (`kid` or `jwk`), accounts (by key thumbprint, with
//! external account binding), orders and their authorizations, validation from the server (http-01),
//! finalization through [`Issuance`] (the one issuance path: profile, audit, `certificate.issued` event,
//! group commit), revocation through [`Issuance::revoke`], and renewal information (RFC 9773).
//!
//! Validation and finalization run inside the client's request: the answer a client polls for is ready
//! when the POST returns, so clients never wait for a background task and a crash leaves nothing half
//! done but an order in `processing` (see the module doc of `docs/acme.md`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shedu_acme::types::{Identifier, NewAccount, NewOrder};
use shedu_acme::{Jwk, Jws, KeyRef, ProblemType};
use shedu_pki::{CertInfo, Csr, RevocationReason, Serial, is_signed_by, pem_encode_cert};
use shedu_store::{
    AcmeAccountRow, AcmeAuthzRow, AcmeCounted, AcmeEabRow, AcmeOrderRow, AcmeRateCheck,
    RateRefusal, RateWindow,
};

use self::nonces::Nonces;
use crate::cluster::Remembered;
use crate::error::store_err;
use crate::events::{EventKind, event};
use crate::ra::{Enrollment, Ra};
use crate::registry::{Registry, new_id};
use crate::{AuditAction, AuditContext, Error, Issuance, IssueInput};

mod nonces;

/// Largest http-01 answer read (a key authorization is about 90 octets).
const HTTP01_MAX_BODY: usize = 1024;

/// The challenge types shedu can validate.
pub const ACME_CHALLENGES: [&str; 3] = ["http-01", "dns-01", "tls-alpn-01"];

/// RFC 8737 §6.2: the ALPN protocol of tls-alpn-01 validation handshakes.
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// An RA's ACME settings (part of the RA's stored settings document; serde is that storage encoding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeSettings {
    /// Whether the RA has an ACME directory.
    pub enabled: bool,
    /// Whether newAccount needs an external account binding.
    pub eab_required: bool,
    /// Whether an EAB key may bind more than one account (single-use when false).
    #[serde(default)]
    pub eab_reusable: bool,
    /// Offered challenge types (`http-01`, `dns-01`, `tls-alpn-01`; wildcards need `dns-01`, IP
    /// addresses `http-01` or `tls-alpn-01`).
    pub challenges: Vec<String>,
    /// DNS name patterns an order may name: `example.com` (exactly), `*.example.com` (any name below),
    /// `*` (any name).
    pub allowed_dns: Vec<String>,
    /// IP ranges an order may name (CIDR), RFC 8738.
    pub allowed_ips: Vec<String>,
    /// Profile name → CA id (one of the RA's CAs, which issues under its profile).
    pub profiles: BTreeMap<String, String>,
    /// The profile of an order that names none; the RA's default CA when unset.
    pub default_profile: Option<String>,
    /// Seconds an order stays open.
    pub order_lifetime_secs: i64,
    /// Seconds an authorization stays valid.
    pub authz_lifetime_secs: i64,
    /// The terms of service URL shown in the directory.
    pub terms_of_service: Option<String>,
    /// Whether a new order reuses the account's valid authorizations for the same identifiers (validated
    /// through a challenge type still offered), so that it is `ready` at once.
    #[serde(default = "reuse_by_default")]
    pub authz_reuse: bool,
    /// Limits on new orders and accounts (none by default).
    #[serde(default)]
    pub rate_limits: AcmeRateLimits,
}

fn reuse_by_default() -> bool {
    true
}

/// At most `count` in any `window_secs` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// How many.
    pub count: u32,
    /// The sliding window, seconds.
    pub window_secs: i64,
}

/// An RA's limits on new ACME orders and accounts; an unset limit does not apply. Counted from the stored
/// rows inside the transaction that writes the new one, under a lock row per counted set, so every replica
/// on one database counts the same and requests racing at a limit pass exactly as many as it allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeRateLimits {
    /// New orders per account.
    #[serde(default)]
    pub orders_per_account: Option<RateLimit>,
    /// New orders naming an identifier, over all the RA's accounts (a wildcard counts as its base name).
    #[serde(default)]
    pub orders_per_identifier: Option<RateLimit>,
    /// New accounts per client address.
    #[serde(default)]
    pub accounts_per_address: Option<RateLimit>,
    /// Failed validations per account and identifier: at the limit, the account's new orders naming the
    /// identifier are refused until the oldest failure leaves the window.
    #[serde(default)]
    pub failed_validations: Option<RateLimit>,
}

impl AcmeRateLimits {
    fn all(&self) -> [Option<RateLimit>; 4] {
        [
            self.orders_per_account,
            self.orders_per_identifier,
            self.accounts_per_address,
            self.failed_validations,
        ]
    }
}

impl Default for AcmeSettings {
    fn default() -> AcmeSettings {
        AcmeSettings {
            enabled: true,
            eab_required: false,
            eab_reusable: false,
            challenges: vec!["http-01".into()],
            allowed_dns: vec!["*".into()],
            allowed_ips: Vec::new(),
            profiles: BTreeMap::new(),
            default_profile: None,
            order_lifetime_secs: 24 * 3600,
            authz_lifetime_secs: 24 * 3600,
            terms_of_service: None,
            authz_reuse: true,
            rate_limits: AcmeRateLimits::default(),
        }
    }
}

/// Checks an RA's ACME settings against the RA's CAs.
pub(crate) fn validate_settings(s: &AcmeSettings, ca_ids: &[String]) -> Result<(), Error> {
    let bad = |detail: String| Error::invalid("invalid-acme-settings", detail);
    if s.challenges.is_empty() {
        return Err(bad(
            "acme.challenges needs at least one challenge type".into()
        ));
    }
    for c in &s.challenges {
        if !ACME_CHALLENGES.contains(&c.as_str()) {
            return Err(bad(format!(
                "challenge type {c:?} is not supported (supported: {})",
                ACME_CHALLENGES.join(", ")
            )));
        }
    }
    for (name, ca) in &s.profiles {
        if name.is_empty() || !ca_ids.contains(ca) {
            return Err(bad(format!(
                "profile {name:?} names CA {ca}, which is not one of the RA's"
            )));
        }
    }
    if let Some(p) = &s.default_profile
        && !s.profiles.contains_key(p)
    {
        return Err(bad(format!(
            "default_profile {p:?} is not among acme.profiles"
        )));
    }
    for ip in &s.allowed_ips {
        ip.parse::<crate::Cidr>()
            .map_err(|e| bad(format!("acme.allowed_ips: {e}")))?;
    }
    if !(60..=30 * 86_400).contains(&s.order_lifetime_secs)
        || !(60..=30 * 86_400).contains(&s.authz_lifetime_secs)
    {
        return Err(bad("lifetimes are 60 seconds to 30 days".into()));
    }
    if s.rate_limits
        .all()
        .iter()
        .flatten()
        .any(|l| l.count == 0 || !(1..=30 * 86_400).contains(&l.window_secs))
    {
        return Err(bad(
            "a rate limit allows at least 1 in a window of 1 second to 30 days".into(),
        ));
    }
    Ok(())
}

/// Where and how long the server looks for challenge answers (configurable for tests).
#[derive(Clone, Debug)]
pub struct AcmeConfig {
    /// Port of http-01 requests (80; `--acme-http01-port`).
    pub http01_port: u16,
    /// Port of tls-alpn-01 handshakes (443; `--acme-tlsalpn01-port`).
    pub tlsalpn01_port: u16,
    /// Time allowed for one validation.
    pub validation_timeout: Duration,
    /// Seconds a nonce stays valid.
    pub nonce_lifetime_secs: i64,
    /// The DNS server dns-01 look-ups ask (`--acme-dns-resolver`); the system's resolvers when unset.
    pub dns_resolver: Option<SocketAddr>,
}

impl Default for AcmeConfig {
    fn default() -> AcmeConfig {
        AcmeConfig {
            http01_port: 80,
            tlsalpn01_port: 443,
            validation_timeout: Duration::from_secs(10),
            nonce_lifetime_secs: 3600,
            dns_resolver: None,
        }
    }
}

/// Why an ACME request failed: a protocol problem the client reads, or a service error the edge maps.
#[derive(Debug, thiserror::Error)]
pub enum AcmeFailure {
    /// An ACME problem (`badNonce`, `badCSR`, …).
    #[error(transparent)]
    Protocol(#[from] shedu_acme::Error),
    /// Anything else (not found, storage down, internal).
    #[error(transparent)]
    Service(#[from] Error),
}

fn problem(kind: ProblemType, detail: impl Into<String>) -> AcmeFailure {
    AcmeFailure::Protocol(shedu_acme::Error::new(kind, detail))
}

type Result<T, E = AcmeFailure> = std::result::Result<T, E>;

/// How the request must identify its signer (RFC 8555 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    /// `kid` (every request but these two).
    Account,
    /// `jwk` (newAccount).
    NewKey,
    /// Either (revokeCert: by account, or by the certificate's own key).
    Either,
}

/// A verified request.
#[derive(Debug)]
pub struct Authenticated {
    /// The JWS (payload and header).
    pub jws: Jws,
    /// The signing account (`kid` requests).
    pub account: Option<AcmeAccount>,
    /// The signing key.
    pub key: Jwk,
    /// The caller, for the audit records of changes this request makes.
    actor: AuditContext,
}

/// An account.
#[derive(Clone, Debug)]
pub struct AcmeAccount {
    /// Id (its URL's last segment).
    pub id: String,
    /// `valid` or `deactivated`.
    pub status: String,
    /// Contacts.
    pub contact: Vec<String>,
    /// The EAB kid it was bound with.
    pub eab_kid: Option<String>,
    key: Jwk,
}

/// An order and its authorization ids.
#[derive(Clone, Debug)]
pub struct AcmeOrder {
    /// Id.
    pub id: String,
    /// Status (`pending`, `ready`, `processing`, `valid`, `invalid`).
    pub status: String,
    /// Expiry.
    pub expires_at: i64,
    /// Identifiers as requested.
    pub identifiers: Vec<Identifier>,
    /// Authorization ids.
    pub authz_ids: Vec<String>,
    /// Profile.
    pub profile: Option<String>,
    /// The replaced certificate's ARI identifier.
    pub replaces: Option<String>,
    /// Why it is invalid.
    pub error: Option<shedu_acme::Error>,
    /// Whether a certificate can be downloaded.
    pub has_certificate: bool,
}

/// An authorization with its challenges.
#[derive(Clone, Debug)]
pub struct AcmeAuthz {
    /// Id.
    pub id: String,
    /// The identifier (without `*.`).
    pub identifier: Identifier,
    /// Whether the order asked for a wildcard.
    pub wildcard: bool,
    /// Status.
    pub status: String,
    /// Expiry.
    pub expires_at: i64,
    /// Challenges.
    pub challenges: Vec<AcmeChallenge>,
}

/// A challenge.
#[derive(Clone, Debug)]
pub struct AcmeChallenge {
    /// Type.
    pub kind: String,
    /// Status.
    pub status: String,
    /// Token.
    pub token: String,
    /// When validated.
    pub validated_at: Option<i64>,
    /// Why it failed.
    pub error: Option<shedu_acme::Error>,
}

/// A suggested renewal window (RFC 9773).
#[derive(Clone, Debug)]
pub struct RenewalWindow {
    /// Start, Unix seconds.
    pub start: i64,
    /// End, Unix seconds.
    pub end: i64,
    /// Seconds until the client should ask again.
    pub retry_after: u64,
}

/// A freshly made EAB key: the HMAC key is shown once and stored only sealed. `Debug` leaves it out.
pub struct EabKey {
    /// Key id (the EAB `kid`).
    pub kid: String,
    /// base64url HMAC key; `None` when listing.
    pub hmac_key: Option<zeroize::Zeroizing<String>>,
    /// Creation time.
    pub created_at: i64,
    /// The account it bound, once used.
    pub account_id: Option<String>,
}

impl std::fmt::Debug for EabKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabKey")
            .field("kid", &self.kid)
            .field("hmac_key", &self.hmac_key.as_ref().map(|_| "<redacted>"))
            .field("created_at", &self.created_at)
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// ACME: accounts, orders, validation, finalization, revocation and renewal information per RA.
#[derive(Debug)]
pub struct Acme {
    reg: Arc<Registry>,
    enrollment: Arc<Enrollment>,
    issuance: Arc<Issuance>,
    config: AcmeConfig,
    http: reqwest::Client,
    /// The dns-01 resolver, or why there is none (the system's configuration could not be read).
    dns: std::result::Result<hickory_resolver::TokioResolver, String>,
    /// Hands out and spends nonces (see [`nonces`]).
    nonces: Nonces,
    /// The RAs' ACME settings and the accounts requests named, kept between requests.
    cache: AcmeCache,
}

/// What ACME keeps in memory so that a request reads neither its RA nor its account from the database:
/// the RAs (by the id or name their URLs carry) whose ACME is enabled, and accounts by id with their RA.
/// Entries are of one generation of RA and account changes (`Registry::ra_generation`): any change of
/// an RA or an account, here or (through the change feed) on another replica, makes every entry unusable,
/// and a change's call returns only once every replica with a live cache lease applied it
/// ([`Registry::on_ra_changed`]). A replica without a live lease does not use the cache.
#[derive(Debug, Default)]
struct AcmeCache {
    ras: Remembered<String, (Ra, AcmeSettings)>,
    accounts: Remembered<String, (String, AcmeAccount)>,
}

fn stored_problem(e: &shedu_acme::Error) -> String {
    serde_json::json!({"type": e.problem.name(), "detail": e.detail}).to_string()
}

fn read_problem(s: Option<&str>) -> Option<shedu_acme::Error> {
    let v: serde_json::Value = serde_json::from_str(s?).ok()?;
    let name = v.get("type")?.as_str()?;
    let kind = [
        ProblemType::Connection,
        ProblemType::IncorrectResponse,
        ProblemType::Unauthorized,
        ProblemType::Dns,
        ProblemType::BadCsr,
        ProblemType::ServerInternal,
    ]
    .into_iter()
    .find(|k| k.name() == name)
    .unwrap_or(ProblemType::ServerInternal);
    Some(shedu_acme::Error::new(
        kind,
        v.get("detail").and_then(|d| d.as_str()).unwrap_or_default(),
    ))
}

fn token() -> String {
    shedu_acme::b64(&rand::random::<[u8; 32]>())
}

/// The dns-01 resolver: the configured server (UDP and TCP), else the system's; no cache, a look-up's
/// time bounded by the validation timeout.
fn dns_resolver(
    config: &AcmeConfig,
) -> std::result::Result<hickory_resolver::TokioResolver, String> {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    let mut builder = match config.dns_resolver {
        Some(addr) => {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for connection in &mut server.connections {
                connection.port = addr.port();
            }
            hickory_resolver::Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => hickory_resolver::Resolver::builder_tokio()
            .map_err(|e| format!("no DNS resolver for dns-01: {e}"))?,
    };
    let options = builder.options_mut();
    options.cache_size = 0;
    options.timeout = config.validation_timeout;
    options.attempts = 1;
    builder
        .build()
        .map_err(|e| format!("no DNS resolver for dns-01: {e}"))
}

/// SHA-256 of a key authorization (dns-01's TXT value and tls-alpn-01's acmeIdentifier, once encoded).
fn sha256(key_authorization: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes())
        .as_ref()
        .to_vec()
}

/// The reverse-DNS name of an address (RFC 8738 §6: the SNI of a tls-alpn-01 handshake for an IP
/// identifier): `4.3.2.1.in-addr.arpa`, or the nibbles of an IPv6 address under `ip6.arpa`.
fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name + "ip6.arpa"
        }
    }
}

/// `.localhost` names are loopback (RFC 6761 §6.3): resolved here without asking DNS.
fn loopback_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

impl Acme {
    pub(crate) fn new(
        reg: Arc<Registry>,
        enrollment: Arc<Enrollment>,
        issuance: Arc<Issuance>,
        config: AcmeConfig,
    ) -> Result<Acme, Error> {
        // http-01 (RFC 8555 §8.3): redirects are not followed, so a validation can never be sent on to an
        // address the name does not resolve to.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.validation_timeout)
            .connect_timeout(config.validation_timeout)
            .user_agent("shedu-acme-validator")
            .build()
            .map_err(|e| Error::Internal(format!("ACME validation client: {e}")))?;
        let dns = dns_resolver(&config);
        let nonce_key = reg
            .keystore
            .mac_key("acme-nonce")
            .map_err(|e| Error::Internal(format!("ACME nonce key: {e}")))?;
        let nonces = Nonces::new(reg.store.backend(), nonce_key).map_err(Error::Internal)?;
        Ok(Acme {
            reg,
            enrollment,
            issuance,
            config,
            http,
            dns,
            nonces,
            cache: AcmeCache::default(),
        })
    }

    /// The RA of `/acme/{ra}/…` (its id or name) when it has ACME enabled.
    /// Served from memory once read (see [`AcmeCache`]).
    pub async fn ra(&self, id_or_name: &str) -> Result<(Ra, AcmeSettings), Error> {
        self.cache
            .ras
            .get_or_read(
                &self.reg.coherence,
                &self.reg.ra_generation,
                id_or_name,
                || async {
                    let ra = self.enrollment.ra_by_id_or_name(id_or_name).await?;
                    match ra.acme.clone() {
                        Some(s) if s.enabled => Ok((ra, s)),
                        _ => Err(Error::NotFound(format!(
                            "ACME directory of RA {id_or_name}"
                        ))),
                    }
                },
            )
            .await
    }

    /// A fresh nonce (RFC 8555 §6.5). Nothing is written: the nonce carries its expiry under a MAC, and
    /// its use is what is remembered (by the request that spends it; see [`nonces`]).
    pub fn new_nonce(&self) -> String {
        self.nonces
            .mint(self.reg.now() + self.config.nonce_lifetime_secs)
    }

    /// Verifies a request: its `url` is `url`, its nonce is fresh (and is used up), its signer is of the
    /// kind the resource needs, and the signature holds. `account_prefix` is the account URL without the
    /// id (`…/acme/{ra}/acct/`). `actor` carries the request's source and id for audit records.
    pub async fn authenticate(
        &self,
        ra: &Ra,
        account_prefix: &str,
        url: &str,
        body: &[u8],
        signer: Signer,
        actor: &AuditContext,
    ) -> Result<Authenticated> {
        let jws = Jws::parse(body)?;
        let Some(nonce) = jws.protected.nonce.as_deref() else {
            return Err(problem(ProblemType::BadNonce, "the request has no nonce"));
        };
        if jws.protected.alg == shedu_acme::Alg::Hs256 {
            return Err(problem(
                ProblemType::BadSignatureAlgorithm,
                "HS256 only signs external account bindings",
            ));
        }
        if jws.protected.url != url {
            return Err(problem(
                ProblemType::Unauthorized,
                format!(
                    "the JWS url {:?} is not the request URL {url:?}",
                    jws.protected.url
                ),
            ));
        }
        let now = self.reg.now();
        // Used nonces (kept until they expire when they are rows) and idle rate-limit lock rows are swept
        // by one request in 64: with a stored spend in its transaction, else in one of their own.
        let purge = (rand::random::<u8>() < 4).then_some(now);
        let taken = self
            .nonces
            .take(&self.reg.store, nonce, now, purge)
            .await
            .map_err(store_err("ACME nonce"))?;
        if let Some(now) = purge
            && !self.nonces.stored()
        {
            self.reg
                .store
                .acme_purge(now)
                .await
                .map_err(store_err("ACME purge"))?;
        }
        if !taken {
            return Err(problem(
                ProblemType::BadNonce,
                "the nonce is unknown, used or expired",
            ));
        }
        let (account, key) = match (&jws.protected.key, signer) {
            (KeyRef::Kid(kid), Signer::Account | Signer::Either) => {
                let id = kid.strip_prefix(account_prefix).ok_or_else(|| {
                    problem(
                        ProblemType::AccountDoesNotExist,
                        "kid is not an account URL of this directory",
                    )
                })?;
                let account = self.account_row(ra, id).await?;
                if account.status != "valid" {
                    return Err(problem(
                        ProblemType::Unauthorized,
                        format!("the account is {}", account.status),
                    ));
                }
                let key = account.key.clone();
                (Some(account), key)
            }
            (KeyRef::Jwk(jwk), Signer::NewKey | Signer::Either) => (None, jwk.clone()),
            (KeyRef::Kid(_), Signer::NewKey) => {
                return Err(problem(
                    ProblemType::Malformed,
                    "newAccount is signed with jwk, not kid",
                ));
            }
            (KeyRef::Jwk(_), Signer::Account) => {
                return Err(problem(
                    ProblemType::Malformed,
                    "this request is signed with kid (the account URL), not jwk",
                ));
            }
        };
        jws.verify(&key)?;
        let actor = match &account {
            Some(a) => account_actor(actor, &a.id),
            None => actor.clone(),
        };
        Ok(Authenticated {
            jws,
            account,
            key,
            actor,
        })
    }

    /// The account `id` of `ra`, served from memory once read (see [`AcmeCache`]).
    async fn account_row(&self, ra: &Ra, id: &str) -> Result<AcmeAccount> {
        let (ra_id, account) = self
            .cache
            .accounts
            .get_or_read(&self.reg.coherence, &self.reg.ra_generation, id, || async {
                let row = match self.reg.store.acme_account(id).await {
                    Ok(row) => row,
                    Err(shedu_store::Error::NotFound) => {
                        return Err(problem(ProblemType::AccountDoesNotExist, "no such account"));
                    }
                    Err(e) => return Err(store_err("ACME account")(e).into()),
                };
                let ra_id = row.ra_id.clone();
                Ok((ra_id, account_from_row(row)?))
            })
            .await?;
        if ra_id != ra.id {
            return Err(problem(ProblemType::AccountDoesNotExist, "no such account"));
        }
        Ok(account)
    }

    /// newAccount (RFC 8555 §7.3): returns the account and whether it was created now. An existing key
    /// returns its account (never asking for EAB); `onlyReturnExisting` never creates.
    /// `new_account_url` is what an EAB's `url` must be.
    pub async fn new_account(
        &self,
        ra: &Ra,
        settings: &AcmeSettings,
        req: &Authenticated,
        new_account_url: &str,
    ) -> Result<(AcmeAccount, bool)> {
        let payload: NewAccount = req.jws.payload_json()?;
        let thumbprint = req.key.thumbprint();
        if let Some(row) = self
            .reg
            .store
            .acme_account_by_key(&ra.id, &thumbprint)
            .await
            .map_err(store_err("ACME account"))?
        {
            return Ok((account_from_row(row)?, false));
        }
        if payload.only_return_existing == Some(true) {
            return Err(problem(
                ProblemType::AccountDoesNotExist,
                "no account has this key",
            ));
        }
        let contact = check_contacts(payload.contact.unwrap_or_default())?;
        let eab_kid = match (&payload.external_account_binding, settings.eab_required) {
            (None, true) => {
                return Err(problem(
                    ProblemType::ExternalAccountRequired,
                    "this directory needs an external account binding",
                ));
            }
            (None, false) => None,
            (Some(eab), _) => Some(self.check_eab(ra, eab, &req.key, new_account_url).await?),
        };
        let id = new_id();
        let row = AcmeAccountRow {
            id: id.clone(),
            ra_id: ra.id.clone(),
            thumbprint,
            jwk: req.key.canonical_json(),
            status: "valid".into(),
            contact: serde_json::to_string(&contact).map_err(|e| Error::Internal(e.to_string()))?,
            eab_kid,
            created_at: self.reg.now(),
            created_from: Some(req.actor.source.clone()).filter(|s| !s.is_empty()),
        };
        let limits: Vec<Limited> =
            match (settings.rate_limits.accounts_per_address, &row.created_from) {
                (Some(limit), Some(source)) => vec![Limited::new(
                    limit,
                    AcmeCounted::AccountsFrom {
                        ra_id: ra.id.clone(),
                        source: source.clone(),
                    },
                    row.created_at,
                    format!("{source}: at most {} new accounts", limit.count),
                )],
                _ => Vec::new(),
            };
        let actor = account_actor(&req.actor, &id);
        let created = account_event(EventKind::AcmeAccountCreated, &row, None, row.created_at);
        match self
            .reg
            .store
            .acme_account_insert(
                &row,
                settings.eab_reusable,
                &checks(&limits),
                &created,
                &AuditAction::AcmeAccountCreate.by(&actor),
            )
            .await
        {
            Ok(None) => Ok((account_from_row(row)?, true)),
            Ok(Some(refused)) => Err(refusal(&limits, refused, row.created_at)),
            Err(shedu_store::Error::Conflict { constraint })
                if constraint.as_deref() == Some(shedu_store::ACME_EAB_UNUSABLE) =>
            {
                Err(problem(
                    ProblemType::Unauthorized,
                    "the external account binding key is already used",
                ))
            }
            Err(shedu_store::Error::Conflict { .. }) => {
                // The same key raced us to creation: return the account it made.
                let row = self
                    .reg
                    .store
                    .acme_account_by_key(&ra.id, &row.thumbprint)
                    .await
                    .map_err(store_err("ACME account"))?
                    .ok_or_else(|| Error::Internal("account vanished".into()))?;
                Ok((account_from_row(row)?, false))
            }
            Err(e) => Err(store_err("ACME account")(e).into()),
        }
    }

    /// RFC 8555 §7.3.4: the binding is an HS256 JWS by the EAB key over the account key, for this URL.
    async fn check_eab(
        &self,
        ra: &Ra,
        eab: &serde_json::Value,
        key: &Jwk,
        url: &str,
    ) -> Result<String> {
        let inner = Jws::from_value(eab)?;
        let KeyRef::Kid(kid) = &inner.protected.key else {
            return Err(problem(
                ProblemType::Malformed,
                "the external account binding names its key with kid",
            ));
        };
        if inner.protected.nonce.is_some() || inner.protected.url != url {
            return Err(problem(
                ProblemType::Malformed,
                "the binding has a nonce or a url other than newAccount's",
            ));
        }
        let row = match self.reg.store.acme_eab(kid).await {
            Ok(row) if row.ra_id == ra.id => row,
            Ok(_) | Err(shedu_store::Error::NotFound) => {
                return Err(problem(
                    ProblemType::Unauthorized,
                    "unknown external account binding key",
                ));
            }
            Err(e) => return Err(store_err("EAB key")(e).into()),
        };
        let hmac = self
            .reg
            .keystore
            .open_secret(eab_context(kid).as_bytes(), &row.hmac_sealed)
            .map_err(Error::from)?;
        inner.verify_hmac(&hmac)?;
        let bound: serde_json::Value = inner.payload_json()?;
        if Jwk::from_value(&bound)? != *key {
            return Err(problem(
                ProblemType::Unauthorized,
                "the binding is over another key than the account's",
            ));
        }
        Ok(kid.clone())
    }

    /// POST to an account URL: look up (empty payload or `{}`), update contacts, or deactivate.
    pub async fn update_account(
        &self,
        ra: &Ra,
        req: &Authenticated,
        id: &str,
    ) -> Result<AcmeAccount> {
        let Some(mut account) = req.account.clone() else {
            return Err(problem(
                ProblemType::Unauthorized,
                "not signed by an account",
            ));
        };
        if account.id != id {
            return Err(problem(
                ProblemType::Unauthorized,
                "an account may only see and change itself",
            ));
        }
        if req.jws.is_post_as_get() {
            return Ok(account);
        }
        let update: shedu_acme::types::AccountUpdate = req.jws.payload_json()?;
        let mut changed = None;
        if let Some(contact) = update.contact {
            account.contact = check_contacts(contact)?;
            changed = Some((EventKind::AcmeAccountUpdated, "contact"));
        }
        match update.status.as_deref() {
            None => {}
            Some("deactivated") => {
                account.status = "deactivated".into();
                changed = Some((EventKind::AcmeAccountDeactivated, "status"));
            }
            Some(other) => {
                return Err(problem(
                    ProblemType::Malformed,
                    format!("an account cannot be set to {other:?}"),
                ));
            }
        }
        if let Some((kind, change)) = changed {
            self.write_account(ra, &account, &req.actor, kind, change)
                .await?;
        }
        Ok(account)
    }

    /// Stores an account's new status, contacts or key with its `kind` event (`change` names what
    /// changed) and audit record.
    async fn write_account(
        &self,
        ra: &Ra,
        a: &AcmeAccount,
        actor: &AuditContext,
        kind: EventKind,
        change: &str,
    ) -> Result<()> {
        let row = AcmeAccountRow {
            id: a.id.clone(),
            ra_id: ra.id.clone(),
            thumbprint: a.key.thumbprint(),
            jwk: a.key.canonical_json(),
            status: a.status.clone(),
            contact: serde_json::to_string(&a.contact)
                .map_err(|e| Error::Internal(e.to_string()))?,
            eab_kid: a.eab_kid.clone(),
            created_at: 0,
            created_from: None,
        };
        let now = self.reg.now();
        self.reg
            .store
            .acme_account_update(
                &row,
                now,
                &account_event(kind, &row, Some(change), now),
                &AuditAction::AcmeAccountUpdate.by(actor),
            )
            .await
            .map_err(store_err("ACME account"))?;
        self.reg.on_ra_changed().await;
        Ok(())
    }

    /// keyChange (RFC 8555 §7.3.5). A new key that already belongs to an account is refused with that
    /// account's id (`Err(Ok(id))`), which the edge returns as 409 with its Location.
    pub async fn key_change(
        &self,
        ra: &Ra,
        req: &Authenticated,
        account_url: &str,
    ) -> Result<std::result::Result<AcmeAccount, String>> {
        let Some(mut account) = req.account.clone() else {
            return Err(problem(
                ProblemType::Unauthorized,
                "not signed by an account",
            ));
        };
        let inner: serde_json::Value = req.jws.payload_json()?;
        let inner = Jws::from_value(&inner)?;
        let KeyRef::Jwk(new_key) = &inner.protected.key else {
            return Err(problem(
                ProblemType::Malformed,
                "the inner JWS carries the new key as jwk",
            ));
        };
        if inner.protected.nonce.is_some() || inner.protected.url != req.jws.protected.url {
            return Err(problem(
                ProblemType::Malformed,
                "the inner JWS has a nonce or another url",
            ));
        }
        inner.verify(new_key)?;
        let body: shedu_acme::types::KeyChange = inner.payload_json()?;
        if body.account != account_url || Jwk::from_value(&body.old_key)? != account.key {
            return Err(problem(
                ProblemType::Malformed,
                "account or oldKey do not match the signer",
            ));
        }
        if let Some(other) = self
            .reg
            .store
            .acme_account_by_key(&ra.id, &new_key.thumbprint())
            .await
            .map_err(store_err("ACME account"))?
        {
            return Ok(Err(other.id));
        }
        account.key = new_key.clone();
        match self
            .write_account(
                ra,
                &account,
                &req.actor,
                EventKind::AcmeAccountUpdated,
                "key",
            )
            .await
        {
            Ok(()) => Ok(Ok(account)),
            Err(e) => {
                // Another account took the key between the check and the write: the conflict it is.
                match self
                    .reg
                    .store
                    .acme_account_by_key(&ra.id, &new_key.thumbprint())
                    .await
                {
                    Ok(Some(other)) if other.id != account.id => Ok(Err(other.id)),
                    _ => Err(e),
                }
            }
        }
    }

    /// newOrder (RFC 8555 §7.4).
    pub async fn new_order(
        &self,
        ra: &Ra,
        settings: &AcmeSettings,
        req: &Authenticated,
    ) -> Result<AcmeOrder> {
        let Some(account) = &req.account else {
            return Err(problem(
                ProblemType::Unauthorized,
                "not signed by an account",
            ));
        };
        let payload: NewOrder = req.jws.payload_json()?;
        if payload.not_before.is_some() || payload.not_after.is_some() {
            return Err(problem(
                ProblemType::Malformed,
                "notBefore and notAfter are set by the profile",
            ));
        }
        if payload.identifiers.is_empty() || payload.identifiers.len() > 100 {
            return Err(problem(
                ProblemType::Malformed,
                "an order names 1 to 100 identifiers",
            ));
        }
        let mut subproblems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut identifiers = Vec::new();
        for id in &payload.identifiers {
            match check_identifier(settings, id) {
                Ok(norm) => {
                    if seen.insert((norm.kind.clone(), norm.value.clone())) {
                        identifiers.push(norm);
                    }
                }
                Err(e) => subproblems.push((id.clone(), e)),
            }
        }
        if !subproblems.is_empty() {
            return Err(AcmeFailure::Protocol(shedu_acme::Error::of_identifiers(
                subproblems,
            )));
        }
        let (profile, ca_id) = match payload
            .profile
            .as_deref()
            .or(settings.default_profile.as_deref())
        {
            Some(name) => match settings.profiles.get(name) {
                Some(ca) => (Some(name.to_string()), ca.clone()),
                None => {
                    return Err(problem(
                        ProblemType::InvalidProfile,
                        format!("unknown profile {name:?}"),
                    ));
                }
            },
            None => (None, ra.default_ca_id.clone()),
        };
        if let Some(replaces) = &payload.replaces {
            let (ca, serial) = self.find_certificate(ra, replaces).await?;
            match self
                .reg
                .store
                .acme_order_by_certificate(&ca, &serial.to_hex())
                .await
                .map_err(store_err("ACME order"))?
            {
                Some(o) if o.account_id == account.id => {}
                _ => {
                    return Err(problem(
                        ProblemType::Unauthorized,
                        "replaces names a certificate this account did not order",
                    ));
                }
            }
        }
        let now = self.reg.now();
        let limits = order_limits(ra, settings, &account.id, &identifiers, now);
        let id = new_id();
        let expires_at = now + settings.order_lifetime_secs;
        let authz_expiry = (now + settings.authz_lifetime_secs).min(expires_at);
        let mut authzs = Vec::with_capacity(identifiers.len());
        for (i, ident) in identifiers.iter().enumerate() {
            let (wildcard, value) = base_identifier(ident);
            let mut authz = AcmeAuthzRow {
                // Sortable within the order, so authorizations list in the order's sequence.
                id: format!("{id}{i:03}"),
                order_id: id.clone(),
                identifier_type: ident.kind.clone(),
                identifier_value: value.to_string(),
                wildcard,
                status: "pending".into(),
                expires_at: authz_expiry,
                token: token(),
                challenge: None,
                validated_at: None,
                error: None,
            };
            if let Some(valid) = self
                .reusable_authz(settings, &account.id, &authz, now)
                .await?
            {
                // RFC 8555 §7.4: the server may give a new order an authorization the account already
                // holds. It is copied valid, with its own expiry and the challenge that proved it; a
                // deactivation of either deactivates both (`acme_authz_deactivate`).
                authz.status = "valid".into();
                authz.expires_at = valid.expires_at;
                authz.challenge = valid.challenge;
                authz.validated_at = valid.validated_at;
                authz.token = valid.token;
            }
            authzs.push(authz);
        }
        let status = if authzs.iter().all(|a| a.status == "valid") {
            "ready"
        } else {
            "pending"
        };
        let row = AcmeOrderRow {
            id: id.clone(),
            account_id: account.id.clone(),
            status: status.into(),
            identifiers: serde_json::to_string(&identifiers)
                .map_err(|e| Error::Internal(e.to_string()))?,
            profile,
            ca_id,
            replaces: payload.replaces.clone(),
            expires_at,
            error: None,
            cert_serial: None,
            created_at: now,
        };
        match self
            .reg
            .store
            .acme_order_insert(
                &row,
                &authzs,
                &checks(&limits),
                &AuditAction::AcmeOrderCreate.by(&req.actor),
            )
            .await
        {
            Ok(None) => {}
            Ok(Some(refused)) => return Err(refusal(&limits, refused, now)),
            Err(shedu_store::Error::Conflict { .. }) => {
                return Err(problem(
                    ProblemType::AlreadyReplaced,
                    "another order already replaces this certificate",
                ));
            }
            Err(e) => return Err(store_err("ACME order")(e).into()),
        }
        // What was just written.
        let authz_ids = authzs.into_iter().map(|a| a.id).collect();
        self.order_view(row, authz_ids)
    }

    /// The account's valid authorization a new one may copy: same identifier (a wildcard only from a
    /// wildcard), still valid, proved through a challenge the RA still offers.
    async fn reusable_authz(
        &self,
        settings: &AcmeSettings,
        account_id: &str,
        new: &AcmeAuthzRow,
        now: i64,
    ) -> Result<Option<AcmeAuthzRow>> {
        if !settings.authz_reuse {
            return Ok(None);
        }
        let found = self
            .reg
            .store
            .acme_authz_reusable(
                account_id,
                &new.identifier_type,
                &new.identifier_value,
                new.wildcard,
                now,
            )
            .await
            .map_err(store_err("ACME authorizations"))?;
        Ok(found.filter(|a| {
            a.challenge
                .as_ref()
                .is_some_and(|c| settings.challenges.contains(c))
        }))
    }

    async fn order_row(&self, req: &Authenticated, id: &str) -> Result<AcmeOrderRow> {
        let row = self.reg.store.acme_order(id).await;
        owned_order(req, id, row)
    }

    /// An order of the signing account with its authorizations' ids, in one read.
    async fn order_with_authzs(
        &self,
        req: &Authenticated,
        id: &str,
    ) -> Result<(AcmeOrderRow, Vec<String>)> {
        let (row, authz_ids) = match self.reg.store.acme_order_with_authzs(id).await {
            Ok((row, ids)) => (Ok(row), ids),
            Err(e) => (Err(e), Vec::new()),
        };
        Ok((owned_order(req, id, row)?, authz_ids))
    }

    fn order_view(&self, row: AcmeOrderRow, authz_ids: Vec<String>) -> Result<AcmeOrder> {
        let identifiers: Vec<Identifier> =
            serde_json::from_str(&row.identifiers).map_err(|e| Error::Internal(e.to_string()))?;
        // RFC 8555 §7.1.6: an order that expired before it was finalized is invalid.
        let expired =
            matches!(row.status.as_str(), "pending" | "ready") && row.expires_at < self.reg.now();
        Ok(AcmeOrder {
            status: if expired {
                "invalid".into()
            } else {
                row.status.clone()
            },
            has_certificate: row.status == "valid" && row.cert_serial.is_some(),
            id: row.id,
            expires_at: row.expires_at,
            identifiers,
            authz_ids,
            profile: row.profile,
            replaces: row.replaces,
            error: read_problem(row.error.as_deref()),
        })
    }

    /// An order (POST-as-GET).
    pub async fn order(&self, req: &Authenticated, id: &str) -> Result<AcmeOrder> {
        let (row, authz_ids) = self.order_with_authzs(req, id).await?;
        self.order_view(row, authz_ids)
    }

    /// An account's orders (ids, newest first).
    pub async fn orders(&self, req: &Authenticated, account_id: &str) -> Result<Vec<String>> {
        match &req.account {
            Some(a) if a.id == account_id => Ok(self
                .reg
                .store
                .acme_order_ids(account_id, 1000)
                .await
                .map_err(store_err("ACME orders"))?),
            _ => Err(problem(
                ProblemType::Unauthorized,
                "another account's orders",
            )),
        }
    }

    async fn authz_row(&self, req: &Authenticated, id: &str) -> Result<AcmeAuthzRow> {
        let (row, account_id) = match self.reg.store.acme_authz(id).await {
            Ok(found) => found,
            Err(shedu_store::Error::NotFound) => {
                return Err(Error::NotFound(format!("authorization {id}")).into());
            }
            Err(e) => return Err(store_err("ACME authorization")(e).into()),
        };
        match &req.account {
            Some(a) if a.id == account_id => Ok(row),
            _ => Err(problem(
                ProblemType::Unauthorized,
                "the authorization belongs to another account",
            )),
        }
    }

    fn authz_view(&self, settings: &AcmeSettings, row: AcmeAuthzRow) -> AcmeAuthz {
        let offered: Vec<String> = settings
            .challenges
            .iter()
            .filter(|c| offered_for(c, row.wildcard, &row.identifier_type))
            .cloned()
            .collect();
        let expired = row.status == "pending" && row.expires_at < self.reg.now();
        let error = read_problem(row.error.as_deref());
        let challenges = offered
            .into_iter()
            .map(|kind| {
                let chosen = row.challenge.as_deref() == Some(kind.as_str());
                AcmeChallenge {
                    status: match (chosen, row.status.as_str()) {
                        (true, "valid") => "valid",
                        (true, "invalid") => "invalid",
                        _ => "pending",
                    }
                    .into(),
                    // RFC 8555 §8: `validated` is the time a challenge became valid.
                    validated_at: if chosen && row.status == "valid" {
                        row.validated_at
                    } else {
                        None
                    },
                    error: if chosen { error.clone() } else { None },
                    token: row.token.clone(),
                    kind,
                }
            })
            .collect();
        AcmeAuthz {
            id: row.id,
            identifier: Identifier {
                kind: row.identifier_type,
                value: row.identifier_value,
            },
            wildcard: row.wildcard,
            status: if expired {
                "expired".into()
            } else {
                row.status
            },
            expires_at: row.expires_at,
            challenges,
        }
    }

    /// An authorization (POST-as-GET), or its deactivation (`{"status":"deactivated"}`).
    pub async fn authz(
        &self,
        settings: &AcmeSettings,
        req: &Authenticated,
        id: &str,
    ) -> Result<AcmeAuthz> {
        let mut row = self.authz_row(req, id).await?;
        if !req.jws.is_post_as_get() {
            let update: shedu_acme::types::AccountUpdate = req.jws.payload_json()?;
            match (update.status.as_deref(), &req.account) {
                (None, _) => {}
                // RFC 8555 §7.5.2: a pending or valid authorization can be given up.
                (Some("deactivated"), Some(account))
                    if matches!(row.status.as_str(), "pending" | "valid") =>
                {
                    let err = stored_problem(&shedu_acme::Error::new(
                        ProblemType::Unauthorized,
                        "authorization deactivated",
                    ));
                    self.reg
                        .store
                        .acme_authz_deactivate(
                            &row,
                            &account.id,
                            &err,
                            self.reg.now(),
                            &AuditAction::AcmeAuthzUpdate.by(&req.actor),
                        )
                        .await
                        .map_err(store_err("ACME authorization"))?;
                    row = self.authz_row(req, id).await?;
                }
                (Some(other), _) => {
                    return Err(problem(
                        ProblemType::Malformed,
                        format!("a {} authorization cannot be set to {other:?}", row.status),
                    ));
                }
            }
        }
        Ok(self.authz_view(settings, row))
    }

    /// A challenge: POST `{}` asks the server to validate it (done before this returns); POST-as-GET reads it.
    pub async fn challenge(
        &self,
        settings: &AcmeSettings,
        req: &Authenticated,
        authz_id: &str,
        kind: &str,
    ) -> Result<(AcmeAuthz, AcmeChallenge)> {
        let mut row = self.authz_row(req, authz_id).await?;
        let view = self.authz_view(settings, row.clone());
        if !view.challenges.iter().any(|c| c.kind == kind) {
            return Err(
                Error::NotFound(format!("challenge {kind} of authorization {authz_id}")).into(),
            );
        }
        if !req.jws.is_post_as_get() && view.status == "pending" {
            let outcome = self.validate(kind, &row, &req.key).await;
            let now = self.reg.now();
            row.challenge = Some(kind.to_string());
            let invalid = match outcome {
                Ok(()) => {
                    row.status = "valid".into();
                    row.validated_at = Some(now);
                    None
                }
                Err(e) => {
                    tracing::info!(authz = %row.id, kind, problem = e.problem.name(), "ACME validation failed");
                    row.status = "invalid".into();
                    // The attempt's time: the failed-validation limit counts from it.
                    row.validated_at = Some(now);
                    row.error = Some(stored_problem(&e));
                    let data = serde_json::json!({
                        "order": row.order_id,
                        "authorization": row.id,
                        "identifier": {"type": row.identifier_type, "value": row.identifier_value},
                        "challenge": kind,
                        "problem": e.problem.name(),
                    });
                    Some(event(
                        EventKind::AcmeOrderInvalid,
                        format!("acme/orders/{}", row.order_id),
                        now,
                        data,
                    ))
                }
            };
            let finished = self
                .reg
                .store
                .acme_authz_finish(
                    &row,
                    row.error.as_deref(),
                    invalid.as_ref(),
                    now,
                    &AuditAction::AcmeAuthzUpdate.by(&req.actor),
                )
                .await
                .map_err(store_err("ACME authorization"))?;
            if !finished {
                // Another request settled it first: answer what it wrote (the row in hand is what was
                // written otherwise).
                row = self.authz_row(req, authz_id).await?;
            }
        }
        let view = self.authz_view(settings, row);
        let challenge = view
            .challenges
            .iter()
            .find(|c| c.kind == kind)
            .cloned()
            .ok_or_else(|| Error::Internal("challenge vanished".into()))?;
        Ok((view, challenge))
    }

    async fn validate(
        &self,
        kind: &str,
        a: &AcmeAuthzRow,
        key: &Jwk,
    ) -> Result<(), shedu_acme::Error> {
        let expected = shedu_acme::key_authorization(&a.token, &key.thumbprint());
        match kind {
            "http-01" => self.http01(a, &expected).await,
            "dns-01" => self.dns01(a, &expected).await,
            "tls-alpn-01" => self.tlsalpn01(a, &expected).await,
            other => Err(shedu_acme::Error::new(
                ProblemType::Malformed,
                format!("{other} is not supported"),
            )),
        }
    }

    /// RFC 8555 §8.3: GET `http://{identifier}:{port}/.well-known/acme-challenge/{token}` must answer the
    /// key authorization.
    async fn http01(&self, a: &AcmeAuthzRow, expected: &str) -> Result<(), shedu_acme::Error> {
        let port = self.config.http01_port;
        let host = match a.identifier_value.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => a.identifier_value.clone(),
        };
        let url = format!(
            "http://{host}:{port}/.well-known/acme-challenge/{}",
            a.token
        );
        let mut request = self.http.get(&url);
        if loopback_name(&a.identifier_value) {
            // Connect to loopback ourselves; the Host header still names the identifier.
            let loopback = SocketAddr::from(([127, 0, 0, 1], port));
            request = self.http.get(format!(
                "http://{loopback}/.well-known/acme-challenge/{}",
                a.token
            ));
            request = request.header(reqwest::header::HOST, format!("{host}:{port}"));
        }
        let conn = |e: reqwest::Error| {
            shedu_acme::Error::new(ProblemType::Connection, format!("{url}: {e}"))
        };
        let response = request.send().await.map_err(conn)?;
        if !response.status().is_success() {
            return Err(shedu_acme::Error::new(
                ProblemType::Unauthorized,
                format!("{url} answered {}", response.status()),
            ));
        }
        // The answer is a key authorization (about 90 octets): read at most 1 KiB of whatever is sent.
        let body = crate::webhook::read_capped(response, HTTP01_MAX_BODY)
            .await
            .map_err(|e| match e {
                crate::webhook::CappedRead::TooLarge(max) => shedu_acme::Error::new(
                    ProblemType::IncorrectResponse,
                    format!("{url} answered more than {max} octets"),
                ),
                crate::webhook::CappedRead::Failed(why) => {
                    shedu_acme::Error::new(ProblemType::Connection, format!("{url}: {why}"))
                }
            })?;
        let got = std::str::from_utf8(&body).unwrap_or_default();
        if got.trim_end() == expected {
            Ok(())
        } else {
            Err(shedu_acme::Error::new(
                ProblemType::IncorrectResponse,
                format!("{url} did not answer the key authorization"),
            ))
        }
    }

    /// RFC 8555 §8.4: a TXT record at `_acme-challenge.{identifier}` (the base name of a wildcard) must
    /// hold the base64url SHA-256 digest of the key authorization. Asked fresh each time (no cache), so a
    /// client that published its record after a failed attempt is seen at the next.
    async fn dns01(
        &self,
        a: &AcmeAuthzRow,
        key_authorization: &str,
    ) -> Result<(), shedu_acme::Error> {
        let expected = shedu_acme::b64(&sha256(key_authorization));
        let name = format!("_acme-challenge.{}.", a.identifier_value);
        let dns_problem = |detail: String| shedu_acme::Error::new(ProblemType::Dns, detail);
        let resolver = self.dns.as_ref().map_err(|e| dns_problem(e.clone()))?;
        let lookup = tokio::time::timeout(
            self.config.validation_timeout,
            resolver.txt_lookup(name.as_str()),
        )
        .await
        .map_err(|_| dns_problem(format!("the TXT look-up of {name} timed out")))?
        .map_err(|e| {
            if e.is_no_records_found() || e.is_nx_domain() {
                shedu_acme::Error::new(
                    ProblemType::IncorrectResponse,
                    format!("no TXT record at {name}"),
                )
            } else {
                dns_problem(format!("the TXT look-up of {name} failed: {e}"))
            }
        })?;
        let found = lookup.answers().iter().any(|record| match &record.data {
            hickory_resolver::proto::rr::RData::TXT(txt) => {
                let value: Vec<u8> = txt
                    .txt_data
                    .iter()
                    .flat_map(|part| part.iter().copied())
                    .collect();
                value == expected.as_bytes()
            }
            _ => false,
        });
        if found {
            Ok(())
        } else {
            Err(shedu_acme::Error::new(
                ProblemType::IncorrectResponse,
                format!("no TXT record at {name} holds the key authorization's digest"),
            ))
        }
    }

    /// RFC 8737 §3: a TLS handshake with `{identifier}:{port}` offering only `acme-tls/1`, with the name as
    /// SNI (an IP address's reverse-DNS name, RFC 8738 §6). The server must choose `acme-tls/1` and serve a
    /// certificate whose only subjectAltName is the identifier and whose critical acmeIdentifier extension
    /// holds the SHA-256 digest of the key authorization. The certificate is otherwise not trusted or
    /// checked: it is a proof of control, not a credential.
    async fn tlsalpn01(
        &self,
        a: &AcmeAuthzRow,
        key_authorization: &str,
    ) -> Result<(), shedu_acme::Error> {
        let port = self.config.tlsalpn01_port;
        let ip = a.identifier_value.parse::<IpAddr>().ok();
        let sni = ip.map_or_else(|| a.identifier_value.clone(), reverse_dns_name);
        let address = if loopback_name(&a.identifier_value) {
            "127.0.0.1".to_string()
        } else {
            a.identifier_value.clone()
        };
        let target = match ip {
            Some(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
            _ => format!("{}:{port}", a.identifier_value),
        };
        let incorrect = |why: &str| {
            shedu_acme::Error::new(ProblemType::IncorrectResponse, format!("{target}: {why}"))
        };
        let served = crate::rotation::wire::handshake(
            &address,
            port,
            &sni,
            &[ACME_TLS_ALPN],
            self.config.validation_timeout,
        )
        .await
        .map_err(|e| shedu_acme::Error::new(ProblemType::Connection, format!("{target}: {e}")))?;
        if served.alpn.as_deref() != Some(ACME_TLS_ALPN) {
            return Err(incorrect(
                "the server did not choose the acme-tls/1 protocol",
            ));
        }
        let leaf = served.chain.first().map(Vec::as_slice).unwrap_or_default();
        let info = CertInfo::from_der(leaf).map_err(|e| incorrect(&e.to_string()))?;
        let want = match ip {
            Some(ip) => format!("IP:{ip}"),
            None => format!("DNS:{}", a.identifier_value),
        };
        if info.sans.len() != 1 || !info.sans[0].eq_ignore_ascii_case(&want) {
            return Err(incorrect(&format!(
                "the certificate's subjectAltName must be {want} alone, not {}",
                info.sans.join(", ")
            )));
        }
        match info.acme_identifier {
            None => Err(incorrect("the certificate has no acmeIdentifier extension")),
            Some(ext) if !ext.critical => {
                Err(incorrect("the acmeIdentifier extension is not critical"))
            }
            Some(ext) if ext.authorization != sha256(key_authorization) => Err(incorrect(
                "the acmeIdentifier extension does not hold the key authorization's digest",
            )),
            Some(_) => Ok(()),
        }
    }

    /// finalize (RFC 8555 §7.4): the CSR's names must be the order's exactly; issuance goes through
    /// [`Issuance::issue`] under the order's profile. Returns the order, `valid` once the certificate is
    /// committed.
    pub async fn finalize(&self, req: &Authenticated, order_id: &str) -> Result<AcmeOrder> {
        let (row, authz_ids) = self.order_with_authzs(req, order_id).await?;
        let view = self.order_view(row.clone(), authz_ids)?;
        if view.status != "ready" {
            return Err(problem(
                ProblemType::OrderNotReady,
                format!("the order is {}, not ready", view.status),
            ));
        }
        let body: shedu_acme::types::Finalize = req.jws.payload_json()?;
        let der = shedu_acme::b64_decode("csr", &body.csr)?;
        let bad_csr = |d: String| problem(ProblemType::BadCsr, d);
        let csr = Csr::from_der(&der).map_err(|e| bad_csr(e.to_string()))?;
        check_csr_names(&csr, &view.identifiers).map_err(bad_csr)?;
        if !self
            .reg
            .store
            .acme_order_move(order_id, "ready", "processing", None, None)
            .await
            .map_err(store_err("ACME order"))?
        {
            return Err(problem(
                ProblemType::OrderNotReady,
                "the order is being finalized",
            ));
        }
        // The certificate and the order's move to `valid` commit together.
        let issued = self
            .issuance
            .issue_for_acme_order(
                &req.actor,
                &row.ca_id,
                IssueInput {
                    csr: der,
                    validity_days: None,
                    sans: None,
                },
                order_id,
            )
            .await;
        if let Err(e) = issued {
            let failure = match e {
                Error::Invalid { detail, .. } => {
                    shedu_acme::Error::new(ProblemType::BadCsr, detail)
                }
                other => shedu_acme::Error::new(ProblemType::ServerInternal, other.to_string()),
            };
            self.reg
                .store
                .acme_order_move(
                    order_id,
                    "processing",
                    "invalid",
                    None,
                    Some(&stored_problem(&failure)),
                )
                .await
                .map_err(store_err("ACME order"))?;
            return Err(AcmeFailure::Protocol(failure));
        }
        // What was just written: the order read above, now valid with its certificate.
        Ok(AcmeOrder {
            status: "valid".into(),
            has_certificate: true,
            ..view
        })
    }

    /// The certificate of a valid order: leaf and chain, PEM (`application/pem-certificate-chain`).
    pub async fn certificate(&self, req: &Authenticated, order_id: &str) -> Result<String> {
        let row = self.order_row(req, order_id).await?;
        let (Some(serial), "valid") = (row.cert_serial.as_deref(), row.status.as_str()) else {
            return Err(Error::NotFound(format!("certificate of order {order_id}")).into());
        };
        let serial = Serial::from_bytes(
            &hex::decode(serial).map_err(|_| Error::Internal("stored serial".into()))?,
        );
        let cert = self.issuance.certificate(&row.ca_id, &serial).await?;
        let chain = self.reg.loaded(&row.ca_id).await?.chain_pem.clone();
        Ok(format!("{}{chain}", pem_encode_cert(&cert.der)))
    }

    /// The issuing CA (one of the RA's) and serial of a certificate.
    fn issuer_of<'a>(&self, cas: &'a [(String, Vec<u8>)], der: &[u8]) -> Option<&'a str> {
        cas.iter()
            .find(|(_, ca)| is_signed_by(der, ca))
            .map(|(id, _)| id.as_str())
    }

    async fn ra_cas(&self, ra: &Ra) -> Result<Vec<(String, Vec<u8>)>> {
        let mut cas = Vec::new();
        for id in &ra.ca_ids {
            let loaded = self.reg.loaded(id).await?;
            cas.push((id.clone(), loaded.ca.certificate_der.clone()));
        }
        Ok(cas)
    }

    /// revokeCert (RFC 8555 §7.6): by the account that ordered it, or with the certificate's own key.
    pub async fn revoke(&self, ra: &Ra, req: &Authenticated) -> Result<()> {
        let body: shedu_acme::types::Revocation = req.jws.payload_json()?;
        let der = shedu_acme::b64_decode("certificate", &body.certificate)?;
        let info =
            CertInfo::from_der(&der).map_err(|e| problem(ProblemType::Malformed, e.to_string()))?;
        let cas = self.ra_cas(ra).await?;
        let Some(ca_id) = self.issuer_of(&cas, &der) else {
            return Err(Error::NotFound("a certificate of this RA's CAs".into()).into());
        };
        let reason = reason_from_code(body.reason.unwrap_or(0))?;
        match &req.account {
            Some(account) => {
                let order = self
                    .reg
                    .store
                    .acme_order_by_certificate(ca_id, &info.serial.to_hex())
                    .await
                    .map_err(store_err("ACME order"))?;
                if order.map(|o| o.account_id) != Some(account.id.clone()) {
                    return Err(problem(
                        ProblemType::Unauthorized,
                        "the certificate was not ordered by this account",
                    ));
                }
            }
            None => {
                if req.key.public_key_bits()? != info.public_key_bits {
                    return Err(problem(
                        ProblemType::Unauthorized,
                        "the JWS key is not the certificate's key",
                    ));
                }
            }
        }
        match self
            .issuance
            .revoke(&req.actor, ca_id, &info.serial, reason, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Conflict { .. }) => Err(problem(
                ProblemType::AlreadyRevoked,
                "the certificate is already revoked",
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn find_certificate(&self, ra: &Ra, cert_id: &str) -> Result<(String, Serial)> {
        let (aki, serial) = shedu_acme::parse_cert_id(cert_id)?;
        let serial = Serial::from_bytes(&serial);
        for (id, der) in self.ra_cas(ra).await? {
            let ski = CertInfo::from_der(&der).ok().and_then(|i| i.subject_key_id);
            if ski.as_deref() == Some(aki.as_slice()) {
                match self.issuance.certificate(&id, &serial).await {
                    Ok(_) => return Ok((id, serial)),
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(Error::NotFound(format!("certificate {cert_id}")).into())
    }

    /// renewalInfo (RFC 9773 §4): the middle of the last third of the validity, or a window in the past
    /// once the certificate is revoked or its CA retiring.
    pub async fn renewal_info(&self, ra: &Ra, cert_id: &str) -> Result<RenewalWindow> {
        let (ca_id, serial) = self.find_certificate(ra, cert_id).await?;
        let cert = self.issuance.certificate(&ca_id, &serial).await?;
        let now = self.reg.now();
        let ca = self.reg.loaded(&ca_id).await?;
        let retiring = ca.ca.not_after < cert.not_after || ca.ca.status != crate::Status::Active;
        let (start, end) = if cert.status == crate::Status::Revoked || retiring {
            (now - 2 * 3600, now - 3600)
        } else {
            let v = cert.not_after - cert.not_before;
            (cert.not_before + 2 * v / 3, cert.not_after - v / 9)
        };
        Ok(RenewalWindow {
            start,
            end,
            retry_after: 6 * 3600,
        })
    }

    /// Makes an EAB key for an RA (operator API): the HMAC key is returned once and stored sealed.
    pub async fn eab_create(&self, actor: &AuditContext, ra_id: &str) -> Result<EabKey, Error> {
        let ra = self.enrollment.ra(ra_id).await?;
        let kid = format!("eab-{}", &new_id()[..16]);
        let key = zeroize::Zeroizing::new(shedu_acme::b64(&rand::random::<[u8; 32]>()));
        let raw = zeroize::Zeroizing::new(
            shedu_acme::b64_decode("hmac", &key).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let sealed = self
            .reg
            .keystore
            .seal_secret(eab_context(&kid).as_bytes(), &raw)?;
        let row = AcmeEabRow {
            kid: kid.clone(),
            ra_id: ra.id.clone(),
            hmac_sealed: sealed,
            created_at: self.reg.now(),
            account_id: None,
        };
        self.reg
            .store
            .acme_eab_insert(&row, &AuditAction::AcmeEabCreate.by(actor))
            .await
            .map_err(store_err("EAB key"))?;
        Ok(EabKey {
            kid,
            hmac_key: Some(key),
            created_at: row.created_at,
            account_id: None,
        })
    }

    /// An RA's EAB keys (without their HMAC keys).
    pub async fn eab_list(&self, ra_id: &str) -> Result<Vec<EabKey>, Error> {
        let ra = self.enrollment.ra(ra_id).await?;
        let rows = self
            .reg
            .store
            .acme_eab_list(&ra.id)
            .await
            .map_err(store_err("EAB keys"))?;
        Ok(rows
            .into_iter()
            .map(|r| EabKey {
                kid: r.kid,
                hmac_key: None,
                created_at: r.created_at,
                account_id: r.account_id,
            })
            .collect())
    }

    /// Deletes an EAB key (accounts it bound stay).
    pub async fn eab_delete(
        &self,
        actor: &AuditContext,
        ra_id: &str,
        kid: &str,
    ) -> Result<(), Error> {
        self.reg
            .store
            .acme_eab_delete(
                ra_id,
                kid,
                self.reg.now(),
                &AuditAction::AcmeEabDelete.by(actor),
            )
            .await
            .map_err(store_err(format!("EAB key {kid}")))
    }
}

/// A rate limit a write must stay under, and how a refusal names it.
struct Limited {
    limit: RateLimit,
    check: AcmeRateCheck,
    /// `{who}: at most {count} {what}`.
    detail: String,
}

impl Limited {
    fn new(limit: RateLimit, counted: AcmeCounted, now: i64, detail: String) -> Limited {
        Limited {
            limit,
            check: AcmeRateCheck {
                counted,
                since: now - limit.window_secs,
                max: i64::from(limit.count),
            },
            detail,
        }
    }
}

fn checks(limits: &[Limited]) -> Vec<AcmeRateCheck> {
    limits.iter().map(|l| l.check.clone()).collect()
}

/// The limits a new order of `account_id` naming `identifiers` must stay under.
fn order_limits(
    ra: &Ra,
    settings: &AcmeSettings,
    account_id: &str,
    identifiers: &[Identifier],
    now: i64,
) -> Vec<Limited> {
    let r = &settings.rate_limits;
    let mut limits = Vec::new();
    if let Some(limit) = r.orders_per_account {
        limits.push(Limited::new(
            limit,
            AcmeCounted::OrdersOfAccount {
                account_id: account_id.to_string(),
            },
            now,
            format!("this account: at most {} new orders", limit.count),
        ));
    }
    for ident in identifiers {
        let (_, value) = base_identifier(ident);
        if let Some(limit) = r.orders_per_identifier {
            limits.push(Limited::new(
                limit,
                AcmeCounted::OrdersNaming {
                    ra_id: ra.id.clone(),
                    identifier_type: ident.kind.clone(),
                    identifier_value: value.to_string(),
                },
                now,
                format!("{}: at most {} new orders", ident.value, limit.count),
            ));
        }
        if let Some(limit) = r.failed_validations {
            limits.push(Limited::new(
                limit,
                AcmeCounted::FailedValidations {
                    account_id: account_id.to_string(),
                    identifier_type: ident.kind.clone(),
                    identifier_value: value.to_string(),
                },
                now,
                format!(
                    "{}: at most {} failed validations by this account",
                    ident.value, limit.count
                ),
            ));
        }
    }
    limits
}

/// The answer to a write a limit refused: `rateLimited`, with the seconds until the oldest counted
/// thing leaves the window.
fn refusal(limits: &[Limited], refused: RateRefusal, now: i64) -> AcmeFailure {
    match limits.get(refused.check) {
        Some(l) => over_limit(l.limit, refused.window, now, &l.detail),
        None => Error::Internal("a rate limit refused that was not asked".into()).into(),
    }
}

/// A rate limit's verdict on a `window` of counted things (`detail` says whose, and how many of what).
fn over_limit(limit: RateLimit, window: RateWindow, now: i64, detail: &str) -> AcmeFailure {
    let free_at = window.oldest.unwrap_or(now) + limit.window_secs;
    Error::RateLimited {
        detail: format!("{detail} in {} s", limit.window_secs),
        retry_after: u64::try_from(free_at - now).unwrap_or(0).max(1),
    }
    .into()
}

/// An identifier as its authorization names it: whether it is a wildcard, and the name without `*.`.
fn base_identifier(ident: &Identifier) -> (bool, &str) {
    match ident.value.strip_prefix("*.") {
        Some(base) if ident.kind == "dns" => (true, base),
        _ => (false, ident.value.as_str()),
    }
}

/// An account event: who and which key, never contacts or the key itself.
fn account_event(
    kind: EventKind,
    row: &AcmeAccountRow,
    change: Option<&str>,
    time: i64,
) -> shedu_store::NewEvent {
    let mut data = serde_json::json!({
        "account": row.id,
        "ra_id": row.ra_id,
        "status": row.status,
        "key_thumbprint": row.thumbprint,
        "eab_kid": row.eab_kid,
    });
    if let Some(change) = change {
        data["change"] = change.into();
    }
    event(kind, format!("acme/accounts/{}", row.id), time, data)
}

/// The audit principal of an ACME account's requests.
fn account_actor(request: &AuditContext, account_id: &str) -> AuditContext {
    AuditContext::new(
        format!("acme-account:{account_id}"),
        account_id,
        "acme",
        request.source.clone(),
        request.request_id.clone(),
    )
}

fn eab_context(kid: &str) -> String {
    format!("acme-eab:{kid}")
}

/// An order read from storage, if it is the signing account's.
fn owned_order(
    req: &Authenticated,
    id: &str,
    row: std::result::Result<AcmeOrderRow, shedu_store::Error>,
) -> Result<AcmeOrderRow> {
    let row = match row {
        Ok(row) => row,
        Err(shedu_store::Error::NotFound) => {
            return Err(Error::NotFound(format!("order {id}")).into());
        }
        Err(e) => return Err(store_err("ACME order")(e).into()),
    };
    match &req.account {
        Some(a) if a.id == row.account_id => Ok(row),
        _ => Err(problem(
            ProblemType::Unauthorized,
            "the order belongs to another account",
        )),
    }
}

fn account_from_row(row: AcmeAccountRow) -> Result<AcmeAccount> {
    Ok(AcmeAccount {
        key: Jwk::from_json(&row.jwk)
            .map_err(|e| Error::Internal(format!("stored account key: {e}")))?,
        contact: serde_json::from_str(&row.contact).map_err(|e| Error::Internal(e.to_string()))?,
        id: row.id,
        status: row.status,
        eab_kid: row.eab_kid,
    })
}

fn check_contacts(contact: Vec<String>) -> Result<Vec<String>> {
    if contact.len() > 10 {
        return Err(problem(ProblemType::InvalidContact, "at most 10 contacts"));
    }
    for c in &contact {
        let Some(addr) = c.strip_prefix("mailto:") else {
            return Err(problem(
                ProblemType::UnsupportedContact,
                format!("{c:?}: only mailto: contacts"),
            ));
        };
        if addr.len() > 254
            || addr.contains(',')
            || !addr.contains('@')
            || addr.chars().any(char::is_whitespace)
        {
            return Err(problem(
                ProblemType::InvalidContact,
                format!("{c:?} is not one e-mail address"),
            ));
        }
    }
    Ok(contact)
}

/// RFC 5280 reason codes ACME may ask for; 7 is unused and 8 (removeFromCRL) is not a revocation.
fn reason_from_code(code: u8) -> Result<RevocationReason> {
    use RevocationReason as R;
    Ok(match code {
        0 => R::Unspecified,
        1 => R::KeyCompromise,
        2 => R::CaCompromise,
        3 => R::AffiliationChanged,
        4 => R::Superseded,
        5 => R::CessationOfOperation,
        6 => R::CertificateHold,
        9 => R::PrivilegeWithdrawn,
        10 => R::AaCompromise,
        _ => {
            return Err(problem(
                ProblemType::BadRevocationReason,
                format!("reason {code} is not a revocation reason"),
            ));
        }
    })
}

/// Whether challenge type `kind` proves control of an identifier: a wildcard only through dns-01 (RFC
/// 8555 §7.1.3), an IP address never through it (RFC 8738 §7).
fn offered_for(kind: &str, wildcard: bool, identifier_type: &str) -> bool {
    match kind {
        "dns-01" => identifier_type == "dns",
        _ => !wildcard,
    }
}

/// Normalizes an identifier and checks it against the RA's allowed names and ranges.
fn check_identifier(s: &AcmeSettings, id: &Identifier) -> Result<Identifier, shedu_acme::Error> {
    let rejected = |d: String| shedu_acme::Error::new(ProblemType::RejectedIdentifier, d);
    match id.kind.as_str() {
        "dns" => {
            let name = id.value.trim_end_matches('.').to_ascii_lowercase();
            let (wildcard, base) = match name.strip_prefix("*.") {
                Some(b) => (true, b),
                None => (false, name.as_str()),
            };
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            };
            if base.len() > 253 || !base.split('.').all(label_ok) || base.parse::<IpAddr>().is_ok()
            {
                return Err(shedu_acme::Error::new(
                    ProblemType::RejectedIdentifier,
                    format!("{:?} is not a DNS name", id.value),
                ));
            }
            if wildcard && !s.challenges.iter().any(|c| c == "dns-01") {
                return Err(rejected(format!(
                    "{name}: wildcards need dns-01, which this directory does not offer"
                )));
            }
            let allowed = s.allowed_dns.iter().any(|p| {
                p == "*"
                    || *p == name
                    || p.strip_prefix("*.")
                        .is_some_and(|suffix| name.ends_with(&format!(".{suffix}")))
            });
            if !allowed {
                return Err(rejected(format!(
                    "{name} is not among the names this RA issues for"
                )));
            }
            Ok(Identifier {
                kind: "dns".into(),
                value: name,
            })
        }
        "ip" => {
            let ip: IpAddr = id.value.parse().map_err(|_| {
                shedu_acme::Error::malformed(format!("{:?} is not an IP address", id.value))
            })?;
            if !s.challenges.iter().any(|c| offered_for(c, false, "ip")) {
                return Err(rejected(format!(
                    "{ip}: IP addresses need http-01 or tls-alpn-01, which this directory does not offer"
                )));
            }
            let allowed = s
                .allowed_ips
                .iter()
                .filter_map(|c| c.parse::<crate::Cidr>().ok())
                .any(|c| c.contains(ip));
            if !allowed {
                return Err(rejected(format!(
                    "{ip} is not in the ranges this RA issues for"
                )));
            }
            Ok(Identifier {
                kind: "ip".into(),
                value: ip.to_string(),
            })
        }
        other => Err(shedu_acme::Error::new(
            ProblemType::UnsupportedIdentifier,
            format!("identifier type {other:?}: dns or ip"),
        )),
    }
}

/// RFC 8555 §7.4: the CSR names exactly the order's identifiers (SANs; a common name must be one of them).
fn check_csr_names(csr: &Csr, identifiers: &[Identifier]) -> Result<(), String> {
    let mut want: Vec<(String, String)> = identifiers
        .iter()
        .map(|i| (i.kind.clone(), i.value.clone()))
        .collect();
    let mut got = Vec::new();
    for san in csr.sans_display() {
        match san.split_once(':') {
            Some(("DNS", n)) => got.push((
                "dns".to_string(),
                n.trim_end_matches('.').to_ascii_lowercase(),
            )),
            Some(("IP", ip)) => got.push(("ip".to_string(), ip.to_string())),
            _ => return Err(format!("the CSR names {san}, which the order does not")),
        }
    }
    want.sort();
    got.sort();
    got.dedup();
    if want != got {
        return Err("the CSR's names are not exactly the order's identifiers".into());
    }
    if let Some(cn) = csr.common_name() {
        let cn = cn.to_ascii_lowercase();
        if !want.iter().any(|(_, v)| *v == cn) {
            return Err(format!(
                "the CSR's common name {cn:?} is not one of the order's identifiers"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, value: &str) -> Identifier {
        Identifier {
            kind: kind.into(),
            value: value.into(),
        }
    }

    fn kind(r: Result<Identifier, shedu_acme::Error>) -> ProblemType {
        r.unwrap_err().problem
    }

    #[test]
    fn identifiers_follow_the_ra_patterns_and_ranges() {
        let s = AcmeSettings {
            allowed_dns: vec!["*.example.test".into(), "exact.test".into()],
            allowed_ips: vec!["10.1.0.0/16".into()],
            ..AcmeSettings::default()
        };
        assert_eq!(
            check_identifier(&s, &id("dns", "A.Example.Test."))
                .unwrap()
                .value,
            "a.example.test"
        );
        assert!(check_identifier(&s, &id("dns", "exact.test")).is_ok());
        assert_eq!(
            kind(check_identifier(&s, &id("dns", "example.test"))),
            ProblemType::RejectedIdentifier
        );
        assert_eq!(
            kind(check_identifier(&s, &id("dns", "sub.exact.test"))),
            ProblemType::RejectedIdentifier
        );
        assert_eq!(
            kind(check_identifier(&s, &id("dns", "evilexample.test"))),
            ProblemType::RejectedIdentifier
        );
        // Wildcards need dns-01, which is not offered.
        assert_eq!(
            kind(check_identifier(&s, &id("dns", "*.example.test"))),
            ProblemType::RejectedIdentifier
        );
        for bad in [
            "-a.example.test",
            "a..example.test",
            "a_b.example.test",
            "10.1.2.3",
            "",
        ] {
            assert_eq!(
                kind(check_identifier(&s, &id("dns", bad))),
                ProblemType::RejectedIdentifier,
                "{bad}"
            );
        }
        assert_eq!(
            check_identifier(&s, &id("ip", "10.1.2.3")).unwrap().value,
            "10.1.2.3"
        );
        assert_eq!(
            kind(check_identifier(&s, &id("ip", "10.2.0.1"))),
            ProblemType::RejectedIdentifier
        );
        assert_eq!(
            kind(check_identifier(&s, &id("ip", "nope"))),
            ProblemType::Malformed
        );
        assert_eq!(
            kind(check_identifier(&s, &id("email", "a@b"))),
            ProblemType::UnsupportedIdentifier
        );
    }

    #[test]
    fn tls_alpn_names_and_offered_challenges() {
        // RFC 8738 §6: the SNI of an IP identifier is its reverse-DNS name.
        assert_eq!(
            reverse_dns_name("192.0.2.1".parse().unwrap()),
            "1.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_dns_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        // Wildcards only through dns-01; IP addresses never through it.
        assert!(offered_for("dns-01", true, "dns"));
        assert!(!offered_for("tls-alpn-01", true, "dns"));
        assert!(!offered_for("http-01", true, "dns"));
        assert!(offered_for("tls-alpn-01", false, "ip"));
        assert!(!offered_for("dns-01", false, "ip"));
        let dns_only = AcmeSettings {
            challenges: vec!["dns-01".into()],
            allowed_ips: vec!["10.0.0.0/8".into()],
            ..AcmeSettings::default()
        };
        assert_eq!(
            kind(check_identifier(&dns_only, &id("ip", "10.0.0.1"))),
            ProblemType::RejectedIdentifier
        );
    }

    #[test]
    fn rate_limit_verdicts() {
        let limit = RateLimit {
            count: 2,
            window_secs: 3600,
        };
        let window = |count, oldest| RateWindow { count, oldest };
        match over_limit(limit, window(2, Some(100)), 200, "x: at most 2 new orders") {
            AcmeFailure::Service(Error::RateLimited {
                retry_after,
                detail,
            }) => {
                assert_eq!(retry_after, 3500);
                assert_eq!(detail, "x: at most 2 new orders in 3600 s");
            }
            other => panic!("{other:?}"),
        }
        // Never less than a second.
        assert!(matches!(
            over_limit(limit, window(5, Some(-4000)), 200, "x"),
            AcmeFailure::Service(Error::RateLimited { retry_after: 1, .. })
        ));
        let mut s = AcmeSettings::default();
        s.rate_limits.orders_per_identifier = Some(RateLimit {
            count: 1,
            window_secs: 0,
        });
        assert!(validate_settings(&s, &[]).is_err());
    }

    #[test]
    fn eab_key_debug_hides_the_hmac_key() {
        let key = EabKey {
            kid: "eab-1".into(),
            hmac_key: Some(zeroize::Zeroizing::new("s3cr3t-hmac".into())),
            created_at: 0,
            account_id: None,
        };
        let shown = format!("{key:?}");
        assert!(
            shown.contains("eab-1") && !shown.contains("s3cr3t-hmac"),
            "{shown}"
        );
    }

    #[test]
    fn contacts_and_reasons() {
        assert!(check_contacts(vec!["mailto:ops@example.test".into()]).is_ok());
        let problem = |r: Result<Vec<String>>| match r {
            Err(AcmeFailure::Protocol(e)) => e.problem,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problem(check_contacts(vec!["tel:+1".into()])),
            ProblemType::UnsupportedContact
        );
        assert_eq!(
            problem(check_contacts(vec!["mailto:a@b,c@d".into()])),
            ProblemType::InvalidContact
        );
        assert_eq!(
            reason_from_code(1).unwrap(),
            RevocationReason::KeyCompromise
        );
        for code in [7, 8, 11, 255] {
            assert!(matches!(
                reason_from_code(code),
                Err(AcmeFailure::Protocol(e)) if e.problem == ProblemType::BadRevocationReason
            ));
        }
    }

    #[test]
    fn settings_are_checked_against_the_ra() {
        let cas = vec!["ca1".to_string()];
        assert!(validate_settings(&AcmeSettings::default(), &cas).is_ok());
        let with = |f: fn(&mut AcmeSettings)| {
            let mut s = AcmeSettings::default();
            f(&mut s);
            validate_settings(&s, &cas)
        };
        assert!(with(|s| s.challenges = vec!["dns-01".into()]).is_ok());
        assert!(with(|s| s.challenges = vec!["tls-alpn-01".into()]).is_ok());
        assert!(with(|s| s.challenges = vec!["tls-alpn-02".into()]).is_err());
        assert!(
            with(|s| {
                s.profiles.insert("p".into(), "other-ca".into());
            })
            .is_err()
        );
        assert!(with(|s| s.default_profile = Some("missing".into())).is_err());
        assert!(with(|s| s.allowed_ips = vec!["not-a-cidr".into()]).is_err());
        assert!(with(|s| s.order_lifetime_secs = 1).is_err());
    }
}
