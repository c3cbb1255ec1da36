//! The platform at a glance, for `GET /api/v1/status` and `shedu status`: what the database holds by
//! status, where each event sink stands, and how long the database took to answer.

use std::time::{Duration, Instant};

pub use shedu_store::{Overview, SinkPosition};

use crate::error::store_err;
use crate::{Error, Services};

/// The [`Overview`] and the time the database took to give it (a slow or failing database shows here
/// first).
#[derive(Clone, Debug)]
pub struct PlatformStatus {
    /// Counts and sink positions.
    pub overview: Overview,
    /// Wall time of the reads.
    pub read_time: Duration,
    /// The database's kind: `sqlite` or `postgresql`.
    pub database: &'static str,
    /// Unexpired certificates expiring within 7, 30 and 90 days: `(days, count)`.
    pub expiring: Vec<(u32, i64)>,
}

/// The windows [`PlatformStatus::expiring`] counts certificates in (the console's expiry timeline).
pub(crate) const EXPIRY_HORIZONS_DAYS: [u32; 3] = [7, 30, 90];

impl Services {
    /// Reads the platform's status.
    pub async fn status(&self) -> Result<PlatformStatus, Error> {
        let started = Instant::now();
        let overview = self
            .registry
            .store
            .overview()
            .await
            .map_err(store_err("status"))?;
        let horizons = EXPIRY_HORIZONS_DAYS.map(|d| i64::from(d) * 86_400);
        let expiring = self
            .registry
            .store
            .count_expiring(self.registry.now(), &horizons)
            .await
            .map_err(store_err("status"))?;
        let database = match overview.backend {
            shedu_store::Backend::Sqlite => "sqlite",
            shedu_store::Backend::Postgres => "postgresql",
        };
        Ok(PlatformStatus {
            database,
            overview,
            expiring: EXPIRY_HORIZONS_DAYS.into_iter().zip(expiring).collect(),
            read_time: started.elapsed(),
        })
    }

    /// Whether this replica can serve: the database answers within `timeout` and carries this binary's
    /// whole schema. For load balancers (`/ready`).
    pub async fn ready(&self, timeout: std::time::Duration) -> Result<(), Error> {
        self.registry
            .store
            .ready(timeout)
            .await
            .map_err(store_err("database"))
    }
}
