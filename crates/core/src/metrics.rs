//! The counters the services keep for Prometheus (exported by the server's `/metrics`). Names and labels live
//! here once; the `metrics` facade does nothing until a recorder is installed.

/// A certificate was issued and committed; `via` is the front door (`api`, `est`).
pub(crate) fn issued(via: &'static str) {
    metrics::counter!("shedu_certificates_issued_total", "via" => via).increment(1);
}

/// A certificate's revocation was committed.
pub(crate) fn revoked() {
    metrics::counter!("shedu_certificates_revoked_total").increment(1);
}

/// An OCSP answer was served: `cache` (signed bytes reused from memory), `stored` (signed bytes kept in the
/// database, by this or another replica) or `signed` (made for this request).
pub(crate) fn ocsp_answer(source: &'static str) {
    metrics::counter!("shedu_ocsp_answers_total", "source" => source).increment(1);
}

/// A singleton job did work on this replica, under the job's cluster-wide lock: `sweep` (certificates and CAs
/// moved), `crl` (CRLs signed), `reminders` (reminder events emitted), `rotation` (runs queued). Scraped on each
/// replica, it shows where each job runs and that it moved after a replica was lost.
pub fn job_work(job: &'static str, items: u64) {
    metrics::counter!("shedu_job_work_total", "job" => job).increment(items);
}

impl crate::Services {
    /// Sets the gauges read at scrape time: each event sink's lag behind the outbox, and whether this
    /// replica's caches are usable (its cluster lease; always 1 on SQLite).
    pub async fn refresh_gauges(&self) -> Result<(), crate::Error> {
        let store = &self.registry.store;
        let (head, sinks) = store
            .outbox_positions()
            .await
            .map_err(crate::error::store_err("event cursors"))?;
        metrics::gauge!("shedu_outbox_head").set(head as f64);
        for s in sinks {
            metrics::gauge!("shedu_event_sink_lag", "sink" => s.sink)
                .set((head - s.last_seq).max(0) as f64);
        }
        let usable = self.registry.coherence.caches_usable();
        metrics::gauge!("shedu_cache_lease_valid").set(if usable { 1.0 } else { 0.0 });
        Ok(())
    }
}
