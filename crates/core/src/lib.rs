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
mod engines;
mod error;
mod events;
mod lifecycle;
mod model;
mod rotate;
mod va;

pub use auth::{ApiKey, AuthService, Principal, PrincipalKind, Role, Session, User};
pub use ca::{CaService, ImportCa, NewCa, ProfileInput, VaInput};
pub use certificates::{CertificateQuery, IssueInput, Issued};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;
pub use events::EVENT_SOURCE;
pub use lifecycle::spawn_lifecycle;
pub use model::{Ca, CaKind, Certificate, Status};
pub use rotate::rewrap_database_keys;
pub use shedu_store::{Page, SweepReport};
pub use va::{CrlAnswer, CrlKind, OcspAnswer, VaConfig};
