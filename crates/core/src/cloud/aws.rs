//! AWS IoT Core as a [`CloudProvider`]: the IoT control-plane REST API (JSON over HTTPS), each request
//! signed with SigV4 by `aws-sigv4` (signing name `iot`) and sent with the platform's reqwest client.
//!
//! Every operation the sync uses is either a look-up or safe to repeat: a certificate's id in AWS IoT is
//! the SHA-256 of its DER (so the connector can ask whether it is there before registering it), things,
//! policies and groups are described before they are created, and attaching is idempotent.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{CaMode, CloudFailure, CloudProvider, CloudRef, Desired, DeviceBinding};

/// The signing name of the AWS IoT control plane.
const SIGNING_NAME: &str = "iot";
/// The largest answer read from the API (a certificate description is a few KiB).
const MAX_ANSWER: usize = 1 << 20;

/// A client of one account's AWS IoT Core in one region.
pub(crate) struct AwsIot {
    pub(crate) http: reqwest::Client,
    /// `https://iot.<region>.amazonaws.com`, or the configured endpoint (no trailing slash).
    pub(crate) endpoint: String,
    pub(crate) region: String,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: Zeroizing<String>,
}

/// The public endpoint of the AWS IoT control plane in `region`.
pub(crate) fn default_endpoint(region: &str) -> String {
    format!("https://iot.{region}.amazonaws.com")
}

impl AwsIot {
    /// Sends one signed request; `Ok(None)` for an empty answer.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
        principal: Option<&str>,
    ) -> Result<Option<Value>, CloudFailure> {
        let url = format!("{}{path_and_query}", self.endpoint);
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| CloudFailure::Other(format!("bad endpoint URL {url}: {e}")))?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(CloudFailure::Other(format!("no host in {url}"))),
        };
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers: Vec<(&str, &str)> =
            vec![("host", &host), ("content-type", "application/json")];
        if let Some(p) = principal {
            headers.push(("x-amzn-principal", p));
        }
        let identity: Identity = Credentials::new(
            &self.access_key_id,
            self.secret_access_key.as_str(),
            None,
            None,
            "shedu-cloud-connector",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CloudFailure::Other(format!("SigV4 parameters: {e}")))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(payload.as_bytes()),
        )
        .map_err(|e| CloudFailure::Other(format!("SigV4: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| CloudFailure::Other(format!("SigV4: {e}")))?
            .into_parts();
        let mut req = self
            .http
            .request(method.clone(), parsed)
            .header("content-type", "application/json");
        if let Some(p) = principal {
            req = req.header("x-amzn-principal", p);
        }
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        if !payload.is_empty() {
            req = req.body(payload);
        }
        let resp = req.send().await.map_err(|e| {
            CloudFailure::Other(format!(
                "{method} {path_and_query}: cannot reach {}: {}",
                self.endpoint,
                error_chain(&e)
            ))
        })?;
        let status = resp.status();
        let error_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_string());
        let bytes = crate::webhook::read_capped(resp, MAX_ANSWER)
            .await
            .map_err(|e| CloudFailure::Other(format!("{method} {path_and_query}: {e}")))?;
        let answer: Option<Value> = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if status.is_success() {
            return Ok(answer);
        }
        let field = |k: &str| {
            answer
                .as_ref()
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let code = error_type
            .or_else(|| field("__type"))
            .or_else(|| field("code"))
            .unwrap_or_else(|| status.as_u16().to_string());
        let message = field("message")
            .or_else(|| field("Message"))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        if status == reqwest::StatusCode::NOT_FOUND || code.contains("ResourceNotFound") {
            return Err(CloudFailure::NotFound);
        }
        if code.contains("ResourceAlreadyExists") {
            return Err(CloudFailure::AlreadyExists);
        }
        Err(CloudFailure::Other(format!(
            "{method} {path_and_query}: HTTP {} {code}: {message}",
            status.as_u16()
        )))
    }

    /// A look-up: `None` when the resource does not exist.
    async fn describe(&self, path: &str) -> Result<Option<Value>, CloudFailure> {
        match self.call(Method::GET, path, None, None).await {
            Ok(v) => Ok(Some(v.unwrap_or(Value::Null))),
            Err(CloudFailure::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates with `POST path` unless `GET path` finds it (a concurrent creation is fine too).
    async fn ensure(&self, path: &str, body: Value) -> Result<(), CloudFailure> {
        if self.describe(path).await?.is_some() {
            return Ok(());
        }
        match self.call(Method::POST, path, Some(body), None).await {
            Ok(_) | Err(CloudFailure::AlreadyExists) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// An error and its causes, `: `-joined (reqwest's own message does not say why a connection failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The certificate id and ARN in an answer (`RegisterCertificate`) or a description
/// (`{"certificateDescription": …}`).
fn cloud_ref(v: &Value) -> Result<CloudRef, CloudFailure> {
    let d = v.get("certificateDescription").unwrap_or(v);
    let get = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    match (get("certificateId"), get("certificateArn")) {
        (Some(id), Some(arn)) => Ok(CloudRef { id, arn }),
        _ => Err(CloudFailure::Other(format!(
            "AWS IoT answered without a certificate id and ARN: {}",
            v.to_string().chars().take(200).collect::<String>()
        ))),
    }
}

impl CloudProvider for AwsIot {
    async fn find_ca(&self, fingerprint: &str) -> Result<Option<CloudRef>, CloudFailure> {
        match self
            .describe(&format!("/cacertificate/{fingerprint}"))
            .await?
        {
            Some(v) => cloud_ref(&v).map(Some),
            None => Ok(None),
        }
    }

    async fn registration_code(&self) -> Result<String, CloudFailure> {
        let v = self
            .call(Method::GET, "/registrationcode", None, None)
            .await?
            .unwrap_or(Value::Null);
        v.get("registrationCode")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| CloudFailure::Other("GetRegistrationCode answered no code".into()))
    }

    async fn register_ca(
        &self,
        ca_pem: &str,
        verification_pem: Option<&str>,
        mode: CaMode,
    ) -> Result<CloudRef, CloudFailure> {
        let mut body = json!({ "caCertificate": ca_pem });
        match (mode, verification_pem) {
            (CaMode::SniOnly, _) => body["certificateMode"] = json!("SNI_ONLY"),
            (CaMode::Default, Some(v)) => {
                body["certificateMode"] = json!("DEFAULT");
                body["verificationCertificate"] = json!(v);
            }
            (CaMode::Default, None) => {
                return Err(CloudFailure::Other(
                    "a CA in DEFAULT mode needs a verification certificate".into(),
                ));
            }
        }
        let v = self
            .call(
                Method::POST,
                "/cacertificate?allowAutoRegistration=true&setAsActive=true",
                Some(body),
                None,
            )
            .await?
            .unwrap_or(Value::Null);
        cloud_ref(&v)
    }

    async fn find_certificate(&self, fingerprint: &str) -> Result<Option<CloudRef>, CloudFailure> {
        match self
            .describe(&format!("/certificates/{fingerprint}"))
            .await?
        {
            Some(v) => cloud_ref(&v).map(Some),
            None => Ok(None),
        }
    }

    async fn register_certificate(
        &self,
        cert_pem: &str,
        ca_pem: &str,
        mode: CaMode,
    ) -> Result<CloudRef, CloudFailure> {
        let (path, body) = match mode {
            CaMode::Default => (
                "/certificate/register",
                json!({ "certificatePem": cert_pem, "caCertificatePem": ca_pem, "status": "ACTIVE" }),
            ),
            CaMode::SniOnly => (
                "/certificate/register-no-ca",
                json!({ "certificatePem": cert_pem, "status": "ACTIVE" }),
            ),
        };
        let v = self
            .call(Method::POST, path, Some(body), None)
            .await?
            .unwrap_or(Value::Null);
        cloud_ref(&v)
    }

    async fn bind_device(
        &self,
        cert: &CloudRef,
        binding: &DeviceBinding<'_>,
    ) -> Result<(), CloudFailure> {
        let thing = binding.thing_name;
        self.ensure(&format!("/things/{thing}"), json!({})).await?;
        self.ensure(
            &format!("/policies/{}", binding.policy_name),
            json!({ "policyDocument": binding.policy_document }),
        )
        .await?;
        self.call(
            Method::PUT,
            &format!("/target-policies/{}", binding.policy_name),
            Some(json!({ "target": cert.arn })),
            None,
        )
        .await?;
        self.call(
            Method::PUT,
            &format!("/things/{thing}/principals"),
            None,
            Some(&cert.arn),
        )
        .await?;
        if let Some(group) = binding.thing_group {
            self.ensure(&format!("/thing-groups/{group}"), json!({}))
                .await?;
            self.call(
                Method::PUT,
                "/thing-groups/addThingToThingGroup",
                Some(json!({ "thingGroupName": group, "thingName": thing })),
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn unbind_device(&self, cert: &CloudRef, thing_name: &str) -> Result<(), CloudFailure> {
        let path = format!("/things/{thing_name}/principals");
        match self
            .call(Method::DELETE, &path, None, Some(&cert.arn))
            .await
        {
            Ok(_) | Err(CloudFailure::NotFound) => {}
            Err(e) => return Err(e),
        }
        let mark = json!({"attributePayload": {"attributes": {"shedu_status": "decommissioned"}, "merge": true}});
        match self
            .call(
                Method::PATCH,
                &format!("/things/{thing_name}"),
                Some(mark),
                None,
            )
            .await
        {
            Ok(_) | Err(CloudFailure::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn set_status(&self, cert: &CloudRef, desired: Desired) -> Result<(), CloudFailure> {
        let status = match desired {
            Desired::Active => "ACTIVE",
            Desired::Revoked | Desired::Decommissioned => "REVOKED",
            Desired::Inactive | Desired::Deregistered => "INACTIVE",
        };
        self.call(
            Method::PUT,
            &format!("/certificates/{}?newStatus={status}", cert.id),
            None,
            None,
        )
        .await?;
        Ok(())
    }

    async fn deregister_certificate(
        &self,
        cert: &CloudRef,
        thing_name: Option<&str>,
        policy_name: &str,
    ) -> Result<(), CloudFailure> {
        let path = format!("/certificates/{}", cert.id);
        let Some(described) = self.describe(&path).await? else {
            return Ok(());
        };
        // DeleteCertificate refuses an ACTIVE certificate; a REVOKED one stays REVOKED until it goes.
        let status = described
            .pointer("/certificateDescription/status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if status != "REVOKED" && status != "INACTIVE" {
            self.set_status(cert, Desired::Deregistered).await?;
        }
        if let Some(thing) = thing_name {
            gone_is_done(
                self.call(
                    Method::DELETE,
                    &format!("/things/{thing}/principals"),
                    None,
                    Some(&cert.arn),
                )
                .await,
            )?;
        }
        gone_is_done(
            self.call(
                Method::POST,
                &format!("/target-policies/{policy_name}"),
                Some(json!({ "target": cert.arn })),
                None,
            )
            .await,
        )?;
        // forceDelete: policies attached by someone else do not keep it (things do: AWS refuses).
        gone_is_done(
            self.call(
                Method::DELETE,
                &format!("{path}?forceDelete=true"),
                None,
                None,
            )
            .await,
        )
    }

    async fn deregister_ca(&self, ca: &CloudRef) -> Result<(), CloudFailure> {
        let path = format!("/cacertificate/{}", ca.id);
        if self.describe(&path).await?.is_none() {
            return Ok(());
        }
        gone_is_done(
            self.call(
                Method::PUT,
                &format!("{path}?newStatus=INACTIVE"),
                None,
                None,
            )
            .await,
        )?;
        gone_is_done(self.call(Method::DELETE, &path, None, None).await)
    }
}

/// A removal whose target is gone already is done.
fn gone_is_done(r: Result<Option<Value>, CloudFailure>) -> Result<(), CloudFailure> {
    match r {
        Ok(_) | Err(CloudFailure::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}
