//! Events and alerts through the API: the outbox listing with CloudEvents fields, the live SSE stream with
//! replay, and a signed webhook delivered after a revocation.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use shedu_testkit::{TestServer, backend_test, openssl_csr};
use tokio::sync::mpsc;

/// A webhook receiver on loopback that hands every (headers, body) to the test.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes, Instant)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body, Instant::now()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

backend_test!(
    a_revocation_reaches_a_signed_webhook_and_the_event_feeds,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = server.create_ca(json!({"name": "ev", "key_type": "ec-p256", "subject": {"common_name": "Events CA"}})).await;
        let other = server.create_ca(json!({"name": "quiet", "key_type": "ec-p256", "subject": {"common_name": "Quiet"}})).await;
        let (url, mut hooks) = receiver().await;
        let (s, sub) = server
            .post(
                "/api/v1/subscriptions",
                json!({"event_types": ["certificate.revoked"],
            "channel": {"type": "webhook", "url": url}, "condition": {"ca_id": ca["id"]}}),
            )
            .await;
        assert_eq!(s, 201, "{sub}");
        let secret = sub["channel"]["secret"].as_str().unwrap().to_string();
        assert!(secret.len() >= 32, "a secret is generated and shown once");
        let (_, list) = server.get("/api/v1/subscriptions").await;
        assert!(
            !list.to_string().contains(&secret),
            "the secret is not listed: {list}"
        );
        let (s, p) = server
            .post(
                "/api/v1/subscriptions",
                json!({"event_types": ["x"], "channel": {"type": "pigeon"}}),
            )
            .await;
        assert!(s == 400 || s == 422, "{p}");

        let csr = openssl_csr(dir.path(), "k", "ec-p256", "/CN=watched", None);
        let mut serials = Vec::new();
        for c in [&ca, &other] {
            let (_, cert) = server
                .post(
                    &format!("/api/v1/cas/{}/certificates", c["id"].as_str().unwrap()),
                    json!({"csr_pem": csr}),
                )
                .await;
            serials.push(cert["serial"].as_str().unwrap().to_string());
        }
        for (c, serial) in [&ca, &other].iter().zip(&serials) {
            let (s, _) = server
                .post(
                    &format!(
                        "/api/v1/cas/{}/certificates/{serial}/revoke",
                        c["id"].as_str().unwrap()
                    ),
                    json!({"reason": "superseded"}),
                )
                .await;
            assert_eq!(s, 200);
        }
        let revoked_at = Instant::now();

        let (headers, body, got_at) = tokio::time::timeout(Duration::from_secs(20), hooks.recv())
            .await
            .unwrap()
            .unwrap();
        let sig = headers["x-shedu-signature"].to_str().unwrap();
        assert!(
            shedu_events::verify_signature(&secret, &body, sig),
            "HMAC-SHA256 signature verifies"
        );
        let event: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], "certificate.revoked");
        assert_eq!(event["data"]["serial"], serials[0].as_str());
        assert_eq!(
            headers["x-shedu-event-id"].to_str().unwrap(),
            event["id"].as_str().unwrap()
        );
        println!(
            "revoke → webhook delay: {:?}",
            got_at.duration_since(revoked_at)
        );
        // The other CA's revocation does not match the condition.
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), hooks.recv())
                .await
                .is_err(),
            "only one webhook"
        );
        let (_, deliveries) = server.get("/api/v1/deliveries?status=delivered").await;
        assert_eq!(
            deliveries["items"].as_array().unwrap().len(),
            1,
            "{deliveries}"
        );

        // The outbox, filtered, as CloudEvents.
        let (s, page) = server
            .get(&format!(
                "/api/v1/events?type=certificate.revoked&subject={}",
                serials[0]
            ))
            .await;
        assert_eq!(s, 200);
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page}");
        for field in [
            "id",
            "source",
            "type",
            "time",
            "subject",
            "data",
            "specversion",
        ] {
            assert!(!items[0][field].is_null(), "missing {field}: {}", items[0]);
        }

        // SSE replays from Last-Event-ID.
        let res = server
            .client
            .get(format!("{}/api/v1/events/stream", server.base_url))
            .bearer_auth(&server.token)
            .header("last-event-id", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        let mut res = res;
        let mut text = String::new();
        while !text.contains("certificate.revoked") {
            let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(
            text.contains("event: ca.created") && text.contains("id: 1\n"),
            "{text}"
        );
    }
);

// See: issue 12 (a subscription to a misspelt event type was accepted and never fired).
backend_test!(subscriptions_name_event_types_that_exist, |backend| {
    let server = TestServer::start(backend).await;
    let subscribe = |types: Value| {
        let server = &server;
        async move {
            server
                .post(
                    "/api/v1/subscriptions",
                    json!({"event_types": types,
                           "channel": {"type": "webhook", "url": "https://hooks.example/x"}}),
                )
                .await
        }
    };
    for bad in [
        json!(["certificate.revokd"]),
        json!(["nothing.*"]),
        json!(["ca.created", "ca.creatd"]),
    ] {
        let (s, p) = subscribe(bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {p}");
        assert_eq!(p["type"], "urn:shedu:problem:invalid-subscription", "{p}");
    }
    for good in [
        json!(["certificate.revoked"]),
        json!(["certificate.*"]),
        json!(["*"]),
        json!(["device.status_changed"]),
    ] {
        let (s, p) = subscribe(good.clone()).await;
        assert_eq!(s, 201, "{good}: {p}");
    }
});
