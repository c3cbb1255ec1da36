//! The state every handler receives: the services (one field per capability, so a handler names the one it
//! needs) and the gateway's own settings.

use std::sync::Arc;

use shedu_core::Services;

use crate::AdminToken;

/// Shared application state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Every service (`services.cas`, `services.issuance`, …), wired once by [`Services::open`].
    pub services: Services,
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
        AppState {
            services,
            admin_token: Arc::new(admin_token),
            bootstrap_until_admin,
            delivery: delivery.map(Arc::new),
        }
    }
}
