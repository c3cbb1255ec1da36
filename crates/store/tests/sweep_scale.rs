//! The lifecycle sweep at scale: one million certificates, a sweep that moves exactly the due ones with one
//! event each, leaves the rest, does nothing the second time, and reads only the partial indexes. Then the
//! sweep's horizons (PostgreSQL): after a wave, a sweep reads only the index entries above them, and a
//! certificate that arrives below them later (imported past due, issued inside its CA's warning window) is
//! still moved.
//! (How long it takes is measured by `sweepbench`, not here.)
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shedu_store::scratch::{ScratchDb, TestBackend};
use shedu_store::{CertRow, NewEvent, Store};

const TOTAL: usize = 1_000_000;
const DUE: usize = 10_000;
const WARN: usize = 10_000;
const NOW: i64 = 1_900_000_000;
const DAY: i64 = 86_400;

/// A fresh store with one CA, `(id, warning window in days)`.
async fn store_with_ca(backend: TestBackend, id: &str, warning_days: i64) -> (ScratchDb, Store) {
    let db = ScratchDb::new(backend).await;
    let store = Store::connect(&db.url, &shedu_store::scratch::TEST_WORDS)
        .await
        .expect("connect");
    add_ca(&store, id, warning_days).await;
    (db, store)
}

/// Adds a CA that warns `warning_days` before its certificates' notAfter.
async fn add_ca(store: &Store, id: &str, warning_days: i64) {
    let ca = shedu_store::scratch::test_ca_row(id, NOW + 3650 * DAY, warning_days);
    let ev = NewEvent {
        id: format!("e-{id}"),
        source: "/test".into(),
        ty: "ca.created".into(),
        subject: format!("cas/{id}"),
        time: 0,
        data: "{}".into(),
    };
    store
        .insert_ca(&ca, &ev, &shedu_store::scratch::test_audit("ca.create"))
        .await
        .expect("ca");
}

/// Certificate `i` (unique across CAs) of `ca_id`, in `status` until `not_after`.
fn cert(ca_id: &str, i: usize, not_after: i64, status: &str) -> CertRow {
    CertRow {
        seq: 0,
        ca_id: ca_id.into(),
        serial: format!("{i:032x}"),
        fingerprint: format!("{i:064x}"),
        subject: format!("CN=device-{i}"),
        sans: String::new(),
        key_type: "ec-p256".into(),
        not_before: NOW - 400 * DAY,
        not_after,
        der: vec![0x30, 0x00],
        status: status.into(),
        revoked_at: None,
        revocation_reason: None,
        created_at: NOW - 400 * DAY,
    }
}

async fn sweep_one_million(backend: TestBackend) {
    let (_db, store) = store_with_ca(backend, "ca1", 30).await;

    let mut batch = Vec::with_capacity(50_000);
    for i in 0..TOTAL {
        // The first DUE are past notAfter, the next WARN inside the 30-day window, the rest far out.
        let not_after = if i < DUE {
            NOW - 1 - i as i64
        } else if i < DUE + WARN {
            NOW + 10 * DAY
        } else {
            NOW + 200 * DAY + i as i64
        };
        batch.push(cert("ca1", i, not_after, "active"));
        if batch.len() == 50_000 {
            store
                .bulk_insert_certificates(&batch)
                .await
                .expect("bulk insert");
            batch.clear();
        }
    }
    store.analyze().await.expect("analyze");

    // The plans of the very statements `sweep_statuses` runs (the same text and values).
    let plan = store.explain_sweep(NOW).await.expect("explain").join("\n") + "\n";
    assert!(
        plan.contains("certificates_active_expiry"),
        "the active sweep must use its partial index:\n{plan}"
    );
    assert!(
        plan.contains("certificates_warning_expiry"),
        "the warning sweep must use its partial index:\n{plan}"
    );
    assert!(
        !plan.contains("SCAN certificates\n") && !plan.contains("Seq Scan on certificates"),
        "no full scan:\n{plan}"
    );

    let report = store.sweep_statuses(NOW).await.expect("sweep");
    assert_eq!(report.certificates_expired, DUE as u64);
    assert_eq!(report.certificates_about_to_expire, WARN as u64);

    let counts = store
        .count_certificates_by_status(Some("ca1"))
        .await
        .expect("counts");
    assert_eq!(
        counts,
        vec![
            ("about_to_expire".to_string(), WARN as i64),
            ("active".to_string(), (TOTAL - DUE - WARN) as i64),
            ("expired".to_string(), DUE as i64),
        ]
    );
    let events = store
        .list_events(0, Some("certificate.status_changed"), None, 100_000)
        .await
        .expect("events");
    assert_eq!(events.len(), DUE + WARN, "one event per transition");
    let first = &events[0].event;
    let data: serde_json::Value = serde_json::from_str(&first.data).expect("event data is JSON");
    assert_eq!(
        (
            data["from"].as_str(),
            data["to"].as_str(),
            data["serial"].as_str()
        ),
        (
            Some("active"),
            Some("expired"),
            Some(&*format!("{:032x}", 0))
        )
    );
    assert_eq!(first.subject, format!("cas/ca1/certificates/{:032x}", 0));

    let again = store.sweep_statuses(NOW).await.expect("second sweep");
    assert_eq!(again, Default::default(), "nothing is due twice");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_one_million_sqlite() {
    sweep_one_million(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_one_million_postgres() {
    sweep_one_million(TestBackend::Postgres).await;
}

/// A wave, then sweeps with nothing due and late arrivals below the horizons.
async fn sweep_horizons(backend: TestBackend) {
    const N: usize = 20_000;
    let (_db, store) = store_with_ca(backend, "wide", 30).await;
    // 5 % past notAfter and 5 % inside the 30-day window, spread over the table and over their ranges.
    let rows: Vec<CertRow> = (0..N)
        .map(|i| {
            let spread = (i as i64 * 7_919) % (29 * DAY);
            let not_after = match i % 20 {
                0 => NOW - 1 - spread,
                1 => NOW + 1 + spread,
                _ => NOW + 40 * DAY + spread,
            };
            cert("wide", i, not_after, "active")
        })
        .collect();
    store.bulk_insert_certificates(&rows).await.expect("fill");
    store.analyze().await.expect("analyze");

    let wave = store.sweep_statuses(NOW).await.expect("wave");
    assert_eq!(
        (wave.certificates_expired, wave.certificates_about_to_expire),
        (N as u64 / 20, N as u64 / 20),
        "{wave:?}"
    );

    // A minute later nothing is due: the sweep must not visit the index entries the wave left behind.
    // Statistics that know the wave's `about_to_expire` rows, as autovacuum's ANALYZE has them in a running
    // fleet (with none known, PostgreSQL may read every `about_to_expire` entry of `(status, seq)` instead of
    // the partial index's range; ANALYZE does not remove the dead entries this is about).
    store.analyze().await.expect("analyze after the wave");
    if let Some(read) = store
        .sweep_index_reads(NOW + 60)
        .await
        .expect("index reads")
    {
        assert!(
            read < 50,
            "a sweep with nothing due after a wave of {} read {read} index entries",
            N / 10
        );
    }
    let idle = store.sweep_statuses(NOW + 60).await.expect("idle sweep");
    assert_eq!(idle, Default::default());

    // Late arrivals below the horizons: an expired certificate imported as active, a short-lived one issued
    // inside its CA's window, one already flagged and past notAfter, one flagged that expires later; and a
    // new CA that warns only 7 days ahead, with a certificate due for its warning in 13 days (the `active`
    // horizon may then rise only by the narrower window).
    add_ca(&store, "narrow", 7).await;
    let late = [
        cert("wide", N + 1, NOW - 5 * DAY, "active"),
        cert("wide", N + 2, NOW + 2 * DAY, "active"),
        cert("wide", N + 3, NOW - 10, "about_to_expire"),
        cert("wide", N + 4, NOW + 190, "about_to_expire"),
        cert("narrow", N + 5, NOW + 20 * DAY, "active"),
    ];
    store.bulk_insert_certificates(&late).await.expect("late");
    let caught = store.sweep_statuses(NOW + 120).await.expect("late sweep");
    assert_eq!(
        (
            caught.certificates_expired,
            caught.certificates_about_to_expire
        ),
        (2, 1),
        "{caught:?}"
    );
    let again = store.sweep_statuses(NOW + 180).await.expect("sweep after");
    assert_eq!(again, Default::default());
    let expired = store.sweep_statuses(NOW + 200).await.expect("just expired");
    assert_eq!(expired.certificates_expired, 1, "{expired:?}");

    let early = store.sweep_statuses(NOW + 12 * DAY).await.expect("early");
    let flagged = store.sweep_statuses(NOW + 14 * DAY).await.expect("narrow");
    let narrow = store
        .count_certificates_by_status(Some("narrow"))
        .await
        .expect("narrow counts");
    assert_eq!(
        narrow,
        vec![("about_to_expire".to_string(), 1)],
        "{early:?} {flagged:?}"
    );
    let check = store.count_check().await.expect("count check");
    assert_eq!(check.maintained, check.recounted);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_horizons_sqlite() {
    sweep_horizons(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_horizons_postgres() {
    sweep_horizons(TestBackend::Postgres).await;
}
