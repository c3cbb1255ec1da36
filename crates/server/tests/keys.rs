//! Key engines end to end: CAs whose keys live in a PKCS#11 token (SoftHSM2) issue certificates that
//! openssl accepts, before and after a restart; a token that fails at signing time answers 503
//! `ca-key-unavailable` and stores nothing; software keys never reach disk or the database in plaintext;
//! a tampered sealed key disables only its own CA.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use shedu_store::Store;
use shedu_testkit::{
    Backend, Options, TestServer, backend_test, openssl, openssl_ca, openssl_csr, pkcs11_or_rerun,
};

async fn issue_and_verify(server: &TestServer, root: &Value, ca: &Value, dir: &Path, stem: &str) {
    let csr = openssl_csr(dir, stem, "ec-p256", &format!("/CN={stem}"), None);
    let (status, cert) = server
        .post(
            &format!("/api/v1/cas/{}/certificates", ca["id"].as_str().unwrap()),
            json!({"csr_pem": csr}),
        )
        .await;
    assert_eq!(status, 201, "{cert}");
    std::fs::write(
        dir.join("root.pem"),
        root["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{stem}.pem")),
        cert["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{stem}-chain.pem")),
        cert["chain_pem"].as_str().unwrap(),
    )
    .unwrap();
    let (ok, out) = openssl(
        dir,
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root.pem",
            "-untrusted",
            &format!("{stem}-chain.pem"),
            &format!("{stem}.pem"),
        ],
    );
    assert!(ok, "{stem}: {out}");
}

async fn pkcs11_cas_issue_and_survive_restart(backend: Backend, test_path: &str) {
    let Some(pkcs11) = pkcs11_or_rerun(test_path) else {
        return;
    };
    let server = TestServer::start_with(
        backend,
        Options {
            pkcs11: Some(pkcs11),
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let root = server
        .create_ca(json!({"name": "hsm-root", "key_type": "ec-p384", "engine": "pkcs11", "subject": {"common_name": "HSM Root"}}))
        .await;
    let int = server
        .create_ca(
            json!({"name": "hsm-int", "key_type": "rsa-2048", "engine": "pkcs11",
            "subject": {"common_name": "HSM Issuing"}, "parent_id": root["id"]}),
        )
        .await;
    for ca in [&root, &int] {
        assert_eq!(ca["engine"], "pkcs11");
        assert!(
            ca["key_handle"].as_str().unwrap().starts_with("shedu-ca-"),
            "{ca}"
        );
        assert!(!ca.to_string().contains("PRIVATE KEY"));
    }
    let soft = server
        .create_ca(json!({"name": "soft", "key_type": "ec-p256", "engine": "software", "subject": {"common_name": "Soft"}}))
        .await;
    assert_eq!(
        (soft["engine"].as_str(), soft["key_handle"].as_str()),
        (Some("software"), Some("sealed"))
    );
    issue_and_verify(&server, &root, &int, dir.path(), "before").await;

    // An existing CA key imported into the token.
    let d = dir.path();
    openssl_ca(d, "imp", "Imported into HSM");
    let (status, imported) = server
        .post(
            "/api/v1/cas/import",
            json!({"name": "imported", "engine": "pkcs11",
            "certificate_pem": std::fs::read_to_string(d.join("imp.pem")).unwrap(),
            "private_key_pem": std::fs::read_to_string(d.join("imp.key")).unwrap()}),
        )
        .await;
    assert_eq!(status, 201, "{imported}");
    assert_eq!(imported["engine"], "pkcs11");
    issue_and_verify(&server, &imported, &imported, d, "imported-leaf").await;

    let server = server.restart().await;
    issue_and_verify(&server, &root, &int, dir.path(), "after").await;
    let (status, ca) = server
        .get(&format!("/api/v1/cas/{}", int["id"].as_str().unwrap()))
        .await;
    assert_eq!((status, ca["engine"].as_str()), (200, Some("pkcs11")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_cas_sqlite() {
    pkcs11_cas_issue_and_survive_restart(Backend::Sqlite, "pkcs11_cas_sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_cas_postgres() {
    pkcs11_cas_issue_and_survive_restart(Backend::Postgres, "pkcs11_cas_postgres").await;
}

/// Marks the child process that runs a test on a SoftHSM2 token of its own.
const OWN_TOKEN: &str = "SHEDU_TEST_OWN_TOKEN";

/// Whether this process runs on a SoftHSM2 token of its own, labelled `label`, which the test may
/// destroy. SoftHSM2 reads its token directory once per process (at `C_Initialize`), so a token made by
/// another process later is never seen, and the token of `scripts/test` is shared with the other tests.
/// So the test runs again in a child process whose SoftHSM2 configuration holds only a fresh token (made
/// by `scripts/softhsm-env`, exported in the environment that `pkcs11_or_rerun` then reads); in the parent
/// this asserts that the child passed and returns `false`.
fn on_own_token(test_path: &str, label: &str) -> bool {
    if std::env::var_os(OWN_TOKEN).is_some() {
        return true;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/softhsm-env");
    let token_dir = tempfile::tempdir().unwrap();
    // The shell evaluates the script's exports, as `scripts/test` does, then becomes the test binary.
    let status = Command::new("bash")
        .arg("-c")
        .arg(r#"exports="$("$1" "$2")" && eval "$exports" && exec "$3" "$4" --exact --nocapture"#)
        .arg("bash")
        .arg(script)
        .arg(token_dir.path())
        .arg(std::env::current_exe().unwrap())
        .arg(test_path)
        .env("SHEDU_PKCS11_TOKEN_LABEL", label)
        .env(OWN_TOKEN, "1")
        .status()
        .expect("re-run the test");
    assert!(
        status.success(),
        "{test_path} failed on its own token (or scripts/softhsm-env failed)"
    );
    false
}

async fn a_token_gone_at_signing_time_is_unavailable(backend: Backend, test_path: &str) {
    let label = "shedu-gone";
    if !on_own_token(test_path, label) {
        return;
    }
    let pkcs11 = pkcs11_or_rerun(test_path).expect("the token made for this test");
    assert_eq!(pkcs11.token_label, label);
    let server = TestServer::start_with(
        backend,
        Options {
            pkcs11: Some(pkcs11),
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = server
        .create_ca(json!({"name": "hsm", "key_type": "ec-p256", "engine": "pkcs11", "subject": {"common_name": "HSM"}}))
        .await;
    let id = ca["id"].as_str().unwrap();
    issue_and_verify(&server, &ca, &ca, dir.path(), "before").await;
    let (status, before) = server
        .get(&format!("/api/v1/certificates?ca_id={id}"))
        .await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["items"].as_array().unwrap().len(), 1, "{before}");
    let events_before = server.cas_events().await;

    // The token goes away while the server runs (its directory is deleted, as `softhsm2-util` does it);
    // the server still holds a logged-in session and the key's handle.
    let out = Command::new("softhsm2-util")
        .args(["--delete-token", "--token", label])
        .output()
        .expect("softhsm2-util");
    assert!(
        out.status.success(),
        "softhsm2-util --delete-token: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let csr = openssl_csr(dir.path(), "after", "ec-p256", "/CN=after", None);
    let (status, p) = server
        .post(
            &format!("/api/v1/cas/{id}/certificates"),
            json!({"csr_pem": csr}),
        )
        .await;
    assert_eq!(status, 503, "{p}");
    assert_eq!(p["type"], "urn:shedu:problem:ca-key-unavailable", "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains(id), "the error names the CA: {p}");
    assert!(!detail.contains("PRIVATE KEY"), "{p}");

    // Nothing was stored: the same one certificate, and no new event.
    let (status, after) = server
        .get(&format!("/api/v1/certificates?ca_id={id}"))
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["items"], before["items"]);
    assert_eq!(server.cas_events().await, events_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_gone_at_signing_time_sqlite() {
    a_token_gone_at_signing_time_is_unavailable(
        Backend::Sqlite,
        "a_token_gone_at_signing_time_sqlite",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_gone_at_signing_time_postgres() {
    a_token_gone_at_signing_time_is_unavailable(
        Backend::Postgres,
        "a_token_gone_at_signing_time_postgres",
    )
    .await;
}

backend_test!(a_tampered_sealed_key_disables_only_its_ca, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let a = server
        .create_ca(json!({"name": "a", "key_type": "ec-p256", "subject": {"common_name": "A"}}))
        .await;
    let b = server
        .create_ca(json!({"name": "b", "key_type": "ec-p256", "subject": {"common_name": "B"}}))
        .await;
    let store = Store::connect(&server.db_url, &shedu_core::EVENT_WORDS)
        .await
        .unwrap();
    let mut keys = store.sealed_keys().await.unwrap();
    keys.retain(|k| k.table == "cas" && k.id == a["id"].as_str().unwrap());
    assert_eq!(keys.len(), 1);
    let n = keys[0].sealed.len();
    keys[0].sealed[n / 2] ^= 0x01;
    store
        .replace_sealed_keys(&keys, &[], &[], &[], &[], &[])
        .await
        .unwrap();
    store.close().await;

    let server = server.restart().await;
    let csr = openssl_csr(dir.path(), "x", "ec-p256", "/CN=x", None);
    let (status, p) = server
        .post(
            &format!("/api/v1/cas/{}/certificates", a["id"].as_str().unwrap()),
            json!({"csr_pem": csr}),
        )
        .await;
    assert_eq!(status, 503, "{p}");
    assert_eq!(p["type"], "urn:shedu:problem:ca-key-unavailable");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains(a["id"].as_str().unwrap()),
        "the error names the CA: {p}"
    );
    issue_and_verify(&server, &b, &b, dir.path(), "b-leaf").await;
});

/// Every DER object in `bytes` that parses as a private key (PKCS#8, SEC1 or PKCS#1), by offset.
fn private_keys_in(bytes: &[u8]) -> Vec<usize> {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair, RsaKeyPair,
    };
    let mut found = Vec::new();
    for i in 0..bytes.len().saturating_sub(4) {
        if bytes[i] != 0x30 {
            continue;
        }
        let (len, header) = match bytes[i + 1] {
            l if l < 0x80 => (usize::from(l), 2),
            0x81 => (usize::from(bytes[i + 2]), 3),
            0x82 => (
                (usize::from(bytes[i + 2]) << 8) | usize::from(bytes[i + 3]),
                4,
            ),
            _ => continue,
        };
        let Some(der) = bytes.get(i..i + header + len) else {
            continue;
        };
        if len < 32 {
            continue;
        }
        let parses = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .is_ok()
            || EcdsaKeyPair::from_private_key_der(&ECDSA_P384_SHA384_ASN1_SIGNING, der).is_ok()
            || Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).is_ok()
            || RsaKeyPair::from_pkcs8(der).is_ok()
            || RsaKeyPair::from_der(der).is_ok();
        if parses {
            found.push(i);
        }
    }
    found
}

/// Every table of the PostgreSQL database at `db_url`, as `psql` copies it out in binary format (column
/// values as stored, bytea unescaped), by table name.
fn postgres_tables(db_url: &str) -> Vec<(String, Vec<u8>)> {
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args([db_url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .unwrap_or_else(|e| {
                panic!("psql is required (apt-get install postgresql-client): {e}")
            });
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let names = psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    let tables: Vec<(String, Vec<u8>)> = String::from_utf8(names)
        .unwrap()
        .lines()
        .map(|t| {
            let rows = psql(&format!("COPY {t} TO STDOUT (FORMAT binary)"));
            (format!("table {t}"), rows)
        })
        .collect();
    let cas = tables.iter().find(|(t, _)| t == "table cas");
    assert!(
        cas.is_some_and(|(_, rows)| rows.len() > 1000),
        "the CA table is scanned: {:?}",
        tables.iter().map(|(t, r)| (t, r.len())).collect::<Vec<_>>()
    );
    tables
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

backend_test!(no_private_key_is_stored_in_plaintext, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // CAs of every key type, an intermediate, an imported key whose bytes we know, an OCSP responder.
    let root = server
        .create_ca(json!({"name": "r", "key_type": "ec-p384", "subject": {"common_name": "R"}}))
        .await;
    for kt in ["ec-p256", "rsa-2048", "ed25519", "rsa-3072"] {
        server
            .create_ca(json!({"name": kt, "key_type": kt, "subject": {"common_name": kt}, "parent_id": root["id"]}))
            .await;
    }
    openssl_ca(d, "imp", "Known");
    let (status, imported) = server
        .post("/api/v1/cas/import", json!({"name": "known", "certificate_pem": std::fs::read_to_string(d.join("imp.pem")).unwrap(),
            "private_key_pem": std::fs::read_to_string(d.join("imp.key")).unwrap()}))
        .await;
    assert_eq!(status, 201, "{imported}");
    let (ok, _) = openssl(
        d,
        &[
            "ec",
            "-in",
            "imp.key",
            "-outform",
            "DER",
            "-out",
            "imp.sec1.der",
        ],
    );
    assert!(ok);
    let sec1 = std::fs::read(d.join("imp.sec1.der")).unwrap();
    // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING (32), … }: the raw scalar.
    assert_eq!(&sec1[..7], &[0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20]);
    let scalar = sec1[7..39].to_vec();
    issue_and_verify(&server, &imported, &imported, d, "leaf").await;
    std::fs::write(
        d.join("int.pem"),
        imported["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();
    let (_, out) = openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "int.pem",
            "-cert",
            "leaf.pem",
            "-url",
            &format!("{}/ocsp", server.http_url),
            "-no_nonce",
            "-noverify",
        ],
    );
    assert!(
        out.contains("leaf.pem: good"),
        "the OCSP responder key exists now: {out}"
    );

    // Everything shedu stored: the data folder's files, and the database (SQLite's files, or every
    // PostgreSQL table in COPY's binary format, which carries column bytes as they are stored).
    let mut files = Vec::new();
    files_under(&server.data_dir, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("ca.key.sealed")),
        "the TLS keys are scanned: {files:?}"
    );
    let mut stored: Vec<(String, Vec<u8>)> = match server.db_url.strip_prefix("sqlite://") {
        Some(rest) => {
            let db_file = Path::new(rest.split('?').next().unwrap());
            files_under(db_file.parent().unwrap(), &mut files);
            assert!(
                files.iter().any(|f| f.ends_with("shedu.db")),
                "the database is scanned: {files:?}"
            );
            Vec::new()
        }
        None => postgres_tables(&server.db_url),
    };
    stored.extend(
        files
            .iter()
            .map(|f| (f.display().to_string(), std::fs::read(f).unwrap())),
    );
    let mut scanned = 0;
    for (place, bytes) in &stored {
        scanned += bytes.len();
        assert!(
            private_keys_in(bytes).is_empty(),
            "a private key in plaintext in {place}"
        );
        assert!(
            !bytes.windows(scalar.len()).any(|w| w == scalar),
            "the imported key's scalar is in {place}"
        );
        assert!(
            !bytes.windows(16).any(|w| w == b"PRIVATE KEY-----"),
            "a PEM private key in {place}"
        );
    }
    // SQLite's files carry their pages; PostgreSQL's tables copied out are the bare values (about 19 KB).
    let least = if server.db_url.starts_with("sqlite://") {
        50_000
    } else {
        15_000
    };
    assert!(scanned > least, "scanned {scanned} bytes");
    // The scanner itself finds keys when they are there.
    assert!(!private_keys_in(&sec1).is_empty());
});
