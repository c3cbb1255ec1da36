//! Auto-unseal (`--unseal kdf:<source>`) end to end: a real `shedu serve` whose master key lives only wrapped
//! under a key derived from machine-bound input, on both backends. The clear master key the test scans the
//! data folder for is obtained by unwrapping the file with `shedu_keys` from the input and the salt, as an
//! attacker holding both could.

// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Sandbox, Server, shedu_command, try_start_with};

on_both_backends!(
    file_source_restarts_refuses_a_changed_input_and_rotates,
    exec_source_wraps_an_existing_key_and_fails_clearly,
    machine_id_source_restarts,
);

/// What these tests add to the shared sandbox.
impl Sandbox {
    /// Starts `shedu serve` with `extra` arguments; `Err(stderr)` when it exits instead.
    fn start(&self, extra: &[&str]) -> Result<Server, String> {
        try_start_with(self, "unseal", extra, &[]).map_err(|f| {
            assert!(!f.status.success(), "serve exited with success");
            f.stderr
        })
    }

    /// Runs the CLI against `server`, asserting success; returns stdout.
    fn cli(&self, server: &Server, args: &[&str]) -> String {
        let out = shedu_command(&self.work)
            .args(args)
            .arg("--url")
            .arg(server.url())
            .arg("--token-file")
            .arg(self.data.join("admin-token"))
            .arg("--ca-file")
            .arg(self.data.join("tls").join("ca.pem"))
            .output()
            .unwrap();
        assert!(out.status.success(), "shedu {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// An executable shell script in the work folder.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.work.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn wrapped(&self) -> Vec<u8> {
        std::fs::read(self.data.join("master.key.wrapped")).unwrap()
    }

    /// The clear master key (hex) behind the wrapped file, unwrapped with the input and the salt.
    fn unwrap_master(&self, input: &[u8]) -> String {
        let salt = std::fs::read(self.data.join("unseal.salt")).unwrap();
        let kek = shedu_keys::UnsealKek::derive(input, &salt).unwrap();
        kek.unwrap(&self.wrapped()).unwrap().to_hex().to_string()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// No file of the data folder holds the clear master key: raw, or in hex of either case.
fn assert_no_clear_key(data: &Path, master_hex: &str) {
    let raw = hex::decode(master_hex).unwrap();
    let needles = [
        raw,
        master_hex.to_lowercase().into_bytes(),
        master_hex.to_uppercase().into_bytes(),
    ];
    let files = files_under(data);
    assert!(files.len() >= 4, "the data folder holds files: {files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} holds the clear master key",
                file.display()
            );
        }
    }
}

fn file_source_restarts_refuses_a_changed_input_and_rotates(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    let input = sb.work.join("unseal-input");
    let material: [u8; 32] = rand::random();
    std::fs::write(&input, material).unwrap();
    let unseal = format!("kdf:file:{}", input.display());
    let args = ["--unseal", unseal.as_str()];

    // (1) First start: a wrapped key and a salt, both 0600, and no clear key file.
    let server = sb.start(&args).unwrap();
    let wrapped_path = sb.data.join("master.key.wrapped");
    let salt_path = sb.data.join("unseal.salt");
    assert_eq!(mode(&wrapped_path), 0o600);
    assert_eq!(mode(&salt_path), 0o600);
    assert!(!sb.data.join("master.key").exists());
    sb.cli(
        &server,
        &["ca", "create", "--name", "sealed-ca", "--cn", "Sealed"],
    );
    drop(server);

    // Restart with the same input: the CA is still there (its key opens: it signs its CRL at start).
    let server = sb.start(&args).unwrap();
    assert!(sb.cli(&server, &["ca", "list"]).contains("sealed-ca"));
    drop(server);

    // (3) No file of the data folder holds the clear master key.
    let master = sb.unwrap_master(&material);
    assert_no_clear_key(&sb.data, &master);

    // (2) A changed input: start-up fails naming the mode and the file, and destroys nothing.
    let (wrapped, salt) = (sb.wrapped(), std::fs::read(&salt_path).unwrap());
    let before: Vec<_> = files_under(&sb.data);
    std::fs::write(&input, rand::random::<[u8; 32]>()).unwrap();
    let err = match sb.start(&args) {
        Ok(_) => panic!("serve started with a changed unseal input"),
        Err(e) => e,
    };
    assert!(
        err.contains(&format!(
            "auto-unseal ({unseal}) cannot open {}",
            wrapped_path.display()
        )) && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(sb.wrapped(), wrapped);
    assert_eq!(std::fs::read(&salt_path).unwrap(), salt);
    assert_eq!(files_under(&sb.data), before);

    // Restored input: it starts again with the data intact.
    std::fs::write(&input, material).unwrap();
    let server = sb.start(&args).unwrap();
    assert!(sb.cli(&server, &["ca", "list"]).contains("sealed-ca"));
    drop(server);

    // `audit verify` finds the audit key through the same option.
    let out = sb
        .shedu()
        .args(["audit", "verify", "--data-dir"])
        .arg(&sb.data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("audit chain OK"),
        "audit verify: {out:?}"
    );

    // `keys rotate-master` in this mode: a new master key, wrapped under the same key-encryption key.
    let out = sb
        .shedu()
        .args(["keys", "rotate-master", "--data-dir"])
        .arg(&sb.data)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "rotate-master: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("master.key.wrapped"),
        "{out:?}"
    );
    let rotated = sb.unwrap_master(&material);
    assert_ne!(rotated, master);
    assert_eq!(mode(&wrapped_path), 0o600);
    assert!(!sb.data.join("master.key").exists());
    assert!(!sb.data.join("master.key.wrapped.new").exists());
    let server = sb.start(&args).unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&sb.cli(&server, &["ca", "list", "--output", "json"])).unwrap();
    let ca_id = list["items"]
        .as_array()
        .and_then(|cas| cas.iter().find(|ca| ca["name"] == "sealed-ca"))
        .and_then(|ca| ca["id"].as_str())
        .expect("the CA after the rotation")
        .to_string();
    sb.cli(&server, &["ca", "show", &ca_id, "--cert-out", "sealed.pem"]);
    drop(server);
    assert_no_clear_key(&sb.data, &rotated);
    assert_no_clear_key(&sb.data, &master);
}

fn exec_source_wraps_an_existing_key_and_fails_clearly(backend: shedu_testkit::Backend) {
    let sb = Sandbox::new(backend);
    // A plain start first: the master key is a clear file.
    let server = sb.start(&[]).unwrap();
    sb.cli(
        &server,
        &["ca", "create", "--name", "before-unseal", "--cn", "Before"],
    );
    drop(server);
    let clear = std::fs::read_to_string(sb.data.join("master.key")).unwrap();

    // (4) An exec: source that prints hex: the clear key is wrapped, then its file removed.
    let material = hex::encode(rand::random::<[u8; 32]>());
    let script = sb.script("print-key", &format!("echo {material}"));
    let unseal = format!("kdf:exec:{}", script.display());
    let server = sb.start(&["--unseal", &unseal]).unwrap();
    assert!(!sb.data.join("master.key").exists());
    assert!(sb.cli(&server, &["ca", "list"]).contains("before-unseal"));
    drop(server);
    let material_bytes = hex::decode(&material).unwrap();
    assert_eq!(sb.unwrap_master(&material_bytes), clear.trim());
    assert_no_clear_key(&sb.data, clear.trim());

    // A program that fails, or prints no hex: a clear error, nothing changed.
    let wrapped = sb.wrapped();
    let failing = sb.script("fail-key", "echo 'no key here' >&2\nexit 3");
    let err = sb
        .start(&["--unseal", &format!("kdf:exec:{}", failing.display())])
        .err()
        .expect("serve started with a failing unseal program");
    assert!(
        err.contains(&format!(
            "the unseal program {} failed (exit status: 3)",
            failing.display()
        )) && err.contains("auto-unseal (kdf:exec:"),
        "{err}"
    );
    let garbage = sb.script("garbage-key", "echo not-hex-at-all");
    let err = sb
        .start(&["--unseal", &format!("kdf:exec:{}", garbage.display())])
        .err()
        .expect("serve started with an unseal program printing no hex");
    assert!(err.contains("printed something other than hex"), "{err}");
    assert_eq!(sb.wrapped(), wrapped);

    // The master key comes from one place only.
    let key = hex::encode([7u8; 32]);
    let err = try_start_with(
        &sb,
        "both",
        &["--unseal", &unseal],
        &[("SHEDU_MASTER_KEY", key.as_str())],
    )
    .err()
    .expect("serve started with both --unseal and SHEDU_MASTER_KEY");
    assert!(
        err.stderr.contains(&format!(
            "--unseal {unseal} and SHEDU_MASTER_KEY exclude each other"
        )),
        "{}",
        err.stderr
    );
    assert_eq!(sb.wrapped(), wrapped);

    // The same program again: it starts.
    let server = sb.start(&["--unseal", &unseal]).unwrap();
    assert!(sb.cli(&server, &["ca", "list"]).contains("before-unseal"));
}

fn machine_id_source_restarts(backend: shedu_testkit::Backend) {
    // The host's own /etc/machine-id (systemd's, 32 hex digits); a host without one fails here by name.
    let machine_id = std::fs::read_to_string("/etc/machine-id").expect(
        "this test needs /etc/machine-id (systemd-machine-id-setup or dbus-uuidgen makes one)",
    );
    let sb = Sandbox::new(backend);
    let args = ["--unseal", "kdf:machine-id"];
    let server = sb.start(&args).unwrap();
    sb.cli(
        &server,
        &["ca", "create", "--name", "machine-ca", "--cn", "Machine"],
    );
    drop(server);
    assert!(!sb.data.join("master.key").exists());
    let master = sb.unwrap_master(machine_id.trim().as_bytes());
    assert_no_clear_key(&sb.data, &master);
    let server = sb.start(&args).unwrap();
    assert!(sb.cli(&server, &["ca", "list"]).contains("machine-ca"));
}

/// `kdf:dmi` on this host: where the firmware identifies the machine (a real `product_uuid`, read as root),
/// serve wraps its key under it and restarts; where it does not (a container, a VM without SMBIOS, as on
/// the CI machine), the start fails saying why and the clear master key stays where it was. Either way
/// something is asserted; the storage does not matter, so SQLite only.
#[test]
fn dmi_source_restarts_or_fails_clearly() {
    let sb = Sandbox::new(shedu_testkit::Backend::Sqlite);
    let server = sb.start(&[]).unwrap();
    sb.cli(
        &server,
        &["ca", "create", "--name", "dmi-ca", "--cn", "DMI"],
    );
    drop(server);
    let clear = std::fs::read_to_string(sb.data.join("master.key")).unwrap();
    let uuid = std::fs::read_to_string("/sys/class/dmi/id/product_uuid")
        .ok()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty() && !u.chars().all(|c| matches!(c, '0' | '-')));
    let args = ["--unseal", "kdf:dmi"];
    match uuid {
        Some(uuid) => {
            let server = sb.start(&args).unwrap();
            assert!(sb.cli(&server, &["ca", "list"]).contains("dmi-ca"));
            drop(server);
            assert!(!sb.data.join("master.key").exists());
            let serial = std::fs::read_to_string("/sys/class/dmi/id/product_serial")
                .map(|s| format!("product_serial={}\n", s.trim()))
                .unwrap_or_default();
            let input = format!("product_uuid={uuid}\n{serial}");
            // (A placeholder serial is left out of the input; then this unwrap says so by failing.)
            assert_eq!(sb.unwrap_master(input.as_bytes()), clear.trim());
            let server = sb.start(&args).unwrap();
            assert!(sb.cli(&server, &["ca", "list"]).contains("dmi-ca"));
        }
        None => {
            let err = sb.start(&args).err().expect("serve started with kdf:dmi");
            assert!(
                err.contains("auto-unseal (kdf:dmi)")
                    && (err.contains("/sys/class/dmi/id is missing")
                        || err.contains("holds no real UUID")),
                "{err}"
            );
            assert_eq!(
                std::fs::read_to_string(sb.data.join("master.key")).unwrap(),
                clear
            );
            assert!(!sb.data.join("master.key.wrapped").exists());
            assert!(!sb.data.join("unseal.salt").exists());
        }
    }
}

/// A fresh SoftHSM2 token under `dir` (`scripts/softhsm-env`): its `export` lines as pairs.
fn softhsm_token(dir: &Path) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/softhsm-env");
    let out = std::process::Command::new(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/softhsm-env: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches(['"', '\'']).to_string()))
        .collect()
}

/// `--unseal pkcs11:<label>`: the master key is on disk only encrypted by an AES key made in a SoftHSM2
/// token; a restart opens it; another token (same label, no such key) fails the start clearly and changes
/// nothing. Storage does not matter here: SQLite only.
#[test]
fn pkcs11_source_wraps_the_master_key_under_a_token_key() {
    let sb = Sandbox::new(shedu_testkit::Backend::Sqlite);
    let server = sb.start(&[]).unwrap();
    sb.cli(
        &server,
        &["ca", "create", "--name", "hsm-ca", "--cn", "HSM"],
    );
    drop(server);
    let clear = std::fs::read_to_string(sb.data.join("master.key")).unwrap();

    let token = softhsm_token(&sb.root.join("softhsm"));
    let var = |vars: &[(String, String)], k: &str| {
        vars.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let module = var(&token, "SHEDU_PKCS11_MODULE");
    let label = var(&token, "SHEDU_PKCS11_TOKEN_LABEL");
    let args = [
        "--unseal",
        "pkcs11:master-wrap",
        "--pkcs11-module",
        module.as_str(),
        "--pkcs11-token-label",
        label.as_str(),
    ];
    let env_of = |vars: &[(String, String)]| {
        ["SOFTHSM2_CONF", "SHEDU_PKCS11_PIN"]
            .map(|k| (k, var(vars, k)))
            .to_vec()
    };
    let start = |vars: &[(String, String)], run: &str| {
        let env = env_of(vars);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        try_start_with(&sb, run, &args, &env)
    };

    let server = start(&token, "pkcs11").unwrap();
    assert!(sb.cli(&server, &["ca", "list"]).contains("hsm-ca"));
    drop(server);
    assert!(!sb.data.join("master.key").exists());
    assert!(!sb.data.join("unseal.salt").exists());
    assert_eq!(mode(&sb.data.join("master.key.wrapped")), 0o600);
    assert_no_clear_key(&sb.data, clear.trim());
    let wrapped = sb.wrapped();

    // A restart opens it with the token.
    let server = start(&token, "pkcs11-again").unwrap();
    assert!(sb.cli(&server, &["ca", "list"]).contains("hsm-ca"));
    drop(server);

    // Another token with the same label has no such key: the start fails saying so, and nothing changes.
    let other = softhsm_token(&sb.root.join("softhsm-other"));
    let err = start(&other, "pkcs11-other")
        .err()
        .expect("started with another token");
    assert!(
        err.stderr
            .contains("auto-unseal (pkcs11:master-wrap) cannot open")
            && err.stderr.contains("the token's key does not open it"),
        "{}",
        err.stderr
    );
    assert_eq!(sb.wrapped(), wrapped);
    assert!(!sb.data.join("master.key").exists());

    // A wrapped file changed behind shedu's back does not open under the right token either.
    let mut tampered = wrapped.clone();
    tampered[20] ^= 1;
    std::fs::write(sb.data.join("master.key.wrapped"), &tampered).unwrap();
    let err = start(&token, "pkcs11-tampered")
        .err()
        .expect("started with a tampered key");
    assert!(
        err.stderr.contains("the token's key does not open it"),
        "{}",
        err.stderr
    );
    std::fs::write(sb.data.join("master.key.wrapped"), &wrapped).unwrap();
    let server = start(&token, "pkcs11-restored").unwrap();
    assert!(sb.cli(&server, &["ca", "list"]).contains("hsm-ca"));
    drop(server);

    // `keys rotate-master` in this mode: a new master key, wrapped by the same token key.
    let out = sb
        .shedu()
        .args(["keys", "rotate-master", "--data-dir"])
        .arg(&sb.data)
        .args(args)
        .envs(env_of(&token))
        .output()
        .unwrap();
    assert!(out.status.success(), "rotate-master: {out:?}");
    assert_ne!(sb.wrapped(), wrapped);
    assert!(!sb.data.join("master.key").exists());
    let server = start(&token, "pkcs11-rotated").unwrap();
    assert!(sb.cli(&server, &["ca", "list"]).contains("hsm-ca"));
}
