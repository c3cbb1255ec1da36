//! The AWS IoT Core connector against `moto` in server mode, judged with boto3 and openssl: the CA is
//! registered with a verification certificate that `openssl verify` accepts, device certificates (issued
//! through the API and enrolled over EST) are registered and attached to their thing, policy and group, a
//! revocation shows as REVOKED (a hold as INACTIVE), every request's SigV4 signature is what botocore
//! computes, a cloud that was down is caught up with after it comes back, nothing is registered twice (not after a
//! restart, not after losing the cloud ids), and bad credentials or an unreachable endpoint leave the item
//! `failed` with the reason while the platform keeps issuing. The connector API's validation and
//! secrecy on the way. Certificates issued before the connector (or before it bound their CA) are caught
//! up with, page by page, resuming after a restart; a connector deleted with `deregister` takes back what
//! it registered; connector changes and sync failures are events. On SQLite and PostgreSQL.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shedu_testkit::brokers::MotoServer;
use shedu_testkit::{Options, TestServer, backend_test, openssl, tamper};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Retries within seconds, so that an outage test waits for moto, not for the backoff.
fn fast() -> Options {
    Options {
        cloud: Some(shedu_core::CloudConfig {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(2),
            poll_interval: Duration::from_millis(200),
            request_timeout: Duration::from_secs(5),
            ..shedu_core::CloudConfig::default()
        }),
        ..Options::default()
    }
}

/// A root CA; writes `ca.pem` in `dir` and returns its id.
async fn root_ca(server: &TestServer, dir: &Path, name: &str) -> String {
    let ca = server
        .create_ca(json!({"name": name, "key_type": "ec-p256", "subject": {"common_name": name}}))
        .await;
    std::fs::write(dir.join("ca.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();
    ca["id"].as_str().unwrap().to_string()
}

fn connector(name: &str, endpoint: &str, ca: &str, secret: &str) -> Value {
    json!({
        "name": name, "type": "aws_iot", "region": "us-east-1", "endpoint_url": endpoint,
        "credentials": {"access_key_id": KEY_ID, "secret_access_key": secret},
        "ca_ids": [ca], "register_things": true, "thing_group": "line-1",
    })
}

/// The connector's sync items.
async fn state(server: &TestServer, id: &str) -> Vec<Value> {
    let (s, body) = server
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/cloud-connectors/{id}/state"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Waits (up to a minute) until an item satisfies `found`; returns it.
async fn wait_for(server: &TestServer, id: &str, found: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let items = state(server, id).await;
        if let Some(item) = items.iter().find(|i| found(i)) {
            return item.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no sync item of {id} got there: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the item of `serial` (`None`: the CA) satisfies `done`; returns it.
async fn wait_item(
    server: &TestServer,
    id: &str,
    serial: Option<&str>,
    done: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(server, id, |i| {
        i["serial"].as_str() == serial && (serial.is_some() || i["kind"] == "ca") && done(i)
    })
    .await
}

fn synced(i: &Value) -> bool {
    i["state"] == "synced"
}

/// Issues a device certificate for `cn` through the API; returns (serial, SHA-256 fingerprint).
async fn issue(server: &TestServer, ca: &str, dir: &Path, cn: &str) -> (String, String) {
    let issued = server
        .issue_to_files(ca, dir, cn, &format!("/CN={cn}"))
        .await;
    (
        issued["serial"].as_str().unwrap().to_string(),
        issued["fingerprint_sha256"].as_str().unwrap().to_string(),
    )
}

/// The status AWS IoT shows for the certificate with this fingerprint.
fn status(moto: &MotoServer, fp: &str) -> Value {
    moto.boto3(KEY_ID, SECRET, &format!(
        "print(json.dumps(iot.describe_certificate(certificateId={fp:?})['certificateDescription']['status']))"
    ))
}

/// How many requests moto received for `operation` (method and path prefix).
fn calls(moto: &MotoServer, method: &str, path: &str) -> usize {
    moto.recording()
        .iter()
        .filter(|(m, url, _)| {
            m == method && url.split('?').next().unwrap_or_default().ends_with(path)
        })
        .count()
}

backend_test!(aws_iot_follows_issuance_and_revocation, |backend| {
    let mut moto = MotoServer::start(None);
    let server = TestServer::start_with(backend, fast()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = root_ca(&server, dir, "Factory Root").await;

    let (s, created) = server
        .send(
            reqwest::Method::POST,
            "/api/v1/cloud-connectors",
            Some(connector("aws", &moto.url(), &ca, SECRET)),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert!(
        !created.to_string().contains(SECRET),
        "the secret came back: {created}"
    );
    assert!(created.get("credentials").is_none(), "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // The CA: registered ACTIVE under the id AWS gives it (SHA-256 of the DER), with a verification
    // certificate signed by the CA whose CN is a registration code moto handed out.
    let ca_item = wait_item(&server, &id, None, synced).await;
    let ca_der = openssl(
        dir,
        &["x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"],
    );
    assert!(ca_der.0, "{}", ca_der.1);
    let ca_fp = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &std::fs::read(dir.join("ca.der")).unwrap(),
    ));
    assert_eq!(ca_item["cloud_id"], ca_fp.as_str(), "{ca_item}");
    let registered_ca = moto.boto3(
        KEY_ID,
        SECRET,
        &format!(
            "d = iot.describe_ca_certificate(certificateId={ca_fp:?})['certificateDescription']\n\
         print(json.dumps([d['status'], d['certificatePem'].strip()]))"
        ),
    );
    assert_eq!(
        registered_ca,
        json!([
            "ACTIVE",
            std::fs::read_to_string(dir.join("ca.pem")).unwrap().trim()
        ])
    );
    assert_eq!(calls(&moto, "GET", "/registrationcode"), 1);
    let registration: Vec<(String, Value)> = moto
        .recording()
        .into_iter()
        .filter(|(m, url, _)| m == "POST" && url.contains("/cacertificate"))
        .map(|(_, url, body)| (url, serde_json::from_str(&body).unwrap()))
        .collect();
    assert_eq!(registration.len(), 1, "{registration:?}");
    // Active, with auto-registration on (moto does not keep these: the request says them).
    let query = registration[0]
        .0
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    let mut query: Vec<&str> = query.split('&').collect();
    query.sort_unstable();
    assert_eq!(query, ["allowAutoRegistration=true", "setAsActive=true"]);
    let registration: Vec<Value> = registration.into_iter().map(|(_, b)| b).collect();
    assert_eq!(registration[0]["certificateMode"], "DEFAULT");
    let verification = registration[0]["verificationCertificate"].as_str().unwrap();
    std::fs::write(dir.join("verification.pem"), verification).unwrap();
    let (ok, out) = openssl(dir, &["verify", "-CAfile", "ca.pem", "verification.pem"]);
    assert!(ok && out.contains("verification.pem: OK"), "{out}");
    let (_, subject) = openssl(
        dir,
        &[
            "x509",
            "-in",
            "verification.pem",
            "-noout",
            "-subject",
            "-nameopt",
            "multiline",
        ],
    );
    let cn = subject
        .lines()
        .find_map(|l| l.trim().strip_prefix("commonName"))
        .unwrap();
    let code = cn.trim().trim_start_matches('=').trim();
    assert!(
        uuid::Uuid::parse_str(code).is_ok(),
        "the CN is not moto's registration code: {subject}"
    );
    assert!(moto.check_signatures(SECRET) >= 3);
    assert_eq!(
        registration[0]["caCertificate"].as_str().unwrap().trim(),
        std::fs::read_to_string(dir.join("ca.pem")).unwrap().trim()
    );

    // A device certificate: registered ACTIVE, its thing created, attached, in the group, with the policy.
    let (serial, fp) = issue(&server, &ca, dir, "dev-001").await;
    let item = wait_item(&server, &id, Some(&serial), synced).await;
    assert_eq!(
        (item["cloud_id"].as_str(), item["thing_name"].as_str()),
        (Some(fp.as_str()), Some("dev-001")),
        "{item}"
    );
    let seen = moto.boto3(KEY_ID, SECRET, &format!(
        "d = iot.describe_certificate(certificateId={fp:?})['certificateDescription']\n\
         arn = d['certificateArn']\n\
         print(json.dumps({{'status': d['status'],\n\
           'ca': [c['certificateId'] for c in iot.list_certificates_by_ca(caCertificateId={ca_fp:?})['certificates']],\n\
           'principals': iot.list_thing_principals(thingName='dev-001')['principals'] == [arn],\n\
           'group': iot.list_things_in_thing_group(thingGroupName='line-1')['things'],\n\
           'policies': [p['policyName'] for p in iot.list_attached_policies(target=arn)['policies']]}}))"
    ));
    assert_eq!(
        seen,
        json!({"status": "ACTIVE", "ca": [fp], "principals": true, "group": ["dev-001"], "policies": ["shedu-devices"]})
    );
    // The verification certificate is the connector's own: not a device, never registered as one.
    let device_certs = moto.boto3(KEY_ID, SECRET, "print(json.dumps(sorted(c['certificateId'] for c in iot.list_certificates()['certificates'])))");
    assert_eq!(device_certs, json!([fp]));

    // EST enrolment (simpleenroll with a one-time secret): the same, the thing named after the device id.
    let (s, ra) = server
        .post(
            "/api/v1/ras",
            json!({"name": "line", "ca_ids": [ca],
            "enrollment": {"auth_modes": ["one_time_secret"]}}),
        )
        .await;
    assert_eq!(s, 201, "{ra}");
    let (s, dev) = server
        .post("/api/v1/devices", json!({"id": "plc-7", "ra_id": ra["id"]}))
        .await;
    assert_eq!(s, 201, "{dev}");
    let (s, secret) = server
        .post("/api/v1/devices/plc-7/enrollment-secret", json!({}))
        .await;
    assert_eq!(s, 201, "{secret}");
    let csr_pem = shedu_testkit::openssl_csr(dir, "plc-7", "ec-p256", "/CN=plc-7", None);
    let b64: String = csr_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    std::fs::write(dir.join("plc-7.b64"), b64).unwrap();
    let user = format!("plc-7:{}", secret["secret"].as_str().unwrap());
    let url = format!(
        "{}/.well-known/est/{}/simpleenroll",
        server.base_url,
        ra["id"].as_str().unwrap()
    );
    let (code, out) = shedu_testkit::curl(
        dir,
        &[
            "--cacert",
            server.ca_file.to_str().unwrap(),
            "-u",
            &user,
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            "@plc-7.b64",
            "-o",
            "plc-7.p7",
            "-w",
            "%{http_code}",
            &url,
        ],
    );
    assert_eq!(
        (code, String::from_utf8_lossy(&out).into_owned()),
        (0, "200".to_string())
    );
    let enrolled = wait_for(&server, &id, |i| i["thing_name"] == "plc-7" && synced(i)).await;
    let principals = moto.boto3(
        KEY_ID,
        SECRET,
        "print(json.dumps(iot.list_thing_principals(thingName='plc-7')['principals']))",
    );
    assert_eq!(principals, json!([enrolled["cloud_arn"]]));
    assert_eq!(
        status(&moto, enrolled["cloud_id"].as_str().unwrap()),
        json!("ACTIVE")
    );

    // Decommissioning the device revokes its certificate: REVOKED, detached from its thing, the thing marked.
    let (s, body) = server
        .post("/api/v1/devices/plc-7/decommission", json!({}))
        .await;
    assert_eq!(s, 200, "{body}");
    wait_for(&server, &id, |i| {
        i["thing_name"] == "plc-7" && i["desired"] == "decommissioned" && synced(i)
    })
    .await;
    assert_eq!(
        status(&moto, enrolled["cloud_id"].as_str().unwrap()),
        json!("REVOKED")
    );
    let thing = moto.boto3(KEY_ID, SECRET, "print(json.dumps([iot.list_thing_principals(thingName='plc-7')['principals'], iot.describe_thing(thingName='plc-7')['attributes']]))");
    assert_eq!(thing, json!([[], {"shedu_status": "decommissioned"}]));

    // Revocation: REVOKED in the cloud; a hold: INACTIVE.
    let (s, body) = server
        .post(
            &format!("/api/v1/cas/{ca}/certificates/{serial}/revoke"),
            json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    wait_item(&server, &id, Some(&serial), |i| {
        synced(i) && i["desired"] == "revoked"
    })
    .await;
    assert_eq!(status(&moto, &fp), json!("REVOKED"));
    let (held, held_fp) = issue(&server, &ca, dir, "dev-hold").await;
    wait_item(&server, &id, Some(&held), synced).await;
    let (s, body) = server
        .post(
            &format!("/api/v1/cas/{ca}/certificates/{held}/revoke"),
            json!({"reason": "certificate_hold"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    wait_item(&server, &id, Some(&held), |i| {
        synced(i) && i["desired"] == "inactive"
    })
    .await;
    assert_eq!(status(&moto, &held_fp), json!("INACTIVE"));

    // The cloud goes down: issuance goes on, the item fails with the reason and a next attempt; when the
    // cloud is back (empty: moto forgets), the CA's certificates are caught up with.
    moto.stop();
    let (late, late_fp) = issue(&server, &ca, dir, "dev-002").await;
    let failed = wait_item(&server, &id, Some(&late), |i| i["state"] == "failed").await;
    assert!(
        failed["error"].as_str().unwrap().contains("cannot reach"),
        "{failed}"
    );
    assert!(
        failed["retry_at"].is_string() && failed["attempts"].as_i64().unwrap() >= 1,
        "{failed}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    moto.start_again();
    wait_item(&server, &id, Some(&late), synced).await;
    assert_eq!(status(&moto, &late_fp), json!("ACTIVE"));

    // Nothing twice: a restart repeats nothing, and an item that lost its cloud ids (a crash between the
    // cloud's answer and the write) finds the certificate instead of registering it again.
    let registered = calls(&moto, "POST", "/certificate/register");
    assert_eq!(registered, 1, "{:?}", moto.recording());
    tamper(
        &server.db_url,
        &format!(
            "UPDATE cloud_sync SET state = 'pending', cloud_id = NULL, cloud_arn = NULL, retry_at = 0 WHERE serial = '{late}'"
        ),
    );
    let server = server.restart().await;
    let again = wait_item(&server, &id, Some(&late), |i| {
        synced(i) && i["cloud_id"].is_string()
    })
    .await;
    assert_eq!(again["cloud_id"], late_fp.as_str());
    assert_eq!(
        calls(&moto, "POST", "/certificate/register"),
        1,
        "registered twice"
    );
    let listed = moto.boto3(
        KEY_ID,
        SECRET,
        "print(json.dumps([c['certificateId'] for c in iot.list_certificates()['certificates']]))",
    );
    assert_eq!(listed, json!([late_fp]));

    // The state listing filters; bad filters are 400 problems.
    let (s, body) = server
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/cloud-connectors/{id}/state?kind=ca"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    let (s, body) = server
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/cloud-connectors/{id}/state?state=bogus"),
            None,
        )
        .await;
    assert_eq!(
        (s, body["type"].as_str()),
        (400, Some("urn:shedu:problem:invalid-filter")),
        "{body}"
    );

    // Every request was signed right: botocore computes the same SigV4 signatures.
    assert!(moto.check_signatures(SECRET) >= 3);

    // Delete: the connector and its state go; the cloud keeps what it has.
    let (s, _) = server
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/cloud-connectors/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = server
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/cloud-connectors/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 404);
});

backend_test!(
    bad_credentials_and_unreachable_cloud_fail_and_issuance_goes_on,
    |backend| {
        // One moto refuses every request's credentials (auth from the first request on), another accepts them,
        // and nothing listens on the third endpoint.
        let refusing = MotoServer::start(Some(0));
        let open = MotoServer::start(None);
        let server = TestServer::start_with(backend, fast()).await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let ca = root_ca(&server, dir, "Line Root").await;

        let unused = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let refused = connector("refused", &refusing.url(), &ca, SECRET);
        let mut ids = Vec::new();
        for body in [
            connector("good", &open.url(), &ca, SECRET),
            refused.clone(),
            connector("down", &format!("http://{unused}"), &ca, SECRET),
        ] {
            let (s, c) = server
                .send(
                    reqwest::Method::POST,
                    "/api/v1/cloud-connectors",
                    Some(body),
                )
                .await;
            assert_eq!(s, 201, "{c}");
            ids.push(c["id"].as_str().unwrap().to_string());
        }
        wait_item(&server, &ids[0], None, synced).await;
        let failed = wait_item(&server, &ids[1], None, |i| i["state"] == "failed").await;
        let why = failed["error"].as_str().unwrap();
        assert!(
            why.contains("HTTP 403") && !why.contains(SECRET),
            "{failed}"
        );
        let failed = wait_item(&server, &ids[2], None, |i| i["state"] == "failed").await;
        assert!(
            failed["error"].as_str().unwrap().contains("cannot reach"),
            "{failed}"
        );

        // The platform keeps issuing; the good connector registers the certificate, the others wait for their CA.
        let (serial, fp) = issue(&server, &ca, dir, "dev-100").await;
        wait_item(&server, &ids[0], Some(&serial), synced).await;
        for id in &ids[1..] {
            let item = wait_item(&server, id, Some(&serial), |i| {
                i["state"] == "pending" && i["error"].is_string()
            })
            .await;
            assert!(
                item["error"].as_str().unwrap().contains("waiting for CA"),
                "{item}"
            );
        }
        assert_eq!(status(&open, &fp), json!("ACTIVE"));

        // Fixed settings (PUT, the stored credentials kept) are tried at once: the CA is found where the good
        // connector registered it (not registered twice), then the certificate follows.
        let mut fixed = refused.clone();
        fixed["endpoint_url"] = json!(open.url());
        fixed.as_object_mut().unwrap().remove("credentials");
        let (s, c) = server
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/cloud-connectors/{}", ids[1]),
                Some(fixed),
            )
            .await;
        assert_eq!(s, 200, "{c}");
        wait_item(&server, &ids[1], None, synced).await;
        wait_item(&server, &ids[1], Some(&serial), synced).await;
        assert_eq!(
            calls(&open, "POST", "/cacertificate"),
            1,
            "{:#?}",
            open.recording()
                .iter()
                .map(|(m, u, _)| format!("{m} {u}"))
                .collect::<Vec<_>>()
        );
        // The good connector's verification certificate is not a device for the other connector either.
        assert_eq!(calls(&open, "POST", "/certificate/register"), 1);
    }
);

backend_test!(
    connector_input_is_checked_and_secrets_stay_sealed,
    |backend| {
        let server = TestServer::start_with(backend, fast()).await;
        let tmp = tempfile::tempdir().unwrap();
        let ca = root_ca(&server, tmp.path(), "Checked Root").await;
        let base = connector("checked", "http://127.0.0.1:9", &ca, SECRET);
        let cases: Vec<(Value, &str)> = vec![
            (json!({"type": "azure_dps"}), "unknown-cloud-provider"),
            (json!({"region": "EU West"}), "invalid-region"),
            (
                json!({"endpoint_url": "http://example.com"}),
                "invalid-endpoint",
            ),
            (
                json!({"endpoint_url": "ftp://127.0.0.1"}),
                "invalid-endpoint",
            ),
            (json!({"credentials": null}), "missing-credentials"),
            (
                json!({"credentials": {"access_key_id": "short", "secret_access_key": "x"}}),
                "invalid-credentials",
            ),
            (json!({"ca_ids": []}), "no-cas"),
            (json!({"ca_ids": ["nope"]}), "unknown-ca"),
            (json!({"policy_document": "{not json"}), "invalid-policy"),
            (json!({"policy_name": "a b"}), "invalid-policy"),
            (json!({"thing_group": "a/b"}), "invalid-thing-group"),
            (json!({"ca_mode": "both"}), "invalid-ca-mode"),
            (json!({"name": ""}), "invalid-name"),
        ];
        for (patch, code) in cases {
            let mut body = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (s, p) = server
                .send(
                    reqwest::Method::POST,
                    "/api/v1/cloud-connectors",
                    Some(body),
                )
                .await;
            assert_eq!(
                (s, p["type"].as_str()),
                (400, Some(format!("urn:shedu:problem:{code}").as_str())),
                "{patch}: {p}"
            );
        }
        let (s, p) = server
            .send(
                reqwest::Method::POST,
                "/api/v1/cloud-connectors",
                Some(json!({"name": "x", "bogus": 1})),
            )
            .await;
        assert_eq!(
            (s, p["type"].as_str()),
            (422, Some("urn:shedu:problem:invalid-json")),
            "{p}"
        );
        let (s, _) = server
            .send(reqwest::Method::GET, "/api/v1/cloud-connectors", None)
            .await;
        assert_eq!(s, 200);

        let (s, c) = server
            .send(
                reqwest::Method::POST,
                "/api/v1/cloud-connectors",
                Some(base.clone()),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        let (s, p) = server
            .send(
                reqwest::Method::POST,
                "/api/v1/cloud-connectors",
                Some(base.clone()),
            )
            .await;
        assert_eq!(
            (s, p["type"].as_str()),
            (409, Some("urn:shedu:problem:cloud-connector-exists")),
            "{p}"
        );
        let id = c["id"].as_str().unwrap();
        let (s, _) = server
            .send(
                reqwest::Method::GET,
                "/api/v1/cloud-connectors/nope/state",
                None,
            )
            .await;
        assert_eq!(s, 404);

        // Nothing shows the secret: answers, the list, events, the audit trail, the database.
        let (_, list) = server
            .send(reqwest::Method::GET, "/api/v1/cloud-connectors", None)
            .await;
        let (_, one) = server
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/cloud-connectors/{id}"),
                None,
            )
            .await;
        let (_, events) = server.get("/api/v1/events?limit=1000").await;
        let (_, audit) = server.get("/api/v1/audit?limit=1000").await;
        for shown in [&list, &one, &events, &audit] {
            assert!(!shown.to_string().contains(SECRET), "{shown}");
        }
        assert!(
            audit.to_string().contains("cloud_connector.create"),
            "{audit}"
        );
        let dump =
            String::from_utf8_lossy(&shedu_testkit::database_bytes(&server.db_url)).into_owned();
        assert!(dump.contains(&ca), "the database was read");
        assert!(
            !dump.contains(SECRET) && !dump.contains(KEY_ID),
            "credentials in clear in the database"
        );
    }
);

/// Events of `ty` about connector `id`.
async fn connector_events(server: &TestServer, ty: &str, id: &str) -> Vec<Value> {
    let (s, body) = server
        .get(&format!(
            "/api/v1/events?type={ty}&subject=cloud-connectors/{id}&limit=1000"
        ))
        .await;
    assert_eq!(s, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// The certificate ids AWS IoT lists.
fn listed(moto: &MotoServer) -> Vec<String> {
    let v = moto.boto3(
        KEY_ID,
        SECRET,
        "print(json.dumps(sorted(c['certificateId'] for c in iot.list_certificates()['certificates'])))",
    );
    serde_json::from_value(v).unwrap()
}

backend_test!(existing_certificates_are_caught_up_with, |backend| {
    let moto = MotoServer::start(None);
    // Two certificates a page: the catch-up takes several pages.
    let mut options = fast();
    options.cloud.as_mut().unwrap().backfill_page = 2;
    let server = TestServer::start_with(backend, options).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = root_ca(&server, dir, "Fleet Root").await;

    // The fleet before the connector: five certificates, one revoked, one on hold.
    let mut fleet = Vec::new();
    for cn in ["old-1", "old-2", "old-3", "old-4", "old-5"] {
        fleet.push(issue(&server, &ca, dir, cn).await);
    }
    for (i, reason) in [(1, "key_compromise"), (3, "certificate_hold")] {
        let (s, body) = server
            .post(
                &format!("/api/v1/cas/{ca}/certificates/{}/revoke", fleet[i].0),
                json!({"reason": reason}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
    }
    let valid = [&fleet[0], &fleet[2], &fleet[4]];
    // The `cloud` sink has seen those revocations (with no connector they queue nothing): a revocation
    // it saw only after the connector exists would queue a REVOKED registration, not what is tested here.
    let started = Instant::now();
    loop {
        let (s, st) = server.get("/api/v1/status").await;
        assert_eq!(s, 200, "{st}");
        let cloud = st["events"]["sinks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "cloud")
            .cloned();
        if cloud.is_some_and(|k| k["lag"] == 0) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (s, created) = server
        .send(
            reqwest::Method::POST,
            "/api/v1/cloud-connectors",
            Some(connector("fleet", &moto.url(), &ca, SECRET)),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    for (serial, _) in valid {
        wait_item(&server, &id, Some(serial), synced).await;
    }
    // The valid ones are registered and attached; the revoked and held ones are not queued at all.
    let mut want: Vec<String> = valid.iter().map(|(_, fp)| fp.clone()).collect();
    want.sort();
    assert_eq!(listed(&moto), want);
    let items = state(&server, &id).await;
    assert_eq!(items.len(), 4, "{items:?}");
    for (serial, _) in [&fleet[1], &fleet[3]] {
        assert!(
            !items.iter().any(|i| i["serial"] == serial.as_str()),
            "{items:?}"
        );
    }
    let things = moto.boto3(
        KEY_ID,
        SECRET,
        "print(json.dumps(sorted(t['thingName'] for t in iot.list_things()['things'])))",
    );
    assert_eq!(things, json!(["old-1", "old-3", "old-5"]));

    // Resumable: the position is stored with each page. Put it after old-3 and drop the items of old-1,
    // old-4 and old-5: after a restart only what follows the position comes back (old-5; old-4 is held),
    // found in the cloud rather than registered again.
    tamper(
        &server.db_url,
        &format!(
            "DELETE FROM cloud_sync WHERE kind = 'certificate' AND serial IN ('{}', '{}', '{}')",
            fleet[0].0, fleet[3].0, fleet[4].0
        ),
    );
    tamper(
        &server.db_url,
        &format!(
            "UPDATE cloud_sync SET backfill_after = (SELECT seq FROM certificates WHERE serial = '{}') \
             WHERE kind = 'ca'",
            fleet[2].0
        ),
    );
    let server = server.restart().await;
    wait_item(&server, &id, Some(&fleet[4].0), synced).await;
    // Several passes later (200 ms apart), still only what follows the position.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let items = state(&server, &id).await;
    assert_eq!(items.len(), 3, "only what follows the position: {items:?}");
    assert!(
        !items.iter().any(|i| i["serial"] == fleet[0].0.as_str()),
        "{items:?}"
    );

    // An explicit catch-up from the first: old-1 comes back; nothing is registered twice.
    let (s, body) = server
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/cloud-connectors/{id}/backfill"),
            None,
        )
        .await;
    assert_eq!(s, 202, "{body}");
    wait_item(&server, &id, Some(&fleet[0].0), synced).await;
    assert_eq!(calls(&moto, "POST", "/certificate/register"), 3);
    assert_eq!(listed(&moto), want);
    let (_, audit) = server.get("/api/v1/audit?limit=1000").await;
    assert!(
        audit.to_string().contains("cloud_connector.backfill"),
        "{audit}"
    );
    let (s, body) = server
        .send(
            reqwest::Method::POST,
            "/api/v1/cloud-connectors/nope/backfill",
            None,
        )
        .await;
    assert_eq!(s, 404, "{body}");

    // Binding another CA catches up with its certificates too.
    let other = root_ca(&server, dir, "Second Root").await;
    let (early, early_fp) = issue(&server, &other, dir, "second-1").await;
    let mut both = connector("fleet", &moto.url(), &ca, SECRET);
    both["ca_ids"] = json!([ca, other]);
    both.as_object_mut().unwrap().remove("credentials");
    let (s, body) = server
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/cloud-connectors/{id}"),
            Some(both),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    wait_item(&server, &id, Some(&early), synced).await;
    assert_eq!(status(&moto, &early_fp), json!("ACTIVE"));
});

backend_test!(
    deleting_with_deregister_takes_back_what_was_registered,
    |backend| {
        let moto = MotoServer::start(None);
        let server = TestServer::start_with(backend, fast()).await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let ca = root_ca(&server, dir, "Return Root").await;
        let mut ids = Vec::new();
        for name in ["first", "second"] {
            let (s, c) = server
                .send(
                    reqwest::Method::POST,
                    "/api/v1/cloud-connectors",
                    Some(connector(name, &moto.url(), &ca, SECRET)),
                )
                .await;
            assert_eq!(s, 201, "{c}");
            ids.push(c["id"].as_str().unwrap().to_string());
        }
        let (kept, kept_fp) = issue(&server, &ca, dir, "dev-1").await;
        let (gone, gone_fp) = issue(&server, &ca, dir, "dev-2").await;
        for id in &ids {
            wait_item(&server, id, Some(&kept), synced).await;
            wait_item(&server, id, Some(&gone), synced).await;
        }
        let ca_item = wait_item(&server, &ids[0], None, synced).await;
        let ca_cloud_id = ca_item["cloud_id"].as_str().unwrap().to_string();
        // moto has no ListCACertificates: the CA is asked for by its id.
        let ca_status = || {
            moto.boto3(KEY_ID, SECRET, &format!(
                "try:\n    print(json.dumps(iot.describe_ca_certificate(certificateId={ca_cloud_id:?})['certificateDescription']['status']))\n\
                 except iot.exceptions.ResourceNotFoundException:\n    print(json.dumps('gone'))"
            ))
        };
        assert_eq!(ca_status(), json!("ACTIVE"));
        let (s, body) = server
            .post(
                &format!("/api/v1/cas/{ca}/certificates/{gone}/revoke"),
                json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        for id in &ids {
            wait_item(&server, id, Some(&gone), |i| {
                synced(i) && i["desired"] == "revoked"
            })
            .await;
        }

        let (s, body) = server
            .send(
                reqwest::Method::DELETE,
                &format!("/api/v1/cloud-connectors/{}?deregister=maybe", ids[0]),
                None,
            )
            .await;
        assert_eq!(s, 400, "{body}");

        // The first goes; what it registered stays, as the second connector uses the same registrations.
        let (s, _) = server
            .send(
                reqwest::Method::DELETE,
                &format!("/api/v1/cloud-connectors/{}?deregister=true", ids[0]),
                None,
            )
            .await;
        assert_eq!(s, 202);
        wait_gone(&server, &ids[0]).await;
        let mut both = vec![kept_fp.clone(), gone_fp.clone()];
        both.sort();
        assert_eq!(listed(&moto), both);
        assert_eq!(ca_status(), json!("ACTIVE"));

        // The second: while it works, it shows so and refuses changes; then its certificates are
        // deleted (detached from their things and policy first), then its CA; the things stay.
        let (s, _) = server
            .send(
                reqwest::Method::DELETE,
                &format!("/api/v1/cloud-connectors/{}?deregister=true", ids[1]),
                None,
            )
            .await;
        assert_eq!(s, 202);
        let (s, shown) = server
            .get(&format!("/api/v1/cloud-connectors/{}", ids[1]))
            .await;
        if s == 200 {
            assert_eq!(shown["deregistering"], json!(true), "{shown}");
            let mut body = connector("second", &moto.url(), &ca, SECRET);
            body.as_object_mut().unwrap().remove("credentials");
            let (s, p) = server
                .send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/cloud-connectors/{}", ids[1]),
                    Some(body),
                )
                .await;
            assert!(
                s == 404
                    || (s == 409 && p["type"] == "urn:shedu:problem:cloud-connector-deregistering"),
                "{s} {p}"
            );
        }
        wait_gone(&server, &ids[1]).await;
        assert_eq!(listed(&moto), Vec::<String>::new());
        assert_eq!(ca_status(), json!("gone"));
        let left = moto.boto3(KEY_ID, SECRET, "print(json.dumps([iot.list_thing_principals(thingName='dev-1')['principals'], sorted(t['thingName'] for t in iot.list_things()['things'])]))");
        assert_eq!(left, json!([[], ["dev-1", "dev-2"]]));
        assert!(moto.check_signatures(SECRET) >= 3);

        // Each is gone with an event saying what was taken back; the requests are in the audit trail.
        for id in &ids {
            let gone = connector_events(&server, "cloud_connector.deleted", id).await;
            assert_eq!(gone.len(), 1, "{gone:?}");
            assert_eq!(gone[0]["data"]["deregistered"], json!(true), "{gone:?}");
        }
        let (_, audit) = server.get("/api/v1/audit?limit=1000").await;
        assert_eq!(
            audit
                .to_string()
                .matches("cloud_connector.deregister")
                .count(),
            2,
            "{audit}"
        );
    }
);

/// Waits (up to a minute) until connector `id` is gone.
async fn wait_gone(server: &TestServer, id: &str) {
    let started = Instant::now();
    loop {
        let (s, body) = server.get(&format!("/api/v1/cloud-connectors/{id}")).await;
        if s == 404 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still there: {body} {:?}",
            state(server, id).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

backend_test!(connector_changes_and_sync_failures_are_events, |backend| {
    let options = Options {
        webhook_allow: Options::loopback_webhooks().webhook_allow,
        ..fast()
    };
    let server = TestServer::start_with(backend, options).await;
    let tmp = tempfile::tempdir().unwrap();
    let ca = root_ca(&server, tmp.path(), "Alert Root").await;
    // An alert on sync failures, delivered by webhook.
    let (hook_tx, mut hooks) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = hook_tx.clone();
            async move {
                let ty = headers
                    .get("x-shedu-event-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send((ty, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (s, sub) = server
        .post(
            "/api/v1/subscriptions",
            json!({"event_types": ["cloud_connector.*"],
                       "channel": {"type": "webhook", "url": hook_url}}),
        )
        .await;
    assert_eq!(s, 201, "{sub}");
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let body = connector("alerting", &format!("http://{unused}"), &ca, SECRET);
    let (s, c) = server
        .send(
            reqwest::Method::POST,
            "/api/v1/cloud-connectors",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_string();

    // The CA's registration fails again and again: one event, on the first failure, with the reason.
    wait_item(&server, &id, None, |i| i["attempts"].as_i64() >= Some(3)).await;
    let failed = connector_events(&server, "cloud_connector.sync_failed", &id).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let data = &failed[0]["data"];
    assert_eq!(
        (&data["kind"], &data["ca_id"], &data["attempts"]),
        (&json!("ca"), &json!(ca), &json!(1)),
        "{data}"
    );
    assert!(
        data["error"].as_str().unwrap().contains("cannot reach"),
        "{data}"
    );

    // A change of settings starts a new run of attempts: its first failure is an event again.
    let mut changed = body.clone();
    changed.as_object_mut().unwrap().remove("credentials");
    changed["thing_group"] = json!("line-2");
    let (s, c) = server
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/cloud-connectors/{id}"),
            Some(changed),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let started = Instant::now();
    while connector_events(&server, "cloud_connector.sync_failed", &id)
        .await
        .len()
        < 2
    {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Created, updated, deleted: events (never the secret), beside the audit records.
    let (s, _) = server
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/cloud-connectors/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    for (ty, n) in [
        ("cloud_connector.created", 1),
        ("cloud_connector.updated", 1),
        ("cloud_connector.deleted", 1),
    ] {
        let evs = connector_events(&server, ty, &id).await;
        assert_eq!(evs.len(), n, "{ty}: {evs:?}");
        assert!(!evs[0].to_string().contains(SECRET), "{evs:?}");
        assert_eq!(evs[0]["data"]["name"], "alerting", "{evs:?}");
    }
    let updated = connector_events(&server, "cloud_connector.updated", &id).await;
    assert_eq!(updated[0]["data"]["thing_group"], "line-2", "{updated:?}");
    let (_, events) = server.get("/api/v1/events?limit=1000").await;
    assert!(
        !events.to_string().contains(SECRET) && !events.to_string().contains(KEY_ID),
        "credentials in events"
    );

    // The alert fired: the webhook got the failure (and the connector's changes).
    let mut got = Vec::new();
    let started = Instant::now();
    while !got
        .iter()
        .any(|(ty, _): &(String, String)| ty == "cloud_connector.sync_failed")
    {
        let left = Duration::from_secs(30).saturating_sub(started.elapsed());
        match tokio::time::timeout(left, hooks.recv()).await {
            Ok(Some(hook)) => got.push(hook),
            _ => panic!("no sync failure reached the webhook: {got:?}"),
        }
    }
    let (_, body) = got
        .iter()
        .find(|(ty, _)| ty == "cloud_connector.sync_failed")
        .unwrap();
    assert!(body.contains(&id) && !body.contains(SECRET), "{body}");
});

backend_test!(sni_only_registers_without_proof, |backend| {
    let moto = MotoServer::start(None);
    let server = TestServer::start_with(backend, fast()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = root_ca(&server, dir, "Shared Root").await;
    let mut body = connector("sni", &moto.url(), &ca, SECRET);
    body["ca_mode"] = json!("sni_only");
    body["register_things"] = json!(false);
    let (s, c) = server
        .send(
            reqwest::Method::POST,
            "/api/v1/cloud-connectors",
            Some(body),
        )
        .await;
    assert_eq!((s, &c["ca_mode"]), (201, &json!("sni_only")), "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    wait_item(&server, &id, None, synced).await;
    let (serial, fp) = issue(&server, &ca, dir, "sni-1").await;
    let item = wait_item(&server, &id, Some(&serial), synced).await;
    assert_eq!(item["thing_name"], Value::Null, "{item}");
    assert_eq!(status(&moto, &fp), json!("ACTIVE"));

    // No registration code, no verification certificate: the CA in SNI_ONLY mode, the certificate
    // registered without its CA (RegisterCertificateWithoutCA), and no thing.
    assert_eq!(calls(&moto, "GET", "/registrationcode"), 0);
    let ca_bodies: Vec<Value> = moto
        .recording()
        .into_iter()
        .filter(|(m, url, _)| m == "POST" && url.contains("/cacertificate"))
        .map(|(_, _, b)| serde_json::from_str(&b).unwrap())
        .collect();
    assert_eq!(ca_bodies.len(), 1, "{ca_bodies:?}");
    assert_eq!(ca_bodies[0]["certificateMode"], "SNI_ONLY");
    assert!(
        ca_bodies[0].get("verificationCertificate").is_none(),
        "{ca_bodies:?}"
    );
    assert_eq!(calls(&moto, "POST", "/certificate/register-no-ca"), 1);
    assert_eq!(calls(&moto, "POST", "/certificate/register"), 0);
    let things = moto.boto3(
        KEY_ID,
        SECRET,
        "print(json.dumps(len(iot.list_things()['things'])))",
    );
    assert_eq!(things, json!(0));
    // What was registered is the certificate the CA signed (moto checks no signature).
    let registered = moto.boto3(KEY_ID, SECRET, &format!(
        "print(json.dumps(iot.describe_certificate(certificateId={fp:?})['certificateDescription']['certificatePem']))"
    ));
    std::fs::write(dir.join("registered.pem"), registered.as_str().unwrap()).unwrap();
    let (ok, out) = openssl(dir, &["verify", "-CAfile", "ca.pem", "registered.pem"]);
    assert!(ok && out.contains("registered.pem: OK"), "{out}");
});
