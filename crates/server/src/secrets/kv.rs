//! KV v2 under a mount: `data`, `metadata`, `delete`, `undelete`, `destroy`, `config`.

use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use shedu_core::{SecretCaller, SecretValue, VersionChange, VersionInfo, WriteOptions};
use zeroize::Zeroizing;

use super::{
    Call, Refusal, answer, bad_request, envelope, error, errors, no_content, time_text, versions,
};
use crate::AppState;

pub(super) async fn route(
    state: &AppState,
    call: &Call,
    caller: &SecretCaller,
    mount: &str,
    rest: &str,
) -> Result<Response, Refusal> {
    let (op, path) = rest.split_once('/').unwrap_or((rest, ""));
    let m = &call.method;
    match (op, m.as_str()) {
        ("config", "GET") if path.is_empty() => Ok(config(state)),
        ("data", "GET") => read(state, call, caller, mount, path).await,
        ("data", "POST" | "PUT") => write(state, call, caller, mount, path).await,
        ("data", "PATCH") => patch(state, call, caller, mount, path).await,
        ("data", "DELETE") => {
            let actor = crate::audit::current_actor();
            state
                .services
                .secrets
                .delete_current(caller, mount, path, &actor)
                .await
                .map_err(error)?;
            Ok(no_content())
        }
        ("metadata", _) if call.is_list() => list(state, caller, mount, path).await,
        ("metadata", "GET") => metadata(state, caller, mount, path).await,
        ("metadata", "POST" | "PUT") => set_metadata(state, call, caller, mount, path).await,
        ("metadata", "DELETE") => {
            let actor = crate::audit::current_actor();
            state
                .services
                .secrets
                .delete_metadata(caller, mount, path, &actor)
                .await
                .map_err(error)?;
            Ok(no_content())
        }
        ("delete" | "undelete" | "destroy", "POST" | "PUT") => {
            let body = call.json()?;
            let versions = versions(&body)?;
            let change = match op {
                "delete" => VersionChange::Delete,
                "undelete" => VersionChange::Undelete,
                _ => VersionChange::Destroy,
            };
            let actor = crate::audit::current_actor();
            state
                .services
                .secrets
                .change_versions(caller, mount, path, &versions, change, &actor)
                .await
                .map_err(error)?;
            Ok(no_content())
        }
        ("config" | "data" | "metadata" | "delete" | "undelete" | "destroy", _) => Err(errors(
            StatusCode::METHOD_NOT_ALLOWED,
            &[format!("unsupported operation {m} on {mount}/{op}")],
        )),
        _ => Err(errors(
            StatusCode::NOT_FOUND,
            &[format!("no handler for route \"{mount}/{rest}\"")],
        )),
    }
}

fn config(state: &AppState) -> Response {
    answer(
        StatusCode::OK,
        envelope(json!({
            "cas_required": false,
            "delete_version_after": "0s",
            "max_versions": state.services.secrets.config().max_versions,
        })),
    )
}

async fn read(
    state: &AppState,
    call: &Call,
    caller: &SecretCaller,
    mount: &str,
    path: &str,
) -> Result<Response, Refusal> {
    let version = match call.query("version") {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| bad_request("version must be a number"))?,
        ),
    };
    let SecretValue { info, value } = state
        .services
        .secrets
        .read(caller, mount, path, version)
        .await
        .map_err(error)?;
    let metadata = version_json(&info);
    match value {
        Some(value) => {
            let data: Value = serde_json::from_slice(&value).map_err(|_| {
                errors(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &["a stored value is not JSON".to_string()],
                )
            })?;
            Ok(answer(
                StatusCode::OK,
                envelope(json!({ "data": data, "metadata": metadata })),
            ))
        }
        // Vault answers a deleted or destroyed version with 404 and its metadata, so clients can tell
        // "deleted" from "never written".
        None => Ok(answer(
            StatusCode::NOT_FOUND,
            envelope(json!({ "data": null, "metadata": metadata })),
        )),
    }
}

/// The `data` object and `options.cas` of a write or patch body.
fn data_and_options(call: &Call) -> Result<(Map<String, Value>, WriteOptions), Refusal> {
    let mut body = call.json()?;
    let data = match body.remove("data") {
        Some(Value::Object(data)) => data,
        _ => return Err(bad_request("no data provided")),
    };
    let cas = match body.get("options").and_then(|o| o.get("cas")) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| bad_request("invalid cas"))?),
        Some(Value::String(s)) => Some(s.parse().map_err(|_| bad_request("invalid cas"))?),
        Some(_) => return Err(bad_request("invalid cas")),
    };
    Ok((data, WriteOptions { cas }))
}

async fn write(
    state: &AppState,
    call: &Call,
    caller: &SecretCaller,
    mount: &str,
    path: &str,
) -> Result<Response, Refusal> {
    let (data, options) = data_and_options(call)?;
    let value = Zeroizing::new(serde_json::to_vec(&data).map_err(|_| bad_request("bad data"))?);
    let actor = crate::audit::current_actor();
    let info = state
        .services
        .secrets
        .write(caller, mount, path, &value, options, &actor)
        .await
        .map_err(error)?;
    Ok(written(&info))
}

/// RFC 7396 JSON merge patch of the current version (Vault requires the merge-patch media type).
async fn patch(
    state: &AppState,
    call: &Call,
    caller: &SecretCaller,
    mount: &str,
    path: &str,
) -> Result<Response, Refusal> {
    let media = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !media.starts_with("application/merge-patch+json") {
        return Err(errors(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &[format!(
                "PATCH requires Content-Type application/merge-patch+json, not {media:?}"
            )],
        ));
    }
    let (patch, options) = data_and_options(call)?;
    let merge = move |old: &[u8]| -> Result<Zeroizing<Vec<u8>>, shedu_core::Error> {
        let mut doc: Value = serde_json::from_slice(old)
            .map_err(|_| shedu_core::Error::Internal("a stored value is not JSON".into()))?;
        merge_patch(&mut doc, &Value::Object(patch.clone()));
        Ok(Zeroizing::new(serde_json::to_vec(&doc).map_err(|_| {
            shedu_core::Error::Internal("a merged value does not encode".into())
        })?))
    };
    let actor = crate::audit::current_actor();
    let info = state
        .services
        .secrets
        .patch(caller, mount, path, options, &merge, &actor)
        .await
        .map_err(error)?;
    Ok(written(&info))
}

/// RFC 7396 §2: objects merge member by member, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (k, v) in patch {
            if v.is_null() {
                target.remove(k);
            } else {
                merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn written(info: &VersionInfo) -> Response {
    answer(StatusCode::OK, envelope(version_json(info)))
}

fn version_json(info: &VersionInfo) -> Value {
    json!({
        "created_time": time_text(Some(info.created_at)),
        "custom_metadata": null,
        "deletion_time": time_text(info.deleted_at),
        "destroyed": info.destroyed,
        "version": info.version,
    })
}

async fn metadata(
    state: &AppState,
    caller: &SecretCaller,
    mount: &str,
    path: &str,
) -> Result<Response, Refusal> {
    let m = state
        .services
        .secrets
        .metadata(caller, mount, path)
        .await
        .map_err(error)?;
    let versions: Map<String, Value> = m
        .versions
        .iter()
        .map(|v| {
            (
                v.version.to_string(),
                json!({
                    "created_time": time_text(Some(v.created_at)),
                    "deletion_time": time_text(v.deleted_at),
                    "destroyed": v.destroyed,
                }),
            )
        })
        .collect();
    Ok(answer(
        StatusCode::OK,
        envelope(json!({
            "cas_required": m.cas_required,
            "created_time": time_text(Some(m.created_at)),
            "current_version": m.current_version,
            "custom_metadata": null,
            "delete_version_after": "0s",
            "max_versions": m.max_versions,
            "oldest_version": m.oldest_version,
            "updated_time": time_text(Some(m.updated_at)),
            "versions": versions,
        })),
    ))
}

async fn set_metadata(
    state: &AppState,
    call: &Call,
    caller: &SecretCaller,
    mount: &str,
    path: &str,
) -> Result<Response, Refusal> {
    let body = call.json()?;
    let max_versions = match body.get("max_versions") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| bad_request("max_versions must be a number"))?,
        ),
    };
    let cas_required = match body.get("cas_required") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s == "true"),
        Some(_) => return Err(bad_request("cas_required must be a boolean")),
    };
    let actor = crate::audit::current_actor();
    state
        .services
        .secrets
        .set_metadata(caller, mount, path, max_versions, cas_required, &actor)
        .await
        .map_err(error)?;
    Ok(no_content())
}

async fn list(
    state: &AppState,
    caller: &SecretCaller,
    mount: &str,
    prefix: &str,
) -> Result<Response, Refusal> {
    let keys = state
        .services
        .secrets
        .list(caller, mount, prefix)
        .await
        .map_err(error)?;
    Ok(answer(StatusCode::OK, envelope(json!({ "keys": keys }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // RFC 7396 appendix A, a few rows.
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": [1]}),
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "c"}}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ] {
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, result, "{target} + {patch}");
        }
    }
}
