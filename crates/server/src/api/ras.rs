//! `/api/v1/ras`: registration authorities (create, list, show, replace, delete).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shedu_core::{AuthMode, Ra, RaInput};
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
        })
    }
}

impl From<Ra> for RaDto {
    fn from(ra: Ra) -> RaDto {
        let e = ra.enrollment;
        RaDto {
            est_path: format!("/.well-known/est/{}", ra.id),
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
