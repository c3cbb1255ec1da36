//! Agentless rotation: the asset inventory (`/api/v1/assets`), scans and manual rotations, executors
//! (their secret sealed and never returned), ordered routes, and runs with their step logs.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shedu_core::{
    Asset, AssetInput, AssetQuery, Executor, ExecutorInput, ExecutorSpec, KeyMode, Route,
    RouteInput, RouteMatch, RouteSettings, Run, RunQuery, RunState,
};
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::time_fmt::rfc3339;
use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, ApiQuery, Problem};

/// An asset's editable fields (POST and PUT). The computed fields are read-only: sending one is a 400.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssetRequest {
    /// Unique name: letters, digits, `.`, `-`, `_`.
    pub system_name: String,
    /// The certificate's common name (a DNS name); validation connects with it as SNI.
    pub common_name: String,
    /// More DNS names or IP addresses the certificate must cover.
    #[serde(default)]
    pub subject_alternative_name: Vec<String>,
    /// The address to connect to (IP address or host name). Required.
    pub ip_address: Option<String>,
    /// TLS port. [default: 443]
    pub port: Option<u16>,
    pub data_center: Option<String>,
    /// Matched by routes (`linux`, `panos`, …).
    pub host_platform: Option<String>,
    /// Matched by routes' globs.
    pub os_version: Option<String>,
    pub device_model: Option<String>,
    pub origin: Option<String>,
    /// Verify the host's current certificate when scanning. [default: false]
    #[serde(default)]
    pub certificate_validation: bool,
    /// The CA to issue from (the route's when unset).
    pub ca_id: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl From<AssetRequest> for AssetInput {
    fn from(r: AssetRequest) -> AssetInput {
        AssetInput {
            system_name: r.system_name,
            common_name: r.common_name,
            subject_alternative_name: r.subject_alternative_name,
            ip_address: r.ip_address,
            port: r.port.unwrap_or(443),
            data_center: r.data_center,
            host_platform: r.host_platform,
            os_version: r.os_version,
            device_model: r.device_model,
            origin: r.origin,
            certificate_validation: r.certificate_validation,
            ca_id: r.ca_id,
            labels: r.labels,
        }
    }
}

/// Change some of an asset's editable fields; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssetPatch {
    pub common_name: Option<String>,
    pub subject_alternative_name: Option<Vec<String>>,
    pub ip_address: Option<String>,
    pub port: Option<u16>,
    pub data_center: Option<String>,
    pub host_platform: Option<String>,
    pub os_version: Option<String>,
    pub device_model: Option<String>,
    pub origin: Option<String>,
    pub certificate_validation: Option<bool>,
    pub ca_id: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// An asset with its computed, read-only fields.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetDto {
    pub system_name: String,
    pub common_name: String,
    pub subject_alternative_name: Vec<String>,
    pub ip_address: Option<String>,
    pub port: u16,
    pub data_center: Option<String>,
    pub host_platform: Option<String>,
    pub os_version: Option<String>,
    pub device_model: Option<String>,
    pub origin: Option<String>,
    pub certificate_validation: bool,
    pub ca_id: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// notAfter of the certificate the host serves (scan or rotation); absent while unknown.
    pub certificate_expiration: Option<String>,
    /// SHA-256 of the certificate the host serves.
    pub current_fingerprint: Option<String>,
    /// When the scheduler takes it; absent while a run is queued or running.
    pub next_rotation_at: Option<String>,
    /// The last run's id.
    pub last_run: Option<String>,
    /// Why the scheduler passed over it (`no_route`, `failed`).
    pub skip_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Asset> for AssetDto {
    fn from(a: Asset) -> AssetDto {
        let i = a.input;
        AssetDto {
            system_name: i.system_name,
            common_name: i.common_name,
            subject_alternative_name: i.subject_alternative_name,
            ip_address: i.ip_address,
            port: i.port,
            data_center: i.data_center,
            host_platform: i.host_platform,
            os_version: i.os_version,
            device_model: i.device_model,
            origin: i.origin,
            certificate_validation: i.certificate_validation,
            ca_id: i.ca_id,
            labels: i.labels,
            certificate_expiration: a.certificate_expiration.map(rfc3339),
            current_fingerprint: a.current_fingerprint,
            next_rotation_at: a.next_rotation_at.map(rfc3339),
            last_run: a.last_run,
            skip_reason: a.skip_reason,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

/// One page of assets, in insertion order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetPage {
    pub items: Vec<AssetDto>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Asset search: every given field must match (text fields exactly).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssetListQuery {
    pub system_name: Option<String>,
    pub common_name: Option<String>,
    pub ip_address: Option<String>,
    pub data_center: Option<String>,
    pub host_platform: Option<String>,
    pub os_version: Option<String>,
    pub device_model: Option<String>,
    pub origin: Option<String>,
    pub ca_id: Option<String>,
    pub current_fingerprint: Option<String>,
    pub skip_reason: Option<String>,
    pub port: Option<u16>,
    pub certificate_validation: Option<bool>,
    /// One of the SANs.
    pub subject_alternative_name: Option<String>,
    /// `key=value`.
    pub label: Option<String>,
    /// Expiring within this many days.
    pub days_until_expiration: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// What a scan read from the host.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScanDto {
    pub certificate_expiration: String,
    pub current_fingerprint: String,
    pub subject: String,
    pub issuer: String,
}

/// A queued run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunQueued {
    pub run_id: String,
}

/// A new executor. Its `secret` (the SSH private key, or the `http` executor's signing key) is sealed at
/// once and never returned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecutorRequest {
    pub name: String,
    /// `command`, `ssh` or `http`.
    pub kind: String,
    /// For `command`: `{"program": "/abs/path", "args": [...], "rollback": false}`; for `ssh`: `{"user",
    /// "port", "host_key_fingerprint", "commands": {"csr", "install", "reload", "rollback"}}`; for `http`:
    /// `{"url": "https://{ip_address}/api/cert", "auth_header": "X-Api-Key", "rollback": false}`.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub secret: Option<String>,
}

/// An executor (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutorDto {
    pub id: String,
    pub name: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Whether a secret is sealed with it.
    pub has_secret: bool,
    pub created_at: String,
}

impl From<Executor> for ExecutorDto {
    fn from(e: Executor) -> ExecutorDto {
        ExecutorDto {
            id: e.id,
            name: e.name,
            kind: e.spec.kind().to_string(),
            settings: e.spec.settings_json(),
            has_secret: e.has_secret,
            created_at: rfc3339(e.created_at),
        }
    }
}

/// What a route matches; every given field must match.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteMatchDto {
    pub host_platform: Option<String>,
    /// A glob (`*`, `?`, `[0-9]`).
    pub os_version: Option<String>,
    /// One of these.
    #[serde(default)]
    pub device_model: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A new route (after the last one unless `position` is given; the lowest position that matches wins).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteRequest {
    pub position: Option<i64>,
    #[serde(rename = "match", default)]
    pub matcher: RouteMatchDto,
    /// Executor id or name.
    pub executor_id: String,
    pub ca_id: String,
    pub validity_days: Option<u32>,
    /// [default: 30]
    pub renew_before_days: Option<u32>,
    /// `on_device` (the device makes its key and prints a CSR) or `server` (shedu makes the key and
    /// `install` delivers it; never stored). [default: on_device]
    pub key_mode: Option<String>,
    pub key_type: Option<String>,
}

/// A route.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RouteDto {
    pub id: String,
    pub position: i64,
    #[serde(rename = "match")]
    pub matcher: RouteMatchDto,
    pub executor_id: String,
    pub ca_id: String,
    pub validity_days: Option<u32>,
    pub renew_before_days: u32,
    pub key_mode: String,
    pub key_type: Option<String>,
    pub created_at: String,
}

impl From<Route> for RouteDto {
    fn from(r: Route) -> RouteDto {
        let s = r.settings;
        RouteDto {
            id: r.id,
            position: r.position,
            matcher: RouteMatchDto {
                host_platform: s.matcher.host_platform,
                os_version: s.matcher.os_version,
                device_model: s.matcher.device_model,
                labels: s.matcher.labels,
            },
            executor_id: r.executor_id,
            ca_id: s.ca_id,
            validity_days: s.validity_days,
            renew_before_days: s.renew_before_days,
            key_mode: match s.key_mode {
                KeyMode::OnDevice => "on_device",
                KeyMode::Server => "server",
            }
            .into(),
            key_type: s.key_type,
            created_at: rfc3339(r.created_at),
        }
    }
}

/// A step of a run's log (secrets and private keys redacted).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunStepDto {
    pub time: String,
    pub step: String,
    /// `ok` or `error`.
    pub outcome: String,
    pub detail: String,
}

/// A run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunDto {
    pub id: String,
    pub system_name: String,
    /// `queued`, `running`, `succeeded`, `failed` or `rolled_back`.
    pub state: String,
    /// `manual` or `scheduled`.
    pub trigger: String,
    pub steps: Vec<RunStepDto>,
    /// The new certificate's serial, once issued.
    pub serial: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl From<Run> for RunDto {
    fn from(r: Run) -> RunDto {
        RunDto {
            id: r.id,
            system_name: r.system_name,
            state: r.state.as_str().into(),
            trigger: r.trigger,
            steps: r
                .steps
                .into_iter()
                .map(|s| RunStepDto {
                    time: rfc3339(s.time),
                    step: s.step,
                    outcome: s.outcome,
                    detail: s.detail,
                })
                .collect(),
            serial: r.serial,
            error: r.error,
            created_at: rfc3339(r.created_at),
            started_at: r.started_at.map(rfc3339),
            finished_at: r.finished_at.map(rfc3339),
        }
    }
}

/// One page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunPage {
    pub items: Vec<RunDto>,
    pub next_cursor: Option<String>,
}

/// Run listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunListQuery {
    pub system_name: Option<String>,
    /// `queued` lists the queue (newest first).
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// List and search assets.
#[utoipa::path(get, path = "/api/v1/assets", tag = "rotation", params(AssetListQuery),
    responses((status = 200, body = AssetPage), (status = 400, body = Problem)))]
pub(crate) async fn list_assets(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AssetListQuery>,
) -> Result<ApiJson<AssetPage>, Problem> {
    let equals = [
        ("system_name", q.system_name),
        ("common_name", q.common_name),
        ("ip_address", q.ip_address),
        ("data_center", q.data_center),
        ("host_platform", q.host_platform),
        ("os_version", q.os_version),
        ("device_model", q.device_model),
        ("origin", q.origin),
        ("ca_id", q.ca_id),
        ("current_fingerprint", q.current_fingerprint),
        ("skip_reason", q.skip_reason),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
    .collect();
    let page = state
        .services
        .rotation
        .assets(AssetQuery {
            equals,
            port: q.port,
            certificate_validation: q.certificate_validation,
            san: q.subject_alternative_name,
            label: q.label,
            days_until_expiration: q.days_until_expiration,
            cursor: q.cursor,
            limit: q.limit,
        })
        .await?;
    Ok(ApiJson(AssetPage {
        items: page.items.into_iter().map(AssetDto::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// Add an asset. Due at once while its expiry is unknown (scan it first to record it).
#[utoipa::path(post, path = "/api/v1/assets", tag = "rotation", request_body = AssetRequest,
    responses((status = 201, body = AssetDto), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create_asset(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<AssetRequest>,
) -> Result<(StatusCode, ApiJson<AssetDto>), Problem> {
    let asset = state
        .services
        .rotation
        .create_asset(&actor, req.into())
        .await?;
    Ok((StatusCode::CREATED, ApiJson(asset.into())))
}

/// One asset.
#[utoipa::path(get, path = "/api/v1/assets/{system_name}", tag = "rotation",
    params(("system_name" = String, Path)),
    responses((status = 200, body = AssetDto), (status = 404, body = Problem)))]
pub(crate) async fn show_asset(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<ApiJson<AssetDto>, Problem> {
    Ok(ApiJson(state.services.rotation.asset(&name).await?.into()))
}

/// Replace an asset's editable fields (`system_name` cannot change).
#[utoipa::path(put, path = "/api/v1/assets/{system_name}", tag = "rotation", request_body = AssetRequest,
    params(("system_name" = String, Path)),
    responses((status = 200, body = AssetDto), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn replace_asset(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<AssetRequest>,
) -> Result<ApiJson<AssetDto>, Problem> {
    let asset = state
        .services
        .rotation
        .replace_asset(&actor, &name, req.into())
        .await?;
    Ok(ApiJson(asset.into()))
}

/// Change some of an asset's editable fields.
#[utoipa::path(patch, path = "/api/v1/assets/{system_name}", tag = "rotation", request_body = AssetPatch,
    params(("system_name" = String, Path)),
    responses((status = 200, body = AssetDto), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn patch_asset(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(name): Path<String>,
    ApiJson(p): ApiJson<AssetPatch>,
) -> Result<ApiJson<AssetDto>, Problem> {
    let rotation = &state.services.rotation;
    let mut i = rotation.asset(&name).await?.input;
    if let Some(v) = p.common_name {
        i.common_name = v;
    }
    if let Some(v) = p.subject_alternative_name {
        i.subject_alternative_name = v;
    }
    if let Some(v) = p.port {
        i.port = v;
    }
    if let Some(v) = p.certificate_validation {
        i.certificate_validation = v;
    }
    if let Some(v) = p.labels {
        i.labels = v;
    }
    for (field, value) in [
        (&mut i.ip_address, p.ip_address),
        (&mut i.data_center, p.data_center),
        (&mut i.host_platform, p.host_platform),
        (&mut i.os_version, p.os_version),
        (&mut i.device_model, p.device_model),
        (&mut i.origin, p.origin),
        (&mut i.ca_id, p.ca_id),
    ] {
        if let Some(v) = value {
            // An empty string clears the field.
            *field = Some(v).filter(|v| !v.is_empty());
        }
    }
    Ok(ApiJson(
        rotation.replace_asset(&actor, &name, i).await?.into(),
    ))
}

/// Delete an asset (409 while a run is queued or running for it).
#[utoipa::path(delete, path = "/api/v1/assets/{system_name}", tag = "rotation",
    params(("system_name" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn delete_asset(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    state.services.rotation.delete_asset(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connect to the asset, read the certificate it serves, and record its expiry and fingerprint.
#[utoipa::path(post, path = "/api/v1/assets/{system_name}/scan", tag = "rotation",
    params(("system_name" = String, Path)),
    responses((status = 200, body = ScanDto), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn scan_asset(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(name): Path<String>,
) -> Result<ApiJson<ScanDto>, Problem> {
    let s = state.services.rotation.scan(&actor, &name).await?;
    Ok(ApiJson(ScanDto {
        certificate_expiration: rfc3339(s.certificate_expiration),
        current_fingerprint: s.current_fingerprint,
        subject: s.subject,
        issuer: s.issuer,
    }))
}

/// Rotate the asset's certificate now: queues a run (202); 409 while one is queued or running.
#[utoipa::path(post, path = "/api/v1/assets/{system_name}/rotate", tag = "rotation",
    params(("system_name" = String, Path)),
    responses((status = 202, body = RunQueued), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn rotate_asset(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(name): Path<String>,
) -> Result<(StatusCode, ApiJson<RunQueued>), Problem> {
    let run = state.services.rotation.trigger(&actor, &name).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(RunQueued { run_id: run.id })))
}

/// Executors (never their secrets).
#[utoipa::path(get, path = "/api/v1/rotation-executors", tag = "rotation",
    responses((status = 200, body = Vec<ExecutorDto>)))]
pub(crate) async fn list_executors(
    State(state): State<AppState>,
) -> Result<ApiJson<Vec<ExecutorDto>>, Problem> {
    let all = state.services.rotation.executors().await?;
    Ok(ApiJson(all.into_iter().map(ExecutorDto::from).collect()))
}

/// Add an executor; its secret is sealed at once and never returned.
#[utoipa::path(post, path = "/api/v1/rotation-executors", tag = "rotation", request_body = ExecutorRequest,
    responses((status = 201, body = ExecutorDto), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create_executor(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<ExecutorRequest>,
) -> Result<(StatusCode, ApiJson<ExecutorDto>), Problem> {
    let spec = ExecutorSpec::from_json(&req.kind, &req.settings.to_string())?;
    let executor = state
        .services
        .rotation
        .create_executor(
            &actor,
            ExecutorInput {
                name: req.name,
                spec,
                secret: req.secret.map(Zeroizing::new),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(executor.into())))
}

/// One executor, by id or name.
#[utoipa::path(get, path = "/api/v1/rotation-executors/{id}", tag = "rotation",
    params(("id" = String, Path)),
    responses((status = 200, body = ExecutorDto), (status = 404, body = Problem)))]
pub(crate) async fn show_executor(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<ExecutorDto>, Problem> {
    Ok(ApiJson(state.services.rotation.executor(&id).await?.into()))
}

/// Delete an executor (409 while a route names it).
#[utoipa::path(delete, path = "/api/v1/rotation-executors/{id}", tag = "rotation",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn delete_executor(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.services.rotation.delete_executor(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes in match order.
#[utoipa::path(get, path = "/api/v1/rotation-routes", tag = "rotation",
    responses((status = 200, body = Vec<RouteDto>)))]
pub(crate) async fn list_routes(
    State(state): State<AppState>,
) -> Result<ApiJson<Vec<RouteDto>>, Problem> {
    let all = state.services.rotation.routes().await?;
    Ok(ApiJson(all.into_iter().map(RouteDto::from).collect()))
}

/// Add a route. An unknown executor or CA, or a malformed glob, is a 400.
#[utoipa::path(post, path = "/api/v1/rotation-routes", tag = "rotation", request_body = RouteRequest,
    responses((status = 201, body = RouteDto), (status = 400, body = Problem)))]
pub(crate) async fn create_route(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<RouteRequest>,
) -> Result<(StatusCode, ApiJson<RouteDto>), Problem> {
    let key_mode = match req.key_mode.as_deref() {
        None | Some("on_device") => KeyMode::OnDevice,
        Some("server") => KeyMode::Server,
        Some(other) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-route",
                format!("key_mode {other:?} is on_device or server"),
            ));
        }
    };
    let route = state
        .services
        .rotation
        .create_route(
            &actor,
            RouteInput {
                position: req.position,
                executor: req.executor_id,
                settings: RouteSettings {
                    matcher: RouteMatch {
                        host_platform: req.matcher.host_platform,
                        os_version: req.matcher.os_version,
                        device_model: req.matcher.device_model,
                        labels: req.matcher.labels,
                    },
                    ca_id: req.ca_id,
                    validity_days: req.validity_days,
                    renew_before_days: req.renew_before_days.unwrap_or(30),
                    key_mode,
                    key_type: req.key_type,
                },
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(route.into())))
}

/// Delete a route.
#[utoipa::path(delete, path = "/api/v1/rotation-routes/{id}", tag = "rotation",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub(crate) async fn delete_route(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.services.rotation.delete_route(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs, newest first (`state=queued` shows the queue).
#[utoipa::path(get, path = "/api/v1/rotation-runs", tag = "rotation", params(RunListQuery),
    responses((status = 200, body = RunPage), (status = 400, body = Problem)))]
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RunListQuery>,
) -> Result<ApiJson<RunPage>, Problem> {
    let page = state
        .services
        .rotation
        .runs(RunQuery {
            system_name: q.system_name,
            state: q.state.as_deref().map(RunState::parse).transpose()?,
            cursor: q.cursor,
            limit: q.limit,
        })
        .await?;
    Ok(ApiJson(RunPage {
        items: page.items.into_iter().map(RunDto::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One run with its step log.
#[utoipa::path(get, path = "/api/v1/rotation-runs/{id}", tag = "rotation",
    params(("id" = String, Path)),
    responses((status = 200, body = RunDto), (status = 404, body = Problem)))]
pub(crate) async fn show_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<RunDto>, Problem> {
    Ok(ApiJson(state.services.rotation.run(&id).await?.into()))
}
