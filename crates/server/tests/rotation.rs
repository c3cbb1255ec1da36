//! Agentless rotation (issue 16) through the API, on both backends, against real targets the test starts on
//! loopback: nginx (Debian `nginx-light`, its own prefix, port and configuration), judged after each rotation
//! by `openssl s_client`; a TLS listener of the test's own that serves, per SNI name, the files an executor
//! installed (for the concurrency cap); and the inventory's rules (409, 404, 400 problems, search, paging).

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use shedu_testkit::{Options, TestServer, backend_test, openssl};
use tokio::sync::mpsc;

/// A root CA for rotations.
async fn rotation_ca(server: &TestServer) -> (String, String) {
    let ca = server
        .create_ca(json!({"name": "rot", "key_type": "ec-p256", "subject": {"common_name": "Rotation CA"}}))
        .await;
    (
        ca["id"].as_str().unwrap().to_string(),
        ca["certificate_pem"].as_str().unwrap().to_string(),
    )
}

fn asset(name: &str, port: u16) -> Value {
    json!({
        "system_name": name,
        "common_name": format!("{name}.rotation.test"),
        "subject_alternative_name": [format!("alt.{name}.rotation.test")],
        "ip_address": "127.0.0.1",
        "port": port,
        "data_center": "DC1",
        "host_platform": "linux",
        "os_version": "12.4",
        "device_model": "VM",
        "origin": "API",
        "labels": {"tier": "web"}
    })
}

/// A self-signed certificate and key for `cn` in `dir` (`<stem>.crt`, `<stem>.key`).
fn self_signed(dir: &Path, stem: &str, cn: &str, days: &str) {
    let (ok, out) = openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{stem}.key"),
            "-out",
            &format!("{stem}.crt"),
            "-days",
            days,
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName=DNS:{cn}"),
        ],
    );
    assert!(ok, "{out}");
}

/// The SHA-256 of a PEM certificate file, lowercase hex without colons.
fn fingerprint(dir: &Path, file: &str) -> String {
    let (ok, out) = openssl(
        dir,
        &["x509", "-in", file, "-noout", "-fingerprint", "-sha256"],
    );
    assert!(ok, "{out}");
    out.trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_ascii_lowercase()
}

/// Serves, on loopback, for each SNI name `n` the chain `<dir>/<n>.crt` with the key `<dir>/<n>.key`, read
/// at every handshake (what an executor installs is what the next handshake sees).
async fn sni_files_target(dir: PathBuf) -> u16 {
    #[derive(Debug)]
    struct FilesBySni(PathBuf);
    impl ResolvesServerCert for FilesBySni {
        fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            let name = hello.server_name()?;
            let cert = std::fs::read(self.0.join(format!("{name}.crt"))).ok()?;
            let key = std::fs::read(self.0.join(format!("{name}.key"))).ok()?;
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            let key = PrivateKeyDer::from_pem_slice(&key).ok()?;
            let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).ok()?;
            Some(Arc::new(CertifiedKey::new(chain, signer)))
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FilesBySni(dir)));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await;
            });
        }
    });
    port
}

/// An nginx (Debian nginx-light) of the test's own: its prefix, configuration and port; stopped on drop.
struct Nginx {
    prefix: PathBuf,
    port: u16,
}

impl Nginx {
    fn start(prefix: &Path, name: &str) -> Nginx {
        let nginx = which("nginx", "/usr/sbin/nginx", "nginx-light");
        // Below the ephemeral range: nginx binds it later (see `shedu_testkit::free_port_number`).
        let port = shedu_testkit::free_port_number();
        self_signed(prefix, "site", name, "10");
        let p = prefix.display();
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        let conf = format!(
            "daemon on;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nworker_processes 1;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {p}/tmp/body;\n proxy_temp_path {p}/tmp/proxy;\n\
             fastcgi_temp_path {p}/tmp/fastcgi;\n uwsgi_temp_path {p}/tmp/uwsgi;\n scgi_temp_path {p}/tmp/scgi;\n\
             server {{\n  listen 127.0.0.1:{port} ssl;\n  server_name {name};\n\
             ssl_certificate {p}/site.crt;\n  ssl_certificate_key {p}/site.key;\n\
             location / {{ return 200 \"ok\\n\"; }}\n }}\n}}\n"
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        let out = Command::new(&nginx)
            .args(["-p", &p.to_string(), "-c", &format!("{p}/nginx.conf")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nginx: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let n = Nginx {
            prefix: prefix.to_path_buf(),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let p = self.prefix.display().to_string();
        let _ = Command::new("nginx")
            .args(["-p", &p, "-c", &format!("{p}/nginx.conf"), "-s", "stop"])
            .output();
    }
}

/// The path of a required program, or a panic naming its Debian package.
fn which(name: &str, fallback: &str, package: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match found {
        Some(p) if !p.is_empty() => p,
        _ if Path::new(fallback).exists() => fallback.to_string(),
        _ => panic!("{name} is required (apt-get install {package}; scripts/test installs it)"),
    }
}

/// A `command` executor script: `csr` makes the key in `<dir>/<cn>.key.new` with openssl and prints the
/// CSR, `install` writes certificate + chain to `<dir>/<cn>.crt.new`, `reload` runs `reload_body` (with
/// `$dir` and `$cn` set). Every step is recorded in `<dir>/steps.log`.
fn executor_script(dir: &Path, reload_body: &str) -> PathBuf {
    executor_script_with(dir, reload_body, "echo rolled back")
}

/// [`executor_script`] whose `rollback` runs `rollback_body` (with `$dir` and `$cn` set).
fn executor_script_with(dir: &Path, reload_body: &str, rollback_body: &str) -> PathBuf {
    which("jq", "/usr/bin/jq", "jq");
    let path = dir.join("executor.sh");
    let script = format!(
        "#!/bin/bash\nset -euo pipefail\ndir='{}'\ninput=$(cat)\nstep=$(jq -r .step <<<\"$input\")\n\
         cn=$(jq -r .asset.common_name <<<\"$input\")\necho \"$step $cn\" >> \"$dir/steps.log\"\n\
         case \"$step\" in\n\
         csr) openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout \"$dir/$cn.key.new\" -subj \"/CN=$cn\" 2>/dev/null ;;\n\
         install) jq -r '.certificate + .chain' <<<\"$input\" > \"$dir/$cn.crt.new\" ;;\n\
         reload) {reload_body} ;;\n\
         rollback) {rollback_body} ;;\n\
         esac\n",
        dir.display()
    );
    std::fs::write(&path, script).unwrap();
    make_executable(&path);
    path
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn executor(server: &TestServer, name: &str, program: &Path) -> String {
    let (s, e) = server
        .post(
            "/api/v1/rotation-executors",
            json!({"name": name, "kind": "command", "settings": {"program": program}}),
        )
        .await;
    assert_eq!(s, 201, "{e}");
    e["id"].as_str().unwrap().to_string()
}

async fn route(server: &TestServer, body: Value) -> Value {
    let (s, r) = server.post("/api/v1/rotation-routes", body).await;
    assert_eq!(s, 201, "{r}");
    r
}

/// Waits until run `id` leaves `queued`/`running`; returns it.
async fn finished(server: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (s, run) = server.get(&format!("/api/v1/rotation-runs/{id}")).await;
        assert_eq!(s, 200, "{run}");
        if run["state"] != "queued" && run["state"] != "running" {
            return run;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A webhook receiver on loopback that hands every body to the test.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Bytes>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

backend_test!(inventory_crud_search_paging_and_bad_input, |backend| {
    let server = TestServer::start(backend).await;
    let (ca_id, _) = rotation_ca(&server).await;

    let (s, a) = server.post("/api/v1/assets", asset("web-1", 8443)).await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["port"], 8443);
    assert_eq!(a["labels"]["tier"], "web");
    assert!(a["certificate_expiration"].is_null() && a["current_fingerprint"].is_null());
    assert!(
        a["next_rotation_at"].is_string(),
        "an unknown expiry is due at once: {a}"
    );
    let (s, p) = server.post("/api/v1/assets", asset("web-1", 8443)).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (409, Some("urn:shedu:problem:asset-exists")),
        "{p}"
    );
    let (s, p) = server.get("/api/v1/assets/nope").await;
    assert_eq!(s, 404, "{p}");

    // Bad input: precise 400 problems, nothing written.
    let mut no_address = asset("web-x", 443);
    no_address.as_object_mut().unwrap().remove("ip_address");
    let mut computed = asset("web-y", 443);
    computed["certificate_expiration"] = json!("2030-01-01T00:00:00Z");
    let mut bad_cn = asset("web-z", 443);
    bad_cn["common_name"] = json!("not a name");
    for body in [no_address, bad_cn] {
        let (s, p) = server.post("/api/v1/assets", body).await;
        assert_eq!(
            (s, p["type"].as_str()),
            (400, Some("urn:shedu:problem:invalid-asset")),
            "{p}"
        );
    }
    // A computed field is read-only: the body is refused as the API refuses unknown fields (422).
    let (s, p) = server.post("/api/v1/assets", computed).await;
    assert_eq!(s, 422, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("certificate_expiration"),
        "{p}"
    );
    let (_, page) = server.get("/api/v1/assets").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");

    // PATCH and PUT.
    let (s, a) = server
        .send(
            "PATCH",
            "/api/v1/assets/web-1",
            Some(json!({"data_center": "DC2", "ca_id": ca_id})),
        )
        .await;
    assert_eq!((s, a["data_center"].as_str()), (200, Some("DC2")), "{a}");
    assert_eq!(
        a["common_name"], "web-1.rotation.test",
        "untouched fields stay"
    );
    let (s, p) = server
        .send("PUT", "/api/v1/assets/web-1", Some(asset("web-2", 443)))
        .await;
    assert_eq!(s, 400, "system_name cannot change: {p}");
    let (s, p) = server
        .send("PATCH", "/api/v1/assets/nope", Some(json!({"port": 1})))
        .await;
    assert_eq!(s, 404, "{p}");

    // Search by fields and cursor paging.
    for i in 2..=7 {
        let mut body = asset(&format!("web-{i}"), 443);
        if i % 2 == 0 {
            body["host_platform"] = json!("panos");
            body["labels"] = json!({"tier": "edge"});
        }
        let (s, a) = server.post("/api/v1/assets", body).await;
        assert_eq!(s, 201, "{a}");
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["system_name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, panos) = server.get("/api/v1/assets?host_platform=panos").await;
    assert_eq!(names(&panos), ["web-2", "web-4", "web-6"]);
    let (_, edge) = server
        .get("/api/v1/assets?label=tier%3Dedge&data_center=DC1")
        .await;
    assert_eq!(names(&edge), ["web-2", "web-4", "web-6"]);
    let (_, san) = server
        .get("/api/v1/assets?subject_alternative_name=alt.web-3.rotation.test")
        .await;
    assert_eq!(names(&san), ["web-3"]);
    let (_, dc2) = server.get("/api/v1/assets?data_center=DC2").await;
    assert_eq!(names(&dc2), ["web-1"]);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = server.get(&format!("/api/v1/assets?limit=3{cursor}")).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    for q in [
        "limit=0",
        "port=x",
        "nope=1",
        "label=novalue",
        "days_until_expiration=-1",
        "cursor=abc",
    ] {
        let (s, p) = server.get(&format!("/api/v1/assets?{q}")).await;
        assert_eq!(s, 400, "{q}: {p}");
    }

    // Executors and routes: bad input is a 400 naming the problem.
    let (s, p) = server
        .post(
            "/api/v1/rotation-executors",
            json!({"name": "x", "kind": "command", "settings": {"program": "relative"}}),
        )
        .await;
    assert_eq!(s, 400, "{p}");
    let (s, p) = server
        .post(
            "/api/v1/rotation-executors",
            json!({"name": "x", "kind": "telnet", "settings": {}}),
        )
        .await;
    assert_eq!(s, 400, "{p}");
    let (s, p) = server
        .post("/api/v1/rotation-executors", json!({"name": "x", "kind": "command", "settings": {"program": "/bin/true"}, "secret": "s3cret"}))
        .await;
    assert_eq!(s, 400, "a command executor takes no secret: {p}");
    let exec_id = executor(&server, "noop", Path::new("/bin/true")).await;
    let (s, p) = server
        .post(
            "/api/v1/rotation-routes",
            json!({"executor_id": "missing", "ca_id": ca_id}),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (400, Some("urn:shedu:problem:unknown-executor")),
        "{p}"
    );
    let (s, p) = server
        .post(
            "/api/v1/rotation-routes",
            json!({"executor_id": exec_id, "ca_id": ca_id, "match": {"os_version": "12.[4"}}),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (400, Some("urn:shedu:problem:invalid-glob")),
        "{p}"
    );
    let (s, p) = server
        .post(
            "/api/v1/rotation-routes",
            json!({"executor_id": exec_id, "ca_id": "nope"}),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (400, Some("urn:shedu:problem:unknown-ca")),
        "{p}"
    );
    let r = route(&server, json!({"executor_id": "noop", "ca_id": ca_id, "match": {"host_platform": "linux", "os_version": "12.*"}})).await;
    assert_eq!(r["executor_id"], exec_id.as_str());
    let (s, p) = server
        .send(
            "DELETE",
            &format!("/api/v1/rotation-executors/{exec_id}"),
            None,
        )
        .await;
    assert_eq!(s, 409, "an executor a route names stays: {p}");

    // DELETE.
    let (s, _) = server.send("DELETE", "/api/v1/assets/web-7", None).await;
    assert_eq!(s, 204);
    let (s, _) = server.get("/api/v1/assets/web-7").await;
    assert_eq!(s, 404);
    let (_, audit) = server.get("/api/v1/audit?limit=1000").await;
    for action in [
        "asset.create",
        "asset.update",
        "asset.delete",
        "rotation_executor.create",
        "rotation_route.create",
    ] {
        assert!(audit.to_string().contains(action), "{action} audited");
    }
});

backend_test!(scan_reads_the_served_certificate, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    self_signed(
        dir.path(),
        "scan-1.rotation.test",
        "scan-1.rotation.test",
        "40",
    );
    let port = sni_files_target(dir.path().to_path_buf()).await;
    let (s, _) = server.post("/api/v1/assets", asset("scan-1", port)).await;
    assert_eq!(s, 201);
    let (s, scan) = server.post("/api/v1/assets/scan-1/scan", json!({})).await;
    assert_eq!(s, 200, "{scan}");
    let fp = fingerprint(dir.path(), "scan-1.rotation.test.crt");
    assert_eq!(scan["current_fingerprint"], fp.as_str());
    let (_, a) = server.get("/api/v1/assets/scan-1").await;
    assert_eq!(a["current_fingerprint"], fp.as_str());
    let expiry = a["certificate_expiration"].as_str().unwrap().to_string();
    assert_eq!(scan["certificate_expiration"], expiry.as_str());
    // Due 30 days (the default) before notAfter: 40-day certificate, so about 10 days from now.
    let (_, due_soon) = server.get("/api/v1/assets?days_until_expiration=41").await;
    assert_eq!(due_soon["items"].as_array().unwrap().len(), 1, "{due_soon}");
    let (_, later) = server.get("/api/v1/assets?days_until_expiration=39").await;
    assert_eq!(later["items"].as_array().unwrap().len(), 0, "{later}");

    // With validation on, a certificate no platform CA issued is refused, and recorded nothing.
    let (s, _) = server
        .send(
            "PATCH",
            "/api/v1/assets/scan-1",
            Some(json!({"certificate_validation": true})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, p) = server.post("/api/v1/assets/scan-1/scan", json!({})).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (400, Some("urn:shedu:problem:scan-untrusted")),
        "{p}"
    );
    // Nothing listens: a 400 naming the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (s, _) = server.post("/api/v1/assets", asset("scan-2", closed)).await;
    assert_eq!(s, 201);
    let (s, p) = server.post("/api/v1/assets/scan-2/scan", json!({})).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (400, Some("urn:shedu:problem:scan-failed")),
        "{p}"
    );
});

/// The leaf a TLS server on `port` serves for SNI `name`, as PEM, written to `<dir>/<out>`; with `verify`,
/// `openssl s_client` must also verify the served chain to `<dir>/ca.pem` for that name. A loaded machine
/// may refuse a connection while nginx swaps its workers: a few tries, the last one reported.
fn served_leaf(dir: &Path, port: u16, name: &str, out: &str, verify: bool) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec!["s_client", "-connect", &connect, "-servername", name];
    if verify {
        args.extend([
            "-CAfile",
            "ca.pem",
            "-verify_return_error",
            "-verify_hostname",
            name,
        ]);
    }
    let mut tries = 0;
    let text = loop {
        tries += 1;
        let (ok, text) = openssl(dir, &args);
        let good = text.contains("-----BEGIN CERTIFICATE-----")
            && (!verify || (ok && text.contains("Verify return code: 0 (ok)")));
        if good || tries == 5 {
            break text;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(text.contains("-----BEGIN CERTIFICATE-----"), "{text}");
    if verify {
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    }
    let leaf = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .unwrap()
        .split("-----END CERTIFICATE-----")
        .next()
        .unwrap();
    let pem = format!("-----BEGIN CERTIFICATE-----{leaf}-----END CERTIFICATE-----\n");
    std::fs::write(dir.join(out), &pem).unwrap();
    pem
}

/// Unix seconds of an RFC 3339 timestamp the API wrote.
fn unix(v: &Value) -> i64 {
    time::OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

backend_test!(
    command_rotation_of_three_nginx_is_verified_on_the_wire,
    |backend| {
        let server = TestServer::start_with(backend, Options::loopback_webhooks()).await;
        let (ca_id, ca_pem) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        // Three nginx instances, each with its own prefix (`<dir>/<cn>`), configuration and port.
        let systems = ["web-1", "web-2", "web-3"];
        let nginxes: Vec<Nginx> = systems
            .iter()
            .map(|s| {
                let prefix = dir.path().join(format!("{s}.rotation.test"));
                std::fs::create_dir_all(&prefix).unwrap();
                Nginx::start(&prefix, &format!("{s}.rotation.test"))
            })
            .collect();
        let program = executor_script(
            dir.path(),
            "p=\"$dir/$cn\"; mv \"$dir/$cn.key.new\" \"$p/site.key\"; mv \"$dir/$cn.crt.new\" \"$p/site.crt\"; \
             nginx -p \"$p\" -c \"$p/nginx.conf\" -s reload",
        );
        executor(&server, "nginx-local", &program).await;
        route(&server, json!({"executor_id": "nginx-local", "ca_id": ca_id, "match": {"host_platform": "linux", "os_version": "12.*"}, "validity_days": 60})).await;
        let (url, mut hooks) = receiver().await;
        let (s, sub) = server
        .post("/api/v1/subscriptions", json!({"event_types": ["rotation.failed"], "channel": {"type": "webhook", "url": url}}))
        .await;
        assert_eq!(s, 201, "{sub}");
        for (system, nginx) in systems.iter().zip(&nginxes) {
            let (s, a) = server
                .post("/api/v1/assets", asset(system, nginx.port))
                .await;
            assert_eq!(s, 201, "{a}");
        }

        // web-1 by hand (202, then 409 while it is active), the two others by the scheduler.
        let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let run_id = queued["run_id"].as_str().unwrap().to_string();
        let (s, p) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert!(s == 409 || s == 202, "{p}");
        let run = finished(&server, &run_id).await;
        assert_eq!(run["state"], "succeeded", "{run:#}");
        assert_eq!(run["trigger"], "manual", "{run:#}");
        assert_eq!(
            step_names(&run),
            [
                "route", "csr", "issue", "install", "reload", "validate", "finish"
            ],
            "{run:#}"
        );
        assert!(!run.to_string().contains("PRIVATE KEY"), "{run}");
        // web-1 is due again 30 days before its new notAfter, not now: the tick queues the two others.
        assert_eq!(server.services.rotation.tick().await.unwrap(), 2);
        let mut runs = vec![run];
        for system in &systems[1..] {
            let (_, list) = server
                .get(&format!("/api/v1/rotation-runs?system_name={system}"))
                .await;
            let items = list["items"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{list:#}");
            let run = finished(&server, items[0]["id"].as_str().unwrap()).await;
            assert_eq!(run["state"], "succeeded", "{run:#}");
            assert_eq!(run["trigger"], "scheduled", "{run:#}");
            runs.push(run);
        }

        // The outside judge, for each instance: openssl s_client verifies the chain it serves to the CA for
        // its name, and the leaf is the run's certificate, with the asset's SANs.
        let mut serials = Vec::new();
        for ((system, nginx), run) in systems.iter().zip(&nginxes).zip(&runs) {
            let name = format!("{system}.rotation.test");
            let served = format!("served-{system}.pem");
            served_leaf(dir.path(), nginx.port, &name, &served, true);
            let (ok, text) = openssl(
                dir.path(),
                &[
                    "x509",
                    "-in",
                    &served,
                    "-noout",
                    "-serial",
                    "-ext",
                    "subjectAltName",
                ],
            );
            assert!(ok, "{text}");
            let serial = run["serial"].as_str().unwrap();
            assert!(
                text.to_ascii_lowercase()
                    .contains(&format!("serial={}", serial.trim_start_matches('0'))),
                "{system}: {text} vs {serial}"
            );
            assert!(
                text.contains(&format!("DNS:alt.{system}.rotation.test")),
                "{text}"
            );
            let (_, a) = server.get(&format!("/api/v1/assets/{system}")).await;
            assert_eq!(
                a["current_fingerprint"],
                fingerprint(dir.path(), &served).as_str(),
                "{a}"
            );
            assert_eq!(a["last_run"], run["id"], "{a}");
            assert!(a["skip_reason"].is_null(), "{a}");
            // Due 30 days (the default) before the new notAfter (60-day validity).
            let due_in = unix(&a["next_rotation_at"]) - server.services.registry.now();
            assert!(
                (29 * 86_400..=31 * 86_400).contains(&due_in),
                "{system} due in {due_in} s: {a}"
            );
            serials.push(serial.to_string());
        }
        serials.sort();
        serials.dedup();
        assert_eq!(serials.len(), 3, "{serials:?}");
        let (_, events) = server.get("/api/v1/events?type=rotation.succeeded").await;
        for run in &runs {
            assert!(
                events.to_string().contains(run["id"].as_str().unwrap()),
                "{events}"
            );
        }
        assert_eq!(server.services.rotation.tick().await.unwrap(), 0);

        // A reload that does nothing: the served certificate did not change, so the run fails, the new
        // certificate is revoked (cessation of operation), and the alert webhook hears of it.
        let noop = executor_script(dir.path(), "true");
        std::fs::rename(&noop, dir.path().join("noop.sh")).unwrap();
        executor(&server, "nginx-noop", &dir.path().join("noop.sh")).await;
        route(&server, json!({"position": 1, "executor_id": "nginx-noop", "ca_id": ca_id, "match": {"labels": {"reload": "none"}}})).await;
        let (s, _) = server
            .send(
                "PATCH",
                "/api/v1/assets/web-1",
                Some(json!({"labels": {"tier": "web", "reload": "none"}})),
            )
            .await;
        assert_eq!(s, 200);
        let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let failed_id = queued["run_id"].as_str().unwrap().to_string();
        let run = finished(&server, &failed_id).await;
        assert_eq!(run["state"], "failed", "{run:#}");
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .contains("not the issued one"),
            "{run:#}"
        );
        let new_serial = run["serial"].as_str().unwrap();
        let (s, cert) = server
            .get(&format!("/api/v1/cas/{ca_id}/certificates/{new_serial}"))
            .await;
        assert_eq!(s, 200, "{cert}");
        assert_eq!(cert["status"], "revoked", "{cert}");
        assert_eq!(
            cert["revocation_reason"], "cessation_of_operation",
            "{cert}"
        );
        let (_, a) = server.get("/api/v1/assets/web-1").await;
        assert_eq!(a["skip_reason"], "failed", "{a}");
        assert_eq!(
            a["current_fingerprint"],
            fingerprint(dir.path(), "served-web-1.pem").as_str(),
            "the old certificate is still served"
        );
        let hook = tokio::time::timeout(Duration::from_secs(30), hooks.recv())
            .await
            .expect("alert")
            .unwrap();
        let hook: Value = serde_json::from_slice(&hook).unwrap();
        assert_eq!(hook["type"], "rotation.failed", "{hook}");
        assert_eq!(hook["data"]["run_id"], failed_id.as_str(), "{hook}");
        assert_eq!(hook["data"]["state"], "failed", "{hook}");
    }
);

backend_test!(
    no_route_is_skipped_with_an_event_never_silently,
    |backend| {
        let server = TestServer::start(backend).await;
        let (s, _) = server.post("/api/v1/assets", asset("orphan", 443)).await;
        assert_eq!(s, 201);
        let queued = server.services.rotation.tick().await.unwrap();
        assert_eq!(queued, 0);
        let (_, a) = server.get("/api/v1/assets/orphan").await;
        assert_eq!(a["skip_reason"], "no_route", "{a}");
        let (_, skipped) = server.get("/api/v1/assets?skip_reason=no_route").await;
        assert_eq!(skipped["items"].as_array().unwrap().len(), 1);
        let (_, events) = server.get("/api/v1/events?type=rotation.skipped").await;
        assert!(events.to_string().contains("orphan"), "{events}");
        // Not again at the next tick: the asset waits out its back-off.
        server.services.rotation.tick().await.unwrap();
        let (_, events) = server.get("/api/v1/events?type=rotation.skipped").await;
        assert_eq!(
            events["items"].as_array().map_or(0, Vec::len),
            1,
            "{events}"
        );
    }
);

backend_test!(
    command_executor_concurrency_is_capped_and_the_queue_visible,
    |backend| {
        let cap = 5;
        let server = TestServer::start_with(
            backend,
            Options {
                rotation: Some(shedu_core::RotationConfig {
                    max_concurrent: cap,
                    ..Default::default()
                }),
                ..Options::default()
            },
        )
        .await;
        let (ca_id, _) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        let port = sni_files_target(dir.path().to_path_buf()).await;
        std::fs::write(dir.path().join("running"), "0").unwrap();
        std::fs::write(dir.path().join("max"), "0").unwrap();
        // The executor measures its own concurrency: a counter under flock around a one-second sleep.
        let program = executor_script(
            dir.path(),
            "( flock 9; n=$(( $(cat \"$dir/running\") + 1 )); echo $n > \"$dir/running\"; \
         [ $n -gt $(cat \"$dir/max\") ] && echo $n > \"$dir/max\"; true ) 9>\"$dir/lock\"; sleep 1; \
         mv \"$dir/$cn.key.new\" \"$dir/$cn.key\"; mv \"$dir/$cn.crt.new\" \"$dir/$cn.crt\"; \
         ( flock 9; echo $(( $(cat \"$dir/running\") - 1 )) > \"$dir/running\" ) 9>\"$dir/lock\"",
        );
        executor(&server, "sleepy", &program).await;
        route(&server, json!({"executor_id": "sleepy", "ca_id": ca_id})).await;
        let n = 60;
        for i in 0..n {
            let (s, a) = server
                .post("/api/v1/assets", asset(&format!("node-{i}"), port))
                .await;
            assert_eq!(s, 201, "{a}");
        }
        let queued = server.services.rotation.tick().await.unwrap();
        assert_eq!(queued, n);
        // The queue is visible meanwhile, and only shrinks; never more than the cap are running.
        let count = |v: &Value| v["items"].as_array().unwrap().len();
        let mut samples: Vec<(usize, usize, usize)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let (_, waiting) = server
                .get("/api/v1/rotation-runs?state=queued&limit=1000")
                .await;
            let (_, running) = server
                .get("/api/v1/rotation-runs?state=running&limit=1000")
                .await;
            let (_, done) = server
                .get("/api/v1/rotation-runs?state=succeeded&limit=1000")
                .await;
            let (_, failed) = server
                .get("/api/v1/rotation-runs?state=failed&limit=1000")
                .await;
            assert_eq!(count(&failed), 0, "{failed:#}");
            assert!(
                count(&running) <= cap,
                "{} running, the cap is {cap}",
                count(&running)
            );
            samples.push((count(&waiting), count(&running), count(&done)));
            if count(&done) == n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not all runs finished: {samples:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(
            samples[0].0 >= n / 2,
            "the queue was visible at first: {samples:?}"
        );
        assert!(
            samples.windows(2).all(|w| w[1].0 <= w[0].0),
            "the queue only shrinks: {samples:?}"
        );
        assert!(
            samples.iter().any(|s| s.0 > 0 && s.1 > 0),
            "runs ran while others waited: {samples:?}"
        );
        let max: usize = std::fs::read_to_string(dir.path().join("max"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            max <= cap,
            "the executor saw {max} at once, the cap is {cap}"
        );
        assert!(max >= 2, "runs do run in parallel (saw {max})");
        let log = std::fs::read_to_string(dir.path().join("steps.log")).unwrap();
        assert_eq!(
            log.lines().filter(|l| l.starts_with("reload ")).count(),
            n,
            "{log}"
        );
        // FIFO: runs were taken in the order they were queued (the list is newest first).
        let (_, all) = server.get("/api/v1/rotation-runs?limit=1000").await;
        let started: Vec<i64> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|r| unix(&r["started_at"]))
            .collect();
        assert_eq!(started.len(), n);
        assert!(
            started.windows(2).all(|w| w[0] <= w[1]),
            "taken in queue order: {started:?}"
        );
        // Every asset now serves its new certificate, and nothing is due.
        let (_, assets) = server.get("/api/v1/assets?limit=1000").await;
        assert_eq!(count(&assets), n);
        for a in assets["items"].as_array().unwrap() {
            assert!(a["current_fingerprint"].is_string(), "{a}");
        }
        assert_eq!(server.services.rotation.tick().await.unwrap(), 0);
    }
);

/// An OpenSSH server of the test's own on a loopback port: its own host key, configuration and
/// authorized key (the test's client key), run as the current user; stopped on drop.
struct Sshd {
    child: std::process::Child,
    port: u16,
    /// The host key's fingerprint as `ssh-keygen -lf` prints it.
    fingerprint: String,
    /// The client's private key (OpenSSH PEM).
    client_key: String,
    user: String,
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        let sshd = which("sshd", "/usr/sbin/sshd", "openssh-server");
        let keygen = which("ssh-keygen", "/usr/bin/ssh-keygen", "openssh-client");
        for key in ["host_key", "client_key", "other_key"] {
            let out = Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        // sshd's privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        // Below the ephemeral range: sshd binds it later (see `shedu_testkit::free_port_number`).
        let port = shedu_testkit::free_port_number();
        let d = dir.display();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
            ),
        )
        .unwrap();
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let fingerprint = |file: &str| {
            let out = Command::new(&keygen)
                .arg("-lf")
                .arg(dir.join(file))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string()
        };
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        Sshd {
            child,
            port,
            fingerprint: fingerprint("host_key.pub"),
            client_key: std::fs::read_to_string(dir.join("client_key")).unwrap(),
            user: user.trim().to_string(),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

backend_test!(
    ssh_rotation_with_the_key_made_on_the_host_and_a_pinned_host_key,
    |backend| {
        let server = TestServer::start(backend).await;
        let (ca_id, ca_pem) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        let name = "web-1.rotation.test";
        let nginx = Nginx::start(dir.path(), name);
        let sshd = Sshd::start(dir.path());
        let p = dir.path().display().to_string();
        let commands = json!({
            "csr": format!("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {p}/site.key.new -subj /CN={{common_name}} 2>/dev/null"),
            "install": format!("cat > {p}/site.crt.new"),
            "reload": format!("mv {p}/site.key.new {p}/site.key && mv {p}/site.crt.new {p}/site.crt && nginx -p {p} -c {p}/nginx.conf -s reload"),
        });
        let (s, e) = server
        .post("/api/v1/rotation-executors", json!({"name": "ssh-nginx", "kind": "ssh",
            "settings": {"user": sshd.user, "port": sshd.port, "host_key_fingerprint": sshd.fingerprint, "commands": commands},
            "secret": sshd.client_key}))
        .await;
        assert_eq!(s, 201, "{e}");
        assert_eq!(e["has_secret"], true);
        // The key is sealed and never shown again: not by the API, not in events or the audit log.
        let key_line = sshd.client_key.lines().nth(1).unwrap().to_string();
        for path in [
            "/api/v1/rotation-executors",
            "/api/v1/events?limit=1000",
            "/api/v1/audit?limit=1000",
        ] {
            let (_, body) = server.get(path).await;
            assert!(
                !body.to_string().contains(&key_line),
                "{path} shows the key"
            );
        }
        // A pin is required and must look like one; the key must be an SSH private key.
        for (settings, secret) in [
            (
                json!({"user": "root", "commands": commands}),
                json!(sshd.client_key),
            ),
            (
                json!({"user": "root", "host_key_fingerprint": "SHA256:short", "commands": commands}),
                json!(sshd.client_key),
            ),
            (
                json!({"user": "root", "host_key_fingerprint": sshd.fingerprint, "commands": commands}),
                json!("not a key"),
            ),
        ] {
            let (s, p) = server
                .post(
                    "/api/v1/rotation-executors",
                    json!({"name": "bad", "kind": "ssh", "settings": settings, "secret": secret}),
                )
                .await;
            assert_eq!(s, 400, "{p}");
        }
        route(&server, json!({"executor_id": "ssh-nginx", "ca_id": ca_id})).await;
        let (s, _) = server
            .post("/api/v1/assets", asset("web-1", nginx.port))
            .await;
        assert_eq!(s, 201);
        let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let run = finished(&server, queued["run_id"].as_str().unwrap()).await;
        assert_eq!(run["state"], "succeeded", "{run:#}");
        assert!(!run.to_string().contains(&key_line));
        // The key was made on the host and stayed there; openssl s_client judges what nginx serves.
        assert!(
            std::fs::read_to_string(dir.path().join("site.key"))
                .unwrap()
                .contains("PRIVATE KEY")
        );
        let (ok, out) = openssl(
            dir.path(),
            &[
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", nginx.port),
                "-servername",
                name,
                "-CAfile",
                "ca.pem",
                "-verify_return_error",
                "-verify_hostname",
                name,
            ],
        );
        assert!(ok && out.contains("Verify return code: 0 (ok)"), "{out}");
        let (_, cert) = server
            .get(&format!(
                "/api/v1/cas/{ca_id}/certificates/{}",
                run["serial"].as_str().unwrap()
            ))
            .await;
        let (_, a) = server.get("/api/v1/assets/web-1").await;
        assert_eq!(a["current_fingerprint"], cert["fingerprint_sha256"], "{a}");

        // key_mode server over SSH: `install` reads the key shedu made first, then certificate and chain
        // (one PEM stream that nginx takes as both its certificate and its key file).
        let delivered = json!({
            "csr": "false",
            "install": format!("cat > {p}/bundle.pem.new"),
            "reload": format!("cp {p}/bundle.pem.new {p}/site.key && mv {p}/bundle.pem.new {p}/site.crt && nginx -p {p} -c {p}/nginx.conf -s reload"),
        });
        let (s, e) = server
        .post("/api/v1/rotation-executors", json!({"name": "ssh-deliver", "kind": "ssh",
            "settings": {"user": sshd.user, "port": sshd.port, "host_key_fingerprint": sshd.fingerprint, "commands": delivered},
            "secret": sshd.client_key}))
        .await;
        assert_eq!(s, 201, "{e}");
        route(&server, json!({"position": 2, "executor_id": "ssh-deliver", "ca_id": ca_id, "key_mode": "server", "match": {"labels": {"keys": "server"}}})).await;
        let (s, _) = server
            .send(
                "PATCH",
                "/api/v1/assets/web-1",
                Some(json!({"labels": {"keys": "server"}})),
            )
            .await;
        assert_eq!(s, 200);
        let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let run = finished(&server, queued["run_id"].as_str().unwrap()).await;
        assert_eq!(run["state"], "succeeded", "{run:#}");
        assert_eq!(step_names(&run)[1], "keygen", "{run:#}");
        let bundle = std::fs::read_to_string(dir.path().join("site.key")).unwrap();
        assert!(
            bundle.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{bundle}"
        );
        let (served, key) = served_and_key_public_keys(dir.path(), nginx.port, name, "site.key");
        assert_eq!(served, key);

        // A wrong pinned host key: refused during the key exchange, before any command runs.
        let other = {
            let out = Command::new("ssh-keygen")
                .arg("-lf")
                .arg(dir.path().join("other_key.pub"))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string()
        };
        let marker = dir.path().join("a-command-ran");
        let wrong = json!({
            "csr": format!("touch {}", marker.display()),
            "install": format!("touch {}", marker.display()),
            "reload": format!("touch {}", marker.display()),
        });
        let (s, e) = server
        .post("/api/v1/rotation-executors", json!({"name": "ssh-wrong-pin", "kind": "ssh",
            "settings": {"user": sshd.user, "port": sshd.port, "host_key_fingerprint": other, "commands": wrong},
            "secret": sshd.client_key}))
        .await;
        assert_eq!(s, 201, "{e}");
        route(&server, json!({"position": 1, "executor_id": "ssh-wrong-pin", "ca_id": ca_id, "match": {"labels": {"pin": "wrong"}}})).await;
        let (s, _) = server
            .send(
                "PATCH",
                "/api/v1/assets/web-1",
                Some(json!({"labels": {"pin": "wrong"}})),
            )
            .await;
        assert_eq!(s, 200);
        let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let run = finished(&server, queued["run_id"].as_str().unwrap()).await;
        assert_eq!(run["state"], "failed", "{run:#}");
        let error = run["error"].as_str().unwrap();
        assert!(
            error.contains("not the pinned") && error.contains(&sshd.fingerprint),
            "{run:#}"
        );
        assert!(run["serial"].is_null(), "nothing was issued: {run:#}");
        assert!(!marker.exists(), "no command ran on the host");
    }
);

/// The private key in `pem` as what a store could hold: a base64 line of the PEM, and 32 bytes from the
/// middle of the DER, raw and as hex (PostgreSQL's text form of bytea).
fn key_traces(pem: &str) -> Vec<Vec<u8>> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let der = der.secret_der();
    let mid = &der[der.len() / 2 - 16..der.len() / 2 + 16];
    let line = pem.lines().nth(1).unwrap();
    assert!(line.len() >= 40, "{pem}");
    vec![
        line.as_bytes().to_vec(),
        mid.to_vec(),
        mid.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes(),
    ]
}

/// Whether `needle` occurs in `hay`.
fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The SubjectPublicKeyInfo (PEM) of a key file and of the leaf a TLS server serves, by openssl.
fn served_and_key_public_keys(
    dir: &Path,
    port: u16,
    name: &str,
    key_file: &str,
) -> (String, String) {
    // A loaded machine may drop a connection while nginx swaps its workers, and an old worker that has not
    // yet seen the reload signal may still answer with the previous certificate (the run's own validation
    // can meet a new worker first): a few tries until the served key is the key file's, the last reported.
    // The verdict is openssl's line (its exit status also counts how the server closed the connection).
    let (ok, key) = openssl(dir, &["pkey", "-in", key_file, "-pubout"]);
    assert!(ok, "{key}");
    let mut tries = 0;
    loop {
        tries += 1;
        let (_, out) = openssl(
            dir,
            &[
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                name,
                "-CAfile",
                "ca.pem",
                "-verify_return_error",
                "-verify_hostname",
                name,
            ],
        );
        let served = served_public_key(dir, &out);
        if served.as_deref() == Some(key.as_str()) || tries == 10 {
            assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
            return (served.unwrap_or(out), key);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The public key of the leaf certificate in an `openssl s_client` transcript, if it verified.
fn served_public_key(dir: &Path, out: &str) -> Option<String> {
    if !out.contains("Verify return code: 0 (ok)") {
        return None;
    }
    let leaf = out
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)?
        .split("-----END CERTIFICATE-----")
        .next()?;
    std::fs::write(
        dir.join("served.pem"),
        format!("-----BEGIN CERTIFICATE-----{leaf}-----END CERTIFICATE-----\n"),
    )
    .unwrap();
    let (ok, served) = openssl(dir, &["x509", "-in", "served.pem", "-noout", "-pubkey"]);
    ok.then_some(served)
}

/// Steps of a run, by name.
fn step_names(run: &Value) -> Vec<String> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect()
}

backend_test!(
    server_key_mode_delivers_the_key_through_the_executor_to_nginx,
    |backend| {
        let server = TestServer::start(backend).await;
        let (ca_id, ca_pem) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        let name = "web-1.rotation.test";
        let nginx = Nginx::start(dir.path(), name);
        which("jq", "/usr/bin/jq", "jq");
        let p = dir.path().display().to_string();
        // No `csr` step: the key comes with `install`, in the step's JSON.
        let program = dir.path().join("deliver.sh");
        std::fs::write(
            &program,
            format!(
                "#!/bin/bash\nset -euo pipefail\ninput=$(cat)\nstep=$(jq -r .step <<<\"$input\")\n\
                 echo \"$step\" >> {p}/steps.log\n\
                 case $step in\n\
                 csr) echo 'no csr in server key mode' >&2; exit 1 ;;\n\
                 install) jq -r .key <<<\"$input\" > {p}/site.key.new; jq -r '.certificate + .chain' <<<\"$input\" > {p}/site.crt.new ;;\n\
                 reload) mv {p}/site.key.new {p}/site.key && mv {p}/site.crt.new {p}/site.crt && nginx -p {p} -c {p}/nginx.conf -s reload ;;\n\
                 esac\n"
            ),
        )
        .unwrap();
        make_executable(&program);
        executor(&server, "deliver", &program).await;
        let r = route(&server, json!({"executor_id": "deliver", "ca_id": ca_id, "key_mode": "server", "key_type": "ec-p384"})).await;
        assert_eq!(
            (r["key_mode"].as_str(), r["key_type"].as_str()),
            (Some("server"), Some("ec-p384")),
            "{r}"
        );
        let (s, p) = server
            .post("/api/v1/rotation-routes", json!({"executor_id": "deliver", "ca_id": ca_id, "key_mode": "server", "key_type": "dsa-1024"}))
            .await;
        assert_eq!(s, 400, "{p}");
        let (s, _) = server
            .post("/api/v1/assets", asset("web-1", nginx.port))
            .await;
        assert_eq!(s, 201);
        let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let run = finished(&server, queued["run_id"].as_str().unwrap()).await;
        assert_eq!(run["state"], "succeeded", "{run:#}");
        assert_eq!(
            step_names(&run),
            [
                "route", "keygen", "issue", "install", "reload", "validate", "finish"
            ],
            "{run:#}"
        );
        let log = std::fs::read_to_string(dir.path().join("steps.log")).unwrap();
        assert!(
            !log.contains("csr"),
            "the host was not asked for a CSR: {log}"
        );

        // nginx serves the issued certificate for the key shedu made and delivered: a P-384 key.
        let (served, key) = served_and_key_public_keys(dir.path(), nginx.port, name, "site.key");
        assert_eq!(served, key);
        let (ok, text) = openssl(dir.path(), &["pkey", "-in", "site.key", "-noout", "-text"]);
        assert!(ok && text.contains("P-384"), "{text}");

        // The key is in no answer, event or audit record, and not in the database: not stored.
        let key_pem = std::fs::read_to_string(dir.path().join("site.key")).unwrap();
        let traces = key_traces(&key_pem);
        for path in [
            format!("/api/v1/rotation-runs/{}", run["id"].as_str().unwrap()),
            "/api/v1/events?limit=1000".to_string(),
            "/api/v1/audit?limit=1000".to_string(),
        ] {
            let (_, body) = server.get(&path).await;
            let body = body.to_string();
            assert!(!body.contains("PRIVATE KEY"), "{path}");
            assert!(!holds(body.as_bytes(), &traces[0]), "{path} holds the key");
        }
        let db = shedu_testkit::database_bytes(&server.db_url);
        for t in &traces {
            assert!(!holds(&db, t), "the database holds the delivered key");
        }
    }
);

/// A small appliance with a REST API (Python's http.server): POSTs to `/rotate/<name>` must carry
/// `X-Shedu-Signature` (HMAC-SHA256 of the body with the shared secret) and `X-Api-Key` (the secret), or
/// get 401. `csr` makes a key with openssl and answers the CSR; `install` writes the certificate, chain
/// and the key if one came; `reload` puts them in place. Its TLS port serves the current files at every
/// handshake. Every request is logged in `appliance.log`. Killed on drop.
struct Appliance {
    child: std::process::Child,
    api_port: u16,
    tls_port: u16,
}

const APPLIANCE: &str = r#"
import hashlib, hmac, json, os, socket, ssl, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

d, api_port, tls_port, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
p = lambda f: os.path.join(d, f)

def serve_tls():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", tls_port))
    s.listen(32)
    def one(c):
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(p("site.crt"), p("site.key"))
            t = ctx.wrap_socket(c, server_side=True)
            t.sendall(b"HTTP/1.0 200 OK\r\n\r\nok\n")
            try:
                t.unwrap()
            except Exception:
                pass
            t.close()
        except Exception:
            c.close()
    while True:
        c, _ = s.accept()
        c.settimeout(5)
        threading.Thread(target=one, args=(c,), daemon=True).start()

class Api(BaseHTTPRequestHandler):
    def reply(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(want, self.headers.get("X-Shedu-Signature", ""))
        keyed = self.headers.get("X-Api-Key") == secret
        doc = json.loads(body)
        with open(p("appliance.log"), "a") as f:
            f.write("%s %s signed=%s keyed=%s key=%s\n" % (doc["step"], self.path, signed, keyed, "yes" if doc.get("key") else "no"))
        if not (signed and keyed):
            return self.reply(401, "bad signature or API key")
        step = doc["step"]
        if step == "csr":
            out = subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                  "-nodes", "-keyout", p("site.key.new"), "-subj", "/CN=" + doc["asset"]["common_name"]],
                                 capture_output=True, check=True).stdout.decode()
            return self.reply(200, out)
        if step == "install":
            if doc.get("key"):
                with open(p("site.key.new"), "w") as f:
                    f.write(doc["key"])
            with open(p("site.crt.new"), "w") as f:
                f.write(doc["certificate"] + doc["chain"])
        if step == "reload":
            os.replace(p("site.key.new"), p("site.key"))
            os.replace(p("site.crt.new"), p("site.crt"))
        self.reply(200, "ok")

    def log_message(self, *args):
        pass

threading.Thread(target=serve_tls, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", api_port), Api).serve_forever()
"#;

impl Appliance {
    fn start(dir: &Path, name: &str, secret: &str) -> Appliance {
        let python = which("python3", "/usr/bin/python3", "python3");
        self_signed(dir, "site", name, "10");
        std::fs::write(dir.join("appliance.py"), APPLIANCE).unwrap();
        let api_port = shedu_testkit::free_port_number();
        let tls_port = shedu_testkit::free_port_number();
        let child = Command::new(python)
            .arg(dir.join("appliance.py"))
            .arg(dir)
            .args([
                api_port.to_string(),
                tls_port.to_string(),
                secret.to_string(),
            ])
            .stderr(std::fs::File::create(dir.join("appliance.stderr")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [api_port, tls_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "the appliance did not listen: {}",
                    std::fs::read_to_string(dir.join("appliance.stderr")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Appliance {
            child,
            api_port,
            tls_port,
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

backend_test!(
    http_executor_signs_each_step_to_an_appliance_that_then_serves_the_certificate,
    |backend| {
        let server = TestServer::start_with(backend, Options::loopback_webhooks()).await;
        let (ca_id, ca_pem) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        let name = "web-1.rotation.test";
        let secret = "appliance-api-key-0123456789";
        let appliance = Appliance::start(dir.path(), name, secret);
        let url = format!(
            "http://{{ip_address}}:{}/rotate/{{system_name}}",
            appliance.api_port
        );

        // Bad settings: a precise 400, nothing stored.
        for (settings, secret) in [
            (json!({"url": "ftp://{ip_address}/x"}), json!(secret)),
            (
                json!({"url": url, "auth_header": "bad header"}),
                json!(secret),
            ),
            (json!({"url": url}), Value::Null),
            (json!({"url": url, "method": "PUT"}), json!(secret)),
        ] {
            let (s, p) = server
                .post(
                    "/api/v1/rotation-executors",
                    json!({"name": "bad", "kind": "http", "settings": settings, "secret": secret}),
                )
                .await;
            assert_eq!(
                (s, p["type"].as_str()),
                (400, Some("urn:shedu:problem:invalid-executor")),
                "{p}"
            );
        }
        let (s, e) = server
            .post(
                "/api/v1/rotation-executors",
                json!({"name": "appliance", "kind": "http",
                "settings": {"url": url, "auth_header": "X-Api-Key"}, "secret": secret}),
            )
            .await;
        assert_eq!(s, 201, "{e}");
        assert_eq!(e["has_secret"], true, "{e}");
        let (s, e) = server
            .post("/api/v1/rotation-executors", json!({"name": "wrong-key", "kind": "http",
                "settings": {"url": url, "auth_header": "X-Api-Key"}, "secret": "not-the-appliance-key"}))
            .await;
        assert_eq!(s, 201, "{e}");
        route(&server, json!({"executor_id": "appliance", "ca_id": ca_id, "match": {"labels": {"tier": "web"}}})).await;
        route(&server, json!({"executor_id": "appliance", "ca_id": ca_id, "key_mode": "server", "match": {"labels": {"keys": "server"}}, "position": 1})).await;
        route(&server, json!({"executor_id": "wrong-key", "ca_id": ca_id, "match": {"labels": {"keys": "wrong"}}, "position": 2})).await;
        let (s, _) = server
            .post("/api/v1/assets", asset("web-1", appliance.tls_port))
            .await;
        assert_eq!(s, 201);

        // The key made on the appliance (csr over the API), then the key made by shedu (delivered by install).
        let mut serials = Vec::new();
        for (labels, steps) in [
            (
                json!({"tier": "web"}),
                [
                    "route", "csr", "issue", "install", "reload", "validate", "finish",
                ],
            ),
            (
                json!({"keys": "server"}),
                [
                    "route", "keygen", "issue", "install", "reload", "validate", "finish",
                ],
            ),
        ] {
            let (s, _) = server
                .send(
                    "PATCH",
                    "/api/v1/assets/web-1",
                    Some(json!({"labels": labels})),
                )
                .await;
            assert_eq!(s, 200);
            let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
            assert_eq!(s, 202, "{queued}");
            let run = finished(&server, queued["run_id"].as_str().unwrap()).await;
            assert_eq!(run["state"], "succeeded", "{run:#}");
            assert_eq!(step_names(&run), steps, "{run:#}");
            assert!(!run.to_string().contains(secret), "{run}");
            // openssl judges what the appliance serves: the issued certificate, for the key it holds.
            let (served, key) =
                served_and_key_public_keys(dir.path(), appliance.tls_port, name, "site.key");
            assert_eq!(served, key);
            let (_, a) = server.get("/api/v1/assets/web-1").await;
            assert_eq!(
                a["current_fingerprint"],
                fingerprint(dir.path(), "served.pem").as_str(),
                "{a}"
            );
            serials.push(run["serial"].as_str().unwrap().to_string());
        }
        let log = std::fs::read_to_string(dir.path().join("appliance.log")).unwrap();
        assert_eq!(
            log.lines().collect::<Vec<_>>(),
            [
                "csr /rotate/web-1 signed=True keyed=True key=no",
                "install /rotate/web-1 signed=True keyed=True key=no",
                "reload /rotate/web-1 signed=True keyed=True key=no",
                "install /rotate/web-1 signed=True keyed=True key=yes",
                "reload /rotate/web-1 signed=True keyed=True key=no",
            ],
            "{log}"
        );

        // A wrong key: the appliance refuses the first request (401); the run fails, what it issued is revoked.
        let (s, _) = server
            .send(
                "PATCH",
                "/api/v1/assets/web-1",
                Some(json!({"labels": {"keys": "wrong"}})),
            )
            .await;
        assert_eq!(s, 200);
        let before = std::fs::read(dir.path().join("site.crt")).unwrap();
        let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let run = finished(&server, queued["run_id"].as_str().unwrap()).await;
        assert_eq!(run["state"], "failed", "{run:#}");
        assert!(
            run["error"].as_str().unwrap().contains("HTTP 401"),
            "{run:#}"
        );
        assert!(
            run["serial"].is_null(),
            "nothing issued before the CSR: {run:#}"
        );
        assert_eq!(std::fs::read(dir.path().join("site.crt")).unwrap(), before);

        // The secret is shown nowhere.
        for path in [
            "/api/v1/rotation-executors",
            "/api/v1/events?limit=1000",
            "/api/v1/audit?limit=1000",
        ] {
            let (_, body) = server.get(path).await;
            assert!(
                !body.to_string().contains(secret),
                "{path} shows the secret"
            );
        }
    }
);

backend_test!(
    a_run_left_running_by_a_dead_worker_is_abandoned_once_and_the_asset_rotated_again,
    |backend| {
        let server = TestServer::start(backend).await;
        let (ca_id, _) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        let port = sni_files_target(dir.path().to_path_buf()).await;
        let program = executor_script(
            dir.path(),
            "mv \"$dir/$cn.key.new\" \"$dir/$cn.key\"; mv \"$dir/$cn.crt.new\" \"$dir/$cn.crt\"",
        );
        executor(&server, "files", &program).await;
        route(&server, json!({"executor_id": "files", "ca_id": ca_id})).await;
        let (s, _) = server.post("/api/v1/assets", asset("node-1", port)).await;
        assert_eq!(s, 201);
        // What a worker on a replica that died left: a run `running`, the certificate it had issued
        // recorded, its heartbeat two minutes old (the default limit is one), the asset taken off the queue.
        let issued = server
            .issue_to_files(&ca_id, dir.path(), "orphan", "/CN=node-1.rotation.test")
            .await;
        let serial = issued["serial"].as_str().unwrap();
        let then = server.services.registry.now() - 120;
        shedu_testkit::tamper(
            &server.db_url,
            &format!(
                "INSERT INTO rotation_runs (id, system_name, state, trigger_kind, steps, serial, ca_id, created_at, \
                 started_at, heartbeat_at) VALUES ('dead-run', 'node-1', 'running', 'manual', '[]', '{serial}', \
                 '{ca_id}', {then}, {then}, {then})"
            ),
        );
        shedu_testkit::tamper(
            &server.db_url,
            "UPDATE rotation_assets SET next_rotation_at = NULL, last_run = 'dead-run' WHERE system_name = 'node-1'",
        );
        let (s, p) = server.post("/api/v1/assets/node-1/rotate", json!({})).await;
        assert_eq!(
            s, 409,
            "the dead run still counts as active until abandoned: {p}"
        );

        // One tick abandons it and queues the asset again; later ticks change nothing more.
        assert_eq!(server.services.rotation.tick().await.unwrap(), 1);
        let (_, dead) = server.get("/api/v1/rotation-runs/dead-run").await;
        assert_eq!(dead["state"], "failed", "{dead:#}");
        assert!(
            dead["error"].as_str().unwrap().contains("abandoned"),
            "{dead:#}"
        );
        assert_eq!(
            step_names(&dead),
            ["abandon", "revoke", "finish"],
            "{dead:#}"
        );
        let (_, cert) = server
            .get(&format!("/api/v1/cas/{ca_id}/certificates/{serial}"))
            .await;
        assert_eq!(cert["status"], "revoked", "{cert}");
        assert!(cert.to_string().contains("cessation"), "{cert}");
        let (_, runs) = server.get("/api/v1/rotation-runs?system_name=node-1").await;
        let newest = runs["items"][0]["id"].as_str().unwrap().to_string();
        assert_ne!(newest, "dead-run");
        let run = finished(&server, &newest).await;
        assert_eq!(run["state"], "succeeded", "{run:#}");
        assert_eq!(server.services.rotation.tick().await.unwrap(), 0);
        let (_, runs) = server.get("/api/v1/rotation-runs?system_name=node-1").await;
        assert_eq!(runs["items"].as_array().unwrap().len(), 2, "{runs:#}");
        let (_, failed) = server.get("/api/v1/events?type=rotation.failed").await;
        let failed = failed["items"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{failed:#?}");
        assert_eq!(failed[0]["data"]["run_id"], "dead-run");
        assert_eq!(failed[0]["data"]["abandoned"], true);
        assert_eq!(failed[0]["data"]["state"], "failed");
        let (_, a) = server.get("/api/v1/assets/node-1").await;
        assert_eq!(a["last_run"], newest.as_str(), "{a}");
        assert_eq!(
            a["current_fingerprint"],
            fingerprint(dir.path(), "node-1.rotation.test.crt").as_str(),
            "{a}"
        );
    }
);

/// A `command` executor with a `rollback` step.
async fn executor_with_rollback(server: &TestServer, name: &str, program: &Path) -> String {
    let (s, e) = server
        .post(
            "/api/v1/rotation-executors",
            json!({"name": name, "kind": "command", "settings": {"program": program, "rollback": true}}),
        )
        .await;
    assert_eq!(s, 201, "{e}");
    assert_eq!(e["settings"]["rollback"], true, "{e}");
    e["id"].as_str().unwrap().to_string()
}

/// Whether process `pid` is gone (or a zombie: dead, not yet reaped), waiting up to five seconds.
fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let dead = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // pid (comm) state ...: the state follows the last ')'.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        };
        if dead || Instant::now() > deadline {
            return dead;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

backend_test!(
    a_failed_validation_rolls_back_and_nginx_serves_the_old_certificate_again,
    |backend| {
        let server = TestServer::start_with(
            backend,
            Options {
                rotation: Some(shedu_core::RotationConfig {
                    validation_timeout: Duration::from_secs(3),
                    ..Default::default()
                }),
                ..Options::loopback_webhooks()
            },
        )
        .await;
        let (ca_id, ca_pem) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        let name = "web-1.rotation.test";
        let prefix = dir.path().join(name);
        std::fs::create_dir_all(&prefix).unwrap();
        let nginx = Nginx::start(&prefix, name);
        let old = fingerprint(&prefix, "site.crt");
        // `reload` puts the new files in place (the old ones kept aside) but does not tell nginx, which
        // goes on serving the old certificate: validation fails. `rollback` puts the old files back and
        // reloads nginx; without it, nginx's next reload would serve the revoked certificate.
        let program = executor_script_with(
            dir.path(),
            "p=\"$dir/$cn\"; cp \"$p/site.crt\" \"$p/site.crt.old\"; cp \"$p/site.key\" \"$p/site.key.old\"; \
             mv \"$dir/$cn.key.new\" \"$p/site.key\"; mv \"$dir/$cn.crt.new\" \"$p/site.crt\"",
            "p=\"$dir/$cn\"; mv \"$p/site.crt.old\" \"$p/site.crt\"; mv \"$p/site.key.old\" \"$p/site.key\"; \
             nginx -p \"$p\" -c \"$p/nginx.conf\" -s reload; echo rolled back",
        );
        executor_with_rollback(&server, "nginx-rollback", &program).await;
        route(
            &server,
            json!({"executor_id": "nginx-rollback", "ca_id": ca_id, "validity_days": 60}),
        )
        .await;
        let (url, mut hooks) = receiver().await;
        let (s, sub) = server
            .post("/api/v1/subscriptions", json!({"event_types": ["rotation.failed"], "channel": {"type": "webhook", "url": url}}))
            .await;
        assert_eq!(s, 201, "{sub}");
        let (s, _) = server
            .post("/api/v1/assets", asset("web-1", nginx.port))
            .await;
        assert_eq!(s, 201);
        let (s, scan) = server.post("/api/v1/assets/web-1/scan", json!({})).await;
        assert_eq!(s, 200, "{scan}");
        assert_eq!(scan["current_fingerprint"], old.as_str(), "{scan}");

        let (s, queued) = server.post("/api/v1/assets/web-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let run_id = queued["run_id"].as_str().unwrap().to_string();
        let run = finished(&server, &run_id).await;
        assert_eq!(run["state"], "rolled_back", "{run:#}");
        assert_eq!(
            step_names(&run),
            [
                "route", "csr", "issue", "install", "reload", "validate", "rollback", "revoke",
                "finish"
            ],
            "{run:#}"
        );
        let outcome = |step: &str| {
            run["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["step"] == step)
                .unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(outcome("validate"), "error", "{run:#}");
        assert_eq!(outcome("rollback"), "ok", "{run:#}");
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .contains("not the issued one"),
            "{run:#}"
        );
        let log = std::fs::read_to_string(dir.path().join("steps.log")).unwrap();
        assert!(log.contains(&format!("rollback {name}")), "{log}");

        // The rollback's effect on the host: the old files are back, and nginx, reloaded once more by the
        // test, serves the old certificate (what openssl s_client sees).
        assert_eq!(fingerprint(&prefix, "site.crt"), old);
        assert!(!prefix.join("site.crt.old").exists());
        let p = prefix.display().to_string();
        let out = Command::new("nginx")
            .args(["-p", &p, "-c", &format!("{p}/nginx.conf"), "-s", "reload"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        served_leaf(dir.path(), nginx.port, name, "served.pem", false);
        assert_eq!(fingerprint(dir.path(), "served.pem"), old);

        // The new certificate is revoked as never in service; the asset keeps the old one and backs off.
        let new_serial = run["serial"].as_str().unwrap();
        let (s, cert) = server
            .get(&format!("/api/v1/cas/{ca_id}/certificates/{new_serial}"))
            .await;
        assert_eq!(s, 200, "{cert}");
        assert_eq!(cert["status"], "revoked", "{cert}");
        assert_eq!(
            cert["revocation_reason"], "cessation_of_operation",
            "{cert}"
        );
        let (_, a) = server.get("/api/v1/assets/web-1").await;
        assert_eq!(a["current_fingerprint"], old.as_str(), "{a}");
        assert_eq!(a["skip_reason"], "failed", "{a}");
        assert_eq!(a["last_run"], run_id.as_str(), "{a}");
        let wait = unix(&a["next_rotation_at"]) - unix(&run["finished_at"]);
        assert_eq!(wait, 3_600, "{a}");

        // The alert: a webhook with the run, its end and the revoked serial.
        let hook = tokio::time::timeout(Duration::from_secs(30), hooks.recv())
            .await
            .expect("alert")
            .unwrap();
        let hook: Value = serde_json::from_slice(&hook).unwrap();
        assert_eq!(hook["type"], "rotation.failed", "{hook}");
        assert_eq!(hook["data"]["run_id"], run_id.as_str(), "{hook}");
        assert_eq!(hook["data"]["state"], "rolled_back", "{hook}");
        assert_eq!(hook["data"]["serial"], new_serial, "{hook}");
    }
);

backend_test!(
    a_hung_executor_is_killed_at_the_run_timeout_and_the_run_fails,
    |backend| {
        let timeout = Duration::from_secs(5);
        let server = TestServer::start_with(
            backend,
            Options {
                rotation: Some(shedu_core::RotationConfig {
                    run_timeout: timeout,
                    ..Default::default()
                }),
                ..Options::default()
            },
        )
        .await;
        let (ca_id, _) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        let port = sni_files_target(dir.path().to_path_buf()).await;
        // `reload` hangs: the script waits for a child of its own; both record their process id.
        let program = executor_script(
            dir.path(),
            "echo $$ > \"$dir/reload.pid\"; sleep 600 & echo $! > \"$dir/sleep.pid\"; wait",
        );
        executor(&server, "hangs", &program).await;
        route(&server, json!({"executor_id": "hangs", "ca_id": ca_id})).await;
        let (s, _) = server.post("/api/v1/assets", asset("node-1", port)).await;
        assert_eq!(s, 201);
        let t = Instant::now();
        let (s, queued) = server.post("/api/v1/assets/node-1/rotate", json!({})).await;
        assert_eq!(s, 202, "{queued}");
        let run = finished(&server, queued["run_id"].as_str().unwrap()).await;
        let took = t.elapsed();
        assert_eq!(run["state"], "failed", "{run:#}");
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(20),
            "the run ended after {took:?}, its timeout is {timeout:?}"
        );
        assert_eq!(
            step_names(&run),
            [
                "route", "csr", "issue", "install", "reload", "revoke", "finish"
            ],
            "{run:#}"
        );
        let reload = &run["steps"][4];
        assert_eq!(reload["outcome"], "error", "{run:#}");
        let detail = reload["detail"].as_str().unwrap();
        assert!(
            detail.contains("the run's timeout (5 s) is up") && detail.contains("killed"),
            "{run:#}"
        );
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .starts_with("reload: the run's timeout (5 s) is up"),
            "{run:#}"
        );
        // Killed: the script and what it started (its process group).
        for file in ["reload.pid", "sleep.pid"] {
            let pid = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(gone(pid.trim()), "{file} {pid} still runs");
        }
        // What it had issued is revoked; the asset backs off.
        let (_, cert) = server
            .get(&format!(
                "/api/v1/cas/{ca_id}/certificates/{}",
                run["serial"].as_str().unwrap()
            ))
            .await;
        assert_eq!(cert["status"], "revoked", "{cert}");
        assert_eq!(
            cert["revocation_reason"], "cessation_of_operation",
            "{cert}"
        );
        let (_, a) = server.get("/api/v1/assets/node-1").await;
        assert_eq!(a["skip_reason"], "failed", "{a}");
        let (_, events) = server.get("/api/v1/events?type=rotation.failed").await;
        assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
        assert!(
            events["items"][0]["data"]["error"]
                .as_str()
                .unwrap()
                .contains("timeout"),
            "{events}"
        );
    }
);

backend_test!(
    failures_back_off_one_four_then_twenty_four_hours_with_one_alert_each,
    |backend| {
        let server = TestServer::start_with(backend, Options::loopback_webhooks()).await;
        // Time stands still except when the test moves it.
        server.clock.freeze();
        let (ca_id, _) = rotation_ca(&server).await;
        let dir = tempfile::tempdir().unwrap();
        // A host that never answers: every run fails at its first step (nothing issued). The executor
        // counts its calls.
        let program = dir.path().join("broken.sh");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\ncat > /dev/null\necho call >> '{}/calls.log'\necho 'device unreachable' >&2\nexit 3\n",
                dir.path().display()
            ),
        )
        .unwrap();
        make_executable(&program);
        executor(&server, "broken", &program).await;
        route(&server, json!({"executor_id": "broken", "ca_id": ca_id})).await;
        let (url, mut hooks) = receiver().await;
        let (s, sub) = server
            .post("/api/v1/subscriptions", json!({"event_types": ["rotation.failed"], "channel": {"type": "webhook", "url": url}}))
            .await;
        assert_eq!(s, 201, "{sub}");
        let (s, _) = server.post("/api/v1/assets", asset("node-1", 443)).await;
        assert_eq!(s, 201);

        let backoffs = [3_600, 4 * 3_600, 24 * 3_600, 24 * 3_600];
        let mut run_ids = Vec::new();
        for (i, backoff) in backoffs.into_iter().enumerate() {
            let failures = i + 1;
            // Due: the tick queues one run, which fails.
            assert_eq!(
                server.services.rotation.tick().await.unwrap(),
                1,
                "failure {failures}"
            );
            let (_, runs) = server.get("/api/v1/rotation-runs?system_name=node-1").await;
            assert_eq!(
                runs["items"].as_array().unwrap().len(),
                failures,
                "{runs:#}"
            );
            let run = finished(&server, runs["items"][0]["id"].as_str().unwrap()).await;
            assert_eq!(run["state"], "failed", "{run:#}");
            assert_eq!(run["trigger"], "scheduled", "{run:#}");
            assert!(
                run["error"]
                    .as_str()
                    .unwrap()
                    .contains("device unreachable"),
                "{run:#}"
            );
            run_ids.push(run["id"].as_str().unwrap().to_string());
            let now = server.services.registry.now();
            let (_, a) = server.get("/api/v1/assets/node-1").await;
            assert_eq!(a["skip_reason"], "failed", "{a}");
            assert_eq!(
                unix(&a["next_rotation_at"]),
                now + backoff,
                "failure {failures}: {a}"
            );
            // One alert per failure: the event, and the webhook it is delivered to.
            let (_, events) = server.get("/api/v1/events?type=rotation.failed").await;
            let events = events["items"].as_array().unwrap();
            assert_eq!(events.len(), failures, "{events:#?}");
            let newest = &events[failures - 1]["data"];
            assert_eq!(newest["run_id"], run["id"], "{events:#?}");
            assert_eq!(newest["failures"], failures, "{events:#?}");
            assert_eq!(newest["next_attempt_at"], now + backoff, "{events:#?}");
            let hook = tokio::time::timeout(Duration::from_secs(30), hooks.recv())
                .await
                .expect("alert")
                .unwrap();
            let hook: Value = serde_json::from_slice(&hook).unwrap();
            assert_eq!(hook["data"]["run_id"], run["id"], "{hook}");

            // Ticks before the back-off is over queue nothing and alert nobody.
            for _ in 0..3 {
                assert_eq!(server.services.rotation.tick().await.unwrap(), 0);
            }
            server.clock.advance(backoff - 1);
            assert_eq!(server.services.rotation.tick().await.unwrap(), 0);
            let (_, events) = server.get("/api/v1/events?type=rotation.failed").await;
            assert_eq!(events["items"].as_array().unwrap().len(), failures);
            server.clock.advance(1);
        }
        // 53 hours and a score of ticks later: four runs, four alerts, four calls to the executor.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(hooks.try_recv().is_err(), "no alert beyond one per failure");
        let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
        assert_eq!(calls.lines().count(), backoffs.len(), "{calls}");
        let (_, runs) = server.get("/api/v1/rotation-runs?system_name=node-1").await;
        assert_eq!(runs["items"].as_array().unwrap().len(), backoffs.len());
        assert_eq!(run_ids.len(), backoffs.len());
    }
);
