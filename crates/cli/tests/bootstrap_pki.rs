//! `shedu bootstrap-pki` end to end: the real binary writes an edge box's PKI, and `openssl` judges it
//! (chains, names, keys); file modes and owners are read back from the file system. No storage is
//! involved, so there is one run per test, not one per backend, except for the renewal by a running
//! `shedu serve --bootstrap-pki`, which runs on both.

// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Sandbox, shedu_command, try_start_with};

on_both_backends!(a_running_server_renews_a_certificate_before_it_expires);

/// A test's folder: `services.toml` and the PKI under `pki/`.
struct Box {
    dir: tempfile::TempDir,
}

impl Box {
    fn new() -> Box {
        Box {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn out(&self) -> PathBuf {
        self.path("pki")
    }

    fn config(&self, text: &str) {
        std::fs::write(self.path("services.toml"), text).unwrap();
    }

    /// `shedu bootstrap-pki --config services.toml --out pki --mode <mode>`.
    fn run(&self, mode: &str) -> Output {
        shedu_command(self.dir.path())
            .args(["bootstrap-pki", "--config", "services.toml", "--out", "pki"])
            .args(["--mode", mode])
            .output()
            .unwrap()
    }

    /// Runs and asserts success; returns stdout and stderr.
    fn ok(&self, mode: &str) -> (String, String) {
        let out = self.run(mode);
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        assert!(
            out.status.success(),
            "bootstrap-pki --mode {mode}: {stdout}{stderr}"
        );
        (stdout, stderr)
    }

    /// Runs and asserts failure; returns stderr.
    fn fails(&self, mode: &str) -> String {
        let out = self.run(mode);
        assert!(
            !out.status.success(),
            "bootstrap-pki --mode {mode} succeeded"
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Every file under `pki/` and its bytes.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, into);
                } else {
                    into.insert(path.clone(), std::fs::read(&path).unwrap());
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(&self.out(), &mut files);
        files
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.out().join(rel)).unwrap()
    }

    /// `openssl verify` of a service's certificate against `ca/ca.pem`, with the intermediate from the
    /// service's own chain file.
    fn assert_verifies(&self, service: &str) {
        let crt = self.out().join(service).join("server.crt");
        let text = openssl(
            self.dir.path(),
            &[
                "verify",
                "-CAfile",
                self.out().join("ca/ca.pem").to_str().unwrap(),
                "-untrusted",
                crt.to_str().unwrap(),
                "-purpose",
                "sslserver",
                crt.to_str().unwrap(),
            ],
        );
        assert!(text.trim_end().ends_with(": OK"), "{text}");
        // The service's own copy of the trust anchor is the same.
        assert_eq!(
            self.read(&format!("{service}/ca.pem")),
            self.read("ca/ca.pem")
        );
    }

    /// The public key of the service's certificate and of its key file are the same.
    fn assert_key_matches(&self, service: &str) {
        let dir = self.out().join(service);
        let from_cert = openssl(&dir, &["x509", "-in", "server.crt", "-noout", "-pubkey"]);
        let from_key = openssl(&dir, &["pkey", "-in", "server.key", "-pubout"]);
        assert_eq!(from_cert, from_key, "{service}: key and certificate differ");
    }

    fn sans(&self, service: &str) -> String {
        openssl(
            &self.out().join(service),
            &[
                "x509",
                "-in",
                "server.crt",
                "-noout",
                "-ext",
                "subjectAltName",
            ],
        )
    }

    /// Replaces `service`'s certificate (core-data's names) with one that expires tomorrow, made by
    /// openssl with the intermediate's key and the service's key, as the same PKI would have issued it
    /// 364 days ago.
    fn expire_tomorrow(&self, service: &str) {
        let dir = self.out().join(service);
        openssl(
            &dir,
            &[
                "req",
                "-new",
                "-key",
                "server.key",
                "-subj",
                &format!("/CN={service}"),
                "-out",
                "old.csr",
            ],
        );
        std::fs::write(
            dir.join("old.ext"),
            "subjectAltName=DNS:core-data,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "old.csr",
                "-CA",
                "../ca/intermediate.pem",
                "-CAkey",
                "../ca/intermediate.key",
                "-days",
                "1",
                "-extfile",
                "old.ext",
                "-out",
                "server.crt",
            ],
        );
        for f in ["old.csr", "old.ext"] {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        // The chain file as bootstrap-pki writes it: the leaf, then the intermediate.
        let mut chain = std::fs::read(dir.join("server.crt")).unwrap();
        chain.extend(self.read("ca/intermediate.pem"));
        std::fs::write(dir.join("server.crt"), chain).unwrap();
    }

    /// Days until the service's certificate expires, by `openssl x509 -checkend`.
    fn expires_within_days(&self, rel: &str, days: u32) -> bool {
        let out = Command::new("openssl")
            .current_dir(self.out())
            .args(["x509", "-in", rel, "-noout", "-checkend"])
            .arg((u64::from(days) * 86_400).to_string())
            .output()
            .unwrap();
        !out.status.success()
    }
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const TWO_SERVICES: &str = r#"
[pki]
organization = "Plant 4"

[[pki.services]]
service = "core-data"
sans = ["core-data", "localhost", "127.0.0.1"]
uid = 2002
gid = 2001

[[pki.services]]
service = "app-rules"
sans = ["app-rules"]
days = 90
"#;

#[test]
fn generate_writes_a_chain_openssl_verifies_with_modes_and_owners() {
    let b = Box::new();
    b.config(TWO_SERVICES);
    let (stdout, _) = b.ok("generate");
    assert!(stdout.contains("core-data: issued"), "{stdout}");
    assert!(
        stdout.contains("app-rules: issued (expires in 90 days)"),
        "{stdout}"
    );

    for service in ["core-data", "app-rules"] {
        b.assert_verifies(service);
        b.assert_key_matches(service);
        let dir = b.out().join(service);
        assert_eq!(mode_of(&dir), 0o700, "{service}/");
        for file in ["server.crt", "server.key", "ca.pem"] {
            assert_eq!(mode_of(&dir.join(file)), 0o600, "{service}/{file}");
        }
    }
    assert_eq!(
        b.sans("core-data").split_whitespace().collect::<Vec<_>>(),
        [
            "X509v3",
            "Subject",
            "Alternative",
            "Name:",
            "DNS:core-data,",
            "DNS:localhost,",
            "IP",
            "Address:127.0.0.1"
        ]
    );
    // The configured owner; the service without one keeps the caller's.
    for file in ["", "/server.key", "/server.crt", "/ca.pem"] {
        let meta = std::fs::metadata(b.out().join(format!("core-data{file}"))).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (2002, 2001), "core-data{file}");
    }
    let me = std::fs::metadata(b.dir.path()).unwrap().uid();
    assert_eq!(
        std::fs::metadata(b.out().join("app-rules/server.key"))
            .unwrap()
            .uid(),
        me
    );
    // The CA keys are kept (for renewal), private; the certificates are public.
    for (file, mode) in [
        ("ca/ca.key", 0o600),
        ("ca/intermediate.key", 0o600),
        ("ca/ca.pem", 0o644),
        ("ca/intermediate.pem", 0o644),
    ] {
        assert_eq!(mode_of(&b.out().join(file)), mode, "{file}");
    }
    // The intermediate sits between root and leaves, with the configured organisation.
    let subject = openssl(
        &b.out(),
        &[
            "x509",
            "-in",
            "ca/intermediate.pem",
            "-noout",
            "-subject",
            "-issuer",
        ],
    );
    assert!(
        subject.contains("subject=O = Plant 4, CN = shedu bootstrap intermediate CA")
            && subject.contains("issuer=O = Plant 4, CN = shedu bootstrap root CA"),
        "{subject}"
    );
    assert!(b.out().join(".pki-complete").exists());

    // The same file configures serve (and the token files): its [pki] table is no unknown option there.
    let mut with_clients = TWO_SERVICES.to_string();
    with_clients.push_str(
        "\n[[secrets.clients]]\nservice = \"core-data\"\nuid = 2002\nexe = \"/usr/bin/core-data\"\n",
    );
    b.config(&with_clients);
    let serve = shedu_command(b.dir.path())
        .args(["serve", "--config", "services.toml", "--print-config"])
        .output()
        .unwrap();
    assert!(serve.status.success(), "{serve:?}");

    // generate makes everything anew.
    let before = b.snapshot();
    b.ok("generate");
    assert_ne!(before[&b.out().join("ca/ca.pem")], b.read("ca/ca.pem"));
    assert_ne!(
        before[&b.out().join("core-data/server.key")],
        b.read("core-data/server.key")
    );
    b.assert_verifies("core-data");
}

#[test]
fn cache_reuses_the_same_bytes_and_renews_a_near_expiry_certificate() {
    let b = Box::new();
    b.config(TWO_SERVICES);
    let (first, _) = b.ok("cache");
    assert!(first.contains("core-data: issued"), "{first}");
    let before = b.snapshot();

    // A second boot reuses every file as it is.
    let (second, _) = b.ok("cache");
    assert!(
        second.contains("core-data: reused") && second.contains("app-rules: reused"),
        "{second}"
    );
    assert_eq!(before, b.snapshot());

    // core-data's certificate now expires tomorrow: made by openssl with the intermediate's key, as the
    // same PKI would have issued it 364 days ago.
    let dir = b.out().join("core-data");
    b.expire_tomorrow("core-data");
    b.assert_verifies("core-data");
    assert!(b.expires_within_days("core-data/server.crt", 30));
    let near = b.snapshot();

    let (third, _) = b.ok("cache");
    assert!(
        third.contains("core-data: renewed (expires in 365 days)"),
        "{third}"
    );
    assert!(third.contains("app-rules: reused"), "{third}");
    assert!(!b.expires_within_days("core-data/server.crt", 300));
    b.assert_verifies("core-data");
    b.assert_key_matches("core-data");
    // A new key, the same owner and mode; nothing else changed.
    assert_ne!(
        near[&dir.join("server.key")],
        b.read("core-data/server.key")
    );
    let meta = std::fs::metadata(dir.join("server.key")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (2002, 2001, 0o600)
    );
    let after = b.snapshot();
    for (path, bytes) in &near {
        if !path.starts_with(&dir) {
            assert_eq!(&after[path], bytes, "{} changed", path.display());
        }
    }

    // A SAN added to the configuration reissues that service's certificate only.
    b.config(&TWO_SERVICES.replace(
        r#"sans = ["app-rules"]"#,
        r#"sans = ["app-rules", "rules.local"]"#,
    ));
    let (fourth, _) = b.ok("cache");
    assert!(
        fourth.contains("app-rules: renewed") && fourth.contains("core-data: reused"),
        "{fourth}"
    );
    assert!(b.sans("app-rules").contains("DNS:rules.local"));
    b.assert_verifies("app-rules");
    assert_eq!(
        after[&dir.join("server.crt")],
        b.read("core-data/server.crt")
    );
}

#[test]
fn destroyed_ca_keys_are_never_written_and_a_renewal_makes_a_new_root() {
    let b = Box::new();
    b.config(&TWO_SERVICES.replace("[pki]\n", "[pki]\ndestroy_ca_keys = true\n"));
    b.ok("cache");
    assert!(!b.out().join("ca/ca.key").exists());
    assert!(!b.out().join("ca/intermediate.key").exists());
    b.assert_verifies("core-data");
    let before = b.snapshot();
    let (again, _) = b.ok("cache");
    assert!(again.contains("core-data: reused"), "{again}");
    assert_eq!(before, b.snapshot());

    // A certificate to replace, and nothing left to sign it: the whole PKI is made anew.
    std::fs::remove_file(b.out().join("app-rules/server.crt")).unwrap();
    let (stdout, stderr) = b.ok("cache");
    assert!(stderr.contains("a new root CA (reload ca.pem)"), "{stderr}");
    assert!(stdout.contains("core-data: renewed"), "{stdout}");
    assert_ne!(before[&b.out().join("ca/ca.pem")], b.read("ca/ca.pem"));
    for service in ["core-data", "app-rules"] {
        b.assert_verifies(service);
    }
    assert!(!b.out().join("ca/ca.key").exists());
    assert!(!b.out().join("ca/intermediate.key").exists());
}

#[test]
fn import_mode_issues_under_the_given_ca_and_never_copies_its_key() {
    let b = Box::new();
    let dir = b.dir.path();
    openssl(
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
            "plant-ca.key",
            "-out",
            "plant-ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=Plant CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let import = TWO_SERVICES.replace(
        "[pki]\n",
        "[pki]\nca_cert = \"plant-ca.pem\"\nca_key = \"plant-ca.key\"\n",
    );
    b.config(&import);
    let (stdout, _) = b.ok("import");
    assert!(stdout.contains("core-data: issued"), "{stdout}");
    assert_eq!(
        b.read("ca/ca.pem"),
        std::fs::read(dir.join("plant-ca.pem")).unwrap()
    );
    assert!(!b.out().join("ca/ca.key").exists());
    assert!(b.out().join("ca/intermediate.key").exists());
    for service in ["core-data", "app-rules"] {
        b.assert_verifies(service);
    }
    // A second import reuses; the key of another CA is refused before anything is written.
    let before = b.snapshot();
    let (again, _) = b.ok("import");
    assert!(again.contains("core-data: reused"), "{again}");
    assert_eq!(before, b.snapshot());
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ],
    );
    b.config(&import.replace("plant-ca.key", "other.key"));
    let err = b.fails("import");
    assert!(
        err.contains("other.key is not the key of the certificate CN=Plant CA"),
        "{err}"
    );
    assert_eq!(before, b.snapshot());
    // ca_cert without --mode import is a mistake, said so.
    b.config(&import);
    let err = b.fails("cache");
    assert!(
        err.contains("ca_cert and ca_key are for --mode import"),
        "{err}"
    );
}

#[test]
fn a_bad_configuration_is_refused_clearly_and_writes_nothing() {
    let b = Box::new();
    let cases: [(&str, &str); 8] = [
        (
            &TWO_SERVICES.replace(r#"sans = ["app-rules"]"#, r#"sans = ["app_rules!"]"#),
            r#"pki.services[1] ("app-rules"): SAN "app_rules!""#,
        ),
        (
            &TWO_SERVICES.replace(r#"service = "app-rules""#, r#"service = "core-data""#),
            r#"pki.services[1] ("core-data"): the service is listed twice"#,
        ),
        (
            &TWO_SERVICES.replace(r#"service = "app-rules""#, r#"service = "../etc""#),
            r#"pki.services[1] ("../etc")"#,
        ),
        (
            &TWO_SERVICES.replace(r#"sans = ["app-rules"]"#, "sans = []"),
            "sans must name at least one DNS name or IP address",
        ),
        (
            &TWO_SERVICES.replace("days = 90", "days = 20"),
            "renew_before_days (30) must be shorter than every validity (20 days is the shortest)",
        ),
        (
            &TWO_SERVICES.replace("[pki]\n", "[pki]\nkey_type = \"dsa-1024\"\n"),
            "unknown key type \"dsa-1024\"",
        ),
        (
            &TWO_SERVICES.replace("uid = 2002", "user = 2002"),
            "unknown field `user`",
        ),
        ("[secrets]\n", "has no [pki] table"),
    ];
    for (config, expected) in cases {
        b.config(config);
        let err = b.fails("cache");
        assert!(err.contains(expected), "expected {expected:?} in {err}");
        assert!(!b.out().exists(), "{expected}: something was written");
    }
    // Import mode without a CA to import.
    b.config(TWO_SERVICES);
    let err = b.fails("import");
    assert!(
        err.contains("--mode import needs ca_cert and ca_key"),
        "{err}"
    );
    assert!(!b.out().exists());

    // On a complete PKI, a bad configuration changes nothing either.
    b.ok("cache");
    let before = b.snapshot();
    b.config(&TWO_SERVICES.replace(r#"sans = ["app-rules"]"#, r#"sans = ["app_rules!"]"#));
    b.fails("cache");
    assert_eq!(before, b.snapshot());
}

/// `shedu serve --bootstrap-pki services.toml --bootstrap-pki-out pki`: the PKI is made at start, and a
/// certificate that comes within `renew_before_days` of its expiry is renewed by the running server at a
/// lifecycle tick (1 s here), with a new key, while the other service's files stay as they were.
fn a_running_server_renews_a_certificate_before_it_expires(backend: shedu_testkit::Backend) {
    let b = Box::new();
    b.config(TWO_SERVICES);
    let sb = Sandbox::new(backend);
    let config = b.path("services.toml");
    let out = b.out();
    let args = [
        "--bootstrap-pki",
        config.to_str().unwrap(),
        "--bootstrap-pki-out",
        out.to_str().unwrap(),
        "--lifecycle-interval",
        "1s",
    ];
    let mut server = try_start_with(&sb, "pki", &args, &[]).unwrap();
    // Made at start, before the banner.
    b.assert_verifies("core-data");
    b.assert_verifies("app-rules");
    assert!(out.join(".pki-complete").exists());
    let rules_before = b.read("app-rules/server.crt");
    let old_key = b.read("core-data/server.key");
    let old_cert = b.read("core-data/server.crt");
    // Ticks with nothing due change nothing.
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    assert_eq!(old_key, b.read("core-data/server.key"));
    assert_eq!(old_cert, b.read("core-data/server.crt"));

    // The same key, a certificate that expires tomorrow (within the 30 days of renew_before_days).
    b.expire_tomorrow("core-data");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while b.expires_within_days("core-data/server.crt", 300) {
        assert!(
            std::time::Instant::now() < deadline,
            "the running server did not renew core-data's certificate"
        );
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "shedu serve exited"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Written aside and renamed over: once the certificate is new, its key is too.
    b.assert_verifies("core-data");
    b.assert_key_matches("core-data");
    assert_ne!(old_key, b.read("core-data/server.key"));
    let meta = std::fs::metadata(out.join("core-data/server.key")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (2002, 2001, 0o600)
    );
    assert_eq!(rules_before, b.read("app-rules/server.crt"));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "shedu serve exited"
    );
}
