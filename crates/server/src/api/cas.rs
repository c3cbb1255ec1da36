//! `/api/v1/cas`: create, import, list, show, change a profile.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use shedu_core::{EngineKind, ImportCa, NewCa};
use shedu_pki::KeyType;

use super::dto::{CaDto, CaList, CreateCaRequest, ImportCaRequest, UpdateCaRequest};
use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, Problem};

/// Create a root CA, or an intermediate when `parent_id` names a managed CA.
#[utoipa::path(post, path = "/api/v1/cas", tag = "cas", request_body = CreateCaRequest,
    responses((status = 201, body = CaDto), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<CreateCaRequest>,
) -> Result<(StatusCode, ApiJson<CaDto>), Problem> {
    let key_type: KeyType = req.key_type.parse().map_err(shedu_core::Error::from)?;
    let engine = engine(req.engine.as_deref())?;
    let ca = state
        .services
        .cas
        .create(
            &actor,
            NewCa {
                name: req.name,
                key_type,
                subject: req.subject.into(),
                validity_days: req.validity_days,
                parent_id: req.parent_id,
                path_len: req.path_len,
                va: req.profile.as_ref().map(|p| p.va()).unwrap_or_default(),
                engine,
                profile: req.profile.unwrap_or_default().into(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(ca.into())))
}

/// Import an existing CA certificate, with its private key or without (then it only tracks certificates).
#[utoipa::path(post, path = "/api/v1/cas/import", tag = "cas", request_body = ImportCaRequest,
    responses((status = 201, body = CaDto), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn import(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<ImportCaRequest>,
) -> Result<(StatusCode, ApiJson<CaDto>), Problem> {
    let engine = engine(req.engine.as_deref())?;
    let ca = state
        .services
        .cas
        .import(
            &actor,
            ImportCa {
                name: req.name,
                certificate_pem: req.certificate_pem,
                private_key_pem: req.private_key_pem,
                va: req.profile.as_ref().map(|p| p.va()).unwrap_or_default(),
                engine,
                profile: req.profile.unwrap_or_default().into(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(ca.into())))
}

/// Every CA.
#[utoipa::path(get, path = "/api/v1/cas", tag = "cas", responses((status = 200, body = CaList)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<ApiJson<CaList>, Problem> {
    let items = state
        .services
        .cas
        .list()
        .await?
        .into_iter()
        .map(CaDto::from)
        .collect();
    Ok(ApiJson(CaList { items }))
}

/// One CA.
#[utoipa::path(get, path = "/api/v1/cas/{id}", tag = "cas", params(("id" = String, Path, description = "CA id")),
    responses((status = 200, body = CaDto), (status = 404, body = Problem)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<CaDto>, Problem> {
    Ok(ApiJson(state.services.cas.get(&id).await?.into()))
}

/// Change a CA's issuance profile and validation settings: the settings given replace the current ones
/// (checked as at creation), the others stay; certificates already issued are not changed. `crl_shards`
/// is fixed at creation.
#[utoipa::path(patch, path = "/api/v1/cas/{id}", tag = "cas", params(("id" = String, Path, description = "CA id")),
    request_body = UpdateCaRequest,
    responses((status = 200, body = CaDto), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateCaRequest>,
) -> Result<ApiJson<CaDto>, Problem> {
    let va = req.profile.va();
    let ca = state
        .services
        .cas
        .update_profile(&actor, &id, req.profile.into(), va)
        .await?;
    Ok(ApiJson(ca.into()))
}

fn engine(name: Option<&str>) -> Result<Option<EngineKind>, Problem> {
    Ok(name.map(str::parse).transpose()?)
}
