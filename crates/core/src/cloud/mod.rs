//! Cloud connectors: keep a cloud IoT service (AWS IoT Core today) in step with the platform's CAs and
//! device certificates, so a device enrolled on the factory floor connects to the cloud with the same
//! certificate, and a revocation here disables it there.
//!
//! How it is shaped, and why:
//! - **State, not calls.** A connector binds CAs. Every CA it binds and every certificate issued or revoked
//!   under one becomes a *sync item* (`cloud_sync`): what the cloud should show (`active`, `revoked`,
//!   `inactive` for a certificate hold), where the connector stands (`pending`, `synced`, `failed` with the
//!   error and the next attempt), and the cloud's own ids. Items are queued from the events outbox by the
//!   `cloud` event sink ([`Cloud::enqueue`]), idempotently, so an event offered twice queues nothing new.
//! - **A worker makes it so** ([`Cloud::run`]): due items, CAs first, each attempt a sequence of look-ups and
//!   repeatable calls; a failure is retried with capped exponential backoff; the platform keeps issuing
//!   whatever the cloud says. One replica at a time works (the `cloud-sync` lock).
//! - **Nothing twice.** A cloud id is stored as soon as the cloud answers with it, and before creating
//!   anything the provider is asked whether it has it already (AWS IoT names a certificate by the SHA-256 of
//!   its DER), so a retry or a restart after a crash in the middle registers nothing a second time.
//! - **Credentials** are sealed under the master key (associated data: the connector id) and never leave
//!   this module: no answer, event, audit record or log line holds them.
//! - **Providers** implement [`CloudProvider`]; the worker's rules (order, backoff, the verification
//!   certificate, what to skip) are the same for each. Azure IoT Hub DPS (verification code, proof of
//!   possession, enrolment groups) fits the same seam.

mod aws;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shedu_pki::{CertInfo, Serial, pem_encode_cert};
use shedu_store::{CloudConnectorRow, CloudSyncKey, CloudSyncRow};
use tokio::sync::{Notify, watch};
use zeroize::Zeroizing;

use crate::error::store_err;
use crate::events::event;
use crate::{AuditAction, AuditContext, Error, EventKind, Issuance, Registry};

/// The cursor and lock name of the event sink that queues sync items, and the worker's lock.
pub const CLOUD_SINK: &str = "cloud";
const WORKER_LOCK: &str = "cloud-sync";
/// How long a certificate waits for its CA's registration before it looks again, in seconds.
const WAIT_FOR_CA_SECS: i64 = 2;
/// How many due items one pass takes.
const BATCH: i64 = 50;

/// Timing of the sync worker. The defaults suit production; tests shorten them.
#[derive(Clone, Debug)]
pub struct CloudConfig {
    /// The first retry's delay after a failure (doubling after each failure).
    pub retry_initial: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// How often the worker looks for due items besides being woken.
    pub poll_interval: Duration,
    /// The timeout of one request to the cloud.
    pub request_timeout: Duration,
    /// How many certificates of a CA one catch-up step looks at (see [`Cloud::backfill`]).
    pub backfill_page: i64,
}

impl Default for CloudConfig {
    fn default() -> CloudConfig {
        CloudConfig {
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(20),
            backfill_page: 1000,
        }
    }
}

/// The cloud service a connector keeps in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloudProviderKind {
    /// AWS IoT Core.
    AwsIot,
}

impl CloudProviderKind {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloudProviderKind::AwsIot => "aws_iot",
        }
    }
}

impl std::str::FromStr for CloudProviderKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "aws_iot" => Ok(CloudProviderKind::AwsIot),
            _ => Err(Error::invalid(
                "unknown-cloud-provider",
                format!("unknown cloud provider {s:?} (known: aws_iot)"),
            )),
        }
    }
}

/// How a CA is registered: with a verification certificate proving its key (`default`), or without
/// (`sni_only`: the cloud trusts its certificates only by registration, AWS IoT's multi-account mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaMode {
    /// Prove possession of the CA key with a verification certificate.
    #[default]
    Default,
    /// Register without proof (AWS IoT `SNI_ONLY`); certificates are registered without their CA.
    SniOnly,
}

impl CaMode {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CaMode::Default => "default",
            CaMode::SniOnly => "sni_only",
        }
    }
}

impl std::str::FromStr for CaMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "default" => Ok(CaMode::Default),
            "sni_only" => Ok(CaMode::SniOnly),
            _ => Err(Error::invalid(
                "invalid-ca-mode",
                format!("unknown CA mode {s:?} (default or sni_only)"),
            )),
        }
    }
}

/// A connector's cloud credentials. `Debug` never shows the secret.
#[derive(Clone)]
pub struct CloudCredentials {
    /// The access key id (AWS).
    pub access_key_id: String,
    /// The secret access key (AWS).
    pub secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for CloudCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloudCredentials(***)")
    }
}

/// What an operator gives to create or replace a connector.
#[derive(Clone, Debug)]
pub struct CloudConnectorInput {
    /// Unique name.
    pub name: String,
    /// The provider.
    pub provider: CloudProviderKind,
    /// The provider's region (`eu-west-1`).
    pub region: String,
    /// Another endpoint than the provider's public one (HTTPS; plain HTTP only on loopback).
    pub endpoint_url: Option<String>,
    /// Required at creation; on a replace, `None` keeps the sealed ones.
    pub credentials: Option<CloudCredentials>,
    /// The CAs to register, whose certificates follow.
    pub ca_ids: Vec<String>,
    /// The policy attached to every device certificate (default `shedu-devices`).
    pub policy_name: Option<String>,
    /// The policy's JSON document, used when the policy does not exist yet (default: connect as the thing).
    pub policy_document: Option<String>,
    /// The thing group every thing joins.
    pub thing_group: Option<String>,
    /// Create a thing per device (named after the certificate's common name) and attach the certificate.
    pub register_things: bool,
    /// How CAs are registered.
    pub ca_mode: CaMode,
}

/// A connector as shown (never its credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudConnector {
    /// Opaque id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The provider.
    pub provider: CloudProviderKind,
    /// The region.
    pub region: String,
    /// The endpoint, when not the provider's public one.
    pub endpoint_url: Option<String>,
    /// The bound CAs.
    pub ca_ids: Vec<String>,
    /// The policy attached to device certificates.
    pub policy_name: String,
    /// The policy's document (used when the connector creates it).
    pub policy_document: String,
    /// The thing group, if any.
    pub thing_group: Option<String>,
    /// Whether things are created and attached.
    pub register_things: bool,
    /// How CAs are registered.
    pub ca_mode: CaMode,
    /// Deleted with `deregister`: taking back what it registered; gone once that is done.
    pub deregistering: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// What a sync item is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// A bound CA.
    Ca,
    /// A certificate issued by a bound CA.
    Certificate,
}

impl SyncKind {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncKind::Ca => "ca",
            SyncKind::Certificate => "certificate",
        }
    }
}

/// Where a sync item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Not done yet (or waiting for its CA).
    Pending,
    /// The cloud shows what the platform wants.
    Synced,
    /// The last attempt failed; see the error and the next attempt.
    Failed,
}

impl SyncState {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "pending",
            SyncState::Synced => "synced",
            SyncState::Failed => "failed",
        }
    }
}

/// What the cloud should show for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Desired {
    /// Usable.
    Active,
    /// Revoked for good.
    Revoked,
    /// On hold (revoked with `certificate_hold`).
    Inactive,
    /// Revoked because the device ceased operation (decommissioning revokes with
    /// `cessation_of_operation`): revoked, detached from its thing, the thing marked.
    Decommissioned,
    /// Taken back from the cloud (the connector was deleted with `deregister`): a certificate is made
    /// inactive, detached and deleted; a CA, once none of its certificates is left, likewise.
    Deregistered,
}

impl Desired {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Desired::Active => "active",
            Desired::Revoked => "revoked",
            Desired::Inactive => "inactive",
            Desired::Decommissioned => "decommissioned",
            Desired::Deregistered => "deregistered",
        }
    }

    fn parse(s: &str) -> Result<Desired, Error> {
        match s {
            "active" => Ok(Desired::Active),
            "revoked" => Ok(Desired::Revoked),
            "inactive" => Ok(Desired::Inactive),
            "decommissioned" => Ok(Desired::Decommissioned),
            "deregistered" => Ok(Desired::Deregistered),
            _ => Err(Error::Internal(format!("unknown desired state {s:?}"))),
        }
    }
}

/// One sync item as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncItem {
    /// CA or certificate.
    pub kind: SyncKind,
    /// The CA (the issuer of a certificate).
    pub ca_id: String,
    /// The certificate's serial; `None` for a CA.
    pub serial: Option<String>,
    /// What the cloud should show.
    pub desired: Desired,
    /// Where it stands.
    pub state: SyncState,
    /// Why the last attempt failed (or what a pending item waits for).
    pub error: Option<String>,
    /// Failed attempts since the last success.
    pub attempts: i64,
    /// When the next attempt is due (Unix seconds), unless synced.
    pub retry_at: Option<i64>,
    /// The cloud's certificate id.
    pub cloud_id: Option<String>,
    /// The cloud's certificate ARN.
    pub cloud_arn: Option<String>,
    /// The thing the certificate is attached to.
    pub thing_name: Option<String>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A certificate (or CA) as the cloud knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudRef {
    /// The cloud's id.
    pub id: String,
    /// The cloud's resource name.
    pub arn: String,
}

/// Why a call to the cloud failed.
#[derive(Debug)]
pub enum CloudFailure {
    /// The resource does not exist.
    NotFound,
    /// The resource exists already.
    AlreadyExists,
    /// Anything else, said for the operator (never a credential).
    Other(String),
}

impl std::fmt::Display for CloudFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloudFailure::NotFound => f.write_str("not found"),
            CloudFailure::AlreadyExists => f.write_str("already exists"),
            CloudFailure::Other(s) => f.write_str(s),
        }
    }
}

/// Where a device certificate goes in the cloud.
#[derive(Clone, Debug)]
pub struct DeviceBinding<'a> {
    /// The thing (device) name.
    pub thing_name: &'a str,
    /// The policy attached to the certificate.
    pub policy_name: &'a str,
    /// The policy's document, if the policy must be created.
    pub policy_document: &'a str,
    /// The group the thing joins.
    pub thing_group: Option<&'a str>,
}

/// A cloud IoT service as the sync worker uses it. Every method is a look-up or safe to repeat.
pub trait CloudProvider {
    /// The CA whose certificate has this SHA-256 fingerprint, if registered.
    fn find_ca(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<CloudRef>, CloudFailure>> + Send;
    /// A fresh registration code: the common name of the next verification certificate.
    fn registration_code(&self) -> impl Future<Output = Result<String, CloudFailure>> + Send;
    /// Registers a CA (active, with auto-registration), with its verification certificate unless `mode`
    /// is `SniOnly`.
    fn register_ca(
        &self,
        ca_pem: &str,
        verification_pem: Option<&str>,
        mode: CaMode,
    ) -> impl Future<Output = Result<CloudRef, CloudFailure>> + Send;
    /// The certificate with this SHA-256 fingerprint, if registered.
    fn find_certificate(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<CloudRef>, CloudFailure>> + Send;
    /// Registers a device certificate (active) under its CA (or without, in `SniOnly` mode).
    fn register_certificate(
        &self,
        cert_pem: &str,
        ca_pem: &str,
        mode: CaMode,
    ) -> impl Future<Output = Result<CloudRef, CloudFailure>> + Send;
    /// Makes the thing, the policy and the group exist, and attaches the certificate to them.
    fn bind_device(
        &self,
        cert: &CloudRef,
        binding: &DeviceBinding<'_>,
    ) -> impl Future<Output = Result<(), CloudFailure>> + Send;
    /// Detaches a certificate from its thing and marks the thing decommissioned.
    fn unbind_device(
        &self,
        cert: &CloudRef,
        thing_name: &str,
    ) -> impl Future<Output = Result<(), CloudFailure>> + Send;
    /// Sets a registered certificate's status.
    fn set_status(
        &self,
        cert: &CloudRef,
        desired: Desired,
    ) -> impl Future<Output = Result<(), CloudFailure>> + Send;
    /// Takes a certificate back: inactive unless revoked, detached from its thing (if any) and the policy,
    /// then deleted. Already gone is done.
    fn deregister_certificate(
        &self,
        cert: &CloudRef,
        thing_name: Option<&str>,
        policy_name: &str,
    ) -> impl Future<Output = Result<(), CloudFailure>> + Send;
    /// Takes a CA back: inactive, then deleted. Already gone is done.
    fn deregister_ca(&self, ca: &CloudRef)
    -> impl Future<Output = Result<(), CloudFailure>> + Send;
}

/// The settings stored as JSON (the connector row's `settings`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Settings {
    ca_ids: Vec<String>,
    policy_name: String,
    policy_document: String,
    thing_group: Option<String>,
    register_things: bool,
    ca_mode: CaMode,
}

/// A CA item's progress: the fingerprints of the verification certificates made for it (certificates the
/// connector issued itself, which are not devices and are never registered as such).
#[derive(Debug, Default, Serialize, Deserialize)]
struct CaProgress {
    verification: Vec<String>,
}

/// The default policy: a device may connect with its thing name as client id, and use topics under
/// `things/<thing name>/`.
const DEFAULT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/things/${iot:Connection.Thing.ThingName}/*"},{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/things/${iot:Connection.Thing.ThingName}/*"}]}"#;
const DEFAULT_POLICY_NAME: &str = "shedu-devices";

/// The cloud connector service.
pub struct Cloud {
    reg: Arc<Registry>,
    issuance: Arc<Issuance>,
    config: CloudConfig,
    http: reqwest::Client,
    wake: Notify,
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud").finish_non_exhaustive()
    }
}

enum Provider {
    Aws(aws::AwsIot),
}

struct Loaded {
    settings: Settings,
    provider: Provider,
    /// Where the provider is reached: (region, endpoint), to tell another connector's use of the same
    /// cloud registration.
    place: (String, Option<String>),
}

/// What a deletion came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The connector and its state are gone; the cloud keeps what it has.
    Deleted,
    /// The connector takes back what it registered, then goes (see its state meanwhile).
    Deregistering,
}

/// What one attempt at an item came to.
enum Step {
    Done,
    /// Not yet: why, and no earlier than when (Unix seconds).
    Wait(String, i64),
    Forget,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The associated data a connector's credentials are sealed with: sealed credentials moved to another
/// connector's row do not open.
pub(crate) fn sealing_context(id: &str) -> Vec<u8> {
    format!("cloud-connector:{id}").into_bytes()
}

impl Cloud {
    /// The service over `reg`, issuing verification certificates through `issuance`.
    pub(crate) fn new(
        reg: Arc<Registry>,
        issuance: Arc<Issuance>,
        config: CloudConfig,
    ) -> Result<Cloud, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("cloud HTTP client: {e}")))?;
        Ok(Cloud {
            reg,
            issuance,
            config,
            http,
            wake: Notify::new(),
        })
    }

    /// Creates a connector; its CAs are queued for registration at once.
    pub async fn create(
        &self,
        actor: &AuditContext,
        input: CloudConnectorInput,
    ) -> Result<CloudConnector, Error> {
        let settings = self.validate(&input).await?;
        let credentials = input.credentials.as_ref().ok_or_else(|| {
            Error::invalid("missing-credentials", "a connector needs its credentials")
        })?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.reg.now();
        let row = CloudConnectorRow {
            id: id.clone(),
            name: input.name.clone(),
            provider: input.provider.as_str().to_string(),
            region: input.region.clone(),
            endpoint_url: input.endpoint_url.clone(),
            settings: encode_settings(&settings)?,
            credentials: self.seal(&id, credentials)?,
            created_at: now,
            updated_at: now,
            deregister_at: None,
        };
        let ev = change_event(EventKind::CloudConnectorCreated, &row, &settings, now);
        self.reg
            .store
            .insert_cloud_connector(
                &row,
                &settings.ca_ids,
                &ev,
                &AuditAction::CloudConnectorCreate.by(actor),
            )
            .await
            .map_err(name_taken(&input.name))?;
        self.wake.notify_one();
        connector_from_row(row)
    }

    /// Replaces a connector's settings (the provider stays); credentials only when given. CAs it did not
    /// bind yet are queued and catch up with their certificates (from the first); failed items are retried
    /// now. A connector being deregistered cannot change.
    pub async fn update(
        &self,
        actor: &AuditContext,
        id: &str,
        input: CloudConnectorInput,
    ) -> Result<CloudConnector, Error> {
        let old = self.get_row(id).await?;
        if old.provider != input.provider.as_str() {
            return Err(Error::invalid(
                "cloud-provider-fixed",
                "a connector's provider cannot change; create another connector",
            ));
        }
        if old.deregister_at.is_some() {
            return Err(deregistering(id));
        }
        let settings = self.validate(&input).await?;
        let before = decode_settings(&old.settings)?;
        let rebound: Vec<String> = settings
            .ca_ids
            .iter()
            .filter(|ca| !before.ca_ids.contains(ca))
            .cloned()
            .collect();
        let sealed = input
            .credentials
            .as_ref()
            .map(|c| self.seal(id, c))
            .transpose()?;
        let row = CloudConnectorRow {
            name: input.name.clone(),
            region: input.region.clone(),
            endpoint_url: input.endpoint_url.clone(),
            settings: encode_settings(&settings)?,
            updated_at: self.reg.now(),
            ..old
        };
        let ev = change_event(
            EventKind::CloudConnectorUpdated,
            &row,
            &settings,
            row.updated_at,
        );
        self.reg
            .store
            .update_cloud_connector(
                &row,
                sealed.as_deref(),
                &settings.ca_ids,
                &rebound,
                &ev,
                &AuditAction::CloudConnectorUpdate.by(actor),
            )
            .await
            .map_err(name_taken(&input.name))?;
        self.wake.notify_one();
        connector_from_row(row)
    }

    /// Deletes a connector. Without `deregister`, at once with its sync state, and nothing changes in the
    /// cloud. With `deregister`, the connector first takes back what it registered (each certificate made
    /// inactive, detached from its thing and policy and deleted; then each CA, unless another connector
    /// uses the same registration), shown in its state meanwhile, and goes when that is done. A plain
    /// delete of a connector being deregistered stops that and deletes it at once.
    pub async fn delete(
        &self,
        actor: &AuditContext,
        id: &str,
        deregister: bool,
    ) -> Result<Deletion, Error> {
        let row = self.get_row(id).await?;
        let now = self.reg.now();
        if deregister {
            self.reg
                .store
                .begin_cloud_deregistration(
                    id,
                    now,
                    &AuditAction::CloudConnectorDeregister.by(actor),
                )
                .await
                .map_err(store_err(format!("cloud connector {id}")))?;
            self.wake.notify_one();
            return Ok(Deletion::Deregistering);
        }
        let ev = deleted_event(&row, false, now);
        self.reg
            .store
            .delete_cloud_connector(
                id,
                now,
                &ev,
                Some(&AuditAction::CloudConnectorDelete.by(actor)),
            )
            .await
            .map_err(store_err(format!("cloud connector {id}")))?;
        Ok(Deletion::Deleted)
    }

    /// Makes every CA of a connector catch up with its certificates from the first again (certificates
    /// issued before the connector existed or before it bound the CA are queued on their own; this is for
    /// certificates removed from the cloud by hand, or connectors made by an older version). Idempotent:
    /// certificates already queued or synced are not queued again.
    pub async fn backfill(&self, actor: &AuditContext, id: &str) -> Result<(), Error> {
        let row = self.get_row(id).await?;
        if row.deregister_at.is_some() {
            return Err(deregistering(id));
        }
        self.reg
            .store
            .restart_cloud_backfill(
                id,
                self.reg.now(),
                &AuditAction::CloudConnectorBackfill.by(actor),
            )
            .await
            .map_err(store_err(format!("cloud connector {id}")))?;
        self.wake.notify_one();
        Ok(())
    }

    /// One connector.
    pub async fn get(&self, id: &str) -> Result<CloudConnector, Error> {
        connector_from_row(self.get_row(id).await?)
    }

    /// Every connector, by name.
    pub async fn list(&self) -> Result<Vec<CloudConnector>, Error> {
        self.reg
            .store
            .cloud_connectors()
            .await
            .map_err(store_err("cloud connectors"))?
            .into_iter()
            .map(connector_from_row)
            .collect()
    }

    /// A connector's sync items (CAs first), filtered by kind and state when given.
    pub async fn state(
        &self,
        id: &str,
        kind: Option<SyncKind>,
        state: Option<SyncState>,
    ) -> Result<Vec<SyncItem>, Error> {
        self.get_row(id).await?;
        self.reg
            .store
            .cloud_sync_items(id, kind.map(SyncKind::as_str), state.map(SyncState::as_str))
            .await
            .map_err(store_err("cloud sync state"))?
            .into_iter()
            .map(item_from_row)
            .collect()
    }

    /// Queues the sync items a batch of outbox events calls for (`certificate.issued` and
    /// `certificate.revoked` under a bound CA), idempotently, and wakes the worker. Returns how many items
    /// changed. `events` are `(type, data)`.
    pub async fn enqueue(&self, events: &[(&str, &serde_json::Value)]) -> Result<u64, Error> {
        let connectors = self
            .reg
            .store
            .cloud_connectors()
            .await
            .map_err(store_err("cloud connectors"))?;
        if connectors.is_empty() {
            return Ok(0);
        }
        let mut bound: HashMap<String, Vec<String>> = HashMap::new();
        for c in connectors.iter().filter(|c| c.deregister_at.is_none()) {
            match decode_settings(&c.settings) {
                Ok(s) => {
                    for ca in s.ca_ids {
                        bound.entry(ca).or_default().push(c.id.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(connector = %c.id, error = %e, "unreadable cloud connector")
                }
            }
        }
        let mut items = Vec::new();
        for (ty, data) in events {
            let desired = if *ty == crate::EventKind::CertificateIssued.as_str() {
                Desired::Active
            } else if *ty == crate::EventKind::CertificateRevoked.as_str() {
                match data.get("reason").and_then(|r| r.as_str()) {
                    Some(r) if r == shedu_pki::RevocationReason::CertificateHold.as_str() => {
                        Desired::Inactive
                    }
                    Some(r) if r == shedu_pki::RevocationReason::CessationOfOperation.as_str() => {
                        Desired::Decommissioned
                    }
                    _ => Desired::Revoked,
                }
            } else {
                continue;
            };
            let field = |k: &str| data.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let (Some(ca_id), Some(serial)) = (field("ca_id"), field("serial")) else {
                continue;
            };
            for connector_id in bound.get(&ca_id).into_iter().flatten() {
                items.push((
                    CloudSyncKey {
                        connector_id: connector_id.clone(),
                        kind: SyncKind::Certificate.as_str().to_string(),
                        ca_id: ca_id.clone(),
                        serial: serial.clone(),
                    },
                    desired.as_str(),
                ));
            }
        }
        let changed = self
            .reg
            .store
            .queue_cloud_sync(&items, unix_now())
            .await
            .map_err(store_err("cloud sync state"))?;
        if changed > 0 {
            self.wake.notify_one();
        }
        Ok(changed)
    }

    /// Works until `shutdown`: takes the worker lock (one replica at a time), then syncs due items,
    /// waking on [`Cloud::enqueue`] and connector changes, and every poll interval.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let poll = self.config.poll_interval;
        'replica: loop {
            let mut lock = match self.reg.store.try_lock_sink(WORKER_LOCK).await {
                Ok(Some(l)) => l,
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::sleep(poll.max(Duration::from_secs(2))) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue 'replica;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cloud sync lock unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(poll.max(Duration::from_secs(2))) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue 'replica;
                }
            };
            loop {
                if *shutdown.borrow() {
                    return;
                }
                if !lock.is_held().await {
                    tracing::warn!("cloud sync lock lost; re-acquiring");
                    continue 'replica;
                }
                let busy = match self.sync_due().await {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "cloud sync pass failed");
                        false
                    }
                };
                if busy {
                    continue;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// One pass: a page of catching up per CA that has certificates left to queue, the due items (CAs
    /// first), then the end of the deregistrations that are done. Returns how much was done (0: idle).
    pub async fn sync_due(&self) -> Result<usize, Error> {
        let mut done = 0;
        let backfills = self
            .reg
            .store
            .cloud_backfills(BATCH)
            .await
            .map_err(store_err("cloud sync state"))?;
        for key in backfills {
            let (queued, more) = self
                .reg
                .store
                .backfill_cloud_sync(&key, self.config.backfill_page.max(1), unix_now())
                .await
                .map_err(store_err("cloud sync state"))?;
            tracing::debug!(connector = %key.connector_id, ca = %key.ca_id, queued, more,
                "cloud connector caught up with a page of certificates");
            if more || queued > 0 {
                done += 1;
            }
        }
        let due = self
            .reg
            .store
            .due_cloud_sync(unix_now(), BATCH)
            .await
            .map_err(store_err("cloud sync state"))?;
        let mut loaded: HashMap<String, Result<Arc<Loaded>, String>> = HashMap::new();
        for row in &due {
            if !loaded.contains_key(&row.connector_id) {
                let c = self
                    .load(&row.connector_id)
                    .await
                    .map(Arc::new)
                    .map_err(|e| format!("connector {}: {e}", row.connector_id));
                loaded.insert(row.connector_id.clone(), c);
            }
            if let Some(connector) = loaded.get(&row.connector_id) {
                self.sync_item(connector, row.clone()).await;
            }
        }
        done += due.len();
        for id in self
            .reg
            .store
            .deregistered_cloud_connectors()
            .await
            .map_err(store_err("cloud connectors"))?
        {
            // Deleted by an operator meanwhile: nothing left to do.
            let Ok(row) = self.get_row(&id).await else {
                continue;
            };
            let now = self.reg.now();
            match self
                .reg
                .store
                .delete_cloud_connector(&id, now, &deleted_event(&row, true, now), None)
                .await
            {
                Ok(()) | Err(shedu_store::Error::NotFound) => {}
                Err(e) => return Err(store_err(format!("cloud connector {id}"))(e)),
            }
        }
        Ok(done)
    }

    async fn sync_item(&self, connector: &Result<Arc<Loaded>, String>, mut row: CloudSyncRow) {
        let desired_read = row.desired.clone();
        let key = key_of(&row);
        let outcome = match connector {
            Ok(c) => match &c.provider {
                Provider::Aws(p) => self.attempt(p, c, &mut row).await,
            },
            Err(e) => Err(e.clone()),
        };
        let now = unix_now();
        row.updated_at = now;
        let mut failure_event = None;
        match outcome {
            Ok(Step::Forget) => {
                if let Err(e) = self.reg.store.forget_cloud_sync(&key).await {
                    tracing::warn!(error = %e, "cannot update cloud sync state");
                }
                return;
            }
            Ok(Step::Done) => {
                row.state = SyncState::Synced.as_str().into();
                row.error = None;
                row.attempts = 0;
                row.retry_at = now;
            }
            Ok(Step::Wait(why, not_before)) => {
                row.state = SyncState::Pending.as_str().into();
                row.error = Some(why);
                row.retry_at = not_before.max(now + WAIT_FOR_CA_SECS);
            }
            Err(why) => {
                row.attempts += 1;
                let delay = backoff(&self.config, row.attempts);
                tracing::info!(connector = %row.connector_id, kind = %row.kind, ca = %row.ca_id,
                    serial = %row.serial, attempts = row.attempts, retry_in_s = delay, error = %why,
                    "cloud sync failed; will retry");
                row.state = SyncState::Failed.as_str().into();
                row.error = Some(why);
                row.retry_at = now + delay;
                // The first failure of a run (attempts count from the last success, a settings change or
                // a new wish): one event an alert can fire on, not one per retry.
                if row.attempts == 1 {
                    failure_event = Some(failed_event(&row, now));
                }
            }
        }
        if let Err(e) = self
            .reg
            .store
            .record_cloud_sync(&row, &desired_read, failure_event.as_ref())
            .await
        {
            tracing::warn!(error = %e, "cannot update cloud sync state");
        }
        if row.kind == SyncKind::Ca.as_str()
            && row.state == SyncState::Synced.as_str()
            && let Err(e) = self
                .reg
                .store
                .wake_cloud_certificates(&row.connector_id, &row.ca_id, now)
                .await
        {
            tracing::warn!(error = %e, "cannot update cloud sync state");
        }
    }

    /// One attempt at one item. Cloud ids learnt on the way are put in `row` (and stored at once).
    async fn attempt<P: CloudProvider>(
        &self,
        p: &P,
        c: &Loaded,
        row: &mut CloudSyncRow,
    ) -> Result<Step, String> {
        let settings = &c.settings;
        let loaded = self
            .reg
            .loaded(&row.ca_id)
            .await
            .map_err(|e| format!("CA {}: {e}", row.ca_id))?;
        let ca_der = loaded.ca.certificate_der.clone();
        let ca_pem = pem_encode_cert(&ca_der);
        if Desired::parse(&row.desired).map_err(|e| e.to_string())? == Desired::Deregistered {
            return self.attempt_deregister(p, c, row, &ca_der).await;
        }
        if row.kind == SyncKind::Ca.as_str() {
            return self.attempt_ca(p, settings, row, &ca_der, &ca_pem).await;
        }
        let ca_key = CloudSyncKey {
            kind: SyncKind::Ca.as_str().into(),
            serial: String::new(),
            ..key_of(row)
        };
        let ca_item = self
            .reg
            .store
            .cloud_sync_item(&ca_key)
            .await
            .map_err(|e| e.to_string())?;
        let Some(ca_item) = ca_item else {
            return Ok(Step::Forget);
        };
        // Verification certificates of this CA, whichever connector made them: not devices.
        let verification: Vec<String> = self
            .reg
            .store
            .cloud_ca_details(&row.ca_id)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|d| serde_json::from_str::<CaProgress>(d).ok())
            .flat_map(|p| p.verification)
            .collect();
        let serial: Serial = row.serial.parse().map_err(|e| format!("serial: {e}"))?;
        let cert = self
            .issuance
            .certificate(&row.ca_id, &serial)
            .await
            .map_err(|e| format!("certificate {}: {e}", row.serial))?;
        if verification.contains(&cert.fingerprint) {
            return Ok(Step::Forget);
        }
        if ca_item.state != SyncState::Synced.as_str() {
            // Not before the CA's own next attempt: thousands of certificates of a CA whose registration
            // keeps failing do not churn every few seconds.
            return Ok(Step::Wait(
                format!("waiting for CA {} to be registered", row.ca_id),
                ca_item.retry_at,
            ));
        }
        let cloud = match (&row.cloud_id, &row.cloud_arn) {
            (Some(id), Some(arn)) => CloudRef {
                id: id.clone(),
                arn: arn.clone(),
            },
            _ => {
                let found = p.find_certificate(&cert.fingerprint).await.map_err(say)?;
                let r = match found {
                    Some(r) => r,
                    None => match p
                        .register_certificate(
                            &pem_encode_cert(&cert.der),
                            &ca_pem,
                            settings.ca_mode,
                        )
                        .await
                    {
                        Ok(r) => r,
                        Err(CloudFailure::AlreadyExists) => p
                            .find_certificate(&cert.fingerprint)
                            .await
                            .map_err(say)?
                            .ok_or("the cloud says the certificate exists but cannot find it")?,
                        Err(e) => return Err(say(e)),
                    },
                };
                row.cloud_id = Some(r.id.clone());
                row.cloud_arn = Some(r.arn.clone());
                self.remember(row).await;
                r
            }
        };
        let desired = Desired::parse(&row.desired).map_err(|e| e.to_string())?;
        if settings.register_things && desired == Desired::Active {
            let thing = CertInfo::from_der(&cert.der)
                .ok()
                .and_then(|i| i.common_name)
                .map(|cn| thing_name(&cn))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| cert.fingerprint.clone());
            p.bind_device(
                &cloud,
                &DeviceBinding {
                    thing_name: &thing,
                    policy_name: &settings.policy_name,
                    policy_document: &settings.policy_document,
                    thing_group: settings.thing_group.as_deref(),
                },
            )
            .await
            .map_err(say)?;
            row.thing_name = Some(thing);
        }
        if desired != Desired::Active {
            p.set_status(&cloud, desired).await.map_err(say)?;
        }
        if desired == Desired::Decommissioned
            && let Some(thing) = &row.thing_name
        {
            p.unbind_device(&cloud, thing).await.map_err(say)?;
        }
        Ok(Step::Done)
    }

    /// Takes an item back from the cloud: a certificate at once, a CA once none of this connector's
    /// certificates under it is left. What another live connector registered at the same place too (same
    /// cloud id, region and endpoint) is left in the cloud; the item is forgotten either way.
    async fn attempt_deregister<P: CloudProvider>(
        &self,
        p: &P,
        c: &Loaded,
        row: &mut CloudSyncRow,
        ca_der: &[u8],
    ) -> Result<Step, String> {
        let is_ca = row.kind == SyncKind::Ca.as_str();
        if is_ca {
            let left = self
                .reg
                .store
                .cloud_certificate_items(&row.connector_id, &row.ca_id)
                .await
                .map_err(|e| e.to_string())?;
            if left > 0 {
                return Ok(Step::Wait(
                    format!("waiting for {left} certificates of the CA to be deregistered"),
                    0,
                ));
            }
        }
        let known = match (&row.cloud_id, &row.cloud_arn) {
            (Some(id), Some(arn)) => Some(CloudRef {
                id: id.clone(),
                arn: arn.clone(),
            }),
            // No ids stored: an attempt may have registered it and crashed before writing them down.
            _ if is_ca => p
                .find_ca(&shedu_pki::fingerprint_sha256(ca_der))
                .await
                .map_err(say)?,
            _ => {
                let serial: Serial = row.serial.parse().map_err(|e| format!("serial: {e}"))?;
                let cert = self
                    .issuance
                    .certificate(&row.ca_id, &serial)
                    .await
                    .map_err(|e| format!("certificate {}: {e}", row.serial))?;
                p.find_certificate(&cert.fingerprint).await.map_err(say)?
            }
        };
        let Some(cloud) = known else {
            return Ok(Step::Forget);
        };
        let shared = self
            .reg
            .store
            .cloud_id_holders(&row.connector_id, &row.kind, &cloud.id)
            .await
            .map_err(|e| e.to_string())?
            .contains(&c.place);
        if shared {
            return Ok(Step::Forget);
        }
        if is_ca {
            p.deregister_ca(&cloud).await.map_err(say)?;
        } else {
            p.deregister_certificate(&cloud, row.thing_name.as_deref(), &c.settings.policy_name)
                .await
                .map_err(say)?;
        }
        Ok(Step::Forget)
    }

    async fn attempt_ca<P: CloudProvider>(
        &self,
        p: &P,
        settings: &Settings,
        row: &mut CloudSyncRow,
        ca_der: &[u8],
        ca_pem: &str,
    ) -> Result<Step, String> {
        let fingerprint = shedu_pki::fingerprint_sha256(ca_der);
        if let Some(r) = p.find_ca(&fingerprint).await.map_err(say)? {
            row.cloud_id = Some(r.id);
            row.cloud_arn = Some(r.arn);
            return Ok(Step::Done);
        }
        let verification = match settings.ca_mode {
            CaMode::SniOnly => None,
            CaMode::Default => {
                let code = p.registration_code().await.map_err(say)?;
                Some(self.verification_certificate(row, &code).await?)
            }
        };
        let r = match p
            .register_ca(ca_pem, verification.as_deref(), settings.ca_mode)
            .await
        {
            Ok(r) => r,
            Err(CloudFailure::AlreadyExists) => p
                .find_ca(&fingerprint)
                .await
                .map_err(say)?
                .ok_or("the cloud says the CA exists but cannot find it")?,
            Err(e) => return Err(say(e)),
        };
        row.cloud_id = Some(r.id);
        row.cloud_arn = Some(r.arn);
        Ok(Step::Done)
    }

    /// Issues (through [`Issuance`], so it is recorded like any certificate) a one-day certificate signed by
    /// the CA whose common name is the cloud's registration code: the proof that the platform holds the CA
    /// key. Its fingerprint is stored with the CA item first, so that its own `certificate.issued` event
    /// is never taken for a device's.
    async fn verification_certificate(
        &self,
        row: &mut CloudSyncRow,
        code: &str,
    ) -> Result<String, String> {
        use shedu_pki::rcgen;
        let key = rcgen::KeyPair::generate().map_err(|e| format!("verification key: {e}"))?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, code);
        let csr = params
            .serialize_request(&key)
            .map_err(|e| format!("verification CSR: {e}"))?;
        let actor = AuditContext::new("shedu", "", "system", "cloud-connector", "");
        let csr =
            shedu_pki::Csr::from_der(csr.der()).map_err(|e| format!("verification CSR: {e}"))?;
        let prepared = crate::certificates::prepare(&self.reg, &row.ca_id, &csr, Some(1), None)
            .await
            .map_err(|e| format!("verification certificate: {e}"))?;
        let mut progress: CaProgress = row
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        progress
            .verification
            .push(prepared.issued.certificate.fingerprint.clone());
        row.detail = serde_json::to_string(&progress).ok();
        self.remember(row).await;
        let issued = self
            .issuance
            .commit(&actor, prepared)
            .await
            .map_err(|e| format!("verification certificate: {e}"))?;
        Ok(pem_encode_cert(&issued.certificate.der))
    }

    /// Stores what an attempt learnt so far (cloud ids, progress), keeping the item due.
    async fn remember(&self, row: &CloudSyncRow) {
        let desired = row.desired.clone();
        if let Err(e) = self.reg.store.record_cloud_sync(row, &desired, None).await {
            tracing::warn!(error = %e, "cannot update cloud sync state");
        }
    }

    async fn load(&self, id: &str) -> Result<Loaded, Error> {
        let row = self.get_row(id).await?;
        let settings = decode_settings(&row.settings)?;
        let plain = self
            .reg
            .keystore
            .open_secret(&sealing_context(id), &row.credentials)
            .map_err(|_| {
                Error::Internal(format!("cloud connector {id}: credentials do not open"))
            })?;
        // Sealed as `<access key id>\n<secret>` (the id is letters and digits only).
        let credentials = std::str::from_utf8(&plain)
            .ok()
            .and_then(|s| s.split_once('\n'))
            .map(|(id, secret)| CloudCredentials {
                access_key_id: id.to_string(),
                secret_access_key: Zeroizing::new(secret.to_string()),
            })
            .ok_or_else(|| {
                Error::Internal(format!("cloud connector {id}: unreadable credentials"))
            })?;
        let provider = match row.provider.parse::<CloudProviderKind>()? {
            CloudProviderKind::AwsIot => Provider::Aws(aws::AwsIot {
                http: self.http.clone(),
                endpoint: row
                    .endpoint_url
                    .clone()
                    .unwrap_or_else(|| aws::default_endpoint(&row.region))
                    .trim_end_matches('/')
                    .to_string(),
                region: row.region.clone(),
                access_key_id: credentials.access_key_id,
                secret_access_key: credentials.secret_access_key,
            }),
        };
        Ok(Loaded {
            settings,
            provider,
            place: (row.region.clone(), row.endpoint_url.clone()),
        })
    }

    async fn get_row(&self, id: &str) -> Result<CloudConnectorRow, Error> {
        self.reg
            .store
            .cloud_connector(id)
            .await
            .map_err(store_err(format!("cloud connector {id}")))
    }

    fn seal(&self, id: &str, credentials: &CloudCredentials) -> Result<Vec<u8>, Error> {
        let mut plain = Zeroizing::new(Vec::new());
        plain.extend_from_slice(credentials.access_key_id.as_bytes());
        plain.push(b'\n');
        plain.extend_from_slice(credentials.secret_access_key.as_bytes());
        Ok(self
            .reg
            .keystore
            .seal_secret(&sealing_context(id), &plain)?)
    }

    /// Checks an input and resolves its defaults into the stored settings.
    async fn validate(&self, input: &CloudConnectorInput) -> Result<Settings, Error> {
        crate::model::check_name(&input.name)?;
        let region_ok = !input.region.is_empty()
            && input.region.len() <= 32
            && input
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !input.region.starts_with('-');
        if !region_ok {
            return Err(Error::invalid(
                "invalid-region",
                format!("{:?} is not a region (such as eu-west-1)", input.region),
            ));
        }
        if let Some(url) = &input.endpoint_url {
            let parsed = reqwest::Url::parse(url).map_err(|e| {
                Error::invalid("invalid-endpoint", format!("{url:?} is not a URL: {e}"))
            })?;
            if !crate::https_or_loopback(&parsed)
                || parsed.host_str().is_none()
                || !parsed.username().is_empty()
                || parsed.password().is_some()
                || parsed.query().is_some()
            {
                return Err(Error::invalid(
                    "invalid-endpoint",
                    format!(
                        "{url:?}: the endpoint must be an https URL without credentials or query (plain http only on loopback)"
                    ),
                ));
            }
        }
        if let Some(c) = &input.credentials {
            let id_ok = (16..=128).contains(&c.access_key_id.len())
                && c.access_key_id.chars().all(|ch| ch.is_ascii_alphanumeric());
            let secret_ok = !c.secret_access_key.is_empty()
                && c.secret_access_key.len() <= 256
                && !c.secret_access_key.chars().any(char::is_control);
            if !id_ok || !secret_ok {
                return Err(Error::invalid(
                    "invalid-credentials",
                    "access_key_id is 16 to 128 letters and digits; secret_access_key is 1 to 256 printable characters",
                ));
            }
        }
        if input.ca_ids.is_empty() {
            return Err(Error::invalid(
                "no-cas",
                "a connector binds at least one CA (ca_ids)",
            ));
        }
        let mut ca_ids: Vec<String> = Vec::new();
        for ca in &input.ca_ids {
            match self.reg.loaded(ca).await {
                Ok(_) => {}
                Err(Error::NotFound(_)) => {
                    return Err(Error::invalid("unknown-ca", format!("no CA {ca:?}")));
                }
                Err(e) => return Err(e),
            }
            if !ca_ids.contains(ca) {
                ca_ids.push(ca.clone());
            }
        }
        let policy_name = input
            .policy_name
            .clone()
            .unwrap_or_else(|| DEFAULT_POLICY_NAME.to_string());
        if policy_name.is_empty()
            || policy_name.len() > 128
            || !policy_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
        {
            return Err(Error::invalid(
                "invalid-policy",
                "policy_name is 1 to 128 of A-Z a-z 0-9 + = , . @ - _",
            ));
        }
        let policy_document = match &input.policy_document {
            Some(d) => {
                if d.len() > 20_480 || serde_json::from_str::<serde_json::Value>(d).is_err() {
                    return Err(Error::invalid(
                        "invalid-policy",
                        "policy_document is a JSON document of at most 20 KiB",
                    ));
                }
                d.clone()
            }
            None => DEFAULT_POLICY.to_string(),
        };
        if let Some(g) = &input.thing_group
            && (g.is_empty()
                || g.len() > 128
                || !g
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":_-".contains(c)))
        {
            return Err(Error::invalid(
                "invalid-thing-group",
                "thing_group is 1 to 128 of A-Z a-z 0-9 : _ -",
            ));
        }
        Ok(Settings {
            ca_ids,
            policy_name,
            policy_document,
            thing_group: input.thing_group.clone(),
            register_things: input.register_things,
            ca_mode: input.ca_mode,
        })
    }
}

/// The delay before attempt `attempts + 1`, in seconds: doubling from `retry_initial`, at most `retry_max`.
fn backoff(config: &CloudConfig, attempts: i64) -> i64 {
    let initial = config.retry_initial.as_secs().max(1);
    let max = config.retry_max.as_secs().max(initial);
    let shift = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    initial.saturating_mul(1 << shift).min(max) as i64
}

/// A thing name from a common name: AWS IoT allows `[a-zA-Z0-9:_-]{1,128}`; anything else becomes `_`.
fn thing_name(cn: &str) -> String {
    cn.chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || ":_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The answer to a change of a connector being deregistered.
fn deregistering(id: &str) -> Error {
    Error::conflict(
        "cloud-connector-deregistering",
        format!("cloud connector {id} is being deregistered; it goes when that is done"),
    )
}

/// The subject of a connector's events.
fn subject(id: &str) -> String {
    format!("cloud-connectors/{id}")
}

/// A connector change as an event: what it is and binds, never its credentials.
fn change_event(
    kind: EventKind,
    row: &CloudConnectorRow,
    s: &Settings,
    now: i64,
) -> shedu_store::NewEvent {
    event(
        kind,
        subject(&row.id),
        now,
        serde_json::json!({
            "id": row.id, "name": row.name, "type": row.provider, "region": row.region,
            "endpoint_url": row.endpoint_url, "ca_ids": s.ca_ids, "register_things": s.register_things,
            "thing_group": s.thing_group, "ca_mode": s.ca_mode.as_str(),
        }),
    )
}

/// A connector gone; `deregistered`: after taking back what it registered.
fn deleted_event(row: &CloudConnectorRow, deregistered: bool, now: i64) -> shedu_store::NewEvent {
    event(
        EventKind::CloudConnectorDeleted,
        subject(&row.id),
        now,
        serde_json::json!({
            "id": row.id, "name": row.name, "type": row.provider, "deregistered": deregistered,
        }),
    )
}

/// The first failure of a sync item.
fn failed_event(row: &CloudSyncRow, now: i64) -> shedu_store::NewEvent {
    event(
        EventKind::CloudSyncFailed,
        subject(&row.connector_id),
        now,
        serde_json::json!({
            "connector_id": row.connector_id, "kind": row.kind, "ca_id": row.ca_id,
            "serial": (!row.serial.is_empty()).then_some(&row.serial), "desired": row.desired,
            "error": row.error, "attempts": row.attempts, "retry_at": row.retry_at,
        }),
    )
}

fn say(e: CloudFailure) -> String {
    e.to_string()
}

fn key_of(row: &CloudSyncRow) -> CloudSyncKey {
    CloudSyncKey {
        connector_id: row.connector_id.clone(),
        kind: row.kind.clone(),
        ca_id: row.ca_id.clone(),
        serial: row.serial.clone(),
    }
}

fn name_taken(name: &str) -> impl FnOnce(shedu_store::Error) -> Error + '_ {
    move |e| match e {
        shedu_store::Error::Conflict { .. } => Error::conflict(
            "cloud-connector-exists",
            format!("a cloud connector named {name:?} exists"),
        ),
        e => store_err("cloud connector")(e),
    }
}

fn encode_settings(s: &Settings) -> Result<String, Error> {
    serde_json::to_string(s).map_err(|e| Error::Internal(format!("connector settings: {e}")))
}

fn decode_settings(s: &str) -> Result<Settings, Error> {
    serde_json::from_str(s).map_err(|e| Error::Internal(format!("connector settings: {e}")))
}

fn connector_from_row(row: CloudConnectorRow) -> Result<CloudConnector, Error> {
    let s = decode_settings(&row.settings)?;
    Ok(CloudConnector {
        provider: row.provider.parse()?,
        id: row.id,
        name: row.name,
        region: row.region,
        endpoint_url: row.endpoint_url,
        ca_ids: s.ca_ids,
        policy_name: s.policy_name,
        policy_document: s.policy_document,
        thing_group: s.thing_group,
        register_things: s.register_things,
        ca_mode: s.ca_mode,
        deregistering: row.deregister_at.is_some(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn item_from_row(row: CloudSyncRow) -> Result<SyncItem, Error> {
    let kind = match row.kind.as_str() {
        "ca" => SyncKind::Ca,
        "certificate" => SyncKind::Certificate,
        k => return Err(Error::Internal(format!("unknown sync kind {k:?}"))),
    };
    let state = match row.state.as_str() {
        "pending" => SyncState::Pending,
        "synced" => SyncState::Synced,
        "failed" => SyncState::Failed,
        s => return Err(Error::Internal(format!("unknown sync state {s:?}"))),
    };
    Ok(SyncItem {
        kind,
        serial: (kind == SyncKind::Certificate).then_some(row.serial),
        ca_id: row.ca_id,
        desired: Desired::parse(&row.desired)?,
        retry_at: (state != SyncState::Synced).then_some(row.retry_at),
        state,
        error: row.error,
        attempts: row.attempts,
        cloud_id: row.cloud_id,
        cloud_arn: row.cloud_arn,
        thing_name: row.thing_name,
        updated_at: row.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = CloudConfig {
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(30),
            ..CloudConfig::default()
        };
        let got: Vec<i64> = (1..=6).map(|a| backoff(&c, a)).collect();
        assert_eq!(got, [2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(&c, 10_000), 30);
    }

    #[test]
    fn thing_names_keep_only_what_aws_allows() {
        assert_eq!(thing_name("dev-01:a_b"), "dev-01:a_b");
        assert_eq!(thing_name("dev 01.example"), "dev_01_example");
    }
}
