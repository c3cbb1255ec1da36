//! Shared helpers for the event delivery tests: scratch stores, events, fast options, waiting.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use shedu_events::{CloudEvent, DispatchOptions, Sink, SinkError};
use shedu_store::scratch::{ScratchDb, TestBackend};
use shedu_store::{CaRow, NewEvent, Store};

/// The NATS server (JetStream on) of the bus tests: `SHEDU_TEST_NATS`, which `scripts/test` sets when it
/// starts its own, or the local default.
pub fn nats_url() -> String {
    std::env::var("SHEDU_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The RabbitMQ broker (user guest) of the bus tests: `SHEDU_TEST_AMQP`, which `scripts/test` sets when it
/// starts its own, or the local default.
pub fn amqp_url() -> String {
    std::env::var("SHEDU_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub async fn store(backend: TestBackend) -> (ScratchDb, Store) {
    let db = ScratchDb::new(backend).await;
    let store = Store::connect(&db.url, &shedu_store::scratch::TEST_WORDS)
        .await
        .expect("connect");
    (db, store)
}

/// The webhook policy and secret sealing of these tests: one master key per test process, and the tests'
/// receivers on 127.0.0.1 allowed (the default policy refuses loopback).
pub fn test_webhooks() -> Arc<shedu_core::Webhooks> {
    static HOOKS: std::sync::LazyLock<Arc<shedu_core::Webhooks>> = std::sync::LazyLock::new(|| {
        Arc::new(
            shedu_core::Webhooks::new(
                &shedu_keys::MasterKey::generate(),
                shedu_core::TargetPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]),
            )
            .unwrap(),
        )
    });
    HOOKS.clone()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 5]>()))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An event with a fresh id; `n` goes into `data.n` so order can be checked.
pub fn event(ty: &str, n: usize) -> NewEvent {
    event_with(
        ty,
        serde_json::json!({ "n": n, "ca_id": "ca1", "serial": format!("{n:04x}") }),
    )
}

pub fn event_with(ty: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        id: hex::encode(rand::random::<[u8; 16]>()),
        source: "/shedu".into(),
        ty: ty.into(),
        subject: "cas/ca1/certificates/01".into(),
        time: now(),
        data: data.to_string(),
    }
}

/// Options with short delays, for tests.
pub fn fast() -> DispatchOptions {
    DispatchOptions {
        poll_interval: Duration::from_millis(50),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        lock_retry: Duration::from_millis(200),
        lock_check: Duration::from_millis(200),
        gap_grace: Duration::from_millis(200),
        ..DispatchOptions::default()
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A sink that records what it receives and fails its first `fail` calls (or always when `fail == u32::MAX`).
pub struct RecordingSink {
    pub name: String,
    pub fail: u32,
    pub calls: Arc<Mutex<u32>>,
    pub received: Arc<Mutex<Vec<CloudEvent>>>,
}

impl RecordingSink {
    pub fn new(name: &str, fail: u32) -> RecordingSink {
        RecordingSink {
            name: name.to_string(),
            fail,
            calls: Arc::default(),
            received: Arc::default(),
        }
    }

    /// Another sink with the same name writing into the same record.
    pub fn sharing(&self, fail: u32) -> RecordingSink {
        RecordingSink {
            name: self.name.clone(),
            fail,
            calls: Arc::default(),
            received: self.received.clone(),
        }
    }
}

#[async_trait]
impl Sink for RecordingSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), SinkError> {
        let n = {
            let mut c = self.calls.lock().unwrap();
            *c += 1;
            *c
        };
        if self.fail == u32::MAX || n <= self.fail {
            return Err(SinkError::new(format!("test failure {n}")));
        }
        self.received.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// Checks that `received`, de-duplicated by id, is exactly `expected` ids in order.
pub fn assert_exactly_in_order(received: &[CloudEvent], expected: &[String]) {
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<&str> = received
        .iter()
        .filter(|e| seen.insert(e.id.clone()))
        .map(|e| e.id.as_str())
        .collect();
    let exp: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(ids.len(), exp.len(), "unique events received vs appended");
    assert!(ids == exp, "events out of order or different");
}

/// A CA row to hang certificates on.
pub fn ca_row(id: &str) -> CaRow {
    shedu_store::scratch::test_ca_row(id, now() + 3650 * 86_400, 30)
}
