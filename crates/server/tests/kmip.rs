//! The KMIP listener as an outside client sees it, judged by PyKMIP 0.11.0's `ProxyKmipClient` over TLS
//! with client certificates shedu issued: the lifecycle of a key, grants between two users, Locate
//! isolation, register-then-get of exact bytes, a certificate without clientAuth refused, malformed
//! messages answered `Invalid Message`, and key material never stored in the clear.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use shedu_testkit::{TestServer, backend_test, python_venv};

const PYKMIP: &str = "PyKMIP==0.11.0";

/// A KMIP user: the files of a client certificate shedu issued to CN `name`.
struct User {
    cert: PathBuf,
    key: PathBuf,
}

/// Makes a client CA (clientAuth) and issues a certificate for each of `names`.
async fn users(server: &TestServer, dir: &Path, names: &[&str]) -> Vec<User> {
    let ca = server
        .create_ca(json!({"name": "kmip-clients", "key_type": "ec-p256",
            "subject": {"common_name": "KMIP Clients"}, "profile": {"ext_key_usages": ["client_auth"]}}))
        .await;
    let mut out = Vec::new();
    for name in names {
        server
            .issue_to_files(ca["id"].as_str().unwrap(), dir, name, &format!("/CN={name}"))
            .await;
        out.push(User {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        });
    }
    out
}

/// Runs `steps` as `user` with PyKMIP speaking `version`; returns one result per step (or the
/// connection error as the only element).
fn pykmip(server: &TestServer, user: &User, version: &str, steps: Value) -> Vec<Value> {
    let venv = python_venv("pykmip", &[PYKMIP]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kmip/pykmip_steps.py");
    let addr = server.kmip_addr();
    let out = Command::new(venv.join("bin/python"))
        .arg(script)
        .args([
            addr.ip().to_string(),
            addr.port().to_string(),
            user.cert.display().to_string(),
            user.key.display().to_string(),
            server.ca_file.display().to_string(),
            version.to_string(),
            steps.to_string(),
        ])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pykmip_steps.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn ok(r: &Value) -> &Value {
    assert!(r.get("ok").is_some(), "expected success, got {r}");
    &r["ok"]
}

fn reason(r: &Value) -> &str {
    r["error"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a failure, got {r}"))
}

backend_test!(a_key_lives_through_its_states_as_pykmip_sees_them, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let alice = &users(&server, dir.path(), &["alice"]).await[0];
    for version in ["1.2", "2.0"] {
        let r = pykmip(
            &server,
            alice,
            version,
            json!([
                ["create", "AES", 256, format!("lifecycle-{version}")],
                ["get_attributes", "$0", ["State", "Cryptographic Length", "Cryptographic Algorithm"]],
                ["activate", "$0"],
                ["get_attributes", "$0", ["State"]],
                ["destroy", "$0"],
                ["revoke", "CESSATION_OF_OPERATION", "$0"],
                ["get_attributes", "$0", ["State"]],
                ["activate", "$0"],
                ["destroy", "$0"],
                ["get", "$0"],
                ["get_attributes", "$0", ["State"]],
            ]),
        );
        assert_eq!(r.len(), 11, "{r:?}");
        let uid = ok(&r[0]).as_str().unwrap();
        assert_eq!(uid.len(), 36, "a UUID: {uid}");
        assert_eq!(ok(&r[1])["State"], "PRE_ACTIVE", "{version}");
        assert_eq!(ok(&r[1])["Cryptographic Length"], 256);
        assert_eq!(ok(&r[1])["Cryptographic Algorithm"], "AES");
        ok(&r[2]);
        assert_eq!(ok(&r[3])["State"], "ACTIVE");
        assert_eq!(reason(&r[4]), "WRONG_KEY_LIFECYCLE_STATE", "an Active key is not destroyed");
        ok(&r[5]);
        assert_eq!(ok(&r[6])["State"], "DEACTIVATED");
        assert_eq!(reason(&r[7]), "WRONG_KEY_LIFECYCLE_STATE");
        ok(&r[8]);
        let gone = if version == "1.2" { "ITEM_NOT_FOUND" } else { "OBJECT_DESTROYED" };
        assert_eq!(reason(&r[9]), gone, "Get fails on a destroyed key");
        assert_eq!(ok(&r[10])["State"], "DESTROYED", "the metadata stays");
    }
    // Each change is an event, each operation an audit record.
    let events = server.cas_events().await;
    assert!(events.iter().filter(|e| *e == "kmip.object_created").count() >= 2, "{events:?}");
    assert!(events.iter().filter(|e| *e == "kmip.object_state_changed").count() >= 6, "{events:?}");
    let (status, audit) = server.get("/api/v1/audit?limit=200").await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["principal"] == "alice")
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for action in ["kmip.create", "kmip.get_attributes", "kmip.activate", "kmip.revoke", "kmip.destroy", "kmip.get"] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
});

backend_test!(registered_bytes_come_back_exactly_and_never_rest_in_the_clear, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let alice = &users(&server, dir.path(), &["alice"]).await[0];
    // A 32-byte pattern nobody else would write.
    let pattern: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
    let secret: Vec<u8> = b"correct horse battery staple 123".to_vec();
    let opaque: Vec<u8> = (0u8..48).map(|i| i ^ 0x3C).collect();
    let r = pykmip(
        &server,
        alice,
        "1.2",
        json!([
            ["register_symmetric", hex::encode(&pattern), "pattern-key"],
            ["get", "$0"],
            ["register_secret", hex::encode(&secret), "a-password"],
            ["get", "$2"],
            ["register_opaque", hex::encode(&opaque), "a-blob"],
            ["get", "$4"],
            ["get_attributes", "$0", ["State", "Name"]],
            ["locate", "pattern-key"],
        ]),
    );
    assert_eq!(ok(&r[1]).as_str().unwrap(), hex::encode(&pattern));
    assert_eq!(ok(&r[3]).as_str().unwrap(), hex::encode(&secret));
    assert_eq!(ok(&r[5]).as_str().unwrap(), hex::encode(&opaque));
    assert_eq!(ok(&r[6])["State"], "PRE_ACTIVE");
    assert_eq!(ok(&r[7]), &json!([ok(&r[0])]));

    // The database holds neither the pattern nor its hex anywhere (tables, WAL, dump).
    let hex_lower = hex::encode(&pattern);
    let hex_upper = hex_lower.to_uppercase();
    let mut haystacks: Vec<Vec<u8>> = Vec::new();
    match server.db_url.strip_prefix("sqlite://") {
        Some(rest) => {
            let file = PathBuf::from(rest.split('?').next().unwrap());
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let path = PathBuf::from(format!("{}{suffix}", file.display()));
                if let Ok(bytes) = std::fs::read(&path) {
                    haystacks.push(bytes);
                }
            }
            let total: usize = haystacks.iter().map(Vec::len).sum();
            assert!(total > 64 * 1024, "the database and its WAL were read ({total} bytes)");
        }
        None => {
            let out = Command::new("pg_dump")
                .args(["--data-only", &server.db_url])
                .output()
                .expect("pg_dump is required (apt-get install postgresql-client)");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("kmip_objects"),
                "the dump holds the KMIP table"
            );
            haystacks.push(out.stdout);
        }
    }
    // The scan sees the KMIP rows: the object's name (an attribute, not a secret) is there.
    assert!(
        haystacks.iter().any(|h| h.windows(11).any(|w| w == b"pattern-key")),
        "the scan reaches the stored attributes"
    );
    for hay in &haystacks {
        for needle in [&pattern[..], hex_lower.as_bytes(), hex_upper.as_bytes(), &secret[..]] {
            assert!(
                !hay.windows(needle.len()).any(|w| w == needle),
                "key material found in the database"
            );
        }
    }
});

backend_test!(a_client_certificate_without_client_auth_is_refused, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = server
        .create_ca(json!({"name": "servers", "key_type": "ec-p256",
            "subject": {"common_name": "Servers"}, "profile": {"ext_key_usages": ["server_auth"]}}))
        .await;
    server
        .issue_to_files(ca["id"].as_str().unwrap(), dir.path(), "web", "/CN=web")
        .await;
    let web = User {
        cert: dir.path().join("web.pem"),
        key: dir.path().join("web.key"),
    };
    let r = pykmip(&server, &web, "1.2", json!([["create", "AES", 128]]));
    let refused = r[0].get("connect_error").is_some()
        || reason(&r[0]).starts_with("CLIENT_");
    assert!(refused, "the connection must fail: {r:?}");
    let (_, audit) = server.get("/api/v1/audit?limit=50").await;
    assert!(
        !audit.to_string().contains("kmip.create"),
        "nothing ran: {audit}"
    );
});

backend_test!(grants_decide_who_sees_an_object_and_locate_never_reveals_it, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let both = users(&server, dir.path(), &["alice", "bob"]).await;
    let (alice, bob) = (&both[0], &both[1]);
    let r = pykmip(&server, alice, "1.2", json!([["create", "AES", 128, "shared-name"]]));
    let uid = ok(&r[0]).as_str().unwrap().to_string();
    let missing = "00000000-0000-0000-0000-000000000000";

    // Without a grant bob sees exactly what a missing object gets.
    let r = pykmip(
        &server,
        bob,
        "1.2",
        json!([
            ["get", uid],
            ["get", missing],
            ["get_attributes", uid, ["State"]],
            ["destroy", uid],
            ["locate", "shared-name"],
            ["locate", ""],
        ]),
    );
    assert_eq!(reason(&r[0]), "ITEM_NOT_FOUND");
    assert_eq!(r[0]["error"]["message"].as_str().unwrap().replace(&uid, "X"),
        r[1]["error"]["message"].as_str().unwrap().replace(missing, "X"),
        "the same answer as for a missing object");
    assert_eq!(reason(&r[2]), "ITEM_NOT_FOUND");
    assert_eq!(reason(&r[3]), "ITEM_NOT_FOUND");
    assert_eq!(ok(&r[4]), &json!([]));
    assert_eq!(ok(&r[5]), &json!([]));

    // Alice grants bob `get` (and only that) through the access API.
    let (status, body) = grant(&server, alice, &uid, "bob", &["get"], true).await;
    assert_eq!(status, 200, "{body}");
    let r = pykmip(
        &server,
        bob,
        "1.2",
        json!([["get", uid], ["destroy", uid], ["locate", "shared-name"]]),
    );
    assert_eq!(ok(&r[0]).as_str().unwrap().len(), 32, "16 key bytes");
    assert_eq!(reason(&r[1]), "ITEM_NOT_FOUND", "get does not imply destroy");
    assert_eq!(ok(&r[2]), &json!([]), "get does not imply locate");

    // Revoking the grant takes it away again.
    let (status, body) = grant(&server, alice, &uid, "bob", &["get"], false).await;
    assert_eq!(status, 200, "{body}");
    let r = pykmip(&server, bob, "1.2", json!([["get", uid]]));
    assert_eq!(reason(&r[0]), "ITEM_NOT_FOUND");
});

/// Grants (or revokes) through `POST /api/v1/kms/access/{grant,revoke}` as the owner (a user logged
/// in with the CN's name: the access API and KMIP name users alike).
async fn grant(
    server: &TestServer,
    _owner: &User,
    uid: &str,
    user: &str,
    ops: &[&str],
    add: bool,
) -> (u16, Value) {
    let owner_token = login(server, "alice").await;
    let path = if add { "grant" } else { "revoke" };
    let res = server
        .client
        .post(format!("{}/api/v1/kms/access/{path}", server.base_url))
        .bearer_auth(owner_token)
        .json(&json!({"unique_identifier": uid, "user_id": user, "operation_types": ops}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Makes user `name` (operator) if needed and logs in; returns the access token.
async fn login(server: &TestServer, name: &str) -> String {
    let _ = server
        .post(
            "/api/v1/users",
            json!({"username": name, "password": "correct horse battery", "role": "operator"}),
        )
        .await;
    let res = server
        .client
        .post(format!("{}/api/v1/auth/login", server.base_url))
        .json(&json!({"username": name, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap_or_else(|| panic!("login: {body}")).to_string()
}
