//! The state every handler receives.

use std::sync::Arc;

use shedu_core::{AuthService, CaService};

use crate::AdminToken;

/// Shared application state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The CA service.
    pub cas: Arc<CaService>,
    /// Users, sessions and API keys.
    pub auth: Arc<AuthService>,
    /// The bootstrap admin bearer token.
    pub admin_token: Arc<AdminToken>,
    /// Refuse the bootstrap token once an enabled admin user exists.
    pub bootstrap_until_admin: bool,
    /// Event delivery (live feed, subscriptions); `None` when not started.
    pub events: Option<Arc<shedu_events::EventsHandle>>,
}
