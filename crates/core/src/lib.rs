//! shedu's services, one per capability, over a shared CA [`Registry`]: [`Cas`] (CA management),
//! [`Issuance`] (issue, revoke, look up, sweep), [`Va`] (OCSP, CRLs), [`Enrollment`] (RAs, EST),
//! [`Devices`] (registry, groups), [`Audit`], [`Events`], [`AuthService`] and [`Connector`] (Kyma-compatible
//! pairing). [`Services::open`] wires
//! them; a handler names the one it needs, and no service hands out the store.
//!
//! Business rules live here once. Handlers (HTTP, CLI) parse input, call one service method, and encode
//! the result; nothing here knows HTTP status codes or JSON DTOs. Time comes from a [`Clock`] so that
//! expiry can be tested without waiting.

mod acme;
mod audit;
mod auth;
mod ca;
mod certificates;
mod clock;
mod cloud;
mod cluster;
mod connector;
mod devices;
mod engines;
mod error;
mod est;
mod events;
mod kmip;
mod lifecycle;
mod metrics;
mod model;
mod names;
mod oidc;
mod ra;
mod registry;
mod rotate;
mod rotation;
mod secrets;
mod services;
mod status;
mod trust;
mod va;
mod webhook;

pub use acme::{
    ACME_CHALLENGES, Acme, AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeConfig, AcmeFailure,
    AcmeOrder, AcmeRateLimits, AcmeSettings, Authenticated, EabKey, RateLimit, RenewalWindow,
    Signer,
};
pub use audit::{
    Audit, AuditAction, AuditContext, AuditEntry, AuditFilter, AuditFinding, AuditRecord,
    AuditVerdict, CHECKPOINT_FILE, ChainBreak, Checkpoint, Outcome, hex32, load_audit_key,
    spawn_audit_checkpoints, verify_audit_log,
};
pub use auth::{
    ApiKey, AuthService, OidcSignInTokens, Principal, PrincipalKind, Role, Session, User,
};
pub use ca::{Cas, ImportCa, NewCa, ProfileInput, VaInput};
pub use certificates::{CertificateQuery, Issuance, IssueInput, Issued};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cloud::{
    CLOUD_SINK, CaMode, Cloud, CloudConfig, CloudConnector, CloudConnectorInput, CloudCredentials,
    CloudFailure, CloudProvider, CloudProviderKind, CloudRef, Deletion, Desired, DeviceBinding,
    SyncItem, SyncKind, SyncState,
};
pub use cluster::{
    ADMIN_TOKEN_CONTEXT, Agreed, BEAT, INTERNAL_TLS_CA_KEY_TYPE, INTERNAL_TLS_CA_OWNER, LEASE,
    TlsCaBundle,
};
pub use connector::{
    CertificateInfo, ClientIdentity, Connector, ConnectorConfig, ConnectorIssued, ConnectorKind,
    ConnectorToken, CsrInfo, MAX_VALIDITY_DAYS as CONNECTOR_MAX_VALIDITY_DAYS, ManagementInfo,
};
pub use devices::{
    Device, DeviceDetail, DeviceGroup, DeviceGroupDetail, DeviceGroupFilter, DeviceLogEntry,
    DeviceQuery, DeviceStatus, DeviceUpdate, Devices, NewDevice, NewDeviceGroup, Slot,
    SlotCertificate,
};
pub use engines::{EngineKind, Engines};
pub use error::Error;
pub use est::{EstIssued, EstOperation, EstRequest, approval_allows};
pub use events::{EVENT_SOURCE, EVENT_TYPES, EVENT_WORDS, EventKind, Events};
pub use kmip::{
    Failure as KmipFailure, KMIP_GRANTABLE, KMIP_OPERATIONS, KMIP_VERSIONS, Kmip, KmipGrant,
    KmipObjectSummary, operation_name as kmip_operation_name,
};
pub use lifecycle::spawn_lifecycle;
pub use metrics::job_work;
pub use model::{Ca, CaKind, Certificate, Status};
pub use names::NamePolicyInput;
pub use oidc::{OidcIssuer, OidcSignIn, check_token_offline, https_or_loopback};
pub use ra::{AuthMode, Enrollment, EnrollmentSettings, Ra, RaInput, WebhookSettings};
pub use registry::Registry;
pub use rotate::rewrap_database_keys;
pub use rotation::{
    Asset, AssetInput, AssetQuery, CommandSettings, Executor, ExecutorInput, ExecutorSpec,
    HttpSettings, KeyMode, Rotation, RotationConfig, Route, RouteInput, RouteMatch, RouteSettings,
    Run, RunQuery, RunState, RunStep, ScanResult, SshCommands, SshSettings,
};
pub use secrets::{
    Capability, DEFAULT_POLICY, IssuedToken, MAX_POLICY_LEN, MergeFn, Policy, ProcessIdentity,
    ROOT_POLICY, SecretCaller, SecretClient, SecretMetadata, SecretValue, Secrets, SecretsConfig,
    TokenInfo, TokenRequest, VersionInfo, WriteOptions,
};
pub use services::{Services, ServicesConfig};
pub use shedu_store::EventFilter;
pub use shedu_store::{Page, SweepReport, VersionChange, ordered_id};
pub use status::{Overview, PlatformStatus, SinkPosition};
pub use trust::ClientCertProblem;
pub use va::{CrlAnswer, CrlKind, OcspAnswer, Va, VaConfig};
pub use webhook::{Cidr, TARGET_REFUSED, TargetPolicy, WebhookClient, Webhooks, signature};
