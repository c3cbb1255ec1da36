//! Every name that enters a certificate is validated (RFC 5280, RFC 9525) and passes the CA profile's name
//! policy, on SQLite and PostgreSQL; `openssl x509 -text` judges what is issued. See: issue 12.
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{Value, json};
use shedu_pki::rcgen::{self, DistinguishedName, DnType};
use shedu_testkit::{TestServer, backend_test, openssl, openssl_csr};

async fn issue(server: &TestServer, ca_id: &str, csr: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({ "csr_pem": csr });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    server
        .post(&format!("/api/v1/cas/{ca_id}/certificates"), body)
        .await
}

/// A CSR made with rcgen, for subjects openssl refuses to build (a 10 KB CN, control characters, none).
fn rcgen_csr(attrs: &[(DnType, &str)], sans: &[&str]) -> String {
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = DistinguishedName::new();
    for (ty, value) in attrs {
        params.distinguished_name.push(ty.clone(), *value);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// How many certificates and events exist: a refused request changes neither.
async fn footprint(server: &TestServer) -> (usize, usize) {
    let (_, certs) = server.get("/api/v1/certificates?limit=1000").await;
    let (_, events) = server.get("/api/v1/events?limit=1000").await;
    let len = |v: &Value| v["items"].as_array().map_or(0, Vec::len);
    (len(&certs), len(&events))
}

/// `openssl x509 -text` of an issued certificate.
fn x509_text(dir: &Path, cert: &Value) -> String {
    std::fs::write(
        dir.join("leaf.pem"),
        cert["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    let (ok, text) = openssl(dir, &["x509", "-noout", "-text", "-in", "leaf.pem"]);
    assert!(ok, "{text}");
    text
}

fn ca_id(ca: &Value) -> &str {
    ca["id"].as_str().unwrap()
}

backend_test!(bad_names_are_refused_and_nothing_is_stored, |backend| {
    let server = TestServer::start(backend).await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let ca = server
        .create_ca(
            json!({"name": "names", "key_type": "ec-p256", "subject": {"common_name": "Names"}}),
        )
        .await;
    let ca = ca_id(&ca);
    let plain = openssl_csr(dir, "plain", "ec-p256", "/CN=plc-7", None);
    let many: Vec<String> = (0..10_000).map(|i| format!("dns:d{i}.example")).collect();
    let long_cn = "c".repeat(10 * 1024);

    // (what, CSR, request body extras, problem type)
    let cases: Vec<(&str, String, Value, &str)> = vec![
        (
            "space",
            plain.clone(),
            json!({"sans": ["dns:a b"]}),
            "invalid-name",
        ),
        (
            "NUL",
            plain.clone(),
            json!({"sans": ["dns:x\u{0}y"]}),
            "invalid-name",
        ),
        (
            "bare *",
            plain.clone(),
            json!({"sans": ["dns:*"]}),
            "invalid-name",
        ),
        (
            "empty",
            plain.clone(),
            json!({"sans": ["dns:"]}),
            "invalid-name",
        ),
        (
            "inner *",
            plain.clone(),
            json!({"sans": ["dns:f*o.example.com"]}),
            "invalid-name",
        ),
        (
            "trailing dot",
            plain.clone(),
            json!({"sans": ["dns:plc-7.example."]}),
            "invalid-name",
        ),
        (
            "bad A-label",
            plain.clone(),
            json!({"sans": ["dns:xn--a.example"]}),
            "invalid-name",
        ),
        (
            "e-mail",
            plain.clone(),
            json!({"sans": ["email:not an email"]}),
            "invalid-name",
        ),
        (
            "javascript",
            plain.clone(),
            json!({"sans": ["uri:javascript:alert(1)"]}),
            "invalid-name",
        ),
        (
            "10,000 SANs",
            plain.clone(),
            json!({"sans": many}),
            "too-many-sans",
        ),
        (
            "CSR SAN",
            openssl_csr(
                dir,
                "wild",
                "ec-p256",
                "/CN=plc-7",
                Some("DNS:f*o.example.com"),
            ),
            json!({}),
            "invalid-name",
        ),
        (
            "CSR URI",
            openssl_csr(
                dir,
                "js",
                "ec-p256",
                "/CN=plc-7",
                Some("URI:javascript:alert(1)"),
            ),
            json!({}),
            "invalid-name",
        ),
        (
            "10 KB CN",
            rcgen_csr(&[(DnType::CommonName, &long_cn)], &[]),
            json!({}),
            "invalid-name",
        ),
        (
            "CN with NUL",
            rcgen_csr(&[(DnType::CommonName, "plc\u{0}7")], &[]),
            json!({}),
            "invalid-name",
        ),
        (
            "CN with newline",
            rcgen_csr(&[(DnType::CommonName, "plc\n7")], &[]),
            json!({}),
            "invalid-name",
        ),
        (
            "empty subject, no SAN",
            rcgen_csr(&[], &[]),
            json!({}),
            "empty-subject",
        ),
        (
            "two CNs",
            openssl_csr(dir, "two", "ec-p256", "/CN=plc-7/CN=admin", None),
            json!({}),
            "invalid-name",
        ),
    ];
    let before = footprint(&server).await;
    for (what, csr, extra, problem) in cases {
        let (status, body) = issue(&server, ca, &csr, extra).await;
        assert_eq!(
            (status, body["type"].as_str().unwrap_or_default()),
            (400, format!("urn:shedu:problem:{problem}").as_str()),
            "{what}: {body}"
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(
            !detail.chars().any(char::is_control),
            "{what}: the detail escapes control characters: {detail:?}"
        );
        assert!(detail.len() < 300, "{what}: a bounded detail: {detail}");
    }
    assert_eq!(footprint(&server).await, before, "nothing was stored");

    // The detail names the offending name, escaped.
    let (_, body) = issue(&server, ca, &plain, json!({"sans": ["dns:x\u{0}y"]})).await;
    assert!(
        body["detail"].as_str().unwrap().contains(r#""x\0y""#),
        "{body}"
    );
    let (_, body) = issue(
        &server,
        ca,
        &plain,
        json!({"sans": ["uri:javascript:alert(1)"]}),
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("javascript:alert(1)"),
        "{body}"
    );
});

backend_test!(good_names_are_issued_as_openssl_reads_them, |backend| {
    let server = TestServer::start(backend).await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let ca = server
        .create_ca(
            json!({"name": "good", "key_type": "ec-p256", "subject": {"common_name": "Good"}}),
        )
        .await;
    let ca = ca_id(&ca);
    let csr = openssl_csr(
        dir,
        "good",
        "ec-p256",
        "/CN=plc-7/O=Evil Corp/emailAddress=ceo@evil.example",
        Some(
            "DNS:plc-7,DNS:*.plant.example,DNS:xn--bcher-kva.example,IP:10.0.0.7,IP:fd00::7,\
             email:ops@plant.example,URI:spiffe://plant.example/plc-7,URI:urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        ),
    );
    let (status, cert) = issue(&server, ca, &csr, json!({})).await;
    assert_eq!(status, 201, "{cert}");
    let text = x509_text(dir, &cert);
    for needle in [
        // The default policy keeps the CN and drops what the requester claims about itself.
        "Subject: CN = plc-7\n",
        "DNS:plc-7, DNS:*.plant.example, DNS:xn--bcher-kva.example, IP Address:10.0.0.7, \
         IP Address:FD00:0:0:0:0:0:0:7, email:ops@plant.example, URI:spiffe://plant.example/plc-7, \
         URI:urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }

    // SANs from the request body, bare and prefixed.
    let plain = openssl_csr(dir, "plain", "ec-p256", "/CN=gw-1", None);
    let (status, cert) = issue(
        &server,
        ca,
        &plain,
        json!({"sans": ["gw-1.plant.example", "10.1.2.3", "uri:https://gw-1.plant.example/"]}),
    )
    .await;
    assert_eq!(status, 201, "{cert}");
    let text = x509_text(dir, &cert);
    assert!(
        text.contains(
            "DNS:gw-1.plant.example, IP Address:10.1.2.3, URI:https://gw-1.plant.example/"
        ),
        "{text}"
    );

    // An empty subject is fine with a SAN, which is then critical (RFC 5280 §4.1.2.6).
    let (status, cert) = issue(
        &server,
        ca,
        &rcgen_csr(&[], &["plc-8.plant.example"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{cert}");
    let text = x509_text(dir, &cert);
    assert!(
        text.contains(
            "X509v3 Subject Alternative Name: critical\n                DNS:plc-8.plant.example"
        ),
        "{text}"
    );
});

backend_test!(
    the_subject_policy_fixes_allows_drops_and_refuses_duplicates,
    |backend| {
        let server = TestServer::start(backend).await;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let ca = server
        .create_ca(json!({"name": "policy", "key_type": "ec-p256", "subject": {"common_name": "Policy"},
            "profile": {"subject_policy": {"CN": "allow", "OU": "allow", "O": {"fixed": "Acme"}, "L": "drop"},
                        "max_sans": 2, "uri_schemes": ["https"]}}))
        .await;
        assert_eq!(
            ca["profile"]["subject_policy"],
            json!({"CN": "allow", "L": "drop", "O": {"fixed": "Acme"}, "OU": "allow"})
        );
        assert_eq!(ca["profile"]["max_sans"], 2);
        assert_eq!(ca["profile"]["uri_schemes"], json!(["https"]));
        let ca = ca_id(&ca);

        let csr = openssl_csr(
            dir,
            "p",
            "ec-p256",
            "/CN=plc-7/O=Evil Corp/OU=Line 1/L=Nowhere/C=XX",
            None,
        );
        let (status, cert) = issue(&server, ca, &csr, json!({})).await;
        assert_eq!(status, 201, "{cert}");
        assert!(
            x509_text(dir, &cert).contains("Subject: O = Acme, CN = plc-7, OU = Line 1\n"),
            "{cert}"
        );
        assert_eq!(cert["subject"], "O=Acme, CN=plc-7, OU=Line 1");

        let before = footprint(&server).await;
        let two_cns = openssl_csr(dir, "two", "ec-p256", "/CN=plc-7/CN=admin", None);
        let (status, body) = issue(&server, ca, &two_cns, json!({})).await;
        assert_eq!(
            (status, body["type"].as_str().unwrap()),
            (400, "urn:shedu:problem:invalid-name")
        );
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("more than one CN"),
            "{body}"
        );
        let plain = openssl_csr(dir, "plain", "ec-p256", "/CN=plc-7", None);
        let (status, body) = issue(
            &server,
            ca,
            &plain,
            json!({"sans": ["a.example", "b.example", "c.example"]}),
        )
        .await;
        assert_eq!(
            (status, body["type"].as_str().unwrap()),
            (400, "urn:shedu:problem:too-many-sans"),
            "{body}"
        );
        let (status, body) = issue(
            &server,
            ca,
            &plain,
            json!({"sans": ["uri:spiffe://t.example/x"]}),
        )
        .await;
        assert_eq!(
            (status, body["type"].as_str().unwrap()),
            (400, "urn:shedu:problem:invalid-name"),
            "{body}"
        );
        assert_eq!(footprint(&server).await, before, "nothing was stored");

        // The policy survives a restart: it is stored with the CA.
        let server = server.restart().await;
        let (status, body) = issue(&server, ca, &two_cns, json!({})).await;
        assert_eq!(status, 400, "{body}");
        let (status, cert) = issue(&server, ca, &csr, json!({})).await;
        assert_eq!(status, 201, "{cert}");
        assert_eq!(cert["subject"], "O=Acme, CN=plc-7, OU=Line 1");

        // A policy that cannot hold is refused when the CA is made, and no CA is stored.
        let (_, cas) = server.get("/api/v1/cas").await;
        let count = cas["items"].as_array().unwrap().len();
        for profile in [
            json!({"subject_policy": {"C": {"fixed": "Germany"}}}),
            json!({"subject_policy": {"O": {"fixed": "Acme\u{0}"}}}),
            json!({"subject_policy": {"title": "allow"}}),
            json!({"max_sans": 0}),
            json!({"max_sans": 1001}),
            json!({"uri_schemes": ["java script"]}),
        ] {
            let (status, body) = server
                .post(
                    "/api/v1/cas",
                    json!({"name": "bad-policy", "key_type": "ec-p256",
                "subject": {"common_name": "Bad"}, "profile": profile}),
                )
                .await;
            assert_eq!(
                (status, body["type"].as_str().unwrap_or_default()),
                (400, "urn:shedu:problem:invalid-profile"),
                "{profile}: {body}"
            );
        }
        let (_, cas) = server.get("/api/v1/cas").await;
        assert_eq!(cas["items"].as_array().unwrap().len(), count);
    }
);

backend_test!(ca_subjects_follow_the_same_rules, |backend| {
    let server = TestServer::start(backend).await;
    let long = "c".repeat(65);
    for subject in [
        json!({"common_name": long}),
        json!({"common_name": "Root\u{0}CA"}),
        json!({"common_name": "Root\nCA"}),
        json!({"common_name": "Root", "organization": "Acme\u{1b}[2J"}),
        json!({"common_name": "Root", "country": "Germany"}),
    ] {
        let (status, body) = server
            .post(
                "/api/v1/cas",
                json!({"name": "bad-subject", "key_type": "ec-p256", "subject": subject}),
            )
            .await;
        assert_eq!(
            (status, body["type"].as_str().unwrap_or_default()),
            (400, "urn:shedu:problem:invalid-name"),
            "{subject}: {body}"
        );
        assert!(
            !body["detail"]
                .as_str()
                .unwrap()
                .chars()
                .any(char::is_control),
            "{body}"
        );
    }
    let (_, cas) = server.get("/api/v1/cas").await;
    assert_eq!(
        cas["items"].as_array().unwrap().len(),
        0,
        "no CA was stored"
    );
    let ca = server
        .create_ca(json!({"name": "ok", "key_type": "ec-p256",
            "subject": {"common_name": "c".repeat(64), "country": "DE", "organization": "Acme"}}))
        .await;
    assert_eq!(
        ca["subject"],
        format!("C=DE, O=Acme, CN={}", "c".repeat(64))
    );
});
