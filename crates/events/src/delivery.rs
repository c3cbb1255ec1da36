//! The delivery worker: sends queued alert deliveries (webhook, e-mail) with retries and a dead letter.
//!
//! Deliveries are claimed from the database (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any number of
//! replicas can run a worker without sending the same delivery twice at once; a claim is a lease, so a
//! delivery whose worker died is retried after the lease. Failures back off exponentially
//! (`retry_initial`, doubling, capped at `retry_max`); after `max_attempts` the delivery is `dead` with its
//! last error. Receivers de-duplicate on `X-Shedu-Event-Id`: a crash right after a send means one resend.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use shedu_core::WebhookClient;
use shedu_store::{DeliveryOutcome, DeliveryRow, Store};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::alerts::{AlertService, Channel, Secret, Subscription, WebhookFormat};
use crate::mail::{Mailer, Templates};
use crate::{CLOUDEVENTS_JSON, CloudEvent};

/// Delivery tuning.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// Attempts before a delivery is dead (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles for each further one.
    pub retry_initial: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// Webhook request timeout: connecting, sending and the whole answer must fit in it; a receiver that
    /// does not answer in time is a failed attempt (`--webhook-timeout`).
    pub webhook_timeout: Duration,
    /// How often the worker looks for due deliveries (besides notifications).
    pub poll_interval: Duration,
    /// Deliveries claimed at once.
    pub batch_size: i64,
    /// Deliveries sent concurrently. A slow receiver holds one slot until its timeout; the others keep
    /// sending.
    pub concurrency: usize,
    /// How long a claim lasts; a delivery whose worker died is retried after it.
    pub lease: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            max_attempts: 8,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(3600),
            webhook_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            batch_size: 32,
            concurrency: 8,
            lease: Duration::from_secs(300),
        }
    }
}

/// `sha256=<hex HMAC-SHA256(body, secret)>`, the `X-Shedu-Signature` header value.
pub fn signature(secret: &str, body: &[u8]) -> String {
    shedu_core::signature(secret, body)
}

/// Checks an `X-Shedu-Signature` header value in constant time (for receivers written in Rust, and tests).
pub fn verify_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, body, &sig).is_ok()
}

pub(crate) struct DeliveryWorker {
    pub(crate) store: Store,
    pub(crate) alerts: AlertService,
    pub(crate) http: WebhookClient,
    pub(crate) mailer: Option<Mailer>,
    pub(crate) templates: Arc<Templates>,
    pub(crate) opts: DeliveryOptions,
    pub(crate) wake: Arc<Notify>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// Unix time in milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl DeliveryWorker {
    /// Claims due deliveries whenever a sending slot is free and sends each in its own task, so a receiver
    /// that hangs until the timeout holds one slot and never the deliveries queued behind it.
    pub(crate) async fn run(self) {
        let mut shutdown = self.shutdown.clone();
        let wake = self.wake.clone();
        let opts = self.opts.clone();
        let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let this = Arc::new(self);
        let mut in_flight = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = slots.available_permits() as i64;
            let mut claimed_all = false;
            if free > 0 {
                let now = now_ms();
                let lease_until = (now + opts.lease.as_millis() as i64) / 1000;
                let limit = opts.batch_size.min(free).max(1);
                match this
                    .store
                    .claim_deliveries(now / 1000, lease_until, limit)
                    .await
                {
                    Ok(batch) => {
                        claimed_all = !batch.is_empty() && batch.len() as i64 >= limit;
                        for d in batch {
                            let Ok(slot) = slots.clone().try_acquire_owned() else {
                                // Cannot happen (no more were claimed than free slots); the lease
                                // brings the delivery back.
                                break;
                            };
                            let worker = this.clone();
                            in_flight.spawn(async move {
                                worker.attempt(d).await;
                                drop(slot);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim alert deliveries"),
                }
            }
            if claimed_all && slots.available_permits() > 0 {
                continue;
            }
            let poll = opts.poll_interval;
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        // Let the attempts in flight record their outcome (the caller bounds the wait).
        while in_flight.join_next().await.is_some() {}
    }

    async fn attempt(&self, d: DeliveryRow) {
        let read = async {
            let row = self.store.get_subscription(&d.subscription_id).await?;
            let secret = self.alerts.signing_secret(&row)?;
            Ok::<_, crate::Error>((Subscription::from_row(row)?, secret))
        };
        let (sub, secret) = match read.await {
            Ok(s) => s,
            // Deleted meanwhile (its deliveries went with it).
            Err(crate::Error::NotFound) => return,
            Err(crate::Error::Store(shedu_store::Error::Corrupt(m))) => {
                return self.finish_final(&d, m).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read subscription; retrying after the lease");
                return;
            }
        };
        let event = match self.store.get_event(&d.event_id).await {
            Ok(row) => CloudEvent::from_row(&row),
            Err(shedu_store::Error::NotFound) => {
                return self
                    .finish_final(&d, "the event is no longer in the outbox".into())
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read event; retrying after the lease");
                return;
            }
        };
        let result = self.send(&sub, &secret, &event).await;
        self.finish(&d, result).await;
    }

    async fn send(
        &self,
        sub: &Subscription,
        secret: &Secret,
        e: &CloudEvent,
    ) -> Result<(), String> {
        match &sub.channel {
            Channel::Webhook { url, format, .. } => {
                let (body, content_type) = match format {
                    WebhookFormat::Cloudevents => (e.to_json(), CLOUDEVENTS_JSON),
                    WebhookFormat::Slack => {
                        let r = self.templates.render(e).map_err(|x| x.to_string())?;
                        let text = format!("{}\n{}", r.subject, r.text.trim_end());
                        (
                            serde_json::to_vec(&serde_json::json!({ "text": text }))
                                .unwrap_or_default(),
                            "application/json",
                        )
                    }
                };
                let mut req = self
                    .http
                    .post(url)
                    .map_err(|why| format!("webhook: {why}"))?
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .header("X-Shedu-Event-Id", e.id.as_str())
                    .header("X-Shedu-Event-Type", e.ty.as_str());
                if !secret.is_empty() {
                    req = req.header("X-Shedu-Signature", signature(secret.expose(), &body));
                }
                let resp = req
                    .body(body)
                    .send()
                    .await
                    .map_err(|x| format!("webhook: {}", error_chain(&x)))?;
                let status = resp.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("webhook answered HTTP {}", status.as_u16()))
                }
            }
            Channel::Email { to } => {
                let Some(mailer) = &self.mailer else {
                    return Err("e-mail is not configured (no SMTP relay)".into());
                };
                let r = self.templates.render(e).map_err(|x| x.to_string())?;
                mailer.send(to, &r, &e.id).await
            }
        }
    }

    async fn finish_final(&self, d: &DeliveryRow, error: String) {
        let outcome = DeliveryOutcome::Dead { error };
        if let Err(e) = self
            .store
            .finish_delivery(&d.subscription_id, &d.event_id, &outcome)
            .await
        {
            tracing::warn!(error = %e, "cannot record delivery outcome");
        }
    }

    async fn finish(&self, d: &DeliveryRow, result: Result<(), String>) {
        let outcome = match result {
            Ok(()) => DeliveryOutcome::Delivered,
            Err(error) if d.attempts >= i64::from(self.opts.max_attempts.max(1)) => {
                tracing::warn!(subscription = %d.subscription_id, event = %d.event_id, attempts = d.attempts,
                    %error, "alert delivery is dead");
                DeliveryOutcome::Dead { error }
            }
            Err(error) => {
                let delay = backoff(&self.opts, d.attempts);
                tracing::info!(subscription = %d.subscription_id, event = %d.event_id, attempts = d.attempts,
                    %error, retry_in_ms = delay.as_millis() as u64, "alert delivery failed; will retry");
                // Round up, so a retry never comes earlier than its delay.
                let next_attempt_at = (now_ms() + delay.as_millis() as i64 + 999) / 1000;
                DeliveryOutcome::Retry {
                    next_attempt_at,
                    error,
                }
            }
        };
        if let Err(e) = self
            .store
            .finish_delivery(&d.subscription_id, &d.event_id, &outcome)
            .await
        {
            tracing::warn!(error = %e, "cannot record delivery outcome; retried after the lease");
        }
    }
}

/// Delay after `attempts` failed attempts: `retry_initial * 2^(attempts-1)`, capped.
fn backoff(o: &DeliveryOptions, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    o.retry_initial
        .checked_mul(1u32 << exp)
        .unwrap_or(o.retry_max)
        .min(o.retry_max)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let o = DeliveryOptions {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(5),
            ..Default::default()
        };
        let secs: Vec<u64> = (1..=5).map(|a| backoff(&o, a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 5, 5]);
        assert_eq!(backoff(&o, 1000), Duration::from_secs(5));
    }

    #[test]
    fn signatures_verify() {
        let s = signature("k", b"body");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert!(verify_signature("k", b"body", &s));
        assert!(!verify_signature("k", b"bodx", &s));
        assert!(!verify_signature("j", b"body", &s));
    }
}
