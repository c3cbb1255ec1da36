//! The validation authority against real clients: `openssl ocsp` (POST, nonce, SHA-256 CertIDs, RFC 5019
//! GET), `openssl crl` and `openssl verify -crl_check`, on SQLite and PostgreSQL.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use shedu_testkit::{TestServer, backend_test, openssl, openssl_ca, openssl_csr};

struct Pki {
    root: Value,
    int: Value,
    leaf: Value,
    dir: tempfile::TempDir,
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// root (P-384) → intermediate (P-256, given VA profile) → leaf, with the PEM files openssl needs.
async fn pki(server: &TestServer, profile: Value) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let root = server
        .create_ca(
            json!({"name": "root", "key_type": "ec-p384", "subject": {"common_name": "VA Root"}}),
        )
        .await;
    let int = server
        .create_ca(
            json!({"name": "int", "key_type": "ec-p256", "subject": {"common_name": "VA Issuing"},
            "parent_id": root["id"], "profile": profile}),
        )
        .await;
    let leaf = issue(server, &int, dir.path(), "leaf").await;
    write(
        dir.path(),
        "root.pem",
        root["certificate_pem"].as_str().unwrap(),
    );
    write(
        dir.path(),
        "int.pem",
        int["certificate_pem"].as_str().unwrap(),
    );
    write(
        dir.path(),
        "chain.pem",
        &format!(
            "{}{}",
            int["certificate_pem"].as_str().unwrap(),
            root["certificate_pem"].as_str().unwrap()
        ),
    );
    Pki {
        root,
        int,
        leaf,
        dir,
    }
}

async fn issue(server: &TestServer, ca: &Value, dir: &Path, stem: &str) -> Value {
    let csr = openssl_csr(dir, stem, "ec-p256", &format!("/CN={stem}"), None);
    let (status, cert) = server
        .post(
            &format!("/api/v1/cas/{}/certificates", ca["id"].as_str().unwrap()),
            json!({"csr_pem": csr}),
        )
        .await;
    assert_eq!(status, 201, "{cert}");
    write(
        dir,
        &format!("{stem}.pem"),
        cert["certificate_pem"].as_str().unwrap(),
    );
    cert
}

async fn revoke(server: &TestServer, ca: &Value, cert: &Value, body: Value) {
    let path = format!(
        "/api/v1/cas/{}/certificates/{}/revoke",
        ca["id"].as_str().unwrap(),
        cert["serial"].as_str().unwrap()
    );
    let (status, r) = server.post(&path, body).await;
    assert_eq!(status, 200, "{r}");
}

fn ocsp_cli(server: &TestServer, dir: &Path, extra: &[&str]) -> String {
    let url = format!("{}/ocsp", server.http_url);
    let mut args = vec![
        "ocsp",
        "-issuer",
        "int.pem",
        "-url",
        url.as_str(),
        "-CAfile",
        "root.pem",
    ];
    args.extend_from_slice(extra);
    let (_, out) = openssl(dir, &args);
    out
}

backend_test!(
    openssl_ocsp_says_good_then_revoked_and_unknown_for_strangers,
    |backend| {
        let server = TestServer::start(backend).await;
        let p = pki(&server, json!({})).await;
        let d = p.dir.path();

        for extra in [
            &["-cert", "leaf.pem"][..],
            &["-cert", "leaf.pem", "-no_nonce"],
            &["-sha256", "-cert", "leaf.pem"],
        ] {
            let out = ocsp_cli(&server, d, extra);
            assert!(out.contains("Response verify OK"), "{extra:?}: {out}");
            assert!(out.contains("leaf.pem: good"), "{extra:?}: {out}");
        }
        let out = ocsp_cli(&server, d, &["-serial", "0x1234abcd"]);
        assert!(
            out.contains("Response verify OK") && out.contains("0x1234abcd: unknown"),
            "{out}"
        );

        revoke(
            &server,
            &p.int,
            &p.leaf,
            json!({"reason": "key_compromise"}),
        )
        .await;
        for extra in [
            &["-cert", "leaf.pem"][..],
            &["-cert", "leaf.pem", "-no_nonce"],
            &["-sha256", "-cert", "leaf.pem"],
        ] {
            let out = ocsp_cli(&server, d, extra);
            assert!(out.contains("Response verify OK"), "{extra:?}: {out}");
            assert!(out.contains("leaf.pem: revoked"), "{extra:?}: {out}");
            assert!(out.contains("Reason: keyCompromise"), "{extra:?}: {out}");
        }

        // An issuer this platform does not manage: not authoritative.
        openssl_ca(d, "other", "Other");
        let url = format!("{}/ocsp", server.http_url);
        let (_, out) = openssl(
            d,
            &[
                "ocsp",
                "-issuer",
                "other.pem",
                "-serial",
                "0x01",
                "-url",
                &url,
                "-no_nonce",
            ],
        );
        assert!(out.contains("unauthorized"), "{out}");

        // Malformed requests get malformedRequest, not an HTTP error.
        let res = server
            .client
            .post(url.clone())
            .body(vec![0x30, 0x03, 0x01, 0x02])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.bytes().await.unwrap().as_ref(),
            &[0x30, 0x03, 0x0a, 0x01, 0x01]
        );
        let res = reqwest::get(format!("{}/ocsp/%%%notbase64", server.http_url))
            .await
            .unwrap();
        assert_eq!(
            res.bytes().await.unwrap().as_ref(),
            &[0x30, 0x03, 0x0a, 0x01, 0x01]
        );
    }
);

backend_test!(rfc5019_get_is_cacheable_and_verifies, |backend| {
    let server = TestServer::start(backend).await;
    let p = pki(&server, json!({})).await;
    let d = p.dir.path();
    let (ok, out) = openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "int.pem",
            "-cert",
            "leaf.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    assert!(ok, "{out}");
    let req = std::fs::read(d.join("req.der")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&req);
    let encoded: String = b64
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_string(),
            '/' => "%2F".to_string(),
            '=' => "%3D".to_string(),
            c => c.to_string(),
        })
        .collect();
    let res = reqwest::get(format!("{}/ocsp/{encoded}", server.http_url))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/ocsp-response");
    let cc = res.headers()["cache-control"].to_str().unwrap().to_string();
    let max_age: i64 = cc
        .split("max-age=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age > 0 && max_age <= 86_400, "{cc}");
    assert!(res.headers().contains_key("etag") && res.headers().contains_key("last-modified"));
    let etag = res.headers()["etag"].clone();
    std::fs::write(d.join("resp.der"), res.bytes().await.unwrap()).unwrap();
    let (_, out) = openssl(
        d,
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "int.pem",
            "-cert",
            "leaf.pem",
            "-CAfile",
            "root.pem",
            "-no_nonce",
        ],
    );
    assert!(
        out.contains("Response verify OK") && out.contains("leaf.pem: good"),
        "{out}"
    );
    // The same question is answered from the precomputed response: same bytes, same ETag. (On PostgreSQL
    // the cache counts only under this replica's lease, which a loaded machine may let lapse for a moment:
    // a few tries.)
    let mut previous = etag;
    let mut cached = false;
    for _ in 0..5 {
        let again = reqwest::get(format!("{}/ocsp/{encoded}", server.http_url))
            .await
            .unwrap();
        let tag = again.headers()["etag"].clone();
        if tag == previous {
            cached = true;
            break;
        }
        previous = tag;
    }
    assert!(cached, "the answer never came from the cache");
    // The HTTPS listener serves the VA too.
    let res = server
        .client
        .post(format!("{}/ocsp", server.base_url))
        .body(req)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
});

backend_test!(ca_key_can_sign_ocsp_directly_when_configured, |backend| {
    let server = TestServer::start(backend).await;
    let p = pki(&server, json!({"ocsp_signing": "ca"})).await;
    let out = ocsp_cli(&server, p.dir.path(), &["-cert", "leaf.pem"]);
    assert!(
        out.contains("Response verify OK") && out.contains("leaf.pem: good"),
        "{out}"
    );
});

backend_test!(
    crls_verify_and_list_revocations_with_reason_and_invalidity_date,
    |backend| {
        let server = TestServer::start(backend).await;
        let p = pki(&server, json!({})).await;
        let d = p.dir.path();
        let int_id = p.int["id"].as_str().unwrap();
        let root_id = p.root["id"].as_str().unwrap();
        let fetch = |path: String, file: &'static str| {
            let d = d.to_path_buf();
            async move {
                let res = reqwest::get(path).await.unwrap();
                assert_eq!(res.status(), 200);
                std::fs::write(d.join(file), res.bytes().await.unwrap()).unwrap();
            }
        };
        fetch(format!("{}/crl/{int_id}", server.http_url), "int.crl").await;
        fetch(
            format!("{}/crl/{root_id}.pem", server.http_url),
            "root.crl.pem",
        )
        .await;
        let (ok, out) = openssl(
            d,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "int.crl",
                "-CAfile",
                "chain.pem",
                "-noout",
            ],
        );
        assert!(ok && out.contains("verify OK"), "{out}");
        let (ok, _) = openssl(
            d,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "int.crl",
                "-out",
                "int.crl.pem",
            ],
        );
        assert!(ok);
        let verify = |d: &Path| {
            openssl(
                d,
                &[
                    "verify",
                    "-crl_check_all",
                    "-CAfile",
                    "root.pem",
                    "-untrusted",
                    "int.pem",
                    "-CRLfile",
                    "int.crl.pem",
                    "-CRLfile",
                    "root.crl.pem",
                    "leaf.pem",
                ],
            )
        };
        let (ok, out) = verify(d);
        assert!(ok && out.contains("leaf.pem: OK"), "{out}");
        let (_, text) = openssl(d, &["crl", "-in", "int.crl.pem", "-noout", "-text"]);
        let first_number = crl_number(&text);

        revoke(
            &server,
            &p.int,
            &p.leaf,
            json!({"reason": "key_compromise", "invalidity_date": "2026-01-02T03:04:05Z"}),
        )
        .await;
        fetch(
            format!("{}/crl/{int_id}.pem", server.http_url),
            "int.crl.pem",
        )
        .await;
        let (ok, out) = verify(d);
        assert!(!ok && out.contains("certificate revoked"), "{out}");
        let (_, text) = openssl(d, &["crl", "-in", "int.crl.pem", "-noout", "-text"]);
        assert!(
            crl_number(&text) > first_number,
            "CRL numbers increase: {text}"
        );
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(
            text.contains("Invalidity Date") && text.contains("Jan  2 03:04:05 2026 GMT"),
            "{text}"
        );
        assert!(
            text.contains(&p.leaf["serial"].as_str().unwrap().to_uppercase()),
            "{text}"
        );

        // The delta CRL names its base and lists what changed since.
        fetch(
            format!("{}/crl/{int_id}/delta", server.http_url),
            "int.delta.crl",
        )
        .await;
        let (ok, text) = openssl(
            d,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "int.delta.crl",
                "-noout",
                "-text",
            ],
        );
        assert!(ok && text.contains("Delta CRL Indicator"), "{text}");
        let (ok, out) = openssl(
            d,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "int.delta.crl",
                "-CAfile",
                "chain.pem",
                "-noout",
            ],
        );
        assert!(ok && out.contains("verify OK"), "{out}");

        // The leaf names where to check it.
        let (_, text) = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
        assert!(
            text.contains(&format!("OCSP - URI:{}/ocsp", server.http_url)),
            "{text}"
        );
        assert!(
            text.contains(&format!("CA Issuers - URI:{}/ca/{int_id}", server.http_url)),
            "{text}"
        );
        assert!(
            text.contains(&format!("URI:{}/crl/{int_id}", server.http_url)),
            "{text}"
        );
        let res = reqwest::get(format!("{}/ca/{int_id}", server.http_url))
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], "application/pkix-cert");
        // What HTTP refuses before OCSP or a CRL is reached is a problem document, as on the API.
        for path in [
            "/crl/nope",
            "/crl/nope/delta",
            "/crl/nope/x/delta",
            "/ca/nope",
        ] {
            let res = reqwest::get(format!("{}{path}", server.http_url))
                .await
                .unwrap();
            assert_eq!(res.status(), 404, "{path}");
            assert_eq!(
                res.headers()["content-type"],
                "application/problem+json",
                "{path}"
            );
            let problem: serde_json::Value = res.json().await.unwrap();
            assert_eq!(
                problem["type"], "urn:shedu:problem:not-found",
                "{path}: {problem}"
            );
        }
        let res = reqwest::Client::new()
            .post(format!("{}/ocsp", server.http_url))
            .header("content-type", "application/ocsp-request")
            .body(vec![0x30; 20 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            problem["type"], "urn:shedu:problem:body-too-large",
            "{problem}"
        );
    }
);

fn crl_number(text: &str) -> u64 {
    let after = text.split("X509v3 CRL Number:").nth(1).expect("CRL number");
    after.split_whitespace().next().unwrap().parse().unwrap()
}

backend_test!(
    partitioned_crls_bound_each_crl_and_still_verify,
    |backend| {
        let server = TestServer::start(backend).await;
        let p = pki(&server, json!({"crl_shards": 4, "aia": false})).await;
        let d = p.dir.path();
        let int_id = p.int["id"].as_str().unwrap();
        let (_, text) = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
        assert!(
            !text.contains("Authority Information Access"),
            "AIA turned off: {text}"
        );
        let mut certs = Vec::new();
        for i in 0..8 {
            certs.push(issue(&server, &p.int, d, &format!("dev{i}")).await);
        }
        for c in certs.iter().step_by(2) {
            revoke(&server, &p.int, c, json!({"reason": "superseded"})).await;
        }
        let root_crl = reqwest::get(format!(
            "{}/crl/{}.pem",
            server.http_url,
            p.root["id"].as_str().unwrap()
        ))
        .await
        .unwrap();
        std::fs::write(d.join("root.crl.pem"), root_crl.bytes().await.unwrap()).unwrap();
        let mut shards_seen = std::collections::HashSet::new();
        for (i, c) in certs.iter().enumerate() {
            let (_, text) = openssl(
                d,
                &["x509", "-in", &format!("dev{i}.pem"), "-noout", "-text"],
            );
            let url = text
                .split("URI:")
                .find(|s| s.contains("/crl/"))
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            assert!(
                url.starts_with(&format!("{}/crl/{int_id}/", server.http_url)),
                "{url}"
            );
            shards_seen.insert(url.clone());
            let res = reqwest::get(url.clone()).await.unwrap();
            assert_eq!(res.status(), 200, "{url}");
            std::fs::write(d.join("part.crl"), res.bytes().await.unwrap()).unwrap();
            let (_, crl_text) = openssl(
                d,
                &[
                    "crl", "-inform", "DER", "-in", "part.crl", "-noout", "-text",
                ],
            );
            assert!(
                crl_text.contains("Issuing Distribution Point") && crl_text.contains(&url),
                "{crl_text}"
            );
            openssl(
                d,
                &[
                    "crl",
                    "-inform",
                    "DER",
                    "-in",
                    "part.crl",
                    "-out",
                    "part.crl.pem",
                ],
            );
            let (ok, out) = openssl(
                d,
                &[
                    "verify",
                    "-crl_check_all",
                    "-CAfile",
                    "root.pem",
                    "-untrusted",
                    "int.pem",
                    "-CRLfile",
                    "part.crl.pem",
                    "-CRLfile",
                    "root.crl.pem",
                    &format!("dev{i}.pem"),
                ],
            );
            if i % 2 == 0 {
                assert!(!ok && out.contains("certificate revoked"), "dev{i}: {out}");
            } else {
                assert!(ok, "dev{i}: {out}");
            }
            let _ = c;
        }
        assert!(
            shards_seen.len() > 1,
            "8 certificates over 4 partitions use more than one"
        );
        let res = reqwest::get(format!("{}/crl/{int_id}/9", server.http_url))
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "no partition 9 of 4");
    }
);

backend_test!(no_good_answer_after_the_revoke_call_returned, |backend| {
    let server = TestServer::start(backend).await;
    let p = pki(&server, json!({})).await;
    let d = p.dir.path();
    let (ok, out) = openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "int.pem",
            "-cert",
            "leaf.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    assert!(ok, "{out}");
    let req = std::fs::read(d.join("req.der")).unwrap();
    let cert_id = shedu_pki::ocsp::OcspRequest::from_der(&req)
        .unwrap()
        .entries[0]
        .raw
        .clone();
    let url = format!("{}/ocsp", server.http_url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, req, cert_id, stop) = (url.clone(), req.clone(), cert_id.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let body = client
                    .post(&url)
                    .body(req.clone())
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                seen.push((started, status_after(&body, &cert_id)));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    revoke(
        &server,
        &p.int,
        &p.leaf,
        json!({"reason": "key_compromise"}),
    )
    .await;
    let returned = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut before_good = 0;
    let mut after = 0;
    for t in tasks {
        for (started, status) in t.await.unwrap() {
            if started >= returned {
                after += 1;
                assert_eq!(
                    status, 0xa1,
                    "an answer to a request sent after the revoke call returned said {status:#x}"
                );
            } else if status == 0x80 {
                before_good += 1;
            }
        }
    }
    assert!(
        before_good > 0 && after > 0,
        "the race was exercised: {before_good} good before, {after} after"
    );
});

/// The CertStatus tag following the echoed CertID: 0x80 good, 0xa1 revoked, 0x82 unknown.
fn status_after(response: &[u8], cert_id: &[u8]) -> u8 {
    let pos = response
        .windows(cert_id.len())
        .position(|w| w == cert_id)
        .expect("CertID echoed");
    response[pos + cert_id.len()]
}

// Issue 19: a signed answer is kept in the database, so another replica (or this one after a restart)
// serves the same bytes instead of signing again (ECDSA signatures differ each time, so equal bytes mean
// one signature); a revocation makes the kept `good` answer unusable at once for a replica that never
// saw it in memory.
backend_test!(
    a_signed_answer_is_served_by_another_replica_until_a_revocation,
    |backend| {
        let a = TestServer::start(backend).await;
        let p = pki(&a, json!({})).await;
        let d = p.dir.path();
        let ask = |server: &TestServer, out: &str| {
            ocsp_cli(
                server,
                d,
                &["-cert", "leaf.pem", "-no_nonce", "-respout", out],
            )
        };
        let first = ask(&a, "a.der");
        assert!(first.contains("leaf.pem: good"), "{first}");
        let signed = std::fs::read(d.join("a.der")).unwrap();

        let b = a.start_beside().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = ask(&b, "b.der");
            assert!(
                out.contains("Response verify OK") && out.contains("leaf.pem: good"),
                "{out}"
            );
            if std::fs::read(d.join("b.der")).unwrap() == signed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the second replica still signs its own answer 10 s after the first signed one"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        revoke(&a, &p.int, &p.leaf, json!({"reason": "key_compromise"})).await;
        let c = a.start_beside().await;
        let out = ask(&c, "c.der");
        assert!(
            out.contains("Response verify OK") && out.contains("leaf.pem: revoked"),
            "a replica that starts after the revocation: {out}"
        );
        assert_ne!(std::fs::read(d.join("c.der")).unwrap(), signed);
        let out = ask(&a, "a2.der");
        assert!(out.contains("leaf.pem: revoked"), "{out}");
    }
);

/// A CRL fetched over HTTP, DER, and its number as `openssl crl` reads it.
async fn crl_of(http_url: &str, ca_id: &str, dir: &Path) -> (Vec<u8>, u64) {
    let res = reqwest::get(format!("{http_url}/crl/{ca_id}"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let der = res.bytes().await.unwrap().to_vec();
    std::fs::write(dir.join("fetched.crl"), &der).unwrap();
    let (ok, text) = openssl(
        dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "fetched.crl",
            "-noout",
            "-text",
        ],
    );
    assert!(ok, "{text}");
    (der, crl_number(&text))
}

// See: issue 19 (CRL rebuilds on exactly one replica at a time). Before, every server signed its own CRL
// with the next number, so two replicas behind one balancer served different CRLs, and a refresh was
// signed once per replica.
backend_test!(
    servers_on_one_database_serve_one_crl_signed_once,
    |backend| {
        let a = TestServer::start(backend).await;
        let p = pki(&a, json!({})).await;
        let d = p.dir.path();
        let int_id = p.int["id"].as_str().unwrap();
        let (first, n) = crl_of(&a.http_url, int_id, d).await;
        // PostgreSQL: a second replica beside the first. SQLite (one process per database file): the
        // same server restarted, which must also serve what it stored rather than sign again.
        let (a, b) = match backend {
            shedu_testkit::Backend::Postgres => {
                let b = a.start_beside().await;
                (Some(a), b)
            }
            shedu_testkit::Backend::Sqlite => (None, a.restart().await),
        };
        let (der, number) = crl_of(&b.http_url, int_id, d).await;
        assert_eq!(number, n, "the stored CRL, not a new one");
        assert!(der == first, "the stored CRL's bytes");

        revoke(&b, &p.int, &p.leaf, json!({"reason": "key_compromise"})).await;
        let (second, number) = crl_of(&b.http_url, int_id, d).await;
        assert_eq!(number, n + 1, "one new CRL for one revocation");
        if let Some(a) = &a {
            let (der, _) = crl_of(&a.http_url, int_id, d).await;
            assert!(der == second, "the other replica serves the same CRL");
        }

        // Past half its validity the lifecycle job on every server refreshes it: signed once in all.
        for s in a.iter().chain([&b]) {
            s.clock.advance(13 * 3600);
        }
        for s in a.iter().chain([&b]) {
            assert_eq!(s.services.va.refresh_crls().await.unwrap(), 1);
        }
        let (third, number) = crl_of(&b.http_url, int_id, d).await;
        assert_eq!(number, n + 2, "one refresh signed, not one per server");
        assert!(third != second);
        if let Some(a) = &a {
            let (der, _) = crl_of(&a.http_url, int_id, d).await;
            assert!(der == third, "the other replica serves the refreshed CRL");
        }
    }
);
