//! The device registry in the store, on SQLite and PostgreSQL: an enrolment writes everything or nothing, a
//! one-time secret admits exactly one enrolment, and the derived device status follows the lifecycle sweep
//! and revocation in their own transactions, with one event and one log entry per change.
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use shedu_store::bench_fill::{FleetBand, FleetSlotStatus, SyntheticFleet};
use shedu_store::scratch::{ScratchDb, TestBackend};
use shedu_store::{
    CertRow, DEVICE_DECOMMISSIONED, DEVICE_LIVE_CERTIFICATES, DEVICE_RA_MISMATCH, DeviceChanges,
    DeviceFilter, DeviceRow, EnrollmentRecord, Error, GROUP_HAS_CHILDREN, GroupRow, NewEvent,
    Store,
};

const NOW: i64 = 1_900_000_000;
const DAY: i64 = 86_400;

/// Expands an async test body over a fresh store into `<name>::sqlite` and `<name>::postgres`.
macro_rules! both {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn run(backend: TestBackend) {
                let db = ScratchDb::new(backend).await;
                let $store = Store::connect(&db.url, &shedu_store::scratch::TEST_WORDS).await.expect("connect");
                $body
                $store.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(TestBackend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(TestBackend::Postgres).await;
            }
        }
    };
}

fn event(ty: &str, subject: &str, data: Value) -> NewEvent {
    NewEvent {
        id: format!("{:032x}", rand_u128()),
        source: "/test".into(),
        ty: ty.into(),
        subject: subject.into(),
        time: NOW,
        data: data.to_string(),
    }
}

fn rand_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    (u128::from(std::process::id()) << 64) | u128::from(N.fetch_add(1, Ordering::Relaxed))
}

/// A CA row with a warning window of `warn_days`.
async fn ca(store: &Store, id: &str, warn_days: i64) {
    let row = shedu_store::scratch::test_ca_row(id, NOW + 3650 * DAY, warn_days);
    store
        .insert_ca(
            &row,
            &event("ca.created", &format!("cas/{id}"), json!({})),
            &shedu_store::scratch::test_audit("ca.create"),
        )
        .await
        .unwrap();
}

fn cert(ca_id: &str, serial: &str, not_after: i64, status: &str) -> CertRow {
    CertRow {
        seq: 0,
        ca_id: ca_id.into(),
        serial: serial.into(),
        fingerprint: format!("{ca_id}{serial:0>60}"),
        subject: format!("CN={serial}"),
        sans: String::new(),
        key_type: "ec-p256".into(),
        not_before: NOW - DAY,
        not_after,
        der: vec![0x30, 0x00],
        status: status.into(),
        revoked_at: None,
        revocation_reason: None,
        created_at: NOW,
    }
}

/// An auto-registering first enrolment of `device` through `ra1` into `ca_id`'s slot.
fn enrollment(device: &str, ca_id: &str, serial: &str, not_after: i64) -> EnrollmentRecord {
    EnrollmentRecord {
        cert: cert(ca_id, serial, not_after, "active"),
        cert_event: event(
            "certificate.issued",
            &format!("cas/{ca_id}/certificates/{serial}"),
            json!({"serial": serial}),
        ),
        device_id: device.into(),
        ra_id: "ra1".into(),
        slot: ca_id.into(),
        register: true,
        reenroll: false,
        revoke_previous: false,
        consume_secret_sha256: None,
        now: NOW,
    }
}

fn device(id: &str, ra: &str, tags: &[&str], metadata: Value) -> DeviceRow {
    DeviceRow {
        seq: 0,
        id: id.into(),
        ra_id: ra.into(),
        alias: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        metadata: metadata.to_string(),
        status: "pending_provisioning".into(),
        created_at: NOW,
        updated_at: NOW,
    }
}

async fn register(store: &Store, d: &DeviceRow) {
    let ev = event(
        "device.registered",
        &format!("devices/{}", d.id),
        json!({"device_id": d.id}),
    );
    store
        .insert_device(d, &ev, &shedu_store::scratch::test_audit("device.register"))
        .await
        .unwrap();
}

async fn event_types(store: &Store) -> Vec<String> {
    store
        .list_events(0, None, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.ty)
        .collect()
}

/// `(subject, from, to, cause)` of every `device.status_changed` event, oldest first.
async fn status_changes(store: &Store) -> Vec<(String, String, String, String)> {
    store
        .list_events(0, Some("device.status_changed"), None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let d: Value = serde_json::from_str(&e.event.data).unwrap();
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (e.event.subject, s("from"), s("to"), s("cause"))
        })
        .collect()
}

fn change(device: &str, from: &str, to: &str, cause: &str) -> (String, String, String, String) {
    (
        format!("devices/{device}"),
        from.into(),
        to.into(),
        cause.into(),
    )
}

/// The kinds of a device's log entries, newest first.
async fn log_kinds(store: &Store, id: &str) -> Vec<String> {
    store
        .device_log(id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.kind)
        .collect()
}

async fn status(store: &Store, id: &str) -> String {
    store.get_device(id).await.unwrap().status
}

fn secret_hash(s: &str) -> Vec<u8> {
    // The store compares bytes; any fixed 32-byte value stands in for a digest here.
    let mut out = s.as_bytes().to_vec();
    out.resize(32, 0);
    out
}

both!(an_enrolment_writes_device_slot_log_and_events, |store| {
    ca(&store, "ca1", 30).await;
    let outcome = store
        .record_enrollment(
            enrollment("dev-1", "ca1", "0a", NOW + 365 * DAY),
            &shedu_store::scratch::test_audit("device.enroll"),
        )
        .await
        .unwrap();
    assert!(outcome.device_created);
    assert_eq!(outcome.previous, None);
    assert_eq!(outcome.status, "fully_provisioned");

    let d = store.get_device("dev-1").await.unwrap();
    assert_eq!(
        (d.ra_id.as_str(), d.status.as_str()),
        ("ra1", "fully_provisioned")
    );
    let slot = store.device_slot("dev-1", "ca1").await.unwrap().unwrap();
    assert_eq!(
        (
            slot.active_serial.as_str(),
            slot.active_status.as_str(),
            slot.active_not_after
        ),
        ("0a", "active", NOW + 365 * DAY)
    );
    assert!(store.device_slot("dev-1", "other").await.unwrap().is_none());
    let by_cert = store
        .device_by_certificate("ca1", "0a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_cert.id, "dev-1");
    assert!(
        store
            .device_by_certificate("ca1", "0b")
            .await
            .unwrap()
            .is_none()
    );
    store.get_certificate("ca1", "0a").await.unwrap();

    assert_eq!(
        event_types(&store).await[1..],
        [
            "device.registered",
            "certificate.issued",
            "device.enrolled",
            "device.status_changed"
        ]
    );
    assert_eq!(
        status_changes(&store).await,
        [change(
            "dev-1",
            "pending_provisioning",
            "fully_provisioned",
            "enrolled"
        )]
    );
    assert_eq!(
        log_kinds(&store, "dev-1").await,
        ["status_changed", "enrolled", "registered"],
        "newest first"
    );

    // Re-enrolment into the same slot: the old certificate is superseded and revoked in the same transaction.
    let mut again = enrollment("dev-1", "ca1", "0b", NOW + 400 * DAY);
    again.reenroll = true;
    again.revoke_previous = true;
    let outcome = store
        .record_enrollment(again, &shedu_store::scratch::test_audit("device.enroll"))
        .await
        .unwrap();
    assert!(!outcome.device_created);
    assert_eq!(outcome.previous.as_deref(), Some("0a"));
    assert!(outcome.previous_revoked);
    assert_eq!(outcome.status, "fully_provisioned");
    let old = store.get_certificate("ca1", "0a").await.unwrap();
    assert_eq!(
        (old.status.as_str(), old.revocation_reason.as_deref()),
        ("revoked", Some("superseded"))
    );
    let history = store.device_certificates("dev-1").await.unwrap();
    let h: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|c| (c.serial.as_str(), c.kind.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(
        h,
        [("0a", "enroll", "revoked"), ("0b", "reenroll", "active")]
    );
    assert_eq!(
        event_types(&store).await[5..],
        [
            "certificate.issued",
            "device.reenrolled",
            "certificate.revoked"
        ],
        "no status change: the device stayed fully provisioned"
    );
});

both!(a_failed_enrolment_leaves_nothing_behind, |store| {
    ca(&store, "ca1", 30).await;
    let before = event_types(&store).await;

    // Auto-registration happens first in the transaction; a bad secret then undoes it.
    let mut bad = enrollment("dev-1", "ca1", "0a", NOW + 365 * DAY);
    bad.consume_secret_sha256 = Some(secret_hash("guess"));
    assert!(matches!(
        store
            .record_enrollment(bad, &shedu_store::scratch::test_audit("device.enroll"))
            .await,
        Err(Error::Unauthorized)
    ));
    // A serial that is taken fails the certificate insert after the device and its events were written.
    store
        .insert_certificate(
            cert("ca1", "0b", NOW + DAY, "active"),
            event("certificate.issued", "cas/ca1/certificates/0b", json!({})),
            &shedu_store::scratch::test_audit("certificate.issue"),
        )
        .await
        .unwrap();
    let before_collision = event_types(&store).await;
    assert!(matches!(
        store
            .record_enrollment(
                enrollment("dev-1", "ca1", "0b", NOW + 365 * DAY),
                &shedu_store::scratch::test_audit("device.enroll")
            )
            .await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        store.get_device("dev-1").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.get_certificate("ca1", "0a").await,
        Err(Error::NotFound)
    ));
    assert!(store.device_log("dev-1", 10).await.unwrap().is_empty());
    assert_eq!(before.len() + 1, before_collision.len());
    assert_eq!(event_types(&store).await, before_collision);

    // Missing without auto-registration; another RA's device; a decommissioned device.
    let mut missing = enrollment("dev-2", "ca1", "0c", NOW + 365 * DAY);
    missing.register = false;
    assert!(matches!(
        store
            .record_enrollment(missing, &shedu_store::scratch::test_audit("device.enroll"))
            .await,
        Err(Error::NotFound)
    ));
    register(&store, &device("dev-3", "ra2", &[], json!({}))).await;
    let stray = enrollment("dev-3", "ca1", "0d", NOW + 365 * DAY);
    let err = store
        .record_enrollment(stray, &shedu_store::scratch::test_audit("device.enroll"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { constraint: Some(c) } if c == DEVICE_RA_MISMATCH),
        "{err:?}"
    );
    let ev = event("device.decommissioned", "devices/dev-3", json!({}));
    store
        .decommission_device(
            "dev-3",
            NOW,
            &ev,
            &shedu_store::scratch::test_audit("device.decommission"),
        )
        .await
        .unwrap();
    let mut late = enrollment("dev-3", "ca1", "0e", NOW + 365 * DAY);
    late.ra_id = "ra2".into();
    let err = store
        .record_enrollment(late, &shedu_store::scratch::test_audit("device.enroll"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { constraint: Some(c) } if c == DEVICE_DECOMMISSIONED),
        "{err:?}"
    );
    for serial in ["0c", "0d", "0e"] {
        assert!(store.get_certificate("ca1", serial).await.is_err());
    }
});

both!(
    a_one_time_secret_admits_exactly_one_of_two_racing_enrolments,
    |store| {
        ca(&store, "ca1", 30).await;
        register(&store, &device("dev-1", "ra1", &[], json!({}))).await;
        let ev = event("device.enrollment_secret_set", "devices/dev-1", json!({}));
        store
            .set_device_secret(
                "dev-1",
                &secret_hash("s3cret"),
                NOW,
                &ev,
                &shedu_store::scratch::test_audit("device.enrollment_secret"),
            )
            .await
            .unwrap();
        let attempt = |serial: &str| {
            let mut r = enrollment("dev-1", "ca1", serial, NOW + 365 * DAY);
            r.consume_secret_sha256 = Some(secret_hash("s3cret"));
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record_enrollment(r, &shedu_store::scratch::test_audit("device.enroll"))
                    .await
            })
        };
        let (a, b) = (attempt("0a"), attempt("0b"));
        let results = [a.await.unwrap(), b.await.unwrap()];
        let won: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{results:?}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Unauthorized))),
            "{results:?}"
        );
        let (winner, loser) = if won[0] { ("0a", "0b") } else { ("0b", "0a") };
        store.get_certificate("ca1", winner).await.unwrap();
        assert!(store.get_certificate("ca1", loser).await.is_err());
        let mut third = enrollment("dev-1", "ca1", "0c", NOW + 365 * DAY);
        third.consume_secret_sha256 = Some(secret_hash("s3cret"));
        assert!(matches!(
            store
                .record_enrollment(third, &shedu_store::scratch::test_audit("device.enroll"))
                .await,
            Err(Error::Unauthorized)
        ));
    }
);

both!(
    racing_first_enrolments_of_a_device_admit_exactly_one,
    |store| {
        // A device created by one of the racers, and one registered before: either way the losers find the
        // winner's slot under the device's lock (on PostgreSQL, batches commit side by side).
        ca(&store, "ca1", 30).await;
        register(&store, &device("dev-old", "ra1", &[], json!({}))).await;
        for id in ["dev-new", "dev-old"] {
            let racers: Vec<_> = (0..6u8)
                .map(|n| {
                    let r = enrollment(id, "ca1", &format!("{id}-{n}"), NOW + 365 * DAY);
                    let store = store.clone();
                    tokio::spawn(async move {
                        store
                            .record_enrollment(
                                r,
                                &shedu_store::scratch::test_audit("device.enroll"),
                            )
                            .await
                    })
                })
                .collect();
            let mut won = 0;
            for racer in racers {
                match racer.await.unwrap() {
                    Ok(outcome) => {
                        won += 1;
                        assert_eq!(outcome.status, "fully_provisioned");
                        assert_eq!(outcome.previous, None);
                    }
                    Err(Error::Conflict { constraint }) => assert_eq!(
                        constraint.as_deref(),
                        Some(shedu_store::DEVICE_ALREADY_ENROLLED)
                    ),
                    Err(e) => panic!("{id}: {e:?}"),
                }
            }
            assert_eq!(won, 1, "{id}");
            assert_eq!(
                store.device_certificates(id).await.unwrap().len(),
                1,
                "{id}"
            );
            let log = log_kinds(&store, id).await;
            assert_eq!(
                log.iter().filter(|k| *k == "enrolled").count(),
                1,
                "{id}: {log:?}"
            );
        }
    }
);

// See: issue 13. First enrolments that register their device ride the certificate writer's batches (a few
// multi-row statements per batch) instead of the group writer's savepoint per enrolment; a device that
// exists (registered before, or by an earlier enrolment of the same batch) still enrols under its lock.
both!(
    first_enrolments_of_new_devices_share_the_certificate_writers_commits,
    |store| {
        ca(&store, "ca1", 30).await;
        register(&store, &device("dev-old", "ra1", &[], json!({}))).await;
        let group_before = store.group_commits();
        let racers: Vec<_> = (0..40u8)
            .map(|n| {
                let r = enrollment(
                    &format!("dev-{n}"),
                    "ca1",
                    &format!("{n:02x}"),
                    NOW + 365 * DAY,
                );
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .record_enrollment(r, &shedu_store::scratch::test_audit("device.enroll"))
                        .await
                })
            })
            .collect();
        for racer in racers {
            let outcome = racer.await.unwrap().unwrap();
            assert!(outcome.device_created);
            assert_eq!(outcome.status, "fully_provisioned");
            assert_eq!((outcome.previous, outcome.previous_revoked), (None, false));
        }
        assert_eq!(
            store.group_commits(),
            group_before,
            "no enrolment of a new device went through the group writer"
        );
        // Each device's rows as one enrolment writes them: its slot and history, its status, its log and
        // its events in order.
        let events = store.list_events(0, None, None, 10_000).await.unwrap();
        for n in 0..40u8 {
            let id = format!("dev-{n}");
            let serial = format!("{n:02x}");
            assert_eq!(status(&store, &id).await, "fully_provisioned");
            let slot = store.device_slot(&id, "ca1").await.unwrap().unwrap();
            assert_eq!(slot.active_serial, serial);
            assert_eq!(store.device_certificates(&id).await.unwrap().len(), 1);
            assert_eq!(
                log_kinds(&store, &id).await,
                ["status_changed", "enrolled", "registered"]
            );
            let subject = format!("devices/{id}");
            let issued = format!("cas/ca1/certificates/{serial}");
            let own: Vec<&str> = events
                .iter()
                .filter(|e| e.event.subject == subject || e.event.subject == issued)
                .map(|e| e.event.ty.as_str())
                .collect();
            assert_eq!(
                own,
                [
                    "device.registered",
                    "certificate.issued",
                    "device.enrolled",
                    "device.status_changed"
                ],
                "{id}"
            );
        }
        // A registered device enrols through the general path (the group writer), as before.
        let outcome = store
            .record_enrollment(
                enrollment("dev-old", "ca1", "ff", NOW + 365 * DAY),
                &shedu_store::scratch::test_audit("device.enroll"),
            )
            .await
            .unwrap();
        assert!(!outcome.device_created);
        assert_eq!(outcome.status, "fully_provisioned");
        assert!(store.group_commits() > group_before);
        assert!(matches!(
            store.verify_audit_chain(&[]).await.unwrap(),
            shedu_store::audit::AuditVerdict::Intact { records: 43, .. }
        ));
    }
);

both!(device_status_follows_the_sweep_and_revocation, |store| {
    ca(&store, "long", 30).await;
    ca(&store, "short", 30).await;
    // dev-1: two slots; only the `short` one comes near its end. dev-2: one slot, revoked below.
    // dev-3: enrolled with a certificate already inside the warning window.
    for r in [
        enrollment("dev-1", "long", "01", NOW + 200 * DAY),
        enrollment("dev-1", "short", "02", NOW + 40 * DAY),
        enrollment("dev-2", "long", "03", NOW + 200 * DAY),
    ] {
        store
            .record_enrollment(r, &shedu_store::scratch::test_audit("device.enroll"))
            .await
            .unwrap();
    }
    let mut warned = enrollment("dev-3", "short", "04", NOW + 20 * DAY);
    warned.cert.status = "about_to_expire".into();
    let outcome = store
        .record_enrollment(warned, &shedu_store::scratch::test_audit("device.enroll"))
        .await
        .unwrap();
    assert_eq!(outcome.status, "requires_action");

    let ev = event("certificate.revoked", "cas/long/certificates/03", json!({}));
    store
        .revoke_certificate(
            "long",
            "03",
            NOW + DAY,
            "key_compromise",
            None,
            &ev,
            &shedu_store::scratch::test_audit("certificate.revoke"),
        )
        .await
        .unwrap();
    assert_eq!(status(&store, "dev-2").await, "with_warnings", "at once");
    let slot = store.device_slot("dev-2", "long").await.unwrap().unwrap();
    assert_eq!(slot.active_status, "revoked");

    let report = store.sweep_statuses(NOW + 15 * DAY).await.unwrap();
    assert_eq!(report.devices_changed, 1, "{report:?}");
    assert_eq!(status(&store, "dev-1").await, "requires_action");
    let again = store.sweep_statuses(NOW + 15 * DAY).await.unwrap();
    assert_eq!(again, Default::default(), "nothing is due twice");

    let report = store.sweep_statuses(NOW + 41 * DAY).await.unwrap();
    assert_eq!(report.devices_changed, 2, "{report:?}");
    assert_eq!(status(&store, "dev-1").await, "with_warnings");
    assert_eq!(status(&store, "dev-3").await, "with_warnings");
    let slots: Vec<(String, String)> = store
        .device_slots("dev-1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.ca_id, s.active_status))
        .collect();
    assert_eq!(
        slots,
        [
            ("long".to_string(), "active".to_string()),
            ("short".to_string(), "expired".to_string())
        ]
    );
    assert_eq!(
        status_changes(&store).await,
        [
            change(
                "dev-1",
                "pending_provisioning",
                "fully_provisioned",
                "enrolled"
            ),
            change(
                "dev-2",
                "pending_provisioning",
                "fully_provisioned",
                "enrolled"
            ),
            change(
                "dev-3",
                "pending_provisioning",
                "requires_action",
                "enrolled"
            ),
            change(
                "dev-2",
                "fully_provisioned",
                "with_warnings",
                "certificate_revoked"
            ),
            change(
                "dev-1",
                "fully_provisioned",
                "requires_action",
                "lifecycle_sweep"
            ),
            change(
                "dev-1",
                "requires_action",
                "with_warnings",
                "lifecycle_sweep"
            ),
            change(
                "dev-3",
                "requires_action",
                "with_warnings",
                "lifecycle_sweep"
            ),
        ]
    );
    let log = store.device_log("dev-1", 1).await.unwrap();
    assert_eq!(
        (log[0].kind.as_str(), log[0].message.as_str()),
        ("status_changed", "requires_action -> with_warnings")
    );

    // A fresh certificate in the expired slot heals the device.
    let mut renew = enrollment("dev-1", "short", "05", NOW + 400 * DAY);
    renew.reenroll = true;
    renew.now = NOW + 41 * DAY;
    assert_eq!(
        store
            .record_enrollment(renew, &shedu_store::scratch::test_audit("device.enroll"))
            .await
            .unwrap()
            .status,
        "fully_provisioned"
    );
    // Revoking a certificate that is no longer a slot's active one leaves the status alone.
    let ev = event(
        "certificate.revoked",
        "cas/short/certificates/02",
        json!({}),
    );
    store
        .revoke_certificate(
            "short",
            "02",
            NOW + 42 * DAY,
            "superseded",
            None,
            &ev,
            &shedu_store::scratch::test_audit("certificate.revoke"),
        )
        .await
        .unwrap();
    assert_eq!(status(&store, "dev-1").await, "fully_provisioned");
    let kinds: Vec<String> = store
        .device_log("dev-1", 2)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.kind)
        .collect();
    assert_eq!(kinds, ["certificate_revoked", "status_changed"]);
});

both!(
    decommissioning_needs_every_slot_certificate_revoked_first,
    |store| {
        ca(&store, "ca1", 30).await;
        store
            .record_enrollment(
                enrollment("dev-1", "ca1", "0a", NOW + 365 * DAY),
                &shedu_store::scratch::test_audit("device.enroll"),
            )
            .await
            .unwrap();
        let ev = || {
            event(
                "device.decommissioned",
                "devices/dev-1",
                json!({"device_id": "dev-1"}),
            )
        };
        let err = store
            .decommission_device(
                "dev-1",
                NOW,
                &ev(),
                &shedu_store::scratch::test_audit("device.decommission"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Conflict { constraint: Some(c) } if c == DEVICE_LIVE_CERTIFICATES),
            "{err:?}"
        );
        let revoked = event("certificate.revoked", "cas/ca1/certificates/0a", json!({}));
        store
            .revoke_certificate(
                "ca1",
                "0a",
                NOW,
                "cessation_of_operation",
                None,
                &revoked,
                &shedu_store::scratch::test_audit("certificate.revoke"),
            )
            .await
            .unwrap();
        store
            .decommission_device(
                "dev-1",
                NOW,
                &ev(),
                &shedu_store::scratch::test_audit("device.decommission"),
            )
            .await
            .unwrap();
        assert_eq!(status(&store, "dev-1").await, "decommissioned");
        let err = store
            .decommission_device(
                "dev-1",
                NOW,
                &ev(),
                &shedu_store::scratch::test_audit("device.decommission"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Conflict { constraint: Some(c) } if c == DEVICE_DECOMMISSIONED),
            "{err:?}"
        );
        assert!(matches!(
            store
                .decommission_device(
                    "nobody",
                    NOW,
                    &ev(),
                    &shedu_store::scratch::test_audit("device.decommission")
                )
                .await,
            Err(Error::NotFound)
        ));
        assert_eq!(
            status_changes(&store).await[1..],
            [
                change(
                    "dev-1",
                    "fully_provisioned",
                    "with_warnings",
                    "certificate_revoked"
                ),
                change("dev-1", "with_warnings", "decommissioned", "decommissioned"),
            ]
        );
        // Terminal: the sweep never re-derives it.
        let report = store.sweep_statuses(NOW + 400 * DAY).await.unwrap();
        assert_eq!(report.devices_changed, 0);
        assert_eq!(status(&store, "dev-1").await, "decommissioned");
    }
);

both!(listing_filters_paginates_and_counts, |store| {
    ca(&store, "ca1", 30).await;
    for i in 0..7 {
        let ra = if i < 5 { "ra1" } else { "ra2" };
        let tags: &[&str] = if i % 2 == 0 {
            &["line-a", "even"]
        } else {
            &["line-a"]
        };
        let meta = json!({"floor": i, "site": if i < 3 { "berlin" } else { "lyon" }, "ok": i == 0, "n": "5"});
        register(&store, &device(&format!("dev-{i}"), ra, tags, meta)).await;
    }
    for i in [1, 5] {
        let mut r = enrollment(
            &format!("dev-{i}"),
            "ca1",
            &format!("0{i}"),
            NOW + 365 * DAY,
        );
        r.ra_id = if i < 5 { "ra1" } else { "ra2" }.into();
        store
            .record_enrollment(r, &shedu_store::scratch::test_audit("device.enroll"))
            .await
            .unwrap();
    }
    let ids = |p: &shedu_store::Page<DeviceRow>| -> Vec<String> {
        p.items.iter().map(|d| d.id.clone()).collect()
    };
    let page = store
        .list_devices(&DeviceFilter {
            ra_id: Some("ra1".into()),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&page), ["dev-4", "dev-3"], "newest first");
    let mut seen = ids(&page);
    let mut cursor = page.next_cursor;
    while let Some(c) = cursor {
        let next = store
            .list_devices(&DeviceFilter {
                ra_id: Some("ra1".into()),
                before_seq: Some(c),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(ids(&next));
        cursor = next.next_cursor;
    }
    assert_eq!(seen, ["dev-4", "dev-3", "dev-2", "dev-1", "dev-0"]);

    let filter = |f: DeviceFilter| {
        let store = store.clone();
        async move {
            let mut ids: Vec<String> = store
                .list_devices(&DeviceFilter { limit: 100, ..f })
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|d| d.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let meta = |pairs: &[(&str, Value)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        filter(DeviceFilter {
            tags: vec!["even".into(), "line-a".into()],
            ra_id: Some("ra1".into()),
            ..Default::default()
        })
        .await,
        ["dev-0", "dev-2", "dev-4"]
    );
    assert_eq!(
        filter(DeviceFilter {
            status: Some("fully_provisioned".into()),
            ..Default::default()
        })
        .await,
        ["dev-1", "dev-5"]
    );
    assert_eq!(
        filter(DeviceFilter {
            metadata: meta(&[("site", json!("lyon")), ("floor", json!(4))]),
            ..Default::default()
        })
        .await,
        ["dev-4"]
    );
    // JSON equality, not text: the string "5" is not the number 5, true is not 1.
    assert!(
        filter(DeviceFilter {
            metadata: meta(&[("floor", json!("4"))]),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        filter(DeviceFilter {
            metadata: meta(&[("ok", json!(true))]),
            ..Default::default()
        })
        .await,
        ["dev-0"]
    );
    assert!(
        filter(DeviceFilter {
            metadata: meta(&[("floor", json!(true))]),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert!(
        filter(DeviceFilter {
            metadata: meta(&[("n", json!(5))]),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        filter(DeviceFilter {
            metadata: meta(&[("missing", json!(null))]),
            ..Default::default()
        })
        .await
        .len(),
        0,
        "an absent key matches nothing"
    );

    let counts = store
        .count_devices_by_status(&DeviceFilter {
            tags: vec!["line-a".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        counts,
        [
            ("fully_provisioned".to_string(), 2),
            ("pending_provisioning".to_string(), 5)
        ]
    );

    // Tags are replaced as a whole, index included.
    let ev = event("device.updated", "devices/dev-0", json!({}));
    let changes = DeviceChanges {
        alias: Some(Some("Press 1".into())),
        tags: Some(vec!["line-b".into()]),
        metadata: None,
    };
    let updated = store
        .update_device(
            "dev-0",
            &changes,
            NOW + 1,
            &ev,
            &shedu_store::scratch::test_audit("device.update"),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            updated.alias.as_deref(),
            updated.tags.clone(),
            updated.updated_at
        ),
        (Some("Press 1"), vec!["line-b".to_string()], NOW + 1)
    );
    assert_eq!(
        filter(DeviceFilter {
            tags: vec!["even".into()],
            ..Default::default()
        })
        .await,
        ["dev-2", "dev-4", "dev-6"]
    );
    assert!(matches!(
        store
            .update_device(
                "nobody",
                &changes,
                NOW,
                &ev,
                &shedu_store::scratch::test_audit("device.update")
            )
            .await,
        Err(Error::NotFound)
    ));
});

both!(
    groups_chain_to_their_ancestors_and_refuse_orphaning,
    |store| {
        let group = |id: &str, parent: Option<&str>| GroupRow {
            id: id.into(),
            name: format!("group {id}"),
            parent_id: parent.map(str::to_string),
            ra_id: None,
            status: None,
            tags: vec![id.into()],
            metadata: "{}".into(),
            created_at: NOW,
        };
        let ev = |ty: &str| event(ty, "device-groups/x", json!({}));
        store
            .insert_device_group(
                &group("a", None),
                &ev("device_group.created"),
                &shedu_store::scratch::test_audit("group.create"),
            )
            .await
            .unwrap();
        store
            .insert_device_group(
                &group("b", Some("a")),
                &ev("device_group.created"),
                &shedu_store::scratch::test_audit("group.create"),
            )
            .await
            .unwrap();
        store
            .insert_device_group(
                &group("c", Some("b")),
                &ev("device_group.created"),
                &shedu_store::scratch::test_audit("group.create"),
            )
            .await
            .unwrap();
        assert!(matches!(
            store
                .insert_device_group(
                    &group("d", Some("zz")),
                    &ev("device_group.created"),
                    &shedu_store::scratch::test_audit("group.create")
                )
                .await,
            Err(Error::NotFound)
        ));
        let mut dup = group("e", None);
        dup.name = "group a".into();
        assert!(matches!(
            store
                .insert_device_group(
                    &dup,
                    &ev("device_group.created"),
                    &shedu_store::scratch::test_audit("group.create")
                )
                .await,
            Err(Error::Conflict { .. })
        ));
        let chain: Vec<String> = store
            .device_group_chain("c")
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(chain, ["c", "b", "a"]);
        assert!(matches!(
            store.device_group_chain("zz").await,
            Err(Error::NotFound)
        ));
        let err = store
            .delete_device_group(
                "b",
                &ev("device_group.deleted"),
                &shedu_store::scratch::test_audit("group.delete"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Conflict { constraint: Some(c) } if c == GROUP_HAS_CHILDREN),
            "{err:?}"
        );
        store
            .delete_device_group(
                "c",
                &ev("device_group.deleted"),
                &shedu_store::scratch::test_audit("group.delete"),
            )
            .await
            .unwrap();
        store
            .delete_device_group(
                "b",
                &ev("device_group.deleted"),
                &shedu_store::scratch::test_audit("group.delete"),
            )
            .await
            .unwrap();
        assert!(matches!(
            store
                .delete_device_group(
                    "b",
                    &ev("device_group.deleted"),
                    &shedu_store::scratch::test_audit("group.delete")
                )
                .await,
            Err(Error::NotFound)
        ));
        assert_eq!(store.list_device_groups().await.unwrap().len(), 1);
    }
);

/// The device step of the sweep at scale: a million devices (`SHEDU_DEVICE_SCALE` overrides, in multiples
/// of 100,000), each with one slot, filled by `Store::fill_synthetic_fleet`; 0.1% are due to expire and 0.1%
/// to warn. The sweep's own statements (`explain_device_sweep` explains exactly what it runs, on PostgreSQL
/// in the generic plan it may settle on) read only the slots' partial indexes and the due devices; the sweep moves exactly the due ones, with one event each, and does nothing the
/// second time.
async fn device_sweep_at_scale(backend: TestBackend) {
    let total: i64 = std::env::var("SHEDU_DEVICE_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    assert_eq!(
        total % 100_000,
        0,
        "the bands are exact per 100,000 devices"
    );
    // A sweep runs every few minutes, so what is due at once is a small share of the fleet.
    let due = total / 1000;
    let db = ScratchDb::new(backend).await;
    let store = Store::connect(&db.url, &shedu_store::scratch::TEST_WORDS)
        .await
        .expect("connect");
    ca(&store, "ca1", 30).await;
    let active = |per_100k, not_after| FleetBand {
        per_100k,
        slot: Some((FleetSlotStatus::Active, not_after)),
        decommissioned: false,
    };
    let started = std::time::Instant::now();
    store
        .fill_synthetic_fleet(&SyntheticFleet {
            ca_id: "ca1".into(),
            devices: total,
            ras: 10,
            bands: vec![
                // Past notAfter, inside the 30-day window, far out.
                active(100, NOW - 30 * DAY..NOW - 1),
                active(100, NOW + DAY..NOW + 10 * DAY),
                active(99_800, NOW + 200 * DAY..NOW + 400 * DAY),
            ],
            now: NOW,
            der_bytes: 2,
        })
        .await
        .unwrap();
    store.analyze().await.unwrap();
    println!(
        "{backend:?}: {total} devices filled in {:?}",
        started.elapsed()
    );

    let plan = store.explain_device_sweep(NOW).await.unwrap().join("\n");
    for index in ["device_slots_active_expiry", "device_slots_warning_expiry"] {
        assert!(
            plan.contains(index),
            "the slot sweep must use {index}:\n{plan}"
        );
    }
    for scan in [
        "SCAN devices\n",
        "SCAN d\n",
        "SCAN device_slots\n",
        "Seq Scan on devices",
        "Seq Scan on device_slots",
        // The devices' id index walked whole, each id checked against the due set.
        "hashed SubPlan",
    ] {
        assert!(
            !format!("{plan}\n").contains(scan),
            "no full scan ({scan:?}):\n{plan}"
        );
    }

    let started = std::time::Instant::now();
    let report = store.sweep_statuses(NOW).await.unwrap();
    println!("{backend:?}: swept in {:?}", started.elapsed());
    assert_eq!(report.devices_changed, 2 * due as u64, "{report:?}");
    assert_eq!(
        (
            report.certificates_expired,
            report.certificates_about_to_expire
        ),
        (due as u64, due as u64),
        "the slots' certificates move with them"
    );
    let counts = store
        .count_devices_by_status(&DeviceFilter::default())
        .await
        .unwrap();
    assert_eq!(
        counts,
        [
            ("fully_provisioned".to_string(), total - 2 * due),
            ("requires_action".to_string(), due),
            ("with_warnings".to_string(), due),
        ]
    );
    let events = store
        .list_events(0, Some("device.status_changed"), None, 10_000_000)
        .await
        .unwrap();
    assert_eq!(events.len() as i64, 2 * due, "one event per device");
    let again = store.sweep_statuses(NOW).await.unwrap();
    assert_eq!(again, Default::default(), "nothing is due twice");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_sweep_at_scale_sqlite() {
    device_sweep_at_scale(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_sweep_at_scale_postgres() {
    device_sweep_at_scale(TestBackend::Postgres).await;
}

/// The maintained counts (`GET /status`, the dashboard, device group counts) equal a fresh `GROUP BY` after
/// each kind of change that moves a row between statuses; `after` names the change that broke them.
async fn counts_agree(store: &Store, after: &str) {
    let check = store.count_check().await.unwrap();
    assert_eq!(check.maintained, check.recounted, "after {after}");
}

both!(maintained_counts_follow_every_status_change, |store| {
    ca(&store, "ca1", 30).await;
    ca(&store, "ca2", 30).await;
    counts_agree(&store, "nothing").await;

    // Concurrent issuance through the group-commit writer (shared batches on both databases).
    let issued = (0..64).map(|i| {
        let store = store.clone();
        async move {
            let ca_id = if i % 2 == 0 { "ca1" } else { "ca2" };
            let serial = format!("{i:02x}");
            // A quarter expire within 10 days, a quarter within 100, the rest in a year.
            let not_after = NOW + [5, 60, 365, 365][i % 4] * DAY;
            store
                .insert_certificate(
                    cert(ca_id, &serial, not_after, "active"),
                    event(
                        "certificate.issued",
                        &format!("cas/{ca_id}/certificates/{serial}"),
                        json!({}),
                    ),
                    &shedu_store::scratch::test_audit("certificate.issue"),
                )
                .await
                .unwrap();
        }
    });
    let handles: Vec<_> = issued.map(tokio::spawn).collect();
    for h in handles {
        h.await.unwrap();
    }
    counts_agree(&store, "concurrent issuance").await;
    // The expiry timeline: whole days from the counts, the ends exact (5 days is not 5 days and a second).
    let horizons = [5 * DAY, 5 * DAY + 1, 90 * DAY, 400 * DAY];
    assert_eq!(
        store.count_expiring(NOW, &horizons).await.unwrap(),
        vec![0, 16, 32, 64]
    );
    let by_status = store
        .count_certificates_by_status(Some("ca1"))
        .await
        .unwrap();
    assert_eq!(by_status, vec![("active".to_string(), 32)]);

    // An import of existing certificates in other statuses.
    let imported: Vec<CertRow> = (0..5)
        .map(|i| {
            cert(
                "ca2",
                &format!("i{i}"),
                NOW - DAY,
                if i < 2 { "revoked" } else { "expired" },
            )
        })
        .collect();
    store.bulk_insert_certificates(&imported).await.unwrap();
    counts_agree(&store, "import").await;

    // Revocation, once with the reason a hold uses.
    for (serial, reason) in [("00", "key_compromise"), ("02", "certificate_hold")] {
        let ev = event(
            "certificate.revoked",
            &format!("cas/ca1/certificates/{serial}"),
            json!({}),
        );
        store
            .revoke_certificate(
                "ca1",
                serial,
                NOW,
                reason,
                None,
                &ev,
                &shedu_store::scratch::test_audit("certificate.revoke"),
            )
            .await
            .unwrap();
    }
    counts_agree(&store, "revocation").await;

    // Devices: registration, enrolment (a shared-commit transaction), re-enrolment, an update, a secret.
    register(&store, &device("dev-0", "ra1", &["a"], json!({}))).await;
    register(&store, &device("dev-x", "ra2", &[], json!({}))).await;
    counts_agree(&store, "registration").await;
    let audit = shedu_store::scratch::test_audit("device.enroll");
    store
        .record_enrollment(enrollment("dev-1", "ca1", "e1", NOW + 5 * DAY), &audit)
        .await
        .unwrap();
    store
        .record_enrollment(enrollment("dev-2", "ca1", "e2", NOW + 365 * DAY), &audit)
        .await
        .unwrap();
    store
        .record_enrollment(enrollment("dev-0", "ca1", "e0", NOW + 365 * DAY), &audit)
        .await
        .unwrap();
    let mut again = enrollment("dev-2", "ca1", "e3", NOW + 365 * DAY);
    (again.reenroll, again.revoke_previous) = (true, true);
    store.record_enrollment(again, &audit).await.unwrap();
    counts_agree(&store, "enrolment").await;
    let ev = event("device.updated", "devices/dev-0", json!({}));
    let changes = DeviceChanges {
        tags: Some(vec!["b".into()]),
        ..Default::default()
    };
    store
        .update_device(
            "dev-0",
            &changes,
            NOW,
            &ev,
            &shedu_store::scratch::test_audit("device.update"),
        )
        .await
        .unwrap();
    let ev = event("device.secret_set", "devices/dev-x", json!({}));
    store
        .set_device_secret(
            "dev-x",
            &secret_hash("s"),
            NOW,
            &ev,
            &shedu_store::scratch::test_audit("device.secret"),
        )
        .await
        .unwrap();
    counts_agree(&store, "device update").await;

    // The sweep: about to expire, then expired, certificates and devices alike; it folds PostgreSQL's deltas.
    for at in [NOW + 2 * DAY, NOW + 70 * DAY] {
        let report = store.sweep_statuses(at).await.unwrap();
        assert!(
            report.certificates_about_to_expire + report.certificates_expired > 0
                && report.devices_changed > 0,
            "{report:?}"
        );
        counts_agree(&store, "sweep").await;
        assert_eq!(
            store.count_check().await.unwrap().pending_deltas,
            0,
            "the sweep folds the deltas"
        );
    }

    // Decommissioning (its live certificate revoked first).
    let ev = event("certificate.revoked", "cas/ca1/certificates/e3", json!({}));
    store
        .revoke_certificate(
            "ca1",
            "e3",
            NOW + 70 * DAY,
            "cessation_of_operation",
            None,
            &ev,
            &shedu_store::scratch::test_audit("certificate.revoke"),
        )
        .await
        .unwrap();
    let ev = event("device.decommissioned", "devices/dev-2", json!({}));
    store
        .decommission_device(
            "dev-2",
            NOW + 70 * DAY,
            &ev,
            &shedu_store::scratch::test_audit("device.decommission"),
        )
        .await
        .unwrap();
    counts_agree(&store, "decommission").await;
    let ra1 = DeviceFilter {
        ra_id: Some("ra1".into()),
        ..Default::default()
    };
    let counted = store.count_devices_by_status(&ra1).await.unwrap();
    assert_eq!(
        counted.iter().map(|(_, n)| n).sum::<i64>(),
        3,
        "{counted:?}"
    );
    let decommissioned = DeviceFilter {
        status: Some("decommissioned".into()),
        ..ra1
    };
    assert_eq!(
        store
            .count_devices_by_status(&decommissioned)
            .await
            .unwrap(),
        vec![("decommissioned".to_string(), 1)]
    );
});
