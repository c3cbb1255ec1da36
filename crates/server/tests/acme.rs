//! ACME (RFC 8555) against a real client: Debian's `lego` registers, orders with http-01 (its own
//! standalone server on the port the test server validates against), renews and revokes; `openssl verify`
//! checks every certificate and `openssl ocsp` says revoked after the revocation. certbot does the same
//! with EAB, and gets a wildcard over dns-01 without EAB. On SQLite and PostgreSQL.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use shedu_testkit::{Options, TestServer, backend_test, openssl};

/// A loopback port free right now, for the client's challenge server.
fn free_port() -> u16 {
    shedu_testkit::free_port_number()
}

/// A server whose ACME validations connect to `http01_port`, a CA, and an RA named `web` with ACME on.
async fn acme_server(
    backend: shedu_testkit::Backend,
    http01_port: u16,
    acme: Value,
) -> (TestServer, Value) {
    acme_server_with(
        backend,
        shedu_core::AcmeConfig {
            http01_port,
            validation_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        acme,
    )
    .await
}

/// [`acme_server`] with the whole validation configuration given.
async fn acme_server_with(
    backend: shedu_testkit::Backend,
    config: shedu_core::AcmeConfig,
    acme: Value,
) -> (TestServer, Value) {
    let server = TestServer::start_with(
        backend,
        Options {
            acme: Some(config),
            ..Default::default()
        },
    )
    .await;
    let ca = server
        .create_ca(json!({"name": "acme-root", "key_type": "ec-p256", "subject": {"common_name": "ACME Test Root"}}))
        .await;
    let (status, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "web", "ca_ids": [ca["id"]], "enrollment": {"auth_modes": ["one_time_secret"]}, "acme": acme}),
        )
        .await;
    assert_eq!(status, 201, "{ra}");
    assert_eq!(
        ra["acme_directory_path"],
        format!("/acme/{}/directory", ra["id"].as_str().unwrap())
    );
    (server, ca)
}

/// Runs lego against the `web` RA's directory with its http-01 server on `port`; returns (success,
/// output).
async fn lego(server: &TestServer, dir: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let http_port = format!(":{port}");
    lego_solving(
        server,
        dir,
        &["--http", "--http.port", &http_port],
        &[],
        args,
    )
    .await
}

/// Runs lego against the `web` RA's directory with the challenge `solver` options and environment.
async fn lego_solving(
    server: &TestServer,
    dir: &Path,
    solver: &[&str],
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String) {
    let directory = format!("{}/acme/web/directory", server.base_url);
    let mut cmd = tokio::process::Command::new("lego");
    cmd.env("LEGO_CA_CERTIFICATES", &server.ca_file)
        .envs(env.iter().copied())
        .args(["--server", &directory, "--path"])
        .arg(dir.join("lego"))
        .args(["--email", "ops@example.test", "--accept-tos"])
        .args(solver)
        .args(args);
    // Output goes to a file, so that a client that hangs still says why.
    let log = dir.join("lego.log");
    let file = std::fs::File::create(&log).unwrap();
    cmd.stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("lego is required (apt-get install lego): {e}"));
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Ok(status) => (status.unwrap().success(), text),
        Err(_) => panic!("lego took over a minute: {text}"),
    }
}

fn verify(dir: &Path, cert: &str) {
    let (ok, out) = openssl(dir, &["verify", "-CAfile", "root.pem", cert]);
    assert!(ok && out.contains(": OK"), "openssl verify {cert}: {out}");
}

/// The subjectAltName extension of `cert`, as openssl prints it.
fn sans(dir: &Path, cert: &str) -> String {
    openssl(
        dir,
        &["x509", "-in", cert, "-noout", "-ext", "subjectAltName"],
    )
    .1
}

fn ocsp_status(server: &TestServer, dir: &Path, cert: &str) -> String {
    let url = format!("{}/ocsp", server.http_url);
    let (_, out) = openssl(
        dir,
        &[
            "ocsp", "-issuer", "root.pem", "-cert", cert, "-url", &url, "-CAfile", "root.pem",
        ],
    );
    out
}

backend_test!(lego_issues_renews_and_revokes_over_http01, |backend| {
    let port = free_port();
    let (server, ca) = acme_server(backend, port, json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("root.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();

    // Issue for two names; the validator reaches `*.localhost` on loopback (RFC 6761).
    let (ok, out) = lego(
        &server,
        d,
        port,
        &["-d", "a.localhost", "-d", "b.localhost", "run"],
    )
    .await;
    assert!(ok, "lego run: {out}");
    let cert = d.join("lego/certificates/a.localhost.crt");
    std::fs::copy(&cert, d.join("first.pem")).unwrap();
    verify(d, "first.pem");
    let text = sans(d, "first.pem");
    assert!(
        text.contains("DNS:a.localhost") && text.contains("DNS:b.localhost"),
        "{text}"
    );
    assert!(ocsp_status(&server, d, "first.pem").contains("first.pem: good"));

    // Renew (forced: the certificate is far from expiry) gives another, valid certificate.
    let (ok, out) = lego(
        &server,
        d,
        port,
        &[
            "-d",
            "a.localhost",
            "-d",
            "b.localhost",
            "renew",
            "--days",
            "100000",
            "--no-random-sleep",
        ],
    )
    .await;
    assert!(ok, "lego renew: {out}");
    std::fs::copy(&cert, d.join("second.pem")).unwrap();
    verify(d, "second.pem");
    let serial = |f: &str| openssl(d, &["x509", "-in", f, "-noout", "-serial"]).1;
    assert_ne!(
        serial("first.pem"),
        serial("second.pem"),
        "renewal issued a new certificate"
    );

    // Revoke: OCSP says revoked as soon as lego returns.
    let (ok, out) = lego(&server, d, port, &["-d", "a.localhost", "revoke"]).await;
    assert!(
        ok && out.contains("Certificate was revoked"),
        "lego revoke: {out}"
    );
    let status = ocsp_status(&server, d, "second.pem");
    assert!(status.contains("second.pem: revoked"), "{status}");
    assert!(ocsp_status(&server, d, "first.pem").contains("first.pem: good"));
});

backend_test!(
    lego_order_for_a_name_outside_the_ra_is_rejected,
    |backend| {
        let port = free_port();
        let (server, _) = acme_server(
            backend,
            port,
            json!({"allowed_dns": ["*.allowed.localhost"]}),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let (ok, out) = lego(
            &server,
            dir.path(),
            port,
            &["-d", "x.other.localhost", "run"],
        )
        .await;
        assert!(!ok && out.contains("rejectedIdentifier"), "{out}");
        let (ok, out) = lego(
            &server,
            dir.path(),
            port,
            &["-d", "x.allowed.localhost", "run"],
        )
        .await;
        assert!(ok, "{out}");
    }
);

backend_test!(lego_with_external_account_binding, |backend| {
    let port = free_port();
    let (server, _) = acme_server(backend, port, json!({"eab_required": true})).await;
    let ra_id = server.get("/api/v1/ras").await.1["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The directory says a binding is required, and lego reads it.
    let (_, directory) = server.get("/acme/web/directory").await;
    assert_eq!(
        directory["meta"]["externalAccountRequired"], true,
        "{directory}"
    );
    let (ok, out) = lego(&server, d, port, &["-d", "e.localhost", "run"]).await;
    assert!(
        !ok && out.contains("requires External Account Binding"),
        "{out}"
    );
    // An operator makes a key; it is shown once and listed without its secret.
    let (status, key) = server
        .post(&format!("/api/v1/ras/{ra_id}/acme/eab"), json!({}))
        .await;
    assert_eq!(status, 201, "{key}");
    let (kid, hmac) = (
        key["kid"].as_str().unwrap(),
        key["hmac_key"].as_str().unwrap(),
    );
    let (_, list) = server.get(&format!("/api/v1/ras/{ra_id}/acme/eab")).await;
    assert_eq!(list["items"][0]["kid"], kid);
    assert!(list["items"][0].get("hmac_key").is_none() && !list.to_string().contains(hmac));
    // A wrong HMAC key is refused; the right one registers and issues.
    let wrong = shedu_acme::b64(&[7u8; 32]);
    let (ok, out) = lego(
        &server,
        d,
        port,
        &[
            "--eab",
            "--kid",
            kid,
            "--hmac",
            &wrong,
            "-d",
            "e.localhost",
            "run",
        ],
    )
    .await;
    assert!(!ok, "{out}");
    let (ok, out) = lego(
        &server,
        d,
        port,
        &[
            "--eab",
            "--kid",
            kid,
            "--hmac",
            hmac,
            "-d",
            "e.localhost",
            "run",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (_, list) = server.get(&format!("/api/v1/ras/{ra_id}/acme/eab")).await;
    assert!(list["items"][0]["account_id"].is_string(), "{list}");
    // Single use: a second account (another lego folder, another key) cannot use it again.
    let other = tempfile::tempdir().unwrap();
    let (ok, out) = lego(
        &server,
        other.path(),
        port,
        &[
            "--eab",
            "--kid",
            kid,
            "--hmac",
            hmac,
            "-d",
            "e.localhost",
            "run",
        ],
    )
    .await;
    assert!(!ok && out.contains("unauthorized"), "{out}");
    // The HMAC key is in no event or audit record.
    let (_, audit) = server.get("/api/v1/audit?limit=1000").await;
    assert!(!audit.to_string().contains(hmac));
});

// See: issue 15 (tls-alpn-01, RFC 8737), judged by lego's own TLS-ALPN solver: it answers the handshake
// with `acme-tls/1` and a certificate carrying the (critical) acmeIdentifier extension. (This lego sends an
// IP address as a DNS identifier, so IP identifiers over tls-alpn-01 are not judged by it.)
backend_test!(lego_issues_over_tls_alpn01, |backend| {
    let port = free_port();
    let (server, ca) = acme_server_with(
        backend,
        shedu_core::AcmeConfig {
            tlsalpn01_port: port,
            validation_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        json!({"challenges": ["tls-alpn-01"]}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("root.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();
    let tls = |p: u16| format!(":{p}");

    // The directory offers tls-alpn-01 only: a client answering on another port is not reached.
    let elsewhere = tls(free_port());
    let (ok, out) = lego_solving(
        &server,
        d,
        &["--tls", "--tls.port", &elsewhere],
        &[],
        &["-d", "t.localhost", "run"],
    )
    .await;
    assert!(!ok && out.contains("connection"), "lego run: {out}");

    let here = tls(port);
    let (ok, out) = lego_solving(
        &server,
        d,
        &["--tls", "--tls.port", &here],
        &[],
        &["-d", "t.localhost", "run"],
    )
    .await;
    assert!(ok, "lego run: {out}");
    std::fs::copy(d.join("lego/certificates/t.localhost.crt"), d.join("t.pem")).unwrap();
    verify(d, "t.pem");
    assert!(sans(d, "t.pem").contains("DNS:t.localhost"));
});

/// pebble-challtestsrv (Let's Encrypt's mock DNS with an HTTP API) on loopback: its DNS port and its
/// management URL; killed when dropped.
struct MockDns {
    child: std::process::Child,
    dns: std::net::SocketAddr,
    management: String,
}

impl Drop for MockDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MockDns {
    async fn start() -> MockDns {
        let (dns_port, management_port) = (free_port(), free_port());
        let child = std::process::Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &format!("127.0.0.1:{management_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("pebble-challtestsrv is required (apt-get install pebble): {e}")
            });
        let management = format!("http://127.0.0.1:{management_port}");
        // Ready when its management interface answers.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", management_port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        MockDns {
            child,
            dns: std::net::SocketAddr::from(([127, 0, 0, 1], dns_port)),
            management,
        }
    }

    /// A lego `exec` DNS provider script publishing TXT records here (`present FQDN VALUE`), with the
    /// value replaced by `override_value` when given (a client publishing the wrong digest).
    fn hook(&self, dir: &Path, override_value: Option<&str>) -> std::path::PathBuf {
        let value = override_value
            .map(str::to_string)
            .unwrap_or_else(|| "$3".into());
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n\
             present) curl -fsS -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"{value}\\\"}}\" {m}/set-txt ;;\n\
             cleanup) curl -fsS -d \"{{\\\"host\\\":\\\"$2\\\"}}\" {m}/clear-txt ;;\n\
             esac\n",
            m = self.management
        );
        let path = dir.join("dns-hook.sh");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

// See: issue 15 (dns-01, and wildcards through it), judged by lego with a real DNS server.
backend_test!(lego_gets_a_wildcard_over_dns01, |backend| {
    let dns = MockDns::start().await;
    let (server, ca) = acme_server_with(
        backend,
        shedu_core::AcmeConfig {
            dns_resolver: Some(dns.dns),
            validation_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        json!({"challenges": ["dns-01"], "allowed_dns": ["example.test", "*.example.test"]}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("root.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();
    let resolvers = dns.dns.to_string();
    let solver = [
        "--dns",
        "exec",
        "--dns.resolvers",
        &resolvers,
        "--dns.disable-cp",
    ];

    // A client that publishes the wrong digest is refused, with the ACME problem type saying why.
    let wrong = dns.hook(d, Some("not-the-digest"));
    let (ok, out) = lego_solving(
        &server,
        d,
        &solver,
        &[("EXEC_PATH", wrong.to_str().unwrap())],
        &["-d", "bad.example.test", "run"],
    )
    .await;
    assert!(!ok && out.contains("incorrectResponse"), "lego run: {out}");

    let hook = dns.hook(d, None);
    let (ok, out) = lego_solving(
        &server,
        d,
        &solver,
        // The two names share one TXT name: lego solves them one after the other, 1 s apart.
        &[
            ("EXEC_PATH", hook.to_str().unwrap()),
            ("EXEC_SEQUENCE_INTERVAL", "1"),
        ],
        &["-d", "*.example.test", "-d", "example.test", "run"],
    )
    .await;
    assert!(ok, "lego run: {out}");
    let cert = d.join("lego/certificates/_.example.test.crt");
    std::fs::copy(&cert, d.join("wild.pem")).unwrap();
    verify(d, "wild.pem");
    let text = sans(d, "wild.pem");
    assert!(
        text.contains("DNS:*.example.test") && text.contains("DNS:example.test"),
        "{text}"
    );
});

/// Runs certbot (PyPI, in a cached virtualenv) against the `web` RA's directory, with its standalone
/// http-01 server on `port` (unless it revokes or is told `--manual`) and its folders under `dir`;
/// returns (success, output).
async fn certbot(server: &TestServer, dir: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let venv = shedu_testkit::python_venv("certbot", &["certbot==5.8.0"]);
    let directory = format!("{}/acme/web/directory", server.base_url);
    let mut cmd = tokio::process::Command::new(venv.join("bin/certbot"));
    cmd.env("REQUESTS_CA_BUNDLE", &server.ca_file)
        .args(args)
        .args(["--server", &directory, "--non-interactive"])
        .arg("--config-dir")
        .arg(dir.join("etc"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--logs-dir")
        .arg(dir.join("logs"))
        .kill_on_drop(true);
    if args[0] != "revoke" && !args.contains(&"--manual") {
        cmd.args([
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
        ])
        .arg(port.to_string());
    }
    let Ok(out) = tokio::time::timeout(Duration::from_secs(90), cmd.output()).await else {
        let log = std::fs::read_to_string(dir.join("logs/letsencrypt.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "certbot took over 90 s; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    };
    let out = out.expect("certbot");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

// See: issue 15 (certbot, the most used ACME client, with EAB: issue, renew, revoke).
backend_test!(certbot_issues_renews_and_revokes_with_eab, |backend| {
    let port = free_port();
    let (server, ca) = acme_server(backend, port, json!({"eab_required": true})).await;
    let (_, ras) = server.get("/api/v1/ras").await;
    let ra_id = ras["items"][0]["id"].as_str().unwrap().to_string();
    let (status, key) = server
        .post(&format!("/api/v1/ras/{ra_id}/acme/eab"), json!({}))
        .await;
    assert_eq!(status, 201, "{key}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("root.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();

    let (ok, out) = certbot(
        &server,
        d,
        port,
        &[
            "certonly",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--eab-kid",
            key["kid"].as_str().unwrap(),
            "--eab-hmac-key",
            key["hmac_key"].as_str().unwrap(),
            "-d",
            "c.localhost",
        ],
    )
    .await;
    assert!(ok, "certbot certonly: {out}");
    let live = d.join("etc/live/c.localhost/cert.pem");
    std::fs::copy(&live, d.join("first.pem")).unwrap();
    verify(d, "first.pem");
    assert!(ocsp_status(&server, d, "first.pem").contains("first.pem: good"));

    let (ok, out) = certbot(
        &server,
        d,
        port,
        &["renew", "--force-renewal", "--no-random-sleep-on-renew"],
    )
    .await;
    assert!(ok, "certbot renew: {out}");
    std::fs::copy(&live, d.join("second.pem")).unwrap();
    verify(d, "second.pem");
    let serial = |f: &str| openssl(d, &["x509", "-in", f, "-noout", "-serial"]).1;
    assert_ne!(
        serial("first.pem"),
        serial("second.pem"),
        "renewal issued a new certificate"
    );

    let (ok, out) = certbot(
        &server,
        d,
        port,
        &[
            "revoke",
            "--cert-name",
            "c.localhost",
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ],
    )
    .await;
    assert!(ok, "certbot revoke: {out}");
    let status = ocsp_status(&server, d, "second.pem");
    assert!(
        status.contains("second.pem: revoked") && status.contains("keyCompromise"),
        "{status}"
    );
});

// See: issue 15 (certbot without EAB: a wildcard over dns-01, published by its --manual-auth-hook in a
// real DNS server).
backend_test!(certbot_gets_a_wildcard_over_dns01_without_eab, |backend| {
    let dns = MockDns::start().await;
    let (server, ca) = acme_server_with(
        backend,
        shedu_core::AcmeConfig {
            dns_resolver: Some(dns.dns),
            validation_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        json!({"challenges": ["dns-01"], "allowed_dns": ["example.test", "*.example.test"]}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("root.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();
    // certbot runs the hook once per name (CERTBOT_DOMAIN without `*.`) before it answers any challenge:
    // both TXT values stand side by side under one name.
    let hook = d.join("certbot-dns.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncurl -fsS -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\",\\\"value\\\":\\\"$CERTBOT_VALIDATION\\\"}}\" {}/set-txt\n",
            dns.management
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, out) = certbot(
        &server,
        d,
        0,
        &[
            "certonly",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            hook.to_str().unwrap(),
            "-d",
            "*.example.test",
            "-d",
            "example.test",
        ],
    )
    .await;
    assert!(ok, "certbot certonly: {out}");
    std::fs::copy(d.join("etc/live/example.test/cert.pem"), d.join("wild.pem")).unwrap();
    verify(d, "wild.pem");
    let text = sans(d, "wild.pem");
    assert!(
        text.contains("DNS:*.example.test") && text.contains("DNS:example.test"),
        "{text}"
    );
});
