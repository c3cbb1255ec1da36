//! Login, token refresh, whoami, users (create, list, disable, enable, change role, delete) and API keys.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time_fmt::rfc3339;
use crate::audit::Actor;
use crate::auth::Caller;
use crate::problem::{ApiJson, Problem};
use crate::{AppState, PrincipalKind, Role};

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A session: a short-lived bearer token and a refresh token.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionDto {
    pub token: String,
    pub expires_at: String,
    pub refresh_token: String,
}

/// A refresh token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    pub refresh_token: String,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WhoAmI {
    pub id: String,
    pub name: String,
    pub role: String,
    /// `bootstrap`, `user`, `api_key`, `oidc`, `certificate` (mTLS) or `device_secret` (EST).
    pub kind: String,
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUserRequest {
    pub username: String,
    /// At least 12 characters.
    pub password: String,
    /// `admin`, `operator` or `auditor`.
    pub role: String,
}

/// A user (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserDto {
    pub id: String,
    pub username: String,
    pub role: String,
    pub created_at: String,
    /// A disabled user cannot log in; their sessions and API keys are refused.
    pub disabled: bool,
}

/// The user list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserList {
    pub items: Vec<UserDto>,
}

/// A role change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRoleRequest {
    /// `admin`, `operator` or `auditor`.
    pub role: String,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    pub name: String,
    /// `admin`, `operator` or `auditor`.
    pub role: String,
    pub expires_in_days: Option<u32>,
}

/// An API key's metadata; `key` only in the creation response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyDto {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The secret, shown once at creation; use it as the bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The API key list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiKeyList {
    pub items: Vec<ApiKeyDto>,
}

fn session_dto(s: shedu_core::Session) -> SessionDto {
    SessionDto {
        token: s.token,
        expires_at: rfc3339(s.expires_at),
        refresh_token: s.refresh_token,
    }
}

fn user_dto(u: shedu_core::User) -> UserDto {
    UserDto {
        id: u.id,
        username: u.username,
        role: u.role.as_str().into(),
        created_at: rfc3339(u.created_at),
        disabled: u.disabled,
    }
}

fn key_dto(k: shedu_core::ApiKey, key: Option<String>) -> ApiKeyDto {
    ApiKeyDto {
        id: k.id,
        name: k.name,
        role: k.role.as_str().into(),
        created_by: k.created_by,
        created_at: rfc3339(k.created_at),
        expires_at: k.expires_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
        key,
    }
}

/// Log in with a user name and password. Failed logins are limited per user name and client address:
/// after five, that address waits 1 s, 2 s, 4 s, … (at most 15 minutes) between attempts (429 with
/// `Retry-After`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, security(()),
    responses((status = 200, body = SessionDto), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<ApiJson<SessionDto>, Problem> {
    let session = state
        .services
        .auth
        .login(&req.username, &req.password, &peer.ip().to_string())
        .await?;
    Ok(ApiJson(session_dto(session)))
}

/// Exchange a refresh token for a new session and the next refresh token. Each refresh token works once;
/// presenting a used one ends the whole login (401).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest, security(()),
    responses((status = 200, body = SessionDto), (status = 401, body = Problem)))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<ApiJson<SessionDto>, Problem> {
    Ok(ApiJson(session_dto(
        state.services.auth.refresh(&req.refresh_token).await?,
    )))
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/auth/whoami", tag = "auth", responses((status = 200, body = WhoAmI)))]
pub(crate) async fn whoami(Caller(p): Caller) -> ApiJson<WhoAmI> {
    let kind = match p.kind {
        PrincipalKind::Bootstrap => "bootstrap",
        PrincipalKind::User => "user",
        PrincipalKind::ApiKey => "api_key",
        PrincipalKind::Certificate => "certificate",
        PrincipalKind::DeviceSecret => "device_secret",
        PrincipalKind::Oidc => "oidc",
    };
    ApiJson(WhoAmI {
        id: p.id,
        name: p.name,
        role: p.role.as_str().into(),
        kind: kind.into(),
    })
}

/// Create a local user (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserDto), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, ApiJson<UserDto>), Problem> {
    let u = state
        .services
        .auth
        .create_user(
            &actor,
            &req.username,
            &req.password,
            Role::parse(&req.role)?,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(user_dto(u))))
}

/// Every user.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = UserList)))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
) -> Result<ApiJson<UserList>, Problem> {
    let items = state
        .services
        .auth
        .users()
        .await?
        .into_iter()
        .map(user_dto)
        .collect();
    Ok(ApiJson(UserList { items }))
}

/// Disable a user: they cannot log in, and their sessions, refresh tokens and API keys are refused at
/// once. The last enabled admin cannot be disabled (409 `last-admin`).
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = UserDto), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn disable_user(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<ApiJson<UserDto>, Problem> {
    let u = state
        .services
        .auth
        .set_user_disabled(&actor, &id, true)
        .await?;
    Ok(ApiJson(user_dto(u)))
}

/// Enable a disabled user again (they log in anew; older sessions stay invalid).
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users", params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = UserDto), (status = 404, body = Problem)))]
pub(crate) async fn enable_user(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<ApiJson<UserDto>, Problem> {
    let u = state
        .services
        .auth
        .set_user_disabled(&actor, &id, false)
        .await?;
    Ok(ApiJson(user_dto(u)))
}

/// Change a user's role; their sessions and refresh tokens stop working. The last enabled admin cannot be
/// demoted (409 `last-admin`).
#[utoipa::path(put, path = "/api/v1/users/{id}/role", tag = "users", params(("id" = String, Path, description = "user id")),
    request_body = SetRoleRequest,
    responses((status = 200, body = UserDto), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn set_user_role(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SetRoleRequest>,
) -> Result<ApiJson<UserDto>, Problem> {
    let u = state
        .services
        .auth
        .set_user_role(&actor, &id, Role::parse(&req.role)?)
        .await?;
    Ok(ApiJson(user_dto(u)))
}

/// Delete a user; their sessions, refresh tokens and API keys stop working. The last enabled admin cannot
/// be deleted (409 `last-admin`).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "user id")),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.services.auth.delete_user(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the caller's own password.
#[utoipa::path(post, path = "/api/v1/users/me/password", tag = "users", request_body = ChangePasswordRequest,
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Caller(p): Caller,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, Problem> {
    if p.kind != PrincipalKind::User {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "not-a-user",
            "only local users have passwords",
        ));
    }
    state
        .services
        .auth
        .change_password(&actor, &p.id, &req.current_password, &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an API key; the key is in this response only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyDto), (status = 400, body = Problem)))]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Caller(p): Caller,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, ApiJson<ApiKeyDto>), Problem> {
    let (key, secret) = state
        .services
        .auth
        .create_api_key(
            &actor,
            &req.name,
            Role::parse(&req.role)?,
            req.expires_in_days,
            &p,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(key_dto(key, Some(secret)))))
}

/// Every API key (never the secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", responses((status = 200, body = ApiKeyList)))]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
) -> Result<ApiJson<ApiKeyList>, Problem> {
    let items = state
        .services
        .auth
        .api_keys()
        .await?
        .into_iter()
        .map(|k| key_dto(k, None))
        .collect();
    Ok(ApiJson(ApiKeyList { items }))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path, description = "API key id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.services.auth.revoke_api_key(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
