//! End-to-end tests of the `shedu` binary: a real `shedu serve` on loopback ports, driven by the real CLI,
//! with certificates checked by the real `openssl`. Each test has its own temporary folder and server,
//! so they run in parallel; a guard kills the server when the test ends, pass or fail.

// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Sandbox, Server, StartFailure, shedu_command, try_start_with};
use serde_json::Value;

const SHEDU: &str = env!("CARGO_BIN_EXE_shedu");

impl Sandbox {
    fn path(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// The database's URL, as the backend's own client (and `Store::connect`) takes it.
    fn db_url(&self) -> String {
        match &self.postgres {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.data.join("shedu.db").display()),
        }
    }

    /// Runs one SQL statement on the database behind shedu's back.
    fn sql(&self, statement: &str) {
        shedu_testkit::tamper(&self.db_url(), statement);
    }

    /// Recomputes the chain values of `seqs` with plain SHA-256: what an attacker without the audit key
    /// can do.
    fn rechain_with_sha256(&self, seqs: std::ops::RangeInclusive<i64>) {
        let url = self.db_url();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let store = shedu_store::Store::connect(&url, &shedu_store::scratch::TEST_WORDS)
                .await
                .unwrap();
            store.rechain_audit(seqs, None).await.unwrap();
            store.close().await;
        });
    }
}

/// Starts `shedu serve` on the sandbox's data folder with OS-chosen ports and waits for the line giving
/// the HTTPS address. `Err` when the process exits first.
fn try_start(sb: &Sandbox, run: &str) -> Result<Server, StartFailure> {
    try_start_with(sb, run, &[], &[])
}

/// [`try_start`] with extra environment variables for the server.
fn try_start_with_env(
    sb: &Sandbox,
    run: &str,
    env: &[(&str, &str)],
) -> Result<Server, StartFailure> {
    try_start_with(sb, run, &[], env)
}

fn start(sb: &Sandbox, run: &str) -> Server {
    match try_start(sb, run) {
        Ok(server) => server,
        Err(f) => panic!("shedu serve exited with {}: {}", f.status, f.stderr),
    }
}

/// The result of one CLI run, as text.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            status: o.status,
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        }
    }
}

/// Runs the CLI against `server` with the URL, token file and CA file given explicitly.
fn cli(sb: &Sandbox, server: &Server, args: &[&str]) -> Run {
    shedu_command(&sb.work)
        .args(args)
        .arg("--url")
        .arg(server.url())
        .arg("--token-file")
        .arg(sb.data.join("admin-token"))
        .arg("--ca-file")
        .arg(sb.data.join("tls").join("ca.pem"))
        .output()
        .unwrap()
        .into()
}

/// [`cli`], asserting success; returns stdout.
fn cli_ok(sb: &Sandbox, server: &Server, args: &[&str]) -> Run {
    let run = cli(sb, server, args);
    assert!(
        run.status.success(),
        "shedu {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        run.status,
        run.stdout,
        run.stderr
    );
    run
}

/// [`cli`] with `--output json`, asserting success; returns the parsed document.
fn cli_json(sb: &Sandbox, server: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    let run = cli_ok(sb, server, &args);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

/// [`cli`], asserting a non-zero exit; returns stderr.
fn cli_fails(sb: &Sandbox, server: &Server, args: &[&str]) -> String {
    let run = cli(sb, server, args);
    assert!(
        !run.status.success(),
        "shedu {args:?} should have failed:\nstdout: {}",
        run.stdout
    );
    assert!(
        run.stderr.starts_with("error: "),
        "unexpected stderr: {}",
        run.stderr
    );
    run.stderr
}

/// Runs openssl in `dir`, asserting success; returns stdout.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed to run these tests");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh P-256 key and a CSR for `cn` in the sandbox's work folder; returns the CSR file name.
fn make_csr(sb: &Sandbox, name: &str, cn: &str) -> String {
    make_csr_for(sb, name, &format!("/CN={cn}"))
}

/// [`make_csr`] with a whole subject in openssl's `-subj` form (`/O=…/CN=…`).
fn make_csr_for(sb: &Sandbox, name: &str, subject: &str) -> String {
    let csr = format!("{name}.csr");
    openssl(
        &sb.work,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    csr
}

/// A self-signed P-256 CA made by openssl, as the task describes an externally made CA.
fn make_external_ca(sb: &Sandbox, name: &str, cn: &str) {
    openssl(
        &sb.work,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "365",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// `openssl verify`, asserting the leaf chains to `root`.
fn assert_verifies(sb: &Sandbox, root: &str, chain: Option<&str>, leaf: &str) {
    let mut args = vec!["verify", "-CAfile", root];
    if let Some(chain) = chain {
        args.extend(["-untrusted", chain]);
    }
    args.push(leaf);
    let out = openssl(&sb.work, &args);
    assert_eq!(out.trim(), format!("{leaf}: OK"));
}

/// The value of `Label:` in key/value output.
fn field(text: &str, label: &str) -> String {
    let prefix = format!("{label}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
}

/// The data rows of table output (header skipped), split on whitespace.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

fn full_flow_create_sign_verify_list_revoke(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");

    // Root in table mode, intermediate in JSON mode.
    let root_out = cli_ok(
        &sb,
        &server,
        &[
            "ca",
            "create",
            "--name",
            "root",
            "--key-type",
            "ec-p256",
            "--cn",
            "Test Root",
            "--org",
            "Acme",
            "--country",
            "DE",
        ],
    )
    .stdout;
    assert_eq!(field(&root_out, "Kind"), "root");
    assert_eq!(field(&root_out, "Subject"), "C=DE, O=Acme, CN=Test Root");
    let root_id = field(&root_out, "ID");
    let inter = cli_json(
        &sb,
        &server,
        &[
            "ca",
            "create",
            "--name",
            "inter",
            "--key-type",
            "ec-p256",
            "--cn",
            "Test Issuing CA",
            "--parent",
            &root_id,
            "--path-len",
            "0",
            "--validity-days",
            "1000",
            "--default-validity-days",
            "90",
            "--allowed-key-types",
            "ec-p256,ec-p384",
        ],
    );
    let inter_id = str_of(&inter, "id").to_string();
    assert_eq!(str_of(&inter, "kind"), "intermediate");
    assert_eq!(str_of(&inter, "parent_id"), root_id);
    assert_eq!(inter["profile"]["path_len"], 0);
    assert_eq!(inter["profile"]["default_validity_days"], 90);
    assert_eq!(
        inter["profile"]["allowed_key_types"],
        serde_json::json!(["ec-p256", "ec-p384"])
    );

    // ca list, table and JSON.
    let list = cli_ok(&sb, &server, &["ca", "list"]).stdout;
    let header: Vec<&str> = list
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "ID",
            "NAME",
            "KIND",
            "KEY",
            "STATUS",
            "NOT AFTER",
            "SUBJECT"
        ]
    );
    let table = rows(&list);
    assert_eq!(table.len(), 2, "{list}");
    for (id, name, kind) in [
        (&root_id, "root", "root"),
        (&inter_id, "inter", "intermediate"),
    ] {
        let row = table
            .iter()
            .find(|r| &r[0] == id)
            .unwrap_or_else(|| panic!("{id} not listed:\n{list}"));
        assert_eq!(&row[1..5], [name, kind, "ec-p256", "active"]);
    }
    let list = cli_json(&sb, &server, &["ca", "list"]);
    let mut ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(c, "id"))
        .collect();
    ids.sort_unstable();
    let mut want = vec![root_id.as_str(), inter_id.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);

    // The root certificate, for openssl.
    let shown = cli_ok(
        &sb,
        &server,
        &["ca", "show", &root_id, "--cert-out", "root.pem"],
    )
    .stdout;
    assert_eq!(field(&shown, "ID"), root_id);
    assert_eq!(field(&shown, "Can issue"), "true");
    assert!(
        std::fs::read_to_string(sb.path("root.pem"))
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    // Sign a PEM CSR: certificate on stdout, chain to a file, serial on stderr.
    let csr = make_csr(&sb, "leaf", "device-1");
    let signed = cli_ok(
        &sb,
        &server,
        &[
            "cert",
            "sign",
            "--ca",
            &inter_id,
            "--csr",
            &csr,
            "--san",
            "dns:device-1.example",
            "--chain-out",
            "chain.pem",
        ],
    );
    assert!(signed.stdout.starts_with("-----BEGIN CERTIFICATE-----"));
    std::fs::write(sb.path("leaf.pem"), &signed.stdout).unwrap();
    assert_verifies(&sb, "root.pem", Some("chain.pem"), "leaf.pem");
    let san = openssl(
        &sb.work,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(san.contains("DNS:device-1.example"), "{san}");
    let serial = signed
        .stderr
        .split_whitespace()
        .skip_while(|w| *w != "serial")
        .nth(1)
        .unwrap_or_else(|| panic!("no serial on stderr: {}", signed.stderr))
        .to_string();
    let openssl_serial = openssl(&sb.work, &["x509", "-in", "leaf.pem", "-noout", "-serial"]);
    assert_eq!(
        openssl_serial
            .trim()
            .trim_start_matches("serial=")
            .to_ascii_lowercase()
            .trim_start_matches('0'),
        serial.trim_start_matches('0')
    );

    // Sign a DER CSR (sent base64) with --out, JSON output.
    openssl(
        &sb.work,
        &["req", "-in", &csr, "-outform", "DER", "-out", "leaf.der"],
    );
    let second = cli_json(
        &sb,
        &server,
        &[
            "cert",
            "sign",
            "--ca",
            &inter_id,
            "--csr",
            "leaf.der",
            "--out",
            "leaf2.pem",
            "--validity-days",
            "10",
        ],
    );
    let serial2 = str_of(&second, "serial").to_string();
    assert_ne!(serial2, serial);
    assert!(str_of(&second, "chain_pem").contains("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        std::fs::read_to_string(sb.path("leaf2.pem")).unwrap(),
        str_of(&second, "certificate_pem")
    );
    assert_verifies(&sb, "root.pem", Some("chain.pem"), "leaf2.pem");

    // Show by serial and by the fingerprint openssl computes (with colons, upper case).
    let by_serial = cli_ok(&sb, &server, &["cert", "show", "--ca", &inter_id, &serial]).stdout;
    assert_eq!(field(&by_serial, "Serial"), serial);
    assert_eq!(field(&by_serial, "Subject"), "CN=device-1");
    assert_eq!(field(&by_serial, "Status"), "active");
    let fp_line = openssl(
        &sb.work,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    let fp = fp_line.trim().rsplit('=').next().unwrap().to_string();
    let by_fp = cli_ok(
        &sb,
        &server,
        &[
            "cert",
            "show",
            "--fingerprint",
            &fp,
            "--cert-out",
            "again.pem",
        ],
    )
    .stdout;
    assert_eq!(field(&by_fp, "Serial"), serial);
    assert_eq!(
        field(&by_fp, "Fingerprint"),
        fp.replace(':', "").to_ascii_lowercase()
    );
    assert_eq!(
        std::fs::read_to_string(sb.path("again.pem")).unwrap(),
        signed.stdout
    );

    // Listing: by CA, paged, all pages, JSON.
    let listed = cli_ok(&sb, &server, &["cert", "list", "--ca", &inter_id]);
    let header: Vec<&str> = listed
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["SERIAL", "CA", "STATUS", "NOT", "AFTER", "SUBJECT"]
    );
    let serials: Vec<String> = rows(&listed.stdout)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(serials, [serial2.clone(), serial.clone()], "newest first");
    assert!(!listed.stderr.contains("next cursor"), "{}", listed.stderr);
    let under_root = cli_ok(&sb, &server, &["cert", "list", "--ca", &root_id]);
    assert!(under_root.stdout.is_empty(), "{}", under_root.stdout);
    let page = cli_ok(
        &sb,
        &server,
        &["cert", "list", "--ca", &inter_id, "--limit", "1"],
    );
    assert_eq!(rows(&page.stdout).len(), 1, "{}", page.stdout);
    assert!(page.stderr.contains("next cursor: "), "{}", page.stderr);
    let all = cli_ok(
        &sb,
        &server,
        &["cert", "list", "--ca", &inter_id, "--limit", "1", "--all"],
    );
    assert_eq!(rows(&all.stdout).len(), 2, "{}", all.stdout);
    assert!(!all.stderr.contains("next cursor"), "{}", all.stderr);
    let all_json = cli_json(
        &sb,
        &server,
        &["cert", "list", "--ca", &inter_id, "--limit", "1", "--all"],
    );
    assert_eq!(all_json["items"].as_array().unwrap().len(), 2);
    assert!(all_json["next_cursor"].is_null());

    // Revoke, then the certificate reads as revoked, and a second revocation is refused.
    let revoked = cli_ok(
        &sb,
        &server,
        &[
            "cert",
            "revoke",
            "--ca",
            &inter_id,
            &serial,
            "--reason",
            "key_compromise",
        ],
    )
    .stdout;
    assert_eq!(field(&revoked, "Status"), "revoked");
    let shown = cli_ok(&sb, &server, &["cert", "show", "--ca", &inter_id, &serial]).stdout;
    assert_eq!(field(&shown, "Status"), "revoked");
    assert_eq!(field(&shown, "Revocation reason"), "key_compromise");
    assert_ne!(field(&shown, "Revoked at"), "-");
    let revoked_only = cli_ok(
        &sb,
        &server,
        &["cert", "list", "--ca", &inter_id, "--status", "revoked"],
    )
    .stdout;
    let revoked_rows = rows(&revoked_only);
    assert_eq!(revoked_rows.len(), 1, "{revoked_only}");
    assert_eq!(revoked_rows[0][0], serial);
    let again = cli_fails(
        &sb,
        &server,
        &["cert", "revoke", "--ca", &inter_id, &serial],
    );
    assert!(again.contains("already revoked"), "{again}");
    assert!(
        again.contains("(HTTP 409 Conflict, urn:shedu:problem:already-revoked, request "),
        "{again}"
    );
}

on_both_backends!(full_flow_create_sign_verify_list_revoke);

fn imported_ca_signs_only_with_its_key(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");

    make_external_ca(&sb, "ext", "Ext");
    let with_key = cli_json(
        &sb,
        &server,
        &[
            "ca", "import", "--name", "ext", "--cert", "ext.pem", "--key", "ext.key",
        ],
    );
    assert_eq!(with_key["can_issue"], true, "{with_key}");
    assert_eq!(str_of(&with_key, "subject"), "CN=Ext");
    let ext_id = str_of(&with_key, "id").to_string();

    let csr = make_csr(&sb, "leaf", "sensor-7");
    cli_ok(
        &sb,
        &server,
        &[
            "cert", "sign", "--ca", &ext_id, "--csr", &csr, "--out", "leaf.pem",
        ],
    );
    assert_verifies(&sb, "ext.pem", None, "leaf.pem");

    // A second external CA without its key: tracked, but it cannot issue.
    make_external_ca(&sb, "nokey", "Ext Without Key");
    let shown = cli_ok(
        &sb,
        &server,
        &["ca", "import", "--name", "nokey", "--cert", "nokey.pem"],
    )
    .stdout;
    assert_eq!(field(&shown, "Can issue"), "false");
    let nokey_id = field(&shown, "ID");
    let err = cli_fails(
        &sb,
        &server,
        &[
            "cert",
            "sign",
            "--ca",
            &nokey_id,
            "--csr",
            &csr,
            "--out",
            "never.pem",
        ],
    );
    assert!(err.contains("HTTP 409"), "{err}");
    assert!(err.contains("urn:shedu:problem:ca-without-key"), "{err}");
    assert!(!sb.path("never.pem").exists());

    // Both are listed.
    let list = cli_json(&sb, &server, &["ca", "list"]);
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
}

on_both_backends!(imported_ca_signs_only_with_its_key);

fn restart_keeps_tls_ca_token_and_ca_keys(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let first = start(&sb, "1");
    let tls_ca = std::fs::read_to_string(sb.data.join("tls").join("ca.pem")).unwrap();
    let token = std::fs::read_to_string(sb.data.join("admin-token")).unwrap();
    let ca = cli_json(
        &sb,
        &first,
        &[
            "ca",
            "create",
            "--name",
            "plant",
            "--key-type",
            "ec-p384",
            "--cn",
            "Plant CA",
        ],
    );
    let ca_id = str_of(&ca, "id").to_string();
    drop(first);

    let second = start(&sb, "2");
    assert_eq!(
        std::fs::read_to_string(sb.data.join("tls").join("ca.pem")).unwrap(),
        tls_ca
    );
    assert_eq!(
        std::fs::read_to_string(sb.data.join("admin-token")).unwrap(),
        token
    );
    let list = cli_ok(&sb, &second, &["ca", "list"]).stdout;
    assert!(
        rows(&list).iter().any(|r| r[0] == ca_id && r[1] == "plant"),
        "{list}"
    );
    cli_ok(
        &sb,
        &second,
        &["ca", "show", &ca_id, "--cert-out", "plant.pem"],
    );
    let csr = make_csr(&sb, "leaf", "after-restart");
    cli_ok(
        &sb,
        &second,
        &[
            "cert", "sign", "--ca", &ca_id, "--csr", &csr, "--out", "leaf.pem",
        ],
    );
    assert_verifies(&sb, "plant.pem", None, "leaf.pem");
}

on_both_backends!(restart_keeps_tls_ca_token_and_ca_keys);

fn wrong_master_key_stops_start_up(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let first = start(&sb, "1");
    drop(first);
    let key_file = sb.data.join("master.key");
    let original = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(original.trim().len(), 64);
    let other = if original.trim() == "11".repeat(32) {
        "22".repeat(32)
    } else {
        "11".repeat(32)
    };
    std::fs::write(&key_file, other).unwrap();

    let failure = match try_start(&sb, "2") {
        Ok(_) => panic!("shedu serve started with the wrong master key"),
        Err(f) => f,
    };
    assert!(!failure.status.success());
    assert!(
        failure.stderr.contains("master key"),
        "stderr: {}",
        failure.stderr
    );

    // With the right key back, it starts again: the refusal changed nothing.
    std::fs::write(&key_file, original).unwrap();
    let _server = start(&sb, "3");
}

on_both_backends!(wrong_master_key_stops_start_up);

/// A log written to a file (or a pipe) is plain text: no ANSI colour codes. See: issue 12.
fn logs_to_a_file_carry_no_terminal_escapes(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");
    drop(server);
    let log = std::fs::read_to_string(sb.root.join("serve-1.stderr")).unwrap();
    assert!(log.contains("INFO"), "the server logged nothing: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in the log file: {log:?}"
    );
}

on_both_backends!(logs_to_a_file_carry_no_terminal_escapes);

/// Every file `serve` leaves in the data folder is private: the folders 0700, the files 0600 (the
/// database and its WAL files on SQLite, sealed keys, certificates, the token, the master key). See:
/// issue 12.
fn every_file_in_the_data_folder_is_private(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");
    // A CA makes the database write (and SQLite create its WAL files) and loads a sealed key.
    cli_ok(
        &sb,
        &server,
        &[
            "ca",
            "create",
            "--name",
            "root",
            "--key-type",
            "ec-p256",
            "--cn",
            "Root",
        ],
    );
    let mut seen = Vec::new();
    let mut dirs = vec![sb.data.clone()];
    while let Some(dir) = dirs.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    seen.sort();
    for expected in ["admin-token", "master.key", "ca.key.sealed", "ca.pem"] {
        assert!(
            seen.iter().any(|f| f == expected),
            "{expected} missing from {seen:?}"
        );
    }
    // The database is in the folder on SQLite (checked above with the rest), and only there.
    let sqlite = sb.postgres.is_none();
    for db_file in ["shedu.db", "shedu.db-wal"] {
        assert_eq!(
            seen.iter().any(|f| f == db_file),
            sqlite,
            "{db_file} in {seen:?}"
        );
    }
    drop(server);
}

on_both_backends!(every_file_in_the_data_folder_is_private);

fn token_file_is_private_and_wrong_or_missing_tokens_are_refused(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");
    let mode = std::fs::metadata(sb.data.join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin-token mode {mode:o}");

    // A wrong token (which appears after --token-file, so it wins) is refused with 401 and not echoed.
    let wrong = "wrong-token-0123456789abcdef";
    let err = cli_fails(&sb, &server, &["ca", "list", "--token", wrong]);
    assert!(err.contains("401") || err.contains("not valid"), "{err}");
    assert!(!err.contains(wrong), "the token was printed: {err}");

    // No token at all, and no ./shedu-data in the working directory.
    let run: Run = shedu_command(&sb.work)
        .args(["ca", "list", "--url", &server.url()])
        .output()
        .unwrap()
        .into();
    assert!(!run.status.success());
    assert!(
        run.stderr
            .contains("not logged in: use `shedu login`, --token-file, --token or SHEDU_TOKEN"),
        "{}",
        run.stderr
    );
}

on_both_backends!(token_file_is_private_and_wrong_or_missing_tokens_are_refused);

fn defaults_come_from_shedu_data_and_environment(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");
    cli_ok(&sb, &server, &["ca", "create", "--name", "r", "--cn", "R"]);

    // From the folder holding shedu-data/, only the URL is needed: token and TLS CA are found there.
    let run: Run = shedu_command(&sb.root)
        .args(["ca", "list", "--url", &format!("{}/api/v1", server.url())])
        .output()
        .unwrap()
        .into();
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        rows(&run.stdout).iter().any(|r| r[1] == "r"),
        "{}",
        run.stdout
    );

    // The same through SHEDU_* variables from anywhere.
    let token = std::fs::read_to_string(sb.data.join("admin-token")).unwrap();
    let run: Run = shedu_command(&sb.work)
        .args(["ca", "list", "--output", "json"])
        .env("SHEDU_URL", server.url())
        .env("SHEDU_TOKEN", token.trim())
        .env("SHEDU_CA_FILE", sb.data.join("tls").join("ca.pem"))
        .output()
        .unwrap()
        .into();
    assert!(run.status.success(), "{}", run.stderr);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["items"][0]["name"], "r");

    // Without the TLS CA the server's certificate is not trusted: the CA file really is what is checked.
    let run: Run = shedu_command(&sb.work)
        .args(["ca", "list", "--url", &server.url()])
        .env("SHEDU_TOKEN", token.trim())
        .output()
        .unwrap()
        .into();
    assert!(!run.status.success(), "{}", run.stdout);
    assert!(run.stderr.contains(&server.url()), "{}", run.stderr);
    assert!(run.stderr.contains("--ca-file"), "{}", run.stderr);
}

on_both_backends!(defaults_come_from_shedu_data_and_environment);

/// Not on the backend matrix: no server and no database take part (the CLI fails before reaching one).
#[test]
fn unreachable_server_error_names_the_url() {
    let sb = Sandbox::new(shedu_testkit::Backend::Sqlite);
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let run: Run = shedu_command(&sb.work)
        .args([
            "cert",
            "list",
            "--url",
            &url,
            "--token",
            "0123456789abcdef0123",
        ])
        .output()
        .unwrap()
        .into();
    assert!(!run.status.success());
    assert!(
        run.stderr
            .contains(&format!("127.0.0.1:{port}/api/v1/certificates")),
        "{}",
        run.stderr
    );
}

/// Not on the backend matrix: `serve --help` opens no database.
#[test]
fn serve_help_lists_every_option() {
    let sb = Sandbox::new(shedu_testkit::Backend::Sqlite);
    let run: Run = shedu_command(&sb.work)
        .args(["serve", "--help"])
        .output()
        .unwrap()
        .into();
    assert!(run.status.success(), "{}", run.stderr);
    for needle in [
        "--data-dir",
        "--listen",
        "--http-listen",
        "--database-url",
        "--tls-cert",
        "--tls-key",
        "--master-key-file",
        "--lifecycle-interval",
        "--config",
        "SHEDU_DATA_DIR",
        "SHEDU_DATABASE_URL",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle} missing from:\n{}",
            run.stdout
        );
    }
}

/// A webhook receiver on loopback (plain HTTP/1.1, one request per connection): hands each request's
/// headers (lower-cased names) and body to the test and answers 204.
fn webhook_receiver() -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            let (head, body) = loop {
                let Ok(n) = conn.read(&mut buf) else {
                    break (String::new(), Vec::new());
                };
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                data.extend_from_slice(&buf[..n]);
                let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if data.len() >= end + 4 + len {
                    break (head, data[end + 4..end + 4 + len].to_vec());
                }
            };
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            if tx.send((head, body)).is_err() {
                break;
            }
        }
    });
    (url, rx)
}

fn rotate_master_rewraps_every_key_and_retires_the_old_one(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    // Webhooks to the test's receiver on loopback are allowed through the environment.
    let allow = [("SHEDU_WEBHOOK_ALLOW", "127.0.0.1/32,::1")];
    let first = try_start_with_env(&sb, "1", &allow).unwrap();
    let ca = cli_json(
        &sb,
        &first,
        &[
            "ca",
            "create",
            "--name",
            "rot",
            "--key-type",
            "ec-p256",
            "--cn",
            "Rotating CA",
        ],
    );
    let ca_id = str_of(&ca, "id").to_string();
    // A webhook subscription: its signing secret is sealed under the master key too (issue 12).
    let (hook_url, hooks) = webhook_receiver();
    let token = std::fs::read_to_string(sb.data.join("admin-token")).unwrap();
    let body = serde_json::json!({"event_types": ["certificate.issued"],
        "channel": {"type": "webhook", "url": hook_url}})
    .to_string();
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--fail-with-body", "--cacert"])
        .arg(sb.data.join("tls").join("ca.pem"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["-H", "Content-Type: application/json", "--data", &body])
        .arg(format!("{}/api/v1/subscriptions", first.url()))
        .output()
        .expect("curl is required (apt-get install curl)");
    assert!(out.status.success(), "{out:?}");
    let sub: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = sub["channel"]["secret"].as_str().unwrap().to_string();
    // A cloud connector: its credentials are sealed under the master key too (issue 22). Its endpoint
    // does not answer, so every sync attempt fails for that reason, once the credentials have opened.
    let settings = serde_json::json!({"name": "rot", "type": "aws_iot", "region": "eu-west-1",
        "endpoint_url": "http://127.0.0.1:9", "ca_ids": [ca_id]});
    let mut with_credentials = settings.clone();
    with_credentials["credentials"] = serde_json::json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"});
    let (create_file, update_file) = (
        sb.data.join("cloud-create.json"),
        sb.data.join("cloud-update.json"),
    );
    std::fs::write(&create_file, with_credentials.to_string()).unwrap();
    std::fs::write(&update_file, settings.to_string()).unwrap();
    let connector = cli_json(
        &sb,
        &first,
        &["cloud", "create", "-f", create_file.to_str().unwrap()],
    );
    let connector_id = str_of(&connector, "id").to_string();
    let tls_ca = std::fs::read_to_string(sb.data.join("tls").join("ca.pem")).unwrap();
    drop(first);
    let key_file = sb.data.join("master.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();

    let out = sb
        .shedu()
        .args(["keys", "rotate-master", "--data-dir"])
        .arg(&sb.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rotate-master: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("re-wrapped 3 sealed database keys and secrets and 2 TLS key files"),
        "{out:?}"
    );
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key.trim(), old_key.trim());
    // The audit key was re-wrapped with the rest: the keyed chain (audit.chain_keyed, ca.create,
    // subscription.create, cloud_connector.create) still verifies under the new master key.
    let verify = || -> Run {
        sb.shedu()
            .args(["audit", "verify", "--data-dir"])
            .arg(&sb.data)
            .output()
            .unwrap()
            .into()
    };
    let run = verify();
    assert!(
        run.status.success()
            && run
                .stdout
                .starts_with("audit chain OK: 4 records (0 legacy SHA-256, 4 keyed)"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(new_key.trim().len(), 64);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Restart under the new key: same TLS CA, the CA still signs, and the webhook is still signed with the
    // same secret.
    let second = try_start_with_env(&sb, "2", &allow).unwrap();
    assert_eq!(
        std::fs::read_to_string(sb.data.join("tls").join("ca.pem")).unwrap(),
        tls_ca
    );
    cli_ok(
        &sb,
        &second,
        &["ca", "show", &ca_id, "--cert-out", "rot.pem"],
    );
    let csr = make_csr(&sb, "leaf", "after-rotation");
    cli_ok(
        &sb,
        &second,
        &[
            "cert", "sign", "--ca", &ca_id, "--csr", &csr, "--out", "leaf.pem",
        ],
    );
    assert_verifies(&sb, "rot.pem", None, "leaf.pem");
    let (head, body) = hooks
        .recv_timeout(Duration::from_secs(30))
        .expect("the certificate.issued webhook");
    let signature = head
        .lines()
        .find_map(|l| l.strip_prefix("x-shedu-signature:"))
        .expect("a signature header")
        .trim()
        .to_string();
    assert!(
        shedu_events::verify_signature(&secret, &body, &signature),
        "signed with the subscription's secret after the rotation"
    );
    // The connector's credentials open under the new key: an attempt (a settings change makes one at
    // once) fails only because its endpoint does not answer.
    cli_ok(
        &sb,
        &second,
        &[
            "cloud",
            "update",
            &connector_id,
            "-f",
            update_file.to_str().unwrap(),
        ],
    );
    let started = std::time::Instant::now();
    let item = loop {
        let state = cli_json(
            &sb,
            &second,
            &["cloud", "state", &connector_id, "--kind", "ca"],
        );
        let item = state["items"][0].clone();
        if item["attempts"].as_i64().unwrap_or(0) >= 1 {
            break item;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no sync attempt: {state}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let why = item["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("cannot reach") && !why.contains("credentials"),
        "{item}"
    );
    // Catching up again, and a deletion that first takes back what the connector registered: with the
    // cloud out of reach, it stays (deregistering) until a plain delete drops it.
    cli_ok(&sb, &second, &["cloud", "backfill", &connector_id]);
    cli_ok(
        &sb,
        &second,
        &["cloud", "delete", &connector_id, "--deregister"],
    );
    let shown = cli_json(&sb, &second, &["cloud", "show", &connector_id]);
    assert_eq!(shown["deregistering"], Value::Bool(true), "{shown}");
    cli_ok(&sb, &second, &["cloud", "delete", &connector_id]);
    let gone = cli(&sb, &second, &["cloud", "show", &connector_id]);
    assert!(!gone.status.success(), "the connector is still there");
    drop(second);

    // The old master key opens nothing any more.
    std::fs::write(&key_file, &old_key).unwrap();
    let failure = match try_start(&sb, "3") {
        Ok(_) => panic!("shedu serve started with the retired master key"),
        Err(f) => f,
    };
    assert!(
        failure.stderr.contains("master key"),
        "stderr: {}",
        failure.stderr
    );
    let run = verify();
    assert_eq!(run.status.code(), Some(2), "{}", run.stdout);
    assert!(run.stderr.contains("master key"), "{}", run.stderr);
    // And rotating from the wrong key changes nothing.
    let out = sb
        .shedu()
        .args(["keys", "rotate-master", "--data-dir"])
        .arg(&sb.data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        !sb.data.join("master.key.new").exists(),
        "a refused rotation leaves nothing behind"
    );
    std::fs::write(&key_file, &new_key).unwrap();
    let _third = start(&sb, "4");
}

on_both_backends!(rotate_master_rewraps_every_key_and_retires_the_old_one);

fn a_passphrase_can_be_the_root_of_trust(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let pass = [("SHEDU_MASTER_PASSPHRASE", "a memorable but long passphrase")];
    let first = match try_start_with_env(&sb, "1", &pass) {
        Ok(s) => s,
        Err(f) => panic!("{}", f.stderr),
    };
    assert!(
        !sb.data.join("master.key").exists(),
        "no key file when a passphrase is the source"
    );
    assert!(sb.data.join("master.salt").exists());
    let ca = cli_json(
        &sb,
        &first,
        &[
            "ca",
            "create",
            "--name",
            "pp",
            "--key-type",
            "ec-p256",
            "--cn",
            "Passphrase CA",
        ],
    );
    let ca_id = str_of(&ca, "id").to_string();
    drop(first);
    let second = match try_start_with_env(&sb, "2", &pass) {
        Ok(s) => s,
        Err(f) => panic!("{}", f.stderr),
    };
    let csr = make_csr(&sb, "leaf", "pp-leaf");
    cli_ok(
        &sb,
        &second,
        &[
            "cert", "sign", "--ca", &ca_id, "--csr", &csr, "--out", "leaf.pem",
        ],
    );
    drop(second);
    let failure = match try_start_with_env(
        &sb,
        "3",
        &[("SHEDU_MASTER_PASSPHRASE", "a different long passphrase")],
    ) {
        Ok(_) => panic!("started with the wrong passphrase"),
        Err(f) => f,
    };
    assert!(failure.stderr.contains("master key"), "{}", failure.stderr);
}

on_both_backends!(a_passphrase_can_be_the_root_of_trust);

/// Stops `server` with SIGTERM, as systemd does, and waits for its clean exit (after its shutdown
/// checkpoint).
fn stop(mut server: Server) {
    let pid = server.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "shedu serve exited with {status} on SIGTERM"
    );
}

/// `shedu audit verify` on the sandbox's data folder and database, with `args`.
fn audit_verify(sb: &Sandbox, args: &[&str]) -> Run {
    sb.shedu()
        .args(["audit", "verify", "--data-dir"])
        .arg(&sb.data)
        .args(args)
        .output()
        .unwrap()
        .into()
}

/// Asserts that `run` exited with `code` and its stderr contains `text`.
fn assert_fails(run: &Run, code: i32, text: &str) {
    assert_eq!(
        run.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains(text),
        "expected {text:?} in: {}",
        run.stderr
    );
}

/// A CA, then `certs` certificates from it: one audit record each.
fn audited_changes(sb: &Sandbox, server: &Server, certs: usize) {
    let ca = cli_json(
        sb,
        server,
        &[
            "ca",
            "create",
            "--name",
            "audited",
            "--key-type",
            "ec-p256",
            "--cn",
            "Audited CA",
        ],
    );
    let ca_id = str_of(&ca, "id").to_string();
    let csr = make_csr(sb, "leaf", "audited-leaf");
    for n in 0..certs {
        let out = format!("leaf-{n}.pem");
        cli_ok(
            sb,
            server,
            &["cert", "sign", "--ca", &ca_id, "--csr", &csr, "--out", &out],
        );
    }
}

/// The head value the server logged in its checkpoint of record `seq`.
fn logged_head(sb: &Sandbox, run: &str, seq: i64) -> String {
    let log = std::fs::read_to_string(sb.root.join(format!("serve-{run}.stderr"))).unwrap();
    let marker = format!("seq={seq} head=");
    log.lines()
        .filter(|l| l.contains("audit checkpoint"))
        .find_map(|l| {
            let at = l.find(&marker)? + marker.len();
            l.get(at..at + 64).map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no checkpoint of record {seq} in the log:\n{log}"))
}

/// `audit verify` names an edited record and a removed one, and, from the checkpoint file or a checkpoint
/// copied from the log, a cut tail, which the chain alone cannot show. See: issue 12 item 8.
fn audit_verify_finds_edits_removals_and_a_cut_tail(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");
    // 1: the chain keyed, 2: the CA, 3-5: certificates.
    audited_changes(&sb, &server, 3);
    stop(server);
    let file = sb.data.join("audit-checkpoints");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let last = std::fs::read_to_string(&file).unwrap();
    assert!(
        last.lines().last().unwrap().starts_with("v1 seq=5 head="),
        "the shutdown checkpoint is the newest line: {last}"
    );

    let run = audit_verify(&sb, &[]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("audit chain OK: 5 records (0 legacy SHA-256, 5 keyed); consistent with ")
            && run.stdout.trim_end().ends_with("the newest at record 5"),
        "{}",
        run.stdout
    );

    // An edit, named; undone, the chain verifies again.
    sb.sql("UPDATE audit_log SET outcome = 'failure' WHERE seq = 2");
    assert_fails(
        &audit_verify(&sb, &[]),
        1,
        "audit chain broken at record 2 (",
    );
    assert!(audit_verify(&sb, &[]).stderr.contains("hash mismatch"));
    sb.sql("UPDATE audit_log SET outcome = 'success' WHERE seq = 2");
    assert!(audit_verify(&sb, &[]).status.success());

    // The tail cut: whole as a chain, but shorter than the checkpoint file and the logged checkpoint say.
    sb.sql("DELETE FROM audit_log WHERE seq = 5");
    let cut = "audit chain truncated: it ends at record 4, but a checkpoint records record 5";
    assert_fails(&audit_verify(&sb, &[]), 1, cut);
    let logged = format!("5:{}", logged_head(&sb, "1", 5));
    let no_file = ["--checkpoint-file", "/dev/null"];
    assert_fails(
        &audit_verify(&sb, &[no_file[0], no_file[1], "--checkpoint", &logged]),
        1,
        cut,
    );
    let alone = audit_verify(&sb, &no_file);
    assert!(
        alone.status.success() && alone.stdout.contains("a cut tail cannot be seen"),
        "without a checkpoint the chain alone looks whole: {}",
        alone.stdout
    );

    // A record removed from the middle.
    sb.sql("DELETE FROM audit_log WHERE seq = 3");
    assert_fails(
        &audit_verify(&sb, &no_file),
        1,
        "gap in the chain: record 3 is missing",
    );

    // Malformed input is "cannot verify", not "tampered".
    assert_fails(
        &audit_verify(&sb, &["--checkpoint", "5:abc"]),
        2,
        "expected <seq>:<64 hex digits>",
    );
}

/// A chain recomputed with plain SHA-256 (all an attacker without the audit key can do) is found; so is a
/// removed audit key, and the fresh key a restart then makes, by the checkpoints it does not authenticate.
fn audit_verify_finds_a_chain_recomputed_without_the_key(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");
    audited_changes(&sb, &server, 1);
    stop(server);
    assert!(audit_verify(&sb, &[]).status.success());

    sb.rechain_with_sha256(1..=3);
    assert_fails(
        &audit_verify(&sb, &[]),
        1,
        "audit chain broken at record 1 (",
    );
    assert!(
        audit_verify(&sb, &[]).stderr.contains("not keyed"),
        "names the rewrite"
    );

    // Remove the key as well, so that everything looks legacy.
    sb.sql("DELETE FROM meta WHERE key = 'audit_key'");
    assert_fails(
        &audit_verify(&sb, &[]),
        1,
        "the database has no audit key, yet checkpoints of its keyed chain exist",
    );
    assert_fails(
        &audit_verify(&sb, &["--checkpoint-file", "/dev/null"]),
        2,
        "the database has no audit key",
    );
    // A restart keys the chain afresh from record 4 on; the checkpoints still tell.
    let server = start(&sb, "2");
    stop(server);
    assert_fails(
        &audit_verify(&sb, &[]),
        1,
        "audit checkpoint 1 is not authenticated by this database's audit key",
    );
}

on_both_backends!(
    audit_verify_finds_edits_removals_and_a_cut_tail,
    audit_verify_finds_a_chain_recomputed_without_the_key,
);

fn rotate_master_moves_a_passphrase_key_to_a_new_passphrase(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let old = [("SHEDU_MASTER_PASSPHRASE", "the first long passphrase")];
    let new = [("SHEDU_MASTER_PASSPHRASE", "the second long passphrase")];
    let first = try_start_with_env(&sb, "1", &old).unwrap_or_else(|f| panic!("{}", f.stderr));
    let ca = cli_json(
        &sb,
        &first,
        &[
            "ca",
            "create",
            "--name",
            "pp",
            "--key-type",
            "ec-p256",
            "--cn",
            "PP CA",
        ],
    );
    let ca_id = str_of(&ca, "id").to_string();
    drop(first);
    let old_salt = std::fs::read(sb.data.join("master.salt")).unwrap();
    let rotate = |env: &[(&str, &str)]| {
        sb.shedu()
            .args(["keys", "rotate-master", "--data-dir"])
            .arg(&sb.data)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };

    // Without the new passphrase nothing happens, and the error names the variable to set.
    let out = rotate(&old);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SHEDU_NEW_MASTER_PASSPHRASE"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(sb.data.join("master.salt")).unwrap(),
        old_salt
    );
    assert!(
        !sb.data.join("master.key").exists(),
        "no key file appears beside a passphrase"
    );

    let out = rotate(&[
        old[0],
        ("SHEDU_NEW_MASTER_PASSPHRASE", "the second long passphrase"),
    ]);
    assert!(
        out.status.success(),
        "rotate-master: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-wrapped"),
        "{out:?}"
    );
    assert_ne!(
        std::fs::read(sb.data.join("master.salt")).unwrap(),
        old_salt
    );
    assert!(!sb.data.join("master.key").exists());

    // The new passphrase opens everything; the old one opens nothing.
    let second = try_start_with_env(&sb, "2", &new).unwrap_or_else(|f| panic!("{}", f.stderr));
    let csr = make_csr(&sb, "leaf", "pp-rotated");
    cli_ok(
        &sb,
        &second,
        &[
            "cert", "sign", "--ca", &ca_id, "--csr", &csr, "--out", "leaf.pem",
        ],
    );
    drop(second);
    match try_start_with_env(&sb, "3", &old) {
        Ok(_) => panic!("started with the retired passphrase"),
        Err(f) => assert!(f.stderr.contains("master key"), "{}", f.stderr),
    }
}

on_both_backends!(rotate_master_moves_a_passphrase_key_to_a_new_passphrase);

/// A name that reached the database behind the API's back (an older version, a restore, a hand edit) is
/// printed with its control characters escaped: the server's data never drives the terminal. See: issue 12
/// (item 12).
fn names_from_the_database_never_drive_the_terminal(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "1");
    let ca = cli_json(
        &sb,
        &server,
        &[
            "ca",
            "create",
            "--name",
            "plain",
            "--key-type",
            "ec-p256",
            "--cn",
            "Plain",
        ],
    );
    let chr = match backend {
        shedu_testkit::Backend::Sqlite => "char",
        shedu_testkit::Backend::Postgres => "chr",
    };
    sb.sql(&format!(
        "UPDATE cas SET name = 'evil' || {chr}(27) || ']0;pwned' || {chr}(7) || {chr}(27) || '[2J' \
         WHERE id = '{}'",
        str_of(&ca, "id")
    ));
    let list = cli_ok(&sb, &server, &["ca", "list"]).stdout;
    assert!(list.contains("evil"), "the CA is listed: {list}");
    assert!(
        !list.contains('\u{1b}') && !list.contains('\u{7}'),
        "{list:?}"
    );
    assert!(
        list.contains("\\u{1b}]0;pwned\\u{7}"),
        "shown escaped: {list}"
    );
}

on_both_backends!(names_from_the_database_never_drive_the_terminal);

/// `--log-format json` writes one JSON object per line, with the level and the message. See: issue 12.
#[test]
fn json_logs_are_one_object_per_line() {
    let sb = Sandbox::new(shedu_testkit::Backend::Sqlite);
    let server = try_start_with_env(&sb, "1", &[("SHEDU_LOG_FORMAT", "json")])
        .unwrap_or_else(|f| panic!("{}", f.stderr));
    drop(server);
    let log = std::fs::read_to_string(sb.root.join("serve-1.stderr")).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "the server logged: {log}");
    for line in lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
}

/// Creates user `name` with `role` and the password `a long enough secret` through the API (curl).
fn create_user(sb: &Sandbox, server: &Server, name: &str, role: &str) {
    let token = std::fs::read_to_string(sb.data.join("admin-token")).unwrap();
    let body =
        format!(r#"{{"username":"{name}","password":"a long enough secret","role":"{role}"}}"#);
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert"])
        .arg(sb.data.join("tls").join("ca.pem"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["-H", "Content-Type: application/json", "--data", &body])
        .arg(format!("{}/api/v1/users", server.url()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The CLI run from the sandbox's work folder (no `shedu-data` there) with only a config folder: what a
/// logged-in operator types.
fn as_operator(sb: &Sandbox, config: &Path, args: &[&str], stdin: &str) -> Run {
    use std::io::Write;
    let mut child = shedu_command(&sb.work)
        .env("SHEDU_CONFIG_DIR", config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().into()
}

fn config_json(config: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(config.join("config.json")).unwrap()).unwrap()
}

// See: issue 21 (login, contexts, transparent refresh, exit codes).
fn login_saves_a_private_session_that_refreshes_itself_and_contexts_switch_servers(
    backend: shedu_testkit::Backend,
) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "first");
    create_user(&sb, &server, "ops", "operator");
    let config = sb.root.join("config");
    let ca = sb.data.join("tls").join("ca.pem");
    let ca = ca.to_str().unwrap();
    let url = server.url();

    let before = as_operator(&sb, &config, &["ca", "list"], "");
    assert_fails(&before, 1, "not logged in");

    let wrong = as_operator(
        &sb,
        &config,
        &[
            "login",
            "--url",
            &url,
            "--ca-file",
            ca,
            "-u",
            "ops",
            "--password-stdin",
        ],
        "not the password\n",
    );
    assert_fails(&wrong, 3, "invalid user name or password (HTTP 401");
    assert!(
        !config.join("config.json").exists(),
        "nothing saved on a failed login"
    );

    let run = as_operator(
        &sb,
        &config,
        &[
            "login",
            "--url",
            &url,
            "--ca-file",
            ca,
            "-u",
            "ops",
            "--password-stdin",
        ],
        "a long enough secret\n",
    );
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stdout.contains("as ops (context default)"),
        "{}",
        run.stdout
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&config), 0o700);
    assert_eq!(mode(&config.join("config.json")), 0o600);
    let saved = std::fs::read_to_string(config.join("config.json")).unwrap();
    assert!(!saved.contains("a long enough secret"), "no password saved");

    let created = as_operator(
        &sb,
        &config,
        &["ca", "create", "--name", "first-ca", "--cn", "First"],
        "",
    );
    assert!(created.status.success(), "{}", created.stderr);

    // An access token the server no longer takes: the CLI renews the session once and carries on.
    let mut doc = config_json(&config);
    let session = doc["contexts"]["default"]["session"].clone();
    doc["contexts"]["default"]["session"]["token"] = Value::from("not-a-token");
    std::fs::write(config.join("config.json"), doc.to_string()).unwrap();
    let listed = as_operator(&sb, &config, &["ca", "list"], "");
    assert!(listed.status.success(), "{}", listed.stderr);
    assert!(listed.stdout.contains("first-ca"), "{}", listed.stdout);
    let renewed = config_json(&config)["contexts"]["default"]["session"].clone();
    assert_ne!(renewed["token"], "not-a-token");
    assert_ne!(
        renewed["refresh_token"], session["refresh_token"],
        "refresh tokens are single-use"
    );
    assert_eq!(
        mode(&config.join("config.json")),
        0o600,
        "still private after the renewal"
    );

    // A second platform, reached through a context holding a token file.
    let sb2 = Sandbox::new(backend);
    let other = start(&sb2, "second");
    let ca2 = sb2.data.join("tls").join("ca.pem");
    let token2 = sb2.data.join("admin-token");
    let add = as_operator(
        &sb,
        &config,
        &[
            "context",
            "add",
            "plant-2",
            "--url",
            &other.url(),
            "--ca-file",
            ca2.to_str().unwrap(),
            "--token-file",
            token2.to_str().unwrap(),
        ],
        "",
    );
    assert!(add.status.success(), "{}", add.stderr);
    let use_it = as_operator(&sb, &config, &["context", "use", "plant-2"], "");
    assert!(use_it.status.success(), "{}", use_it.stderr);
    let created = as_operator(
        &sb,
        &config,
        &["ca", "create", "--name", "second-ca", "--cn", "Second"],
        "",
    );
    assert!(created.status.success(), "{}", created.stderr);
    let there = as_operator(&sb, &config, &["ca", "list"], "").stdout;
    assert!(
        there.contains("second-ca") && !there.contains("first-ca"),
        "{there}"
    );
    let here = as_operator(&sb, &config, &["ca", "list", "--context", "default"], "").stdout;
    assert!(
        here.contains("first-ca") && !here.contains("second-ca"),
        "{here}"
    );
    let list = as_operator(&sb, &config, &["context", "list", "--output", "json"], "");
    let list: Value = serde_json::from_str(&list.stdout).unwrap();
    let current: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["current"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(current, ["plant-2"]);

    // A context's credentials never go to another server named with --url.
    let elsewhere = as_operator(
        &sb,
        &config,
        &["ca", "list", "--url", &url, "--ca-file", ca],
        "",
    );
    assert_fails(&elsewhere, 1, "not logged in");

    // Exit codes: a refusal (4xx) is 3.
    let missing = as_operator(&sb, &config, &["ca", "show", "no-such-ca"], "");
    assert_fails(&missing, 3, "(HTTP 404");

    // Logging out forgets the credentials, not the server.
    let out = as_operator(&sb, &config, &["logout"], "");
    assert!(out.status.success(), "{}", out.stderr);
    assert_fails(
        &as_operator(&sb, &config, &["ca", "list"], ""),
        1,
        "not logged in",
    );
    assert_eq!(
        config_json(&config)["contexts"]["plant-2"]["url"],
        other.url()
    );
}

on_both_backends!(login_saves_a_private_session_that_refreshes_itself_and_contexts_switch_servers);

// See: issue 21: the password is typed on a terminal, without echo.
fn login_asks_the_password_on_a_terminal(backend: shedu_testkit::Backend) {
    use std::io::{Read, Write};
    let sb = Sandbox::new(backend);
    let server = start(&sb, "tty");
    create_user(&sb, &server, "ops", "operator");
    let config = sb.root.join("config");
    let ca = sb.data.join("tls").join("ca.pem");
    // `script` gives the CLI a pseudo-terminal and types what it reads from its own standard input.
    let login = format!(
        "{SHEDU} login --url {} --ca-file {} -u ops",
        server.url(),
        ca.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &login, "/dev/null"])
        .current_dir(&sb.work)
        .env("SHEDU_CONFIG_DIR", &config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("script (util-linux) is required: {e}"));
    // What the terminal shows, as it comes.
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Typed once the prompt is up and the CLI had a moment to turn echo off (rpassword prints the prompt,
    // then switches echo off): typing earlier is echoed by the terminal, whatever the CLI does, as it
    // would be for a person typing ahead.
    while !String::from_utf8_lossy(&shown).contains("Password:") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => shown.extend(bytes),
            Err(_) => panic!("no prompt: {}", String::from_utf8_lossy(&shown)),
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough secret\n")
        .unwrap();
    let status = child.wait().unwrap();
    while let Ok(bytes) = rx.recv_timeout(Duration::from_secs(5)) {
        shown.extend(bytes);
    }
    let shown = String::from_utf8_lossy(&shown);
    assert!(status.success(), "{shown}");
    assert!(shown.contains("Logged in to"), "{shown}");
    assert!(
        !shown.contains("a long enough secret"),
        "the password is not echoed: {shown}"
    );
    let listed = as_operator(&sb, &config, &["ca", "list", "--output", "json"], "");
    assert!(listed.status.success(), "{}", listed.stderr);
}

on_both_backends!(login_asks_the_password_on_a_terminal);

// See: issue 21: completion scripts load in bash.
#[test]
fn the_bash_completion_script_loads() {
    let dir = tempfile::tempdir().unwrap();
    let script = completion(dir.path(), "bash");
    // Loaded, and asked what `shedu ce<TAB>` and `shedu events t<TAB>` complete to.
    let loaded = shell(
        dir.path(),
        "bash",
        &format!(
            "source {script} && complete -p shedu >/dev/null && \
             COMP_WORDS=(shedu ce); COMP_CWORD=1; COMP_LINE='shedu ce'; COMP_POINT=8; _shedu shedu ce shedu && echo ${{COMPREPLY[@]}} && \
             COMP_WORDS=(shedu events t); COMP_CWORD=2; COMP_LINE='shedu events t'; COMP_POINT=14; _shedu shedu t events && echo ${{COMPREPLY[@]}}"
        ),
    );
    assert_eq!(loaded, "cert\ntail\n");
}

/// `shedu completion <shell>` written to `<dir>/shedu.<shell>`; returns the file name.
fn completion(dir: &Path, shell_name: &str) -> String {
    let out = shedu_command(dir)
        .args(["completion", shell_name])
        .output()
        .unwrap();
    assert!(out.status.success());
    let file = format!("shedu.{shell_name}");
    std::fs::write(dir.join(&file), &out.stdout).unwrap();
    file
}

/// Runs `script` in `shell_name` (Debian's bash, zsh, fish) in `dir`, asserting success and silence on
/// stderr; returns stdout.
fn shell(dir: &Path, shell_name: &str, script: &str) -> String {
    let out = Command::new(shell_name)
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{shell_name} (apt-get install {shell_name}): {e}"));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{shell_name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// See: issue 21 (completion scripts for zsh and fish load, and complete subcommands).
#[test]
fn the_zsh_and_fish_completion_scripts_load() {
    let dir = tempfile::tempdir().unwrap();
    let zsh = completion(dir.path(), "zsh");
    let defined = shell(
        dir.path(),
        "zsh",
        &format!("autoload -U compinit && compinit -u -D && source ./{zsh} && whence -w _shedu"),
    );
    assert_eq!(defined.trim(), "_shedu: function");
    let fish = completion(dir.path(), "fish");
    let offered = shell(
        dir.path(),
        "fish",
        &format!("source {fish}; complete -C 'shedu events t'"),
    );
    assert!(
        offered
            .lines()
            .any(|l| l.split('\t').next() == Some("tail")),
        "{offered}"
    );
}

// See: issue 21 (a subcommand for users and API keys; `-q` for scripts; exit codes).
fn users_and_api_keys_from_the_command_line(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "users");
    let config = sb.root.join("config");
    let as_admin = |args: &[&str], stdin: &str| {
        let mut all = args.to_vec();
        let token = sb.data.join("admin-token");
        let ca = sb.data.join("tls").join("ca.pem");
        let url = server.url();
        all.extend(["--url", &url, "--token-file", token.to_str().unwrap()]);
        all.extend(["--ca-file", ca.to_str().unwrap()]);
        as_operator(&sb, &config, &all, stdin)
    };
    let made = as_admin(
        &[
            "user",
            "create",
            "ops",
            "--role",
            "operator",
            "--password-stdin",
            "-q",
        ],
        "a long enough secret\n",
    );
    assert!(made.status.success(), "{}", made.stderr);
    let id = made.stdout.trim().to_string();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "-q prints the id only: {:?}",
        made.stdout
    );
    let short = as_admin(
        &[
            "user",
            "create",
            "tiny",
            "--role",
            "operator",
            "--password-stdin",
        ],
        "short\n",
    );
    assert_fails(&short, 3, "(HTTP 400");

    let listed = as_admin(&["user", "list"], "");
    assert!(
        rows(&listed.stdout)
            .iter()
            .any(|r| r[1] == "ops" && r[2] == "operator"),
        "{}",
        listed.stdout
    );
    let ids = as_admin(&["user", "list", "-q"], "").stdout;
    assert_eq!(ids.lines().collect::<Vec<_>>(), [id.as_str()]);

    let role = as_admin(&["user", "role", "ops", "auditor", "--output", "json"], "");
    let role: Value = serde_json::from_str(&role.stdout).unwrap();
    assert_eq!(role["role"], "auditor");

    // The user logs in and changes their own password.
    let login = |password: &str| {
        let ca = sb.data.join("tls").join("ca.pem");
        as_operator(
            &sb,
            &config,
            &[
                "login",
                "--url",
                &server.url(),
                "--ca-file",
                ca.to_str().unwrap(),
                "-u",
                "ops",
                "--password-stdin",
            ],
            &format!("{password}\n"),
        )
    };
    assert!(login("a long enough secret").status.success());
    let changed = as_operator(
        &sb,
        &config,
        &["user", "passwd", "--password-stdin"],
        "a long enough secret\nan even longer secret\n",
    );
    assert!(changed.status.success(), "{}", changed.stderr);
    assert_fails(&login("a long enough secret"), 3, "(HTTP 401");
    assert!(login("an even longer secret").status.success());
    // An auditor may not manage users: a refusal, exit code 3.
    let refused = as_operator(&sb, &config, &["user", "list"], "");
    assert_fails(&refused, 3, "(HTTP 403");

    let disabled = as_admin(&["user", "disable", "ops"], "");
    assert!(disabled.status.success(), "{}", disabled.stderr);
    assert_fails(
        &as_operator(&sb, &config, &["ca", "list"], ""),
        3,
        "(HTTP 401",
    );
    assert!(as_admin(&["user", "enable", &id], "").status.success());
    assert!(login("an even longer secret").status.success());
    assert!(as_admin(&["user", "delete", "ops"], "").status.success());
    assert_fails(
        &as_admin(&["user", "delete", "ops"], ""),
        1,
        "no user named \"ops\"",
    );

    // An API key written to a private file, used as a token file, then revoked.
    let key_file = sb.path("ci.key");
    let made = as_admin(
        &[
            "api-key",
            "create",
            "ci",
            "--role",
            "operator",
            "--expires-in-days",
            "30",
            "--out",
            key_file.to_str().unwrap(),
        ],
        "",
    );
    assert!(made.status.success(), "{}", made.stderr);
    let key_id = made.stdout.trim().to_string();
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = as_admin(
        &[
            "api-key",
            "create",
            "ci2",
            "--role",
            "operator",
            "--out",
            key_file.to_str().unwrap(),
        ],
        "",
    );
    assert_fails(&again, 1, "cannot write");
    let ca = sb.data.join("tls").join("ca.pem");
    let with_key = |args: &[&str]| {
        let mut all = args.to_vec();
        let url = server.url();
        all.extend([
            "--url",
            &url,
            "--token-file",
            key_file.to_str().unwrap(),
            "--ca-file",
            ca.to_str().unwrap(),
        ]);
        as_operator(&sb, &config, &all, "")
    };
    assert!(with_key(&["ca", "list"]).status.success());
    let keys = as_admin(&["api-key", "list"], "").stdout;
    assert!(keys.contains("ci") && keys.contains(&key_id), "{keys}");
    let secret = std::fs::read_to_string(&key_file).unwrap();
    assert!(!keys.contains(secret.trim()), "list never shows a secret");
    assert!(
        as_admin(&["api-key", "revoke", &key_id], "")
            .status
            .success()
    );
    assert_fails(&with_key(&["ca", "list"]), 3, "(HTTP 401");
}

on_both_backends!(users_and_api_keys_from_the_command_line);

// See: issue 21 (ra, device and group subcommands; a CSV import of 10,000 devices with two bad rows, both
// reported, the rest imported, and a second run that only skips).
fn ras_devices_groups_and_a_bulk_import(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "devices");
    let ca = cli_json(
        &sb,
        &server,
        &["ca", "create", "--name", "line", "--cn", "Line CA"],
    );
    let ca = str_of(&ca, "id").to_string();
    let settings = sb.path("ra.json");
    std::fs::write(
        &settings,
        format!(
            r#"{{"name": "line-1", "ca_ids": ["{ca}"], "enrollment": {{"auth_modes": ["client_certificate"],
            "bootstrap_ca_ids": ["{ca}"], "auto_register": true}}}}"#
        ),
    )
    .unwrap();
    let ra = cli_ok(
        &sb,
        &server,
        &["ra", "create", "--file", settings.to_str().unwrap(), "-q"],
    )
    .stdout;
    let ra = ra.trim().to_string();
    let shown = cli_ok(&sb, &server, &["ra", "show", &ra]).stdout;
    assert!(
        shown.contains("line-1") && shown.contains("auto_register"),
        "{shown}"
    );

    let made = cli_json(
        &sb,
        &server,
        &[
            "device",
            "create",
            "plc-1",
            "--ra",
            &ra,
            "--alias",
            "Press 1",
            "--tag",
            "hall-a",
            "--metadata",
            "floor=2",
            "--metadata",
            "vendor=acme",
        ],
    );
    assert_eq!(
        made["metadata"],
        serde_json::json!({"floor": 2, "vendor": "acme"})
    );
    assert_eq!(made["status"], "pending_provisioning");
    let updated = cli_json(
        &sb,
        &server,
        &["device", "update", "plc-1", "--tag", "hall-b"],
    );
    assert_eq!(updated["tags"], serde_json::json!(["hall-b"]));
    let secret = cli_ok(&sb, &server, &["device", "enrollment-secret", "plc-1"]).stdout;
    assert!(secret.trim().len() >= 20, "{secret}");
    let group = cli_ok(
        &sb,
        &server,
        &[
            "group", "create", "--name", "hall b", "--tag", "hall-b", "-q",
        ],
    )
    .stdout;
    let counts = cli_ok(&sb, &server, &["group", "show", group.trim()]).stdout;
    assert!(field(&counts, "Devices") == "1", "{counts}");

    // 10,000 rows, two of them bad.
    let csv = sb.path("devices.csv");
    let mut text = String::from("id,ra_id,alias,tags,metadata\n");
    for i in 0..10_000 {
        match i {
            1234 => text.push_str("meter-1234,no-such-ra,,,\n"),
            5678 => text.push_str(&format!("meter-{i},{ra},,,[1]\n")),
            _ => text.push_str(&format!(
                "meter-{i},{ra},Meter {i},meters;hall-a,\"{{\"\"lot\"\": {}}}\"\n",
                i % 7
            )),
        }
    }
    std::fs::write(&csv, text).unwrap();
    let run = cli(&sb, &server, &["device", "import", csv.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("9998 registered, 0 already registered, 2 failed, 0 not sent"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("line 1236: ") && run.stderr.contains("no-such-ra"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("line 5680: metadata is not a JSON object"),
        "{}",
        run.stderr
    );
    // Run again (as after an interruption): rows already registered are skipped, new ones registered.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut partial: String = text.lines().take(101).map(|l| format!("{l}\n")).collect();
    partial.push_str(&format!("meter-new,{ra},,,\n"));
    let resumed = sb.path("resumed.csv");
    std::fs::write(&resumed, partial).unwrap();
    let again = cli_ok(
        &sb,
        &server,
        &["device", "import", resumed.to_str().unwrap()],
    );
    assert!(
        again
            .stdout
            .contains("1 registered, 100 already registered, 0 failed"),
        "{}",
        again.stdout
    );
    let meter = cli_json(&sb, &server, &["device", "show", "meter-42"]);
    assert_eq!(meter["alias"], "Meter 42");
    assert_eq!(meter["tags"], serde_json::json!(["meters", "hall-a"]));
    assert_eq!(meter["metadata"], serde_json::json!({"lot": 0}));
    let page = cli_json(
        &sb,
        &server,
        &["device", "list", "--tag", "meters", "--limit", "5"],
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert!(page["next_cursor"].is_string());

    // An RA with devices cannot be deleted: a refusal, exit code 3.
    let refused = cli(&sb, &server, &["ra", "delete", &ra]);
    assert_fails(&refused, 3, "(HTTP 409");
    let retired = cli_json(&sb, &server, &["device", "decommission", "plc-1"]);
    assert_eq!(retired["status"], "decommissioned");
    cli_ok(&sb, &server, &["group", "delete", group.trim()]);
    let groups = cli_ok(&sb, &server, &["group", "list", "-q"]).stdout;
    assert!(groups.trim().is_empty(), "{groups}");
}

on_both_backends!(ras_devices_groups_and_a_bulk_import);

// See: issue 21 (`events list`, `audit list`; the request id of an error line finds its audit record).
fn events_and_audit_from_the_command_line(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "logs");
    let ca = cli_json(
        &sb,
        &server,
        &["ca", "create", "--name", "logged", "--cn", "Logged CA"],
    );
    let ca = str_of(&ca, "id").to_string();
    let events = cli_json(&sb, &server, &["events", "list", "--type", "ca.created"]);
    let listed = events["items"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{events}");
    assert_eq!(listed[0]["subject"], format!("cas/{ca}"));
    // --output yaml is the same document, as an outside YAML parser (PyYAML) reads it.
    let yaml = cli_ok(&sb, &server, &["events", "list", "--output", "yaml"]).stdout;
    assert_eq!(
        yaml_as_json(&yaml),
        cli_json(&sb, &server, &["events", "list"])
    );
    let yaml = cli_ok(&sb, &server, &["ca", "show", &ca, "--output", "yaml"]).stdout;
    assert_eq!(
        yaml_as_json(&yaml),
        cli_json(&sb, &server, &["ca", "show", &ca])
    );
    let seqs = cli_ok(&sb, &server, &["events", "list", "-q"]).stdout;
    assert!(
        seqs.lines().count() >= 1 && seqs.lines().all(|l| l.parse::<i64>().is_ok()),
        "{seqs}"
    );

    let table = cli_ok(&sb, &server, &["audit", "list", "--action", "ca.create"]).stdout;
    let rows = rows(&table);
    assert_eq!(rows.len(), 1, "{table}");
    assert!(
        rows[0].contains(&"ca.create".to_string()) && rows[0].contains(&"success".to_string()),
        "{table}"
    );

    // A refused change names its request; the audit finds the record by that id.
    let err = cli_fails(
        &sb,
        &server,
        &["cert", "revoke", "--ca", "no-such-ca", "0a"],
    );
    let id = err
        .split("request ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no request id in {err}"))
        .to_string();
    let found = cli_json(&sb, &server, &["audit", "list", "--request-id", &id]);
    let records = found["items"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{found}");
    assert_eq!(records[0]["outcome"], "failure");
}

on_both_backends!(events_and_audit_from_the_command_line);

/// A YAML document read by PyYAML (Debian's python3-yaml, the system Python's), as JSON.
fn yaml_as_json(yaml: &str) -> Value {
    use std::io::Write;
    let mut child = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (apt-get install python3-yaml)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML could not read:\n{yaml}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A `shedu events tail` child whose stdout lines arrive on a channel; killed when dropped.
struct Tail {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tail {
    fn start(sb: &Sandbox, server: &Server, args: &[&str]) -> Tail {
        let mut child = shedu_command(&sb.work)
            .args(["events", "tail"])
            .args(args)
            .arg("--url")
            .arg(server.url())
            .arg("--token-file")
            .arg(sb.data.join("admin-token"))
            .arg("--ca-file")
            .arg(sb.data.join("tls").join("ca.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tail { child, lines }
    }

    /// The next line printed, within a minute (a loaded machine runs several servers at once).
    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("events tail printed nothing within 60 s")
    }
}

// See: issue 21 (`events tail` follows the SSE stream: the backlog after --after, then live events).
fn events_tail_follows_the_live_stream(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "tail");
    let before = cli_json(
        &sb,
        &server,
        &["ca", "create", "--name", "before", "--cn", "Before"],
    );
    let tail = Tail::start(
        &sb,
        &server,
        &["--after", "0", "--type", "ca.created", "--output", "json"],
    );
    let replayed: Value = serde_json::from_str(&tail.next()).unwrap();
    assert_eq!(replayed["type"], "ca.created");
    assert_eq!(
        replayed["subject"],
        format!("cas/{}", str_of(&before, "id"))
    );
    // The stream is open (the backlog came through it): an event made now arrives live.
    let after = cli_json(
        &sb,
        &server,
        &["ca", "create", "--name", "after", "--cn", "After"],
    );
    let live: Value = serde_json::from_str(&tail.next()).unwrap();
    assert_eq!(live["subject"], format!("cas/{}", str_of(&after, "id")));
    assert!(
        tail.lines.recv_timeout(Duration::from_secs(2)).is_err(),
        "the type filter let another event through, or an event came twice"
    );
    drop(tail);

    // The table form: SEQ, time, type and subject on one line; -q only the SEQ.
    let tail = Tail::start(&sb, &server, &["--after", "0", "--type", "ca.created"]);
    let line = tail.next();
    let cells: Vec<&str> = line.split("  ").collect();
    assert_eq!(cells.len(), 4, "{line}");
    assert!(
        cells[0].parse::<i64>().is_ok() && cells[2] == "ca.created",
        "{line}"
    );
    drop(tail);

    // A refused stream is an error with the refusal's exit code, not a retry loop.
    let run: Run = shedu_command(&sb.work)
        .args([
            "events",
            "tail",
            "--url",
            &server.url(),
            "--token",
            "not-a-token",
        ])
        .arg("--ca-file")
        .arg(sb.data.join("tls").join("ca.pem"))
        .output()
        .unwrap()
        .into();
    assert_fails(&run, 3, "401");
}

on_both_backends!(events_tail_follows_the_live_stream);

// See: issue 21 (`shedu status`: version, database, sinks with lag, counts by status).
fn status_counts_what_the_server_holds(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "status");
    let empty = cli_json(&sb, &server, &["status"]);
    assert_eq!(empty["version"], env!("CARGO_PKG_VERSION"));
    let kind = match backend {
        shedu_testkit::Backend::Sqlite => "sqlite",
        shedu_testkit::Backend::Postgres => "postgresql",
    };
    assert_eq!(empty["database"]["kind"], kind, "{empty}");
    assert_eq!(empty["certificates"], serde_json::json!({}), "{empty}");

    let ca = cli_json(
        &sb,
        &server,
        &["ca", "create", "--name", "counted", "--cn", "Counted"],
    );
    let ca = str_of(&ca, "id").to_string();
    for name in ["a", "b"] {
        let csr = make_csr(&sb, name, name);
        cli_ok(&sb, &server, &["cert", "sign", "--ca", &ca, "--csr", &csr]);
    }
    let listed = cli_json(&sb, &server, &["cert", "list", "--ca", &ca]);
    let serial = str_of(&listed["items"][0], "serial").to_string();
    cli_ok(&sb, &server, &["cert", "revoke", "--ca", &ca, &serial]);
    let settings = sb.path("ra.json");
    std::fs::write(
        &settings,
        format!(r#"{{"name": "counted", "ca_ids": ["{ca}"], "enrollment": {{"auth_modes": ["client_certificate"], "bootstrap_ca_ids": ["{ca}"]}}}}"#),
    )
    .unwrap();
    let ra = cli_ok(
        &sb,
        &server,
        &["ra", "create", "-f", settings.to_str().unwrap(), "-q"],
    )
    .stdout;
    for id in ["m-1", "m-2"] {
        cli_ok(&sb, &server, &["device", "create", id, "--ra", ra.trim()]);
    }
    cli_ok(&sb, &server, &["device", "decommission", "m-2"]);

    let status = cli_json(&sb, &server, &["status"]);
    assert_eq!(status["devices"]["pending_provisioning"], 1, "{status}");
    assert_eq!(status["devices"]["decommissioned"], 1, "{status}");
    assert_eq!(status["cas"]["active"], 1, "{status}");
    assert_eq!(status["certificates"]["active"], 1, "{status}");
    assert_eq!(status["certificates"]["revoked"], 1, "{status}");
    let head = status["events"]["head"].as_i64().unwrap();
    assert!(head >= 4, "a CA, two issuances and a revocation: {status}");
    for sink in status["events"]["sinks"].as_array().unwrap() {
        let (position, lag) = (
            sink["position"].as_i64().unwrap(),
            sink["lag"].as_i64().unwrap(),
        );
        assert_eq!(lag, (head - position).max(0), "{status}");
    }
    let table = cli_ok(&sb, &server, &["status"]).stdout;
    assert_eq!(
        field(&table, "Certificates"),
        "active 1, revoked 1",
        "{table}"
    );
    assert!(field(&table, "Database").starts_with(kind), "{table}");
    assert_eq!(field(&table, "Health"), "ready", "{table}");
    assert_eq!(
        field(&table, "Devices"),
        "decommissioned 1, pending_provisioning 1",
        "{table}"
    );
    let yaml = yaml_as_json(&cli_ok(&sb, &server, &["status", "--output", "yaml"]).stdout);
    assert_eq!(yaml["devices"], status["devices"], "{yaml}");
}

on_both_backends!(status_counts_what_the_server_holds);

/// curl in the test's work folder trusting the server's TLS CA, with extra `args`; asserts success and
/// returns the body.
fn curl_ok(sb: &Sandbox, args: &[&str]) -> String {
    let out = Command::new("curl")
        .current_dir(&sb.work)
        .args(["-fsS", "--cacert"])
        .arg(sb.data.join("tls").join("ca.pem"))
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// See: issue 21 (`shedu acme eab` and `shedu connector`, the wave 2 enrolment protocols).
fn acme_and_connector_from_the_command_line(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "protocols");
    let token = std::fs::read_to_string(sb.data.join("admin-token")).unwrap();
    let auth = format!("Authorization: Bearer {}", token.trim());

    // ACME: an RA that requires EAB; a key made, listed (never its HMAC), deleted.
    let ca = cli_json(
        &sb,
        &server,
        &["ca", "create", "--name", "web", "--cn", "Web CA"],
    );
    let ra = serde_json::json!({"name": "web", "ca_ids": [str_of(&ca, "id")],
        "enrollment": {"auth_modes": ["one_time_secret"]},
        "acme": {"eab_required": true, "allowed_dns": ["*.example.test"]}});
    std::fs::write(sb.work.join("ra.json"), ra.to_string()).unwrap();
    let ra = cli_ok(&sb, &server, &["ra", "create", "--file", "ra.json", "-q"]).stdout;
    let ra = ra.trim();
    let made = cli_ok(&sb, &server, &["acme", "eab", "create", "--ra", ra, "-q"]).stdout;
    let (kid, hmac) = made
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("{made}"));
    assert!(kid.starts_with("eab-") && hmac.len() >= 32, "{made}");
    let listed = cli_json(&sb, &server, &["acme", "eab", "list", "--ra", ra]);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["kid"], kid);
    assert!(items[0]["account_id"].is_null(), "{listed}");
    assert!(
        !listed.to_string().contains(hmac),
        "the HMAC key is listed: {listed}"
    );
    let kids = cli_ok(&sb, &server, &["acme", "eab", "list", "--ra", ra, "-q"]).stdout;
    assert_eq!(kids.trim(), kid);
    cli_ok(&sb, &server, &["acme", "eab", "delete", "--ra", ra, kid]);
    let listed = cli_json(&sb, &server, &["acme", "eab", "list", "--ra", ra]);
    assert_eq!(listed["items"], serde_json::json!([]), "{listed}");
    assert_fails(
        &cli(&sb, &server, &["acme", "eab", "list", "--ra", "no-such-ra"]),
        3,
        "404",
    );

    // The connector: a token from the CLI starts a pairing that curl and openssl finish; the CLI then
    // revokes the certificate by its fingerprint.
    let body = r#"{"name": "connector", "key_type": "ec-p256", "subject": {"common_name": "Connector CA"},
        "profile": {"ext_key_usages": ["client_auth"], "subject_policy": {"CN": "allow", "O": "allow",
        "OU": "allow", "L": "allow", "ST": "allow", "C": "allow"}}}"#;
    let url = format!("{}/api/v1/cas", server.url());
    curl_ok(&sb, &["-H", &auth, "--json", body, &url]);
    let start_url = cli_ok(
        &sb,
        &server,
        &[
            "connector",
            "token",
            "--application",
            "cli-app",
            "--group",
            "line-1",
            "-q",
        ],
    )
    .stdout;
    let info: Value = serde_json::from_str(&curl_ok(&sb, &[start_url.trim()])).unwrap();
    let subject = format!(
        "/{}",
        info["certificate"]["subject"]
            .as_str()
            .unwrap()
            .replace(',', "/")
    );
    assert!(subject.ends_with("/CN=cli-app"), "{info}");
    make_csr_for(&sb, "app", &subject);
    use base64::Engine as _;
    let csr = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(sb.work.join("app.csr")).unwrap());
    let certs: Value = serde_json::from_str(&curl_ok(
        &sb,
        &[
            "--json",
            &serde_json::json!({ "csr": csr }).to_string(),
            info["csrUrl"].as_str().unwrap(),
        ],
    ))
    .unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(certs["clientCrt"].as_str().unwrap())
        .unwrap();
    std::fs::write(sb.work.join("app.crt"), pem).unwrap();
    let fingerprint = openssl(
        &sb.work,
        &[
            "x509",
            "-in",
            "app.crt",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    let fingerprint = fingerprint.trim().rsplit('=').next().unwrap().to_string();
    let hex = fingerprint.replace(':', "").to_lowercase();
    let shown = cli_json(&sb, &server, &["cert", "show", "--fingerprint", &hex]);
    assert_eq!(shown["status"], "active", "{shown}");
    cli_ok(
        &sb,
        &server,
        &["connector", "revoke", "--fingerprint", &fingerprint],
    );
    let shown = cli_json(&sb, &server, &["cert", "show", "--fingerprint", &hex]);
    assert_eq!(shown["status"], "revoked", "{shown}");
    // A token needs a name; a fingerprint nobody holds is the server's refusal.
    assert_fails(
        &cli(&sb, &server, &["connector", "token"]),
        2,
        "--application",
    );
    assert_fails(
        &cli(
            &sb,
            &server,
            &["connector", "revoke", "--fingerprint", &"ab".repeat(32)],
        ),
        3,
        "HTTP 404",
    );
}

on_both_backends!(acme_and_connector_from_the_command_line);

/// Makes `<stem>.pem`/`<stem>.key` in the work folder: a P-256 certificate for `cn` signed by `issuer`
/// (`<issuer>.pem`/`.key`), a CA's when `ca`.
fn openssl_signed(sb: &Sandbox, stem: &str, cn: &str, issuer: &str, ca: bool, serial: &str) {
    let dir = sb.work.as_path();
    let ext = if ca {
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
    } else {
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    };
    std::fs::write(dir.join(format!("{stem}.ext")), ext).unwrap();
    make_csr(sb, stem, cn);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{stem}.csr"),
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-set_serial",
            serial,
            "-days",
            "30",
            "-extfile",
            &format!("{stem}.ext"),
            "-out",
            &format!("{stem}.pem"),
        ],
    );
}

// See: issue 21 (`shedu ca import-bundle`: a hierarchy in any order, parents linked, bad items reported,
// a second run finishes the job).
fn a_ca_bundle_imports_parents_first_and_resumes(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "bundle");
    shedu_testkit::openssl_ca(&sb.work, "root", "Bundle Root");
    openssl_signed(&sb, "int1", "Bundle Issuing 1", "root", true, "11");
    openssl_signed(&sb, "int2", "Bundle Issuing 2", "int1", true, "12");
    openssl_signed(&sb, "leaf", "bundle-leaf", "int2", false, "13");
    // Children before parents, and a leaf among them.
    let bundle: String = ["leaf", "int2", "root", "int1"]
        .iter()
        .map(|s| std::fs::read_to_string(sb.work.join(format!("{s}.pem"))).unwrap())
        .collect();
    std::fs::write(sb.work.join("bundle.pem"), bundle).unwrap();

    let run = cli(
        &sb,
        &server,
        &["ca", "import-bundle", "bundle.pem", "--name-prefix", "old-"],
    );
    assert_fails(
        &run,
        1,
        "certificate 1 (CN=bundle-leaf): not a CA certificate",
    );
    assert!(
        run.stdout
            .contains("3 imported, 0 already imported, 1 failed, 0 not sent"),
        "{}",
        run.stdout
    );
    let cas = cli_json(&sb, &server, &["ca", "list"]);
    let by_name = |name: &str| -> Value {
        cas["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no CA {name} in {cas}"))
            .clone()
    };
    let root = by_name("old-Bundle Root");
    let int1 = by_name("old-Bundle Issuing 1");
    let int2 = by_name("old-Bundle Issuing 2");
    assert_eq!(int1["parent_id"], root["id"], "{cas}");
    assert_eq!(int2["parent_id"], int1["id"], "{cas}");

    // Again, as after an interruption: nothing is imported twice.
    let run = cli(
        &sb,
        &server,
        &["ca", "import-bundle", "bundle.pem", "--name-prefix", "old-"],
    );
    assert!(
        run.stdout
            .contains("0 imported, 3 already imported, 1 failed"),
        "{}",
        run.stdout
    );
    assert_eq!(
        cli_json(&sb, &server, &["ca", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    std::fs::write(sb.work.join("empty.pem"), "").unwrap();
    assert_fails(
        &cli(&sb, &server, &["ca", "import-bundle", "empty.pem"]),
        1,
        "holds no certificate",
    );
}

on_both_backends!(a_ca_bundle_imports_parents_first_and_resumes);

// See: issue 21 (Ctrl-C stops a bulk import cleanly: rows in flight finish, the rest are reported as not
// sent, and running it again finishes the job; a server error exits with 4).
fn an_interrupted_import_resumes_and_server_errors_exit_with_4(backend: shedu_testkit::Backend) {
    use std::io::BufRead;
    let sb = Sandbox::new(backend);
    let server = start(&sb, "interrupt");
    let ca = cli_ok(
        &sb,
        &server,
        &["ca", "create", "--name", "line", "--cn", "Line", "-q"],
    )
    .stdout;
    let settings = serde_json::json!({"name": "line", "ca_ids": [ca.trim()],
        "enrollment": {"auth_modes": ["one_time_secret"]}});
    std::fs::write(sb.work.join("ra.json"), settings.to_string()).unwrap();
    let ra = cli_ok(&sb, &server, &["ra", "create", "--file", "ra.json", "-q"]).stdout;
    let total = 10_000;
    let mut text = String::from("id,ra_id\n");
    for i in 0..total {
        text.push_str(&format!("sensor-{i},{}\n", ra.trim()));
    }
    std::fs::write(sb.work.join("sensors.csv"), text).unwrap();

    let mut child = shedu_command(&sb.work)
        .args(["device", "import", "sensors.csv", "--url", &server.url()])
        .arg("--token-file")
        .arg(sb.data.join("admin-token"))
        .arg("--ca-file")
        .arg(sb.data.join("tls").join("ca.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Off a terminal the import prints a line every 10 %; interrupt after the first.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains(&format!("/{total} devices")), "{line}");
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{rest}");
    assert!(
        rest.contains("interrupted: run the same import again"),
        "{rest}"
    );
    // "R registered, 0 already registered, 0 failed, N not sent", N > 0.
    let numbers: Vec<usize> = stdout
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    let [registered, already, failed, not_sent] = numbers[..] else {
        panic!("{stdout}")
    };
    assert_eq!((already, failed), (0, 0), "{stdout}");
    assert!(registered > 0 && not_sent > 0, "{stdout}");
    assert_eq!(registered + not_sent, total, "{stdout}");

    let again = cli_ok(&sb, &server, &["device", "import", "sensors.csv"]);
    assert!(
        again.stdout.contains(&format!(
            "{not_sent} registered, {registered} already registered, 0 failed, 0 not sent"
        )),
        "{}",
        again.stdout
    );

    // The database loses a table behind the server's back: the server fails (5xx), the CLI exits with 4.
    sb.sql("DROP TABLE device_groups");
    assert_fails(&cli(&sb, &server, &["group", "list"]), 4, "HTTP 5");
}

on_both_backends!(an_interrupted_import_resumes_and_server_errors_exit_with_4);

/// What the simulated identity provider of the OIDC login test is told and has seen.
#[derive(Default)]
struct ProviderState {
    /// The user approved the code (in a browser, in real life).
    approved: bool,
    /// The user refused it.
    denied: bool,
    /// Polls of the token endpoint for the device code.
    polls: usize,
    /// Refresh grants answered.
    refreshes: usize,
    /// The refresh token the provider currently honours.
    refresh_token: String,
}

/// A simulated OpenID provider on loopback with the device authorization grant (RFC 8628): discovery,
/// JWKS (one P-256 key), the device endpoint and the token endpoint. ID tokens are ES256 JWTs assembled
/// and signed here by hand; the first expires after 3 s, refreshed ones after 5 minutes. Plain HTTP/1.1
/// over std's TCP, one request per connection.
struct Provider {
    base: String,
    state: std::sync::Arc<std::sync::Mutex<ProviderState>>,
}

impl Provider {
    fn start() -> Provider {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        use std::io::{BufRead, BufReader, Read, Write};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = key.public_key().as_ref().to_vec();
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
            "alg": "ES256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])}]});
        let state = std::sync::Arc::new(std::sync::Mutex::new(ProviderState::default()));
        let (issuer, shared) = (base.clone(), state.clone());
        let id_token = move |lifetime: i64| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let header = B64.encode(r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#);
            let claims = B64.encode(
                serde_json::json!({"iss": issuer, "aud": "shedu-cli", "sub": "u-1",
                    "preferred_username": "alice", "roles": ["operator"], "iat": now, "exp": now + lifetime})
                .to_string(),
            );
            let signing_input = format!("{header}.{claims}");
            let signature = key.sign(&rng, signing_input.as_bytes()).unwrap();
            format!("{signing_input}.{}", B64.encode(signature.as_ref()))
        };
        let issuer = base.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap_or(0);
                    let header = header.trim();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap_or(());
                let form: std::collections::HashMap<String, String> =
                    String::from_utf8_lossy(&body)
                        .split('&')
                        .filter_map(|p| p.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace('+', " ")))
                        .collect();
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let mut st = shared.lock().unwrap();
                let (status, answer) = match path {
                    "/.well-known/openid-configuration" => (
                        200,
                        serde_json::json!({
                        "issuer": issuer, "jwks_uri": format!("{issuer}/jwks"),
                        "token_endpoint": format!("{issuer}/token"),
                        "device_authorization_endpoint": format!("{issuer}/device")}),
                    ),
                    "/jwks" => (200, jwks.clone()),
                    "/device" if form.get("client_id").map(String::as_str) == Some("shedu-cli") => {
                        (
                            200,
                            serde_json::json!({"device_code": "dev-1", "user_code": "WDJB-MJHT",
                            "verification_uri": format!("{issuer}/activate"), "expires_in": 600, "interval": 1}),
                        )
                    }
                    "/token" => match form.get("grant_type").map(String::as_str) {
                        Some("urn:ietf:params:oauth:grant-type:device_code")
                            if form.get("device_code").map(String::as_str) == Some("dev-1") =>
                        {
                            st.polls += 1;
                            if st.denied {
                                (400, serde_json::json!({"error": "access_denied"}))
                            } else if !st.approved {
                                (400, serde_json::json!({"error": "authorization_pending"}))
                            } else {
                                st.refresh_token = "rt-1".into();
                                (
                                    200,
                                    serde_json::json!({"id_token": id_token(3), "access_token": "opaque",
                                    "refresh_token": "rt-1", "token_type": "Bearer", "expires_in": 3}),
                                )
                            }
                        }
                        Some("refresh_token")
                            if form.get("refresh_token") == Some(&st.refresh_token) =>
                        {
                            st.refreshes += 1;
                            st.refresh_token = format!("rt-{}", st.refreshes + 1);
                            (
                                200,
                                serde_json::json!({"id_token": id_token(300), "access_token": "opaque",
                                "refresh_token": st.refresh_token, "token_type": "Bearer", "expires_in": 300}),
                            )
                        }
                        _ => (400, serde_json::json!({"error": "invalid_grant"})),
                    },
                    _ => (404, serde_json::json!({"error": "not_found"})),
                };
                drop(st);
                let body = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Provider { base, state }
    }
}

// See: issue 21 (`shedu login --oidc`: the device-code flow against the platform's identity provider, and
// the session renewed at the provider when its token expires).
fn an_oidc_device_login_renews_itself_at_the_provider(backend: shedu_testkit::Backend) {
    use std::io::BufRead;
    let sb = Sandbox::new(backend);
    let provider = Provider::start();
    let toml = format!(
        "[[oidc]]\nissuer = \"{p}\"\naudience = \"shedu-cli\"\njwks_url = \"{p}/jwks\"\n\
         roles_claim = \"roles\"\nleeway_seconds = 0\n",
        p = provider.base
    );
    let toml_path = sb.root.join("oidc.toml");
    std::fs::write(&toml_path, toml).unwrap();
    let server = try_start_with_env(
        &sb,
        "oidc",
        &[("SHEDU_CONFIG", toml_path.to_str().unwrap())],
    )
    .unwrap_or_else(|f| panic!("serve: {}", f.stderr));
    let config = sb.root.join("config");
    let ca = sb.data.join("tls").join("ca.pem");
    let login = |config: &Path| {
        shedu_command(&sb.work)
            .env("SHEDU_CONFIG_DIR", config)
            .args([
                "login",
                "--url",
                &server.url(),
                "--ca-file",
                ca.to_str().unwrap(),
            ])
            .args([
                "--oidc",
                "--oidc-issuer",
                &provider.base,
                "--oidc-client-id",
                "shedu-cli",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    let mut child = login(&config);
    // The CLI shows where to approve the code; the user approves it there.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains(&format!(
            "open {}/activate and enter the code WDJB-MJHT",
            provider.base
        )),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    provider.state.lock().unwrap().approved = true;
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("as alice (context default)"), "{stdout}");
    assert!(
        provider.state.lock().unwrap().polls >= 2,
        "it polled while the code was pending"
    );
    let saved = config_json(&config);
    let session = &saved["contexts"]["default"]["session"];
    assert_eq!(session["refresh_token"], "rt-1", "{saved}");
    assert_eq!(
        session["oidc"]["token_endpoint"],
        format!("{}/token", provider.base)
    );

    let listed = as_operator(&sb, &config, &["ca", "list", "--output", "json"], "");
    assert!(listed.status.success(), "{}", listed.stderr);
    // The first ID token lives 3 s: the next command gets a 401, renews at the provider, and goes on.
    std::thread::sleep(Duration::from_secs(4));
    let listed = as_operator(&sb, &config, &["ca", "list", "--output", "json"], "");
    assert!(listed.status.success(), "{}", listed.stderr);
    assert_eq!(provider.state.lock().unwrap().refreshes, 1);
    assert_eq!(
        config_json(&config)["contexts"]["default"]["session"]["refresh_token"],
        "rt-2"
    );

    // A refused code: the login fails and nothing is saved.
    provider.state.lock().unwrap().denied = true;
    let other = sb.root.join("other-config");
    let out = login(&other).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("the login was denied at the identity provider"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!other.join("config.json").exists());
}

on_both_backends!(an_oidc_device_login_renews_itself_at_the_provider);

// See: issue 21 (`shedu kms access`: the owner's side of KMIP grants, through Cosmian's routes).
fn kms_access_from_the_command_line(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "kms");
    // The admin owns no KMIP object and was granted none.
    assert_eq!(
        cli_json(&sb, &server, &["kms", "access", "owned"]),
        serde_json::json!([])
    );
    assert_eq!(
        cli_json(&sb, &server, &["kms", "access", "obtained"]),
        serde_json::json!([])
    );
    assert_eq!(
        cli_ok(&sb, &server, &["kms", "access", "owned", "-q"]).stdout,
        ""
    );
    // An object nobody showed this caller is not found, exactly as a missing one.
    assert_fails(
        &cli(
            &sb,
            &server,
            &[
                "kms",
                "access",
                "grant",
                "--object",
                "no-such-key",
                "--user",
                "bob",
                "--operations",
                "get,encrypt",
            ],
        ),
        3,
        "HTTP 404",
    );
    assert_fails(
        &cli(&sb, &server, &["kms", "access", "list", "no-such-key"]),
        3,
        "HTTP 404",
    );
    assert_fails(
        &cli(
            &sb,
            &server,
            &["kms", "access", "grant", "--object", "k", "--user", "bob"],
        ),
        2,
        "--operations",
    );
}

on_both_backends!(kms_access_from_the_command_line);

// See: issue 14 (`--print-config` shows the connector's and ACME's settings too).
#[test]
fn print_config_shows_the_protocol_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = shedu_command(dir.path())
        .args(["serve", "--print-config", "--data-dir", "data"])
        .args([
            "--connector-base",
            "/kyma",
            "--connector-validity-days",
            "30",
        ])
        .args([
            "--acme-dns-resolver",
            "127.0.0.1:5353",
            "--acme-http01-port",
            "8080",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "connector_base = \"/kyma\"",
        "connector_validity_days = 30",
        "connector_token_ttl = \"300s\"",
        "acme_dns_resolver = \"127.0.0.1:5353\"",
        "acme_http01_port = 8080",
        "acme_tlsalpn01_port = 443",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
}

// See: issue 21 (`subscription` and `delivery`).
fn subscriptions_and_deliveries_from_the_command_line(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "subscriptions");
    let doc = sb.path("subscription.json");
    std::fs::write(
        &doc,
        r#"{"event_types": ["certificate.revoked"],
            "channel": {"type": "webhook", "url": "https://hooks.example.com/shedu"}}"#,
    )
    .unwrap();
    let made = cli_json(
        &sb,
        &server,
        &["subscription", "create", "--file", doc.to_str().unwrap()],
    );
    let id = str_of(&made, "id").to_string();
    assert!(
        made["channel"]["secret"].is_string(),
        "the generated secret, once: {made}"
    );
    let shown = cli_json(&sb, &server, &["subscription", "show", &id]);
    assert!(
        shown["channel"].get("secret").is_none(),
        "never again: {shown}"
    );
    let ids = cli_ok(&sb, &server, &["subscription", "list", "-q"]).stdout;
    assert_eq!(ids.lines().collect::<Vec<_>>(), [id.as_str()]);
    let deliveries = cli_json(&sb, &server, &["delivery", "list", "--subscription", &id]);
    assert!(deliveries["items"].is_array(), "{deliveries}");
    let missing = cli(&sb, &server, &["delivery", "retry", &id, "no-such-event"]);
    assert_fails(&missing, 3, "(HTTP 404");
    cli_ok(&sb, &server, &["subscription", "delete", &id]);
    let ids = cli_ok(&sb, &server, &["subscription", "list", "-q"]).stdout;
    assert!(ids.trim().is_empty(), "{ids}");
}

on_both_backends!(subscriptions_and_deliveries_from_the_command_line);

// See: issue 21 (the `asset` and `rotation` subcommands, with flags named after the API's fields; `asset
// import` reports its bad rows and skips what the inventory already holds, so it resumes).
fn assets_and_rotation_from_the_command_line(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "assets");
    let ca = cli_json(
        &sb,
        &server,
        &["ca", "create", "--name", "web", "--cn", "Web CA"],
    );
    let ca = str_of(&ca, "id").to_string();

    // An executor and a route that matches no asset below (so the scheduler leaves them alone).
    let executor = cli_ok(
        &sb,
        &server,
        &[
            "rotation",
            "executor",
            "create",
            "--name",
            "script",
            "--kind",
            "command",
            "--settings",
            r#"{"program": "/bin/true"}"#,
            "-q",
        ],
    )
    .stdout;
    let executor = executor.trim().to_string();
    let shown = cli_json(&sb, &server, &["rotation", "executor", "show", &executor]);
    assert_eq!(shown["kind"], "command", "{shown}");
    assert_eq!(shown["has_secret"], false, "{shown}");
    let listed = cli_ok(&sb, &server, &["rotation", "executors", "-q"]).stdout;
    assert_eq!(listed.trim(), executor);
    let bad = cli(
        &sb,
        &server,
        &[
            "rotation",
            "executor",
            "create",
            "--name",
            "x",
            "--kind",
            "command",
            "--settings",
            "[1]",
        ],
    );
    assert_fails(&bad, 1, "--settings is not a JSON object");
    let route = cli_ok(
        &sb,
        &server,
        &[
            "rotation",
            "route",
            "create",
            "--executor",
            "script",
            "--ca",
            &ca,
            "--match-host-platform",
            "aix",
            "--match-label",
            "tier=web",
            "--renew-before-days",
            "20",
            "-q",
        ],
    )
    .stdout;
    let route = route.trim().to_string();
    let routes = cli_json(&sb, &server, &["rotation", "routes"]);
    let first = &routes[0];
    assert_eq!(first["id"], route.as_str(), "{routes}");
    assert_eq!(first["executor_id"], executor.as_str(), "{routes}");
    assert_eq!(first["renew_before_days"], 20, "{routes}");
    assert_eq!(
        first["match"]["labels"],
        serde_json::json!({"tier": "web"}),
        "{routes}"
    );
    // An executor a route names cannot go: a refusal, exit code 3.
    let in_use = cli(&sb, &server, &["rotation", "executor", "delete", &executor]);
    assert_fails(&in_use, 3, "executor-in-use");

    let added = cli_json(
        &sb,
        &server,
        &[
            "asset",
            "add",
            "web-1",
            "--common-name",
            "web-1.example",
            "--address",
            "127.0.0.1",
            "--port",
            "9443",
            "--origin",
            "cmdb",
            "--certificate-validation",
            "--label",
            "tier=web",
        ],
    );
    assert_eq!(added["origin"], "cmdb", "{added}");
    assert_eq!(added["certificate_validation"], true, "{added}");
    let updated = cli_json(
        &sb,
        &server,
        &[
            "asset",
            "update",
            "web-1",
            "--port",
            "8443",
            "--san",
            "www.example,web.example",
            "--label",
            "tier=db",
        ],
    );
    assert_eq!(updated["port"], 8443, "{updated}");
    assert_eq!(updated["origin"], "cmdb", "untouched: {updated}");
    assert_eq!(
        updated["subject_alternative_name"],
        serde_json::json!(["www.example", "web.example"])
    );
    assert_eq!(updated["labels"], serde_json::json!({"tier": "db"}));

    // 500 rows: web-1 is already there, two are bad.
    let csv = sb.path("assets.csv");
    let mut text = String::from(
        "system_name,common_name,ip_address,port,subject_alternative_name,host_platform,labels,certificate_validation\n",
    );
    text.push_str("web-1,web-1.example,127.0.0.1,8443,,,,\n");
    for i in 1..500 {
        match i {
            100 => text.push_str("plc-100,plc-100.example,10.0.0.100,99999,,,,\n"),
            300 => text.push_str("plc-300,plc-300.example,10.0.0.44,,,,,maybe\n"),
            _ => text.push_str(&format!(
                "plc-{i},plc-{i}.example,10.0.{}.{},8443,plc-{i}.local;plc-{i}.lan,rtos,tier=edge;hall=a,false\n",
                i / 250,
                i % 250
            )),
        }
    }
    std::fs::write(&csv, &text).unwrap();
    let run = cli(&sb, &server, &["asset", "import", csv.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("497 added, 1 already added, 2 failed, 0 not sent"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("line 102: port \"99999\" is not a port number"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("line 302: certificate_validation \"maybe\" is not true or false"),
        "{}",
        run.stderr
    );
    // Not a terminal: a plain progress line every 10 %, no bar.
    assert!(run.stderr.contains("250/500 assets"), "{}", run.stderr);
    // Run again with the two rows fixed: only they are added.
    let fixed = text
        .replace(",99999,", ",8443,")
        .replace(",maybe\n", ",true\n");
    std::fs::write(&csv, fixed).unwrap();
    let again = cli_ok(&sb, &server, &["asset", "import", csv.to_str().unwrap()]);
    assert!(
        again
            .stdout
            .contains("2 added, 498 already added, 0 failed, 0 not sent"),
        "{}",
        again.stdout
    );
    let plc = cli_json(&sb, &server, &["asset", "show", "plc-42"]);
    assert_eq!(plc["ip_address"], "10.0.0.42", "{plc}");
    assert_eq!(
        plc["subject_alternative_name"],
        serde_json::json!(["plc-42.local", "plc-42.lan"])
    );
    assert_eq!(
        plc["labels"],
        serde_json::json!({"tier": "edge", "hall": "a"})
    );
    let page = cli_ok(
        &sb,
        &server,
        &[
            "asset",
            "list",
            "--label",
            "tier=edge",
            "--limit",
            "1000",
            "-q",
        ],
    )
    .stdout;
    assert_eq!(
        page.lines().count(),
        497,
        "the two fixed rows have no labels: {page}"
    );
    let yaml = yaml_as_json(
        &cli_ok(
            &sb,
            &server,
            &["asset", "show", "plc-300", "--output", "yaml"],
        )
        .stdout,
    );
    assert_eq!(yaml["certificate_validation"], true, "{yaml}");

    let missing = cli(&sb, &server, &["rotation", "run", "no-such-run"]);
    assert_fails(&missing, 3, "(HTTP 404 Not Found, urn:shedu:problem:");
    cli_ok(&sb, &server, &["rotation", "route", "delete", &route]);
    cli_ok(&sb, &server, &["rotation", "executor", "delete", &executor]);
    let left = cli_ok(&sb, &server, &["rotation", "executors", "-q"]).stdout;
    assert!(left.trim().is_empty(), "{left}");
    cli_ok(&sb, &server, &["asset", "delete", "web-1"]);
    let gone = cli(&sb, &server, &["asset", "show", "web-1"]);
    assert_fails(&gone, 3, "(HTTP 404");
}

on_both_backends!(assets_and_rotation_from_the_command_line);

// See: issue 21 (the `secret` subcommands against the secret store's Vault API, with Vault's error form
// read into the one error line).
fn secrets_from_the_command_line(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let server = start(&sb, "secrets");
    let put = cli_ok(
        &sb,
        &server,
        &["secret", "put", "app/db", "user=ops", "password=one"],
    );
    assert_eq!(put.stdout.trim(), "app/db: version 1");
    let doc = sb.path("db.json");
    std::fs::write(&doc, r#"{"user": "ops", "password": "two"}"#).unwrap();
    let put = cli_ok(
        &sb,
        &server,
        &["secrets", "put", "app/db", "--file", doc.to_str().unwrap()],
    );
    assert_eq!(put.stdout.trim(), "app/db: version 2");
    let now: Value =
        serde_json::from_str(&cli_ok(&sb, &server, &["secret", "get", "app/db"]).stdout).unwrap();
    assert_eq!(now, serde_json::json!({"user": "ops", "password": "two"}));
    let before = yaml_as_json(
        &cli_ok(
            &sb,
            &server,
            &[
                "secret",
                "get",
                "app/db",
                "--version",
                "1",
                "--output",
                "yaml",
            ],
        )
        .stdout,
    );
    assert_eq!(before["password"], "one", "{before}");
    cli_ok(
        &sb,
        &server,
        &["secret", "put", "app/mqtt/broker", "url=mqtts://b"],
    );
    let keys = cli_ok(&sb, &server, &["secret", "list", "app"]).stdout;
    assert_eq!(keys.lines().collect::<Vec<_>>(), ["db", "mqtt/"], "{keys}");
    let missing = cli(&sb, &server, &["secret", "get", "app/none"]);
    assert_fails(&missing, 3, "(HTTP 404");
    let bad = cli(&sb, &server, &["secret", "put", "app/x", "novalue"]);
    assert_fails(&bad, 1, "\"novalue\" is not KEY=VALUE");
}

on_both_backends!(secrets_from_the_command_line);
