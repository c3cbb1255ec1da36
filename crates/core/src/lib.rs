//! shedu's services: certificate authorities, issuance, revocation, the certificate lifecycle, and the
//! events every change writes.
//!
//! Business rules live here once. Handlers (HTTP, CLI) parse input, call one service method, and encode
//! the result; nothing here knows HTTP status codes or JSON DTOs. Time comes from a [`Clock`] so that
//! expiry can be tested without waiting.

mod auth;
mod ca;
mod certificates;
mod clock;
mod devices;
mod engines;
mod error;
mod est;
mod events;
mod lifecycle;
mod model;
mod oidc;
mod ra;
mod rotate;
mod trust;
mod va;

pub use auth::{ApiKey, AuthService, Principal, PrincipalKind, Role, Session, User};
pub use ca::{CaService, ImportCa, NewCa, ProfileInput, VaInput};
pub use certificates::{CertificateQuery, IssueInput, Issued};
pub use clock::{Clock, ManualClock, SystemClock};
pub use devices::{
    Device, DeviceDetail, DeviceGroup, DeviceGroupDetail, DeviceGroupFilter, DeviceLogEntry,
    DeviceQuery, DeviceStatus, DeviceUpdate, NewDevice, NewDeviceGroup, Slot, SlotCertificate,
};
pub use error::Error;
pub use est::{EstIssued, EstOperation, EstRequest};
pub use events::EVENT_SOURCE;
pub use lifecycle::spawn_lifecycle;
pub use model::{Ca, CaKind, Certificate, Status};
pub use oidc::OidcIssuer;
pub use ra::{AuthMode, EnrollmentSettings, Ra, RaInput, WebhookSettings};
pub use rotate::rewrap_database_keys;
pub use shedu_store::{Page, SweepReport};
pub use trust::ClientCertProblem;
pub use va::{CrlAnswer, CrlKind, OcspAnswer, VaConfig};
