//! shedu's HTTP layer: the REST API (with its OpenAPI document), the TLS listener, the plain-HTTP
//! listener, authentication, request ids and RFC 7807 problem documents.
//!
//! Handlers are thin: parse → authorize (an extractor) → one service call → encode. Errors from the
//! services are mapped to problem documents in one function ([`problem`]). Only this crate knows HTTP.

mod acme;
pub mod api;
mod audit;
mod auth;
mod connector;
mod console;
mod est;
mod kmip;
mod listen;
pub mod metrics;
pub mod mtls;
pub mod permissions;
pub mod problem;
mod request_id;
mod secrets;
mod state;
pub mod tls;
mod va;

pub use auth::{AdminToken, Caller, Principal, PrincipalKind, Role};
pub use listen::{ConnectionLimits, KmipListen, Running, ServerConfig, http_app, https_app, start};
pub use state::{AppState, ReadyBus};
