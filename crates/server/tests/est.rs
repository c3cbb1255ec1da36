//! EST (RFC 7030) driven exactly as a device would: curl for HTTP and mTLS, openssl to make keys and CSRs
//! and to judge every answer (`openssl pkcs7 -print_certs`, `openssl verify`, `openssl ocsp`). Refused
//! requests are checked to change nothing.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use shedu_core::Clock;
use shedu_testkit::{
    Options, TestServer, backend_test, curl, openssl, openssl_csr, openssl_foreign_leaf,
};

/// An EST answer.
#[derive(Debug)]
struct Reply {
    /// 0 when curl failed before HTTP (a refused handshake).
    status: u16,
    content_type: String,
    www_authenticate: bool,
    body: Vec<u8>,
}

/// One EST call with curl. `csr` names `<csr>.b64` in `dir`; `cert` names `<cert>.pem` + `<cert>.key`.
fn est(
    server: &TestServer,
    dir: &Path,
    path: &str,
    csr: Option<&str>,
    cert: Option<&str>,
    extra: &[&str],
) -> Reply {
    let url = format!("{}/.well-known/est/{path}", server.base_url);
    let ca = server.ca_file.to_str().unwrap().to_string();
    let (cert_file, key_file) = cert
        .map(|c| (format!("{c}.pem"), format!("{c}.key")))
        .unzip();
    let body = csr.map(|c| format!("@{c}.b64"));
    let mut args = vec![
        "--cacert",
        &ca,
        "-o",
        "reply.bin",
        "-D",
        "headers.txt",
        "-w",
        "%{http_code}\n%{content_type}",
    ];
    if let (Some(c), Some(k)) = (&cert_file, &key_file) {
        args.extend(["--cert", c.as_str(), "--key", k.as_str()]);
    }
    if let Some(b) = &body {
        args.extend([
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            b.as_str(),
        ]);
    }
    args.extend(extra);
    args.push(&url);
    let _ = std::fs::remove_file(dir.join("reply.bin"));
    let (code, out) = curl(dir, &args);
    let text = String::from_utf8_lossy(&out).to_string();
    let (status, content_type) = text.split_once('\n').unwrap_or(("0", ""));
    let headers = std::fs::read_to_string(dir.join("headers.txt")).unwrap_or_default();
    Reply {
        status: if code == 0 {
            status.trim().parse().unwrap()
        } else {
            0
        },
        content_type: content_type.trim().to_string(),
        www_authenticate: headers
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        body: std::fs::read(dir.join("reply.bin")).unwrap_or_default(),
    }
}

/// One RA's EST endpoints as a device in `dir` sees them.
struct EstRa<'a> {
    server: &'a TestServer,
    dir: &'a Path,
    id: String,
}

impl EstRa<'_> {
    fn call(&self, op: &str, csr: Option<&str>, cert: Option<&str>) -> Reply {
        est(
            self.server,
            self.dir,
            &format!("{}/{op}", self.id),
            csr,
            cert,
            &[],
        )
    }
}

/// Creates an RA through the API; returns its JSON and its EST endpoints.
async fn create_ra<'a>(server: &'a TestServer, dir: &'a Path, body: Value) -> (Value, EstRa<'a>) {
    let (s, ra) = server.post("/api/v1/ras", body).await;
    assert_eq!(s, 201, "{ra}");
    let id = ra["id"].as_str().unwrap().to_string();
    (ra, EstRa { server, dir, id })
}

/// A key and CSR for `subject` (`<stem>.key`, `<stem>.b64`: base64 DER in 64-character lines).
fn csr(dir: &Path, stem: &str, subject: &str, sans: Option<&str>) {
    openssl_csr(dir, stem, "ec-p256", subject, sans);
    let der_file = format!("{stem}.der");
    let (ok, out) = openssl(
        dir,
        &[
            "req",
            "-in",
            &format!("{stem}.csr"),
            "-outform",
            "DER",
            "-out",
            &der_file,
        ],
    );
    assert!(ok, "{out}");
    let b64 = STANDARD.encode(std::fs::read(dir.join(der_file)).unwrap());
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    std::fs::write(dir.join(format!("{stem}.b64")), wrapped.join("\n")).unwrap();
}

/// Decodes a base64 PKCS#7 certs-only body with openssl into `<stem>.pem`; returns the printed certs.
fn pkcs7_to_pem(dir: &Path, body: &[u8], stem: &str) -> String {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = STANDARD.decode(text).expect("base64 body");
    std::fs::write(dir.join(format!("{stem}.p7")), der).unwrap();
    let (ok, out) = openssl(
        dir,
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            &format!("{stem}.p7"),
            "-print_certs",
            "-out",
            &format!("{stem}.pem"),
        ],
    );
    assert!(ok, "openssl pkcs7: {out}");
    std::fs::read_to_string(dir.join(format!("{stem}.pem"))).unwrap()
}

/// What refused requests must leave unchanged: certificates, devices, events.
async fn footprint(server: &TestServer) -> (usize, usize, usize) {
    let (_, certs) = server.get("/api/v1/certificates?limit=1000").await;
    let (_, devices) = server.get("/api/v1/devices?limit=1000").await;
    let (_, events) = server.get("/api/v1/events?limit=1000").await;
    let len = |v: &Value| v["items"].as_array().map_or(0, Vec::len);
    (len(&certs), len(&devices), len(&events))
}

async fn ca(server: &TestServer, name: &str, extra_profile: Value) -> String {
    let mut profile = json!({"ext_key_usages": ["client_auth"], "default_validity_days": 90});
    profile
        .as_object_mut()
        .unwrap()
        .extend(extra_profile.as_object().unwrap().clone());
    let ca = server
        .create_ca(json!({"name": name, "key_type": "ec-p256", "subject": {"common_name": name}, "profile": profile}))
        .await;
    ca["id"].as_str().unwrap().to_string()
}

/// `openssl verify` of `cert` against `ca`, as of the service clock's time.
fn verify(server: &TestServer, dir: &Path, ca: &str, cert: &str) {
    let at = server.clock.now().to_string();
    let (ok, out) = openssl(dir, &["verify", "-attime", &at, "-CAfile", ca, cert]);
    assert!(ok, "{out}");
}

fn write_chain(server_chain: &str, dir: &Path, file: &str) {
    std::fs::write(dir.join(file), server_chain).unwrap();
}

backend_test!(est_enrolment_as_a_device_does_it, |backend| {
    let server = TestServer::start(backend).await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let devices = ca(&server, "Devices", json!({})).await;
    let factory = ca(&server, "Factory", json!({})).await;
    let other = ca(&server, "Other", json!({})).await;
    let (_, line) = create_ra(
        &server,
        dir,
        json!({"name": "line-1", "ca_ids": [devices], "default_ca_id": devices,
            "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [factory],
                "auto_register": true, "reenroll_window_days": 30, "server_keygen": true,
                "csr_attributes": ["1.2.840.10045.4.3.2"]}}),
    )
    .await;
    let ra_id = line.id.clone();
    let (_, devices_ca) = server.get(&format!("/api/v1/cas/{devices}")).await;
    write_chain(
        devices_ca["certificate_pem"].as_str().unwrap(),
        dir,
        "devices-ca.pem",
    );

    // cacerts: PKCS#7 certs-only that openssl decodes to the RA's CA.
    let r = line.call("cacerts", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/pkcs7-mime");
    let printed = pkcs7_to_pem(dir, &r.body, "cacerts");
    assert!(
        printed.contains("subject=CN = Devices") || printed.contains("subject=CN=Devices"),
        "{printed}"
    );

    // A device's shell script decodes it with coreutils (which refuses CR line ends). See: issue 12.
    std::fs::write(dir.join("cacerts.b64"), &r.body).unwrap();
    let decoded = std::process::Command::new("base64")
        .args(["-d", "cacerts.b64"])
        .current_dir(dir)
        .output()
        .expect("coreutils base64");
    assert!(
        decoded.status.success(),
        "base64 -d: {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    assert_eq!(
        decoded.stdout,
        std::fs::read(dir.join("cacerts.p7")).unwrap()
    );

    // csrattrs: the advertised algorithm.
    let r = line.call("csrattrs", None, None);
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/csrattrs")
    );
    let der = STANDARD
        .decode(
            r.body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect::<Vec<_>>(),
        )
        .unwrap();
    std::fs::write(dir.join("attrs.der"), der).unwrap();
    let (ok, out) = openssl(dir, &["asn1parse", "-inform", "DER", "-in", "attrs.der"]);
    assert!(ok && out.contains("ecdsa-with-SHA256"), "{out}");

    // simpleenroll with a bootstrap certificate over mTLS.
    server
        .issue_to_files(&factory, dir, "boot", "/CN=plc-1")
        .await;
    csr(dir, "plc1", "/CN=plc-1", Some("DNS:plc-1.factory.example"));
    let before = footprint(&server).await;
    let r = line.call("simpleenroll", Some("plc1"), None);
    assert_eq!(r.status, 401, "no credential");
    assert!(r.www_authenticate, "401 names the scheme");
    assert_eq!(footprint(&server).await, before);
    let r = line.call("simpleenroll", Some("plc1"), Some("boot"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.content_type,
        "application/pkcs7-mime; smime-type=certs-only"
    );
    pkcs7_to_pem(dir, &r.body, "plc1-cert");
    std::fs::copy(dir.join("plc1-cert.pem"), dir.join("plc1.pem")).unwrap();
    verify(&server, dir, "devices-ca.pem", "plc1.pem");
    let (s, device) = server.get("/api/v1/devices/plc-1").await;
    assert_eq!(s, 200, "{device}");
    assert_eq!(device["status"], "fully_provisioned");
    assert_eq!(device["ra_id"], ra_id.as_str());
    let first_serial = device["slots"][0]["active"]["serial"]
        .as_str()
        .unwrap()
        .to_string();

    // simplereenroll with the issued certificate: refused before the window opens, accepted inside it.
    let before = footprint(&server).await;
    let r = line.call("simplereenroll", Some("plc1"), Some("plc1"));
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("days"));
    assert_eq!(footprint(&server).await, before);
    server.clock.advance(70 * 86_400);
    let r = line.call("simplereenroll", Some("plc1"), Some("plc1"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    pkcs7_to_pem(dir, &r.body, "plc1-renewed");
    verify(&server, dir, "devices-ca.pem", "plc1-renewed.pem");
    let (_, device) = server.get("/api/v1/devices/plc-1").await;
    let renewed_serial = device["slots"][0]["active"]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(
        renewed_serial, first_serial,
        "the slot holds the new certificate"
    );
    let (_, old) = server
        .get(&format!(
            "/api/v1/cas/{devices}/certificates/{first_serial}"
        ))
        .await;
    assert_ne!(
        old["status"], "revoked",
        "the replaced certificate stays valid until it expires"
    );

    // Negative cases, each refused with the right status and nothing stored.
    // Their material: a certificate of a managed CA outside the RA's bootstrap list, a revoked bootstrap one.
    server
        .issue_to_files(&other, dir, "stranger", "/CN=plc-9")
        .await;
    csr(dir, "plc9", "/CN=plc-9", None);
    let boot3 = server
        .issue_to_files(&factory, dir, "boot3", "/CN=plc-3")
        .await;
    let serial = boot3["serial"].as_str().unwrap();
    let (s, _) = server
        .post(
            &format!("/api/v1/cas/{factory}/certificates/{serial}/revoke"),
            json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(s, 200);
    csr(dir, "plc3", "/CN=plc-3", None);
    let before = footprint(&server).await;
    // The replaced certificate is no longer the device's identity.
    let r = line.call("simplereenroll", Some("plc1"), Some("plc1"));
    assert_eq!(r.status, 403);
    // Re-enrolment must keep the subject.
    std::fs::copy(dir.join("plc1-renewed.pem"), dir.join("renewed.pem")).unwrap();
    std::fs::copy(dir.join("plc1.key"), dir.join("renewed.key")).unwrap();
    csr(dir, "other-subject", "/CN=plc-2", None);
    let r = line.call("simplereenroll", Some("other-subject"), Some("renewed"));
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("subject"));
    // A CSR whose signature does not verify.
    let mut der = std::fs::read(dir.join("plc1.der")).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    std::fs::write(dir.join("bad.b64"), STANDARD.encode(&der)).unwrap();
    let r = line.call("simpleenroll", Some("bad"), Some("boot"));
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    // A bootstrap certificate from a managed CA that is not one of the RA's bootstrap CAs.
    let r = line.call("simpleenroll", Some("plc9"), Some("stranger"));
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    // A revoked bootstrap certificate.
    let r = line.call("simpleenroll", Some("plc3"), Some("boot3"));
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("revoked"));
    // A bootstrap certificate from a CA the platform does not know: the handshake itself fails.
    openssl_foreign_leaf(dir, "rogue", "/CN=plc-3");
    let r = line.call("simpleenroll", Some("plc3"), Some("rogue"));
    assert_eq!(r.status, 0, "curl must fail the TLS handshake");
    assert_eq!(
        footprint(&server).await,
        before,
        "refused requests store nothing"
    );

    // An RA may only name CAs from its list; once a CA leaves the list its devices cannot renew there.
    let put = |body: Value| {
        let req = server
            .client
            .put(format!("{}/api/v1/ras/{ra_id}", server.base_url))
            .bearer_auth(&server.token)
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (s, body) = put(
        json!({"name": "line-1", "ca_ids": [devices], "default_ca_id": other,
        "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [factory]}}),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["type"], "urn:shedu:problem:ca-not-authorized");
    let (s, body) = put(json!({"name": "line-1", "ca_ids": [other],
        "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [factory],
            "server_keygen": true, "auto_register": true}}))
    .await;
    assert_eq!(s, 200, "{body}");
    server.clock.advance(60 * 86_400);
    let r = line.call("simplereenroll", Some("plc1"), Some("renewed"));
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("authorized"));

    // serverkeygen: the key in the answer belongs to the certificate next to it.
    server
        .issue_to_files(&factory, dir, "boot4", "/CN=plc-4")
        .await;
    csr(dir, "plc4", "/CN=plc-4", None);
    let r = line.call("serverkeygen", Some("plc4"), Some("boot4"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let boundary = r
        .content_type
        .split("boundary=")
        .nth(1)
        .expect("multipart boundary");
    let body = String::from_utf8(r.body.clone()).unwrap();
    let parts: Vec<&str> = body
        .split(&format!("--{boundary}"))
        .filter(|p| p.contains("Content-Type"))
        .collect();
    assert_eq!(parts.len(), 2, "{body}");
    let payload = |part: &str| -> Vec<u8> {
        let (_, b64) = part.split_once("\r\n\r\n").unwrap();
        STANDARD
            .decode(
                b64.bytes()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect::<Vec<_>>(),
            )
            .unwrap()
    };
    assert!(parts[0].contains("application/pkcs8"));
    std::fs::write(dir.join("plc4-key.der"), payload(parts[0])).unwrap();
    assert!(parts[1].contains("application/pkcs7-mime; smime-type=certs-only"));
    pkcs7_to_pem(
        dir,
        STANDARD.encode(payload(parts[1])).as_bytes(),
        "plc4-cert",
    );
    let (ok, key_pub) = openssl(
        dir,
        &["pkey", "-inform", "DER", "-in", "plc4-key.der", "-pubout"],
    );
    assert!(ok, "{key_pub}");
    let (ok, cert_pub) = openssl(dir, &["x509", "-in", "plc4-cert.pem", "-pubkey", "-noout"]);
    assert!(ok, "{cert_pub}");
    assert_eq!(
        key_pub, cert_pub,
        "the generated key matches the certificate"
    );
    let (_, other_ca) = server.get(&format!("/api/v1/cas/{other}")).await;
    write_chain(
        other_ca["certificate_pem"].as_str().unwrap(),
        dir,
        "other-ca.pem",
    );
    verify(&server, dir, "other-ca.pem", "plc4-cert.pem");
});

backend_test!(one_time_secrets_are_consumed_once, |backend| {
    let server = TestServer::start(backend).await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let devices = ca(&server, "Sensors", json!({})).await;
    let (_, line) = create_ra(
        &server,
        dir,
        json!({"name": "field", "ca_ids": [devices],
            "enrollment": {"auth_modes": ["one_time_secret"]}}),
    )
    .await;
    let ra_id = line.id.clone();
    let (s, dev) = server
        .post(
            "/api/v1/devices",
            json!({"id": "sensor-1", "ra_id": ra_id, "tags": ["hall-3"]}),
        )
        .await;
    assert_eq!(s, 201, "{dev}");
    let (s, secret) = server
        .post("/api/v1/devices/sensor-1/enrollment-secret", json!({}))
        .await;
    assert!(s == 200 || s == 201, "{secret}");
    let user = format!("sensor-1:{}", secret["secret"].as_str().unwrap());
    csr(dir, "s1", "/CN=sensor-1", None);
    csr(dir, "s2", "/CN=sensor-2", None);

    let before = footprint(&server).await;
    let r = line.call("simpleenroll", Some("s1"), None);
    assert_eq!(r.status, 401);
    assert!(r.www_authenticate);
    let r = est(
        &server,
        dir,
        &format!("{ra_id}/simpleenroll"),
        Some("s1"),
        None,
        &["-u", "sensor-1:wrong-secret"],
    );
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    // The secret is sensor-1's: a CSR for another device is refused, and the secret is not spent.
    let r = est(
        &server,
        dir,
        &format!("{ra_id}/simpleenroll"),
        Some("s2"),
        None,
        &["-u", &user],
    );
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(footprint(&server).await, before);

    let r = est(
        &server,
        dir,
        &format!("{ra_id}/simpleenroll"),
        Some("s1"),
        None,
        &["-u", &user],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let after_first = footprint(&server).await;
    let r = est(
        &server,
        dir,
        &format!("{ra_id}/simpleenroll"),
        Some("s1"),
        None,
        &["-u", &user],
    );
    assert_eq!(r.status, 403, "a one-time secret works once");
    assert_eq!(footprint(&server).await, after_first);
    // Enrolments are audited with the device as the principal, refusals included.
    let (s, audit) = server.get("/api/v1/audit?principal=sensor-1").await;
    assert_eq!(s, 200, "{audit}");
    let records = audit["items"].as_array().unwrap();
    let count = |action: &str, outcome: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("device.enroll", "success"), 1, "{audit}");
    assert!(
        count("POST /.well-known/est/{label}/{op}", "denied") >= 3,
        "{audit}"
    );
    let (_, device) = server.get("/api/v1/devices/sensor-1").await;
    assert_eq!(device["status"], "fully_provisioned");
});

async fn status(server: &TestServer, id: &str) -> String {
    let (_, d) = server.get(&format!("/api/v1/devices/{id}")).await;
    d["status"].as_str().unwrap().to_string()
}

backend_test!(device_status_follows_its_certificate, |backend| {
    let server = TestServer::start(backend).await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let devices = ca(
        &server,
        "Meters",
        json!({"default_validity_days": 30, "expiry_warning_days": 7}),
    )
    .await;
    let (_, line) = create_ra(
        &server,
        dir,
        json!({"name": "meters", "ca_ids": [devices],
            "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [devices],
                "auto_register": true}}),
    )
    .await;
    let ra_id = line.id.clone();
    for n in ["m-1", "m-2"] {
        server
            .issue_to_files(&devices, dir, &format!("boot-{n}"), &format!("/CN={n}"))
            .await;
        csr(dir, n, &format!("/CN={n}"), None);
        let r = line.call("simpleenroll", Some(n), Some(&format!("boot-{n}")));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        pkcs7_to_pem(dir, &r.body, &format!("{n}-cert"));
    }
    assert_eq!(status(&server, "m-1").await, "fully_provisioned");

    // Decommission: every active certificate revoked, and OCSP says so at once.
    let (s, body) = server
        .post("/api/v1/devices/m-2/decommission", json!({}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(status(&server, "m-2").await, "decommissioned");
    // Its bootstrap certificate still authenticates, but the RA (no approval webhook: the device is
    // judged in the enrolment's transaction only) refuses a decommissioned device and stores nothing.
    let before = footprint(&server).await;
    csr(dir, "m-2-again", "/CN=m-2", None);
    let r = line.call("simpleenroll", Some("m-2-again"), Some("boot-m-2"));
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        String::from_utf8_lossy(&r.body).contains("device m-2 is decommissioned"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(footprint(&server).await, before);
    let (_, meters) = server.get(&format!("/api/v1/cas/{devices}")).await;
    write_chain(
        meters["certificate_pem"].as_str().unwrap(),
        dir,
        "meters.pem",
    );
    let ocsp_url = format!("{}/ocsp", server.http_url);
    let (ok, out) = openssl(
        dir,
        &[
            "ocsp",
            "-issuer",
            "meters.pem",
            "-cert",
            "m-2-cert.pem",
            "-url",
            &ocsp_url,
            "-CAfile",
            "meters.pem",
        ],
    );
    assert!(ok && out.contains("m-2-cert.pem: revoked"), "{out}");
    assert!(out.contains("cessationOfOperation"), "{out}");

    // Time moves: about to expire, then expired.
    server.clock.advance(25 * 86_400);
    server.services.issuance.sweep().await.unwrap();
    assert_eq!(status(&server, "m-1").await, "requires_action");
    server.clock.advance(6 * 86_400);
    server.services.issuance.sweep().await.unwrap();
    assert_eq!(status(&server, "m-1").await, "with_warnings");
    assert_eq!(status(&server, "m-2").await, "decommissioned", "terminal");

    // An expired certificate may re-enrol only where the RA allows it; the device is healthy again after.
    std::fs::copy(dir.join("m-1-cert.pem"), dir.join("m1-now.pem")).unwrap();
    std::fs::copy(dir.join("m-1.key"), dir.join("m1-now.key")).unwrap();
    let reenroll = |server: &TestServer| {
        est(
            server,
            dir,
            &format!("{ra_id}/simplereenroll"),
            Some("m-1"),
            Some("m1-now"),
            &[],
        )
    };
    let r = reenroll(&server);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    let res = server
        .client
        .put(format!("{}/api/v1/ras/{ra_id}", server.base_url))
        .bearer_auth(&server.token)
        .json(&json!({"name": "meters", "ca_ids": [devices],
            "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [devices],
                "auto_register": true, "allow_expired_reenroll": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r = reenroll(&server);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(status(&server, "m-1").await, "fully_provisioned");
});

// See: issue 12 (item 7: the per-request check looked only at the leaf; session 5 tested an expired root
// above a live intermediate, this is the expired intermediate itself). Where an RA lets an expired
// certificate re-enrol, the leaf's expiry is forgiven but not its issuing CA's.
backend_test!(
    an_expired_issuing_intermediate_stops_re_enrolment_that_an_expired_leaf_may_do,
    |backend| {
        let server = TestServer::start(backend).await;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let root = server
        .create_ca(json!({"name": "plant root", "key_type": "ec-p256", "subject": {"common_name": "Plant Root"},
            "validity_days": 3650}))
        .await;
        let int = server
        .create_ca(json!({"name": "line 7", "key_type": "ec-p256", "subject": {"common_name": "Line 7"},
            "parent_id": root["id"], "validity_days": 40,
            "profile": {"ext_key_usages": ["client_auth"], "default_validity_days": 30}}))
        .await;
        assert_eq!(int["kind"], "intermediate");
        let int_id = int["id"].as_str().unwrap().to_string();
        let (_, line) = create_ra(
        &server,
        dir,
        json!({"name": "line-7", "ca_ids": [int_id], "enrollment": {"auth_modes": ["client_certificate"],
            "bootstrap_ca_ids": [int_id], "auto_register": true, "allow_expired_reenroll": true}}),
    )
    .await;
        for n in ["p-1", "p-2"] {
            server
                .issue_to_files(&int_id, dir, &format!("boot-{n}"), &format!("/CN={n}"))
                .await;
            csr(dir, n, &format!("/CN={n}"), None);
            let r = line.call("simpleenroll", Some(n), Some(&format!("boot-{n}")));
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            pkcs7_to_pem(dir, &r.body, &format!("{n}-cert"));
        }
        let reenroll = |server: &TestServer, n: &str| {
            est(
                server,
                dir,
                &format!("{}/simplereenroll", line.id),
                Some(n),
                Some(&format!("{n}-cert")),
                &[],
            )
        };
        let key = |n: &str| {
            std::fs::copy(
                dir.join(format!("{n}.key")),
                dir.join(format!("{n}-cert.key")),
            )
        };
        key("p-1").unwrap();
        key("p-2").unwrap();

        // Day 35: the leaves have expired, their intermediate has not: re-enrolment is allowed.
        server.clock.advance(35 * 86_400);
        server.services.issuance.sweep().await.unwrap();
        let r = reenroll(&server, "p-1");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

        // Day 45: the intermediate has expired too; the same forgiving RA refuses.
        server.clock.advance(10 * 86_400);
        server.services.issuance.sweep().await.unwrap();
        let r = reenroll(&server, "p-2");
        let body = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 403, "{body}");
        assert!(
            body.contains("a CA certificate in the client certificate's chain is expired"),
            "{body}"
        );
    }
);

backend_test!(est_without_a_label_goes_to_the_default_ra, |backend| {
    let server = TestServer::start_with(
        backend,
        Options {
            est_default_ra: Some("line-0".into()),
            ..Options::default()
        },
    )
    .await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let r = est(&server, dir, "cacerts", None, None, &[]);
    assert_eq!(r.status, 404, "the default RA does not exist yet");
    let devices = ca(&server, "Line Zero", json!({})).await;
    let (ra, _) = create_ra(
        &server,
        dir,
        json!({"name": "line-0", "ca_ids": [devices],
            "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [devices],
                "auto_register": true}}),
    )
    .await;
    let r = est(&server, dir, "cacerts", None, None, &[]);
    assert_eq!(r.status, 200);
    let printed = pkcs7_to_pem(dir, &r.body, "cacerts");
    assert!(printed.contains("Line Zero"), "{printed}");
    // A bootstrap certificate enrols the device its subject names.
    server
        .issue_to_files(&devices, dir, "boot", "/CN=zero-1")
        .await;
    csr(dir, "z", "/CN=zero-1", None);
    let r = est(&server, dir, "simpleenroll", Some("z"), Some("boot"), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (_, device) = server.get("/api/v1/devices/zero-1").await;
    assert_eq!(device["ra_id"], ra["id"]);
    let r = est(&server, dir, "csrattrs", None, None, &[]);
    assert_eq!(r.status, 204, "no attributes configured");
});

/// An approval service on loopback: allows `ok-*` devices, refuses others, sleeps past the RA's
/// timeout for `slow-*` and allows `big-*` in a 2 MiB reply. It records the bodies it received.
async fn approval_service() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::Json;
    use axum::routing::post;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/approve",
        post(move |Json(body): Json<Value>| {
            let log = log.clone();
            async move {
                let device = body["device_id"].as_str().unwrap_or_default().to_string();
                log.lock().unwrap().push(body);
                if device.starts_with("slow-") {
                    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                }
                // `big-*` is allowed in a reply too large to read (2 MiB).
                let pad = if device.starts_with("big-") {
                    "x".repeat(2 << 20)
                } else {
                    String::new()
                };
                let allow = ["ok-", "slow-", "big-"]
                    .iter()
                    .any(|p| device.starts_with(p));
                Json(json!({ "allow": allow, "pad": pad }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/approve", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

backend_test!(an_approval_webhook_must_allow_each_enrolment, |backend| {
    let server = TestServer::start_with(backend, Options::loopback_webhooks()).await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (url, seen) = approval_service().await;
    let devices = ca(&server, "Approved", json!({})).await;
    let (_, line) = create_ra(&server, dir, json!({"name": "gated", "ca_ids": [devices],
            "enrollment": {"auth_modes": ["client_certificate", "webhook"], "bootstrap_ca_ids": [devices],
                "auto_register": true, "webhook": {"url": url, "timeout_ms": 500}}})).await;
    // See: issue 12 (session 6 review: the approval reply was read whole, however large).
    for (cn, expected) in [
        ("no-1", 403),
        ("slow-1", 403),
        ("big-1", 403),
        ("ok-1", 200),
    ] {
        // Each device has its own bootstrap certificate: one enrols only the device its subject names.
        let boot = format!("boot-{cn}");
        server
            .issue_to_files(&devices, dir, &boot, &format!("/CN={cn}"))
            .await;
        csr(
            dir,
            cn,
            &format!("/CN={cn}"),
            Some(&format!("DNS:{cn}.example")),
        );
        let before = footprint(&server).await;
        let r = line.call("simpleenroll", Some(cn), Some(&boot));
        assert_eq!(
            r.status,
            expected,
            "{cn}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if expected != 200 {
            assert_eq!(
                footprint(&server).await,
                before,
                "{cn} refused, nothing stored"
            );
        }
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    let ok = seen.iter().find(|b| b["device_id"] == "ok-1").unwrap();
    assert_eq!(ok["operation"], "simpleenroll");
    assert_eq!(ok["csr"]["sans"], json!(["DNS:ok-1.example"]));
    assert!(
        ok["client_certificate"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // Without a credential the webhook is not even asked.
    let r = line.call("simpleenroll", Some("ok-1"), None);
    assert_eq!(r.status, 401);
});

// See: issue 12 (blind SSRF): an approval webhook may not target loopback, link-local (cloud metadata) or
// private addresses unless the operator's allow-list names them; nothing is stored.
backend_test!(
    approval_webhooks_to_refused_targets_are_refused,
    |backend| {
        let server = TestServer::start(backend).await;
        let devices = ca(&server, "Guarded", json!({})).await;
        for (url, named) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://127.0.0.1:5432/", "127.0.0.1"),
            ("http://10.1.2.3/approve", "10.1.2.3"),
            ("http://localhost:9/approve", "localhost"),
        ] {
            let (s, p) = server
                .post(
                    "/api/v1/ras",
                    json!({"name": "guarded", "ca_ids": [devices],
                    "enrollment": {"auth_modes": ["webhook"], "auto_register": true,
                        "webhook": {"url": url, "timeout_ms": 500}}}),
                )
                .await;
            assert_eq!(s, 400, "{url}: {p}");
            assert_eq!(p["type"], "urn:shedu:problem:webhook-target-refused", "{p}");
            assert!(p["detail"].as_str().unwrap().contains(named), "{p}");
        }
        let (_, ras) = server.get("/api/v1/ras").await;
        assert_eq!(ras["items"], json!([]), "{ras}");
    }
);

/// An approval service on loopback that accepts the connection, reads the request and never answers.
async fn silent_approval_service() -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/approve", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    url
}

// Issue 12 (tests): an approval webhook that never answers refuses the enrolment (EST 403, text) once the
// RA's `timeout_ms` has passed, and nothing is stored; a target the allow-list no longer covers is refused
// at enrolment time too.
backend_test!(a_silent_approval_webhook_fails_closed, |backend| {
    let server = TestServer::start_with(backend, Options::loopback_webhooks()).await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let url = silent_approval_service().await;
    let devices = ca(&server, "Silent", json!({})).await;
    let (_, line) = create_ra(&server, dir, json!({"name": "silent", "ca_ids": [devices],
            "enrollment": {"auth_modes": ["client_certificate", "webhook"], "bootstrap_ca_ids": [devices],
                "auto_register": true, "webhook": {"url": url, "timeout_ms": 1000}}})).await;
    server
        .issue_to_files(&devices, dir, "boot", "/CN=quiet-1")
        .await;
    csr(dir, "quiet", "/CN=quiet-1", None);
    let before = footprint(&server).await;
    let started = std::time::Instant::now();
    let r = line.call("simpleenroll", Some("quiet"), Some("boot"));
    let took = started.elapsed();
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.content_type.starts_with("text/plain"),
        "{}",
        r.content_type
    );
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(20),
        "refused after the timeout, in bounded time: {took:?}"
    );
    assert_eq!(footprint(&server).await, before, "nothing stored");
    drop(line);

    // The same RA once loopback is no longer allowed: refused without calling.
    let server = server.restart_with(Options::default()).await;
    let r = est(
        &server,
        dir,
        &format!("{}/simpleenroll", ra_id(&server, "silent").await),
        Some("quiet"),
        Some("boot"),
        &[],
    );
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
});

async fn ra_id(server: &TestServer, name: &str) -> String {
    let (_, ras) = server.get("/api/v1/ras").await;
    ras["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

backend_test!(
    an_ra_enrols_on_behalf_of_its_devices_with_its_own_certificate,
    |backend| {
        let server = TestServer::start(backend).await;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let devices = ca(&server, "Proxied", json!({})).await;
        let factory = ca(&server, "Unused factory", json!({})).await;
        let ra_csr = openssl_csr(dir, "ra", "ec-p256", "/CN=ra-gateway-1", None);
        let (ra, line) = create_ra(
            &server,
            dir,
            json!({"name": "gateway", "ca_ids": [devices], "csr": ra_csr,
            "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [factory],
                "auto_register": true}}),
        )
        .await;
        std::fs::write(dir.join("ra.pem"), ra["certificate_pem"].as_str().unwrap()).unwrap();
        // The RA's certificate comes from the internal RA CA, which openssl accepts as its issuer.
        let (_, cas) = server.get("/api/v1/cas").await;
        let ra_ca = cas["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "shedu internal RA CA")
            .expect("the internal RA CA exists once an RA has a certificate");
        std::fs::write(
            dir.join("ra-ca.pem"),
            ra_ca["certificate_pem"].as_str().unwrap(),
        )
        .unwrap();
        verify(&server, dir, "ra-ca.pem", "ra.pem");
        csr(dir, "dev", "/CN=proxied-1", None);
        let r = line.call("simpleenroll", Some("dev"), Some("ra"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let (_, device) = server.get("/api/v1/devices/proxied-1").await;
        assert_eq!(device["status"], "fully_provisioned");

        // See: issue 13. The RA and its certificate's row are served from memory once read; a change of
        // either applies to the very next request. The RA stops registering devices: a new one is refused.
        let admin = &server;
        let registering = |auto_register: bool| {
            let body = json!({"name": "gateway", "ca_ids": [devices],
                "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [factory],
                    "auto_register": auto_register}});
            let path = format!("/api/v1/ras/{}", line.id);
            async move {
                let (s, body) = admin.send("PUT", &path, Some(body)).await;
                assert_eq!(s, 200, "{body}");
            }
        };
        registering(false).await;
        csr(dir, "dev2", "/CN=proxied-2", None);
        let r = line.call("simpleenroll", Some("dev2"), Some("ra"));
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 403, "{text}");
        assert!(text.contains("not registered"), "{text}");
        // Registering again, it enrols; then its certificate is revoked: refused at once.
        registering(true).await;
        let r = line.call("simpleenroll", Some("dev2"), Some("ra"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let ra_der =
            shedu_pki::pem_to_der_certs(ra["certificate_pem"].as_str().unwrap().as_bytes())
                .unwrap()
                .remove(0);
        let (s, cert) = server
            .get(&format!(
                "/api/v1/certificates/{}",
                shedu_pki::fingerprint_sha256(&ra_der)
            ))
            .await;
        assert_eq!(s, 200, "{cert}");
        let (s, body) = server
            .post(
                &format!(
                    "/api/v1/cas/{}/certificates/{}/revoke",
                    cert["ca_id"].as_str().unwrap(),
                    cert["serial"].as_str().unwrap()
                ),
                json!({"reason": "key_compromise"}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        csr(dir, "dev3", "/CN=proxied-3", None);
        let r = line.call("simpleenroll", Some("dev3"), Some("ra"));
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 403, "{text}");
        assert!(text.contains("revoked"), "{text}");
    }
);

backend_test!(
    a_bootstrap_certificate_enrols_only_its_own_device_once,
    |backend| {
        let server = TestServer::start(backend).await;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let devices = ca(&server, "Drives", json!({})).await;
        let factory = ca(&server, "Drive factory", json!({})).await;
        let (_, line) = create_ra(
            &server,
            dir,
            json!({"name": "drives", "ca_ids": [devices],
            "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [factory],
                "auto_register": true, "server_keygen": true}}),
        )
        .await;
        for n in ["drive-a", "drive-b"] {
            server
                .issue_to_files(&factory, dir, &format!("boot-{n}"), &format!("/CN={n}"))
                .await;
        }
        csr(dir, "a", "/CN=drive-a", None);
        let r = line.call("simpleenroll", Some("a"), Some("boot-drive-a"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        pkcs7_to_pem(dir, &r.body, "drive-a-cert");
        let (_, device) = server.get("/api/v1/devices/drive-a").await;
        let serial = device["slots"][0]["active"]["serial"]
            .as_str()
            .unwrap()
            .to_string();

        // Takeover: drive-b's factory certificate asking for drive-a's identity, and for a device not yet known.
        csr(dir, "a2", "/CN=drive-a", None);
        csr(dir, "c", "/CN=drive-c", None);
        let before = footprint(&server).await;
        for (stem, boot) in [("a2", "boot-drive-b"), ("c", "boot-drive-b")] {
            let r = line.call("simpleenroll", Some(stem), Some(boot));
            assert_eq!(
                r.status,
                403,
                "{stem}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert!(
                String::from_utf8_lossy(&r.body).contains("another device"),
                "{}",
                String::from_utf8_lossy(&r.body)
            );
        }
        // A second first enrolment of an enrolled device, even with its own factory certificate: that is
        // simplereenroll's job.
        for op in ["simpleenroll", "serverkeygen"] {
            let r = line.call(op, Some("a2"), Some("boot-drive-a"));
            assert_eq!(r.status, 403, "{op}: {}", String::from_utf8_lossy(&r.body));
            assert!(
                String::from_utf8_lossy(&r.body).contains("simplereenroll"),
                "{}",
                String::from_utf8_lossy(&r.body)
            );
        }
        assert_eq!(
            footprint(&server).await,
            before,
            "refused requests store nothing"
        );
        let (_, device) = server.get("/api/v1/devices/drive-a").await;
        assert_eq!(device["slots"][0]["active"]["serial"], serial.as_str());

        // Once its certificate is revoked the device may enrol afresh with its own factory certificate.
        let (s, body) = server
            .post(
                &format!("/api/v1/cas/{devices}/certificates/{serial}/revoke"),
                json!({"reason": "key_compromise"}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let r = line.call("simpleenroll", Some("a2"), Some("boot-drive-a"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let (_, device) = server.get("/api/v1/devices/drive-a").await;
        assert_ne!(device["slots"][0]["active"]["serial"], serial.as_str());
        assert_eq!(device["status"], "fully_provisioned");
    }
);

// See: issue 12 (a JSON body was decoded as base64 and refused as a bad request, not as the wrong type).
backend_test!(est_refuses_bodies_that_are_not_pkcs10, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = server
        .create_ca(json!({"name": "d", "key_type": "ec-p256", "subject": {"common_name": "D"}}))
        .await;
    let (s, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "l", "ca_ids": [ca["id"]], "enrollment": {"auth_modes": ["one_time_secret"]}}),
        )
        .await;
    assert_eq!(s, 201, "{ra}");
    let url = format!(
        "{}/.well-known/est/{}/simpleenroll",
        server.base_url,
        ra["id"].as_str().unwrap()
    );
    let ca_file = server.ca_file.to_str().unwrap();
    let status = |content_type: &str| {
        let header = format!("Content-Type: {content_type}");
        let (code, out) = curl(
            dir.path(),
            &[
                "--cacert",
                ca_file,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                &header,
                "--data-binary",
                "{\"csr\": \"x\"}",
                &url,
            ],
        );
        assert_eq!(code, 0);
        String::from_utf8_lossy(&out).to_string()
    };
    assert_eq!(status("application/json"), "415");
    assert_eq!(status("text/plain"), "415");
    // The right type with parameters passes the type check; this body then fails as what it is.
    assert_eq!(status("application/pkcs10; charset=us-ascii"), "400");
});

// See: issue 12. An EST enrolment is held to the same name rules as the REST API, and refused in EST's
// error form (a text/plain 400, RFC 7030 §4.2.3) without spending the device's one-time secret.
backend_test!(est_refuses_bad_names_in_its_own_error_form, |backend| {
    let server = TestServer::start(backend).await;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let devices = ca(&server, "Names", json!({})).await;
    let (_, line) = create_ra(
        &server,
        dir,
        json!({"name": "names", "ca_ids": [devices],
            "enrollment": {"auth_modes": ["one_time_secret"]}}),
    )
    .await;
    let (s, dev) = server
        .post(
            "/api/v1/devices",
            json!({"id": "sensor-9", "ra_id": line.id}),
        )
        .await;
    assert_eq!(s, 201, "{dev}");
    let (_, secret) = server
        .post("/api/v1/devices/sensor-9/enrollment-secret", json!({}))
        .await;
    let user = format!("sensor-9:{}", secret["secret"].as_str().unwrap());
    csr(dir, "js", "/CN=sensor-9", Some("URI:javascript:alert(1)"));
    csr(dir, "two", "/CN=sensor-9/CN=admin", None);
    csr(dir, "wild", "/CN=sensor-9", Some("DNS:*"));
    csr(
        dir,
        "good",
        "/CN=sensor-9",
        Some("DNS:sensor-9.plant.example"),
    );
    let path = format!("{}/simpleenroll", line.id);

    let before = footprint(&server).await;
    for (bad, needle) in [
        ("js", "javascript:alert(1)"),
        ("two", "more than one CN"),
        ("wild", "\"*\""),
    ] {
        let r = est(&server, dir, &path, Some(bad), None, &["-u", &user]);
        let body = String::from_utf8_lossy(&r.body);
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (400, "text/plain; charset=utf-8"),
            "{bad}: {body}"
        );
        assert!(body.contains(needle), "{bad}: {body}");
    }
    assert_eq!(footprint(&server).await, before, "nothing was stored");

    let r = est(&server, dir, &path, Some("good"), None, &["-u", &user]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let printed = pkcs7_to_pem(dir, &r.body, "good-cert");
    assert!(printed.contains("sensor-9"), "{printed}");
});
