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
    /// Whether an unreachable event bus makes `/ready` answer 503.
    pub ready_bus: ReadyBus,
}

/// What an event bus that does not answer its probe does to `/ready` (`--ready-bus`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadyBus {
    /// 503 while any configured bus is unreachable (the balancer takes the replica out).
    #[default]
    Require,
    /// 200 all the same (events wait in the outbox); the bus state is in the body and `/metrics`.
    Report,
}

impl ReadyBus {
    /// `require` or `report`.
    pub fn parse(s: &str) -> Option<ReadyBus> {
        match s {
            "require" => Some(ReadyBus::Require),
            "report" => Some(ReadyBus::Report),
            _ => None,
        }
    }

    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyBus::Require => "require",
            ReadyBus::Report => "report",
        }
    }
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
            ready_bus: ReadyBus::default(),
        }
    }
}
