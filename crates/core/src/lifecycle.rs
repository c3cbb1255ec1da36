//! The lifecycle job: runs the status sweep, the CRL refresh and the rotation scheduler on an interval.

use std::time::Duration;

use crate::Services;

/// Spawns the lifecycle loop: status sweep, trust-anchor reload, CRL refresh, rotation scheduler. A failed sweep is logged and retried at the next tick; it changes nothing
/// partially because each sweep is one transaction.
pub fn spawn_lifecycle(services: &Services, interval: Duration) -> tokio::task::JoinHandle<()> {
    let (issuance, registry, va, rotation) = (
        services.issuance.clone(),
        services.registry.clone(),
        services.va.clone(),
        services.rotation.clone(),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match issuance.sweep().await {
                Ok(r) if r != Default::default() => {
                    crate::metrics::job_work(
                        "sweep",
                        r.certificates_expired + r.certificates_about_to_expire + r.cas_changed,
                    );
                    tracing::info!(
                        expired = r.certificates_expired,
                        about_to_expire = r.certificates_about_to_expire,
                        cas = r.cas_changed,
                        "lifecycle sweep moved certificates"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "lifecycle sweep failed; retrying at the next tick")
                }
            }
            // CAs added through another replica become client-certificate anchors here too.
            if let Err(e) = registry.refresh_trust_anchors().await {
                tracing::warn!(error = %e, "trust anchor refresh failed; retrying at the next tick");
            }
            // CRLs are rebuilt before their nextUpdate even when nobody fetches them.
            if let Err(e) = va.refresh_crls().await {
                tracing::warn!(error = %e, "CRL refresh failed; retrying at the next tick");
            }
            // Due assets are queued by one replica at a time (an advisory lock on PostgreSQL).
            match rotation.tick().await {
                Ok(0) => {}
                Ok(n) => {
                    crate::metrics::job_work("rotation", n as u64);
                    tracing::info!(queued = n, "rotation scheduler queued runs")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rotation scheduler failed; retrying at the next tick")
                }
            }
        }
    })
}
