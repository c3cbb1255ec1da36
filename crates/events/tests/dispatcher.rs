//! The dispatcher's guarantees with test sinks, on SQLite and PostgreSQL: in-order at-least-once delivery
//! through sink outages and restarts, the in-process broadcast, one dispatching replica per sink, and no
//! lost events when concurrent PostgreSQL transactions commit out of `seq` order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use shedu_events::{CloudEvent, DispatchOptions, Dispatcher, Sink, SinkError};
use shedu_store::Store;
use shedu_store::scratch::TestBackend;

async fn outage_then_restart(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        let e = event("certificate.issued", i);
        ids.push(e.id.clone());
        store.append_event(&e).await.unwrap();
    }

    // 1. The sink is down: nothing is acknowledged, the cursor stays put, the backlog waits.
    let down = RecordingSink::new("test:outage", u32::MAX);
    let calls = down.calls.clone();
    let record = down.sharing(0).received.clone();
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(down)
        .start();
    wait_for(Duration::from_secs(10), "three failed attempts", || async {
        (*calls.lock().unwrap() >= 3).then_some(())
    })
    .await;
    for i in 50..60 {
        let e = event("certificate.issued", i);
        ids.push(e.id.clone());
        store.append_event(&e).await.unwrap();
    }
    drop(handle); // a crash, not a clean shutdown
    assert_eq!(store.sink_cursor("test:outage").await.unwrap(), Some(0));

    // 2. Restart with a sink that fails twice more, then works; events keep arriving meanwhile.
    let up = RecordingSink::new("test:outage", 2);
    let received = up.received.clone();
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(up)
        .start();
    for i in 60..80 {
        let e = event("certificate.issued", i);
        ids.push(e.id.clone());
        store.append_event(&e).await.unwrap();
        handle.notify();
    }
    wait_for(Duration::from_secs(20), "80 events", || async {
        (received.lock().unwrap().len() >= 80).then_some(())
    })
    .await;
    handle.shutdown(Duration::from_secs(5)).await;
    assert!(record.lock().unwrap().is_empty());
    let got = received.lock().unwrap().clone();
    assert_exactly_in_order(&got, &ids);
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
    let max = store.max_event_seq().await.unwrap();
    assert_eq!(store.sink_cursor("test:outage").await.unwrap(), Some(max));

    // 3. A third start delivers nothing again: it resumes from the cursor.
    let again = RecordingSink::new("test:outage", 0);
    let received = again.received.clone();
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(again)
        .start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(handle);
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn outage_then_restart_sqlite() {
    outage_then_restart(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn outage_then_restart_postgres() {
    outage_then_restart(TestBackend::Postgres).await;
}

/// A sink that appends the next event while it delivers one, so the outbox does not run dry until `last`
/// events went through, and notes the stored cursor it sees at each call.
struct Busy {
    store: Store,
    last: usize,
    delivered: Arc<Mutex<usize>>,
    cursors: Arc<Mutex<Vec<Option<i64>>>>,
}

#[async_trait]
impl Sink for Busy {
    fn name(&self) -> &str {
        "test:busy"
    }

    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), SinkError> {
        let cursor = self.store.sink_cursor("test:busy").await;
        self.cursors
            .lock()
            .unwrap()
            .push(cursor.map_err(SinkError::new)?);
        let n = {
            let mut delivered = self.delivered.lock().unwrap();
            *delivered += events.len();
            *delivered
        };
        if n < self.last {
            let next = event("certificate.issued", n);
            self.store
                .append_event(&next)
                .await
                .map_err(SinkError::new)?;
        }
        Ok(())
    }
}

/// See: issue 14. A durable sink's cursor is not written per delivered batch (a commit of its own each, a
/// third of a statement per connector pairing under load): while events keep coming it is stored at most
/// every `cursor_every` (here an hour: never), and once the sink has caught up it is stored at once.
async fn cursor_writes_are_coalesced(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    let opts = DispatchOptions {
        cursor_every: Duration::from_secs(3600),
        ..fast()
    };
    let (delivered, cursors) = (Arc::default(), Arc::default());
    let sink = Busy {
        store: store.clone(),
        last: 5,
        delivered: Arc::clone(&delivered),
        cursors: Arc::clone(&cursors),
    };
    store
        .append_event(&event("certificate.issued", 0))
        .await
        .unwrap();
    let handle = Dispatcher::with_options(store.clone(), opts)
        .sink(sink)
        .start();
    let max = wait_for(
        Duration::from_secs(20),
        "5 events delivered, then the cursor stored",
        || async {
            let max = store.max_event_seq().await.unwrap();
            let done = *delivered.lock().unwrap() >= 5;
            (done && store.sink_cursor("test:busy").await.unwrap() == Some(max)).then_some(max)
        },
    )
    .await;
    handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(*delivered.lock().unwrap(), 5, "nothing twice: {cursors:?}");
    assert_eq!(
        *cursors.lock().unwrap(),
        vec![Some(0); 5],
        "no cursor write while events kept coming"
    );
    assert_eq!(store.sink_cursor("test:busy").await.unwrap(), Some(max));
}

#[tokio::test]
async fn cursor_writes_are_coalesced_sqlite() {
    cursor_writes_are_coalesced(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn cursor_writes_are_coalesced_postgres() {
    cursor_writes_are_coalesced(TestBackend::Postgres).await;
}

async fn live_broadcast(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    // Events from before the start are history, not live.
    store.append_event(&event("ca.created", 0)).await.unwrap();
    let d = Dispatcher::with_options(store.clone(), fast());
    let mut rx = d.subscribe();
    let handle = d.start();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        let e = event("certificate.issued", i);
        ids.push(e.id.clone());
        store.append_event(&e).await.unwrap();
        handle.notify();
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("live event")
            .unwrap();
        got.push(e);
    }
    assert_exactly_in_order(&got, &ids);
    assert_eq!(got[0].specversion, "1.0");
    assert_eq!(got[0].data["n"], 1);
}

#[tokio::test]
async fn live_broadcast_sqlite() {
    live_broadcast(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn live_broadcast_postgres() {
    live_broadcast(TestBackend::Postgres).await;
}

/// Two replicas (two stores on one database) dispatch the same sink: one at a time, nothing twice, and the
/// standby takes over when the active one dies.
#[tokio::test]
async fn one_replica_per_sink_postgres() {
    let (db, store_a) = store(TestBackend::Postgres).await;
    let store_b = shedu_store::Store::connect(&db.url, &shedu_store::scratch::TEST_WORDS)
        .await
        .unwrap();
    let a = RecordingSink::new("test:replicas", 0);
    let b = RecordingSink::new("test:replicas", 0);
    let (rec_a, rec_b) = (a.received.clone(), b.received.clone());
    let ha = Dispatcher::with_options(store_a.clone(), fast())
        .sink(a)
        .start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hb = Dispatcher::with_options(store_b.clone(), fast())
        .sink(b)
        .start();
    let mut ids = Vec::new();
    for i in 0..40 {
        let e = event("certificate.issued", i);
        ids.push(e.id.clone());
        store_a.append_event(&e).await.unwrap();
    }
    wait_for(
        Duration::from_secs(10),
        "40 events on replica A",
        || async { (rec_a.lock().unwrap().len() >= 40).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rec_b.lock().unwrap().is_empty(),
        "the standby replica must not dispatch"
    );

    drop(ha); // replica A dies; its lock goes with its connection
    for i in 40..60 {
        let e = event("certificate.issued", i);
        ids.push(e.id.clone());
        store_b.append_event(&e).await.unwrap();
    }
    wait_for(
        Duration::from_secs(15),
        "20 events on replica B",
        || async { (rec_b.lock().unwrap().len() >= 20).then_some(()) },
    )
    .await;
    drop(hb);
    let mut all = rec_a.lock().unwrap().clone();
    all.extend(rec_b.lock().unwrap().iter().cloned());
    assert_eq!(all.len(), 60, "no event twice without a failure");
    assert_exactly_in_order(&all, &ids);
}

/// Many concurrent writers on PostgreSQL: commit order differs from `seq` order, yet nothing is skipped.
#[tokio::test]
async fn concurrent_writers_lose_nothing_postgres() {
    let (_db, store) = store(TestBackend::Postgres).await;
    let sink = RecordingSink::new("test:concurrent", 0);
    let received = sink.received.clone();
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(sink)
        .start();
    let mut writers = Vec::new();
    for w in 0..8 {
        let s = store.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..150 {
                let e = event("certificate.issued", w * 1000 + i);
                ids.push(e.id.clone());
                s.append_event(&e).await.unwrap();
            }
            ids
        }));
    }
    let mut all_ids = std::collections::HashSet::new();
    for w in writers {
        all_ids.extend(w.await.unwrap());
    }
    wait_for(Duration::from_secs(30), "1200 events", || async {
        (received.lock().unwrap().len() >= 1200).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(handle);
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1200, "each event exactly once");
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "in seq order");
    let got_ids: std::collections::HashSet<String> = got.iter().map(|e| e.id.clone()).collect();
    assert_eq!(got_ids, all_ids);
}

/// A transaction that commits its event long after later events were committed (past the minute after which
/// the dispatcher used to give up on a gap and skip it): its event is delivered, in `seq` order, and no
/// later event overtakes it. PostgreSQL only: SQLite has one writer, so it has no such gap.
#[tokio::test]
async fn a_gap_held_open_past_a_minute_is_waited_for_not_skipped() {
    let (_db, store) = store(TestBackend::Postgres).await;
    let first = event("certificate.issued", 1);
    store.append_event(&first).await.unwrap();
    let slow = event("certificate.issued", 2);
    let held = store.append_event_held(&slow).await.unwrap();
    let third = event("certificate.issued", 3);
    store.append_event(&third).await.unwrap();

    let sink = RecordingSink::new("test:held-gap", 0);
    let received = sink.received.clone();
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(sink)
        .start();
    wait_for(
        Duration::from_secs(10),
        "the event before the gap",
        || async { (!received.lock().unwrap().is_empty()).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert_exactly_in_order(
        &received.lock().unwrap().clone(),
        std::slice::from_ref(&first.id),
    );

    held.commit().await.unwrap();
    wait_for(Duration::from_secs(10), "all three events", || async {
        (received.lock().unwrap().len() >= 3).then_some(())
    })
    .await;
    drop(handle);
    assert_exactly_in_order(
        &received.lock().unwrap().clone(),
        &[first.id, slow.id, third.id],
    );
}

/// A failed insert leaves a permanent hole in `seq` on PostgreSQL (the identity value is spent); the
/// dispatcher waits until no transaction can fill it, then steps over it. SQLite reuses the value.
async fn rolled_back_gap(backend: TestBackend) {
    let (_db, store) = store(backend).await;
    let first = event("certificate.issued", 1);
    store.append_event(&first).await.unwrap();
    let mut dup = event("certificate.issued", 2);
    dup.id = first.id.clone();
    assert!(
        store.append_event(&dup).await.is_err(),
        "duplicate id must be refused"
    );
    let third = event("certificate.issued", 3);
    store.append_event(&third).await.unwrap();
    let sink = RecordingSink::new("test:gap", 0);
    let received = sink.received.clone();
    let handle = Dispatcher::with_options(store.clone(), fast())
        .sink(sink)
        .start();
    wait_for(
        Duration::from_secs(10),
        "both events past the gap",
        || async { (received.lock().unwrap().len() >= 2).then_some(()) },
    )
    .await;
    drop(handle);
    let got = received.lock().unwrap().clone();
    assert_exactly_in_order(&got, &[first.id, third.id]);
}

#[tokio::test]
async fn rolled_back_gap_sqlite() {
    rolled_back_gap(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn rolled_back_gap_postgres() {
    rolled_back_gap(TestBackend::Postgres).await;
}
