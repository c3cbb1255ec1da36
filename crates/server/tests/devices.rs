//! The device registry through the API, on SQLite and PostgreSQL: pre-registration, one-time secrets used by
//! real enrolments (core EST with openssl CSRs), listing and detail, groups with live counts, status that
//! follows the clock and revocation, and decommissioning judged by `openssl ocsp`.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};
use shedu_core::{AuditContext, AuthMode, EstOperation, EstRequest, Ra, RaInput};
use shedu_testkit::{TestServer, backend_test, openssl, openssl_csr};
use zeroize::Zeroizing;

const DAY: i64 = 86_400;

/// A method, path and optional JSON body with the admin token (or `token`); status and JSON back.
async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server
        .client
        .request(method, format!("{}{path}", server.base_url))
        .bearer_auth(token.unwrap_or(&server.token));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A root CA issuing 40-day certificates with a 30-day warning window, and an RA that enrols pre-registered
/// devices with one-time secrets for it.
async fn pki(server: &TestServer) -> (Value, Ra) {
    let ca = server
        .create_ca(json!({"name": "devices", "key_type": "ec-p256", "subject": {"common_name": "Device CA"},
            "profile": {"default_validity_days": 40, "expiry_warning_days": 30}}))
        .await;
    let ra = server
        .services
        .enrollment
        .create_ra(
            &AuditContext::new("test", "", "admin", "", ""),
            RaInput {
                name: "line".into(),
                ca_ids: vec![ca["id"].as_str().unwrap().to_string()],
                auth_modes: vec![AuthMode::OneTimeSecret],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (ca, ra)
}

/// Pre-registers `id` through the API.
async fn register(server: &TestServer, ra: &Ra, id: &str, tags: Value, metadata: Value) {
    let (s, d) = server
        .post(
            "/api/v1/devices",
            json!({"id": id, "ra_id": ra.id, "tags": tags, "metadata": metadata}),
        )
        .await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["status"], "pending_provisioning");
}

/// A fresh one-time secret for `id` through the API.
async fn secret(server: &TestServer, id: &str) -> String {
    let (s, body) = server
        .post(
            &format!("/api/v1/devices/{id}/enrollment-secret"),
            json!({}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    body["secret"].as_str().unwrap().to_string()
}

/// Enrols `id` with `secret` the way the EST endpoint does (CSR from openssl, CN = device id); returns the
/// certificate's PEM and serial.
async fn enroll(
    server: &TestServer,
    ra: &Ra,
    dir: &Path,
    id: &str,
    secret: &str,
) -> Result<(String, String), shedu_core::Error> {
    let csr_pem = openssl_csr(dir, id, "ec-p256", &format!("/CN={id}"), None);
    let body: String = csr_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let csr_der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let issued = server
        .services
        .enrollment
        .est_enroll(
            &AuditContext::new("device", "", "device", "", ""),
            ra,
            EstRequest {
                operation: EstOperation::Enroll,
                csr_der,
                client_chain: Vec::new(),
                secret_user: Some(id.to_string()),
                secret: Some(Zeroizing::new(secret.to_string())),
            },
        )
        .await?;
    let info = shedu_pki::CertInfo::from_der(&issued.certificate_der).unwrap();
    Ok((
        shedu_pki::pem_encode_cert(&issued.certificate_der),
        info.serial.to_hex(),
    ))
}

/// Registers and enrols `id`; returns its certificate's PEM and serial.
async fn provision(server: &TestServer, ra: &Ra, dir: &Path, id: &str) -> (String, String) {
    register(server, ra, id, json!([]), json!({})).await;
    let s = secret(server, id).await;
    enroll(server, ra, dir, id, &s).await.unwrap()
}

async fn device_status(server: &TestServer, id: &str) -> String {
    let (s, d) = server.get(&format!("/api/v1/devices/{id}")).await;
    assert_eq!(s, 200, "{d}");
    d["status"].as_str().unwrap().to_string()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

backend_test!(
    devices_are_registered_enrolled_listed_and_shown,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let (ca, ra) = pki(&server).await;
        for i in 0..5 {
            let tags = if i % 2 == 0 {
                json!(["line-a", "even"])
            } else {
                json!(["line-a"])
            };
            register(&server, &ra, &format!("dev-{i}"), tags, json!({"floor": i})).await;
        }
        let mut serials = Vec::new();
        for i in [0, 1, 2] {
            let id = format!("dev-{i}");
            let s = secret(&server, &id).await;
            let (_, serial) = enroll(&server, &ra, dir.path(), &id, &s).await.unwrap();
            serials.push(serial);
            // The secret was consumed by that enrolment.
            let again = enroll(&server, &ra, dir.path(), &id, &s).await;
            assert!(
                matches!(again, Err(shedu_core::Error::Forbidden { .. })),
                "{again:?}"
            );
        }

        // Newest first, two per page, every device once.
        let mut seen = Vec::new();
        let mut path = format!("/api/v1/devices?ra_id={}&limit=2", ra.id);
        loop {
            let (s, page) = server.get(&path).await;
            assert_eq!(s, 200, "{page}");
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/devices?ra_id={}&limit=2&cursor={c}", ra.id),
                None => break,
            }
        }
        assert_eq!(seen, ["dev-4", "dev-3", "dev-2", "dev-1", "dev-0"]);
        let (_, page) = server.get("/api/v1/devices?status=fully_provisioned").await;
        assert_eq!(ids(&page), ["dev-2", "dev-1", "dev-0"]);
        let (_, page) = server
            .get("/api/v1/devices?status=pending_provisioning&tag=even")
            .await;
        assert_eq!(ids(&page), ["dev-4"]);
        let (_, page) = server.get("/api/v1/devices?ra_id=nobody").await;
        assert!(ids(&page).is_empty());
        let (s, p) = server.get("/api/v1/devices?status=sleepy").await;
        assert_eq!(s, 400, "{p}");

        let (s, d) = server.get("/api/v1/devices/dev-1").await;
        assert_eq!(s, 200, "{d}");
        assert_eq!(
            (
                d["ra_id"].as_str(),
                d["status"].as_str(),
                d["metadata"]["floor"].as_i64()
            ),
            (Some(ra.id.as_str()), Some("fully_provisioned"), Some(1))
        );
        let slots = d["slots"].as_array().unwrap();
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0]["ca_id"], ca["id"]);
        assert_eq!(slots[0]["active"]["serial"], serials[1].as_str());
        assert_eq!(slots[0]["active"]["status"], "active");
        assert!(slots[0]["active"]["not_after"].is_string());
        assert_eq!(slots[0]["history"].as_array().unwrap().len(), 1);
        assert_eq!(slots[0]["history"][0]["kind"], "enroll");
        let kinds: Vec<&str> = d["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["status_changed", "enrolled", "secret_set", "registered"],
            "newest first"
        );
        assert_eq!(d["events"][0]["data"]["to"], "fully_provisioned");
        let (_, pending) = server.get("/api/v1/devices/dev-4").await;
        assert_eq!(pending["slots"], json!([]));

        // Edit; the secret is never shown again.
        let (s, d) = call(
            &server,
            "PATCH",
            "/api/v1/devices/dev-4",
            Some(json!({"alias": "Press 4", "tags": ["line-b"]})),
            None,
        )
        .await;
        assert_eq!(s, 200, "{d}");
        assert_eq!(
            (d["alias"].as_str(), d["tags"].clone()),
            (Some("Press 4"), json!(["line-b"]))
        );
        let one_time = secret(&server, "dev-4").await;
        let (_, detail) = server.get("/api/v1/devices/dev-4").await;
        assert!(!detail.to_string().contains(&one_time), "{detail}");
        let (_, events) = server.get("/api/v1/events?subject=devices/dev-4").await;
        assert!(!events.to_string().contains(&one_time));

        // Errors.
        let (s, _) = server.get("/api/v1/devices/nobody").await;
        assert_eq!(s, 404);
        let (s, p) = server
            .post("/api/v1/devices", json!({"id": "dev-0", "ra_id": ra.id}))
            .await;
        assert_eq!(
            (s, p["type"].as_str()),
            (409, Some("urn:shedu:problem:device-exists"))
        );
        let (s, _) = server
            .post(
                "/api/v1/devices",
                json!({"id": "dev-x", "ra_id": "no-such-ra"}),
            )
            .await;
        assert_eq!(s, 404);
        let (s, p) = server
            .post(
                "/api/v1/devices",
                json!({"id": "dev-y", "ra_id": ra.id, "tags": ["a,b"]}),
            )
            .await;
        assert_eq!(
            (s, p["type"].as_str()),
            (400, Some("urn:shedu:problem:invalid-tag"))
        );
        let (s, _) = call(
            &server,
            "PATCH",
            "/api/v1/devices/nobody",
            Some(json!({})),
            None,
        )
        .await;
        assert_eq!(s, 404);

        // Auditors read the registry but do not change it.
        let (s, key) = server
            .post(
                "/api/v1/api-keys",
                json!({"name": "audit", "role": "auditor"}),
            )
            .await;
        assert_eq!(s, 201, "{key}");
        let auditor = key["key"].as_str().unwrap();
        assert_eq!(
            call(&server, "GET", "/api/v1/devices", None, Some(auditor))
                .await
                .0,
            200
        );
        assert_eq!(
            call(&server, "GET", "/api/v1/device-groups", None, Some(auditor))
                .await
                .0,
            200
        );
        let body = json!({"id": "dev-z", "ra_id": ra.id});
        assert_eq!(
            call(
                &server,
                "POST",
                "/api/v1/devices",
                Some(body),
                Some(auditor)
            )
            .await
            .0,
            403
        );
        assert_eq!(
            call(
                &server,
                "POST",
                "/api/v1/devices/dev-3/decommission",
                None,
                Some(auditor)
            )
            .await
            .0,
            403
        );

        // Each change left its audit record, written in the change's transaction.
        for (action, target) in [
            ("device.register", "dev-0"),
            ("device.update", "dev-4"),
            ("device.enrollment_secret", "dev-4"),
        ] {
            let (_, audit) = server.get(&format!("/api/v1/audit?action={action}")).await;
            let found = audit["items"].as_array().unwrap().iter().any(|r| {
                r["target"] == target && r["outcome"] == "success" && r["principal"].is_string()
            });
            assert!(found, "{action} {target}: {audit}");
        }
    }
);

backend_test!(groups_nest_and_count_their_devices_by_status, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, ra) = pki(&server).await;
    for (id, tags, site) in [
        ("a-1", json!(["line-a"]), "lyon"),
        ("a-2", json!(["line-a"]), "lyon"),
        ("a-3", json!(["line-a"]), "berlin"),
        ("b-1", json!(["line-b"]), "lyon"),
    ] {
        register(&server, &ra, id, tags, json!({"site": site})).await;
    }
    let (_, serial) = {
        let s = secret(&server, "a-1").await;
        enroll(&server, &ra, dir.path(), "a-1", &s).await.unwrap()
    };
    let s = secret(&server, "a-2").await;
    enroll(&server, &ra, dir.path(), "a-2", &s).await.unwrap();

    let (s, parent) = server
        .post(
            "/api/v1/device-groups",
            json!({"name": "line A", "ra_id": ra.id, "tags": ["line-a"]}),
        )
        .await;
    assert_eq!(s, 201, "{parent}");
    let (s, child) = server
        .post(
            "/api/v1/device-groups",
            json!({"name": "line A, Lyon", "parent_id": parent["id"], "metadata": {"site": "lyon"}}),
        )
        .await;
    assert_eq!(s, 201, "{child}");
    let path = |g: &Value| format!("/api/v1/device-groups/{}", g["id"].as_str().unwrap());

    let (s, detail) = server.get(&path(&child)).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(
        detail["combined_filter"],
        json!({"ra_id": ra.id, "status": null, "tags": ["line-a"], "metadata": {"site": "lyon"}})
    );
    assert_eq!(
        detail["metadata"],
        json!({"site": "lyon"}),
        "its own filter"
    );
    assert_eq!(
        detail["counts"],
        json!({"pending_provisioning": 0, "fully_provisioned": 2, "requires_action": 0,
               "with_warnings": 0, "decommissioned": 0, "total": 2})
    );
    let (_, detail) = server.get(&path(&parent)).await;
    assert_eq!(detail["counts"]["pending_provisioning"], 1);
    assert_eq!(detail["counts"]["total"], 3);

    // Counts are live: a revocation moves a device at once.
    let (s, r) = server
        .post(
            &format!(
                "/api/v1/cas/{}/certificates/{serial}/revoke",
                ca["id"].as_str().unwrap()
            ),
            json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (_, detail) = server.get(&path(&child)).await;
    assert_eq!(
        (
            detail["counts"]["fully_provisioned"].as_i64(),
            detail["counts"]["with_warnings"].as_i64()
        ),
        (Some(1), Some(1))
    );

    let (s, p) = server
        .post(
            "/api/v1/device-groups",
            json!({"name": "contradiction", "parent_id": child["id"], "metadata": {"site": "berlin"}}),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (400, Some("urn:shedu:problem:group-filter-contradiction"))
    );
    let (s, _) = server
        .post(
            "/api/v1/device-groups",
            json!({"name": "orphan", "parent_id": "nope"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = server
        .post("/api/v1/device-groups", json!({"name": "line A"}))
        .await;
    assert_eq!(s, 409);
    let (s, list) = server.get("/api/v1/device-groups").await;
    assert_eq!((s, list["items"].as_array().unwrap().len()), (200, 2));

    let (s, p) = call(&server, "DELETE", &path(&parent), None, None).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (409, Some("urn:shedu:problem:group-has-children"))
    );
    assert_eq!(
        call(&server, "DELETE", &path(&child), None, None).await.0,
        204
    );
    assert_eq!(
        call(&server, "DELETE", &path(&parent), None, None).await.0,
        204
    );
    assert_eq!(server.get(&path(&parent)).await.0, 404);
    let (_, audit) = server.get("/api/v1/audit?action=group.delete").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
});

backend_test!(
    device_status_follows_the_clock_and_revocation_at_once,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let (ca, ra) = pki(&server).await;
        provision(&server, &ra, dir.path(), "steady").await;
        let (_, doomed) = provision(&server, &ra, dir.path(), "doomed").await;
        assert_eq!(device_status(&server, "steady").await, "fully_provisioned");

        let (s, r) = server
            .post(
                &format!(
                    "/api/v1/cas/{}/certificates/{doomed}/revoke",
                    ca["id"].as_str().unwrap()
                ),
                json!({"reason": "key_compromise"}),
            )
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            device_status(&server, "doomed").await,
            "with_warnings",
            "no sweep needed"
        );

        // 40-day certificates, 30-day window: after 15 days they are about to expire, after 41 expired.
        server.clock.advance(15 * DAY);
        let report = server.services.issuance.sweep().await.unwrap();
        assert_eq!(report.devices_changed, 1, "{report:?}");
        assert_eq!(device_status(&server, "steady").await, "requires_action");
        let (_, page) = server.get("/api/v1/devices?status=requires_action").await;
        assert_eq!(ids(&page), ["steady"]);
        let (_, d) = server.get("/api/v1/devices/steady").await;
        assert_eq!(d["slots"][0]["active"]["status"], "about_to_expire");

        server.clock.advance(26 * DAY);
        let report = server.services.issuance.sweep().await.unwrap();
        assert_eq!(report.devices_changed, 1, "{report:?}");
        assert_eq!(device_status(&server, "steady").await, "with_warnings");
        assert_eq!(
            server.services.issuance.sweep().await.unwrap(),
            Default::default()
        );

        let (_, events) = server
            .get("/api/v1/events?type=device.status_changed&limit=100")
            .await;
        let changes: Vec<(String, String, String, String)> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let d = &e["data"];
                let s = |k: &str| d[k].as_str().unwrap().to_string();
                (s("device_id"), s("from"), s("to"), s("cause"))
            })
            .collect();
        let change = |d: &str, from: &str, to: &str, cause: &str| {
            (
                d.to_string(),
                from.to_string(),
                to.to_string(),
                cause.to_string(),
            )
        };
        assert_eq!(
            changes,
            [
                change(
                    "steady",
                    "pending_provisioning",
                    "fully_provisioned",
                    "enrolled"
                ),
                change(
                    "doomed",
                    "pending_provisioning",
                    "fully_provisioned",
                    "enrolled"
                ),
                change(
                    "doomed",
                    "fully_provisioned",
                    "with_warnings",
                    "certificate_revoked"
                ),
                change(
                    "steady",
                    "fully_provisioned",
                    "requires_action",
                    "lifecycle_sweep"
                ),
                change(
                    "steady",
                    "requires_action",
                    "with_warnings",
                    "lifecycle_sweep"
                ),
            ]
        );
    }
);

backend_test!(
    decommissioning_revokes_the_certificates_and_ocsp_says_so,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca, ra) = pki(&server).await;
        let (pem, serial) = provision(&server, &ra, d, "retiree").await;
        std::fs::write(d.join("ca.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();
        std::fs::write(d.join("leaf.pem"), pem).unwrap();
        let ocsp = || {
            let url = format!("{}/ocsp", server.http_url);
            openssl(
                d,
                &[
                    "ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-url", &url, "-CAfile",
                    "ca.pem",
                ],
            )
            .1
        };
        let out = ocsp();
        assert!(
            out.contains("Response verify OK") && out.contains("leaf.pem: good"),
            "{out}"
        );

        let (s, dev) = server
            .post("/api/v1/devices/retiree/decommission", json!({}))
            .await;
        assert_eq!(s, 200, "{dev}");
        assert_eq!(dev["status"], "decommissioned");
        let (_, cert) = server
            .get(&format!(
                "/api/v1/cas/{}/certificates/{serial}",
                ca["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(
            (cert["status"].as_str(), cert["revocation_reason"].as_str()),
            (Some("revoked"), Some("cessation_of_operation"))
        );
        let out = ocsp();
        assert!(
            out.contains("Response verify OK") && out.contains("leaf.pem: revoked"),
            "{out}"
        );
        assert!(out.contains("cessationOfOperation"), "{out}");

        // Terminal: no second decommission, no new secret, no enrolment.
        let (s, p) = server
            .post("/api/v1/devices/retiree/decommission", json!({}))
            .await;
        assert_eq!(
            (s, p["type"].as_str()),
            (409, Some("urn:shedu:problem:device-decommissioned"))
        );
        let (s, _) = server
            .post("/api/v1/devices/retiree/enrollment-secret", json!({}))
            .await;
        assert_eq!(s, 409);
        assert!(
            enroll(&server, &ra, d, "retiree", "anything")
                .await
                .is_err()
        );
        let (s, _) = server
            .post("/api/v1/devices/nobody/decommission", json!({}))
            .await;
        assert_eq!(s, 404);

        let (_, detail) = server.get("/api/v1/devices/retiree").await;
        let kinds: Vec<&str> = detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds[..4],
            [
                "decommissioned",
                "status_changed",
                "status_changed",
                "certificate_revoked"
            ]
        );
        assert_eq!(detail["slots"][0]["active"]["status"], "revoked");
        let types = server.cas_events().await;
        assert!(
            types.contains(&"device.decommissioned".to_string()),
            "{types:?}"
        );
    }
);

backend_test!(
    decommissioning_revokes_superseded_certificates_too,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca, _) = pki(&server).await;
        let ca_id = ca["id"].as_str().unwrap();
        // Re-enrolment is open at once (the window is longer than the certificates live); revoke_on_reenroll
        // is off, so the first certificate stays valid next to the new one.
        let ra = server
            .services
            .enrollment
            .create_ra(
                &AuditContext::new("test", "", "admin", "", ""),
                RaInput {
                    name: "renewing line".into(),
                    ca_ids: vec![ca_id.to_string()],
                    auth_modes: vec![AuthMode::OneTimeSecret],
                    reenroll_window_days: Some(3650),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (first_pem, first_serial) = provision(&server, &ra, d, "veteran").await;
        let first_der = base64::engine::general_purpose::STANDARD
            .decode(
                first_pem
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let csr_pem = openssl_csr(d, "veteran-2", "ec-p256", "/CN=veteran", None);
        let csr_der = base64::engine::general_purpose::STANDARD
            .decode(
                csr_pem
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let renewed = server
            .services
            .enrollment
            .est_enroll(
                &AuditContext::new("device", "", "veteran", "", ""),
                &ra,
                EstRequest {
                    operation: EstOperation::Reenroll,
                    csr_der,
                    client_chain: vec![first_der],
                    secret_user: None,
                    secret: None,
                },
            )
            .await
            .unwrap();
        std::fs::write(d.join("ca.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();
        std::fs::write(d.join("first.pem"), &first_pem).unwrap();
        std::fs::write(
            d.join("second.pem"),
            shedu_pki::pem_encode_cert(&renewed.certificate_der),
        )
        .unwrap();
        let ocsp = |leaf: &str| {
            let url = format!("{}/ocsp", server.http_url);
            openssl(
                d,
                &[
                    "ocsp", "-issuer", "ca.pem", "-cert", leaf, "-url", &url, "-CAfile", "ca.pem",
                ],
            )
            .1
        };
        for leaf in ["first.pem", "second.pem"] {
            let out = ocsp(leaf);
            assert!(
                out.contains("Response verify OK") && out.contains(&format!("{leaf}: good")),
                "{out}"
            );
        }

        let (s, dev) = server
            .post("/api/v1/devices/veteran/decommission", json!({}))
            .await;
        assert_eq!(s, 200, "{dev}");
        for leaf in ["first.pem", "second.pem"] {
            let out = ocsp(leaf);
            assert!(
                out.contains("Response verify OK") && out.contains(&format!("{leaf}: revoked")),
                "{out}"
            );
        }
        let (_, cert) = server
            .get(&format!("/api/v1/cas/{ca_id}/certificates/{first_serial}"))
            .await;
        assert_eq!(
            (cert["status"].as_str(), cert["revocation_reason"].as_str()),
            (Some("revoked"), Some("cessation_of_operation"))
        );
    }
);

backend_test!(an_ra_whose_devices_are_live_cannot_be_deleted, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, ra) = pki(&server).await;
    provision(&server, &ra, dir.path(), "tied").await;
    register(&server, &ra, "waiting", json!([]), json!({})).await;
    let path = format!("/api/v1/ras/{}", ra.id);
    let delete = || call(&server, "DELETE", &path, None, None);

    // Enrolled or only registered, each device would be stranded without its RA.
    for id in ["tied", "waiting"] {
        let (s, p) = delete().await;
        assert_eq!(
            (s, p["type"].as_str()),
            (409, Some("urn:shedu:problem:ra-has-devices")),
            "{p}"
        );
        let (s, _) = server.get(&path).await;
        assert_eq!(s, 200, "the RA is still there");
        let (s, dev) = server
            .post(&format!("/api/v1/devices/{id}/decommission"), json!({}))
            .await;
        assert_eq!(s, 200, "{dev}");
    }

    // Decommissioned devices never enrol again: the RA strands nothing and may go.
    let (s, p) = delete().await;
    assert_eq!(s, 204, "{p}");
    let (s, _) = server.get(&path).await;
    assert_eq!(s, 404);
});
