//! Alert subscriptions end to end, on SQLite and PostgreSQL, with a real HTTP receiver on loopback that
//! checks the HMAC signature itself: retries until success, dead letter after N attempts, Slack format,
//! conditions, at most one delivery per subscription and event across restarts, subscription management,
//! and expiry reminders.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use shedu_events::{
    Channel, Condition, DeliveryOptions, DeliveryQuery, DeliveryStatus, EventsConfig,
    NewSubscription, ReminderOptions, Secret, WebhookFormat,
};
use shedu_store::scratch::TestBackend;
use shedu_store::{CertRow, Store};

#[derive(Clone, Debug)]
struct Hit {
    event_id: String,
    body: serde_json::Value,
    signature_ok: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    /// Path → secret, for checking signatures.
    secrets: Arc<Mutex<HashMap<String, String>>>,
    hits: Arc<Mutex<HashMap<String, Vec<Hit>>>>,
}

impl Receiver {
    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(aws_lc_rs::hmac::sign(&key, body).as_ref())
}

async fn hook(
    State(r): State<Receiver>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = r
        .secrets
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .unwrap_or_default();
    let sig = headers
        .get("x-shedu-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let signature_ok = sig == format!("sha256={}", hmac_hex(&secret, &body));
    let hit = Hit {
        event_id: headers
            .get("x-shedu-event-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: serde_json::from_slice(&body).unwrap_or_default(),
        signature_ok,
    };
    let n = {
        let mut hits = r.hits.lock().unwrap();
        let v = hits.entry(name.clone()).or_default();
        v.push(hit);
        v.len()
    };
    if !signature_ok {
        return StatusCode::UNAUTHORIZED;
    }
    match name.as_str() {
        "flaky" if n <= 2 => StatusCode::INTERNAL_SERVER_ERROR,
        "dead" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::NO_CONTENT,
    }
}

async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = Router::new()
        .route("/{name}", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (r, base)
}

fn webhook(base: &str, path: &str, secret: &str, format: WebhookFormat) -> Channel {
    Channel::Webhook {
        url: format!("{base}/{path}"),
        secret: Secret::new(secret),
        format,
    }
}

fn config() -> EventsConfig {
    EventsConfig {
        dispatch: fast(),
        delivery: DeliveryOptions {
            max_attempts: 4,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(1),
            poll_interval: Duration::from_millis(100),
            ..DeliveryOptions::default()
        },
        reminders: ReminderOptions {
            days_before: Vec::new(),
            ..ReminderOptions::default()
        },
        ..EventsConfig::default()
    }
}

async fn webhooks(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    let (rx, base) = receiver().await;
    let handle = shedu_events::start(store.clone(), test_webhooks(), config())
        .await
        .unwrap();
    let alerts = handle.alerts();

    let flaky = alerts
        .create_subscription(
            NewSubscription {
                event_types: vec!["certificate.issued".into()],
                channel: webhook(&base, "flaky", "flaky-secret", WebhookFormat::Cloudevents),
                condition: None,
            },
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
    let dead = alerts
        .create_subscription(
            NewSubscription {
                event_types: vec!["certificate.*".into()],
                channel: webhook(&base, "dead", "dead-secret", WebhookFormat::Cloudevents),
                condition: None,
            },
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
    // No secret given: one is generated and returned once.
    let slack = alerts
        .create_subscription(
            NewSubscription {
                event_types: vec!["certificate.revoked".into()],
                channel: webhook(&base, "slack", "", WebhookFormat::Slack),
                condition: Some(Condition {
                    ca_id: Some("ca1".into()),
                    subject_contains: None,
                }),
            },
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
    let Channel::Webhook { secret, .. } = &slack.channel else {
        panic!("webhook expected")
    };
    assert_eq!(secret.expose().len(), 64);
    let other_ca = alerts
        .create_subscription(
            NewSubscription {
                event_types: vec!["*".into()],
                channel: webhook(&base, "other", "x", WebhookFormat::Cloudevents),
                condition: Some(Condition {
                    ca_id: Some("other-ca".into()),
                    subject_contains: None,
                }),
            },
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
    {
        let mut s = rx.secrets.lock().unwrap();
        s.insert("flaky".into(), "flaky-secret".into());
        s.insert("dead".into(), "dead-secret".into());
        s.insert("slack".into(), secret.expose().to_string());
        s.insert("other".into(), "x".into());
    }

    let issued = event("certificate.issued", 1);
    let revoked = event_with(
        "certificate.revoked",
        serde_json::json!({"ca_id": "ca1", "serial": "0a1b", "reason": "key_compromise"}),
    );
    store.append_event(&issued).await.unwrap();
    store.append_event(&revoked).await.unwrap();
    handle.notify();

    let q = |status| DeliveryQuery {
        status: Some(status),
        ..DeliveryQuery::default()
    };
    wait_for(
        Duration::from_secs(30),
        "2 delivered and 2 dead",
        || async {
            let delivered = alerts
                .list_deliveries(&q(DeliveryStatus::Delivered))
                .await
                .unwrap();
            let dead = alerts
                .list_deliveries(&q(DeliveryStatus::Dead))
                .await
                .unwrap();
            (delivered.len() == 2 && dead.len() == 2).then_some(())
        },
    )
    .await;

    // The flaky receiver failed twice, then took it: three attempts, all signed, one event id.
    let d = alerts.get_delivery(&flaky.id, &issued.id).await.unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 3));
    let hits = rx.hits("flaky");
    assert_eq!(hits.len(), 3);
    assert!(
        hits.iter()
            .all(|h| h.signature_ok && h.event_id == issued.id)
    );
    assert_eq!(hits[2].body["id"], issued.id.as_str());
    assert_eq!(hits[2].body["type"], "certificate.issued");
    assert_eq!(hits[2].body["specversion"], "1.0");

    // The dead receiver: N attempts per event, then dead with the last error.
    let dead_rows = alerts
        .list_deliveries(&DeliveryQuery {
            subscription_id: Some(dead.id.clone()),
            ..DeliveryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(dead_rows.len(), 2);
    for r in &dead_rows {
        assert_eq!((r.status, r.attempts), (DeliveryStatus::Dead, 4));
        assert_eq!(r.last_error.as_deref(), Some("webhook answered HTTP 500"));
    }
    assert_eq!(rx.hits("dead").len(), 8);

    // Slack format: {"text": …} rendered from the templates.
    let hits = rx.hits("slack");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].signature_ok);
    let text = hits[0].body["text"].as_str().unwrap();
    assert!(
        text.starts_with("Certificate 0a1b was revoked (key_compromise)"),
        "{text}"
    );

    // The condition filtered the other CA's subscription out.
    assert!(rx.hits("other").is_empty());
    assert!(
        alerts
            .list_deliveries(&DeliveryQuery {
                subscription_id: Some(other_ca.id.clone()),
                ..DeliveryQuery::default()
            })
            .await
            .unwrap()
            .is_empty()
    );

    // Restart, even with the alerts cursor rewound: nothing is queued or sent twice.
    handle.shutdown(Duration::from_secs(5)).await;
    store.reset_sink_cursor("alerts").await.unwrap();
    let handle = shedu_events::start(store.clone(), test_webhooks(), config())
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "the alerts sink to catch up again",
        || async {
            let max = store.max_event_seq().await.unwrap();
            (store.sink_cursor("alerts").await.unwrap() == Some(max)).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        alerts
            .list_deliveries(&DeliveryQuery::default())
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(rx.hits("flaky").len(), 3);
    assert_eq!(rx.hits("slack").len(), 1);

    // A dead letter can be sent again; a delivered one cannot.
    let again = &dead_rows[0];
    alerts
        .retry_delivery(
            &dead.id,
            &again.event_id,
            &shedu_store::scratch::test_audit("delivery.retry"),
        )
        .await
        .unwrap();
    let d = alerts
        .get_delivery(&dead.id, &again.event_id)
        .await
        .unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0));
    assert!(matches!(
        alerts
            .retry_delivery(
                &flaky.id,
                &issued.id,
                &shedu_store::scratch::test_audit("delivery.retry")
            )
            .await,
        Err(shedu_events::Error::NotFound)
    ));
}

#[tokio::test]
async fn webhooks_sqlite() {
    webhooks(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn webhooks_postgres() {
    webhooks(TestBackend::Postgres).await;
}

async fn manage_subscriptions(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    let alerts = shedu_events::AlertService::new(store.clone(), test_webhooks());
    let bad = |types: Vec<&str>, channel: Channel| NewSubscription {
        event_types: types.into_iter().map(str::to_string).collect(),
        channel,
        condition: None,
    };
    let hook = webhook("http://127.0.0.1:9", "x", "s", WebhookFormat::Cloudevents);
    for (new, field) in [
        (bad(vec![], hook.clone()), "event_types"),
        (bad(vec!["certificate.is*ued"], hook.clone()), "event_types"),
        (
            bad(
                vec!["*"],
                webhook("ftp://h", "x", "s", WebhookFormat::Cloudevents),
            ),
            "channel.url",
        ),
        (bad(vec!["*"], Channel::Email { to: vec![] }), "channel.to"),
        (
            bad(
                vec!["*"],
                Channel::Email {
                    to: vec!["not an address".into()],
                },
            ),
            "channel.to",
        ),
    ] {
        match alerts
            .create_subscription(
                new,
                &shedu_store::scratch::test_audit("subscription.create"),
            )
            .await
        {
            Err(shedu_events::Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
    let a = alerts
        .create_subscription(
            bad(vec!["certificate.issued", " ca.* "], hook.clone()),
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
    assert_eq!(a.event_types, vec!["certificate.issued", "ca.*"]);
    let b = alerts
        .create_subscription(
            bad(
                vec!["certificate.status_changed"],
                Channel::Email {
                    to: vec!["PKI team <pki@example.com>".into()],
                },
            ),
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
    let list = alerts.list_subscriptions().await.unwrap();
    assert_eq!(list.len(), 2);
    // Read back, a webhook's secret is not there: it is stored sealed and opened only to sign (issue 12).
    let mut without_secret = a.clone();
    if let Channel::Webhook { secret, .. } = &mut without_secret.channel {
        assert_eq!(secret.expose(), "s", "shown on creation");
        *secret = Secret::default();
    }
    assert_eq!(
        alerts.get_subscription(&a.id).await.unwrap(),
        without_secret
    );
    assert!(
        !format!("{a:?}").contains("\"s\""),
        "secrets never in Debug"
    );
    alerts
        .delete_subscription(
            &a.id,
            &shedu_store::scratch::test_audit("subscription.delete"),
        )
        .await
        .unwrap();
    assert!(matches!(
        alerts.get_subscription(&a.id).await,
        Err(shedu_events::Error::NotFound)
    ));
    assert!(matches!(
        alerts
            .delete_subscription(
                &a.id,
                &shedu_store::scratch::test_audit("subscription.delete")
            )
            .await,
        Err(shedu_events::Error::NotFound)
    ));
    assert_eq!(alerts.list_subscriptions().await.unwrap(), vec![b]);
}

#[tokio::test]
async fn manage_subscriptions_sqlite() {
    manage_subscriptions(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn manage_subscriptions_postgres() {
    manage_subscriptions(TestBackend::Postgres).await;
}

fn cert(ca: &str, serial: &str, not_after: i64, status: &str) -> CertRow {
    CertRow {
        seq: 0,
        ca_id: ca.into(),
        serial: serial.into(),
        fingerprint: hex::encode(rand::random::<[u8; 32]>()),
        subject: format!("CN=device-{serial}"),
        sans: String::new(),
        key_type: "ec-p256".into(),
        not_before: 0,
        not_after,
        der: vec![0x30],
        status: status.into(),
        revoked_at: None,
        revocation_reason: None,
        created_at: 0,
    }
}

async fn with_certificates(store: &Store) -> i64 {
    let now = now();
    store
        .insert_ca(
            &ca_row("ca1"),
            &event("ca.created", 0),
            &shedu_store::scratch::test_audit("ca.create"),
        )
        .await
        .unwrap();
    let day = 86_400;
    for (serial, not_after, status) in [
        ("a20d", now + 20 * day, "active"),
        ("b5d", now + 5 * day, "about_to_expire"),
        ("c12h", now + day / 2, "about_to_expire"),
        ("d40d", now + 40 * day, "active"),
        ("e5d-revoked", now + 5 * day, "revoked"),
        ("f-expired", now - day, "expired"),
    ] {
        store
            .insert_certificate(
                cert("ca1", serial, not_after, status),
                event("certificate.issued", 0),
                &shedu_store::scratch::test_audit("certificate.issue"),
            )
            .await
            .unwrap();
    }
    now
}

async fn expiry_reminders(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    let now = with_certificates(&store).await;
    let n = store.emit_expiry_reminders(now, &[30, 7, 1]).await.unwrap();
    assert_eq!(n, 3, "a20d (30-day), b5d (7-day), c12h (1-day)");
    // Each tick runs these twice per threshold: they read the window through the notAfter index, never every
    // active certificate by status (SQLite has no statistics to tell them apart).
    let plan = store.explain_expiry_reminders(now, 30).await.unwrap();
    assert!(!plan.is_empty());
    if backend == TestBackend::Sqlite {
        let plan = plan.join("\n");
        assert_eq!(
            plan.matches("USING INDEX certificates_not_after (not_after>? AND not_after<?)")
                .count(),
            2,
            "{plan}"
        );
    }
    assert_eq!(
        store.emit_expiry_reminders(now, &[30, 7, 1]).await.unwrap(),
        0
    );
    // Two weeks later a20d enters the 7-day window and d40d the 30-day one: one reminder each, once.
    let later = now + 14 * 86_400;
    assert_eq!(
        store
            .emit_expiry_reminders(later, &[30, 7, 1])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .emit_expiry_reminders(later, &[30, 7, 1])
            .await
            .unwrap(),
        0
    );
    let events = store
        .list_events(0, Some("certificate.expiry_reminder"), None, 100)
        .await
        .unwrap();
    let got: Vec<(String, i64)> = events
        .iter()
        .map(|e| {
            let d: serde_json::Value = serde_json::from_str(&e.event.data).unwrap();
            (
                d["serial"].as_str().unwrap().to_string(),
                d["days_before"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a20d".to_string(), 30),
            ("b5d".to_string(), 7),
            ("c12h".to_string(), 1),
            ("d40d".to_string(), 30),
            ("a20d".to_string(), 7)
        ]
    );
    let d: serde_json::Value = serde_json::from_str(&events[0].event.data).unwrap();
    assert_eq!(d["subject"], "CN=device-a20d");
    assert_eq!(d["days_left"], 20);
    assert_eq!(events[0].event.subject, "cas/ca1/certificates/a20d");
}

#[tokio::test]
async fn expiry_reminders_sqlite() {
    expiry_reminders(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn expiry_reminders_postgres() {
    expiry_reminders(TestBackend::Postgres).await;
}

/// The reminder job inside `start`, feeding a webhook subscription.
async fn reminders_reach_subscribers(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    with_certificates(&store).await;
    let (rx, base) = receiver().await;
    let alerts = shedu_events::AlertService::new(store.clone(), test_webhooks());
    alerts
        .create_subscription(
            NewSubscription {
                event_types: vec!["certificate.expiry_reminder".into()],
                channel: webhook(&base, "remind", "r", WebhookFormat::Cloudevents),
                condition: None,
            },
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
    rx.secrets
        .lock()
        .unwrap()
        .insert("remind".into(), "r".into());
    let mut cfg = config();
    cfg.reminders = ReminderOptions {
        days_before: vec![30, 7, 1],
        interval: Duration::from_millis(100),
        ..ReminderOptions::default()
    };
    let handle = shedu_events::start(store.clone(), test_webhooks(), cfg)
        .await
        .unwrap();
    wait_for(Duration::from_secs(15), "three reminders", || async {
        (rx.hits("remind").len() >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle.shutdown(Duration::from_secs(5)).await;
    let hits = rx.hits("remind");
    assert_eq!(hits.len(), 3, "each reminder once");
    let mut serials: Vec<&str> = hits
        .iter()
        .map(|h| h.body["data"]["serial"].as_str().unwrap())
        .collect();
    serials.sort_unstable();
    assert_eq!(serials, vec!["a20d", "b5d", "c12h"]);
}

#[tokio::test]
async fn reminders_reach_subscribers_sqlite() {
    reminders_reach_subscribers(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn reminders_reach_subscribers_postgres() {
    reminders_reach_subscribers(TestBackend::Postgres).await;
}
