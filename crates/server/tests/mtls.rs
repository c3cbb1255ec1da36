//! The HTTPS listener as an outside client sees it: client certificates verified against the managed CAs
//! (curl as the client), protocol versions and suites (`openssl s_client` as the probe), and the renewal
//! of the server certificate while running.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{Value, json};
use shedu_core::Clock;
use shedu_testkit::{TestServer, backend_test, curl, openssl, openssl_csr, openssl_foreign_leaf};

/// `curl --cert` against `path`; returns (exit code, HTTP status, JSON body).
fn curl_json(server: &TestServer, dir: &Path, path: &str, cert: Option<&str>) -> (i32, u16, Value) {
    let url = format!("{}{path}", server.base_url);
    let ca = server.ca_file.to_str().unwrap().to_string();
    let (cert_file, key_file) = cert
        .map(|c| (format!("{c}.pem"), format!("{c}.key")))
        .unzip();
    let mut args = vec!["--cacert", ca.as_str(), "-w", "\n%{http_code}"];
    if let (Some(c), Some(k)) = (&cert_file, &key_file) {
        args.extend(["--cert", c.as_str(), "--key", k.as_str()]);
    }
    args.push(url.as_str());
    let (code, out) = curl(dir, &args);
    let text = String::from_utf8_lossy(&out).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code,
        status.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

backend_test!(
    client_certificates_identify_devices_and_fail_closed,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = server
        .create_ca(json!({"name": "devices", "key_type": "ec-p256", "subject": {"common_name": "Devices"},
            "profile": {"ext_key_usages": ["client_auth"]}}))
        .await;
        let ca_id = ca["id"].as_str().unwrap();
        let issued = server
            .issue_to_files(ca_id, dir.path(), "dev", "/CN=plc-1/O=Acme")
            .await;

        // No certificate: the listener does not force mTLS; the API asks for a token.
        let (code, status, _) = curl_json(&server, dir.path(), "/api/v1/auth/whoami", None);
        assert_eq!((code, status), (0, 401));

        // A certificate from a managed CA is seen as its principal, with the narrow machine role.
        let (code, status, me) = curl_json(&server, dir.path(), "/api/v1/auth/whoami", Some("dev"));
        assert_eq!((code, status), (0, 200), "{me}");
        assert_eq!(me["kind"], "certificate");
        assert_eq!(me["role"], "device");
        assert!(me["name"].as_str().unwrap().contains("plc-1"), "{me}");
        let (_, status, _) = curl_json(&server, dir.path(), "/api/v1/cas", Some("dev"));
        assert_eq!(status, 403, "a device may not read CAs");

        // A certificate from a CA the platform does not manage fails the handshake.
        openssl_foreign_leaf(dir.path(), "rogue", "/CN=plc-1/O=Acme");
        let (code, status, _) =
            curl_json(&server, dir.path(), "/api/v1/auth/whoami", Some("rogue"));
        assert_ne!(code, 0, "curl must fail the handshake, got HTTP {status}");
        assert_eq!(status, 0);

        // A CA created after start-up is trusted at once.
        let later = server
            .create_ca(
                json!({"name": "later", "key_type": "ec-p384", "subject": {"common_name": "Later"},
            "profile": {"ext_key_usages": ["client_auth"]}}),
            )
            .await;
        server
            .issue_to_files(
                later["id"].as_str().unwrap(),
                dir.path(),
                "late",
                "/CN=plc-2",
            )
            .await;
        let (_, status, me) = curl_json(&server, dir.path(), "/api/v1/auth/whoami", Some("late"));
        assert_eq!(status, 200, "{me}");

        // Revoked: refused, fail closed.
        let serial = issued["serial"].as_str().unwrap();
        let (s, body) = server
            .post(
                &format!("/api/v1/cas/{ca_id}/certificates/{serial}/revoke"),
                json!({"reason": "key_compromise"}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let (code, status, problem) =
            curl_json(&server, dir.path(), "/api/v1/auth/whoami", Some("dev"));
        assert_eq!((code, status), (0, 401), "{problem}");
        assert_eq!(
            problem["type"],
            "urn:shedu:problem:invalid-client-certificate"
        );
    }
);

backend_test!(
    every_certificate_of_a_client_chain_is_judged_by_the_service_clock,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let (ok, out) = openssl(dir.path(), args);
            assert!(ok, "openssl {args:?}: {out}");
        };
        // An imported hierarchy that does not nest: a root valid 2 days over an intermediate valid 30.
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "root.key",
                "-out",
                "root.pem",
                "-subj",
                "/CN=Short Root",
                "-days",
                "2",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        run(&[
            &["req", "-new"][..],
            &ec,
            &[
                "-keyout",
                "int.key",
                "-out",
                "int.csr",
                "-subj",
                "/CN=Long Intermediate",
            ],
        ]
        .concat());
        std::fs::write(
            dir.path().join("int.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        run(&[
            "x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key", "-days",
            "30", "-extfile", "int.ext", "-out", "int.pem",
        ]);
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        let (s, root) = server
            .post(
                "/api/v1/cas/import",
                json!({"name": "short-root", "certificate_pem": read("root.pem")}),
            )
            .await;
        assert_eq!(s, 201, "{root}");
        let (s, int) = server
            .post(
                "/api/v1/cas/import",
                json!({"name": "long-int", "certificate_pem": read("int.pem"),
                    "private_key_pem": read("int.key"),
                    "profile": {"ext_key_usages": ["client_auth"]}}),
            )
            .await;
        assert_eq!(s, 201, "{int}");
        assert_eq!(
            int["parent_id"], root["id"],
            "the intermediate is linked to its root"
        );
        server
            .issue_to_files(
                int["id"].as_str().unwrap(),
                dir.path(),
                "under-int",
                "/CN=plc-9",
            )
            .await;

        // A leaf valid for one day, from a CA that nests.
        let devices = server
            .create_ca(json!({"name": "devices", "key_type": "ec-p256", "subject": {"common_name": "Devices"},
                "profile": {"ext_key_usages": ["client_auth"]}}))
            .await;
        let csr = openssl_csr(dir.path(), "short", "ec-p256", "/CN=plc-8", None);
        let (s, short) = server
            .post(
                &format!(
                    "/api/v1/cas/{}/certificates",
                    devices["id"].as_str().unwrap()
                ),
                json!({"csr_pem": csr, "validity_days": 1}),
            )
            .await;
        assert_eq!(s, 201, "{short}");
        std::fs::write(
            dir.path().join("short.pem"),
            short["certificate_pem"].as_str().unwrap(),
        )
        .unwrap();

        for stem in ["under-int", "short"] {
            let (code, status, me) =
                curl_json(&server, dir.path(), "/api/v1/auth/whoami", Some(stem));
            assert_eq!((code, status), (0, 200), "{stem} today: {me}");
        }

        // Three days on (service clock; the handshake still sees real time): the leaf of one day has
        // expired, and the root above the other leaf's intermediate has.
        server.clock.advance(3 * 86_400);
        for (stem, why) in [
            ("short", "the client certificate has expired"),
            (
                "under-int",
                "a CA certificate in the client certificate's chain is expired or not yet valid",
            ),
        ] {
            let (code, status, problem) =
                curl_json(&server, dir.path(), "/api/v1/auth/whoami", Some(stem));
            assert_eq!((code, status), (0, 401), "{stem}: {problem}");
            assert_eq!(
                problem["type"], "urn:shedu:problem:invalid-client-certificate",
                "{stem}"
            );
            assert_eq!(problem["detail"], why, "{stem}: {problem}");
        }
    }
);

/// What `openssl s_client` negotiates with the listener.
fn handshake(server: &TestServer, args: &[&str]) -> (bool, String) {
    let host = server.base_url.trim_start_matches("https://").to_string();
    let mut all = vec![
        "s_client",
        "-connect",
        host.as_str(),
        "-servername",
        "localhost",
    ];
    all.extend(args);
    let mut child = std::process::Command::new("openssl")
        .args(&all)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    let _ = child.wait();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let negotiated = text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
    (negotiated, text)
}

backend_test!(
    listener_offers_only_tls12_and_tls13_with_aead_suites,
    |backend| {
        let server = TestServer::start(backend).await;
        // SECLEVEL=0 lets this openssl offer what it would otherwise refuse, so a refusal is the server's.
        for old in ["-tls1", "-tls1_1"] {
            let (ok, out) = handshake(&server, &[old, "-cipher", "ALL:@SECLEVEL=0"]);
            assert!(!ok, "{old} must be refused:\n{out}");
        }
        for weak in [
            "AES128-SHA:AES256-SHA:AES128-GCM-SHA256", // RSA key exchange, no forward secrecy
            "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384", // CBC
            "DES-CBC3-SHA:RC4-SHA:NULL-SHA:aNULL:eNULL",
        ] {
            let (ok, out) = handshake(
                &server,
                &["-tls1_2", "-cipher", &format!("{weak}:@SECLEVEL=0")],
            );
            assert!(!ok, "TLS 1.2 with {weak} must be refused:\n{out}");
        }
        let (ok, out) = handshake(&server, &["-tls1_2"]);
        assert!(
            ok && out.contains("ECDHE-ECDSA"),
            "TLS 1.2 with ECDHE + AEAD:\n{out}"
        );
        let (ok, out) = handshake(&server, &["-tls1_3"]);
        assert!(ok && out.contains("TLSv1.3"), "{out}");
    }
);

backend_test!(server_certificate_is_renewed_while_running, |backend| {
    let server = TestServer::start(backend).await;
    let served = |server: &TestServer| {
        let (ok, out) = handshake(server, &["-showcerts"]);
        assert!(ok, "{out}");
        let start = out.find("-----BEGIN CERTIFICATE-----").unwrap();
        let end = out[start..].find("-----END CERTIFICATE-----").unwrap() + start;
        out[start..end].to_string()
    };
    let before = served(&server);
    assert!(
        !server.tls.reload(server.clock.now()).unwrap(),
        "not due yet"
    );
    // Two thirds of a year later the certificate is due; the next handshake gets the new one.
    server.clock.advance(250 * 86_400);
    assert!(server.tls.reload(server.clock.now()).unwrap(), "renewed");
    let after = served(&server);
    assert_ne!(
        before, after,
        "a new certificate is served without a restart"
    );
    // The new certificate chains to the same internal CA (checked as of the service clock's time).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("new.pem"),
        format!("{after}-----END CERTIFICATE-----\n"),
    )
    .unwrap();
    let at = server.clock.now().to_string();
    let ca = server.ca_file.to_str().unwrap().to_string();
    let (ok, out) = openssl(
        dir.path(),
        &["verify", "-attime", &at, "-CAfile", &ca, "new.pem"],
    );
    assert!(ok, "{out}");
});

/// nginx's `$ssl_client_escaped_cert`: the PEM with everything but unreserved characters percent-encoded.
fn escaped(pem: &str) -> String {
    pem.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

backend_test!(
    a_trusted_proxy_forwards_client_certificates_and_nobody_else_can,
    |backend| {
        let proxied = TestServer::start_with(
            backend,
            shedu_testkit::Options {
                trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
                ..Default::default()
            },
        )
        .await;
        let direct = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let whoami = |server: &TestServer, cert_file: &str| {
            let pem = std::fs::read_to_string(dir.path().join(cert_file)).unwrap();
            let req = server
                .client
                .get(format!("{}/api/v1/auth/whoami", server.base_url))
                .header("X-Client-Cert", escaped(&pem));
            async move {
                let res = req.send().await.unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }
        };
        for server in [&proxied, &direct] {
            let ca = server
            .create_ca(json!({"name": "devices", "key_type": "ec-p256", "subject": {"common_name": "Devices"},
                "profile": {"ext_key_usages": ["client_auth"]}}))
            .await;
            server
                .issue_to_files(ca["id"].as_str().unwrap(), dir.path(), "dev", "/CN=plc-7")
                .await;
            let (status, me) = whoami(server, "dev.pem").await;
            if std::ptr::eq(server, &proxied) {
                assert_eq!(status, 200, "{me}");
                assert_eq!(me["kind"], "certificate");
                assert!(me["name"].as_str().unwrap().contains("plc-7"));
            } else {
                assert_eq!(
                    status, 401,
                    "the header is ignored from an untrusted peer: {me}"
                );
                assert_eq!(me["type"], "urn:shedu:problem:unauthenticated");
            }
        }
        openssl_foreign_leaf(dir.path(), "rogue", "/CN=plc-7");
        let (status, problem) = whoami(&proxied, "rogue.pem").await;
        assert_eq!(status, 401);
        assert_eq!(
            problem["type"],
            "urn:shedu:problem:invalid-client-certificate"
        );
    }
);
