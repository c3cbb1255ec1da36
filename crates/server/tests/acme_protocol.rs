//! ACME protocol rules checked request by request with a small JWS client of the test's own (P-256 and
//! Ed25519 keys from aws-lc-rs): nonces (HEAD 200 / GET 204, no-store, single use, shared through the
//! database on PostgreSQL, the process's own on SQLite), the media type, the `url` header, unsupported algorithms, `kid` versus `jwk`, profiles, a
//! CSR whose names differ from the order's, renewal information and `replaces`, account deactivation and
//! key change, subproblems, and rate limits (also under concurrent requests). The same flows once more
//! with a second real client, the `instant-acme` crate. On SQLite and PostgreSQL.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use base64::Engine;
use serde_json::{Value, json};
use shedu_acme::b64;
use shedu_testkit::{Options, TestServer, backend_test, openssl_csr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone)]
struct Key {
    pair: std::sync::Arc<EcdsaKeyPair>,
    jwk: Value,
}

impl Key {
    fn new() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap();
        let p = pair.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])});
        Key {
            pair: std::sync::Arc::new(pair),
            jwk,
        }
    }

    fn thumbprint(&self) -> String {
        shedu_acme::Jwk::from_value(&self.jwk).unwrap().thumbprint()
    }

    /// A flattened JWS over `protected` and `payload` (None: POST-as-GET).
    fn sign(&self, protected: &Value, payload: Option<&Value>) -> Value {
        let p = b64(protected.to_string().as_bytes());
        let body = payload
            .map(|v| b64(v.to_string().as_bytes()))
            .unwrap_or_default();
        let sig = self
            .pair
            .sign(&SystemRandom::new(), format!("{p}.{body}").as_bytes())
            .unwrap();
        json!({"protected": p, "payload": body, "signature": b64(sig.as_ref())})
    }
}

struct Client {
    http: reqwest::Client,
    dir: String,
    directory: Value,
    key: Key,
    kid: Option<String>,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Client {
    async fn new(server: &TestServer) -> Client {
        Client::for_ra(server, "web").await
    }

    /// A client of the directory of the RA named `ra`.
    async fn for_ra(server: &TestServer, ra: &str) -> Client {
        let dir = format!("{}/acme/{ra}", server.base_url);
        let directory: Value = server
            .client
            .get(format!("{dir}/directory"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Client {
            http: server.client.clone(),
            dir,
            directory,
            key: Key::new(),
            kid: None,
        }
    }

    fn url(&self, name: &str) -> String {
        self.directory[name].as_str().unwrap().to_string()
    }

    async fn nonce(&self) -> String {
        let res = self.http.head(self.url("newNonce")).send().await.unwrap();
        res.headers()["replay-nonce"].to_str().unwrap().to_string()
    }

    fn header(&self, url: &str, nonce: &str) -> Value {
        match &self.kid {
            Some(kid) => json!({"alg": "ES256", "nonce": nonce, "url": url, "kid": kid}),
            None => json!({"alg": "ES256", "nonce": nonce, "url": url, "jwk": self.key.jwk}),
        }
    }

    async fn send(&self, url: &str, body: &Value) -> Answer {
        let res = self
            .http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        let text = res.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// A newAccount request (terms agreed) signed with `nonce`.
    fn new_account_with(&self, nonce: &str) -> Value {
        self.key.sign(
            &self.header(&self.url("newAccount"), nonce),
            Some(&json!({"termsOfServiceAgreed": true})),
        )
    }

    /// Sends `jws` to newAccount twice: created the first time, `badNonce` the second.
    async fn accepted_once(&self, jws: &Value) -> Answer {
        let created = self.send(&self.url("newAccount"), jws).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let replayed = self.send(&self.url("newAccount"), jws).await;
        assert_eq!((replayed.status, problem(&replayed)), (400, "badNonce"));
        created
    }

    async fn post(&self, url: &str, payload: Option<&Value>) -> Answer {
        let nonce = self.nonce().await;
        let jws = self.key.sign(&self.header(url, &nonce), payload);
        self.send(url, &jws).await
    }

    async fn register(&mut self) {
        let a = self
            .post(
                &self.url("newAccount"),
                Some(&json!({"termsOfServiceAgreed": true})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        self.kid = Some(a.headers["location"].to_str().unwrap().to_string());
    }

    /// Orders `names`, answers http-01 from a one-shot server on `port` for each authorization still
    /// pending (a reused one is valid already), and returns the ready order's URL.
    async fn ready_order(&self, port: u16, names: &[&str], extra: Value) -> (String, Value) {
        let mut payload = json!({"identifiers": names.iter().map(|n| json!({"type": "dns", "value": n})).collect::<Vec<_>>()});
        for (k, v) in extra.as_object().unwrap() {
            payload[k] = v.clone();
        }
        let order = self.post(&self.url("newOrder"), Some(&payload)).await;
        assert_eq!(order.status, 201, "{}", order.text);
        let order_url = order.headers["location"].to_str().unwrap().to_string();
        for authz in order.body["authorizations"].as_array().unwrap() {
            let a = self.post(authz.as_str().unwrap(), None).await;
            if a.body["status"] == "valid" {
                continue;
            }
            let ch = &a.body["challenges"][0];
            assert_eq!(ch["type"], "http-01");
            let key_auth = format!(
                "{}.{}",
                ch["token"].as_str().unwrap(),
                self.key.thumbprint()
            );
            let server = answer_once(port, key_auth);
            let c = self
                .post(ch["url"].as_str().unwrap(), Some(&json!({})))
                .await;
            assert_eq!(c.body["status"], "valid", "{}", c.text);
            server.await.unwrap();
        }
        let o = self.post(&order_url, None).await;
        assert_eq!(o.body["status"], "ready", "{}", o.text);
        (order_url, o.body)
    }
}

/// Answers one HTTP request on loopback `port` with `body` (the http-01 key authorization).
fn answer_once(port: u16, body: String) -> tokio::task::JoinHandle<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 2048];
        let _ = s.read(&mut buf).await.unwrap();
        let res = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // The validator may hang up once it has read enough.
        let _ = s.write_all(res.as_bytes()).await;
    })
}

/// A loopback port free right now, for the client's challenge server.
fn free_port() -> u16 {
    shedu_testkit::free_port_number()
}

async fn setup(backend: shedu_testkit::Backend, port: u16) -> (TestServer, Value) {
    let server = TestServer::start_with(
        backend,
        Options {
            acme: Some(shedu_core::AcmeConfig {
                http01_port: port,
                validation_timeout: Duration::from_secs(5),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let ca = server
        .create_ca(
            json!({"name": "root", "key_type": "ec-p256", "subject": {"common_name": "ACME Root"}}),
        )
        .await;
    let short = server
        .create_ca(
            json!({"name": "short", "key_type": "ec-p256", "subject": {"common_name": "ACME Short"},
            "profile": {"default_validity_days": 7}}),
        )
        .await;
    let (status, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "web", "ca_ids": [ca["id"], short["id"]], "enrollment": {"auth_modes": ["one_time_secret"]},
                "acme": {"profiles": {"long": ca["id"], "short": short["id"]}, "default_profile": "long"}}),
        )
        .await;
    assert_eq!(status, 201, "{ra}");
    (server, ca)
}

fn problem(a: &Answer) -> &str {
    assert_eq!(
        a.headers["content-type"], "application/problem+json",
        "{}",
        a.text
    );
    assert!(
        a.headers.contains_key("replay-nonce"),
        "problem answers carry a nonce too"
    );
    a.body["type"]
        .as_str()
        .unwrap()
        .trim_start_matches("urn:ietf:params:acme:error:")
}

backend_test!(nonces_media_type_url_and_algorithms, |backend| {
    let (server, _) = setup(backend, free_port()).await;
    let mut c = Client::new(&server).await;
    assert_eq!(
        c.directory["meta"]["profiles"].as_object().unwrap().len(),
        2
    );
    assert_eq!(c.directory["meta"]["externalAccountRequired"], false);
    // newNonce: HEAD 200, GET 204, never cached, always a fresh nonce.
    let head = c.http.head(c.url("newNonce")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["cache-control"], "no-store");
    let get = c.http.get(c.url("newNonce")).send().await.unwrap();
    assert_eq!(get.status(), 204);
    assert_ne!(
        head.headers()["replay-nonce"],
        get.headers()["replay-nonce"]
    );

    // A JWS sent as application/json: 415.
    let nonce = c.nonce().await;
    let jws = c
        .key
        .sign(&c.header(&c.url("newAccount"), &nonce), Some(&json!({})));
    let res = c
        .http
        .post(c.url("newAccount"))
        .header("content-type", "application/json")
        .body(jws.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    // A nonce the server did not make (well formed, but not under its key): badNonce.
    let made_up = shedu_acme::b64(&[7u8; 56]);
    let jws = c.key.sign(
        &c.header(&c.url("newAccount"), &made_up),
        Some(&json!({"termsOfServiceAgreed": true})),
    );
    let refused = c.send(&c.url("newAccount"), &jws).await;
    assert_eq!((refused.status, problem(&refused)), (400, "badNonce"));

    // A replayed nonce: badNonce. The nonce was consumed by the first request.
    let first = c.accepted_once(&c.new_account_with(&c.nonce().await)).await;
    // The same key again: the existing account, 200, same Location.
    let existing = c
        .post(
            &c.url("newAccount"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(existing.status, 200, "{}", existing.text);
    assert_eq!(existing.headers["location"], first.headers["location"]);
    c.kid = Some(first.headers["location"].to_str().unwrap().to_string());

    match backend {
        shedu_testkit::Backend::Postgres => {
            // A nonce's use is stored: spent through another connection to the same database, it is
            // refused.
            let nonce = c.nonce().await;
            let other = shedu_store::Store::connect(&server.db_url, &shedu_core::EVENT_WORDS)
                .await
                .unwrap();
            let until = server.services.registry.now() + 3600;
            assert!(other.acme_nonce_take(&nonce, until, None).await.unwrap());
            let jws = c.key.sign(
                &c.header(&c.url("newOrder"), &nonce),
                Some(&json!({"identifiers": [{"type": "dns", "value": "x.localhost"}]})),
            );
            let used = c.send(&c.url("newOrder"), &jws).await;
            assert_eq!(problem(&used), "badNonce");

            // A nonce one server handed out is accepted, once, by a second server (a replica) on the
            // database.
            let beside = server.start_beside().await;
            let b = Client::for_ra(&beside, "web").await;
            b.accepted_once(&b.new_account_with(&c.nonce().await)).await;
        }
        shedu_testkit::Backend::Sqlite => {
            // See: issue 15. On SQLite one process owns the database and spends nonces in memory, under
            // a key of its own: a second server on the file refuses this one's nonces (so a nonce can
            // never be spent once here and once there), and this one still takes it, once.
            let beside = server.start_beside().await;
            let b = Client::for_ra(&beside, "web").await;
            let nonce = c.nonce().await;
            let foreign = b
                .send(&b.url("newAccount"), &b.new_account_with(&nonce))
                .await;
            assert_eq!((foreign.status, problem(&foreign)), (400, "badNonce"));
            let d = Client::new(&server).await;
            d.accepted_once(&d.new_account_with(&nonce)).await;
        }
    }

    // The protected url must be the request URL.
    let nonce = c.nonce().await;
    let jws = c.key.sign(
        &c.header(&c.url("newAccount"), &nonce),
        Some(&json!({"identifiers": []})),
    );
    let wrong = c.send(&c.url("newOrder"), &jws).await;
    assert_eq!((wrong.status, problem(&wrong)), (403, "unauthorized"));

    // An algorithm outside ES256/ES384/RS256/EdDSA: badSignatureAlgorithm, with the accepted list.
    let nonce = c.nonce().await;
    let header = json!({"alg": "RS512", "nonce": nonce, "url": c.url("newOrder"), "kid": c.kid});
    let jws = c.key.sign(&header, Some(&json!({})));
    let alg = c.send(&c.url("newOrder"), &jws).await;
    assert_eq!(problem(&alg), "badSignatureAlgorithm");
    assert_eq!(
        alg.body["algorithms"],
        json!(["ES256", "ES384", "RS256", "EdDSA"])
    );

    // newOrder signed with jwk instead of kid: malformed; with an unknown kid: accountDoesNotExist.
    let kid = c.kid.take();
    let jwk = c
        .post(
            &c.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "x.localhost"}]})),
        )
        .await;
    assert_eq!(problem(&jwk), "malformed");
    c.kid = Some(format!("{}/acct/nope", c.dir));
    let unknown = c
        .post(
            &c.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "x.localhost"}]})),
        )
        .await;
    assert_eq!(problem(&unknown), "accountDoesNotExist");
    c.kid = kid;

    // Unknown profile: invalidProfile; unsupported identifier type.
    let p = c.post(&c.url("newOrder"), Some(&json!({"identifiers": [{"type": "dns", "value": "x.localhost"}], "profile": "nope"}))).await;
    assert_eq!(problem(&p), "invalidProfile");
    let t = c
        .post(
            &c.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "email", "value": "a@b"}]})),
        )
        .await;
    assert_eq!(problem(&t), "unsupportedIdentifier");

    // See: issue 15. A nonce handed out before a restart: accepted after it on PostgreSQL (the
    // deployment's key, the spend a row); refused on SQLite (the spends were in the old process's
    // memory), with a fresh nonce in the refusal that works.
    let nonce = c.nonce().await;
    let server = server.restart().await;
    let r = Client::new(&server).await;
    let after = r
        .send(&r.url("newAccount"), &r.new_account_with(&nonce))
        .await;
    match backend {
        shedu_testkit::Backend::Postgres => assert_eq!(after.status, 201, "{}", after.text),
        shedu_testkit::Backend::Sqlite => {
            assert_eq!((after.status, problem(&after)), (400, "badNonce"));
            let fresh = after.headers["replay-nonce"].to_str().unwrap();
            r.accepted_once(&r.new_account_with(fresh)).await;
        }
    }
});

backend_test!(
    profiles_bad_csr_renewal_info_replaces_and_revocation,
    |backend| {
        let port = free_port();
        let (server, _) = setup(backend, port).await;
        let mut c = Client::new(&server).await;
        c.register().await;
        let (order_url, order) = c
            .ready_order(port, &["p.localhost"], json!({"profile": "short"}))
            .await;
        assert_eq!(order["profile"], "short", "the profile is echoed");

        // A CSR naming something else than the order: badCSR, and the order stays ready.
        let dir = tempfile::tempdir().unwrap();
        let der = |pem: &str| {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        };
        let bad = openssl_csr(
            dir.path(),
            "bad",
            "ec-p256",
            "/CN=p.localhost",
            Some("DNS:p.localhost,DNS:q.localhost"),
        );
        let finalize = order["finalize"].as_str().unwrap();
        let r = c
            .post(finalize, Some(&json!({"csr": b64(&der(&bad))})))
            .await;
        assert_eq!(problem(&r), "badCSR");
        assert_eq!(c.post(&order_url, None).await.body["status"], "ready");

        // The right CSR: valid, a certificate of the short profile's CA (7 days).
        let good = openssl_csr(
            dir.path(),
            "good",
            "ec-p256",
            "/CN=p.localhost",
            Some("DNS:p.localhost"),
        );
        let r = c
            .post(finalize, Some(&json!({"csr": b64(&der(&good))})))
            .await;
        assert_eq!(r.body["status"], "valid", "{}", r.text);
        let cert = c.post(r.body["certificate"].as_str().unwrap(), None).await;
        assert_eq!(cert.status, 200);
        assert_eq!(
            cert.headers["content-type"],
            "application/pem-certificate-chain"
        );
        assert!(
            cert.text.matches("BEGIN CERTIFICATE").count() >= 2,
            "leaf and chain"
        );
        let leaf = shedu_pki::pem_to_der_certs(cert.text.as_bytes())
            .unwrap()
            .remove(0);
        let info = shedu_pki::CertInfo::from_der(&leaf).unwrap();
        // Seven days (plus the issuer's backdating of notBefore for clock skew).
        let days7 = info.not_after - info.not_before;
        assert!((7 * 86_400..7 * 86_400 + 600).contains(&days7), "{days7}");

        // ARI: the window sits in the last third of the validity.
        let (_, issuer) = server.get("/api/v1/cas?limit=10").await;
        let short = issuer["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ca| ca["name"] == "short")
            .unwrap()
            .clone();
        let ca_der =
            shedu_pki::pem_to_der_certs(short["certificate_pem"].as_str().unwrap().as_bytes())
                .unwrap()
                .remove(0);
        let aki = shedu_pki::CertInfo::from_der(&ca_der)
            .unwrap()
            .subject_key_id
            .unwrap();
        let cert_id = format!("{}.{}", b64(&aki), b64(info.serial.as_bytes()));
        let ari = c
            .http
            .get(format!("{}/{cert_id}", c.url("renewalInfo")))
            .send()
            .await
            .unwrap();
        assert_eq!(ari.status(), 200);
        assert!(ari.headers().contains_key("retry-after"));
        let window: Value = ari.json().await.unwrap();
        let start = time::OffsetDateTime::parse(
            window["suggestedWindow"]["start"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp();
        assert!(
            start >= info.not_before + 2 * (info.not_after - info.not_before) / 3
                && start < info.not_after,
            "{window}"
        );
        let unknown = c
            .http
            .get(format!(
                "{}/{}.{}",
                c.url("renewalInfo"),
                b64(&aki),
                b64(&[0x55; 16])
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);

        // replaces: echoed once, then alreadyReplaced. (The order reuses the account's valid authorization
        // for p.localhost, so it is ready without a validation.)
        let (_, replacing) = c
            .ready_order(port, &["p.localhost"], json!({"replaces": cert_id}))
            .await;
        assert_eq!(replacing["replaces"], cert_id.as_str());
        let twice = c.post(&c.url("newOrder"), Some(&json!({"identifiers": [{"type": "dns", "value": "p.localhost"}], "replaces": cert_id}))).await;
        assert_eq!(problem(&twice), "alreadyReplaced");

        // Revocation: reason 7 refused; then revoked; again: alreadyRevoked; ARI's window moves to the past.
        let body = |reason: u8| json!({"certificate": b64(&leaf), "reason": reason});
        let r7 = c.post(&c.url("revokeCert"), Some(&body(7))).await;
        assert_eq!(problem(&r7), "badRevocationReason");
        let ok = c.post(&c.url("revokeCert"), Some(&body(1))).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        let again = c.post(&c.url("revokeCert"), Some(&body(1))).await;
        assert_eq!(problem(&again), "alreadyRevoked");
        let window: Value = c
            .http
            .get(format!("{}/{cert_id}", c.url("renewalInfo")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let end = time::OffsetDateTime::parse(
            window["suggestedWindow"]["end"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp();
        assert!(end < server.services.registry.now(), "{window}");

        // Another account may not revoke this account's certificates.
        let mut stranger = Client::new(&server).await;
        stranger.register().await;
        let not_theirs = stranger.post(&c.url("revokeCert"), Some(&body(0))).await;
        assert_eq!(problem(&not_theirs), "unauthorized");
        // Nor read its order, authorization or challenge (each read checks the order's account).
        let authz = order["authorizations"][0].as_str().unwrap();
        for url in [
            order_url.clone(),
            authz.to_string(),
            format!("{}/http-01", authz.replace("/authz/", "/chall/")),
        ] {
            let r = stranger.post(&url, None).await;
            assert_eq!((r.status, problem(&r)), (403, "unauthorized"), "{url}");
        }
    }
);

backend_test!(key_change_and_deactivation, |backend| {
    let (server, _) = setup(backend, free_port()).await;
    let mut c = Client::new(&server).await;
    c.register().await;
    let mut other = Client::new(&server).await;
    other.register().await;
    let account = c.kid.clone().unwrap();

    // keyChange to a key another account has: 409 with that account's Location.
    let inner = other.key.sign(
        &json!({"alg": "ES256", "url": c.url("keyChange"), "jwk": other.key.jwk}),
        Some(&json!({"account": account, "oldKey": c.key.jwk})),
    );
    let taken = c.post(&c.url("keyChange"), Some(&inner)).await;
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert_eq!(
        taken.headers["location"].to_str().unwrap(),
        other.kid.as_deref().unwrap()
    );

    // keyChange to a fresh key: the old key no longer signs for the account, the new one does.
    let fresh = Key::new();
    let inner = fresh.sign(
        &json!({"alg": "ES256", "url": c.url("keyChange"), "jwk": fresh.jwk}),
        Some(&json!({"account": account, "oldKey": c.key.jwk})),
    );
    let changed = c.post(&c.url("keyChange"), Some(&inner)).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let old = c.post(&account, None).await;
    assert_eq!(
        old.status, 400,
        "the old key's signature no longer verifies: {}",
        old.text
    );
    c.key = fresh;
    assert_eq!(c.post(&account, None).await.body["status"], "valid");

    // Deactivation: then every request of the account is unauthorized.
    let d = c
        .post(&account, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(d.body["status"], "deactivated", "{}", d.text);
    let after = c
        .post(
            &c.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "x.localhost"}]})),
        )
        .await;
    assert_eq!(problem(&after), "unauthorized");
});

/// Turns the `web` RA's ACME directory off through `server` (a PUT of the RA with `acme.enabled` false).
async fn disable_acme(server: &TestServer, ca: &Value) {
    let (_, ras) = server.get("/api/v1/ras").await;
    let ra_id = ras["items"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = server
        .send(
            "PUT",
            &format!("/api/v1/ras/{ra_id}"),
            Some(json!({"name": "web", "ca_ids": [ca["id"]], "enrollment": {"auth_modes": ["one_time_secret"]},
                "acme": {"enabled": false}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

// See: issue 15 (a request reads neither its RA nor its account from the database: both are kept in
// memory). A change returns only once no request is served under the old RA settings or account: a
// deactivated account, an old key after a key change, an RA whose ACME was turned off are refused by the
// next request.
backend_test!(
    ra_and_account_changes_apply_to_the_next_request,
    |backend| {
        let (server, ca) = setup(backend, free_port()).await;
        let mut c = Client::new(&server).await;
        c.register().await;
        let account = c.kid.clone().unwrap();
        let order = json!({"identifiers": [{"type": "dns", "value": "x.localhost"}]});
        // Served (and so kept in memory) a few times first.
        for _ in 0..3 {
            assert_eq!(c.post(&account, None).await.body["status"], "valid");
        }
        let fresh = Key::new();
        let inner = fresh.sign(
            &json!({"alg": "ES256", "url": c.url("keyChange"), "jwk": fresh.jwk}),
            Some(&json!({"account": account, "oldKey": c.key.jwk})),
        );
        assert_eq!(c.post(&c.url("keyChange"), Some(&inner)).await.status, 200);
        let old = c.post(&c.url("newOrder"), Some(&order)).await;
        assert_eq!(old.status, 400, "the old key signs no more: {}", old.text);
        c.key = fresh;
        assert_eq!(c.post(&c.url("newOrder"), Some(&order)).await.status, 201);
        let d = c
            .post(&account, Some(&json!({"status": "deactivated"})))
            .await;
        assert_eq!(d.body["status"], "deactivated", "{}", d.text);
        let after = c.post(&c.url("newOrder"), Some(&order)).await;
        assert_eq!(problem(&after), "unauthorized");

        let mut other = Client::new(&server).await;
        other.register().await;
        let other_account = other.kid.clone().unwrap();
        assert_eq!(other.post(&other_account, None).await.status, 200);
        disable_acme(&server, &ca).await;
        let directory = server
            .client
            .get(format!("{}/directory", other.dir))
            .send()
            .await
            .unwrap();
        assert_eq!(directory.status(), 404);
        assert_eq!(other.post(&other_account, None).await.status, 404);
    }
);

// Two replicas on one PostgreSQL database (SQLite has one process, so this is PostgreSQL's): replica B
// keeps the RA and the account in memory; an account deactivated, a key changed or an RA's ACME turned
// off through replica A is refused by B as soon as A's call returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_refuse_a_changed_account_or_ra_once_the_change_returned() {
    let (a, ca) = setup(shedu_testkit::Backend::Postgres, free_port()).await;
    let b = a.start_beside().await;
    let mut on_a = Client::new(&a).await;
    on_a.register().await;
    let account = on_a.kid.clone().unwrap();
    let mut on_b = Client::for_ra(&b, "web").await;
    on_b.key = on_a.key.clone();
    on_b.kid = Some(account.replace(&a.base_url, &b.base_url));
    let b_account = on_b.kid.clone().unwrap();
    // B serves the account for a while (long enough to hold a cache lease: a few heartbeats).
    for _ in 0..8 {
        assert_eq!(on_b.post(&b_account, None).await.body["status"], "valid");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // A key change through A: B refuses the old key at once and takes the new one.
    let fresh = Key::new();
    let inner = fresh.sign(
        &json!({"alg": "ES256", "url": on_a.url("keyChange"), "jwk": fresh.jwk}),
        Some(&json!({"account": account, "oldKey": on_a.key.jwk})),
    );
    assert_eq!(
        on_a.post(&on_a.url("keyChange"), Some(&inner)).await.status,
        200
    );
    assert_eq!(on_b.post(&b_account, None).await.status, 400);
    on_a.key = fresh.clone();
    on_b.key = fresh;
    assert_eq!(on_b.post(&b_account, None).await.body["status"], "valid");
    // Deactivated through A: refused by B at once.
    let d = on_a
        .post(&account, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(d.body["status"], "deactivated", "{}", d.text);
    let refused = on_b.post(&b_account, None).await;
    assert_eq!(problem(&refused), "unauthorized");
    // ACME turned off through A: B's directory is gone at once.
    disable_acme(&a, &ca).await;
    let directory = b
        .client
        .get(format!("{}/directory", on_b.dir))
        .send()
        .await
        .unwrap();
    assert_eq!(directory.status(), 404);
}

backend_test!(
    http01_wrong_or_oversized_answers_invalidate_the_order,
    |backend| {
        let port = free_port();
        let (server, _) = setup(backend, port).await;
        let mut c = Client::new(&server).await;
        c.register().await;
        for (name, oversized) in [("w.localhost", false), ("o.localhost", true)] {
            let order = c
                .post(
                    &c.url("newOrder"),
                    Some(&json!({"identifiers": [{"type": "dns", "value": name}]})),
                )
                .await;
            assert_eq!(order.status, 201, "{}", order.text);
            let authz = c
                .post(order.body["authorizations"][0].as_str().unwrap(), None)
                .await;
            assert_eq!(
                authz.headers["retry-after"], "1",
                "pending authorizations say when to poll"
            );
            let ch = &authz.body["challenges"][0];
            // Wrong: another string. Oversized: the right key authorization then 200 kB of blanks, which a
            // reader without a bound would trim and accept.
            let key_auth = format!("{}.{}", ch["token"].as_str().unwrap(), c.key.thumbprint());
            let answer = if oversized {
                format!("{key_auth}{}", " ".repeat(200_000))
            } else {
                "not-it".to_string()
            };
            let responder = answer_once(port, answer);
            let r = c.post(ch["url"].as_str().unwrap(), Some(&json!({}))).await;
            responder.await.unwrap();
            assert_eq!(r.body["status"], "invalid", "{}", r.text);
            assert_eq!(
                r.body["error"]["type"], "urn:ietf:params:acme:error:incorrectResponse",
                "{}",
                r.text
            );
            let o = c
                .post(order.headers["location"].to_str().unwrap(), None)
                .await;
            assert_eq!(o.body["status"], "invalid", "{}", o.text);
            // Finalizing an invalid order: orderNotReady.
            let f = c
                .post(
                    o.body["finalize"].as_str().unwrap(),
                    Some(&json!({"csr": "AA"})),
                )
                .await;
            assert_eq!(problem(&f), "orderNotReady");
        }
    }
);

/// The events of `ty` whose subject contains `subject`.
async fn events(server: &TestServer, ty: &str, subject: &str) -> Vec<Value> {
    let (status, page) = server
        .get(&format!(
            "/api/v1/events?type={ty}&subject={subject}&limit=1000"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// The audit records of `action`.
async fn audited(server: &TestServer, action: &str) -> Vec<Value> {
    let (status, page) = server
        .get(&format!("/api/v1/audit?action={action}&limit=1000"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

// See: issue 15 (authorization reuse; events and audit records of account and order changes).
backend_test!(
    authorizations_are_reused_until_deactivated_and_changes_are_recorded,
    |backend| {
        let port = free_port();
        let (server, _) = setup(backend, port).await;
        let mut c = Client::new(&server).await;
        c.register().await;
        let account = c.kid.clone().unwrap();
        let account_id = account.rsplit('/').next().unwrap().to_string();
        let (first_url, first) = c.ready_order(port, &["r.localhost"], json!({})).await;

        // The same name again: the order is ready at once, its authorization valid without a validation
        // (nothing answers http-01 now).
        let ident = |n: &str| json!({"type": "dns", "value": n});
        let again = c
            .post(
                &c.url("newOrder"),
                Some(&json!({"identifiers": [ident("r.localhost")]})),
            )
            .await;
        assert_eq!(
            (again.status, again.body["status"].as_str()),
            (201, Some("ready")),
            "{}",
            again.text
        );
        let reused = c
            .post(again.body["authorizations"][0].as_str().unwrap(), None)
            .await;
        assert_eq!(reused.body["status"], "valid", "{}", reused.text);
        // With a new name beside it, only the new name waits.
        let mixed = c
            .post(
                &c.url("newOrder"),
                Some(&json!({"identifiers": [ident("r.localhost"), ident("s.localhost")]})),
            )
            .await;
        assert_eq!(mixed.body["status"], "pending", "{}", mixed.text);
        let statuses: Vec<Value> = {
            let mut v = Vec::new();
            for a in mixed.body["authorizations"].as_array().unwrap() {
                v.push(c.post(a.as_str().unwrap(), None).await.body["status"].clone());
            }
            v
        };
        assert_eq!(statuses, vec![json!("valid"), json!("pending")]);
        // Another account does not get this account's authorization.
        let mut stranger = Client::new(&server).await;
        stranger.register().await;
        let theirs = stranger
            .post(
                &stranger.url("newOrder"),
                Some(&json!({"identifiers": [ident("r.localhost")]})),
            )
            .await;
        assert_eq!(theirs.body["status"], "pending", "{}", theirs.text);

        // Deactivating the (valid) authorization gives it up everywhere: the ready order that reused it
        // becomes invalid, and the next order must validate again.
        let authz = first["authorizations"][0].as_str().unwrap();
        let off = c.post(authz, Some(&json!({"status": "deactivated"}))).await;
        assert_eq!(off.body["status"], "deactivated", "{}", off.text);
        let again_url = again.headers["location"].to_str().unwrap();
        assert_eq!(c.post(again_url, None).await.body["status"], "invalid");
        assert_eq!(c.post(&first_url, None).await.body["status"], "invalid");
        let fresh = c
            .post(
                &c.url("newOrder"),
                Some(&json!({"identifiers": [ident("r.localhost")]})),
            )
            .await;
        assert_eq!(fresh.body["status"], "pending", "{}", fresh.text);
        let bad = c.post(authz, Some(&json!({"status": "valid"}))).await;
        assert_eq!(problem(&bad), "malformed");

        // A failed validation makes the order invalid, and says so in an event.
        let failing = c
            .post(fresh.body["authorizations"][0].as_str().unwrap(), None)
            .await;
        let responder = answer_once(port, "not-it".into());
        let r = c
            .post(
                failing.body["challenges"][0]["url"].as_str().unwrap(),
                Some(&json!({})),
            )
            .await;
        responder.await.unwrap();
        assert_eq!(r.body["status"], "invalid", "{}", r.text);
        let fresh_id = fresh.headers["location"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let invalid = events(&server, "acme.order_invalid", &fresh_id).await;
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert_eq!(invalid[0]["data"]["problem"], "incorrectResponse");
        assert_eq!(invalid[0]["data"]["identifier"]["value"], "r.localhost");

        // Account changes are events (no contact addresses in them) and audit records.
        let contact = c
            .post(
                &account,
                Some(&json!({"contact": ["mailto:secret-ops@example.test"]})),
            )
            .await;
        assert_eq!(contact.status, 200, "{}", contact.text);
        let deactivated = c
            .post(&account, Some(&json!({"status": "deactivated"})))
            .await;
        assert_eq!(deactivated.body["status"], "deactivated");
        let kinds = [
            "acme.account_created",
            "acme.account_updated",
            "acme.account_deactivated",
        ];
        for kind in kinds {
            let found = events(&server, kind, &account_id).await;
            assert_eq!(found.len(), 1, "{kind}: {found:?}");
            assert_eq!(found[0]["data"]["account"], account_id.as_str());
            assert!(!found[0].to_string().contains("secret-ops"), "{found:?}");
        }
        assert_eq!(
            events(&server, "acme.account_updated", &account_id).await[0]["data"]["change"],
            "contact"
        );
        let orders = audited(&server, "acme.order_create").await;
        assert!(
            orders.len() >= 5
                && orders
                    .iter()
                    .any(|r| r["target"].as_str().unwrap().ends_with(&fresh_id)),
            "{orders:?}"
        );
        let authzs = audited(&server, "acme.authz_update").await;
        assert!(
            authzs.len() >= 3,
            "validated, deactivated, failed: {authzs:?}"
        );
    }
);

// See: issue 15 (rate limits per account and per identifier: rateLimited with Retry-After).
backend_test!(new_orders_over_the_rate_limits_are_refused, |backend| {
    let (server, ca) = setup(backend, free_port()).await;
    let (status, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "limited", "ca_ids": [ca["id"]], "enrollment": {"auth_modes": ["one_time_secret"]},
                "acme": {"authz_reuse": false, "rate_limits": {
                    "orders_per_account": {"count": 2, "window_secs": 3600},
                    "orders_per_identifier": {"count": 3, "window_secs": 3600}}}}),
        )
        .await;
    assert_eq!(status, 201, "{ra}");
    assert_eq!(ra["acme"]["authz_reuse"], false, "{ra}");
    assert_eq!(
        ra["acme"]["rate_limits"]["orders_per_account"]["count"], 2,
        "{ra}"
    );
    let (status, bad) = server
        .post(
            "/api/v1/ras",
            json!({"name": "zero", "ca_ids": [ca["id"]], "enrollment": {"auth_modes": ["one_time_secret"]},
                "acme": {"rate_limits": {"orders_per_account": {"count": 0, "window_secs": 60}}}}),
        )
        .await;
    assert_eq!(status, 400, "{bad}");

    let order = |names: &[&str]| json!({"identifiers": names.iter().map(|n| json!({"type": "dns", "value": n})).collect::<Vec<_>>()});
    let mut a = Client::for_ra(&server, "limited").await;
    a.register().await;
    for _ in 0..2 {
        let o = a
            .post(&a.url("newOrder"), Some(&order(&["x.localhost"])))
            .await;
        assert_eq!(o.status, 201, "{}", o.text);
    }
    // The account's third order within the hour: 429 rateLimited, with when to come back.
    let third = a
        .post(&a.url("newOrder"), Some(&order(&["z.localhost"])))
        .await;
    assert_eq!((third.status, problem(&third)), (429, "rateLimited"));
    let wait: u64 = third.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&wait), "{wait}");

    // Another account may order x.localhost once more (the third order naming it), not a fourth time.
    let mut b = Client::for_ra(&server, "limited").await;
    b.register().await;
    let ok = b
        .post(&b.url("newOrder"), Some(&order(&["x.localhost"])))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let over = b
        .post(
            &b.url("newOrder"),
            Some(&order(&["y.localhost", "x.localhost"])),
        )
        .await;
    assert_eq!((over.status, problem(&over)), (429, "rateLimited"));
    assert!(
        over.body["detail"]
            .as_str()
            .unwrap()
            .contains("x.localhost"),
        "{}",
        over.text
    );
    assert!(over.headers.contains_key("retry-after"));
    // The limits are the RA's: the `web` directory has none.
    let mut w = Client::new(&server).await;
    w.register().await;
    for _ in 0..4 {
        let o = w
            .post(&w.url("newOrder"), Some(&order(&["x.localhost"])))
            .await;
        assert_eq!(o.status, 201, "{}", o.text);
    }
});

impl Client {
    /// Signs one request to the directory's `resource` per payload, each with its own nonce, then sends
    /// them all at once: requests that race.
    async fn burst(&self, resource: &str, payloads: &[Value]) -> Vec<Answer> {
        let url = self.url(resource);
        let mut bodies = Vec::new();
        for p in payloads {
            let nonce = self.nonce().await;
            bodies.push(self.key.sign(&self.header(&url, &nonce), Some(p)));
        }
        futures::future::join_all(bodies.iter().map(|b| self.send(&url, b))).await
    }
}

/// How many answers have each status.
fn statuses(answers: &[Answer]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for a in answers {
        *counts.entry(a.status).or_insert(0) += 1;
    }
    counts
}

// See: issue 15 (rate limits per account and per identifier are exact under concurrent requests: the
// count and the insert are one locked transaction).
backend_test!(
    racing_orders_at_the_limit_pass_exactly_the_limit,
    |backend| {
        let (server, ca) = setup(backend, free_port()).await;
        let (status, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "race", "ca_ids": [ca["id"]], "enrollment": {"auth_modes": ["one_time_secret"]},
                "acme": {"authz_reuse": false, "rate_limits": {
                    "orders_per_account": {"count": 3, "window_secs": 3600},
                    "orders_per_identifier": {"count": 5, "window_secs": 3600}}}}),
        )
        .await;
        assert_eq!(status, 201, "{ra}");
        let order = |name: String| json!({"identifiers": [{"type": "dns", "value": name}]});

        // One account, 10 orders for 10 names at once: exactly 3 pass the per-account limit.
        let mut a = Client::for_ra(&server, "race").await;
        a.register().await;
        let payloads: Vec<Value> = (0..10).map(|i| order(format!("a{i}.localhost"))).collect();
        let answers = a.burst("newOrder", &payloads).await;
        for r in answers.iter().filter(|r| r.status != 201) {
            assert_eq!((r.status, problem(r)), (429, "rateLimited"), "{}", r.text);
            assert!(r.headers.contains_key("retry-after"));
        }
        assert_eq!(
            statuses(&answers),
            [(201, 3), (429, 7)].into_iter().collect(),
            "per account"
        );

        // Four accounts, three orders each for the same name at once: exactly 5 pass the per-identifier limit.
        let mut clients = Vec::new();
        for _ in 0..4 {
            let mut c = Client::for_ra(&server, "race").await;
            c.register().await;
            clients.push(c);
        }
        let same = vec![order("same.localhost".into()); 3];
        let answers: Vec<Answer> =
            futures::future::join_all(clients.iter().map(|c| c.burst("newOrder", &same)))
                .await
                .into_iter()
                .flatten()
                .collect();
        assert_eq!(
            statuses(&answers),
            [(201, 5), (429, 7)].into_iter().collect(),
            "per identifier"
        );
    }
);

// See: issue 15 (rate limits: new accounts per client address, exact under concurrent requests).
backend_test!(new_accounts_per_address_are_limited, |backend| {
    let (server, ca) = setup(backend, free_port()).await;
    let (status, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "few", "ca_ids": [ca["id"]], "enrollment": {"auth_modes": ["one_time_secret"]},
                "acme": {"rate_limits": {"accounts_per_address": {"count": 2, "window_secs": 600}}}}),
        )
        .await;
    assert_eq!(status, 201, "{ra}");
    assert_eq!(
        ra["acme"]["rate_limits"]["accounts_per_address"]["count"], 2,
        "{ra}"
    );
    // Eight new keys from 127.0.0.1 at once: two accounts are made.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Client::for_ra(&server, "few").await);
    }
    let tos = [json!({"termsOfServiceAgreed": true})];
    let answers: Vec<Answer> =
        futures::future::join_all(clients.iter().map(|c| c.burst("newAccount", &tos)))
            .await
            .into_iter()
            .flatten()
            .collect();
    assert_eq!(
        statuses(&answers),
        [(201, 2), (429, 6)].into_iter().collect()
    );
    let refused = answers.iter().find(|a| a.status == 429).unwrap();
    assert_eq!(problem(refused), "rateLimited");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1: at most 2 new accounts"),
        "{}",
        refused.text
    );
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((500..=600).contains(&wait), "{wait}");
    // An existing account is found, not made: never limited.
    let made = answers.iter().position(|a| a.status == 201).unwrap();
    let again = clients[made]
        .post(
            &clients[made].url("newAccount"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    // The limit is the RA's: the `web` directory has none.
    let mut w = Client::new(&server).await;
    w.register().await;
});

// See: issue 15 (rate limits: failed validations per account and identifier).
backend_test!(
    failed_validations_block_new_orders_for_the_name,
    |backend| {
        let port = free_port();
        let (server, ca) = setup(backend, port).await;
        let (status, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "strict", "ca_ids": [ca["id"]], "enrollment": {"auth_modes": ["one_time_secret"]},
                "acme": {"rate_limits": {"failed_validations": {"count": 2, "window_secs": 3600}}}}),
        )
        .await;
        assert_eq!(status, 201, "{ra}");
        let order = |name: &str| json!({"identifiers": [{"type": "dns", "value": name}]});
        let mut a = Client::for_ra(&server, "strict").await;
        a.register().await;
        // Two orders for f.localhost whose http-01 fails (nothing answers on the port).
        for _ in 0..2 {
            let o = a
                .post(&a.url("newOrder"), Some(&order("f.localhost")))
                .await;
            assert_eq!(o.status, 201, "{}", o.text);
            let authz = a
                .post(o.body["authorizations"][0].as_str().unwrap(), None)
                .await;
            let ch = a
                .post(
                    authz.body["challenges"][0]["url"].as_str().unwrap(),
                    Some(&json!({})),
                )
                .await;
            assert_eq!(ch.body["status"], "invalid", "{}", ch.text);
            assert!(ch.body.get("validated").is_none(), "{}", ch.text);
        }
        // A third order naming it: refused until the first failure leaves the hour.
        let third = a
        .post(
            &a.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "g.localhost"}, {"type": "dns", "value": "f.localhost"}]})),
        )
        .await;
        assert_eq!((third.status, problem(&third)), (429, "rateLimited"));
        assert!(
            third.body["detail"]
                .as_str()
                .unwrap()
                .contains("f.localhost: at most 2 failed validations"),
            "{}",
            third.text
        );
        let wait: u64 = third.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((3000..=3600).contains(&wait), "{wait}");
        // Another name for the same account, and the same name for another account, are not limited.
        let other_name = a
            .post(&a.url("newOrder"), Some(&order("g.localhost")))
            .await;
        assert_eq!(other_name.status, 201, "{}", other_name.text);
        let mut b = Client::for_ra(&server, "strict").await;
        b.register().await;
        let (_, ready) = b.ready_order(port, &["f.localhost"], json!({})).await;
        assert_eq!(ready["status"], "ready");
    }
);

/// instant-acme's HTTP seam over the test's reqwest client (which trusts the test server's CA), so the
/// client needs neither its hyper-rustls stack nor the platform's verifier.
struct ReqwestHttp(reqwest::Client);

impl instant_acme::HttpClient for ReqwestHttp {
    fn request(
        &self,
        req: http::Request<instant_acme::BodyWrapper<bytes::Bytes>>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<instant_acme::BytesResponse, instant_acme::Error>,
                > + Send,
        >,
    > {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = http_body_util::BodyExt::collect(body)
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            let res = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let (status, headers) = (res.status(), res.headers().clone());
            let body = res
                .bytes()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let mut answer =
                http::Response::builder()
                    .status(status)
                    .body(instant_acme::BodyWrapper::<bytes::Bytes>::from(
                        body.to_vec(),
                    ))?;
            *answer.headers_mut() = headers;
            Ok(instant_acme::BytesResponse::from(answer))
        })
    }
}

/// The ACME problem type (without the URN prefix) of an instant-acme error.
fn acme_problem(e: &instant_acme::Error) -> String {
    match e {
        instant_acme::Error::Api(p) => p
            .r#type
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches("urn:ietf:params:acme:error:")
            .to_string(),
        other => panic!("not an ACME problem: {other:?}"),
    }
}

// See: issue 15 (a second real client: instant-acme, a Rust ACME client, registers, orders under a
// profile, answers http-01, is refused a CSR that names more, finalizes, reads the renewal window, renews
// with `replaces`, changes its key and deactivates its account).
backend_test!(instant_acme_orders_renews_and_rolls_its_key, |backend| {
    use instant_acme::{
        Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, Identifier, NewAccount,
        NewOrder, OrderStatus, RetryPolicy,
    };
    let port = free_port();
    let (server, _) = setup(backend, port).await;
    let directory = format!("{}/acme/web/directory", server.base_url);
    let http = || Box::new(ReqwestHttp(server.client.clone()));
    let (mut account, _) = Account::builder_with_http(http())
        .create(
            &NewAccount {
                contact: &["mailto:ops@example.test"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            None,
        )
        .await
        .unwrap();
    let mut profiles: Vec<&str> = account.profiles().map(|p| p.name).collect();
    profiles.sort();
    assert_eq!(profiles, ["long", "short"]);

    let names = [Identifier::Dns("ia.localhost".into())];
    let mut order = account
        .new_order(&NewOrder::new(&names).profile("short"))
        .await
        .unwrap();
    assert_eq!(order.state().status, OrderStatus::Pending);
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz.unwrap();
        assert_eq!(authz.status, AuthorizationStatus::Pending);
        let mut challenge = authz.challenge(ChallengeType::Http01).unwrap();
        let answer = answer_once(port, challenge.key_authorization().as_str().to_string());
        challenge.set_ready().await.unwrap();
        answer.await.unwrap();
    }
    let retry = RetryPolicy::new().timeout(Duration::from_secs(20));
    assert_eq!(order.poll_ready(&retry).await.unwrap(), OrderStatus::Ready);

    // A CSR naming one more name than the order: badCSR, and the order stays ready.
    let dir = tempfile::tempdir().unwrap();
    let der = |pem: &str| {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    let bad = openssl_csr(
        dir.path(),
        "bad",
        "ec-p256",
        "/CN=ia.localhost",
        Some("DNS:ia.localhost,DNS:ib.localhost"),
    );
    let refused = order.finalize_csr(&der(&bad)).await.unwrap_err();
    assert_eq!(acme_problem(&refused), "badCSR");
    assert_eq!(order.refresh().await.unwrap().status, OrderStatus::Ready);
    let good = openssl_csr(
        dir.path(),
        "good",
        "ec-p256",
        "/CN=ia.localhost",
        Some("DNS:ia.localhost"),
    );
    order.finalize_csr(&der(&good)).await.unwrap();
    let chain = order.poll_certificate(&retry).await.unwrap();
    let leaf = shedu_pki::pem_to_der_certs(chain.as_bytes())
        .unwrap()
        .remove(0);
    let info = shedu_pki::CertInfo::from_der(&leaf).unwrap();
    assert_eq!(info.sans, ["DNS:ia.localhost"], "{:?}", info.sans);
    let days7 = info.not_after - info.not_before;
    assert!(
        (7 * 86_400..7 * 86_400 + 600).contains(&days7),
        "the short profile: {days7}"
    );

    // ARI (RFC 9773) from the certificate itself: a window in the last third of the validity.
    let leaf_der = rustls_pki_types::CertificateDer::from(leaf.clone());
    let cert_id = CertificateIdentifier::try_from(&leaf_der).unwrap();
    let (renewal, _) = account.renewal_info(&cert_id).await.unwrap();
    let start = renewal.suggested_window.start.unix_timestamp();
    let end = renewal.suggested_window.end.unix_timestamp();
    assert!(
        info.not_before + (info.not_after - info.not_before) * 2 / 3 <= start
            && start < end
            && end <= info.not_after,
        "{renewal:?}"
    );

    // Renewal: `replaces` is echoed; the authorization is reused, so the order is ready at once. A second
    // order replacing the same certificate: alreadyReplaced.
    let mut renewed = account
        .new_order(&NewOrder::new(&names).replaces(cert_id.clone()))
        .await
        .unwrap();
    assert_eq!(renewed.state().status, OrderStatus::Ready);
    assert_eq!(
        renewed.state().replaces.as_ref().map(|r| r.to_string()),
        Some(cert_id.to_string())
    );
    let Err(twice) = account
        .new_order(&NewOrder::new(&names).replaces(cert_id.clone()))
        .await
    else {
        panic!("a second order replaced the same certificate");
    };
    assert_eq!(acme_problem(&twice), "alreadyReplaced");
    let again = openssl_csr(
        dir.path(),
        "again",
        "ec-p256",
        "/CN=ia.localhost",
        Some("DNS:ia.localhost"),
    );
    renewed.finalize_csr(&der(&again)).await.unwrap();
    assert!(renewed.poll_certificate(&retry).await.is_ok());

    // Key change (RFC 8555 §7.3.5): the old key no longer signs for the account, the new one does.
    let old = account.key_thumbprint().to_string();
    let credentials = account.update_key().await.unwrap();
    assert_ne!(account.key_thumbprint(), old);
    let id = account.id().to_string();
    let restored = Account::builder_with_http(http())
        .from_credentials(credentials)
        .await
        .unwrap();
    assert_eq!(restored.id(), id);
    restored
        .new_order(&NewOrder::new(&[Identifier::Dns("ic.localhost".into())]))
        .await
        .unwrap();

    // Deactivation: the account signs nothing more.
    account.deactivate().await.unwrap();
    let Err(after) = restored
        .new_order(&NewOrder::new(&[Identifier::Dns("id.localhost".into())]))
        .await
    else {
        panic!("a deactivated account ordered");
    };
    assert_eq!(acme_problem(&after), "unauthorized");
});

// See: issue 15 (errors: subproblems for compound failures, RFC 8555 §6.7.1).
backend_test!(rejected_identifiers_are_listed_as_subproblems, |backend| {
    let (server, _) = setup(backend, free_port()).await;
    let mut c = Client::new(&server).await;
    c.register().await;
    let ids = |list: &[(&str, &str)]| json!({"identifiers": list.iter().map(|(t, v)| json!({"type": t, "value": v})).collect::<Vec<_>>()});
    // Two names the RA refuses beside a good one: rejectedIdentifier, one subproblem per refused name.
    let two = c
        .post(
            &c.url("newOrder"),
            Some(&ids(&[
                ("dns", "ok.localhost"),
                ("ip", "10.0.0.1"),
                ("dns", "bad..name"),
            ])),
        )
        .await;
    assert_eq!((two.status, problem(&two)), (400, "rejectedIdentifier"));
    let subs = two.body["subproblems"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{}", two.text);
    assert_eq!(
        subs[0]["identifier"],
        json!({"type": "ip", "value": "10.0.0.1"})
    );
    assert_eq!(subs[1]["identifier"]["value"], "bad..name");
    assert!(
        subs.iter()
            .all(|s| s["type"] == "urn:ietf:params:acme:error:rejectedIdentifier")
    );
    // Problems of different types: compound.
    let mixed = c
        .post(
            &c.url("newOrder"),
            Some(&ids(&[("ip", "10.0.0.1"), ("email", "ops@example.test")])),
        )
        .await;
    assert_eq!((mixed.status, problem(&mixed)), (400, "compound"));
    let types: Vec<&str> = mixed.body["subproblems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "urn:ietf:params:acme:error:rejectedIdentifier",
            "urn:ietf:params:acme:error:unsupportedIdentifier"
        ],
        "{}",
        mixed.text
    );
    // One refused name: its own problem, no subproblems.
    let one = c
        .post(&c.url("newOrder"), Some(&ids(&[("ip", "10.0.0.1")])))
        .await;
    assert_eq!(problem(&one), "rejectedIdentifier");
    assert!(one.body.get("subproblems").is_none(), "{}", one.text);
});
