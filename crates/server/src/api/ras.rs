//! `/api/v1/ras`: registration authorities (create, list, show, replace, delete).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shedu_core::{AcmeRateLimits, AcmeSettings, AuthMode, Ra, RaInput, RateLimit};
use utoipa::ToSchema;

use super::time_fmt::rfc3339;
use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, Problem};

/// An RA as sent by a client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RaRequest {
    /// Unique name.
    name: String,
    /// CAs devices may enrol for through this RA.
    ca_ids: Vec<String>,
    /// The CA of EST enrolments (must be in `ca_ids`); the first of `ca_ids` when left out.
    default_ca_id: Option<String>,
    /// Enrolment rules.
    enrollment: EnrollmentDto,
    /// PEM CSR for the RA's own certificate (issued by the internal RA CA); the operator keeps the key.
    csr: Option<String>,
    /// ACME directory settings (`/acme/{id or name}/directory`); none: no ACME.
    acme: Option<AcmeDto>,
}

/// An RA's ACME settings on the wire; unset fields take their defaults.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcmeDto {
    /// Whether the directory answers (default true).
    #[serde(default = "yes")]
    enabled: bool,
    /// newAccount needs an external account binding (default false).
    #[serde(default)]
    eab_required: bool,
    /// An EAB key may bind several accounts (default false: single-use).
    #[serde(default)]
    eab_reusable: bool,
    /// Offered challenge types (default `["http-01"]`).
    challenges: Option<Vec<String>>,
    /// DNS name patterns: `example.com`, `*.example.com` (names below it), `*` (default: any).
    allowed_dns: Option<Vec<String>>,
    /// IP ranges (CIDR) for RFC 8738 identifiers (default: none).
    #[serde(default)]
    allowed_ips: Vec<String>,
    /// Profile name → CA id (one of the RA's CAs).
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, String>,
    /// Profile of orders that name none (default: the RA's default CA).
    default_profile: Option<String>,
    /// Seconds an order stays open (default 86400).
    order_lifetime_secs: Option<i64>,
    /// Seconds an authorization stays valid (default 86400).
    authz_lifetime_secs: Option<i64>,
    /// Terms of service URL for the directory's meta.
    terms_of_service: Option<String>,
    /// A new order reuses the account's valid authorizations for its identifiers (default true).
    #[serde(default = "yes")]
    authz_reuse: bool,
    /// Limits on new orders and accounts (default: none).
    #[serde(default)]
    rate_limits: AcmeRateLimitsDto,
}

/// Limits on an RA's new ACME orders and accounts; over one, newOrder or newAccount is `rateLimited` (429)
/// with `Retry-After`.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcmeRateLimitsDto {
    /// New orders per account.
    orders_per_account: Option<RateLimitDto>,
    /// New orders naming an identifier, over all the RA's accounts.
    orders_per_identifier: Option<RateLimitDto>,
    /// New accounts per client address.
    accounts_per_address: Option<RateLimitDto>,
    /// Failed validations per account and identifier; at the limit, the account's new orders naming the
    /// identifier are refused.
    failed_validations: Option<RateLimitDto>,
}

/// At most `count` in any `window_secs` seconds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitDto {
    /// How many (at least 1).
    count: u32,
    /// The sliding window in seconds (1 to 2592000).
    window_secs: i64,
}

impl From<RateLimitDto> for RateLimit {
    fn from(d: RateLimitDto) -> RateLimit {
        RateLimit {
            count: d.count,
            window_secs: d.window_secs,
        }
    }
}

impl From<RateLimit> for RateLimitDto {
    fn from(l: RateLimit) -> RateLimitDto {
        RateLimitDto {
            count: l.count,
            window_secs: l.window_secs,
        }
    }
}

fn yes() -> bool {
    true
}

impl From<AcmeDto> for AcmeSettings {
    fn from(d: AcmeDto) -> AcmeSettings {
        let default = AcmeSettings::default();
        AcmeSettings {
            enabled: d.enabled,
            eab_required: d.eab_required,
            eab_reusable: d.eab_reusable,
            challenges: d.challenges.unwrap_or(default.challenges),
            allowed_dns: d.allowed_dns.unwrap_or(default.allowed_dns),
            allowed_ips: d.allowed_ips,
            profiles: d.profiles,
            default_profile: d.default_profile,
            order_lifetime_secs: d.order_lifetime_secs.unwrap_or(default.order_lifetime_secs),
            authz_lifetime_secs: d.authz_lifetime_secs.unwrap_or(default.authz_lifetime_secs),
            terms_of_service: d.terms_of_service,
            authz_reuse: d.authz_reuse,
            rate_limits: AcmeRateLimits {
                orders_per_account: d.rate_limits.orders_per_account.map(RateLimit::from),
                orders_per_identifier: d.rate_limits.orders_per_identifier.map(RateLimit::from),
                accounts_per_address: d.rate_limits.accounts_per_address.map(RateLimit::from),
                failed_validations: d.rate_limits.failed_validations.map(RateLimit::from),
            },
        }
    }
}

impl From<AcmeSettings> for AcmeDto {
    fn from(s: AcmeSettings) -> AcmeDto {
        AcmeDto {
            enabled: s.enabled,
            eab_required: s.eab_required,
            eab_reusable: s.eab_reusable,
            challenges: Some(s.challenges),
            allowed_dns: Some(s.allowed_dns),
            allowed_ips: s.allowed_ips,
            profiles: s.profiles,
            default_profile: s.default_profile,
            order_lifetime_secs: Some(s.order_lifetime_secs),
            authz_lifetime_secs: Some(s.authz_lifetime_secs),
            terms_of_service: s.terms_of_service,
            authz_reuse: s.authz_reuse,
            rate_limits: AcmeRateLimitsDto {
                orders_per_account: s.rate_limits.orders_per_account.map(RateLimitDto::from),
                orders_per_identifier: s.rate_limits.orders_per_identifier.map(RateLimitDto::from),
                accounts_per_address: s.rate_limits.accounts_per_address.map(RateLimitDto::from),
                failed_validations: s.rate_limits.failed_validations.map(RateLimitDto::from),
            },
        }
    }
}

/// Enrolment rules on the wire.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrollmentDto {
    /// `client_certificate`, `one_time_secret`, `webhook`: any credential mode authenticates; `webhook`
    /// must approve as well.
    auth_modes: Vec<String>,
    /// CAs of accepted bootstrap certificates.
    #[serde(default)]
    bootstrap_ca_ids: Vec<String>,
    /// Register unknown devices on first enrolment.
    #[serde(default)]
    auto_register: bool,
    /// Re-enrolment allowed only this many days before expiry (default 30).
    reenroll_window_days: Option<u32>,
    /// Allow re-enrolment with an expired certificate.
    #[serde(default)]
    allow_expired_reenroll: bool,
    /// Revoke the replaced certificate (superseded) on re-enrolment.
    #[serde(default)]
    revoke_on_reenroll: bool,
    /// Allow `serverkeygen`.
    #[serde(default)]
    server_keygen: bool,
    /// Key type `serverkeygen` generates (default `ec-p256`).
    server_keygen_key_type: Option<String>,
    /// OIDs advertised by `csrattrs`.
    #[serde(default)]
    csr_attributes: Vec<String>,
    /// The approval webhook (`webhook` mode).
    webhook: Option<WebhookDto>,
}

/// An approval webhook.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookDto {
    /// Receives `{"ra_id","device_id","operation","csr":{…},"client_certificate"}`; must answer
    /// `{"allow": true}`.
    url: String,
    /// Milliseconds to wait (default 5000).
    timeout_ms: Option<u64>,
}

/// An RA as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RaDto {
    id: String,
    name: String,
    ca_ids: Vec<String>,
    default_ca_id: String,
    enrollment: EnrollmentDto,
    /// The RA's own certificate, PEM.
    certificate_pem: Option<String>,
    /// The EST base URL of this RA (on the HTTPS listener).
    est_path: String,
    /// ACME settings, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    acme: Option<AcmeDto>,
    /// The ACME directory path, when ACME is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    acme_directory_path: Option<String>,
    created_at: String,
    updated_at: String,
}

/// Every RA.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RaList {
    items: Vec<RaDto>,
}

impl TryFrom<RaRequest> for RaInput {
    type Error = Problem;

    fn try_from(r: RaRequest) -> Result<RaInput, Problem> {
        let e = r.enrollment;
        let auth_modes = e
            .auth_modes
            .iter()
            .map(|m| AuthMode::parse(m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RaInput {
            name: r.name,
            ca_ids: r.ca_ids,
            default_ca_id: r.default_ca_id,
            auth_modes,
            bootstrap_ca_ids: e.bootstrap_ca_ids,
            auto_register: Some(e.auto_register),
            reenroll_window_days: e.reenroll_window_days,
            allow_expired_reenroll: Some(e.allow_expired_reenroll),
            revoke_on_reenroll: Some(e.revoke_on_reenroll),
            server_keygen: Some(e.server_keygen),
            server_keygen_key_type: e.server_keygen_key_type,
            csr_attributes: e.csr_attributes,
            webhook_url: e.webhook.as_ref().map(|w| w.url.clone()),
            webhook_timeout_ms: e.webhook.and_then(|w| w.timeout_ms),
            csr: r.csr.map(String::into_bytes),
            acme: r.acme.map(AcmeSettings::from),
        })
    }
}

impl From<Ra> for RaDto {
    fn from(ra: Ra) -> RaDto {
        let e = ra.enrollment;
        RaDto {
            est_path: format!("/.well-known/est/{}", ra.id),
            acme_directory_path: ra
                .acme
                .as_ref()
                .filter(|a| a.enabled)
                .map(|_| format!("/acme/{}/directory", ra.id)),
            acme: ra.acme.map(AcmeDto::from),
            id: ra.id,
            name: ra.name,
            ca_ids: ra.ca_ids,
            default_ca_id: ra.default_ca_id,
            enrollment: EnrollmentDto {
                auth_modes: e
                    .auth_modes
                    .iter()
                    .map(|m| m.as_str().to_string())
                    .collect(),
                bootstrap_ca_ids: e.bootstrap_ca_ids,
                auto_register: e.auto_register,
                reenroll_window_days: Some(e.reenroll_window_days),
                allow_expired_reenroll: e.allow_expired_reenroll,
                revoke_on_reenroll: e.revoke_on_reenroll,
                server_keygen: e.server_keygen,
                server_keygen_key_type: Some(e.server_keygen_key_type.as_str().to_string()),
                csr_attributes: e.csr_attributes,
                webhook: e.webhook.map(|w| WebhookDto {
                    url: w.url,
                    timeout_ms: Some(w.timeout_ms),
                }),
            },
            certificate_pem: ra
                .certificate_der
                .as_deref()
                .map(shedu_pki::pem_encode_cert),
            created_at: rfc3339(ra.created_at),
            updated_at: rfc3339(ra.updated_at),
        }
    }
}

/// Create an RA. Its id is the EST label: `/.well-known/est/{id}/simpleenroll`.
#[utoipa::path(post, path = "/api/v1/ras", tag = "ras", request_body = RaRequest,
    responses((status = 201, body = RaDto), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<RaRequest>,
) -> Result<(StatusCode, ApiJson<RaDto>), Problem> {
    let ra = state
        .services
        .enrollment
        .create_ra(&actor, req.try_into()?)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(ra.into())))
}

/// Every RA.
#[utoipa::path(get, path = "/api/v1/ras", tag = "ras", responses((status = 200, body = RaList)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<ApiJson<RaList>, Problem> {
    let items = state
        .services
        .enrollment
        .ras()
        .await?
        .into_iter()
        .map(RaDto::from)
        .collect();
    Ok(ApiJson(RaList { items }))
}

/// One RA.
#[utoipa::path(get, path = "/api/v1/ras/{id}", tag = "ras", params(("id" = String, Path, description = "RA id")),
    responses((status = 200, body = RaDto), (status = 404, body = Problem)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<RaDto>, Problem> {
    Ok(ApiJson(state.services.enrollment.ra(&id).await?.into()))
}

/// Replace an RA's settings (for example its authorized CAs). A `csr` replaces its certificate.
#[utoipa::path(put, path = "/api/v1/ras/{id}", tag = "ras", request_body = RaRequest,
    params(("id" = String, Path, description = "RA id")),
    responses((status = 200, body = RaDto), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RaRequest>,
) -> Result<ApiJson<RaDto>, Problem> {
    Ok(ApiJson(
        state
            .services
            .enrollment
            .update_ra(&actor, &id, req.try_into()?)
            .await?
            .into(),
    ))
}

/// Delete an RA. Refused (409 `ra-has-devices`) while one of its devices is not decommissioned; decommissioned
/// devices and their certificates stay.
#[utoipa::path(delete, path = "/api/v1/ras/{id}", tag = "ras", params(("id" = String, Path, description = "RA id")),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.services.enrollment.delete_ra(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new EAB key: the HMAC key is shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EabCreated {
    /// The key id (the EAB `kid`).
    kid: String,
    /// The HMAC key, base64url (HS256); stored sealed, never shown again.
    hmac_key: String,
}

/// An EAB key as listed (without its HMAC key).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EabDto {
    kid: String,
    created_at: String,
    /// The account it bound, once used.
    account_id: Option<String>,
}

/// An RA's EAB keys.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EabList {
    items: Vec<EabDto>,
}

/// Make an ACME external account binding key for an RA. The HMAC key is in this answer only.
#[utoipa::path(post, path = "/api/v1/ras/{id}/acme/eab", tag = "ras",
    params(("id" = String, Path, description = "RA id")),
    responses((status = 201, body = EabCreated), (status = 404, body = Problem)))]
pub(crate) async fn eab_create(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<EabCreated>), Problem> {
    let key = state.services.acme.eab_create(&actor, &id).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(EabCreated {
            kid: key.kid,
            hmac_key: key.hmac_key.map(|k| k.to_string()).unwrap_or_default(),
        }),
    ))
}

/// An RA's ACME external account binding keys (without their HMAC keys).
#[utoipa::path(get, path = "/api/v1/ras/{id}/acme/eab", tag = "ras",
    params(("id" = String, Path, description = "RA id")),
    responses((status = 200, body = EabList), (status = 404, body = Problem)))]
pub(crate) async fn eab_list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<EabList>, Problem> {
    let items = state
        .services
        .acme
        .eab_list(&id)
        .await?
        .into_iter()
        .map(|k| EabDto {
            kid: k.kid,
            created_at: rfc3339(k.created_at),
            account_id: k.account_id,
        })
        .collect();
    Ok(ApiJson(EabList { items }))
}

/// Delete an ACME external account binding key (accounts it bound stay).
#[utoipa::path(delete, path = "/api/v1/ras/{id}/acme/eab/{kid}", tag = "ras",
    params(("id" = String, Path, description = "RA id"), ("kid" = String, Path, description = "EAB key id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub(crate) async fn eab_delete(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path((id, kid)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    state.services.acme.eab_delete(&actor, &id, &kid).await?;
    Ok(StatusCode::NO_CONTENT)
}
