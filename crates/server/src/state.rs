//! The state every handler receives.

use std::sync::Arc;

use shedu_core::CaService;

use crate::AdminToken;

/// Shared application state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The CA service.
    pub cas: Arc<CaService>,
    /// The bootstrap admin bearer token.
    pub admin_token: Arc<AdminToken>,
}
