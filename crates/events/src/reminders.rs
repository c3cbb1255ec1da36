//! Expiry reminders: a periodic job that emits `certificate.expiry_reminder` events a configurable number of
//! days before a certificate's notAfter (by default 30, 7 and 1).
//!
//! The reminder is an ordinary outbox event, so buses receive it and alert subscriptions match it like any
//! other (the deliveries' key makes it once per subscription). The `expiry_reminders` table, written in the
//! same transaction, makes it once per certificate and threshold across restarts and replicas. The query is
//! a range scan on `not_after` over `active`/`about_to_expire` certificates, so its cost follows the
//! certificates in the window, not the table. "Now" is the services' [`Clock`], the same time that issues
//! certificates and moves their statuses, so a test that moves the clock sees the reminders it implies.

use std::sync::Arc;
use std::time::Duration;

use shedu_core::{Clock, SystemClock};
use shedu_store::Store;
use tokio::sync::{Notify, watch};

/// When to remind.
#[derive(Clone, Debug)]
pub struct ReminderOptions {
    /// Thresholds in days before notAfter; empty disables reminders.
    pub days_before: Vec<i64>,
    /// How often to look.
    pub interval: Duration,
    /// The time reminders are computed at (the services' clock; the system clock by default).
    pub clock: Arc<dyn Clock>,
}

impl Default for ReminderOptions {
    fn default() -> Self {
        ReminderOptions {
            days_before: vec![30, 7, 1],
            interval: Duration::from_secs(3600),
            clock: Arc::new(SystemClock),
        }
    }
}

pub(crate) async fn run(
    store: Store,
    opts: ReminderOptions,
    dispatcher: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match store
            .emit_expiry_reminders(opts.clock.now(), &opts.days_before)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                shedu_core::job_work("reminders", n);
                tracing::info!(reminders = n, "expiry reminders emitted");
                dispatcher.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "expiry reminder job failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(opts.interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}
