//! Events and alerts: the outbox as a list and a live Server-Sent Events stream, subscriptions and their
//! deliveries.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use shedu_events::{
    AlertService, Channel, CloudEvent, Condition, DeliveryQuery, DeliveryStatus, NewSubscription,
    Secret, WebhookFormat,
};
use utoipa::{IntoParams, ToSchema};

use super::time_fmt::rfc3339;
use shedu_core::AuditAction;

use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, ApiQuery, Problem};

/// Event listing filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventQuery {
    /// Only this type (e.g. `certificate.revoked`).
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// Only events whose subject contains this (e.g. a CA id or a serial).
    pub subject: Option<String>,
    /// Only events after this outbox position (the `seq` of the last event seen).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
    /// `true`: the newest `limit` matching events (still oldest first) rather than the first ones after
    /// `after`; what the console's live view shows before it follows the stream.
    pub newest: Option<bool>,
}

/// A CloudEvents 1.0 event with its outbox position.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventDto {
    pub seq: i64,
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub subject: String,
    pub time: String,
    pub datacontenttype: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// A page of events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventPage {
    pub items: Vec<EventDto>,
}

fn event_dto(e: CloudEvent) -> EventDto {
    EventDto {
        seq: e.seq,
        specversion: e.specversion,
        id: e.id,
        source: e.source,
        ty: e.ty,
        subject: e.subject,
        time: e.time,
        datacontenttype: e.datacontenttype,
        data: e.data,
    }
}

/// The outbox, oldest first, filtered.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery), responses((status = 200, body = EventPage)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<ApiJson<EventPage>, Problem> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .services
        .events
        .read(&shedu_core::EventFilter {
            after_seq: q.after.unwrap_or(0),
            ty: q.ty.as_deref(),
            subject_contains: q.subject.as_deref(),
            limit,
            newest: q.newest.unwrap_or(false),
        })
        .await?;
    Ok(ApiJson(EventPage {
        items: rows
            .iter()
            .map(|r| event_dto(CloudEvent::from_row(r)))
            .collect(),
    }))
}

/// Live events as Server-Sent Events (`id:` is the outbox position; reconnect with `Last-Event-ID` to
/// resume without a gap: the missed events are replayed from the outbox first).
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    responses((status = 200, description = "text/event-stream of CloudEvents JSON")))]
pub(crate) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    use futures::StreamExt;
    let events = state.delivery.clone().ok_or_else(unavailable)?;
    // Subscribe before reading the backlog, so nothing falls between the two.
    let live = tokio_stream::wrappers::BroadcastStream::new(events.subscribe())
        .filter_map(|r| async move { r.ok() });
    let after: Option<i64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let backlog: Vec<CloudEvent> = match after {
        Some(a) => state
            .services
            .events
            .list(a, None, None, 10_000)
            .await?
            .iter()
            .map(CloudEvent::from_row)
            .collect(),
        None => Vec::new(),
    };
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(after.unwrap_or(0)));
    let stream = futures::stream::iter(backlog)
        .chain(live)
        .filter_map(move |e| {
            let sent = sent.clone();
            async move {
                // Skip what the replay already sent (the live feed may repeat the tail of the backlog).
                if e.seq <= sent.load(std::sync::atomic::Ordering::Relaxed) {
                    return None;
                }
                sent.store(e.seq, std::sync::atomic::Ordering::Relaxed);
                let json = serde_json::to_string(&e).unwrap_or_default();
                Some(Ok(Event::default()
                    .id(e.seq.to_string())
                    .event(e.ty.clone())
                    .data(json)))
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn unavailable() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "events-unavailable",
        "event delivery is not running",
    )
}

/// A subscription's channel, as the API takes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ChannelRequest {
    /// E-mail to `address` through the configured SMTP relay.
    Email { address: String },
    /// POST to `url`, signed with HMAC-SHA256 of `secret` (generated when omitted; returned once).
    Webhook {
        url: String,
        secret: Option<String>,
        /// `cloudevents` (default) or `slack` (`{"text": …}`, also accepted by Microsoft Teams).
        format: Option<String>,
    },
}

/// Conditions on top of the event types; all given fields must match.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConditionDto {
    /// The event's CA.
    pub ca_id: Option<String>,
    /// Text the certificate subject or the event subject contains.
    pub subject_contains: Option<String>,
}

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSubscriptionRequest {
    /// Event types: exact (`certificate.revoked`), a family (`certificate.*`) or `*`.
    pub event_types: Vec<String>,
    pub channel: ChannelRequest,
    pub condition: Option<ConditionDto>,
}

/// A subscription. The webhook secret appears only in the creation response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriptionDto {
    pub id: String,
    pub event_types: Vec<String>,
    #[schema(value_type = Object)]
    pub channel: serde_json::Value,
    pub condition: Option<ConditionDto>,
    pub created_at: String,
}

/// Every subscription.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriptionList {
    pub items: Vec<SubscriptionDto>,
}

/// One alert delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryDto {
    pub subscription_id: String,
    pub event_id: String,
    /// `pending`, `delivered` or `dead` (dead letter: retries exhausted).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub updated_at: String,
}

/// Deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryList {
    pub items: Vec<DeliveryDto>,
}

/// Delivery filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryQueryDto {
    /// `pending`, `delivered` or `dead`.
    pub status: Option<String>,
    pub subscription_id: Option<String>,
    pub limit: Option<u32>,
}

fn alerts(state: &AppState) -> Result<AlertService, Problem> {
    state
        .delivery
        .as_ref()
        .map(|e| e.alerts())
        .ok_or_else(unavailable)
}

fn subscription_dto(s: shedu_events::Subscription, reveal_secret: bool) -> SubscriptionDto {
    let channel = match &s.channel {
        Channel::Email { to } => serde_json::json!({"type": "email", "address": to.join(", ")}),
        Channel::Webhook {
            url,
            secret,
            format,
        } => {
            let format = match format {
                WebhookFormat::Cloudevents => "cloudevents",
                WebhookFormat::Slack => "slack",
            };
            let mut v = serde_json::json!({"type": "webhook", "url": url, "format": format});
            if reveal_secret {
                v["secret"] = serde_json::Value::String(secret.expose().to_string());
            }
            v
        }
    };
    SubscriptionDto {
        id: s.id,
        event_types: s.event_types,
        channel,
        condition: s.condition.map(|c| ConditionDto {
            ca_id: c.ca_id,
            subject_contains: c.subject_contains,
        }),
        created_at: rfc3339(s.created_at),
    }
}

/// Subscribe a channel to event types.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "events", request_body = CreateSubscriptionRequest,
    responses((status = 201, body = SubscriptionDto), (status = 400, body = Problem)))]
pub(crate) async fn create_subscription(
    State(state): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<CreateSubscriptionRequest>,
) -> Result<(StatusCode, ApiJson<SubscriptionDto>), Problem> {
    let channel = match req.channel {
        ChannelRequest::Email { address } => Channel::Email { to: vec![address] },
        ChannelRequest::Webhook {
            url,
            secret,
            format,
        } => Channel::Webhook {
            url,
            secret: secret.map(Secret::new).unwrap_or_default(),
            format: match format.as_deref() {
                None | Some("cloudevents") => WebhookFormat::Cloudevents,
                Some("slack") => WebhookFormat::Slack,
                Some(other) => {
                    return Err(Problem::new(
                        StatusCode::BAD_REQUEST,
                        "invalid-format",
                        format!("unknown webhook format {other:?}"),
                    ));
                }
            },
        },
    };
    let condition = req.condition.map(|c| Condition {
        ca_id: c.ca_id,
        subject_contains: c.subject_contains,
    });
    let sub = alerts(&state)?
        .create_subscription(
            NewSubscription {
                event_types: req.event_types,
                channel,
                condition,
            },
            &AuditAction::SubscriptionCreate.by(&actor),
        )
        .await
        .map_err(events_problem)?;
    Ok((StatusCode::CREATED, ApiJson(subscription_dto(sub, true))))
}

/// Every subscription (webhook secrets withheld).
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "events", responses((status = 200, body = SubscriptionList)))]
pub(crate) async fn list_subscriptions(
    State(state): State<AppState>,
) -> Result<ApiJson<SubscriptionList>, Problem> {
    let subs = alerts(&state)?
        .list_subscriptions()
        .await
        .map_err(events_problem)?;
    Ok(ApiJson(SubscriptionList {
        items: subs
            .into_iter()
            .map(|s| subscription_dto(s, false))
            .collect(),
    }))
}

/// One subscription.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "events", params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionDto), (status = 404, body = Problem)))]
pub(crate) async fn show_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<SubscriptionDto>, Problem> {
    let sub = alerts(&state)?
        .get_subscription(&id)
        .await
        .map_err(events_problem)?;
    Ok(ApiJson(subscription_dto(sub, false)))
}

/// Delete a subscription.
#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}", tag = "events", params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub(crate) async fn delete_subscription(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    alerts(&state)?
        .delete_subscription(&id, &AuditAction::SubscriptionDelete.by(&actor))
        .await
        .map_err(events_problem)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Alert deliveries: pending, delivered, and dead letters.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "events", params(DeliveryQueryDto), responses((status = 200, body = DeliveryList)))]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQueryDto>,
) -> Result<ApiJson<DeliveryList>, Problem> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                "status is pending, delivered or dead",
            )
        })?),
    };
    let query = DeliveryQuery {
        status,
        subscription_id: q.subscription_id,
        before_seq: None,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    let items = alerts(&state)?
        .list_deliveries(&query)
        .await
        .map_err(events_problem)?
        .into_iter()
        .map(|d| DeliveryDto {
            subscription_id: d.subscription_id,
            event_id: d.event_id,
            status: d.status.as_str().into(),
            attempts: d.attempts,
            next_attempt_at: rfc3339(d.next_attempt_at),
            last_error: d.last_error,
            updated_at: rfc3339(d.updated_at),
        })
        .collect();
    Ok(ApiJson(DeliveryList { items }))
}

/// Send a dead delivery again.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/deliveries/{event_id}/retry", tag = "events",
    params(("id" = String, Path, description = "Subscription id"), ("event_id" = String, Path, description = "Event id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub(crate) async fn retry_delivery(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    alerts(&state)?
        .retry_delivery(&id, &event_id, &AuditAction::DeliveryRetry.by(&actor))
        .await
        .map_err(events_problem)?;
    Ok(StatusCode::NO_CONTENT)
}

fn events_problem(e: shedu_events::Error) -> Problem {
    match e {
        shedu_events::Error::Invalid { field, message } => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-subscription",
            format!("{field}: {message}"),
        ),
        shedu_events::Error::TargetRefused(detail) => {
            Problem::new(StatusCode::BAD_REQUEST, shedu_core::TARGET_REFUSED, detail)
        }
        shedu_events::Error::NotFound => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such subscription or delivery",
        ),
        shedu_events::Error::Store(e) => {
            tracing::error!(error = %e, "events storage");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage is unavailable",
            )
        }
        other => {
            tracing::error!(error = %other, "events");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the server log",
            )
        }
    }
}
