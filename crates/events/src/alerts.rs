//! Alert subscriptions: who wants which events on which channel, and the dispatcher sink that turns matching
//! events into queued deliveries.
//!
//! The alerts sink enqueues a batch's deliveries and moves its cursor in one transaction, and the deliveries
//! table's primary key is (subscription, event): so each event is queued at most once per subscription even
//! when a batch is offered twice (restart, replica takeover). Sending happens in [`crate::delivery`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shedu_core::Webhooks;
use shedu_store::{Audited, DeliveryFilter, DeliveryRow, NewDelivery, Store, SubscriptionRow};
use tokio::sync::Notify;
use zeroize::Zeroizing;

use crate::dispatcher::{Sink, SinkError};
use crate::{CloudEvent, Error, now_secs};

/// A webhook signing secret. `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(s.into()))
    }

    /// A fresh random secret (32 bytes, hex).
    pub fn generate() -> Secret {
        Secret::new(hex::encode(rand::random::<[u8; 32]>()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        Ok(Secret::new(String::deserialize(d)?))
    }
}

/// The body a webhook receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The CloudEvent JSON (`application/cloudevents+json`).
    #[default]
    Cloudevents,
    /// `{"text": …}`, accepted by Slack and Microsoft Teams incoming webhooks.
    Slack,
}

/// Where a subscription's alerts go. Stored as JSON (`{"kind": "webhook", …}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Channel {
    /// HTTP POST, signed with `X-Shedu-Signature: sha256=<hex HMAC-SHA256(body, secret)>`.
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
        /// HMAC key; generated when created empty. Stored sealed, apart from the channel JSON (so it is
        /// never serialized there), and read back only to sign a delivery.
        #[serde(default, skip_serializing_if = "Secret::is_empty")]
        secret: Secret,
        /// Body format.
        #[serde(default)]
        format: WebhookFormat,
    },
    /// E-mail through the configured SMTP relay.
    Email {
        /// Recipients.
        to: Vec<String>,
    },
}

/// An optional filter on top of the event types. All given fields must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// The event's `data.ca_id` equals this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_id: Option<String>,
    /// `data.subject` (the certificate's subject DN, when the event has one) or the CloudEvents `subject`
    /// contains this, case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_contains: Option<String>,
}

/// A subscription as created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSubscription {
    /// Event types; `*` matches all, `certificate.*` a family.
    pub event_types: Vec<String>,
    /// Where to send.
    pub channel: Channel,
    /// Optional filter.
    pub condition: Option<Condition>,
}

/// A stored subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Identifier.
    pub id: String,
    /// Event types; `*` matches all, `certificate.*` a family.
    pub event_types: Vec<String>,
    /// Where to send. A webhook's secret is set only in the answer to its creation (the one time the API
    /// shows it); read back, it is empty.
    pub channel: Channel,
    /// Optional filter.
    pub condition: Option<Condition>,
    /// Unix seconds.
    pub created_at: i64,
}

impl Subscription {
    /// Whether `e` is for this subscription.
    pub fn matches(&self, e: &CloudEvent) -> bool {
        self.event_types.iter().any(|p| type_matches(p, &e.ty))
            && self.condition.as_ref().is_none_or(|c| c.matches(e))
    }

    pub(crate) fn from_row(r: SubscriptionRow) -> Result<Subscription, Error> {
        let corrupt = |what: &str, e: serde_json::Error| {
            Error::Store(shedu_store::Error::Corrupt(format!(
                "subscription {} {what}: {e}",
                r.id
            )))
        };
        let mut channel: Channel =
            serde_json::from_str(&r.channel).map_err(|e| corrupt("channel", e))?;
        if let Channel::Webhook { secret, .. } = &mut channel {
            *secret = Secret::default();
        }
        let condition = match &r.condition {
            Some(c) => Some(serde_json::from_str(c).map_err(|e| corrupt("condition", e))?),
            None => None,
        };
        Ok(Subscription {
            event_types: split_types(&r.event_types),
            channel,
            condition,
            created_at: r.created_at,
            id: r.id,
        })
    }
}

impl Condition {
    /// Whether `e` satisfies every given field.
    pub fn matches(&self, e: &CloudEvent) -> bool {
        if let Some(ca) = &self.ca_id
            && e.data.get("ca_id").and_then(|v| v.as_str()) != Some(ca.as_str())
        {
            return false;
        }
        if let Some(needle) = &self.subject_contains {
            let needle = needle.to_lowercase();
            let dn = e.data.get("subject").and_then(|v| v.as_str()).unwrap_or("");
            if !dn.to_lowercase().contains(&needle) && !e.subject.to_lowercase().contains(&needle) {
                return false;
            }
        }
        true
    }
}

fn type_matches(pattern: &str, ty: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(prefix) => {
            ty.len() > prefix.len() + 1
                && ty.starts_with(prefix)
                && ty.as_bytes()[prefix.len()] == b'.'
        }
        None => pattern == ty,
    }
}

fn split_types(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Status of a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// Accepted by the channel.
    Delivered,
    /// Gave up after the maximum attempts (dead letter); `last_error` says why.
    Dead,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
}

/// One event for one subscription, with its sending history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The subscription.
    pub subscription_id: String,
    /// The CloudEvents id.
    pub event_id: String,
    /// The event's outbox position.
    pub event_seq: i64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt (pending), Unix seconds.
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl Delivery {
    fn from_row(r: DeliveryRow) -> Delivery {
        Delivery {
            status: DeliveryStatus::parse(&r.status).unwrap_or(DeliveryStatus::Pending),
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            subscription_id: r.subscription_id,
            event_id: r.event_id,
            event_seq: r.event_seq,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Which deliveries to list.
#[derive(Clone, Debug)]
pub struct DeliveryQuery {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only this subscription.
    pub subscription_id: Option<String>,
    /// Only events older than this outbox position (next page: the last `event_seq` seen).
    pub before_seq: Option<i64>,
    /// Page size (capped at 1000).
    pub limit: u32,
}

impl Default for DeliveryQuery {
    fn default() -> Self {
        DeliveryQuery {
            status: None,
            subscription_id: None,
            before_seq: None,
            limit: 100,
        }
    }
}

/// Subscriptions and deliveries, for the REST API. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AlertService {
    store: Store,
    /// The target policy webhook URLs must pass, and the sealing of their secrets.
    webhooks: Arc<Webhooks>,
    /// The event types the platform emits; a subscription pattern must match one of them. Empty: any.
    known_types: &'static [&'static str],
}

impl AlertService {
    /// The service over `store`; webhook URLs must pass `webhooks`' target policy, and their secrets are
    /// sealed with it.
    pub fn new(store: Store, webhooks: Arc<Webhooks>) -> AlertService {
        AlertService {
            store,
            webhooks,
            known_types: &[],
        }
    }

    /// Refuses subscriptions whose patterns match none of `types` (the services own the list).
    pub fn with_known_types(mut self, types: &'static [&'static str]) -> AlertService {
        self.known_types = types;
        self
    }

    /// Validates and stores a subscription. A webhook created without a secret gets a generated one, returned
    /// here (the only time the API should show it). `audit` names who asked (the caller owns the words).
    pub async fn create_subscription(
        &self,
        new: NewSubscription,
        audit: &Audited<'_>,
    ) -> Result<Subscription, Error> {
        let NewSubscription {
            event_types,
            mut channel,
            condition,
        } = new;
        let event_types: Vec<String> = event_types
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if event_types.is_empty() {
            return Err(Error::invalid(
                "event_types",
                "at least one event type is required",
            ));
        }
        for t in &event_types {
            let ok = t == "*"
                || t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*'))
                    && (!t.contains('*') || (t.ends_with(".*") && t.matches('*').count() == 1));
            if !ok {
                return Err(Error::invalid(
                    "event_types",
                    format!("{t:?} is not an event type or pattern (`*`, `family.*`)"),
                ));
            }
            if !self.known_types.is_empty() && !self.known_types.iter().any(|k| type_matches(t, k))
            {
                return Err(Error::invalid(
                    "event_types",
                    format!("{t:?} matches no event type this platform emits"),
                ));
            }
        }
        match &mut channel {
            Channel::Webhook { url, secret, .. } => {
                self.webhooks
                    .policy()
                    .check_url("channel.url", url)
                    .await
                    .map_err(|e| match e {
                        shedu_core::Error::Invalid { code, detail }
                            if code == shedu_core::TARGET_REFUSED =>
                        {
                            Error::TargetRefused(detail)
                        }
                        e => Error::invalid("channel.url", e.to_string()),
                    })?;
                if secret.is_empty() {
                    *secret = Secret::generate();
                }
            }
            Channel::Email { to } => {
                if to.is_empty() {
                    return Err(Error::invalid(
                        "channel.to",
                        "at least one recipient is required",
                    ));
                }
                for addr in to.iter() {
                    addr.parse::<lettre::message::Mailbox>()
                        .map_err(|e| Error::invalid("channel.to", format!("{addr:?}: {e}")))?;
                }
            }
        }
        if let Some(c) = &condition
            && (c.ca_id.as_deref() == Some("") || c.subject_contains.as_deref() == Some(""))
        {
            return Err(Error::invalid("condition", "empty values are not allowed"));
        }
        let condition = condition.filter(|c| c != &Condition::default());
        let sub = Subscription {
            id: hex::encode(rand::random::<[u8; 16]>()),
            event_types,
            channel,
            condition,
            created_at: now_secs(),
        };
        let json = |v: serde_json::Result<String>| v.map_err(|e| Error::Config(e.to_string()));
        let (stored_channel, secret_sealed) = self.seal(&sub.id, &sub.channel)?;
        let row = SubscriptionRow {
            id: sub.id.clone(),
            event_types: sub.event_types.join(","),
            channel: json(serde_json::to_string(&stored_channel))?,
            condition: match &sub.condition {
                Some(c) => Some(json(serde_json::to_string(c))?),
                None => None,
            },
            secret_sealed,
            created_at: sub.created_at,
        };
        self.store.insert_subscription(&row, audit).await?;
        Ok(sub)
    }

    /// The channel as stored (without its secret) and the secret sealed for subscription `id`.
    fn seal(&self, id: &str, channel: &Channel) -> Result<(Channel, Option<Vec<u8>>), Error> {
        let mut stored = channel.clone();
        let sealed = match &mut stored {
            Channel::Webhook { secret, .. } if !secret.is_empty() => {
                let sealed = self
                    .webhooks
                    .seal_secret(id, secret.expose())
                    .map_err(|e| Error::Config(format!("cannot seal the webhook secret: {e}")))?;
                *secret = Secret::default();
                Some(sealed)
            }
            _ => None,
        };
        Ok((stored, sealed))
    }

    /// The secret that signs deliveries of the subscription stored as `row`: sealed (opened here, in
    /// memory), or, on a row written before secrets were sealed, the one in its channel JSON.
    pub(crate) fn signing_secret(&self, row: &SubscriptionRow) -> Result<Secret, Error> {
        if let Some(sealed) = &row.secret_sealed {
            let plain = self.webhooks.open_secret(&row.id, sealed).map_err(|e| {
                Error::Store(shedu_store::Error::Corrupt(format!(
                    "subscription {}: {e}",
                    row.id
                )))
            })?;
            return Ok(Secret::new(plain.as_str()));
        }
        match serde_json::from_str::<Channel>(&row.channel) {
            Ok(Channel::Webhook { secret, .. }) => Ok(secret),
            _ => Ok(Secret::default()),
        }
    }

    /// Seals the secrets that rows written before sealing still carry in clear in their channel JSON.
    /// Runs at start; returns how many rows it sealed.
    pub async fn seal_legacy_secrets(&self) -> Result<usize, Error> {
        let mut sealed = 0;
        for row in self.store.list_subscriptions().await? {
            if row.secret_sealed.is_some() {
                continue;
            }
            let Ok(channel) = serde_json::from_str::<Channel>(&row.channel) else {
                continue;
            };
            let (stored, Some(secret)) = self.seal(&row.id, &channel)? else {
                continue;
            };
            let json = serde_json::to_string(&stored).map_err(|e| Error::Config(e.to_string()))?;
            if self
                .store
                .seal_subscription_secret(&row.id, &json, &secret)
                .await?
            {
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    /// Every subscription, oldest first.
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, Error> {
        self.store
            .list_subscriptions()
            .await?
            .into_iter()
            .map(Subscription::from_row)
            .collect()
    }

    /// One subscription.
    pub async fn get_subscription(&self, id: &str) -> Result<Subscription, Error> {
        Subscription::from_row(self.store.get_subscription(id).await?)
    }

    /// Deletes a subscription with its deliveries.
    pub async fn delete_subscription(&self, id: &str, audit: &Audited<'_>) -> Result<(), Error> {
        Ok(self.store.delete_subscription(id, audit).await?)
    }

    /// Deliveries, newest event first.
    pub async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>, Error> {
        let rows = self
            .store
            .list_deliveries(&DeliveryFilter {
                status: q.status.map(|s| s.as_str().to_string()),
                subscription_id: q.subscription_id.clone(),
                before_seq: q.before_seq,
                limit: i64::from(q.limit.min(1000)),
            })
            .await?;
        Ok(rows.into_iter().map(Delivery::from_row).collect())
    }

    /// Sends a dead delivery again (fresh attempts; the worker picks it up at once). `NotFound` unless it
    /// exists and is dead.
    pub async fn retry_delivery(
        &self,
        subscription_id: &str,
        event_id: &str,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        Ok(self
            .store
            .requeue_delivery(subscription_id, event_id, audit)
            .await?)
    }

    /// One delivery.
    pub async fn get_delivery(
        &self,
        subscription_id: &str,
        event_id: &str,
    ) -> Result<Delivery, Error> {
        Ok(Delivery::from_row(
            self.store.get_delivery(subscription_id, event_id).await?,
        ))
    }
}

/// The dispatcher sink that matches events to subscriptions and queues deliveries.
pub(crate) struct AlertsSink {
    pub(crate) store: Store,
    /// Wakes the delivery worker when something was queued.
    pub(crate) worker: Arc<Notify>,
}

/// The cursor name of the alerts sink.
pub(crate) const ALERTS_SINK: &str = "alerts";

#[async_trait]
impl Sink for AlertsSink {
    fn name(&self) -> &str {
        ALERTS_SINK
    }

    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), SinkError> {
        let rows = self
            .store
            .list_subscriptions()
            .await
            .map_err(SinkError::new)?;
        let subs: Vec<Subscription> = rows
            .into_iter()
            .filter_map(|r| match Subscription::from_row(r) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring unreadable subscription");
                    None
                }
            })
            .collect();
        let mut queued = Vec::new();
        for e in events {
            for s in subs.iter().filter(|s| s.matches(e)) {
                queued.push(NewDelivery {
                    subscription_id: s.id.clone(),
                    event_id: e.id.clone(),
                    event_seq: e.seq,
                });
            }
        }
        if queued.is_empty() {
            // Nothing to enqueue: the dispatcher stores the cursor (at most once a second), no transaction.
            return Ok(());
        }
        let last = events.last().map(|e| e.seq).unwrap_or(0);
        let added = self
            .store
            .enqueue_deliveries(ALERTS_SINK, last, &queued)
            .await
            .map_err(SinkError::new)?;
        if added > 0 {
            self.worker.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: &str, data: serde_json::Value) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".into(),
            id: "1".into(),
            source: "/shedu".into(),
            ty: ty.into(),
            subject: "cas/abc/certificates/01".into(),
            time: "2024-01-01T00:00:00Z".into(),
            datacontenttype: "application/json".into(),
            data,
            seq: 1,
        }
    }

    #[test]
    fn patterns() {
        assert!(type_matches("*", "certificate.issued"));
        assert!(type_matches("certificate.*", "certificate.issued"));
        assert!(!type_matches("certificate.*", "certificates.issued"));
        assert!(!type_matches("certificate.*", "ca.created"));
        assert!(type_matches("ca.created", "ca.created"));
        assert!(!type_matches("ca.created", "ca.created2"));
    }

    #[test]
    fn conditions() {
        let e = ev(
            "certificate.issued",
            serde_json::json!({"ca_id": "abc", "subject": "CN=Device 42,O=Acme"}),
        );
        let c = |ca: Option<&str>, s: Option<&str>| Condition {
            ca_id: ca.map(str::to_string),
            subject_contains: s.map(str::to_string),
        };
        assert!(c(Some("abc"), None).matches(&e));
        assert!(!c(Some("abd"), None).matches(&e));
        assert!(c(None, Some("device 42")).matches(&e));
        assert!(c(Some("abc"), Some("certificates/01")).matches(&e));
        assert!(!c(Some("abc"), Some("other")).matches(&e));
    }

    #[test]
    fn stored_channels_omit_empty_secrets() {
        let c = Channel::Webhook {
            url: "https://h.example/x".into(),
            secret: Secret::default(),
            format: WebhookFormat::Cloudevents,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("secret"), "{json}");
    }

    #[test]
    fn secrets_do_not_debug() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
