//! Grants on KMIP objects, Cosmian-compatible: an owner grants and revokes operations per object and
//! user, lists an object's grants, and every user lists what they own and what they were granted. The
//! user names are the KMIP users' (a client certificate's CN, a user's name).

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, Problem};

/// A grant or revocation (Cosmian's `Access`).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct AccessRequest {
    /// The object.
    pub unique_identifier: String,
    /// The user granted (or losing) the operations.
    pub user_id: String,
    /// The operations (`get`, `get_attributes`, `locate`, `encrypt`, `decrypt`, `sign`, …).
    pub operation_types: Vec<String>,
}

/// Cosmian's answer to a grant or a revocation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SuccessResponse {
    /// What was done.
    pub success: String,
}

/// A user's grants on an object.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserAccess {
    /// The grantee.
    pub user_id: String,
    /// The granted operations.
    pub operations: Vec<String>,
}

/// An object owned by or granted to the caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ObjectAccess {
    /// The object.
    pub object_id: String,
    /// Its owner.
    pub owner_id: String,
    /// Its state (`PreActive`, `Active`, …).
    pub state: String,
    /// Its object type (`SymmetricKey`, …).
    pub object_type: String,
    /// The caller's granted operations (empty for the caller's own objects).
    pub operations: Vec<String>,
}

/// Grant a user operations on an object you own.
#[utoipa::path(post, path = "/api/v1/kms/access/grant", tag = "kmip", request_body = AccessRequest,
    responses((status = 200, body = SuccessResponse), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn grant(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<AccessRequest>,
) -> Result<ApiJson<SuccessResponse>, Problem> {
    change(state, actor, req, true).await
}

/// Revoke a user's operations on an object you own.
#[utoipa::path(post, path = "/api/v1/kms/access/revoke", tag = "kmip", request_body = AccessRequest,
    responses((status = 200, body = SuccessResponse), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<AccessRequest>,
) -> Result<ApiJson<SuccessResponse>, Problem> {
    change(state, actor, req, false).await
}

async fn change(
    state: AppState,
    actor: shedu_core::AuditContext,
    req: AccessRequest,
    add: bool,
) -> Result<ApiJson<SuccessResponse>, Problem> {
    state
        .services
        .kmip
        .grant(
            &actor,
            &req.unique_identifier,
            &req.user_id,
            &req.operation_types,
            add,
        )
        .await?;
    let verb = if add { "granted" } else { "revoked" };
    Ok(ApiJson(SuccessResponse {
        success: format!(
            "Access for {} {verb} on {}",
            req.user_id, req.unique_identifier
        ),
    }))
}

/// The grants on an object you own.
#[utoipa::path(get, path = "/api/v1/kms/access/list/{id}", tag = "kmip",
    params(("id" = String, Path, description = "The object's Unique Identifier")),
    responses((status = 200, body = Vec<UserAccess>), (status = 404, body = Problem)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(uid): Path<String>,
) -> Result<ApiJson<Vec<UserAccess>>, Problem> {
    let grants = state.services.kmip.grants(&actor, &uid).await?;
    Ok(ApiJson(
        grants
            .into_iter()
            .map(|g| UserAccess {
                user_id: g.user_id,
                operations: g.operations,
            })
            .collect(),
    ))
}

/// The objects you own.
#[utoipa::path(get, path = "/api/v1/kms/access/owned", tag = "kmip",
    responses((status = 200, body = Vec<ObjectAccess>)))]
pub(crate) async fn owned(
    State(state): State<AppState>,
    Actor(actor): Actor,
) -> Result<ApiJson<Vec<ObjectAccess>>, Problem> {
    let objects = state.services.kmip.owned(&actor).await?;
    Ok(ApiJson(objects.into_iter().map(object_access).collect()))
}

/// The objects others granted you operations on.
#[utoipa::path(get, path = "/api/v1/kms/access/obtained", tag = "kmip",
    responses((status = 200, body = Vec<ObjectAccess>)))]
pub(crate) async fn obtained(
    State(state): State<AppState>,
    Actor(actor): Actor,
) -> Result<ApiJson<Vec<ObjectAccess>>, Problem> {
    let objects = state.services.kmip.obtained(&actor).await?;
    Ok(ApiJson(objects.into_iter().map(object_access).collect()))
}

fn object_access(o: shedu_core::KmipObjectSummary) -> ObjectAccess {
    ObjectAccess {
        object_id: o.uid,
        owner_id: o.owner,
        state: o.state,
        object_type: o.object_type,
        operations: o.operations,
    }
}
