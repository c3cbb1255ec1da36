//! The device registry: list and filter devices, show one with its slots and log, pre-register, edit,
//! decommission, and hand out a one-time enrolment secret.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shedu_core::{
    Device, DeviceDetail, DeviceLogEntry, DeviceQuery, DeviceUpdate, NewDevice, SlotCertificate,
};
use utoipa::{IntoParams, ToSchema};

use super::time_fmt::rfc3339;
use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, ApiQuery, Problem};

/// Device listing filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceListQuery {
    /// Registered by this RA.
    pub ra_id: Option<String>,
    /// `pending_provisioning`, `fully_provisioned`, `requires_action`, `with_warnings` or `decommissioned`.
    pub status: Option<String>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// A device.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceDto {
    pub id: String,
    pub ra_id: String,
    pub alias: Option<String>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// `pending_provisioning`, `fully_provisioned`, `requires_action`, `with_warnings` or `decommissioned`,
    /// derived from the slots.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Device> for DeviceDto {
    fn from(d: Device) -> DeviceDto {
        DeviceDto {
            id: d.id,
            ra_id: d.ra_id,
            alias: d.alias,
            tags: d.tags,
            metadata: d.metadata,
            status: d.status.to_string(),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// One page of devices, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DevicePage {
    pub items: Vec<DeviceDto>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A certificate issued into a slot.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SlotCertificateDto {
    pub serial: String,
    /// `active`, `about_to_expire`, `expired` or `revoked`, as of the last lifecycle sweep or revocation.
    pub status: String,
    pub not_after: String,
    pub issued_at: String,
    /// `enroll` or `reenroll`.
    pub kind: String,
}

impl From<SlotCertificate> for SlotCertificateDto {
    fn from(c: SlotCertificate) -> SlotCertificateDto {
        SlotCertificateDto {
            serial: c.serial,
            status: c.status.to_string(),
            not_after: rfc3339(c.not_after),
            issued_at: rfc3339(c.issued_at),
            kind: if c.reenrollment { "reenroll" } else { "enroll" }.into(),
        }
    }
}

/// An identity slot: the device's certificates from one CA.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SlotDto {
    /// The slot id: the CA id.
    pub ca_id: String,
    /// The current certificate.
    pub active: Option<SlotCertificateDto>,
    /// Every certificate issued into the slot, oldest first.
    pub history: Vec<SlotCertificateDto>,
}

/// An entry of the device's log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceLogDto {
    pub time: String,
    /// `registered`, `enrolled`, `reenrolled`, `status_changed`, `certificate_revoked`, `updated`,
    /// `secret_set` or `decommissioned`.
    pub kind: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<DeviceLogEntry> for DeviceLogDto {
    fn from(e: DeviceLogEntry) -> DeviceLogDto {
        DeviceLogDto {
            time: rfc3339(e.time),
            kind: e.kind,
            message: e.message,
            data: e.data,
        }
    }
}

/// A device with its slots and its latest log entries (newest first).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceDetailDto {
    #[serde(flatten)]
    pub device: DeviceDto,
    pub slots: Vec<SlotDto>,
    pub events: Vec<DeviceLogDto>,
}

impl From<DeviceDetail> for DeviceDetailDto {
    fn from(d: DeviceDetail) -> DeviceDetailDto {
        DeviceDetailDto {
            device: d.device.into(),
            slots: d
                .slots
                .into_iter()
                .map(|s| SlotDto {
                    ca_id: s.ca_id,
                    active: s.active.map(Into::into),
                    history: s.history.into_iter().map(Into::into).collect(),
                })
                .collect(),
            events: d.log.into_iter().map(Into::into).collect(),
        }
    }
}

/// Pre-register a device so that it can enrol with a one-time secret.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterDeviceRequest {
    /// The id it enrols with (its CSR's common name).
    pub id: String,
    /// The RA it enrols through.
    pub ra_id: String,
    pub alias: Option<String>,
    /// Letters, digits and `-_.:=/@`, up to 64 characters each.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form attributes (a JSON object, up to 16 KiB).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Change a device; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateDeviceRequest {
    /// The new alias; `""` clears it.
    pub alias: Option<String>,
    /// The new tags (replacing the old).
    pub tags: Option<Vec<String>>,
    /// The new metadata (replacing the old).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

/// A one-time enrolment secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnrollmentSecretDto {
    /// Give it to the device: EST accepts it once (HTTP Basic password or bearer token).
    pub secret: String,
}

/// List devices, newest first, by RA, status and tag, with a cursor that is stable under inserts.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceListQuery),
    responses((status = 200, body = DevicePage), (status = 400, body = Problem)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeviceListQuery>,
) -> Result<ApiJson<DevicePage>, Problem> {
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                Problem::new(StatusCode::BAD_REQUEST, "invalid-query", "invalid cursor")
            })
        })
        .transpose()?;
    let query = DeviceQuery {
        ra_id: q.ra_id,
        status: q.status.as_deref().map(str::parse).transpose()?,
        tag: q.tag,
        cursor,
        limit: q.limit,
    };
    let page = state.services.devices.list(query).await?;
    Ok(ApiJson(DevicePage {
        items: page.items.into_iter().map(DeviceDto::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// Pre-register a device for an RA (`pending_provisioning` until it enrols).
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = RegisterDeviceRequest,
    responses((status = 201, body = DeviceDto), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<RegisterDeviceRequest>,
) -> Result<(StatusCode, ApiJson<DeviceDto>), Problem> {
    let device = state
        .services
        .devices
        .register_device(
            &actor,
            NewDevice {
                id: req.id,
                ra_id: req.ra_id,
                alias: req.alias,
                tags: req.tags,
                metadata: req.metadata,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(device.into())))
}

/// One device with its slots (active certificate and history per CA) and its latest log entries.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceDetailDto), (status = 404, body = Problem)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<DeviceDetailDto>, Problem> {
    Ok(ApiJson(state.services.devices.device(&id).await?.into()))
}

/// Change a device's alias, tags or metadata.
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "devices", request_body = UpdateDeviceRequest,
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceDto), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateDeviceRequest>,
) -> Result<ApiJson<DeviceDto>, Problem> {
    let update = DeviceUpdate {
        alias: req.alias.map(|a| Some(a).filter(|a| !a.is_empty())),
        tags: req.tags,
        metadata: req.metadata,
    };
    Ok(ApiJson(
        state
            .services
            .devices
            .update_device(&actor, &id, update)
            .await?
            .into(),
    ))
}

/// Decommission a device: its valid certificates are revoked (`cessation_of_operation`) and it is retired
/// for good. A second call is a conflict.
#[utoipa::path(post, path = "/api/v1/devices/{id}/decommission", tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceDto), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn decommission(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<ApiJson<DeviceDto>, Problem> {
    Ok(ApiJson(
        state
            .services
            .devices
            .decommission_device(&actor, &id)
            .await?
            .into(),
    ))
}

/// Set a new one-time enrolment secret (replacing an unused one). The response is the only time it is
/// shown; only its hash is stored.
#[utoipa::path(post, path = "/api/v1/devices/{id}/enrollment-secret", tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    responses((status = 201, body = EnrollmentSecretDto), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub(crate) async fn enrollment_secret(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<EnrollmentSecretDto>), Problem> {
    let secret = state
        .services
        .devices
        .set_enrollment_secret(&actor, &id)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(EnrollmentSecretDto { secret })))
}
