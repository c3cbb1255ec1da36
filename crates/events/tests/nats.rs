//! NATS JetStream delivery against the test server (`SHEDU_TEST_NATS`, default 127.0.0.1:4222, JetStream
//! on), on SQLite and PostgreSQL: events arrive in order on a consumer with the CloudEvents fields and
//! `Nats-Msg-Id`; a sink that was down at first (closed port) delivers everything after a restart; and a
//! throughput figure. Each test uses its own stream and subject prefix and deletes the stream afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::*;
use futures::StreamExt;
use shedu_events::{CloudEvent, Dispatcher, EventsConfig, NatsOptions, NatsSink};
use shedu_store::scratch::TestBackend;

async fn nats() -> jetstream::Context {
    let url = nats_url();
    let client = async_nats::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "NATS with JetStream is required at {url} ({e}). Run the tests through scripts/test or scripts/services, or set SHEDU_TEST_NATS."
        )
    });
    jetstream::new(client)
}

/// Reads `n` messages from the stream, from its beginning.
async fn read_stream(
    js: &jetstream::Context,
    stream: &str,
    n: usize,
) -> Vec<(String, String, CloudEvent)> {
    let stream = wait_for(
        Duration::from_secs(15),
        "the stream created by the sink",
        || async { js.get_stream(stream).await.ok() },
    )
    .await;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut msgs = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), msgs.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", out.len()))
            .unwrap()
            .unwrap();
        let msg_id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let ce: CloudEvent = serde_json::from_slice(&m.payload).unwrap();
        out.push((m.subject.to_string(), msg_id, ce));
        m.ack().await.unwrap();
    }
    out
}

async fn in_order(backend: TestBackend) {
    let js = nats().await;
    let (_db, store) = store(backend).await;
    let stream = unique("SHEDU_TEST_");
    let prefix = unique("sheduTest");
    let mut ids = Vec::new();
    for i in 0..20 {
        let ty = if i % 2 == 0 {
            "certificate.issued"
        } else {
            "certificate.revoked"
        };
        let e = event(ty, i);
        ids.push(e.id.clone());
        store.append_event(&e).await.unwrap();
    }
    // Through the public entry point, as the server will run it.
    let config = EventsConfig {
        bus_urls: vec![format!(
            "{}?stream={stream}&subject_prefix={prefix}",
            nats_url()
        )],
        dispatch: fast(),
        ..EventsConfig::default()
    };
    let handle = shedu_events::start(store.clone(), test_webhooks(), config)
        .await
        .unwrap();
    let got = read_stream(&js, &stream, 20).await;
    handle.shutdown(Duration::from_secs(5)).await;

    let ces: Vec<CloudEvent> = got.iter().map(|g| g.2.clone()).collect();
    assert_exactly_in_order(&ces, &ids);
    for (i, (subject, msg_id, ce)) in got.iter().enumerate() {
        assert_eq!(subject, &format!("{prefix}.{}", ce.ty));
        assert_eq!(msg_id, &ce.id);
        assert_eq!(ce.specversion, "1.0");
        assert_eq!(ce.source, "/shedu");
        assert_eq!(ce.datacontenttype, "application/json");
        assert!(
            ce.time.ends_with('Z') && ce.time.contains('T'),
            "RFC 3339: {}",
            ce.time
        );
        assert_eq!(ce.data["n"], i);
    }
    js.delete_stream(&stream).await.unwrap();
}

#[tokio::test]
async fn nats_in_order_sqlite() {
    in_order(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn nats_in_order_postgres() {
    in_order(TestBackend::Postgres).await;
}

/// The bus is unreachable at first (a closed port); after a restart with the right URL every event arrives,
/// once, in order.
async fn down_then_up(backend: TestBackend) {
    let js = nats().await;
    let (_db, store) = store(backend).await;
    let stream = unique("SHEDU_TEST_");
    let prefix = unique("sheduTest");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let opts = |url: String| NatsOptions {
        timeout: Duration::from_secs(2),
        ..NatsOptions::from_url(&format!("{url}?stream={stream}&subject_prefix={prefix}")).unwrap()
    };
    let mut ids = Vec::new();
    for i in 0..30 {
        let e = event("certificate.issued", i);
        ids.push(e.id.clone());
        store.append_event(&e).await.unwrap();
    }
    let sink_name = format!("nats:{stream}");
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(NatsSink::new(opts(format!("nats://127.0.0.1:{closed}"))))
        .start();
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 30..40 {
        let e = event("certificate.issued", i);
        ids.push(e.id.clone());
        store.append_event(&e).await.unwrap();
    }
    drop(handle);
    assert_eq!(store.sink_cursor(&sink_name).await.unwrap(), Some(0));

    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(NatsSink::new(opts(nats_url())))
        .start();
    let got = read_stream(&js, &stream, 40).await;
    let max = store.max_event_seq().await.unwrap();
    wait_for(Duration::from_secs(5), "cursor at the end", || async {
        (store.sink_cursor(&sink_name).await.unwrap() == Some(max)).then_some(())
    })
    .await;
    drop(handle);
    let ces: Vec<CloudEvent> = got.into_iter().map(|g| g.2).collect();
    assert_exactly_in_order(&ces, &ids);
    let info = js
        .get_stream(&stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, 40, "nothing stored twice");
    js.delete_stream(&stream).await.unwrap();
}

#[tokio::test]
async fn nats_down_then_up_sqlite() {
    down_then_up(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn nats_down_then_up_postgres() {
    down_then_up(TestBackend::Postgres).await;
}

/// Throughput: 10,000 events already in the outbox, from dispatcher start to the cursor at the end (every
/// message acknowledged by JetStream). Printed; the assertion is only a sanity floor.
async fn throughput(backend: TestBackend) {
    let js = nats().await;
    let (_db, store) = store(backend).await;
    let stream = unique("SHEDU_TEST_");
    let prefix = unique("sheduTest");
    const N: usize = 10_000;
    let events: Vec<_> = (0..N).map(|i| event("certificate.issued", i)).collect();
    store.append_events(&events).await.unwrap();
    let max = store.max_event_seq().await.unwrap();
    let sink = NatsSink::new(
        NatsOptions::from_url(&format!(
            "{}?stream={stream}&subject_prefix={prefix}",
            nats_url()
        ))
        .unwrap(),
    );
    let name = format!("nats:{stream}");
    let start = Instant::now();
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(sink)
        .start();
    wait_for(
        Duration::from_secs(120),
        "all events acknowledged",
        || async { (store.sink_cursor(&name).await.unwrap() == Some(max)).then_some(()) },
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    drop(handle);
    let info = js
        .get_stream(&stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, N as u64);
    println!(
        "NATS JetStream ({backend:?}): {N} events in {secs:.2} s = {:.0} events/s",
        N as f64 / secs
    );
    assert!(N as f64 / secs > 200.0);
    js.delete_stream(&stream).await.unwrap();
}

#[tokio::test]
async fn nats_throughput_sqlite() {
    throughput(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn nats_throughput_postgres() {
    throughput(TestBackend::Postgres).await;
}
