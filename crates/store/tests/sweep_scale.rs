//! The lifecycle sweep at scale: one million certificates, a sweep that moves exactly the due ones with one
//! event each, leaves the rest, does nothing the second time, and reads only the partial indexes.
//! (How long it takes is measured by `sweepbench`, not here.)
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shedu_store::scratch::{ScratchDb, TestBackend};
use shedu_store::{CaRow, CertRow, NewEvent, Store};

const TOTAL: usize = 1_000_000;
const DUE: usize = 10_000;
const WARN: usize = 10_000;
const NOW: i64 = 1_900_000_000;
const DAY: i64 = 86_400;

async fn sweep_one_million(backend: TestBackend) {
    let db = ScratchDb::new(backend).await;
    let store = Store::connect(&db.url, &shedu_store::scratch::TEST_WORDS)
        .await
        .expect("connect");
    let ca = CaRow {
        id: "ca1".into(),
        name: "scale".into(),
        kind: "root".into(),
        parent_id: None,
        key_type: "ec-p256".into(),
        engine: None,
        key_sealed: None,
        certificate_der: vec![0x30],
        subject: "CN=scale".into(),
        serial: "01".into(),
        fingerprint: "00".repeat(32),
        not_before: 0,
        not_after: NOW + 3650 * DAY,
        status: "active".into(),
        default_validity_days: 365,
        key_usages: String::new(),
        ext_key_usages: String::new(),
        path_len: None,
        allowed_key_types: "ec-p256".into(),
        expiry_warning_days: 30,
        created_at: 0,
        name_policy: None,
    };
    let ev = NewEvent {
        id: "e0".into(),
        source: "/test".into(),
        ty: "ca.created".into(),
        subject: "cas/ca1".into(),
        time: 0,
        data: "{}".into(),
    };
    store
        .insert_ca(&ca, &ev, &shedu_store::scratch::test_audit("ca.create"))
        .await
        .expect("ca");

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
        batch.push(CertRow {
            seq: 0,
            ca_id: "ca1".into(),
            serial: format!("{i:032x}"),
            fingerprint: format!("{i:064x}"),
            subject: format!("CN=device-{i}"),
            sans: String::new(),
            key_type: "ec-p256".into(),
            not_before: NOW - 400 * DAY,
            not_after,
            der: vec![0x30, 0x00],
            status: "active".into(),
            revoked_at: None,
            revocation_reason: None,
            created_at: NOW - 400 * DAY,
        });
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
