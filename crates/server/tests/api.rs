//! The REST API against the real server, on SQLite and PostgreSQL, with `openssl` as the judge.
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use shedu_testkit::{TestServer, backend_test, openssl, openssl_csr};

const KEY_TYPES: [&str; 6] = [
    "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519",
];

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write file");
}

async fn root(server: &TestServer, name: &str, key_type: &str) -> Value {
    server
        .create_ca(json!({"name": name, "key_type": key_type, "subject": {"common_name": format!("{name} Root"), "organization": "Acme"}}))
        .await
}

async fn issue(server: &TestServer, ca_id: &str, csr: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({ "csr_pem": csr });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    server
        .post(&format!("/api/v1/cas/{ca_id}/certificates"), body)
        .await
}

fn problem_type(v: &Value) -> &str {
    v["type"].as_str().unwrap_or_default()
}

backend_test!(every_key_type_chains_to_the_root_under_openssl, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let root = root(&server, "root", "ec-p384").await;
    write(
        dir.path(),
        "root.pem",
        root["certificate_pem"].as_str().unwrap(),
    );
    for kt in KEY_TYPES {
        let int = server
            .create_ca(json!({"name": format!("int-{kt}"), "key_type": kt, "subject": {"common_name": format!("Issuing {kt}")},
                "parent_id": root["id"], "validity_days": 1000,
                "profile": {"subject_policy": {"CN": "allow", "O": "allow"}}}))
            .await;
        assert_eq!(int["kind"], "intermediate");
        assert_eq!(int["parent_id"], root["id"]);
        let csr = openssl_csr(
            dir.path(),
            kt,
            kt,
            &format!("/CN=device-{kt}/O=Acme"),
            Some("DNS:dev.example,IP:10.1.2.3"),
        );
        let (status, cert) = issue(
            &server,
            int["id"].as_str().unwrap(),
            &csr,
            json!({"validity_days": 90}),
        )
        .await;
        assert_eq!(status, 201, "{kt}: {cert}");
        let serial = cert["serial"].as_str().unwrap();
        assert!(
            serial.len() >= 16
                && serial
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{serial}"
        );
        assert_eq!(cert["key_type"], kt);
        write(
            dir.path(),
            &format!("{kt}-leaf.pem"),
            cert["certificate_pem"].as_str().unwrap(),
        );
        write(
            dir.path(),
            &format!("{kt}-chain.pem"),
            cert["chain_pem"].as_str().unwrap(),
        );
        let (ok, out) = openssl(
            dir.path(),
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                "root.pem",
                "-untrusted",
                &format!("{kt}-chain.pem"),
                &format!("{kt}-leaf.pem"),
            ],
        );
        assert!(ok && out.contains(": OK"), "{kt}: {out}");
        let (ok, text) = openssl(
            dir.path(),
            &["x509", "-noout", "-text", "-in", &format!("{kt}-leaf.pem")],
        );
        assert!(ok);
        // Only RSA keys encipher (RFC 8813 §3, RFC 8410 §5): the default profile's keyEncipherment is
        // dropped for EC and Ed25519 keys. See: issue 12.
        let key_usage = if kt.starts_with("rsa") {
            "Digital Signature, Key Encipherment\n"
        } else {
            "Digital Signature\n"
        };
        for needle in [
            "X509v3 Key Usage: critical",
            key_usage,
            "TLS Web Server Authentication, TLS Web Client Authentication",
            "CA:FALSE",
            "X509v3 Subject Key Identifier",
            "X509v3 Authority Key Identifier",
            "DNS:dev.example, IP Address:10.1.2.3",
            &format!("Subject: CN = device-{kt}, O = Acme"),
        ] {
            assert!(text.contains(needle), "{kt}: missing {needle:?} in\n{text}");
        }
        // The certificate is stored: it can be read back by serial and by fingerprint.
        let (status, by_serial) = server
            .get(&format!(
                "/api/v1/cas/{}/certificates/{serial}",
                int["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(by_serial["certificate_pem"], cert["certificate_pem"]);
        let (status, by_fp) = server
            .get(&format!(
                "/api/v1/certificates/{}",
                cert["fingerprint_sha256"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(by_fp["serial"], cert["serial"]);
    }
});

// See: issue 12 (a profile could make a CA:FALSE leaf that signs certificates).
backend_test!(
    a_leaf_profile_can_never_sign_certificates_or_crls,
    |backend| {
        let server = TestServer::start(backend).await;
        for usage in ["key_cert_sign", "crl_sign"] {
            let (status, problem) = server
                .post(
                    "/api/v1/cas",
                    json!({"name": format!("signer-{usage}"), "key_type": "ec-p256",
                       "subject": {"common_name": "Signer"},
                       "profile": {"key_usages": ["digital_signature", usage]}}),
                )
                .await;
            assert_eq!(status, 400, "{usage}: {problem}");
            assert_eq!(
                problem_type(&problem),
                "urn:shedu:problem:invalid-profile",
                "{problem}"
            );
        }
        let (_, cas) = server.get("/api/v1/cas").await;
        assert_eq!(cas["items"], json!([]), "nothing stored");
    }
);

// See: issue 12 (RSA-1024 and other curves were refused as `bad-csr-signature`).
backend_test!(keys_shedu_does_not_support_are_named_as_such, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = root(&server, "root", "ec-p256").await;
    for (stem, newkey, opts) in [
        ("rsa1024", "rsa:1024", None),
        ("k1", "ec", Some("ec_paramgen_curve:secp256k1")),
    ] {
        let mut args = vec!["req", "-new", "-newkey", newkey, "-nodes", "-subj", "/CN=x"];
        if let Some(o) = opts {
            args.extend(["-pkeyopt", o]);
        }
        let (key, csr) = (format!("{stem}.key"), format!("{stem}.csr"));
        args.extend(["-keyout", &key, "-out", &csr]);
        let (ok, out) = openssl(dir.path(), &args);
        assert!(ok, "{out}");
        let pem = std::fs::read_to_string(dir.path().join(&csr)).unwrap();
        let (status, problem) = issue(&server, ca["id"].as_str().unwrap(), &pem, json!({})).await;
        assert_eq!(status, 400, "{stem}: {problem}");
        assert_eq!(
            problem_type(&problem),
            "urn:shedu:problem:unsupported-key",
            "{stem}: {problem}"
        );
    }
});

// See: issue 12 (`?limit=abc` answered text/plain).
backend_test!(query_string_rejections_are_problems, |backend| {
    let server = TestServer::start(backend).await;
    for path in [
        "/api/v1/certificates?limit=abc",
        "/api/v1/devices?limit=-x",
        "/api/v1/audit?after=soon",
        "/api/v1/events?after=z",
    ] {
        let (status, problem) = server.get(path).await;
        assert_eq!(status, 400, "{path}: {problem}");
        assert_eq!(
            problem_type(&problem),
            "urn:shedu:problem:invalid-query",
            "{path}: {problem}"
        );
    }
});

// See: issue 12 (names with terminal escapes were stored and printed raw).
backend_test!(names_refuse_control_characters, |backend| {
    let server = TestServer::start(backend).await;
    let evil = "root\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let ca = root(&server, "ok", "ec-p256").await;
    let ca_id = ca["id"].as_str().unwrap();
    let refused = |what: &str, status: u16, problem: &Value| {
        assert_eq!(status, 400, "{what}: {problem}");
        assert_eq!(
            problem_type(problem),
            "urn:shedu:problem:invalid-name",
            "{what}: {problem}"
        );
    };
    let (s, p) = server
        .post(
            "/api/v1/cas",
            json!({"name": evil, "key_type": "ec-p256", "subject": {"common_name": "X"}}),
        )
        .await;
    refused("CA", s, &p);
    let (s, p) = server
        .post(
            "/api/v1/ras",
            json!({"name": evil, "ca_ids": [ca_id], "enrollment": {"auth_modes": ["one_time_secret"]}}),
        )
        .await;
    refused("RA", s, &p);
    let (s, p) = server
        .post("/api/v1/device-groups", json!({"name": evil}))
        .await;
    refused("group", s, &p);
    let (s, p) = server
        .post("/api/v1/api-keys", json!({"name": evil, "role": "auditor"}))
        .await;
    refused("API key", s, &p);
    let (s, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "line", "ca_ids": [ca_id], "enrollment": {"auth_modes": ["one_time_secret"]}}),
        )
        .await;
    assert_eq!(s, 201, "{ra}");
    let (s, p) = server
        .post(
            "/api/v1/devices",
            json!({"id": "dev-1", "ra_id": ra["id"], "alias": evil}),
        )
        .await;
    refused("alias", s, &p);
    // Names are bounded too: 128 characters pass, 129 do not.
    let (s, p) = server
        .post(
            "/api/v1/cas",
            json!({"name": "n".repeat(129), "key_type": "ec-p256", "subject": {"common_name": "X"}}),
        )
        .await;
    refused("a 129-character CA name", s, &p);
    let (s, p) = server
        .post("/api/v1/device-groups", json!({"name": "g".repeat(129)}))
        .await;
    refused("a 129-character group name", s, &p);
    let (s, p) = server
        .post("/api/v1/device-groups", json!({"name": "g".repeat(128)}))
        .await;
    assert_eq!(s, 201, "a 128-character group name: {p}");
    // User names have their own rule (1 to 64 characters, no white space or control character).
    for name in [evil, "two words", &"u".repeat(65)] {
        let (s, p) = server
            .post(
                "/api/v1/users",
                json!({"username": name, "password": "a long enough secret", "role": "auditor"}),
            )
            .await;
        assert_eq!(s, 400, "user {name:?}: {p}");
        assert_eq!(
            problem_type(&p),
            "urn:shedu:problem:invalid-username",
            "{p}"
        );
    }
    let (_, users) = server.get("/api/v1/users").await;
    assert_eq!(users["items"].as_array().unwrap().len(), 0, "{users}");
    let (_, cas) = server.get("/api/v1/cas").await;
    assert_eq!(
        cas["items"].as_array().unwrap().len(),
        1,
        "only the good CA"
    );
});

backend_test!(
    profile_decides_extensions_and_request_sans_override_the_csr,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = server
        .create_ca(json!({"name": "clients", "key_type": "ec-p256", "subject": {"common_name": "Clients"},
            "profile": {"key_usages": ["digital_signature"], "ext_key_usages": ["client_auth"], "default_validity_days": 7,
                        "allowed_key_types": ["ec-p256"]}}))
        .await;
        let csr = openssl_csr(
            dir.path(),
            "c",
            "ec-p256",
            "/CN=plc-7",
            Some("DNS:ignored.example"),
        );
        let (status, cert) = issue(
            &server,
            ca["id"].as_str().unwrap(),
            &csr,
            json!({"sans": ["dns:plc-7.factory", "ip:192.168.7.7", "uri:urn:plc:7"]}),
        )
        .await;
        assert_eq!(status, 201, "{cert}");
        assert_eq!(
            cert["sans"],
            json!(["DNS:plc-7.factory", "IP:192.168.7.7", "URI:urn:plc:7"])
        );
        write(
            dir.path(),
            "leaf.pem",
            cert["certificate_pem"].as_str().unwrap(),
        );
        let (_, text) = openssl(dir.path(), &["x509", "-noout", "-text", "-in", "leaf.pem"]);
        assert!(
            text.contains("TLS Web Client Authentication")
                && !text.contains("TLS Web Server Authentication"),
            "{text}"
        );
        assert!(
            !text.contains("ignored.example"),
            "request SANs replace the CSR's"
        );
        // Default validity from the profile: 7 days (plus the 60 s backdate).
        let nb = cert["not_before"].as_str().unwrap();
        let na = cert["not_after"].as_str().unwrap();
        assert!(nb < na);
        let (ok, out) = openssl(
            dir.path(),
            &[
                "x509",
                "-noout",
                "-checkend",
                &(7 * 86400 - 120).to_string(),
                "-in",
                "leaf.pem",
            ],
        );
        assert!(ok, "valid for about 7 days: {out}");
        let (ok, _) = openssl(
            dir.path(),
            &[
                "x509",
                "-noout",
                "-checkend",
                &(7 * 86400 + 120).to_string(),
                "-in",
                "leaf.pem",
            ],
        );
        assert!(!ok, "not longer than 7 days");
    }
);

backend_test!(
    bad_input_gets_a_precise_problem_and_stores_nothing,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = server
        .create_ca(json!({"name": "strict", "key_type": "ec-p256", "subject": {"common_name": "Strict"}, "validity_days": 30,
            "profile": {"allowed_key_types": ["ec-p256"]}}))
        .await;
        let id = ca["id"].as_str().unwrap();
        let good = openssl_csr(dir.path(), "good", "ec-p256", "/CN=good", None);

        // Malformed CSR.
        let (s, p) = issue(
            &server,
            id,
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            json!({}),
        )
        .await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:malformed-input"),
            "{p}"
        );
        assert_eq!(p["status"], 400);
        assert!(p["request_id"].is_string());
        let (s, p) = issue(&server, id, "not base64 at all!", json!({})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:malformed-input"),
            "{p}"
        );

        // Two requests at once: refused, not the first one issued (see: issue 12).
        let two = format!("{good}{good}");
        let (s, p) = issue(&server, id, &two, json!({})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:malformed-input"),
            "{p}"
        );

        // A CSR whose signature does not verify: flip a byte inside the signature (the DER's last bytes).
        let (ok, out) = openssl(
            dir.path(),
            &[
                "req", "-in", "good.csr", "-outform", "DER", "-out", "good.der",
            ],
        );
        assert!(ok, "{out}");
        let mut bytes = std::fs::read(dir.path().join("good.der")).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x55;
        use base64::Engine;
        let tampered = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let (s, p) = issue(&server, id, &tampered, json!({})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:bad-csr-signature"),
            "{p}"
        );

        // A key type the profile forbids.
        let rsa = openssl_csr(dir.path(), "rsa", "rsa-2048", "/CN=rsa", None);
        let (s, p) = issue(&server, id, &rsa, json!({})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:key-type-not-allowed"),
            "{p}"
        );

        // A validity beyond the issuer's.
        let (s, p) = issue(&server, id, &good, json!({"validity_days": 400})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:invalid-validity"),
            "{p}"
        );

        // Unknown CA; unknown key type; unknown parent.
        let (s, _) = issue(&server, "0000", &good, json!({})).await;
        assert_eq!(s, 404);
        let (s, p) = server
            .post(
                "/api/v1/cas",
                json!({"name": "x", "key_type": "dsa-1024", "subject": {"common_name": "x"}}),
            )
            .await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:unsupported-key"),
            "{p}"
        );
        let (s, _) = server
        .post("/api/v1/cas", json!({"name": "y", "key_type": "ec-p256", "subject": {"common_name": "y"}, "parent_id": "nope"}))
        .await;
        assert_eq!(s, 404);
        // Duplicate name.
        let (s, p) = server
            .post(
                "/api/v1/cas",
                json!({"name": "strict", "key_type": "ec-p256", "subject": {"common_name": "z"}}),
            )
            .await;
        assert_eq!(
            (s, problem_type(&p)),
            (409, "urn:shedu:problem:ca-exists"),
            "{p}"
        );
        // Unknown JSON fields and bad JSON.
        let (s, p) = server.post("/api/v1/cas", json!({"name": "w", "key_type": "ec-p256", "subject": {"common_name": "w"}, "colour": 1})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (422, "urn:shedu:problem:invalid-json"),
            "{p}"
        );
        let res = server
            .client
            .post(format!("{}/api/v1/cas", server.base_url))
            .bearer_auth(&server.token)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        // Oversized body.
        let huge = "A".repeat(300 * 1024);
        let (s, p) = issue(&server, id, &huge, json!({})).await;
        assert_eq!(s, 413, "{p}");

        // Authentication.
        let res = server
            .client
            .get(format!("{}/api/v1/cas", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let res = server
            .client
            .get(format!("{}/api/v1/cas", server.base_url))
            .bearer_auth("wrong-token-wrong-token")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);

        // Revoke twice; revoke unknown; bad reason.
        let (s, cert) = issue(&server, id, &good, json!({})).await;
        assert_eq!(s, 201);
        let path = format!(
            "/api/v1/cas/{id}/certificates/{}/revoke",
            cert["serial"].as_str().unwrap()
        );
        let (s, p) = server.post(&path, json!({"reason": "because"})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:malformed-input"),
            "{p}"
        );
        let (s, r) = server
            .post(&path, json!({"reason": "key_compromise"}))
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["status"], "revoked");
        assert_eq!(r["revocation_reason"], "key_compromise");
        let (s, p) = server.post(&path, json!({"reason": "superseded"})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (409, "urn:shedu:problem:already-revoked"),
            "{p}"
        );
        let (s, _) = server
            .post(
                &format!("/api/v1/cas/{id}/certificates/4242/revoke"),
                json!({}),
            )
            .await;
        assert_eq!(s, 404);

        // Nothing partial was stored: exactly the one good certificate, with its issue and revoke events.
        let (_, page) = server
            .get(&format!("/api/v1/certificates?ca_id={id}"))
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
        let (_, all) = server.get("/api/v1/cas").await;
        assert_eq!(
            all["items"].as_array().unwrap().len(),
            1,
            "only the one CA exists: {all}"
        );
        let ca_events = server.cas_events().await;
        assert_eq!(
            ca_events,
            vec!["ca.created", "certificate.issued", "certificate.revoked"]
        );
    }
);

backend_test!(
    imported_cas_issue_with_their_key_and_track_without_it,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let variants: [(&str, &[&str], &str); 3] = [
            (
                "pkcs8",
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    "pkcs8.key",
                ],
                "pkcs8.key",
            ),
            (
                "sec1",
                &[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                    "sec1.key",
                ],
                "sec1.key",
            ),
            (
                "pkcs1",
                &["genrsa", "-traditional", "-out", "pkcs1.key", "2048"],
                "pkcs1.key",
            ),
        ];
        for (name, keygen, key_file) in variants {
            let (ok, out) = openssl(dir.path(), keygen);
            assert!(ok, "{out}");
            let cert_file = format!("{name}.pem");
            let (ok, out) = openssl(
                dir.path(),
                &[
                    "req",
                    "-x509",
                    "-key",
                    key_file,
                    "-out",
                    &cert_file,
                    "-days",
                    "365",
                    "-subj",
                    &format!("/CN=Imported {name}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
            assert!(ok, "{out}");
            let key_pem = std::fs::read_to_string(dir.path().join(key_file)).unwrap();
            assert!(key_pem.contains(match name {
                "pkcs8" => "BEGIN PRIVATE KEY",
                "sec1" => "BEGIN EC PRIVATE KEY",
                _ => "BEGIN RSA PRIVATE KEY",
            }));
            let cert_pem = std::fs::read_to_string(dir.path().join(&cert_file)).unwrap();
            let (s, ca) = server
                .post(
                    "/api/v1/cas/import",
                    json!({"name": name, "certificate_pem": cert_pem, "private_key_pem": key_pem}),
                )
                .await;
            assert_eq!(s, 201, "{ca}");
            assert_eq!(ca["kind"], "imported");
            assert_eq!(ca["can_issue"], true);
            assert!(
                !ca.to_string().contains("PRIVATE KEY"),
                "no key material in responses"
            );
            let csr = openssl_csr(
                dir.path(),
                &format!("leaf-{name}"),
                "ec-p256",
                "/CN=leaf",
                None,
            );
            let (s, cert) = issue(
                &server,
                ca["id"].as_str().unwrap(),
                &csr,
                json!({"validity_days": 30}),
            )
            .await;
            assert_eq!(s, 201, "{cert}");
            write(
                dir.path(),
                "leaf.pem",
                cert["certificate_pem"].as_str().unwrap(),
            );
            let (ok, out) = openssl(
                dir.path(),
                &["verify", "-x509_strict", "-CAfile", &cert_file, "leaf.pem"],
            );
            assert!(ok, "{name}: {out}");
        }
        // The certificate without its key: tracked, cannot issue.
        let cert_pem = std::fs::read_to_string(dir.path().join("sec1.pem")).unwrap();
        let (s, ext) = server
            .post(
                "/api/v1/cas/import",
                json!({"name": "external", "certificate_pem": cert_pem}),
            )
            .await;
        assert_eq!(
            s, 409,
            "the same certificate cannot be imported twice: {ext}"
        );
        let cert_pem = std::fs::read_to_string(dir.path().join("pkcs1.pem")).unwrap();
        let (ok, out) = openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ext.key",
                "-out",
                "ext.pem",
                "-subj",
                "/CN=External",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ],
        );
        assert!(ok, "{out}");
        let ext_pem = std::fs::read_to_string(dir.path().join("ext.pem")).unwrap();
        let (s, ext) = server
            .post(
                "/api/v1/cas/import",
                json!({"name": "external", "certificate_pem": ext_pem}),
            )
            .await;
        assert_eq!(s, 201, "{ext}");
        assert_eq!(
            (
                ext["kind"].as_str(),
                ext["can_issue"].as_bool(),
                ext["engine"].is_null()
            ),
            (Some("external"), Some(false), true)
        );
        let csr = openssl_csr(dir.path(), "x", "ec-p256", "/CN=x", None);
        let (s, p) = issue(&server, ext["id"].as_str().unwrap(), &csr, json!({})).await;
        assert_eq!(
            (s, problem_type(&p)),
            (409, "urn:shedu:problem:ca-without-key"),
            "{p}"
        );
        // A key that does not belong to the certificate; a certificate that is not a CA.
        let wrong_key = std::fs::read_to_string(dir.path().join("pkcs8.key")).unwrap();
        let sec1_cert = std::fs::read_to_string(dir.path().join("sec1.pem")).unwrap();
        let (s, p) = server
        .post("/api/v1/cas/import", json!({"name": "mismatch", "certificate_pem": sec1_cert, "private_key_pem": wrong_key}))
        .await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:key-mismatch"),
            "{p}"
        );
        let (s, p) = server
        .post("/api/v1/cas/import", json!({"name": "mismatch", "certificate_pem": cert_pem, "private_key_pem": wrong_key}))
        .await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:invalid-private-key"),
            "an EC key for an RSA certificate: {p}"
        );
        let leaf = std::fs::read_to_string(dir.path().join("leaf.pem")).unwrap();
        let (s, p) = server
            .post(
                "/api/v1/cas/import",
                json!({"name": "leafy", "certificate_pem": leaf}),
            )
            .await;
        assert_eq!(
            (s, problem_type(&p)),
            (400, "urn:shedu:problem:not-a-ca"),
            "{p}"
        );
    }
);

backend_test!(
    listing_filters_and_cursor_pages_stay_stable_under_inserts,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let a = server
            .create_ca(
                json!({"name": "a", "key_type": "ec-p256", "subject": {"common_name": "a Root"},
                "profile": {"subject_policy": {"CN": "allow", "O": "allow"}}}),
            )
            .await;
        let b = root(&server, "b", "ed25519").await;
        let csr = openssl_csr(
            dir.path(),
            "k",
            "ec-p256",
            "/CN=sensor-1/O=Plant North",
            None,
        );
        let other = openssl_csr(dir.path(), "o", "ec-p256", "/CN=gateway-9", None);
        for i in 0..12 {
            let (s, _) = issue(
                &server,
                a["id"].as_str().unwrap(),
                &csr,
                json!({"validity_days": 100 + i}),
            )
            .await;
            assert_eq!(s, 201);
        }
        let (s, _) = issue(
            &server,
            b["id"].as_str().unwrap(),
            &other,
            json!({"validity_days": 400}),
        )
        .await;
        assert_eq!(s, 201);

        let (_, page1) = server.get("/api/v1/certificates?limit=5").await;
        let items1 = page1["items"].as_array().unwrap();
        assert_eq!(items1.len(), 5);
        assert_eq!(items1[0]["subject"], "CN=gateway-9", "newest first");
        let cursor = page1["next_cursor"].as_str().unwrap().to_string();
        // Inserts between pages do not shift the next page.
        for _ in 0..3 {
            issue(&server, b["id"].as_str().unwrap(), &other, json!({})).await;
        }
        let mut seen: Vec<String> = items1
            .iter()
            .map(|c| c["serial"].as_str().unwrap().to_string())
            .collect();
        let mut next = Some(cursor);
        while let Some(c) = next {
            let (_, page) = server
                .get(&format!("/api/v1/certificates?limit=5&cursor={c}"))
                .await;
            for item in page["items"].as_array().unwrap() {
                seen.push(item["serial"].as_str().unwrap().to_string());
            }
            next = page["next_cursor"].as_str().map(str::to_string);
        }
        assert_eq!(
            seen.len(),
            13,
            "every certificate that existed at the first page, once"
        );
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 13);

        let (_, by_ca) = server
            .get(&format!(
                "/api/v1/certificates?ca_id={}&limit=100",
                a["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(by_ca["items"].as_array().unwrap().len(), 12);
        assert!(by_ca["next_cursor"].is_null());
        // The subject filter is a case-insensitive prefix of the common name, answered from an index:
        // not a substring, and not another attribute (migration 0033).
        for (query, found) in [
            ("SENSOR", 12),
            ("sensor-1", 12),
            ("Sensor-", 12),
            ("ensor", 0),
            ("plant%20north", 0),
            ("%25", 0),
            ("_", 0),
        ] {
            let (s, by_subject) = server
                .get(&format!("/api/v1/certificates?subject={query}"))
                .await;
            assert_eq!(s, 200, "{by_subject}");
            assert_eq!(
                by_subject["items"].as_array().unwrap().len(),
                found,
                "subject={query}: {by_subject}"
            );
        }
        // 105 days from the issuance, less an hour: the seconds the issuance took must not move the
        // 105-day certificate across the bound (it did under load: the clock runs during the test).
        let soon = server.services.registry.now() + 105 * 86400 - 3600;
        let (_, before) = server
            .get(&format!("/api/v1/certificates?expires_before={soon}"))
            .await;
        assert_eq!(
            before["items"].as_array().unwrap().len(),
            5,
            "validity 100..=104 days: {before}"
        );
        let (_, after) = server
            .get(&format!(
                "/api/v1/certificates?expires_after={soon}&ca_id={}",
                a["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(after["items"].as_array().unwrap().len(), 7);
        let (_, active) = server
            .get("/api/v1/certificates?status=active&limit=1000")
            .await;
        assert_eq!(active["items"].as_array().unwrap().len(), 16);
        let (s, p) = server.get("/api/v1/certificates?status=sleepy").await;
        assert_eq!(s, 400, "{p}");
        let (s, _) = server
            .get("/api/v1/certificates?expires_before=yesterday")
            .await;
        assert_eq!(s, 400);
    }
);

backend_test!(
    statuses_follow_time_and_the_sweep_records_one_event_per_transition,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = server
        .create_ca(json!({"name": "life", "key_type": "ec-p256", "subject": {"common_name": "Life"}, "validity_days": 3650,
            "profile": {"expiry_warning_days": 30}}))
        .await;
        let id = ca["id"].as_str().unwrap();
        let csr = openssl_csr(dir.path(), "k", "ec-p256", "/CN=x", None);
        let (_, long) = issue(&server, id, &csr, json!({"validity_days": 100})).await;
        let (_, short) = issue(&server, id, &csr, json!({"validity_days": 10})).await;
        let (_, doomed) = issue(&server, id, &csr, json!({"validity_days": 100})).await;
        assert_eq!(long["status"], "active");
        assert_eq!(
            short["status"], "about_to_expire",
            "inside the 30-day window from the start"
        );
        let path = |c: &Value| {
            format!(
                "/api/v1/cas/{id}/certificates/{}",
                c["serial"].as_str().unwrap()
            )
        };
        server
            .post(
                &format!("{}/revoke", path(&doomed)),
                json!({"reason": "superseded"}),
            )
            .await;

        // 75 days later: `long` is inside its window, `short` has expired. Reads are exact before any sweep.
        server.clock.advance(75 * 86400);
        assert_eq!(
            server.get(&path(&long)).await.1["status"],
            "about_to_expire"
        );
        assert_eq!(server.get(&path(&short)).await.1["status"], "expired");
        assert_eq!(
            server.get(&path(&doomed)).await.1["status"],
            "revoked",
            "revoked is terminal"
        );
        let report = server.services.issuance.sweep().await.unwrap();
        assert_eq!(
            (
                report.certificates_expired,
                report.certificates_about_to_expire
            ),
            (1, 1),
            "{report:?}"
        );
        let (_, expired) = server
            .get(&format!("/api/v1/certificates?status=expired&ca_id={id}"))
            .await;
        assert_eq!(expired["items"].as_array().unwrap().len(), 1);
        // A second sweep at the same time does nothing and emits nothing.
        let report = server.services.issuance.sweep().await.unwrap();
        assert_eq!(report, Default::default());

        server.clock.advance(30 * 86400);
        let report = server.services.issuance.sweep().await.unwrap();
        assert_eq!(
            (
                report.certificates_expired,
                report.certificates_about_to_expire
            ),
            (1, 0)
        );
        let events = server.status_events().await;
        assert_eq!(
            events,
            vec![
                (
                    short["serial"].as_str().unwrap().to_string(),
                    "about_to_expire".to_string(),
                    "expired".to_string()
                ),
                (
                    long["serial"].as_str().unwrap().to_string(),
                    "active".to_string(),
                    "about_to_expire".to_string()
                ),
                (
                    long["serial"].as_str().unwrap().to_string(),
                    "about_to_expire".to_string(),
                    "expired".to_string()
                ),
            ]
        );
    }
);

backend_test!(openapi_health_and_request_ids, |backend| {
    let server = TestServer::start(backend).await;
    let res = server
        .client
        .get(format!("{}/api/openapi.json", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/cas",
        "/api/v1/cas/import",
        "/api/v1/cas/{id}",
        "/api/v1/cas/{id}/certificates",
        "/api/v1/cas/{id}/certificates/{serial}",
        "/api/v1/cas/{id}/certificates/{serial}/revoke",
        "/api/v1/certificates",
        "/api/v1/certificates/{fingerprint}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "missing {p}");
    }
    let res = server
        .client
        .get(format!("{}/health", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = reqwest::get(format!("{}/health", server.http_url))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = reqwest::get(format!("{}/api/v1/cas", server.http_url))
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the API is not served over plain HTTP");
    let res = server
        .client
        .get(format!("{}/api/v1/cas/nope", server.base_url))
        .bearer_auth(&server.token)
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-request-id"], "req-abc-123");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request_id"], "req-abc-123");
    let res = server
        .client
        .get(format!("{}/health", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"].len(),
        32,
        "generated when absent"
    );
});

// A wrong method on a route that exists is the client's mistake: 405 with `Allow`, never a 500 (found by the
// cluster test listing certificates with GET on the issuing route).
backend_test!(
    a_wrong_method_on_an_existing_route_is_405_with_allow,
    |backend| {
        let server = TestServer::start(backend).await;
        let res = server
            .client
            .get(format!(
                "{}/api/v1/cas/some-ca/certificates",
                server.base_url
            ))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["allow"], "POST");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["type"], "urn:shedu:problem:method-not-allowed",
            "{body}"
        );
        // /ready answers on both listeners.
        for base in [&server.base_url, &server.http_url] {
            let res = server
                .client
                .get(format!("{base}/ready"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{base}/ready");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["status"], "ready");
        }
    }
);

// See: issue 19 (profile edits apply everywhere) and issue 20 (edit a CA's profile from the console): a CA's
// profile changes in place, checked as at creation, recorded, and the next issuance follows it.
backend_test!(
    a_profile_change_applies_to_the_next_certificate_and_is_recorded,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = server
            .create_ca(json!({"name": "edit", "key_type": "ec-p256", "subject": {"common_name": "Edit Root"},
                "profile": {"default_validity_days": 200, "expiry_warning_days": 5}}))
            .await;
        let id = ca["id"].as_str().unwrap();
        let path = format!("/api/v1/cas/{id}");
        let (status, updated) = server
            .send(
                "PATCH",
                &path,
                Some(json!({"profile": {"default_validity_days": 10, "expiry_warning_days": 30, "aia": false}})),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["profile"]["default_validity_days"], 10);
        assert_eq!(updated["profile"]["expiry_warning_days"], 30);
        // What the request left out stays.
        for kept in [
            "key_usages",
            "ext_key_usages",
            "allowed_key_types",
            "subject_policy",
            "max_sans",
        ] {
            assert_eq!(updated["profile"][kept], ca["profile"][kept], "{kept}");
        }
        let (_, shown) = server.get(&path).await;
        assert_eq!(shown["profile"], updated["profile"]);

        // The next certificate: 10 days, inside the 30-day warning window, no AIA.
        let csr = openssl_csr(dir.path(), "leaf", "ec-p256", "/CN=leaf", None);
        let (status, cert) = issue(&server, id, &csr, json!({})).await;
        assert_eq!(status, 201, "{cert}");
        assert_eq!(cert["status"], "about_to_expire", "{cert}");
        write(
            dir.path(),
            "leaf.pem",
            cert["certificate_pem"].as_str().unwrap(),
        );
        let (ok, text) = openssl(
            dir.path(),
            &["x509", "-in", "leaf.pem", "-noout", "-text", "-dates"],
        );
        assert!(ok, "{text}");
        assert!(!text.contains("Authority Information Access"), "{text}");
        let days = |field: &str| {
            let line = text.lines().find(|l| l.starts_with(field)).unwrap();
            let out = std::process::Command::new("date")
                .args(["-d", line.split_once('=').unwrap().1, "+%s"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<i64>()
                .unwrap()
        };
        assert_eq!(
            (days("notAfter") - days("notBefore")) / 86_400,
            10,
            "{text}"
        );

        // Recorded: an event naming what changed, an audit record.
        let (_, events) = server
            .get(&format!("/api/v1/events?type=ca.updated&subject=cas/{id}"))
            .await;
        let items = events["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{events}");
        assert_eq!(
            items[0]["data"]["changed"],
            json!(["default_validity_days", "expiry_warning_days", "aia"])
        );
        let (_, audit) = server.get("/api/v1/audit?action=ca.update&limit=10").await;
        assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");

        // Checked as at creation; nothing changes on a refusal.
        for (body, expected, problem) in [
            (
                json!({"profile": {"crl_shards": 4}}),
                400,
                "invalid-profile",
            ),
            (
                json!({"profile": {"default_validity_days": 0}}),
                400,
                "invalid-validity",
            ),
            (
                json!({"profile": {"allowed_key_types": []}}),
                400,
                "invalid-profile",
            ),
            (
                json!({"profile": {"ocsp_signing": "nobody"}}),
                400,
                "invalid-profile",
            ),
            // Only the profile changes: a name is not a profile setting.
            (
                json!({"profile": {}, "name": "renamed"}),
                422,
                "invalid-json",
            ),
        ] {
            let (status, p) = server.send("PATCH", &path, Some(body.clone())).await;
            assert_eq!(
                (status, problem_type(&p)),
                (expected, format!("urn:shedu:problem:{problem}").as_str()),
                "{body}: {p}"
            );
        }
        let (_, after) = server.get(&path).await;
        assert_eq!(after["profile"], updated["profile"]);
        let (status, _) = server
            .send(
                "PATCH",
                "/api/v1/cas/nope",
                Some(json!({"profile": {"max_sans": 3}})),
            )
            .await;
        assert_eq!(status, 404);
    }
);
