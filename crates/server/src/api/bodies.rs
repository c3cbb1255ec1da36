//! The JSON request bodies of the API, one entry per route that takes one, each decoded exactly as its
//! handler's [`ApiJson`] extractor decodes it. A test checks the table against the OpenAPI document, so a
//! new body cannot be left out; the `json_bodies` fuzz target feeds arbitrary bytes to every entry and
//! requires a 4xx problem or success, never a 5xx or a panic.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Method, Request, header};
use serde::de::DeserializeOwned;

use super::auth::{
    ChangePasswordRequest, CreateApiKeyRequest, CreateUserRequest, LoginRequest, RefreshRequest,
    SetRoleRequest,
};
use super::cloud::CloudConnectorRequest;
use super::devices::{RegisterDeviceRequest, UpdateDeviceRequest};
use super::dto::{CreateCaRequest, ImportCaRequest, IssueRequest, RevokeRequest, UpdateCaRequest};
use super::events::CreateSubscriptionRequest;
use super::groups::CreateGroupRequest;
use super::kmip_access::AccessRequest;
use super::ras::RaRequest;
use super::rotation::{AssetPatch, AssetRequest, ExecutorRequest, RouteRequest};
use crate::problem::{ApiJson, Problem};

/// One route's JSON body.
#[derive(Clone, Debug)]
pub struct JsonBody {
    /// The route's method.
    pub method: Method,
    /// The route's path as the OpenAPI document writes it (`/api/v1/cas/{id}/certificates`).
    pub path: &'static str,
    /// The body's type, as its OpenAPI schema is named.
    pub schema: &'static str,
    decode: fn(Vec<u8>) -> Result<(), Problem>,
}

impl JsonBody {
    /// Decodes `body`, sent as `application/json`, as the route's handler does; the rejection is the
    /// problem the route would answer.
    pub fn decode(&self, body: &[u8]) -> Result<(), Problem> {
        (self.decode)(body.to_vec())
    }
}

/// Every route that takes a JSON body.
pub fn json_bodies() -> [JsonBody; 26] {
    [
        body::<LoginRequest>(Method::POST, "/api/v1/auth/login"),
        body::<RefreshRequest>(Method::POST, "/api/v1/auth/refresh"),
        body::<CreateUserRequest>(Method::POST, "/api/v1/users"),
        body::<SetRoleRequest>(Method::PUT, "/api/v1/users/{id}/role"),
        body::<ChangePasswordRequest>(Method::POST, "/api/v1/users/me/password"),
        body::<CreateApiKeyRequest>(Method::POST, "/api/v1/api-keys"),
        body::<CreateCaRequest>(Method::POST, "/api/v1/cas"),
        body::<ImportCaRequest>(Method::POST, "/api/v1/cas/import"),
        body::<UpdateCaRequest>(Method::PATCH, "/api/v1/cas/{id}"),
        body::<IssueRequest>(Method::POST, "/api/v1/cas/{id}/certificates"),
        body::<RevokeRequest>(
            Method::POST,
            "/api/v1/cas/{id}/certificates/{serial}/revoke",
        ),
        body::<RegisterDeviceRequest>(Method::POST, "/api/v1/devices"),
        body::<UpdateDeviceRequest>(Method::PATCH, "/api/v1/devices/{id}"),
        body::<CreateSubscriptionRequest>(Method::POST, "/api/v1/subscriptions"),
        body::<CreateGroupRequest>(Method::POST, "/api/v1/device-groups"),
        body::<RaRequest>(Method::POST, "/api/v1/ras"),
        body::<RaRequest>(Method::PUT, "/api/v1/ras/{id}"),
        body::<AccessRequest>(Method::POST, "/api/v1/kms/access/grant"),
        body::<AccessRequest>(Method::POST, "/api/v1/kms/access/revoke"),
        body::<CloudConnectorRequest>(Method::POST, "/api/v1/cloud-connectors"),
        body::<CloudConnectorRequest>(Method::PUT, "/api/v1/cloud-connectors/{id}"),
        body::<AssetRequest>(Method::POST, "/api/v1/assets"),
        body::<AssetRequest>(Method::PUT, "/api/v1/assets/{system_name}"),
        body::<AssetPatch>(Method::PATCH, "/api/v1/assets/{system_name}"),
        body::<ExecutorRequest>(Method::POST, "/api/v1/rotation-executors"),
        body::<RouteRequest>(Method::POST, "/api/v1/rotation-routes"),
    ]
}

fn body<T: DeserializeOwned + Send + 'static>(method: Method, path: &'static str) -> JsonBody {
    let name = std::any::type_name::<T>();
    JsonBody {
        method,
        path,
        schema: name.rsplit("::").next().unwrap_or(name),
        decode: decode::<T>,
    }
}

fn decode<T: DeserializeOwned + Send + 'static>(body: Vec<u8>) -> Result<(), Problem> {
    let req = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .map_err(|e| {
            Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid-body",
                e.to_string(),
            )
        })?;
    // The body is in memory, so the extractor's future is ready at its first poll.
    futures::executor::block_on(ApiJson::<T>::from_request(req, &())).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_json_body_of_the_openapi_document_is_in_the_table() {
        let doc = serde_json::to_value(super::super::openapi()).unwrap();
        let mut in_doc = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(body) = op.get("requestBody") else {
                    continue;
                };
                let schema = body["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}: not a named JSON schema: {body}"));
                in_doc.push((
                    method.to_uppercase(),
                    path.clone(),
                    schema.rsplit('/').next().unwrap().to_string(),
                ));
            }
        }
        let mut in_table: Vec<(String, String, String)> = json_bodies()
            .iter()
            .map(|b| {
                (
                    b.method.to_string(),
                    b.path.to_string(),
                    b.schema.to_string(),
                )
            })
            .collect();
        in_doc.sort();
        in_table.sort();
        assert_eq!(in_doc, in_table);
    }

    #[test]
    fn bodies_decode_or_are_client_errors() {
        let bodies = json_bodies();
        let login = &bodies[0];
        assert!(
            login
                .decode(br#"{"username": "a", "password": "b"}"#)
                .is_ok()
        );
        for bad in [&b"{"[..], b"", b"[]", br#"{"username": 1}"#, b"\xff"] {
            let problem = login.decode(bad).unwrap_err();
            assert!((400..500).contains(&problem.status), "{}", problem.status);
        }
    }
}
