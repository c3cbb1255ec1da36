//! The connector (Kyma-compatible pairing) as its clients see it: the Kyma tutorial's flow driven by `curl`
//! and `openssl` (token → info → CSR from the advertised subject → sign → `openssl verify` → management
//! info over mTLS → renewal → revocation → `openssl ocsp` says revoked → refused everywhere), Kyma's
//! acceptance scenarios re-implemented (bad, used and expired tokens, wrong subject, malformed CSR and
//! JSON, revoked renewal, runtimes), the token rules (hashed, not burnt by a failure, one winner among
//! concurrent redemptions, redeemable on another replica), on SQLite and PostgreSQL.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use shedu_testkit::{Options, TestServer, backend_test, curl, openssl};

/// The Kyma subject attributes of the default template, as `openssl req -subj` takes them (in the order
/// Kyma's tutorial writes them, which is not the advertised order: subjects compare as names).
const TUTORIAL_SUBJECT: &str = "/OU=OrgUnit/O=Organization/L=Waldorf/ST=Waldorf/C=DE";

/// root → intermediate named `connector` (the connector's default CA), whose subject policy keeps the
/// template's attributes; writes `root.pem` and `int.pem`. Returns the intermediate's id.
async fn connector_ca(server: &TestServer, dir: &Path, name: &str) -> String {
    let root = server
        .create_ca(
            json!({"name": format!("{name}-root"), "key_type": "ec-p384",
            "subject": {"common_name": "Connector Root"}}),
        )
        .await;
    let policy = json!({"CN": "allow", "O": "allow", "OU": "allow", "L": "allow", "ST": "allow", "C": "allow"});
    let int = server
        .create_ca(json!({"name": name, "key_type": "ec-p256",
            "subject": {"common_name": "Connector Issuing"}, "parent_id": root["id"],
            "profile": {"ext_key_usages": ["client_auth"], "subject_policy": policy}}))
        .await;
    std::fs::write(
        dir.join("root.pem"),
        root["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("int.pem"),
        int["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    int["id"].as_str().unwrap().to_string()
}

/// One `curl` call: `method url`, extra headers, an optional JSON body and client certificate
/// (`<stem>.pem` + `<stem>.key`). Returns (HTTP status, JSON body or Null).
fn call(
    server: &TestServer,
    dir: &Path,
    method: &str,
    url: &str,
    headers: &[String],
    body: Option<&str>,
    cert: Option<&str>,
) -> (u16, Value) {
    let ca = server.ca_file.to_str().unwrap().to_string();
    let mut args: Vec<String> = vec![
        "-X".into(),
        method.into(),
        "--cacert".into(),
        ca,
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    for h in headers {
        args.extend(["-H".into(), h.clone()]);
    }
    if let Some(b) = body {
        args.extend([
            "-H".into(),
            "Content-Type: application/json".into(),
            "--data-binary".into(),
            b.into(),
        ]);
    }
    if let Some(c) = cert {
        args.extend([
            "--cert".into(),
            format!("{c}.pem"),
            "--key".into(),
            format!("{c}.key"),
        ]);
    }
    args.push(url.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = curl(dir, &refs);
    assert_eq!(code, 0, "curl {refs:?} failed");
    let text = String::from_utf8_lossy(&out).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn bearer(server: &TestServer) -> String {
    format!("Authorization: Bearer {}", server.token)
}

fn connector(server: &TestServer, path: &str) -> String {
    format!("{}/connector{path}", server.base_url)
}

/// A pairing token for application `app` (operator); returns (token, url).
fn app_token(server: &TestServer, dir: &Path, app: &str) -> (String, String) {
    let (status, body) = call(
        server,
        dir,
        "POST",
        &connector(server, "/v1/applications/tokens"),
        &[
            bearer(server),
            format!("Application: {app}"),
            "Group: retail".into(),
            "Tenant: acme".into(),
        ],
        None,
        None,
    );
    assert_eq!(status, 201, "{body}");
    (
        body["token"].as_str().unwrap().to_string(),
        body["url"].as_str().unwrap().to_string(),
    )
}

/// `openssl req` for `subject` with a new key of `newkey` (`rsa:2048`, `ec -pkeyopt …`); returns the
/// `{"csr": base64(PEM)}` body. Writes `<stem>.key`.
fn csr_body(dir: &Path, stem: &str, subject: &str, rsa: bool) -> String {
    let key = format!("{stem}.key");
    let csr = format!("{stem}.csr");
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-keyout",
        key.as_str(),
        "-subj",
        subject,
        "-out",
        csr.as_str(),
    ];
    if rsa {
        args.extend(["-newkey", "rsa:2048"]);
    } else {
        args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    }
    let (ok, out) = openssl(dir, &args);
    assert!(ok, "openssl req: {out}");
    let pem = std::fs::read(dir.join(&csr)).unwrap();
    json!({ "csr": STANDARD.encode(pem) }).to_string()
}

/// Decodes a Kyma certificate answer into `<stem>.pem` (client), `<stem>-chain.pem` (crt), `<stem>-ca.pem`.
fn save_certificates(dir: &Path, stem: &str, answer: &Value) -> (String, String, String) {
    let decode =
        |k: &str| String::from_utf8(STANDARD.decode(answer[k].as_str().unwrap()).unwrap()).unwrap();
    let (crt, client, ca) = (decode("crt"), decode("clientCrt"), decode("caCrt"));
    std::fs::write(dir.join(format!("{stem}.pem")), &client).unwrap();
    std::fs::write(dir.join(format!("{stem}-chain.pem")), &crt).unwrap();
    std::fs::write(dir.join(format!("{stem}-ca.pem")), &ca).unwrap();
    (crt, client, ca)
}

/// Token → info → sign for application `app`; returns the info answer and the certificate answer.
fn pair(server: &TestServer, dir: &Path, app: &str, stem: &str) -> (Value, Value) {
    let (_, url) = app_token(server, dir, app);
    let (status, info) = call(server, dir, "GET", &url, &[], None, None);
    assert_eq!(status, 200, "{info}");
    let body = csr_body(dir, stem, &format!("{TUTORIAL_SUBJECT}/CN={app}"), true);
    let csr_url = info["csrUrl"].as_str().unwrap().to_string();
    let (status, certs) = call(server, dir, "POST", &csr_url, &[], Some(&body), None);
    assert_eq!(status, 201, "{certs}");
    save_certificates(dir, stem, &certs);
    (info, certs)
}

fn ocsp(server: &TestServer, dir: &Path, cert: &str) -> String {
    let url = format!("{}/ocsp", server.http_url);
    let (_, out) = openssl(
        dir,
        &[
            "ocsp", "-issuer", "int.pem", "-cert", cert, "-url", &url, "-CAfile", "root.pem",
        ],
    );
    out
}

backend_test!(kyma_tutorial_flow_with_curl_and_openssl, |backend| {
    let server = TestServer::start(backend).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let int_id = connector_ca(&server, dir, "connector").await;

    // 1. The operator asks for a token; its URL leads to the CSR information.
    let (token, url) = app_token(&server, dir, "test-app");
    assert_eq!(token.len(), 64, "256 bits, hex");
    assert_eq!(
        url,
        connector(
            &server,
            &format!("/v1/applications/signingRequests/info?token={token}")
        )
    );

    // 2. CSR information: the subject to request and a new token inside csrUrl.
    let (status, info) = call(&server, dir, "GET", &url, &[], None, None);
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        info["certificate"]["subject"],
        "O=Organization,OU=OrgUnit,L=Waldorf,ST=Waldorf,C=DE,CN=test-app"
    );
    assert_eq!(info["certificate"]["key-algorithm"], "rsa2048");
    assert_eq!(info["certificate"]["extensions"], "");
    assert_eq!(
        info["api"]["infoUrl"],
        connector(&server, "/v1/applications/management/info")
    );
    assert_eq!(
        info["api"]["certificatesUrl"],
        connector(&server, "/v1/applications/certificates")
    );
    let csr_url = info["csrUrl"].as_str().unwrap().to_string();
    let prefix = connector(&server, "/v1/applications/certificates?token=");
    let csr_token = csr_url
        .strip_prefix(&prefix)
        .expect("csrUrl carries a new token");
    assert_ne!(csr_token, token);
    // The token was consumed by the info call.
    let (status, again) = call(&server, dir, "GET", &url, &[], None, None);
    assert_eq!(
        (status, again["code"].as_u64()),
        (403, Some(403)),
        "{again}"
    );

    // 3. A CSR made with openssl from the advertised subject (in the tutorial's order) is signed.
    let body = csr_body(dir, "app", &format!("{TUTORIAL_SUBJECT}/CN=test-app"), true);
    let (status, certs) = call(&server, dir, "POST", &csr_url, &[], Some(&body), None);
    assert_eq!(status, 201, "{certs}");
    let (crt, client, ca) = save_certificates(dir, "app", &certs);
    let int = std::fs::read_to_string(dir.join("int.pem")).unwrap();
    let root = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    assert_eq!(
        crt,
        format!("{client}{int}{root}"),
        "leaf → intermediate → root"
    );
    assert_eq!(ca, format!("{int}{root}"));
    let (ok, out) = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "app-chain.pem",
            "app.pem",
        ],
    );
    assert!(ok && out.contains("app.pem: OK"), "{out}");
    let (_, text) = openssl(
        dir,
        &[
            "x509", "-in", "app.pem", "-noout", "-text", "-subject", "-dates",
        ],
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    // 92 days by default, random serials.
    let fp =
        shedu_pki::fingerprint_sha256(&shedu_pki::pem_to_der_certs(client.as_bytes()).unwrap()[0]);
    let cert = server
        .services
        .issuance
        .certificate_by_fingerprint(&fp)
        .await
        .unwrap();
    let lifetime = cert.not_after - cert.created_at;
    assert!(
        (92 * 86_400..92 * 86_400 + 120).contains(&lifetime),
        "{lifetime}"
    );
    assert!(cert.serial.to_hex().len() >= 16, "{}", cert.serial.to_hex());
    assert!(
        text.contains("CN = test-app") && text.contains("O = Organization"),
        "{text}"
    );
    // The CSR token is spent too.
    let (status, _) = call(&server, dir, "POST", &csr_url, &[], Some(&body), None);
    assert_eq!(status, 403);

    // 4. Management info over mTLS with the issued certificate.
    let info_url = connector(&server, "/v1/applications/management/info");
    let (status, mgmt) = call(&server, dir, "GET", &info_url, &[], None, Some("app"));
    assert_eq!(status, 200, "{mgmt}");
    assert_eq!(mgmt["clientIdentity"]["application"], "test-app");
    assert_eq!(mgmt["clientIdentity"]["group"], "retail");
    assert_eq!(mgmt["clientIdentity"]["tenant"], "acme");
    let renew_url = mgmt["urls"]["renewCertUrl"].as_str().unwrap().to_string();
    let revoke_url = mgmt["urls"]["revokeCertUrl"].as_str().unwrap().to_string();
    assert_eq!(
        renew_url,
        connector(&server, "/v1/applications/certificates/renewals")
    );
    assert_eq!(
        mgmt["certificate"]["subject"],
        info["certificate"]["subject"]
    );

    // 5. Renewal with the certificate held, an EC key this time.
    let body = csr_body(
        dir,
        "app2",
        &format!("{TUTORIAL_SUBJECT}/CN=test-app"),
        false,
    );
    let (status, renewed) = call(
        &server,
        dir,
        "POST",
        &renew_url,
        &[],
        Some(&body),
        Some("app"),
    );
    assert_eq!(status, 201, "{renewed}");
    save_certificates(dir, "app2", &renewed);
    let (ok, out) = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "app2-chain.pem",
            "app2.pem",
        ],
    );
    assert!(ok, "{out}");
    assert!(ocsp(&server, dir, "app2.pem").contains("app2.pem: good"));

    // 6. The holder revokes the renewed certificate; OCSP says revoked at once; every mTLS route refuses it.
    let (status, _) = call(&server, dir, "POST", &revoke_url, &[], None, Some("app2"));
    assert_eq!(status, 201);
    let out = ocsp(&server, dir, "app2.pem");
    assert!(
        out.contains("Response verify OK") && out.contains("app2.pem: revoked"),
        "{out}"
    );
    let (status, refused) = call(&server, dir, "GET", &info_url, &[], None, Some("app2"));
    assert_eq!(
        (status, refused["code"].as_u64()),
        (403, Some(403)),
        "{refused}"
    );
    let (status, _) = call(
        &server,
        dir,
        "POST",
        &renew_url,
        &[],
        Some(&body),
        Some("app2"),
    );
    assert_eq!(status, 403);
    let whoami = format!("{}/api/v1/auth/whoami", server.base_url);
    let (status, _) = call(&server, dir, "GET", &whoami, &[], None, Some("app2"));
    assert_eq!(status, 401, "the REST API refuses it too");
    // EST re-enrolment refuses it as well.
    let (status, ra) = server
        .post("/api/v1/ras", json!({"name": "conn-ra", "ca_ids": [int_id],
            "enrollment": {"auth_modes": ["client_certificate"], "bootstrap_ca_ids": [int_id], "reenroll_window_days": 400}}))
        .await;
    assert_eq!(status, 201, "{ra}");
    let (ok, out) = openssl(
        dir,
        &[
            "req", "-in", "app2.csr", "-outform", "DER", "-out", "app2.der",
        ],
    );
    assert!(ok, "{out}");
    std::fs::write(
        dir.join("app2.b64"),
        STANDARD.encode(std::fs::read(dir.join("app2.der")).unwrap()),
    )
    .unwrap();
    let est = format!(
        "{}/.well-known/est/{}/simplereenroll",
        server.base_url,
        ra["id"].as_str().unwrap()
    );
    let (code, out) = curl(
        dir,
        &[
            "--cacert",
            server.ca_file.to_str().unwrap(),
            "--cert",
            "app2.pem",
            "--key",
            "app2.key",
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            "@app2.b64",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &est,
        ],
    );
    assert_eq!((code, String::from_utf8_lossy(&out).as_ref()), (0, "403"));
    // The first certificate is still good.
    let (status, _) = call(&server, dir, "GET", &info_url, &[], None, Some("app"));
    assert_eq!(status, 200);

    // Events and audit records of every step; no token anywhere in them.
    let types = server.cas_events().await;
    for ty in [
        "connector.token_issued",
        "connector.certificate_issued",
        "connector.certificate_renewed",
        "connector.certificate_revoked",
        "certificate.revoked",
    ] {
        assert!(types.iter().any(|t| t == ty), "{ty} in {types:?}");
    }
    let (status, audit) = server.get("/api/v1/audit?limit=1000").await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in [
        "connector.token_issue",
        "connector.certificate_issue",
        "connector.certificate_renew",
        "certificate.revoke",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let events = server
        .services
        .events
        .list(0, None, None, 100_000)
        .await
        .unwrap();
    let everything = format!(
        "{audit}{}",
        events
            .iter()
            .map(|e| format!("{} {} {}", e.event.ty, e.event.subject, e.event.data))
            .collect::<String>()
    );
    for t in [token.as_str(), csr_token] {
        assert!(
            !everything.contains(t),
            "a token leaked into events or audit"
        );
    }
});

backend_test!(kyma_acceptance_refusals_in_kyma_form, |backend| {
    let server = TestServer::start(backend).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // No CA named `connector` yet: the operator is told, the client never gets a token.
    let (status, body) = call(
        &server,
        dir,
        "POST",
        &connector(&server, "/v1/applications/tokens"),
        &[bearer(&server), "Application: app".into()],
        None,
        None,
    );
    assert_eq!((status, body["code"].as_u64()), (409, Some(409)), "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("connector"),
        "{body}"
    );
    connector_ca(&server, dir, "connector").await;

    // The internal API needs an operator's bearer token.
    let tokens = connector(&server, "/v1/applications/tokens");
    // Another method on a known route is 405, in Kyma's form too.
    let (status, body) = call(&server, dir, "GET", &tokens, &[bearer(&server)], None, None);
    assert_eq!((status, body["code"].as_u64()), (405, Some(405)), "{body}");
    assert!(body["error"].as_str().unwrap().contains("POST"), "{body}");
    let (status, body) = call(
        &server,
        dir,
        "POST",
        &tokens,
        &["Application: app".into()],
        None,
        None,
    );
    assert_eq!((status, body["code"].as_u64()), (401, Some(401)), "{body}");
    let (status, _) = call(
        &server,
        dir,
        "POST",
        &tokens,
        &[
            "Authorization: Bearer nope-nope-nope-nope".into(),
            "Application: app".into(),
        ],
        None,
        None,
    );
    assert_eq!(status, 401);
    let (status, body) = call(
        &server,
        dir,
        "POST",
        &tokens,
        &[bearer(&server)],
        None,
        None,
    );
    assert_eq!(status, 400, "no Application header: {body}");

    // Auditors may not ask for tokens; operators may.
    for (role, expected) in [("auditor", 403), ("operator", 201)] {
        let (status, key) = server
            .post(
                "/api/v1/api-keys",
                json!({"name": format!("k-{role}"), "role": role, "expires_in_days": 1}),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        let auth = format!("Authorization: Bearer {}", key["key"].as_str().unwrap());
        let (status, body) = call(
            &server,
            dir,
            "POST",
            &tokens,
            &[auth, "Application: app".into()],
            None,
            None,
        );
        assert_eq!(status, expected, "{role}: {body}");
    }

    // Behind a proxy, X-Forwarded-* shape the URLs handed out.
    let (status, body) = call(
        &server,
        dir,
        "POST",
        &tokens,
        &[
            bearer(&server),
            "Application: app".into(),
            "X-Forwarded-Host: pki.example".into(),
            "X-Forwarded-Prefix: /edge/connector".into(),
        ],
        None,
        None,
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        body["url"].as_str().unwrap().starts_with(
            "https://pki.example/edge/connector/v1/applications/signingRequests/info?token="
        ),
        "{body}"
    );

    // Invalid token, no token.
    let info = connector(&server, "/v1/applications/signingRequests/info");
    let (status, body) = call(
        &server,
        dir,
        "GET",
        &format!("{info}?token=deadbeef"),
        &[],
        None,
        None,
    );
    assert_eq!((status, body["code"].as_u64()), (403, Some(403)), "{body}");
    assert!(body["error"].is_string());
    let (status, _) = call(&server, dir, "GET", &info, &[], None, None);
    assert_eq!(status, 403);

    // The token in a Connector-Token header works as well as in the query.
    let (token, _) = app_token(&server, dir, "app");
    let (status, answer) = call(
        &server,
        dir,
        "GET",
        &info,
        &[format!("Connector-Token: {token}")],
        None,
        None,
    );
    assert_eq!(status, 200, "{answer}");
    let csr_url = answer["csrUrl"].as_str().unwrap().to_string();

    // An application token is no runtime token.
    let (token2, _) = app_token(&server, dir, "app");
    let runtime_info = connector(
        &server,
        &format!("/v1/runtimes/signingRequests/info?token={token2}"),
    );
    let (status, _) = call(&server, dir, "GET", &runtime_info, &[], None, None);
    assert_eq!(status, 403);

    // Wrong subject, malformed CSR, malformed JSON, a body without csr: 400, and the token survives.
    let wrong = csr_body(
        dir,
        "wrong",
        &format!("{TUTORIAL_SUBJECT}/CN=other-app"),
        false,
    );
    let (status, body) = call(&server, dir, "POST", &csr_url, &[], Some(&wrong), None);
    assert_eq!((status, body["code"].as_u64()), (400, Some(400)), "{body}");
    assert!(body["error"].as_str().unwrap().contains("CN=app"), "{body}");
    let extra = csr_body(
        dir,
        "extra",
        &format!("{TUTORIAL_SUBJECT}/CN=app/serialNumber=7"),
        false,
    );
    let (status, _) = call(&server, dir, "POST", &csr_url, &[], Some(&extra), None);
    assert_eq!(status, 400, "an extra attribute is another subject");
    let garbage = json!({"csr": STANDARD.encode(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")}).to_string();
    let (status, body) = call(&server, dir, "POST", &csr_url, &[], Some(&garbage), None);
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &server,
        dir,
        "POST",
        &csr_url,
        &[],
        Some("{\"csr\": "),
        None,
    );
    assert_eq!((status, body["code"].as_u64()), (400, Some(400)), "{body}");
    let (status, _) = call(
        &server,
        dir,
        "POST",
        &csr_url,
        &[],
        Some("{\"csr\": \"%%%\"}"),
        None,
    );
    assert_eq!(status, 400);
    let (status, _) = call(&server, dir, "POST", &csr_url, &[], Some("{}"), None);
    assert_eq!(status, 400);
    let right = csr_body(dir, "right", &format!("{TUTORIAL_SUBJECT}/CN=app"), false);
    let (status, body) = call(&server, dir, "POST", &csr_url, &[], Some(&right), None);
    assert_eq!(
        status, 201,
        "the failed requests did not burn the token: {body}"
    );

    // Expired token (injected clock): 5 minutes by default.
    let (token, url) = app_token(&server, dir, "late-app");
    server.clock.advance(301);
    let (status, _) = call(&server, dir, "GET", &url, &[], None, None);
    assert_eq!(status, 403, "expired");
    let _ = token;

    // Management routes without a client certificate, or with one the connector did not issue.
    let mgmt = connector(&server, "/v1/applications/management/info");
    let (status, _) = call(&server, dir, "GET", &mgmt, &[], None, None);
    assert_eq!(status, 403);
    let int_id = server
        .services
        .cas
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "connector")
        .unwrap()
        .id;
    server
        .issue_to_files(&int_id, dir, "plain", "/CN=plain")
        .await;
    let (status, body) = call(&server, dir, "GET", &mgmt, &[], None, Some("plain"));
    assert_eq!(status, 403, "{body}");

    // Unknown hash; malformed hash; unknown route and kind.
    let revocations = connector(&server, "/v1/applications/certificates/revocations");
    let (status, body) = call(
        &server,
        dir,
        "POST",
        &revocations,
        &[bearer(&server)],
        Some(&json!({"hash": "00".repeat(32)}).to_string()),
        None,
    );
    assert_eq!((status, body["code"].as_u64()), (404, Some(404)), "{body}");
    let (status, _) = call(
        &server,
        dir,
        "POST",
        &revocations,
        &[bearer(&server)],
        Some("{\"hash\": \"xyz\"}"),
        None,
    );
    assert_eq!(status, 400);
    let (status, _) = call(
        &server,
        dir,
        "GET",
        &connector(&server, "/v1/widgets/management/info"),
        &[],
        None,
        None,
    );
    assert_eq!(status, 404);

    // The description and health.
    let (status, _) = call(
        &server,
        dir,
        "GET",
        &connector(&server, "/v1/health"),
        &[],
        None,
        None,
    );
    assert_eq!(status, 200);
    let (code, yaml) = curl(
        dir,
        &[
            "--cacert",
            server.ca_file.to_str().unwrap(),
            &connector(&server, "/v1/api.yaml"),
        ],
    );
    assert_eq!(code, 0);
    let yaml = String::from_utf8(yaml).unwrap();
    assert!(
        yaml.starts_with("openapi: 3") && yaml.contains("/v1/{kind}/certificates/renewals:"),
        "{yaml}"
    );
});

backend_test!(
    runtime_flow_renewal_rules_and_operator_revocation,
    |backend| {
        let server = TestServer::start(backend).await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        connector_ca(&server, dir, "connector").await;

        // A runtime pairs with RuntimeID; its token lives 10 minutes.
        let (status, body) = call(
            &server,
            dir,
            "POST",
            &connector(&server, "/v1/runtimes/tokens"),
            &[
                bearer(&server),
                "RuntimeID: cluster-7".into(),
                "Group: edge".into(),
                "Tenant: acme".into(),
            ],
            None,
            None,
        );
        assert_eq!(status, 201, "{body}");
        let (status, info) = call(
            &server,
            dir,
            "GET",
            body["url"].as_str().unwrap(),
            &[],
            None,
            None,
        );
        assert_eq!(status, 200, "{info}");
        assert!(
            info["api"].get("eventsUrl").is_none(),
            "runtimes get no gateway URLs"
        );
        let csr = csr_body(
            dir,
            "rt",
            &format!("{TUTORIAL_SUBJECT}/CN=cluster-7"),
            false,
        );
        let (status, certs) = call(
            &server,
            dir,
            "POST",
            info["csrUrl"].as_str().unwrap(),
            &[],
            Some(&csr),
            None,
        );
        assert_eq!(status, 201, "{certs}");
        save_certificates(dir, "rt", &certs);
        let (status, mgmt) = call(
            &server,
            dir,
            "GET",
            &connector(&server, "/v1/runtimes/management/info"),
            &[],
            None,
            Some("rt"),
        );
        assert_eq!(status, 200, "{mgmt}");
        assert_eq!(mgmt["clientIdentity"]["runtimeId"], "cluster-7");
        assert_eq!(mgmt["clientIdentity"]["group"], "edge");
        // A runtime certificate is not an application's.
        let (status, _) = call(
            &server,
            dir,
            "GET",
            &connector(&server, "/v1/applications/management/info"),
            &[],
            None,
            Some("rt"),
        );
        assert_eq!(status, 403);

        // An operator revokes by the SHA-256 of the DER (key name in any case); OCSP and the CRL say so.
        let (_, fp) = openssl(
            dir,
            &["x509", "-in", "rt.pem", "-noout", "-fingerprint", "-sha256"],
        );
        let hash: String = fp
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase();
        let revocations = connector(&server, "/v1/runtimes/certificates/revocations");
        let (status, _) = call(
            &server,
            dir,
            "POST",
            &connector(&server, "/v1/applications/certificates/revocations"),
            &[bearer(&server)],
            Some(&json!({"Hash": hash}).to_string()),
            None,
        );
        assert_eq!(status, 404, "not an application certificate");
        let (status, body) = call(
            &server,
            dir,
            "POST",
            &revocations,
            &[bearer(&server)],
            Some(&json!({"Hash": hash}).to_string()),
            None,
        );
        assert_eq!(status, 201, "{body}");
        let (status, _) = call(
            &server,
            dir,
            "POST",
            &revocations,
            &[bearer(&server)],
            Some(&json!({"hash": hash}).to_string()),
            None,
        );
        assert_eq!(status, 201, "revoking again changes nothing");
        let out = ocsp(&server, dir, "rt.pem");
        assert!(out.contains("rt.pem: revoked"), "{out}");
        let int_id = server
            .services
            .cas
            .list()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == "connector")
            .unwrap()
            .id;
        let (code, crl) = curl(dir, &[&format!("{}/crl/{int_id}", server.http_url)]);
        assert_eq!(code, 0);
        std::fs::write(dir.join("int.crl"), crl).unwrap();
        let (ok, out) = openssl(
            dir,
            &[
                "verify",
                "-crl_check",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "int.pem",
                "-CRLfile",
                "int.crl",
                "rt.pem",
            ],
        );
        assert!(!ok && out.contains("revoked"), "{out}");
        let (status, _) = call(
            &server,
            dir,
            "POST",
            &connector(&server, "/v1/runtimes/certificates/renewals"),
            &[],
            Some(&csr),
            Some("rt"),
        );
        assert_eq!(status, 403, "a revoked certificate does not renew");

        // A runtime's token lives 10 minutes (an application's 5).
        let runtime_token = |id: &str| {
            let (status, body) = call(
                &server,
                dir,
                "POST",
                &connector(&server, "/v1/runtimes/tokens"),
                &[bearer(&server), format!("RuntimeID: {id}")],
                None,
                None,
            );
            assert_eq!(status, 201, "{body}");
            body["url"].as_str().unwrap().to_string()
        };
        let (nine, eleven) = (runtime_token("cluster-8"), runtime_token("cluster-9"));
        server.clock.advance(540);
        let (status, _) = call(&server, dir, "GET", &nine, &[], None, None);
        assert_eq!(status, 200, "still valid after 9 minutes");
        server.clock.advance(120);
        let (status, _) = call(&server, dir, "GET", &eleven, &[], None, None);
        assert_eq!(status, 403, "expired after 10 minutes");

        // An expired certificate does not renew; a fresh token for the same application pairs again.
        pair(&server, dir, "shop", "shop");
        let renew = connector(&server, "/v1/applications/certificates/renewals");
        let csr = csr_body(dir, "shop2", &format!("{TUTORIAL_SUBJECT}/CN=shop"), false);
        let wrong = csr_body(dir, "shop3", &format!("{TUTORIAL_SUBJECT}/CN=other"), false);
        let (status, _) = call(
            &server,
            dir,
            "POST",
            &renew,
            &[],
            Some(&wrong),
            Some("shop"),
        );
        assert_eq!(status, 400, "a renewal keeps the subject");
        server.clock.advance(93 * 86_400);
        let (status, body) = call(&server, dir, "POST", &renew, &[], Some(&csr), Some("shop"));
        assert_eq!((status, body["code"].as_u64()), (403, Some(403)), "{body}");
        let (_, certs) = pair(&server, dir, "shop", "shop-again");
        assert!(certs["clientCrt"].is_string());
    }
);

backend_test!(
    tokens_are_hashed_survive_restarts_work_on_replicas_and_redeem_once,
    |backend| {
        let server = TestServer::start_with(backend, Options::default()).await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        connector_ca(&server, dir, "connector").await;

        // Made through one server, redeemed through another on the same database, signed through the first.
        let beside = server.start_beside().await;
        let (token, _) = app_token(&server, dir, "replicated");
        let url = format!(
            "{}/connector/v1/applications/signingRequests/info?token={token}",
            beside.base_url
        );
        let (status, info) = call(&beside, dir, "GET", &url, &[], None, None);
        assert_eq!(status, 200, "{info}");
        let csr_url = info["csrUrl"]
            .as_str()
            .unwrap()
            .replace(&beside.base_url, &server.base_url);
        let body = csr_body(
            dir,
            "rep",
            &format!("{TUTORIAL_SUBJECT}/CN=replicated"),
            false,
        );
        let (status, certs) = call(&server, dir, "POST", &csr_url, &[], Some(&body), None);
        assert_eq!(status, 201, "{certs}");
        drop(beside);

        // N concurrent redemptions of one CSR token: exactly one certificate.
        let (_, url) = app_token(&server, dir, "racer");
        let (_, info) = call(&server, dir, "GET", &url, &[], None, None);
        let csr_url = info["csrUrl"].as_str().unwrap().to_string();
        let body = csr_body(dir, "racer", &format!("{TUTORIAL_SUBJECT}/CN=racer"), false);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (client, url, body) = (server.client.clone(), csr_url.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let res = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses.sort();
        assert_eq!(statuses, [201, 403, 403, 403, 403, 403, 403, 403]);
        let issued = server
            .cas_events()
            .await
            .iter()
            .filter(|t| *t == "connector.certificate_issued")
            .count();
        assert_eq!(issued, 2, "one certificate per success");

        // A token survives a restart; the database holds its hash, never the token.
        let (token, url) = app_token(&server, dir, "patient");
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let store = shedu_store::Store::connect(&server.db_url, &shedu_core::EVENT_WORDS)
            .await
            .unwrap();
        let row = store
            .connector_token(hash.as_ref())
            .await
            .unwrap()
            .expect("stored by its hash");
        assert_eq!(
            (row.kind.as_str(), row.name.as_str(), row.consumed_at),
            ("applications", "patient", None)
        );
        store.close().await;
        if let Some(file) = server
            .db_url
            .strip_prefix("sqlite://")
            .and_then(|r| r.split('?').next())
        {
            for f in [file.to_string(), format!("{file}-wal")] {
                let bytes = std::fs::read(&f).unwrap_or_default();
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                    "token in {f}"
                );
            }
        }
        let server = server.restart().await;
        let (status, info) = call(
            &server,
            dir,
            "GET",
            &url.replace(&url[..url.find("/connector").unwrap()], &server.base_url),
            &[],
            None,
            None,
        );
        assert_eq!(status, 200, "{info}");
    }
);

backend_test!(configured_ca_subject_urls_and_token_lifetimes, |backend| {
    let config = shedu_core::ConnectorConfig {
        public_url: Some("https://pki.example/connector".into()),
        gateway_url: Some("https://gateway.example".into()),
        application_ca: "apps".into(),
        subject: shedu_core::ConnectorConfig::parse_subject("O=Acme,C=DE").unwrap(),
        validity_days: 1,
        csr_token_ttl: 60,
        ..Default::default()
    };
    let server = TestServer::start_with(
        backend,
        Options {
            connector: Some(config),
            ..Options::default()
        },
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A CA whose policy drops O is refused for the connector, to the operator.
    connector_ca(&server, dir, "connector").await;
    server
        .create_ca(
            json!({"name": "apps", "key_type": "ec-p256", "subject": {"common_name": "Apps"},
            "profile": {"subject_policy": {"CN": "allow", "C": "allow"}}}),
        )
        .await;
    let tokens = connector(&server, "/v1/applications/tokens");
    let (status, body) = call(
        &server,
        dir,
        "POST",
        &tokens,
        &[bearer(&server), "Application: shop".into()],
        None,
        None,
    );
    assert_eq!((status, body["code"].as_u64()), (409, Some(409)), "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("subject_policy"),
        "{body}"
    );

    // Restarted with a suitable CA, named by id this time (names work too, as above).
    let good = server
        .create_ca(
            json!({"name": "apps2", "key_type": "ec-p256", "subject": {"common_name": "Apps 2"},
            "profile": {"subject_policy": {"CN": "allow", "O": "allow", "C": "allow"}}}),
        )
        .await;
    let server = server
        .restart_with(Options {
            connector: Some(shedu_core::ConnectorConfig {
                public_url: Some("https://pki.example/connector".into()),
                gateway_url: Some("https://gateway.example".into()),
                application_ca: good["id"].as_str().unwrap().into(),
                subject: shedu_core::ConnectorConfig::parse_subject("O=Acme,C=DE").unwrap(),
                validity_days: 1,
                csr_token_ttl: 60,
                ..Default::default()
            }),
            ..Options::default()
        })
        .await;
    let tokens = connector(&server, "/v1/applications/tokens");
    let (status, body) = call(
        &server,
        dir,
        "POST",
        &tokens,
        &[bearer(&server), "Application: shop".into()],
        None,
        None,
    );
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(
        body["url"],
        format!("https://pki.example/connector/v1/applications/signingRequests/info?token={token}")
    );
    let info_url = connector(
        &server,
        &format!("/v1/applications/signingRequests/info?token={token}"),
    );
    let (status, info) = call(&server, dir, "GET", &info_url, &[], None, None);
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["certificate"]["subject"], "O=Acme,C=DE,CN=shop");
    assert_eq!(
        info["api"]["eventsUrl"],
        "https://gateway.example/shop/v1/events"
    );
    assert_eq!(
        info["api"]["metadataUrl"],
        "https://gateway.example/shop/v1/metadata/services"
    );
    let csr_url = info["csrUrl"]
        .as_str()
        .unwrap()
        .replace("https://pki.example", &server.base_url);
    let body = csr_body(dir, "shop", "/C=DE/O=Acme/CN=shop", false);
    // The CSR token lives 60 seconds here.
    server.clock.advance(61);
    let (status, _) = call(&server, dir, "POST", &csr_url, &[], Some(&body), None);
    assert_eq!(status, 403);
    server.clock.advance(-61);
    let (status, certs) = call(&server, dir, "POST", &csr_url, &[], Some(&body), None);
    assert_eq!(status, 201, "{certs}");
    let (_, client, _) = save_certificates(dir, "shop", &certs);
    let fp =
        shedu_pki::fingerprint_sha256(&shedu_pki::pem_to_der_certs(client.as_bytes()).unwrap()[0]);
    let cert = server
        .services
        .issuance
        .certificate_by_fingerprint(&fp)
        .await
        .unwrap();
    assert_eq!(cert.ca_id, good["id"].as_str().unwrap());
    let lifetime = cert.not_after - cert.created_at;
    assert!((86_400..86_400 + 120).contains(&lifetime), "{lifetime}");
});
