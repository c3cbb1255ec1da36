//! `sys/*` and `auth/token/*`: status, the mount probe the CLI makes, ACL policies and tokens.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shedu_core::{IssuedToken, SecretCaller, TokenInfo, TokenRequest};

use super::{
    Call, Refusal, answer, bad_request, duration, envelope, error, errors, no_content, time_text,
};
use crate::AppState;

/// `GET sys/health`: 200 while serving (the store is never sealed while shedu runs: the master key is
/// loaded at start or the server does not start). `HEAD` answers the status alone.
pub(super) fn health(state: &AppState, call: &Call) -> Response {
    if call.method == Method::HEAD {
        return StatusCode::OK.into_response();
    }
    answer(
        StatusCode::OK,
        json!({
            "initialized": true,
            "sealed": false,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": state.services.registry.now(),
            "version": version(),
            "cluster_name": "shedu",
        }),
    )
}

/// `GET sys/seal-status`.
pub(super) fn seal_status(_state: &AppState) -> Response {
    answer(
        StatusCode::OK,
        json!({
            "type": "shamir",
            "initialized": true,
            "sealed": false,
            "t": 1,
            "n": 1,
            "progress": 0,
            "nonce": "",
            "version": version(),
            "build_date": "",
            "migration": false,
            "recovery_seal": false,
            "storage_type": "shedu",
            "cluster_name": "shedu",
        }),
    )
}

/// `GET sys/leader`: shedu's secret store has no HA mode of its own (replicas share the database).
pub(super) fn leader() -> Response {
    answer(
        StatusCode::OK,
        json!({
            "ha_enabled": false,
            "is_self": false,
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
        }),
    )
}

fn version() -> String {
    format!("shedu-{}", env!("CARGO_PKG_VERSION"))
}

/// `GET sys/internal/ui/mounts/{path}`: which mount serves `path`, and that it is KV version 2. The
/// `bao`/`vault` CLI asks this before every `kv` command to choose between the v1 and v2 paths.
pub(super) fn ui_mount(state: &AppState, call: &Call, path: &str) -> Result<Response, Refusal> {
    if call.method != Method::GET {
        return Err(errors(StatusCode::METHOD_NOT_ALLOWED, &[]));
    }
    let mount = path.split('/').next().unwrap_or_default();
    if !state.services.secrets.is_mount(mount) {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            &[format!("no mount found for path {path:?}")],
        ));
    }
    Ok(answer(
        StatusCode::OK,
        envelope(json!({
            "path": format!("{mount}/"),
            "type": "kv",
            "description": "shedu secret store (KV version 2)",
            "options": { "version": "2" },
            "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false },
            "local": false,
            "seal_wrap": false,
            "external_entropy_access": false,
        })),
    ))
}

/// `sys/policies/acl/{name}` and the older `sys/policy/{name}` (GET, PUT/POST, DELETE; LIST or GET with
/// an empty name lists).
pub(super) async fn policy(
    state: &AppState,
    call: &Call,
    caller: &SecretCaller,
    name: &str,
) -> Result<Response, Refusal> {
    let secrets = &state.services.secrets;
    if name.is_empty() || call.is_list() {
        let names = secrets.policy_names(caller).await.map_err(error)?;
        return Ok(answer(
            StatusCode::OK,
            envelope(json!({ "keys": names, "policies": names })),
        ));
    }
    let actor = crate::audit::current_actor();
    match call.method.as_str() {
        "GET" => {
            let document = secrets.policy(caller, name).await.map_err(error)?;
            Ok(answer(
                StatusCode::OK,
                envelope(json!({ "name": name, "policy": document, "rules": document })),
            ))
        }
        "PUT" | "POST" => {
            let body = call.json()?;
            // hvac sends a JSON object as the policy; the CLI sends its text.
            let document = match body.get("policy").or_else(|| body.get("rules")) {
                Some(Value::String(text)) => text.clone(),
                Some(doc @ Value::Object(_)) => doc.to_string(),
                _ => return Err(bad_request("'policy' parameter not supplied or empty")),
            };
            secrets
                .put_policy(caller, name, &document, &actor)
                .await
                .map_err(error)?;
            Ok(no_content())
        }
        "DELETE" => {
            secrets
                .delete_policy(caller, name, &actor)
                .await
                .map_err(error)?;
            Ok(no_content())
        }
        other => Err(errors(
            StatusCode::METHOD_NOT_ALLOWED,
            &[format!("unsupported operation {other}")],
        )),
    }
}

/// `auth/token/create`, `create-orphan`, `lookup-self`, `renew-self`, `revoke-self`.
pub(super) async fn token(
    state: &AppState,
    call: &Call,
    caller: &SecretCaller,
    op: &str,
) -> Result<Response, Refusal> {
    let secrets = &state.services.secrets;
    let actor = crate::audit::current_actor();
    let m = call.method.as_str();
    match (op, m) {
        ("create" | "create-orphan", "POST" | "PUT") => {
            let body = call.json()?;
            let policies = match body.get("policies") {
                None | Some(Value::Null) => None,
                Some(Value::Array(list)) => Some(
                    list.iter()
                        .map(|p| p.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| bad_request("policies must be strings"))?,
                ),
                Some(Value::String(s)) => {
                    Some(s.split(',').map(|p| p.trim().to_string()).collect())
                }
                Some(_) => return Err(bad_request("policies must be a list of names")),
            };
            let flag = |key: &str| body.get(key).and_then(Value::as_bool);
            let req = TokenRequest {
                policies,
                ttl: duration(body.get("ttl").unwrap_or(&Value::Null))?,
                period: duration(body.get("period").unwrap_or(&Value::Null))?,
                renewable: flag("renewable"),
                display_name: body
                    .get("display_name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                no_parent: op == "create-orphan" || flag("no_parent").unwrap_or(false),
            };
            let issued = secrets
                .create_token(caller, req, &actor)
                .await
                .map_err(error)?;
            Ok(auth_answer(state, &issued))
        }
        ("lookup-self", "GET" | "POST") => {
            let info = secrets.lookup_self(caller).map_err(error)?;
            let token = call.token().unwrap_or_default();
            Ok(answer(
                StatusCode::OK,
                envelope(lookup_json(state, &info, &token)),
            ))
        }
        ("renew-self", "POST" | "PUT") => {
            let body = call.json()?;
            let increment = duration(body.get("increment").unwrap_or(&Value::Null))?;
            let info = secrets
                .renew_self(caller, increment, &actor)
                .await
                .map_err(error)?;
            let mut out = envelope(Value::Null);
            out["auth"] = auth_json(state, &info, None);
            Ok(answer(StatusCode::OK, out))
        }
        ("revoke-self", "POST" | "PUT") => {
            secrets.revoke_self(caller, &actor).await.map_err(error)?;
            Ok(no_content())
        }
        _ => Err(errors(
            StatusCode::NOT_FOUND,
            &[format!("no handler for route \"auth/token/{op}\" ({m})")],
        )),
    }
}

/// The answer of a token creation: Vault's envelope with the `auth` block (also what the token socket
/// answers).
pub(crate) fn auth_answer(state: &AppState, issued: &IssuedToken) -> Response {
    let mut out = envelope(Value::Null);
    out["auth"] = auth_json(state, &issued.info, Some(issued.token.as_str()));
    answer(StatusCode::OK, out)
}

fn auth_json(state: &AppState, info: &TokenInfo, token: Option<&str>) -> Value {
    json!({
        "client_token": token.unwrap_or_default(),
        "accessor": info.accessor,
        "policies": info.policies,
        "token_policies": info.policies,
        "metadata": info.service.as_ref().map(|s| json!({ "service": s })),
        "lease_duration": (info.expires_at - state.services.registry.now()).max(0),
        "renewable": info.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": info.orphan,
        "mfa_requirement": null,
        "num_uses": 0,
    })
}

fn lookup_json(state: &AppState, info: &TokenInfo, token: &str) -> Value {
    json!({
        "accessor": info.accessor,
        "creation_time": info.created_at,
        "creation_ttl": info.creation_ttl,
        "display_name": info.display_name,
        "entity_id": "",
        "expire_time": time_text(Some(info.expires_at)),
        "explicit_max_ttl": 0,
        "id": token,
        "issue_time": time_text(Some(info.created_at)),
        "meta": info.service.as_ref().map(|s| json!({ "service": s })),
        "num_uses": 0,
        "orphan": info.orphan,
        "path": "auth/token/create",
        "period": if info.period > 0 { json!(info.period) } else { Value::Null },
        "policies": info.policies,
        "renewable": info.renewable,
        "ttl": (info.expires_at - state.services.registry.now()).max(0),
        "type": "service",
    })
}
