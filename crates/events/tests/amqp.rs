//! RabbitMQ delivery against the test broker (`SHEDU_TEST_AMQP`, default 127.0.0.1:5672, guest/guest), on
//! SQLite and PostgreSQL: events arrive in order in a queue bound with `#` to the topic exchange, as
//! persistent messages with `message_id` = event id, routing key = type and content type
//! `application/cloudevents+json`; plus a throughput figure. Each test uses its own exchange and exclusive
//! queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use shedu_events::{AmqpOptions, AmqpSink, CloudEvent, Dispatcher, EventsConfig};
use shedu_store::scratch::TestBackend;

/// Declares `exchange` (as the sink does) and an exclusive queue bound with `#`; returns the channel and queue.
async fn bound_queue(exchange: &str) -> (Connection, Channel, String) {
    let url = amqp_url();
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!("RabbitMQ is required at {url} ({e}). Run the tests through scripts/test or scripts/services, or set SHEDU_TEST_AMQP.")
        });
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        exchange.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let queue = unique("shedu-test-q-");
    ch.queue_declare(
        queue.clone().into(),
        QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        queue.clone().into(),
        exchange.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    (conn, ch, queue)
}

struct Got {
    routing_key: String,
    message_id: String,
    content_type: String,
    persistent: bool,
    event: CloudEvent,
}

async fn consume(ch: &Channel, queue: &str, n: usize) -> Vec<Got> {
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            unique("c-").into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let d = tokio::time::timeout(Duration::from_secs(15), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", out.len()))
            .unwrap()
            .unwrap();
        let p = &d.properties;
        out.push(Got {
            routing_key: d.routing_key.to_string(),
            message_id: p
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            content_type: p
                .content_type()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            persistent: *p.delivery_mode() == Some(2),
            event: serde_json::from_slice(&d.data).unwrap(),
        });
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    out
}

async fn in_order(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    let exchange = unique("shedu.test.");
    let (conn, ch, queue) = bound_queue(&exchange).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let ty = if i % 3 == 0 {
            "certificate.revoked"
        } else {
            "certificate.issued"
        };
        let e = event(ty, i);
        ids.push(e.id.clone());
        store.append_event(&e).await.unwrap();
    }
    let config = EventsConfig {
        bus_urls: vec![format!("{}?exchange={exchange}", amqp_url())],
        dispatch: fast(),
        ..EventsConfig::default()
    };
    let handle = shedu_events::start(store.clone(), test_webhooks(), config)
        .await
        .unwrap();
    let got = consume(&ch, &queue, 20).await;
    handle.shutdown(Duration::from_secs(5)).await;

    let ces: Vec<CloudEvent> = got.iter().map(|g| g.event.clone()).collect();
    assert_exactly_in_order(&ces, &ids);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.routing_key, g.event.ty);
        assert_eq!(g.message_id, g.event.id);
        assert_eq!(g.content_type, "application/cloudevents+json");
        assert!(g.persistent);
        assert_eq!(g.event.specversion, "1.0");
        assert_eq!(g.event.data["n"], i);
    }
    ch.exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test]
async fn amqp_in_order_sqlite() {
    in_order(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn amqp_in_order_postgres() {
    in_order(TestBackend::Postgres).await;
}

/// Throughput: 10,000 events already in the outbox, from dispatcher start to the cursor at the end (every
/// message confirmed by the broker). Printed; the assertion is only a sanity floor.
async fn throughput(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    let exchange = unique("shedu.test.");
    let (conn, ch, queue) = bound_queue(&exchange).await;
    const N: usize = 10_000;
    let events: Vec<_> = (0..N).map(|i| event("certificate.issued", i)).collect();
    store.append_events(&events).await.unwrap();
    let max = store.max_event_seq().await.unwrap();
    let sink = AmqpSink::new(
        AmqpOptions::from_url(&format!("{}?exchange={exchange}", amqp_url())).unwrap(),
    );
    let name = format!("amqp:{exchange}");
    let start = Instant::now();
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(sink)
        .start();
    wait_for(Duration::from_secs(120), "all events confirmed", || async {
        (store.sink_cursor(&name).await.unwrap() == Some(max)).then_some(())
    })
    .await;
    let secs = start.elapsed().as_secs_f64();
    drop(handle);
    let got = consume(&ch, &queue, N).await;
    assert_eq!(got.len(), N);
    println!(
        "RabbitMQ ({backend:?}): {N} events in {secs:.2} s = {:.0} events/s",
        N as f64 / secs
    );
    assert!(N as f64 / secs > 200.0);
    ch.exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test]
async fn amqp_throughput_sqlite() {
    throughput(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn amqp_throughput_postgres() {
    throughput(TestBackend::Postgres).await;
}
