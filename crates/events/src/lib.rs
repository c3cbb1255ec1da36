//! Event delivery for shedu: the outbox's other half.
//!
//! Every state change already appends a CloudEvents 1.0 event to the `events` table in its own transaction.
//! This crate moves those events out, reliably:
//! - [`Dispatcher`]: one task per [`Sink`] reads the outbox in `seq` order from the sink's stored cursor and
//!   advances it only after the sink acknowledged (at-least-once; the event `id` is the de-duplication key).
//!   Sinks: the in-process broadcast ([`EventsHandle::subscribe`], for SSE), [`NatsSink`] (JetStream) and
//!   [`AmqpSink`] (RabbitMQ), and the alerts sink.
//! - Alerts: [`AlertService`] manages subscriptions (event types, optional condition, webhook or e-mail
//!   channel); the alerts sink queues one delivery per matching (subscription, event) in the transaction
//!   that advances its cursor; a delivery worker sends them with retries and a dead letter.
//! - Expiry reminders: a periodic job emits `certificate.expiry_reminder` events N days before notAfter,
//!   once per certificate and threshold; subscriptions receive them like any other event.
//!
//! [`start`] wires all of it from an [`EventsConfig`].
#![warn(missing_docs)]

mod alerts;
mod amqp;
mod bus;
mod cloud;
mod cloudevent;
mod delivery;
mod dispatcher;
mod mail;
mod nats;
mod reminders;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shedu_core::Webhooks;
use shedu_store::Store;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

pub use alerts::{
    AlertService, Channel, Condition, Delivery, DeliveryQuery, DeliveryStatus, NewSubscription,
    Secret, Subscription, WebhookFormat,
};
pub use amqp::{AmqpOptions, AmqpSink};
pub use bus::{BusHealth, BusState, PROBE_INTERVAL, PROBE_TIMEOUT};
pub use cloudevent::{CLOUDEVENTS_JSON, CloudEvent, DATA_CONTENT_TYPE};
pub use delivery::{DeliveryOptions, signature, verify_signature};
pub use dispatcher::{DispatchOptions, Dispatcher, DispatcherHandle, Sink, SinkError};
pub use mail::{Mailer, Rendered, SmtpConfig, SmtpTls, Templates};
pub use nats::{NatsOptions, NatsSink};
pub use reminders::ReminderOptions;

/// Why an events operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request field is invalid (REST: 422/400 with `field`).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No such subscription or delivery.
    #[error("not found")]
    NotFound,
    /// A webhook URL names (or resolves only to) an address the target policy refuses; the message names
    /// it (REST: 400 `webhook-target-refused`).
    #[error("{0}")]
    TargetRefused(String),
    /// Bad configuration (bus URL, SMTP settings, template directory).
    #[error("events configuration: {0}")]
    Config(String),
    /// A template failed to compile or render.
    #[error("template: {0}")]
    Template(String),
    /// Storage failed.
    #[error(transparent)]
    Store(shedu_store::Error),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<shedu_store::Error> for Error {
    fn from(e: shedu_store::Error) -> Error {
        match e {
            shedu_store::Error::NotFound => Error::NotFound,
            e => Error::Store(e),
        }
    }
}

/// What [`start`] runs.
#[derive(Clone, Debug, Default)]
pub struct EventsConfig {
    /// Message buses: `nats://…` (JetStream; `?stream=…&subject_prefix=…`) and/or `amqp://…`/`amqps://…`
    /// (RabbitMQ; `?exchange=…`). Repeatable; empty for none.
    pub bus_urls: Vec<String>,
    /// SMTP relay for e-mail alerts; without it, e-mail deliveries fail (and end dead).
    pub smtp: Option<SmtpConfig>,
    /// Directory of template overrides (`<event type>.subject.txt|.txt|.html`).
    pub template_dir: Option<PathBuf>,
    /// Dispatcher tuning.
    pub dispatch: DispatchOptions,
    /// Alert delivery tuning.
    pub delivery: DeliveryOptions,
    /// Expiry reminders (empty `days_before` disables them).
    pub reminders: ReminderOptions,
    /// The event types the platform emits (`shedu_core::EVENT_TYPES`): subscriptions must name one of them.
    /// Empty accepts any well-formed type.
    pub event_types: &'static [&'static str],
    /// The cloud connectors (`Services::cloud`): their sink queues sync items from certificate events and
    /// their worker runs beside the dispatcher. `None`: no cloud sync.
    pub cloud: Option<Arc<shedu_core::Cloud>>,
}

/// Builds the bus sink for one URL (`nats://`, `tls://`, `amqp://`, `amqps://`).
pub fn bus_sink(url: &str) -> Result<Arc<dyn Sink>, Error> {
    let scheme = url.split("://").next().unwrap_or("");
    match scheme {
        "nats" | "tls" => Ok(Arc::new(NatsSink::new(NatsOptions::from_url(url)?))),
        "amqp" | "amqps" => Ok(Arc::new(AmqpSink::new(AmqpOptions::from_url(url)?))),
        _ => Err(Error::Config(format!(
            "unsupported bus URL {} (use nats:// or amqp://)",
            shedu_store::redact_url(url)
        ))),
    }
}

/// Starts event delivery: the dispatcher (in-process broadcast, the buses of `bus_urls`, alerts), the alert
/// delivery worker and the expiry reminder job. Buses are connected lazily, so one that is down delays its
/// events instead of failing startup; configuration errors (bad URL, template syntax, bad SMTP sender) fail
/// here. `webhooks` (from `shedu_core::Services`) decides which addresses webhooks may reach and seals their
/// secrets; webhook secrets still stored in clear (written before they were sealed) are sealed here.
pub async fn start(
    store: Store,
    webhooks: Arc<Webhooks>,
    config: EventsConfig,
) -> Result<EventsHandle, Error> {
    let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
    for url in &config.bus_urls {
        let sink = bus_sink(url)?;
        // The name is the cursor and the lock: two buses under one name would share (and fight over) them.
        if sinks.iter().any(|s| s.name() == sink.name()) {
            return Err(Error::Config(format!(
                "two buses share the sink name {} (give them different streams or exchanges)",
                sink.name()
            )));
        }
        sinks.push(sink);
    }
    let templates = Arc::new(Templates::load(config.template_dir.as_deref())?);
    let mailer = config.smtp.as_ref().map(Mailer::new).transpose()?;
    let alerts =
        AlertService::new(store.clone(), webhooks.clone()).with_known_types(config.event_types);
    let sealed = alerts.seal_legacy_secrets().await?;
    if sealed > 0 {
        tracing::info!(
            subscriptions = sealed,
            "sealed webhook secrets stored in clear"
        );
    }
    let http = webhooks
        .client(config.delivery.webhook_timeout)
        .map_err(|e| Error::Config(e.to_string()))?;
    let worker_wake = Arc::new(Notify::new());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let probing: Vec<Arc<dyn Sink>> = sinks.iter().filter(|s| s.probes()).cloned().collect();
    let mut dispatcher = Dispatcher::with_options(store.clone(), config.dispatch.clone());
    for s in sinks {
        dispatcher = dispatcher.sink_arc(s);
    }
    dispatcher = dispatcher.sink(alerts::AlertsSink {
        store: store.clone(),
        worker: worker_wake.clone(),
    });
    if let Some(cloud) = &config.cloud {
        dispatcher = dispatcher.sink(cloud::CloudSink {
            cloud: cloud.clone(),
        });
    }
    let dispatcher = dispatcher.start();

    let mut tasks = Vec::new();
    let (bus, probes) = bus::spawn_probes(probing, shutdown_rx.clone());
    tasks.extend(probes);
    tasks.push(tokio::spawn(
        delivery::DeliveryWorker {
            store: store.clone(),
            alerts: alerts.clone(),
            http,
            mailer,
            templates,
            opts: config.delivery.clone(),
            wake: worker_wake,
            shutdown: shutdown_rx.clone(),
        }
        .run(),
    ));
    if let Some(cloud) = config.cloud.clone() {
        tasks.push(tokio::spawn(cloud.run(shutdown_rx.clone())));
    }
    if !config.reminders.days_before.is_empty() {
        tasks.push(tokio::spawn(reminders::run(
            store.clone(),
            config.reminders.clone(),
            dispatcher.notifier(),
            shutdown_rx,
        )));
    }
    Ok(EventsHandle {
        dispatcher: Some(dispatcher),
        tasks,
        shutdown: shutdown_tx,
        alerts,
        bus,
    })
}

/// Running event delivery. Dropping it aborts everything (undelivered events stay in the outbox);
/// [`EventsHandle::shutdown`] lets work in flight finish first.
#[derive(Debug)]
pub struct EventsHandle {
    dispatcher: Option<DispatcherHandle>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    alerts: AlertService,
    bus: BusHealth,
}

impl EventsHandle {
    /// Every event from now on, in `seq` order (this replica; slow receivers get `Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<CloudEvent> {
        match &self.dispatcher {
            Some(d) => d.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Wakes the dispatcher now; call after committing a change so events leave within milliseconds rather
    /// than at the next poll.
    pub fn notify(&self) {
        if let Some(d) = &self.dispatcher {
            d.notify();
        }
    }

    /// The wake-up handle (`notify_one()` = [`Self::notify`]), for services that should not depend on this
    /// crate.
    pub fn notifier(&self) -> Arc<Notify> {
        match &self.dispatcher {
            Some(d) => d.notifier(),
            None => Arc::new(Notify::new()),
        }
    }

    /// The remembered reachability of each configured bus (for `/ready` and `/metrics`).
    pub fn bus(&self) -> &BusHealth {
        &self.bus
    }

    /// Subscriptions and deliveries.
    pub fn alerts(&self) -> AlertService {
        self.alerts.clone()
    }

    /// Stops everything, letting work in flight finish for up to `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.shutdown.send(true);
        if let Some(d) = self.dispatcher.take() {
            d.shutdown(grace).await;
        }
        let deadline = tokio::time::Instant::now() + grace;
        for mut t in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
            }
        }
    }
}

impl Drop for EventsHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Splits `?k=v&…` off a URL (values are taken verbatim).
pub(crate) fn split_query(url: &str) -> (&str, Vec<(String, String)>) {
    match url.split_once('?') {
        None => (url, Vec::new()),
        Some((base, q)) => (
            base,
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (p.to_string(), String::new()),
                })
                .collect(),
        ),
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bus_urls() {
        let n = super::NatsOptions::from_url("nats://h:4222?stream=S1&subject_prefix=p.q")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (n.url.as_str(), n.stream.as_str(), n.subject_prefix.as_str()),
            ("nats://h:4222", "S1", "p.q")
        );
        assert!(super::NatsOptions::from_url("nats://h?bogus=1").is_err());
        let a = super::AmqpOptions::from_url("amqp://u:p@h:5672/%2f?heartbeat=10&exchange=x.y")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (a.url.as_str(), a.exchange.as_str()),
            ("amqp://u:p@h:5672/%2f?heartbeat=10", "x.y")
        );
        assert!(super::bus_sink("kafka://h").is_err());
    }
}
