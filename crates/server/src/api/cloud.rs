//! `/api/v1/cloud-connectors`: cloud connectors (AWS IoT Core) and their per-CA and per-certificate sync
//! state. Credentials go in and are never shown again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shedu_core::{
    CaMode, CloudConnector, CloudConnectorInput, CloudCredentials, CloudProviderKind, Deletion,
    SyncItem, SyncKind, SyncState,
};
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::time_fmt::rfc3339;
use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, ApiQuery, Problem};

/// A connector as sent by a client (create, or replace all settings).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloudConnectorRequest {
    /// Unique name.
    name: String,
    /// `aws_iot`.
    #[serde(rename = "type")]
    ty: String,
    /// The region (`eu-west-1`).
    region: String,
    /// Another endpoint than `https://iot.<region>.amazonaws.com` (HTTPS; plain HTTP only on loopback).
    endpoint_url: Option<String>,
    /// Required at creation; a replace without it keeps the stored ones. Never shown again.
    credentials: Option<CredentialsDto>,
    /// The CAs to register in the cloud; their certificates follow.
    ca_ids: Vec<String>,
    /// The policy attached to every device certificate (default `shedu-devices`).
    policy_name: Option<String>,
    /// The policy's JSON document, used when the policy does not exist yet.
    policy_document: Option<String>,
    /// A thing group every thing joins.
    thing_group: Option<String>,
    /// Create a thing per device (named after the certificate's common name) and attach the certificate.
    #[serde(default)]
    register_things: bool,
    /// `default` (a verification certificate proves the CA key) or `sni_only`.
    ca_mode: Option<String>,
}

/// AWS credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialsDto {
    access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for CredentialsDto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsDto(***)")
    }
}

impl TryFrom<CloudConnectorRequest> for CloudConnectorInput {
    type Error = Problem;

    fn try_from(r: CloudConnectorRequest) -> Result<CloudConnectorInput, Problem> {
        Ok(CloudConnectorInput {
            name: r.name,
            provider: r.ty.parse::<CloudProviderKind>()?,
            region: r.region,
            endpoint_url: r.endpoint_url,
            credentials: r.credentials.map(|c| CloudCredentials {
                access_key_id: c.access_key_id,
                secret_access_key: Zeroizing::new(c.secret_access_key),
            }),
            ca_ids: r.ca_ids,
            policy_name: r.policy_name,
            policy_document: r.policy_document,
            thing_group: r.thing_group,
            register_things: r.register_things,
            ca_mode: r
                .ca_mode
                .as_deref()
                .map(str::parse::<CaMode>)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// A connector as the API shows it (never its credentials).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CloudConnectorDto {
    id: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
    region: String,
    endpoint_url: Option<String>,
    ca_ids: Vec<String>,
    policy_name: String,
    policy_document: String,
    thing_group: Option<String>,
    register_things: bool,
    ca_mode: String,
    /// Deleted with `deregister=true`: taking back what it registered; gone once that is done.
    deregistering: bool,
    created_at: String,
    updated_at: String,
}

impl From<CloudConnector> for CloudConnectorDto {
    fn from(c: CloudConnector) -> CloudConnectorDto {
        CloudConnectorDto {
            id: c.id,
            name: c.name,
            ty: c.provider.as_str().to_string(),
            region: c.region,
            endpoint_url: c.endpoint_url,
            ca_ids: c.ca_ids,
            policy_name: c.policy_name,
            policy_document: c.policy_document,
            thing_group: c.thing_group,
            register_things: c.register_things,
            ca_mode: c.ca_mode.as_str().to_string(),
            deregistering: c.deregistering,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// Every connector.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CloudConnectorList {
    items: Vec<CloudConnectorDto>,
}

/// One CA or certificate as a connector syncs it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncItemDto {
    /// `ca` or `certificate`.
    kind: String,
    ca_id: String,
    /// The certificate's serial (hex); absent for a CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    /// What the cloud should show: `active`, `revoked`, `inactive` (certificate hold), `decommissioned`
    /// (revoked with `cessation_of_operation`: also detached from its thing).
    desired: String,
    /// `pending`, `synced` or `failed`.
    state: String,
    /// Why the last attempt failed (or what a pending item waits for).
    error: Option<String>,
    /// Failed attempts since the last success.
    attempts: i64,
    /// When the next attempt is due, unless synced.
    retry_at: Option<String>,
    /// The cloud's certificate id.
    cloud_id: Option<String>,
    /// The cloud's certificate ARN.
    cloud_arn: Option<String>,
    /// The thing the certificate is attached to.
    thing_name: Option<String>,
    updated_at: String,
}

impl From<SyncItem> for SyncItemDto {
    fn from(i: SyncItem) -> SyncItemDto {
        SyncItemDto {
            kind: i.kind.as_str().to_string(),
            ca_id: i.ca_id,
            serial: i.serial,
            desired: i.desired.as_str().to_string(),
            state: i.state.as_str().to_string(),
            error: i.error,
            attempts: i.attempts,
            retry_at: i.retry_at.map(rfc3339),
            cloud_id: i.cloud_id,
            cloud_arn: i.cloud_arn,
            thing_name: i.thing_name,
            updated_at: rfc3339(i.updated_at),
        }
    }
}

/// A connector's sync state.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncStateList {
    items: Vec<SyncItemDto>,
}

/// Sync state filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncStateQuery {
    /// Only `ca` or `certificate` items.
    kind: Option<String>,
    /// Only `pending`, `synced` or `failed` items.
    state: Option<String>,
}

fn bad_filter(field: &str, value: &str, allowed: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-filter",
        format!("{field}={value:?}: use {allowed}"),
    )
}

/// Create a connector. Its CAs are registered in the cloud in the background; see its state.
#[utoipa::path(post, path = "/api/v1/cloud-connectors", tag = "cloud", request_body = CloudConnectorRequest,
    responses((status = 201, body = CloudConnectorDto), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<CloudConnectorRequest>,
) -> Result<(StatusCode, ApiJson<CloudConnectorDto>), Problem> {
    let c = state.services.cloud.create(&actor, req.try_into()?).await?;
    Ok((StatusCode::CREATED, ApiJson(c.into())))
}

/// Every connector.
#[utoipa::path(get, path = "/api/v1/cloud-connectors", tag = "cloud",
    responses((status = 200, body = CloudConnectorList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
) -> Result<ApiJson<CloudConnectorList>, Problem> {
    let items = state
        .services
        .cloud
        .list()
        .await?
        .into_iter()
        .map(CloudConnectorDto::from)
        .collect();
    Ok(ApiJson(CloudConnectorList { items }))
}

/// One connector.
#[utoipa::path(get, path = "/api/v1/cloud-connectors/{id}", tag = "cloud",
    params(("id" = String, Path, description = "connector id")),
    responses((status = 200, body = CloudConnectorDto), (status = 404, body = Problem)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<CloudConnectorDto>, Problem> {
    Ok(ApiJson(state.services.cloud.get(&id).await?.into()))
}

/// Replace a connector's settings; without `credentials` the stored ones stay. Failed items are retried now.
#[utoipa::path(put, path = "/api/v1/cloud-connectors/{id}", tag = "cloud", request_body = CloudConnectorRequest,
    params(("id" = String, Path, description = "connector id")),
    responses((status = 200, body = CloudConnectorDto), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn replace(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CloudConnectorRequest>,
) -> Result<ApiJson<CloudConnectorDto>, Problem> {
    Ok(ApiJson(
        state
            .services
            .cloud
            .update(&actor, &id, req.try_into()?)
            .await?
            .into(),
    ))
}

/// Delete options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteQuery {
    /// `true`: first take back from the cloud what the connector registered (certificates, then CAs);
    /// the connector goes when that is done (202). Default `false`: delete now, the cloud keeps all (204).
    #[serde(default)]
    deregister: bool,
}

/// Delete a connector and its sync state; with `deregister=true`, after taking back what it registered.
#[utoipa::path(delete, path = "/api/v1/cloud-connectors/{id}", tag = "cloud",
    params(("id" = String, Path, description = "connector id"), DeleteQuery),
    responses((status = 202), (status = 204), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, Problem> {
    Ok(
        match state
            .services
            .cloud
            .delete(&actor, &id, q.deregister)
            .await?
        {
            Deletion::Deleted => StatusCode::NO_CONTENT,
            Deletion::Deregistering => StatusCode::ACCEPTED,
        },
    )
}

/// Catch up with every valid certificate of the connector's CAs again (idempotent: what is queued or
/// synced stays as it is). Creating a connector, or binding a CA, does this on its own.
#[utoipa::path(post, path = "/api/v1/cloud-connectors/{id}/backfill", tag = "cloud",
    params(("id" = String, Path, description = "connector id")),
    responses((status = 202), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn backfill(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.services.cloud.backfill(&actor, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// A connector's per-CA and per-certificate sync state (CAs first).
#[utoipa::path(get, path = "/api/v1/cloud-connectors/{id}/state", tag = "cloud",
    params(("id" = String, Path, description = "connector id"), SyncStateQuery),
    responses((status = 200, body = SyncStateList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn sync_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SyncStateQuery>,
) -> Result<ApiJson<SyncStateList>, Problem> {
    let kind = match q.kind.as_deref() {
        None => None,
        Some("ca") => Some(SyncKind::Ca),
        Some("certificate") => Some(SyncKind::Certificate),
        Some(other) => return Err(bad_filter("kind", other, "ca or certificate")),
    };
    let wanted = match q.state.as_deref() {
        None => None,
        Some("pending") => Some(SyncState::Pending),
        Some("synced") => Some(SyncState::Synced),
        Some("failed") => Some(SyncState::Failed),
        Some(other) => return Err(bad_filter("state", other, "pending, synced or failed")),
    };
    let items = state
        .services
        .cloud
        .state(&id, kind, wanted)
        .await?
        .into_iter()
        .map(SyncItemDto::from)
        .collect();
    Ok(ApiJson(SyncStateList { items }))
}
