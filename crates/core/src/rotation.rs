//! Agentless certificate rotation (Ottr's shape, with shedu as the CA): an inventory of assets reached from
//! outside, executors that reach them (a local `command`, or `ssh` with a pinned host key), ordered routes
//! that pick an executor per platform (first match wins; no match is an event, never a silent skip), and
//! runs that rotate a certificate and then check it **on the wire**: the served leaf must be the issued
//! certificate, its chain must verify to the CA, its names must cover the asset's.
//!
//! The scheduler ([`Rotation::tick`], on the lifecycle tick) takes a PostgreSQL advisory lock so that one
//! replica queues due assets; a queued run is claimed by exactly one worker on any replica (storage's
//! guarded claim), and each replica runs at most `max_concurrent` at once. The rest wait, visible, in the
//! FIFO queue (`queued` runs). A due asset is one whose `next_rotation_at` has come: notAfter minus the
//! route's `renew_before_days`, or at once while its expiry is unknown; failures back off (1 h, 4 h, 24 h).

mod exec;
mod glob;
mod run;
pub(crate) mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shedu_keys::{Keystore, MasterKey};
use shedu_store::{AssetFilter, AssetObserved, AssetRow, ExecutorRow, RouteRow, RunRow};
use zeroize::Zeroizing;

use crate::error::store_err;
use crate::events::{EventKind, event};
use crate::{AuditAction, AuditContext, Error, Issuance, Page, Registry};

pub use exec::{CommandSettings, ExecutorSpec, HttpSettings, SshCommands, SshSettings};

/// Rotation's settings.
#[derive(Clone, Debug)]
pub struct RotationConfig {
    /// Runs at once on this replica (`--max-concurrent-rotations`, default 50).
    pub max_concurrent: usize,
    /// A run's whole budget (default 600 s); a step still running then is killed and the run fails.
    pub run_timeout: Duration,
    /// How long validation retries the handshake after `reload` (default 30 s, within the run's budget).
    pub validation_timeout: Duration,
    /// Connect and handshake timeout of a scan or one validation attempt (default 10 s).
    pub connect_timeout: Duration,
    /// Back-off after the 1st, 2nd and 3rd and later failures in a row (default 1 h, 4 h, 24 h).
    pub backoff: [i64; 3],
    /// Revoke the previous certificate (`superseded`) after a verified rotation.
    pub revoke_previous: bool,
    /// A running run whose worker has not stamped its heartbeat for this long (its replica died) is
    /// abandoned: marked failed, its new certificate revoked, its asset due again (default 60 s; the
    /// worker stamps every quarter of it).
    pub stale_after: Duration,
}

impl Default for RotationConfig {
    fn default() -> RotationConfig {
        RotationConfig {
            max_concurrent: 50,
            run_timeout: Duration::from_secs(600),
            validation_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            backoff: [3_600, 4 * 3_600, 24 * 3_600],
            revoke_previous: false,
            stale_after: Duration::from_secs(60),
        }
    }
}

/// The editable fields of an asset (Ottr's, plus `ca_id` and `labels`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetInput {
    /// Unique name: letters, digits, `.`, `-`, `_`, up to 253 characters.
    pub system_name: String,
    /// The certificate's common name, a DNS name; validation connects with it as SNI.
    pub common_name: String,
    /// More DNS names or IP addresses the certificate must cover.
    pub subject_alternative_name: Vec<String>,
    /// The address to reach: an IP address or a host name (required).
    pub ip_address: Option<String>,
    /// TLS port (default 443).
    pub port: u16,
    /// Ottr's data center.
    pub data_center: Option<String>,
    /// Platform (`linux`, `panos`, …), matched by routes.
    pub host_platform: Option<String>,
    /// OS version, matched by routes' globs.
    pub os_version: Option<String>,
    /// Device model, matched by routes.
    pub device_model: Option<String>,
    /// Where the record came from.
    pub origin: Option<String>,
    /// Verify the host's current certificate when scanning (against the platform's CAs).
    pub certificate_validation: bool,
    /// The CA to issue from; the route's when `None`.
    pub ca_id: Option<String>,
    /// Labels, matched by routes.
    pub labels: BTreeMap<String, String>,
}

/// An asset with its computed fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    /// The editable fields.
    pub input: AssetInput,
    /// notAfter of the certificate it serves (scan or rotation).
    pub certificate_expiration: Option<i64>,
    /// SHA-256 of the certificate it serves.
    pub current_fingerprint: Option<String>,
    /// When the scheduler takes it; `None` while a run is queued or running.
    pub next_rotation_at: Option<i64>,
    /// The last run's id.
    pub last_run: Option<String>,
    /// Why the scheduler passed over it (`no_route`, `failed`).
    pub skip_reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Asset search; every set field must match.
#[derive(Clone, Debug, Default)]
pub struct AssetQuery {
    /// Equality on a text field, by its name (`common_name`, `data_center`, `host_platform`, …).
    pub equals: Vec<(String, String)>,
    /// The port.
    pub port: Option<u16>,
    /// The validation flag.
    pub certificate_validation: Option<bool>,
    /// One SAN equals this.
    pub san: Option<String>,
    /// A label `key=value`.
    pub label: Option<String>,
    /// Expires within this many days (from now).
    pub days_until_expiration: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// An executor as shown: never its secret.
#[derive(Clone, Debug)]
pub struct Executor {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Its settings (secrets left out).
    pub spec: ExecutorSpec,
    /// Whether a secret is sealed with it.
    pub has_secret: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A new executor.
#[derive(Clone, Debug)]
pub struct ExecutorInput {
    /// Unique name.
    pub name: String,
    /// Kind and settings.
    pub spec: ExecutorSpec,
    /// The secret (the SSH private key, OpenSSH or PKCS#8 PEM), sealed at once and never shown again.
    pub secret: Option<Zeroizing<String>>,
}

/// What a route matches; every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteMatch {
    /// Exact platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_platform: Option<String>,
    /// A glob (`*`, `?`, `[a-z]`) over the OS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// One of these models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_model: Vec<String>,
    /// Each label set to this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Where the new key is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    /// The device makes its key and prints a CSR (the key never leaves it).
    #[default]
    OnDevice,
    /// shedu makes the key in memory, has it certified, and the executor's `install` delivers it with the
    /// certificate; it is never stored or logged.
    Server,
}

/// A route's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSettings {
    /// What it matches.
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// The CA to issue from (an asset's own `ca_id` wins).
    pub ca_id: String,
    /// Validity of the new certificate; the CA profile's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_days: Option<u32>,
    /// Rotate this many days before notAfter (default 30).
    pub renew_before_days: u32,
    /// Where the key is made.
    pub key_mode: KeyMode,
    /// The key type shedu makes with `key_mode = server` (default `ec-p256`); informational for
    /// `on_device` (the CSR decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
}

/// A route.
#[derive(Clone, Debug)]
pub struct Route {
    /// Id.
    pub id: String,
    /// Order (lowest first).
    pub position: i64,
    /// The executor's id.
    pub executor_id: String,
    /// Settings.
    pub settings: RouteSettings,
    /// Unix seconds.
    pub created_at: i64,
}

/// A new route.
#[derive(Clone, Debug)]
pub struct RouteInput {
    /// Order; after the last route when unset.
    pub position: Option<i64>,
    /// The executor, by id or name.
    pub executor: String,
    /// Settings.
    pub settings: RouteSettings,
}

/// A run's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Waiting for a worker (FIFO).
    Queued,
    /// A worker runs it.
    Running,
    /// Installed and verified on the wire.
    Succeeded,
    /// Failed; the new certificate, if any, is revoked.
    Failed,
    /// Failed after install; `rollback` ran, and the new certificate is revoked.
    RolledBack,
}

impl RunState {
    /// Every state.
    pub const ALL: [RunState; 5] = [
        RunState::Queued,
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::RolledBack,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::RolledBack => "rolled_back",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<RunState, Error> {
        RunState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "invalid-run-state",
                    "state is queued, running, succeeded, failed or rolled_back",
                )
            })
    }
}

/// One entry of a run's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStep {
    /// Unix seconds.
    pub time: i64,
    /// `route`, `csr`, `issue`, `install`, `reload`, `validate`, `rollback`, `revoke`, `finish`.
    pub step: String,
    /// `ok` or `error`.
    pub outcome: String,
    /// What happened (secrets and private keys redacted).
    pub detail: String,
}

/// A run.
#[derive(Clone, Debug)]
pub struct Run {
    /// Id.
    pub id: String,
    /// The asset.
    pub system_name: String,
    /// State.
    pub state: RunState,
    /// `manual` or `scheduled`.
    pub trigger: String,
    /// The log.
    pub steps: Vec<RunStep>,
    /// The new certificate's serial, once issued.
    pub serial: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub started_at: Option<i64>,
    /// Unix seconds.
    pub finished_at: Option<i64>,
}

/// Run listing.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    /// Of one asset.
    pub system_name: Option<String>,
    /// In one state (`queued` shows the queue).
    pub state: Option<RunState>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// What a scan saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanResult {
    /// notAfter of the served leaf.
    pub certificate_expiration: i64,
    /// SHA-256 of the served leaf.
    pub current_fingerprint: String,
    /// Its subject.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
}

/// The rotation service.
#[derive(Debug)]
pub struct Rotation {
    reg: Arc<Registry>,
    issuance: Arc<Issuance>,
    keystore: Keystore,
    config: RotationConfig,
    permits: Arc<tokio::sync::Semaphore>,
    wake: Arc<tokio::sync::Notify>,
    /// The client of `http` executors: the webhook target policy applies.
    http: crate::WebhookClient,
}

/// The words a run of the scheduler acts as, in the audit log.
fn scheduler_actor(run_id: &str) -> AuditContext {
    AuditContext::new("rotation", "", "system", "scheduler", run_id)
}

/// The associated data an executor's secret is sealed with: a sealed secret moved to another row does
/// not open.
pub(crate) fn executor_secret_context(executor_id: &str) -> Vec<u8> {
    format!("shedu-rotation-executor-v1:{executor_id}").into_bytes()
}

const SKIP_NO_ROUTE: &str = "no_route";
const SKIP_FAILED: &str = "failed";
const DEFAULT_RENEW_BEFORE_DAYS: i64 = 30;

impl Rotation {
    pub(crate) fn open(
        reg: Arc<Registry>,
        issuance: Arc<Issuance>,
        master: &MasterKey,
        config: RotationConfig,
        http: crate::WebhookClient,
    ) -> Result<Arc<Rotation>, Error> {
        let rotation = Arc::new(Rotation {
            http,
            reg,
            issuance,
            keystore: Keystore::new(master)?,
            permits: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent.max(1))),
            config,
            wake: Arc::new(tokio::sync::Notify::new()),
        });
        spawn_dispatcher(Arc::downgrade(&rotation), rotation.wake.clone());
        Ok(rotation)
    }

    // ----- inventory -----

    /// Adds an asset. `Conflict` (`asset-exists`) when the name is taken.
    pub async fn create_asset(
        &self,
        actor: &AuditContext,
        input: AssetInput,
    ) -> Result<Asset, Error> {
        check_asset(&input)?;
        let now = self.reg.now();
        let row = AssetRow {
            failures: 0,
            // Unknown expiry: due at once (a scan fills it first when run before).
            next_rotation_at: Some(now),
            created_at: now,
            updated_at: now,
            ..asset_row(&input)
        };
        self.reg
            .store
            .insert_asset(&row, &AuditAction::AssetCreate.by(actor))
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict { .. } => Error::conflict(
                    "asset-exists",
                    format!("asset {} already exists", input.system_name),
                ),
                other => store_err("asset")(other),
            })?;
        self.asset(&input.system_name).await
    }

    /// Replaces an asset's editable fields (the computed ones stay). `NotFound` when missing.
    pub async fn replace_asset(
        &self,
        actor: &AuditContext,
        name: &str,
        input: AssetInput,
    ) -> Result<Asset, Error> {
        if input.system_name != name {
            return Err(Error::invalid(
                "system-name-mismatch",
                "system_name cannot change; create a new asset instead",
            ));
        }
        check_asset(&input)?;
        let row = AssetRow {
            updated_at: self.reg.now(),
            ..asset_row(&input)
        };
        self.reg
            .store
            .update_asset(&row, &AuditAction::AssetUpdate.by(actor))
            .await
            .map_err(store_err(format!("asset {name}")))?;
        self.asset(name).await
    }

    /// Deletes an asset. `Conflict` (`rotation-active`) while a run is queued or running for it.
    pub async fn delete_asset(&self, actor: &AuditContext, name: &str) -> Result<(), Error> {
        self.reg
            .store
            .delete_asset(name, self.reg.now(), &AuditAction::AssetDelete.by(actor))
            .await
            .map_err(active_or(format!("asset {name}")))
    }

    /// One asset.
    pub async fn asset(&self, name: &str) -> Result<Asset, Error> {
        let row = self
            .reg
            .store
            .asset(name)
            .await
            .map_err(store_err("asset"))?
            .ok_or_else(|| Error::NotFound(format!("asset {name}")))?;
        asset_from_row(row)
    }

    /// Assets in insertion order, filtered.
    pub async fn assets(&self, q: AssetQuery) -> Result<Page<Asset>, Error> {
        let mut f = AssetFilter {
            port: q.port.map(i64::from),
            certificate_validation: q.certificate_validation,
            san: q.san,
            after_seq: q.cursor.as_deref().map(parse_cursor).transpose()?,
            limit: q.limit.unwrap_or(100),
            ..AssetFilter::default()
        };
        if !(1..=1000).contains(&f.limit) {
            return Err(Error::invalid("invalid-limit", "limit is 1 to 1000"));
        }
        for (field, value) in q.equals {
            let Some(column) = shedu_store::ASSET_TEXT_COLUMNS
                .iter()
                .find(|c| **c == field)
            else {
                return Err(Error::invalid(
                    "invalid-filter",
                    format!("assets cannot be searched by {field}"),
                ));
            };
            f.equals.push((column, value));
        }
        if let Some(label) = q.label {
            let (k, v) = label
                .split_once('=')
                .ok_or_else(|| Error::invalid("invalid-filter", "label is key=value"))?;
            check_label(k, v)?;
            f.label = Some((k.to_string(), v.to_string()));
        }
        if let Some(days) = q.days_until_expiration {
            if !(0..=36_500).contains(&days) {
                return Err(Error::invalid(
                    "invalid-filter",
                    "days_until_expiration is 0 to 36500",
                ));
            }
            f.expires_before = Some(self.reg.now() + days * 86_400);
        }
        let page = self
            .reg
            .store
            .list_assets(&f)
            .await
            .map_err(store_err("assets"))?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(asset_from_row)
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// Connects to the asset's address, reads the served certificate, and records its expiry and
    /// fingerprint (and so when it is due). With `certificate_validation`, the served chain must verify to
    /// one of the platform's CAs for the common name.
    pub async fn scan(&self, actor: &AuditContext, name: &str) -> Result<ScanResult, Error> {
        let asset = self.asset(name).await?;
        let input = &asset.input;
        let address = input.ip_address.clone().unwrap_or_default();
        let chain = wire::served_chain(
            &address,
            input.port,
            &input.common_name,
            self.config.connect_timeout,
        )
        .await
        .map_err(|e| Error::invalid("scan-failed", format!("{address}:{}: {e}", input.port)))?;
        if input.certificate_validation {
            let anchors = self.reg.ca_certificates().await?;
            wire::verify_chain(&chain, &anchors, &input.common_name, self.reg.now()).map_err(
                |e| Error::invalid("scan-untrusted", format!("the served certificate: {e}")),
            )?;
        }
        let leaf = chain
            .first()
            .ok_or_else(|| Error::invalid("scan-failed", "no certificate served"))?;
        let info = shedu_pki::CertInfo::from_der(leaf)?;
        let renew_before = self
            .route_for(&asset)
            .await?
            .map_or(DEFAULT_RENEW_BEFORE_DAYS, |r| {
                i64::from(r.settings.renew_before_days)
            });
        let observed = AssetObserved {
            certificate_expiration: Some(info.not_after),
            current_fingerprint: Some(info.fingerprint.clone()),
            current_serial: None,
            next_rotation_at: Some(info.not_after - renew_before * 86_400),
            skip_reason: None,
            failures: 0,
        };
        self.reg
            .store
            .set_asset_observed(
                name,
                &observed,
                self.reg.now(),
                None,
                &AuditAction::AssetScan.by(actor),
            )
            .await
            .map_err(store_err(format!("asset {name}")))?;
        Ok(ScanResult {
            certificate_expiration: info.not_after,
            current_fingerprint: info.fingerprint,
            subject: info.subject,
            issuer: info.issuer,
        })
    }

    // ----- executors and routes -----

    /// Adds an executor; its secret is sealed at once. `Conflict` when the name is taken.
    pub async fn create_executor(
        &self,
        actor: &AuditContext,
        input: ExecutorInput,
    ) -> Result<Executor, Error> {
        crate::model::check_name(&input.name)?;
        input
            .spec
            .check(input.secret.as_deref().map(String::as_str))?;
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = input
            .secret
            .as_ref()
            .map(|s| {
                self.keystore
                    .seal_secret(&executor_secret_context(&id), s.as_bytes())
            })
            .transpose()?;
        let now = self.reg.now();
        let row = ExecutorRow {
            id: id.clone(),
            name: input.name.clone(),
            kind: input.spec.kind().to_string(),
            config: input.spec.to_json(),
            sealed,
            created_at: now,
            updated_at: now,
        };
        self.reg
            .store
            .insert_executor(&row, &AuditAction::RotationExecutorCreate.by(actor))
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict { .. } => Error::conflict(
                    "executor-exists",
                    format!("executor {} already exists", input.name),
                ),
                other => store_err("executor")(other),
            })?;
        self.executor(&id).await
    }

    /// One executor, by id or name (never its secret).
    pub async fn executor(&self, id: &str) -> Result<Executor, Error> {
        let row = self
            .reg
            .store
            .executor(id)
            .await
            .map_err(store_err("executor"))?
            .ok_or_else(|| Error::NotFound(format!("executor {id}")))?;
        executor_from_row(&row)
    }

    /// Every executor.
    pub async fn executors(&self) -> Result<Vec<Executor>, Error> {
        let rows = self
            .reg
            .store
            .executors()
            .await
            .map_err(store_err("executors"))?;
        rows.iter().map(executor_from_row).collect()
    }

    /// Deletes an executor. `Conflict` (`executor-in-use`) while a route names it.
    pub async fn delete_executor(&self, actor: &AuditContext, id: &str) -> Result<(), Error> {
        let executor = self.executor(id).await?;
        self.reg
            .store
            .delete_executor(
                &executor.id,
                self.reg.now(),
                &AuditAction::RotationExecutorDelete.by(actor),
            )
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict { .. } => Error::conflict(
                    "executor-in-use",
                    format!("executor {id} is named by a route; delete the route first"),
                ),
                other => store_err(format!("executor {id}"))(other),
            })
    }

    /// Adds a route. The executor and the CA must exist; the glob must be well formed.
    pub async fn create_route(
        &self,
        actor: &AuditContext,
        input: RouteInput,
    ) -> Result<Route, Error> {
        let s = &input.settings;
        if let Some(pattern) = &s.matcher.os_version {
            glob::check(pattern).map_err(|why| {
                Error::invalid("invalid-glob", format!("match.os_version: {why}"))
            })?;
        }
        for (k, v) in &s.matcher.labels {
            check_label(k, v)?;
        }
        if !(1..=3650).contains(&s.renew_before_days) {
            return Err(Error::invalid(
                "invalid-route",
                "renew_before_days is 1 to 3650",
            ));
        }
        if let Some(k) = &s.key_type {
            k.parse::<shedu_pki::KeyType>()?;
        }
        let executor = self
            .reg
            .store
            .executor(&input.executor)
            .await
            .map_err(store_err("executor"))?
            .ok_or_else(|| {
                Error::invalid(
                    "unknown-executor",
                    format!("executor {} does not exist", input.executor),
                )
            })?;
        if self.reg.loaded(&s.ca_id).await.is_err() {
            return Err(Error::invalid(
                "unknown-ca",
                format!("CA {} does not exist or cannot sign", s.ca_id),
            ));
        }
        let existing = self.routes().await?;
        let now = self.reg.now();
        let row = RouteRow {
            id: uuid::Uuid::new_v4().to_string(),
            position: input
                .position
                .unwrap_or_else(|| existing.last().map_or(10, |r| r.position + 10)),
            executor_id: executor.id,
            settings: serde_json::to_string(s)
                .map_err(|e| Error::Internal(format!("route settings: {e}")))?,
            created_at: now,
        };
        self.reg
            .store
            .insert_route(&row, &AuditAction::RotationRouteCreate.by(actor))
            .await
            .map_err(store_err("route"))?;
        route_from_row(row)
    }

    /// Every route in match order.
    pub async fn routes(&self) -> Result<Vec<Route>, Error> {
        let rows = self.reg.store.routes().await.map_err(store_err("routes"))?;
        rows.into_iter().map(route_from_row).collect()
    }

    /// Deletes a route.
    pub async fn delete_route(&self, actor: &AuditContext, id: &str) -> Result<(), Error> {
        self.reg
            .store
            .delete_route(
                id,
                self.reg.now(),
                &AuditAction::RotationRouteDelete.by(actor),
            )
            .await
            .map_err(store_err(format!("route {id}")))
    }

    fn open_executor_secret(&self, id: &str, sealed: &[u8]) -> Result<Zeroizing<String>, Error> {
        let plain = self
            .keystore
            .open_secret(&executor_secret_context(id), sealed)?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| Error::Internal(format!("executor {id}: sealed secret is not text")))?;
        Ok(Zeroizing::new(text.to_string()))
    }

    /// The first route that matches `asset`, if any.
    async fn route_for(&self, asset: &Asset) -> Result<Option<Route>, Error> {
        Ok(first_match(self.routes().await?, &asset.input))
    }

    // ----- runs -----

    /// Queues a run for the asset now (202 at the edge). `Conflict` (`rotation-active`) when one is
    /// queued or running.
    pub async fn trigger(&self, actor: &AuditContext, name: &str) -> Result<Run, Error> {
        let run = self
            .queue(
                name,
                "manual",
                Some(&AuditAction::RotationTrigger.by(actor)),
            )
            .await?;
        self.wake.notify_one();
        Ok(run)
    }

    async fn queue(
        &self,
        name: &str,
        trigger: &str,
        audit: Option<&shedu_store::Audited<'_>>,
    ) -> Result<Run, Error> {
        let row = RunRow {
            id: uuid::Uuid::new_v4().to_string(),
            system_name: name.to_string(),
            state: RunState::Queued.as_str().to_string(),
            trigger: trigger.to_string(),
            steps: "[]".into(),
            created_at: self.reg.now(),
            ..RunRow::default()
        };
        self.reg
            .store
            .queue_run(&row, audit)
            .await
            .map_err(active_or(format!("asset {name}")))?;
        run_from_row(row)
    }

    /// One run.
    pub async fn run(&self, id: &str) -> Result<Run, Error> {
        let row = self
            .reg
            .store
            .run(id)
            .await
            .map_err(store_err("run"))?
            .ok_or_else(|| Error::NotFound(format!("run {id}")))?;
        run_from_row(row)
    }

    /// Runs, newest first.
    pub async fn runs(&self, q: RunQuery) -> Result<Page<Run>, Error> {
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid("invalid-limit", "limit is 1 to 1000"));
        }
        let page = self
            .reg
            .store
            .list_runs(
                q.system_name.as_deref(),
                q.state.map(RunState::as_str),
                q.cursor.as_deref().map(parse_cursor).transpose()?,
                limit,
            )
            .await
            .map_err(store_err("runs"))?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(run_from_row)
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// The scheduler's tick: on one replica at a time (a PostgreSQL advisory lock), queues every due
    /// asset that a route matches, and passes over the others with `skip_reason = no_route` and a
    /// `rotation.skipped` event (again after the first back-off, not at every tick). Returns how many
    /// runs it queued. Workers on every replica then take queued runs.
    pub async fn tick(&self) -> Result<usize, Error> {
        let store = &self.reg.store;
        let Some(lock) = store
            .try_lock_job("shedu-rotation-scheduler")
            .await
            .map_err(store_err("scheduler lock"))?
        else {
            self.wake.notify_one();
            return Ok(0);
        };
        let reaped = self.abandon_stale().await;
        let result = match reaped {
            Ok(()) => self.queue_due().await,
            Err(e) => Err(e),
        };
        lock.release().await;
        self.wake.notify_one();
        result
    }

    async fn queue_due(&self) -> Result<usize, Error> {
        let now = self.reg.now();
        let due = self
            .reg
            .store
            .due_assets(now, 10_000)
            .await
            .map_err(store_err("due assets"))?;
        if due.is_empty() {
            return Ok(0);
        }
        let routes = self.routes().await?;
        let mut queued = 0;
        for row in due {
            let asset = asset_from_row(row)?;
            let name = asset.input.system_name.clone();
            if first_match(routes.clone(), &asset.input).is_none() {
                let ev = event(
                    EventKind::RotationSkipped,
                    format!("assets/{name}"),
                    now,
                    serde_json::json!({ "system_name": name, "skip_reason": SKIP_NO_ROUTE }),
                );
                self.reg
                    .store
                    .skip_asset(&name, SKIP_NO_ROUTE, now + self.config.backoff[0], now, &ev)
                    .await
                    .map_err(store_err(format!("asset {name}")))?;
                continue;
            }
            match self.queue(&name, "scheduled", None).await {
                Ok(_) => queued += 1,
                // Queued meanwhile (a manual trigger) or deleted: nothing to do.
                Err(Error::Conflict { .. } | Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(queued)
    }

    /// Takes queued runs while this replica has capacity; each finished run looks again.
    async fn dispatch(self: &Arc<Self>) {
        loop {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                return;
            };
            let run = match self.reg.store.claim_run(self.reg.now()).await {
                Ok(Some(run)) => run,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a rotation run; retrying shortly");
                    return;
                }
            };
            let this = self.clone();
            tokio::spawn(async move {
                let id = run.id.clone();
                let beat = tokio::spawn(heartbeat(Arc::downgrade(&this), id.clone()));
                let executed = this.execute(run).await;
                beat.abort();
                if let Err(e) = executed {
                    tracing::warn!(run = %id, error = %e, "rotation run could not be recorded");
                }
                drop(permit);
                this.wake.notify_one();
            });
        }
    }
}

/// Stamps a running run's heartbeat every quarter of `stale_after` (at least every second) until the run is
/// no longer running or the task is aborted (the run ended here).
async fn heartbeat(rotation: Weak<Rotation>, run_id: String) {
    let every = rotation
        .upgrade()
        .map_or(Duration::from_secs(1), |r| r.config.stale_after / 4)
        .max(Duration::from_millis(250));
    loop {
        tokio::time::sleep(every).await;
        let Some(this) = rotation.upgrade() else {
            return;
        };
        match this.reg.store.heartbeat_run(&run_id, this.reg.now()).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(run = %run_id, error = %e, "cannot stamp a rotation run's heartbeat")
            }
        }
    }
}

/// The worker loop: waits for a wake-up (a trigger, a tick, a finished run) or a second, then takes what
/// it can. Ends when the service is dropped.
fn spawn_dispatcher(rotation: Weak<Rotation>, wake: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            let Some(this) = rotation.upgrade() else {
                return;
            };
            this.dispatch().await;
        }
    });
}

fn first_match(routes: Vec<Route>, asset: &AssetInput) -> Option<Route> {
    routes.into_iter().find(|r| {
        let m = &r.settings.matcher;
        m.host_platform
            .as_ref()
            .is_none_or(|p| asset.host_platform.as_ref() == Some(p))
            && m.os_version.as_ref().is_none_or(|g| {
                asset
                    .os_version
                    .as_deref()
                    .is_some_and(|v| glob::matches(g, v))
            })
            && (m.device_model.is_empty()
                || asset
                    .device_model
                    .as_ref()
                    .is_some_and(|d| m.device_model.contains(d)))
            && m.labels.iter().all(|(k, v)| asset.labels.get(k) == Some(v))
    })
}

fn active_or(what: String) -> impl FnOnce(shedu_store::Error) -> Error {
    move |e| match e {
        shedu_store::Error::Conflict { .. } => Error::conflict(
            "rotation-active",
            format!("a rotation of {what} is queued or running"),
        ),
        other => store_err(what)(other),
    }
}

fn parse_cursor(s: &str) -> Result<i64, Error> {
    s.parse()
        .map_err(|_| Error::invalid("invalid-cursor", "cursor is a next_cursor value"))
}

fn check_asset(a: &AssetInput) -> Result<(), Error> {
    let bad = |detail: String| Err(Error::invalid("invalid-asset", detail));
    if a.system_name.is_empty()
        || a.system_name.len() > 253
        || !a
            .system_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return bad("system_name is 1 to 253 letters, digits, '.', '-' or '_'".into());
    }
    shedu_pki::check_dns_name(&a.common_name)
        .map_err(|e| Error::invalid("invalid-asset", format!("common_name: {e}")))?;
    if a.subject_alternative_name.len() > 100 {
        return bad("at most 100 subject_alternative_name entries".into());
    }
    for san in &a.subject_alternative_name {
        if san.parse::<std::net::IpAddr>().is_err() {
            shedu_pki::check_dns_name(san).map_err(|e| {
                Error::invalid("invalid-asset", format!("subject_alternative_name: {e}"))
            })?;
        }
    }
    match a.ip_address.as_deref() {
        None | Some("") => {
            return bad("ip_address is required: the address rotation and scans connect to".into());
        }
        Some(addr) => {
            if addr.parse::<std::net::IpAddr>().is_err() && shedu_pki::check_dns_name(addr).is_err()
            {
                return bad(format!(
                    "ip_address {addr:?} is neither an IP address nor a host name"
                ));
            }
        }
    }
    if a.port == 0 {
        return bad("port is 1 to 65535".into());
    }
    for text in [
        &a.data_center,
        &a.host_platform,
        &a.os_version,
        &a.device_model,
        &a.origin,
        &a.ca_id,
    ]
    .into_iter()
    .flatten()
    {
        if text.len() > 128 || text.chars().any(char::is_control) {
            return bad("text fields are up to 128 characters, without control characters".into());
        }
    }
    if a.labels.len() > 32 {
        return bad("at most 32 labels".into());
    }
    for (k, v) in &a.labels {
        check_label(k, v)?;
    }
    Ok(())
}

fn check_label(k: &str, v: &str) -> Result<(), Error> {
    let ok = |s: &str, empty: bool| {
        (empty || !s.is_empty())
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c))
    };
    if ok(k, false) && ok(v, true) {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid-label",
            "a label key (1 to 64) and value (up to 64) are letters, digits and -_.:/@",
        ))
    }
}

fn asset_row(a: &AssetInput) -> AssetRow {
    AssetRow {
        system_name: a.system_name.clone(),
        common_name: a.common_name.clone(),
        sans: serde_json::Value::from(a.subject_alternative_name.clone()).to_string(),
        ip_address: a.ip_address.clone(),
        port: i64::from(a.port),
        data_center: a.data_center.clone(),
        host_platform: a.host_platform.clone(),
        os_version: a.os_version.clone(),
        device_model: a.device_model.clone(),
        origin: a.origin.clone(),
        certificate_validation: a.certificate_validation,
        ca_id: a.ca_id.clone(),
        labels: serde_json::to_string(&a.labels).unwrap_or_else(|_| "{}".into()),
        ..AssetRow::default()
    }
}

fn asset_from_row(r: AssetRow) -> Result<Asset, Error> {
    let corrupt =
        |what: &str| Error::Internal(format!("asset {}: stored {what} is corrupt", r.system_name));
    Ok(Asset {
        input: AssetInput {
            subject_alternative_name: serde_json::from_str(&r.sans)
                .map_err(|_| corrupt("subject_alternative_name"))?,
            labels: serde_json::from_str(&r.labels).map_err(|_| corrupt("labels"))?,
            port: u16::try_from(r.port).map_err(|_| corrupt("port"))?,
            system_name: r.system_name.clone(),
            common_name: r.common_name,
            ip_address: r.ip_address,
            data_center: r.data_center,
            host_platform: r.host_platform,
            os_version: r.os_version,
            device_model: r.device_model,
            origin: r.origin,
            certificate_validation: r.certificate_validation,
            ca_id: r.ca_id,
        },
        certificate_expiration: r.certificate_expiration,
        current_fingerprint: r.current_fingerprint,
        next_rotation_at: r.next_rotation_at,
        last_run: r.last_run,
        skip_reason: r.skip_reason,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn executor_from_row(r: &ExecutorRow) -> Result<Executor, Error> {
    Ok(Executor {
        id: r.id.clone(),
        name: r.name.clone(),
        spec: ExecutorSpec::from_json(&r.kind, &r.config)?,
        has_secret: r.sealed.is_some(),
        created_at: r.created_at,
    })
}

fn route_from_row(r: RouteRow) -> Result<Route, Error> {
    Ok(Route {
        settings: serde_json::from_str(&r.settings)
            .map_err(|e| Error::Internal(format!("route {}: stored settings: {e}", r.id)))?,
        id: r.id,
        position: r.position,
        executor_id: r.executor_id,
        created_at: r.created_at,
    })
}

fn run_from_row(r: RunRow) -> Result<Run, Error> {
    Ok(Run {
        state: RunState::parse(&r.state)
            .map_err(|_| Error::Internal(format!("run {}: stored state {}", r.id, r.state)))?,
        steps: serde_json::from_str(&r.steps)
            .map_err(|e| Error::Internal(format!("run {}: stored steps: {e}", r.id)))?,
        id: r.id,
        system_name: r.system_name,
        trigger: r.trigger,
        serial: r.serial,
        error: r.error,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset() -> AssetInput {
        AssetInput {
            system_name: "web-1".into(),
            common_name: "web-1.example.com".into(),
            ip_address: Some("127.0.0.1".into()),
            port: 443,
            host_platform: Some("linux".into()),
            os_version: Some("12.4".into()),
            ..AssetInput::default()
        }
    }

    fn route(matcher: RouteMatch) -> Route {
        Route {
            id: "r".into(),
            position: 1,
            executor_id: "e".into(),
            settings: RouteSettings {
                matcher,
                ca_id: "ca".into(),
                validity_days: None,
                renew_before_days: 30,
                key_mode: KeyMode::OnDevice,
                key_type: None,
            },
            created_at: 0,
        }
    }

    #[test]
    fn first_matching_route_wins_and_globs_match_versions() {
        let panos = route(RouteMatch {
            host_platform: Some("panos".into()),
            ..RouteMatch::default()
        });
        let linux12 = route(RouteMatch {
            host_platform: Some("linux".into()),
            os_version: Some("12.*".into()),
            ..RouteMatch::default()
        });
        let any = route(RouteMatch::default());
        let picked = first_match(vec![panos.clone(), linux12.clone(), any.clone()], &asset());
        assert_eq!(picked.unwrap().settings, linux12.settings);
        let old = AssetInput {
            os_version: Some("11.2".into()),
            ..asset()
        };
        assert_eq!(
            first_match(vec![panos.clone(), linux12.clone(), any.clone()], &old)
                .unwrap()
                .settings,
            any.settings
        );
        assert!(first_match(vec![panos, linux12], &old).is_none());
    }

    #[test]
    fn an_asset_needs_an_address_and_valid_names() {
        assert!(check_asset(&asset()).is_ok());
        for bad in [
            AssetInput {
                ip_address: None,
                ..asset()
            },
            AssetInput {
                common_name: "not a name".into(),
                ..asset()
            },
            AssetInput {
                system_name: "a/b".into(),
                ..asset()
            },
            AssetInput { port: 0, ..asset() },
        ] {
            assert!(
                matches!(check_asset(&bad), Err(Error::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
