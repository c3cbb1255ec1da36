//! Events and alerts through the API: the outbox listing with CloudEvents fields, the live SSE stream with
//! replay, a signed webhook delivered after a revocation, webhook secrets sealed at rest, the webhook target
//! policy (blind SSRF) at creation and at delivery, and a receiver that never answers.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use shedu_store::Store;
use shedu_testkit::{Options, TestServer, backend_test, openssl_csr};
use tokio::io::AsyncReadExt;
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
        let server = TestServer::start_with(backend, Options::loopback_webhooks()).await;
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
        // See: issue 12 (webhook secrets were stored in clear). Not shown again, not in events or the audit
        // log, and stored only sealed.
        let sub_id = sub["id"].as_str().unwrap();
        let (_, one) = server.get(&format!("/api/v1/subscriptions/{sub_id}")).await;
        assert_eq!(one["id"], sub["id"]);
        assert!(!one.to_string().contains(&secret), "{one}");
        let (s1, events) = server.get("/api/v1/events?limit=1000").await;
        let (s2, audit) = server.get("/api/v1/audit?limit=1000").await;
        assert_eq!((s1, s2), (200, 200));
        assert!(
            audit.to_string().contains(sub_id),
            "the creation is audited: {audit}"
        );
        assert!(!events.to_string().contains(&secret));
        assert!(!audit.to_string().contains(&secret));
        // The console's live view: the newest events, read from the end of the outbox, oldest first.
        let seqs_of = |page: &serde_json::Value| -> Vec<i64> {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap())
                .collect()
        };
        let all = seqs_of(&events);
        assert!(all.len() >= 2, "{events}");
        let (s, newest) = server.get("/api/v1/events?newest=true&limit=2").await;
        assert_eq!(s, 200, "{newest}");
        let seqs = seqs_of(&newest);
        // (Events appended in between, such as an audit checkpoint, may only be newer still.)
        assert!(
            seqs.len() == 2 && seqs[0] < seqs[1] && seqs[0] >= all[all.len() - 2],
            "{newest} after {all:?}"
        );
        assert_secret_sealed(&server, sub_id, &secret).await;
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

/// Asserts that subscription `id`'s row holds `secret` only sealed (no clear copy in any column).
async fn assert_secret_sealed(server: &TestServer, id: &str, secret: &str) {
    let store = Store::connect(&server.db_url, &shedu_core::EVENT_WORDS)
        .await
        .unwrap();
    let row = store.get_subscription(id).await.unwrap();
    store.close().await;
    assert!(
        !row.channel.contains(secret),
        "clear secret in {}",
        row.channel
    );
    let sealed = row.secret_sealed.expect("a sealed secret");
    assert!(
        !sealed.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the sealed secret contains it in clear"
    );
}

/// Deliveries of subscription `id`, as the API lists them.
async fn deliveries(server: &TestServer, id: &str) -> Vec<Value> {
    let (s, page) = server
        .get(&format!("/api/v1/deliveries?subscription_id={id}"))
        .await;
    assert_eq!(s, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Polls `check` every 50 ms until it yields a value; panics after `limit` naming `what`.
async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A webhook receiver on loopback that accepts connections, reads the request and never answers. It
/// reports each request it reads and each connection the client closes.
async fn hanging_receiver() -> (
    String,
    mpsc::UnboundedReceiver<Instant>,
    mpsc::UnboundedReceiver<Instant>,
) {
    let (requests, requests_rx) = mpsc::unbounded_channel();
    let (closed, closed_rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hang", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (requests, closed) = (requests.clone(), closed.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut announced = false;
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) if !announced => {
                            announced = true;
                            let _ = requests.send(Instant::now());
                        }
                        Ok(_) => {}
                    }
                }
                let _ = closed.send(Instant::now());
            });
        }
    });
    (url, requests_rx, closed_rx)
}

// See: issue 12 (blind SSRF). Without an allow-list, webhooks may not target loopback, link-local (the
// cloud metadata address), private or other non-global addresses, written literally or behind a name.
backend_test!(
    webhook_targets_outside_the_allow_list_are_refused,
    |backend| {
        let server = TestServer::start(backend).await;
        for (url, named) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://127.0.0.1:5432/", "127.0.0.1"),
            ("http://10.0.0.7/hook", "10.0.0.7"),
            ("http://192.168.1.20/hook", "192.168.1.20"),
            ("http://100.64.0.1/hook", "100.64.0.1"),
            ("http://[::1]:8080/hook", "::1"),
            ("http://[fd00::1]/hook", "fd00::1"),
            ("http://[::ffff:169.254.169.254]/", "169.254.169.254"),
            ("http://0x7f.1/hook", "127.0.0.1"),
            ("http://localhost:8080/hook", "localhost"),
        ] {
            let (s, p) = server
                .post(
                    "/api/v1/subscriptions",
                    json!({"event_types": ["*"], "channel": {"type": "webhook", "url": url}}),
                )
                .await;
            assert_eq!(s, 400, "{url}: {p}");
            assert_eq!(
                p["type"], "urn:shedu:problem:webhook-target-refused",
                "{url}: {p}"
            );
            assert!(p["detail"].as_str().unwrap().contains(named), "{url}: {p}");
        }
        let (s, p) = server
        .post(
            "/api/v1/subscriptions",
            json!({"event_types": ["*"], "channel": {"type": "webhook", "url": "gopher://93.184.216.34/"}}),
        )
        .await;
        assert_eq!(s, 400, "{p}");
        let (_, list) = server.get("/api/v1/subscriptions").await;
        assert_eq!(list["items"], json!([]), "nothing stored: {list}");
    }
);

// See: issue 12 (blind SSRF). The policy holds at delivery too: subscriptions made while loopback was
// allowed, to a literal address and to a name resolving to it, fail (recorded, then dead) once the
// operator's allow-list no longer names loopback; the receiver never hears of them.
backend_test!(deliveries_to_refused_targets_fail_and_end_dead, |backend| {
    let delivery = shedu_events::DeliveryOptions {
        max_attempts: 2,
        retry_initial: Duration::from_millis(200),
        ..Default::default()
    };
    let server = TestServer::start_with(
        backend,
        Options {
            delivery: Some(delivery.clone()),
            ..Options::loopback_webhooks()
        },
    )
    .await;
    let (url, mut hooks) = receiver().await;
    let named = url.replace("127.0.0.1", "localhost");
    let mut ids = Vec::new();
    for u in [&url, &named] {
        let (s, sub) = server
            .post(
                "/api/v1/subscriptions",
                json!({"event_types": ["ca.created"], "channel": {"type": "webhook", "url": u}}),
            )
            .await;
        assert_eq!(s, 201, "{u}: {sub}");
        ids.push(sub["id"].as_str().unwrap().to_string());
    }
    let server = server
        .restart_with(Options {
            delivery: Some(delivery),
            ..Options::default()
        })
        .await;
    server
        .create_ca(
            json!({"name": "after", "key_type": "ec-p256", "subject": {"common_name": "After"}}),
        )
        .await;
    for id in &ids {
        let dead = wait_for(Duration::from_secs(30), "a dead delivery", || async {
            deliveries(&server, id)
                .await
                .into_iter()
                .find(|d| d["status"] == "dead")
        })
        .await;
        assert_eq!(dead["attempts"], 2, "{dead}");
        let error = dead["last_error"].as_str().unwrap();
        assert!(
            error.contains("refused") && error.contains("loopback"),
            "{error}"
        );
    }
    assert!(hooks.try_recv().is_err(), "the receiver was never called");
});

// Issue 12 (tests): a receiver that accepts the connection and never answers. Its attempt fails after the
// webhook timeout, is recorded and retried, then dead-lettered; meanwhile another subscription's delivery
// goes out at once instead of waiting behind it.
backend_test!(
    a_hanging_webhook_times_out_without_blocking_others,
    |backend| {
        let timeout = Duration::from_secs(5);
        let server = TestServer::start_with(
            backend,
            Options {
                delivery: Some(shedu_events::DeliveryOptions {
                    webhook_timeout: timeout,
                    max_attempts: 2,
                    retry_initial: Duration::from_secs(1),
                    ..Default::default()
                }),
                ..Options::loopback_webhooks()
            },
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let (hang_url, mut requests, mut closed) = hanging_receiver().await;
        let (fast_url, mut hooks) = receiver().await;
        let subscribe = |types: Value, url: String| {
            let server = &server;
            async move {
                let (s, sub) = server
                    .post(
                        "/api/v1/subscriptions",
                        json!({"event_types": types, "channel": {"type": "webhook", "url": url}}),
                    )
                    .await;
                assert_eq!(s, 201, "{sub}");
                sub["id"].as_str().unwrap().to_string()
            }
        };
        let hanging = subscribe(json!(["certificate.issued"]), hang_url).await;
        let fast = subscribe(json!(["certificate.revoked"]), fast_url).await;
        let ca = server
            .create_ca(
                json!({"name": "slow", "key_type": "ec-p256", "subject": {"common_name": "Slow"}}),
            )
            .await;
        let ca_id = ca["id"].as_str().unwrap();
        let csr = openssl_csr(dir.path(), "k", "ec-p256", "/CN=hang", None);
        let (_, cert) = server
            .post(
                &format!("/api/v1/cas/{ca_id}/certificates"),
                json!({"csr_pem": csr}),
            )
            .await;
        let first = tokio::time::timeout(Duration::from_secs(20), requests.recv())
            .await
            .expect("the hanging receiver gets the request")
            .unwrap();

        // While that attempt hangs, another delivery goes out.
        let (s, _) = server
            .post(
                &format!(
                    "/api/v1/cas/{ca_id}/certificates/{}/revoke",
                    cert["serial"].as_str().unwrap()
                ),
                json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(s, 200);
        tokio::time::timeout(Duration::from_secs(20), hooks.recv())
            .await
            .expect("the other subscription's webhook arrives")
            .unwrap();
        let pending = deliveries(&server, &hanging).await;
        assert_eq!(pending.len(), 1);
        assert!(
            pending[0]["status"] == "pending" && pending[0]["last_error"].is_null(),
            "the hanging attempt is still in flight when the other delivery arrives: {}",
            pending[0]
        );
        assert!(
            closed.try_recv().is_err(),
            "the hanging connection is still open"
        );

        // The hanging attempt fails after the timeout, recorded, and is retried.
        let gave_up = tokio::time::timeout(timeout + Duration::from_secs(15), closed.recv())
            .await
            .expect("the client gives up within the timeout")
            .unwrap();
        assert!(
            gave_up.duration_since(first) >= timeout - Duration::from_secs(2),
            "it waited for the timeout ({:?})",
            gave_up.duration_since(first)
        );
        let failed = wait_for(Duration::from_secs(10), "the failure recorded", || async {
            deliveries(&server, &hanging)
                .await
                .into_iter()
                .find(|d| !d["last_error"].is_null())
        })
        .await;
        assert!(
            failed["last_error"].as_str().unwrap().contains("timed out"),
            "{failed}"
        );
        tokio::time::timeout(Duration::from_secs(20), requests.recv())
            .await
            .expect("a second attempt")
            .unwrap();
        let dead = wait_for(
            timeout + Duration::from_secs(15),
            "the dead letter",
            || async {
                deliveries(&server, &hanging)
                    .await
                    .into_iter()
                    .find(|d| d["status"] == "dead")
            },
        )
        .await;
        assert_eq!(dead["attempts"], 2, "{dead}");
        assert!(
            dead["last_error"].as_str().unwrap().contains("timed out"),
            "{dead}"
        );
        let done = deliveries(&server, &fast).await;
        assert_eq!(done[0]["status"], "delivered", "{done:?}");
    }
);

// See: issue 12 (webhook secrets were stored in clear). A subscription written before secrets were sealed,
// with its secret in the channel JSON, is sealed at the next start and still delivers correctly signed.
backend_test!(
    a_clear_secret_from_before_sealing_is_sealed_and_still_signs,
    |backend| {
        let server = TestServer::start_with(backend, Options::loopback_webhooks()).await;
        let (url, mut hooks) = receiver().await;
        let secret = "legacy-secret-0123456789abcdef";
        let store = Store::connect(&server.db_url, &shedu_core::EVENT_WORDS)
            .await
            .unwrap();
        store
        .insert_subscription(
            &shedu_store::SubscriptionRow {
                id: "0123456789abcdef0123456789abcdef".into(),
                event_types: "ca.created".into(),
                channel: json!({"kind": "webhook", "url": url, "secret": secret, "format": "cloudevents"})
                    .to_string(),
                condition: None,
                secret_sealed: None,
                created_at: 1,
            },
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
        store.close().await;
        let server = server.restart().await;
        assert_secret_sealed(&server, "0123456789abcdef0123456789abcdef", secret).await;
        server
        .create_ca(json!({"name": "legacy", "key_type": "ec-p256", "subject": {"common_name": "Legacy"}}))
        .await;
        let (headers, body, _) = tokio::time::timeout(Duration::from_secs(20), hooks.recv())
            .await
            .unwrap()
            .unwrap();
        let sig = headers["x-shedu-signature"].to_str().unwrap();
        assert!(
            shedu_events::verify_signature(secret, &body, sig),
            "signed with the old secret"
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
