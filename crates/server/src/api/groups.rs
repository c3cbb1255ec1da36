//! Device groups: saved, nestable filters over the registry, with live counts per status.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shedu_core::{DeviceGroup, DeviceGroupDetail, DeviceGroupFilter, DeviceStatus, NewDeviceGroup};
use utoipa::ToSchema;

use super::time_fmt::rfc3339;
use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, Problem};

/// A device filter; empty fields match every device.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FilterDto {
    pub ra_id: Option<String>,
    pub status: Option<String>,
    /// Every one must be present.
    pub tags: Vec<String>,
    /// Every value must equal the device's metadata value under its key (JSON equality).
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

impl From<DeviceGroupFilter> for FilterDto {
    fn from(f: DeviceGroupFilter) -> FilterDto {
        FilterDto {
            ra_id: f.ra_id,
            status: f.status.map(|s| s.to_string()),
            tags: f.tags,
            metadata: f.metadata,
        }
    }
}

/// A device group and its own filter.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupDto {
    pub id: String,
    pub name: String,
    /// The group this one narrows: its filter is ANDed with every ancestor's.
    pub parent_id: Option<String>,
    #[serde(flatten)]
    pub filter: FilterDto,
    pub created_at: String,
}

impl From<DeviceGroup> for GroupDto {
    fn from(g: DeviceGroup) -> GroupDto {
        GroupDto {
            id: g.id,
            name: g.name,
            parent_id: g.parent_id,
            filter: g.filter.into(),
            created_at: rfc3339(g.created_at),
        }
    }
}

/// Devices of a group per status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CountsDto {
    pub pending_provisioning: i64,
    pub fully_provisioned: i64,
    pub requires_action: i64,
    pub with_warnings: i64,
    pub decommissioned: i64,
    pub total: i64,
}

/// A group with its combined filter (its own ANDed with its ancestors') and live counts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupDetailDto {
    #[serde(flatten)]
    pub group: GroupDto,
    pub combined_filter: FilterDto,
    pub counts: CountsDto,
}

impl From<DeviceGroupDetail> for GroupDetailDto {
    fn from(d: DeviceGroupDetail) -> GroupDetailDto {
        let count = |status: DeviceStatus| {
            d.counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n)
        };
        GroupDetailDto {
            counts: CountsDto {
                pending_provisioning: count(DeviceStatus::PendingProvisioning),
                fully_provisioned: count(DeviceStatus::FullyProvisioned),
                requires_action: count(DeviceStatus::RequiresAction),
                with_warnings: count(DeviceStatus::WithWarnings),
                decommissioned: count(DeviceStatus::Decommissioned),
                total: d.counts.iter().map(|(_, n)| n).sum(),
            },
            group: d.group.into(),
            combined_filter: d.combined.into(),
        }
    }
}

/// The group list, by name.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupList {
    pub items: Vec<GroupDto>,
}

/// Create a group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateGroupRequest {
    /// Unique name.
    pub name: String,
    /// Nest under this group: the new group's filter is ANDed with its ancestors' and must not contradict
    /// them.
    pub parent_id: Option<String>,
    pub ra_id: Option<String>,
    /// A device status.
    pub status: Option<String>,
    /// Every one must be present.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Key to a string, number or boolean that the device's metadata value must equal.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Every device group.
#[utoipa::path(get, path = "/api/v1/device-groups", tag = "devices",
    responses((status = 200, body = GroupList)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<ApiJson<GroupList>, Problem> {
    let groups = state.services.devices.device_groups().await?;
    Ok(ApiJson(GroupList {
        items: groups.into_iter().map(GroupDto::from).collect(),
    }))
}

/// Create a device group (a saved filter), optionally nested under another.
#[utoipa::path(post, path = "/api/v1/device-groups", tag = "devices", request_body = CreateGroupRequest,
    responses((status = 201, body = GroupDto), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<CreateGroupRequest>,
) -> Result<(StatusCode, ApiJson<GroupDto>), Problem> {
    let group = state
        .services
        .devices
        .create_device_group(
            &actor,
            NewDeviceGroup {
                name: req.name,
                parent_id: req.parent_id,
                filter: DeviceGroupFilter {
                    ra_id: req.ra_id,
                    status: req.status.as_deref().map(str::parse).transpose()?,
                    tags: req.tags,
                    metadata: req.metadata,
                },
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(group.into())))
}

/// One group with its combined filter and how many of its devices are in each status, counted now.
#[utoipa::path(get, path = "/api/v1/device-groups/{id}", tag = "devices",
    params(("id" = String, Path, description = "Group id")),
    responses((status = 200, body = GroupDetailDto), (status = 404, body = Problem)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<GroupDetailDto>, Problem> {
    Ok(ApiJson(
        state.services.devices.device_group(&id).await?.into(),
    ))
}

/// Delete a group (its devices stay). A group with child groups is a conflict.
#[utoipa::path(delete, path = "/api/v1/device-groups/{id}", tag = "devices",
    params(("id" = String, Path, description = "Group id")),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state
        .services
        .devices
        .delete_device_group(&actor, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
