//! The state every handler receives: one field per service, so a handler names the one it needs.

use std::sync::Arc;

use shedu_core::{
    Audit, AuthService, Cas, Devices, Enrollment, Events, Issuance, Registry, Services, Va,
};

use crate::AdminToken;

/// Shared application state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The shared CA registry: the clock and the client-certificate trust anchors.
    pub registry: Arc<Registry>,
    /// CA management.
    pub cas: Arc<Cas>,
    /// Issuance, revocation, look-ups.
    pub issuance: Arc<Issuance>,
    /// OCSP and CRLs.
    pub va: Arc<Va>,
    /// RAs and EST.
    pub enrollment: Arc<Enrollment>,
    /// Devices and device groups.
    pub devices: Arc<Devices>,
    /// The audit log.
    pub audit: Arc<Audit>,
    /// The events outbox (read side).
    pub events: Arc<Events>,
    /// Users, sessions and API keys.
    pub auth: Arc<AuthService>,
    /// The bootstrap admin bearer token.
    pub admin_token: Arc<AdminToken>,
    /// Refuse the bootstrap token once an enabled admin user exists.
    pub bootstrap_until_admin: bool,
    /// Event delivery (live feed, subscriptions); `None` when not started.
    pub delivery: Option<Arc<shedu_events::EventsHandle>>,
}

impl AppState {
    /// The state over `services`.
    pub fn new(
        services: Services,
        admin_token: AdminToken,
        bootstrap_until_admin: bool,
        delivery: Option<shedu_events::EventsHandle>,
    ) -> AppState {
        let Services {
            registry,
            cas,
            issuance,
            va,
            enrollment,
            devices,
            audit,
            events,
            auth,
        } = services;
        AppState {
            registry,
            cas,
            issuance,
            va,
            enrollment,
            devices,
            audit,
            events,
            auth,
            admin_token: Arc::new(admin_token),
            bootstrap_until_admin,
            delivery: delivery.map(Arc::new),
        }
    }
}
