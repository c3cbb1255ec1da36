//! The PKCS#11 engine against a real SoftHSM2 token.
//!
//! With `SHEDU_PKCS11_MODULE`, `SHEDU_PKCS11_TOKEN_LABEL`, `SHEDU_PKCS11_PIN` (and `SOFTHSM2_CONF`) set, e.g.
//! by `eval "$(scripts/softhsm-env)"`, every test runs in this process against that token, with its own
//! labels. Without them, each test creates a fresh token with `scripts/softhsm-env` (which installs
//! SoftHSM2 when run as root) and re-runs itself in a child process with that environment, so nothing is
//! skipped and no environment variable is changed inside a running process. Tests that log the whole
//! process out or need a real restart run their body in a child process as well.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::Session;
use shedu_keys::pkcs11::{Pkcs11Config, Pkcs11Engine};
use shedu_keys::{CaSigner, Error, Signer, SoftwareKey};
use shedu_pki::{
    CertInfo, CrlParams, CrlScope, KeyType, Serial, Signs, SubjectName, Validity, build_ca_params,
    build_crl, pem_encode_cert,
};
use zeroize::Zeroizing;

// The test kit's libtest reader, included by path: the test kit depends on this crate.
#[path = "../../testkit/src/libtest.rs"]
#[allow(unreachable_pub)]
mod libtest;

/// SoftHSM 2.6.1 orders nothing across processes: a process reading the token while another one writes it
/// can fail any call (`GetTokenInfo` answered `CKR_GENERAL_ERROR` in a clean-clone run). Every test body
/// using this process's token holds it shared; a child process on the same token runs under it held
/// exclusively.
static SHARED_TOKEN: RwLock<()> = RwLock::new(());

/// Returns the token configuration to run the test body with, and the shared hold on the token, or `None`
/// when the body already ran, and passed, in a child process with a fresh SoftHSM token.
fn token(test: &str) -> Option<(Pkcs11Config, RwLockReadGuard<'static, ()>)> {
    if let Some(config) = Pkcs11Config::from_env().expect("SHEDU_PKCS11_* variables") {
        let shared = SHARED_TOKEN.read().unwrap_or_else(|e| e.into_inner());
        return Some((config, shared));
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("softhsm-{}-{test}", std::process::id()));
    let exports = softhsm_env(&dir);
    run_child(test, &exports);
    let _ = std::fs::remove_dir_all(&dir);
    None
}

/// Runs `scripts/softhsm-env <dir>` and returns the variables it exports.
fn softhsm_env(dir: &Path) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/softhsm-env");
    let hint = "SoftHSM2 is needed for the PKCS#11 tests: install it (Debian/Ubuntu: \
                `sudo apt-get install softhsm2`), or run the tests as root so scripts/softhsm-env can \
                install it, or export SHEDU_PKCS11_MODULE, SHEDU_PKCS11_TOKEN_LABEL, SHEDU_PKCS11_PIN \
                (and SOFTHSM2_CONF) for an existing token";
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}\n{hint}", script.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{hint}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let exports: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), unquote(v)))
        .collect();
    assert!(
        exports.iter().any(|(k, _)| k == "SHEDU_PKCS11_MODULE"),
        "scripts/softhsm-env printed no SHEDU_PKCS11_MODULE"
    );
    exports
}

/// Undoes bash's `printf %q` for the plain paths the script prints (backslash escapes only).
fn unquote(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs one test of this binary in a child process (`--exact`, ignored tests included) and checks that
/// exactly that one test ran and passed. Returns its stdout.
fn run_child(test: &str, env: &[(String, String)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            test,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- child process: {test} ---\n{stdout}{stderr}--- end of {test} ---");
    assert!(
        out.status.success(),
        "child {test} failed:\n{stdout}\n{stderr}"
    );
    libtest::assert_exactly_one_passed(test, &stdout);
    stdout
}

/// A label no other test (or earlier run on a reused token) has used.
fn label(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn verification_alg(key_type: KeyType) -> &'static dyn VerificationAlgorithm {
    match key_type {
        KeyType::EcP256 => &signature::ECDSA_P256_SHA256_ASN1,
        KeyType::EcP384 => &signature::ECDSA_P384_SHA384_ASN1,
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        KeyType::Ed25519 => &signature::ED25519,
    }
}

/// Signs `message` and verifies the signature in software against the signer's public key.
fn sign_and_verify(signer: &dyn Signer, message: &[u8]) {
    let sig = signer.sign(message).unwrap();
    UnparsedPublicKey::new(verification_alg(signer.key_type()), signer.public_key())
        .verify(message, &sig)
        .unwrap_or_else(|_| panic!("{} signature does not verify", signer.key_type()));
}

/// A raw cryptoki session on the token, independent of the engine (same process, so it shares the
/// engine's login).
fn raw_session(config: &Pkcs11Config) -> Session {
    let ctx = Pkcs11::new(&config.module).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == config.token_label)
        .unwrap();
    ctx.open_ro_session(slot).unwrap()
}

/// Reads the protection attributes of the private key labelled `label` directly from the token and checks
/// that the key is sensitive, non-extractable, sign-only, and that its secret value cannot be read.
fn assert_protected(config: &Pkcs11Config, label: &str, key_type: KeyType, generated: bool) {
    let session = raw_session(config);
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "{label}");
    let key = found[0];
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::Local,
                AttributeType::Sign,
                AttributeType::Decrypt,
                AttributeType::Unwrap,
                AttributeType::Derive,
                AttributeType::Id,
            ],
        )
        .unwrap();
    let mut seen = 0;
    for attr in &attrs {
        seen += 1;
        match attr {
            Attribute::Token(v) => assert!(*v, "CKA_TOKEN"),
            Attribute::Private(v) => assert!(*v, "CKA_PRIVATE"),
            Attribute::Sensitive(v) => assert!(*v, "CKA_SENSITIVE"),
            Attribute::Extractable(v) => assert!(!*v, "CKA_EXTRACTABLE"),
            Attribute::AlwaysSensitive(v) => assert_eq!(*v, generated, "CKA_ALWAYS_SENSITIVE"),
            Attribute::NeverExtractable(v) => assert_eq!(*v, generated, "CKA_NEVER_EXTRACTABLE"),
            Attribute::Local(v) => assert_eq!(*v, generated, "CKA_LOCAL"),
            Attribute::Sign(v) => assert!(*v, "CKA_SIGN"),
            Attribute::Decrypt(v) => assert!(!*v, "CKA_DECRYPT"),
            Attribute::Unwrap(v) => assert!(!*v, "CKA_UNWRAP"),
            Attribute::Derive(v) => assert!(!*v, "CKA_DERIVE"),
            Attribute::Id(v) => assert_eq!(v, label.as_bytes(), "CKA_ID"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, 12, "every protection attribute is readable");
    // The secret parts answer CKR_ATTRIBUTE_SENSITIVE.
    let secret: &[AttributeType] = if key_type.rsa_bits().is_some() {
        &[
            AttributeType::PrivateExponent,
            AttributeType::Prime1,
            AttributeType::Prime2,
        ]
    } else {
        &[AttributeType::Value]
    };
    for info in session.get_attribute_info(key, secret).unwrap() {
        assert!(
            matches!(info, AttributeInfo::Sensitive),
            "{key_type}: secret attribute readable: {info:?}"
        );
    }
    assert!(
        session.get_attributes(key, secret).unwrap().is_empty(),
        "{key_type}: a secret attribute came back"
    );
}

fn open(config: &Pkcs11Config) -> Pkcs11Engine {
    Pkcs11Engine::open(config.clone()).unwrap()
}

#[test]
fn every_key_type_generates_in_the_token_and_signs() {
    let Some((config, _shared)) = token("every_key_type_generates_in_the_token_and_signs") else {
        return;
    };
    let engine = open(&config);
    for kt in KeyType::ALL {
        let name = label(&format!("gen-{kt}"));
        if kt == KeyType::Ed25519 && !engine.supports(kt) {
            let err = engine.generate(&name, kt).unwrap_err();
            assert!(matches!(err, Error::UnsupportedAlgorithm(_)), "{err}");
            println!("ed25519: token has no CKM_EC_EDWARDS_KEY_PAIR_GEN/CKM_EDDSA: {err}");
            continue;
        }
        assert!(engine.supports(kt), "{kt}");
        let start = Instant::now();
        let signer = engine.generate(&name, kt).unwrap();
        println!("{kt}: generated in {:?}", start.elapsed());
        assert_eq!(signer.key_type(), kt);
        for msg in [&b""[..], b"hello", &[0x5a; 4096]] {
            sign_and_verify(signer.as_ref(), msg);
        }
        assert_protected(&config, &name, kt, true);
        assert!(engine.contains(&name).unwrap());
        // The label is taken now.
        let err = engine.generate(&name, kt).unwrap_err();
        assert!(matches!(err, Error::KeyExists { .. }), "{err}");
    }
}

#[test]
fn find_after_restart() {
    let Some((config, shared)) = token("find_after_restart") else {
        return;
    };
    let engine = open(&config);
    let keys: Vec<(String, KeyType, Arc<dyn Signer>)> = [KeyType::EcP256, KeyType::Rsa2048]
        .into_iter()
        .map(|kt| {
            let name = label(&format!("restart-{kt}"));
            let signer = engine.generate(&name, kt).unwrap();
            (name, kt, signer)
        })
        .collect();

    // A second engine in this process (same login state).
    let second = open(&config);
    for (name, kt, signer) in &keys {
        let again = second.find(name, *kt).unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        sign_and_verify(again.as_ref(), b"found again");
    }
    drop(second);
    // The first engine still works after the second closed its sessions.
    sign_and_verify(keys[0].2.as_ref(), b"still logged in");

    // A real restart: a new process loads the module, logs in and finds the keys.
    let spec = keys
        .iter()
        .map(|(name, kt, signer)| format!("{name},{kt},{}", hex(signer.public_key())))
        .collect::<Vec<_>>()
        .join(";");
    let out = {
        // The child reads the token this process writes: not while other tests here use it.
        drop(shared);
        let _apart = SHARED_TOKEN.write().unwrap_or_else(|e| e.into_inner());
        run_child(
            "restart_child",
            &[("SHEDU_TEST_RESTART_KEYS".to_string(), spec)],
        )
    };
    assert!(out.contains("restart child found 2 keys"), "{out}");

    // Wrong type for an existing label, and an unknown label.
    let err = engine.find(&keys[0].0, KeyType::EcP384).unwrap_err();
    assert!(matches!(err, Error::InvalidKey(_)), "{err}");
    let err = engine.find(&keys[1].0, KeyType::Rsa3072).unwrap_err();
    assert!(matches!(err, Error::InvalidKey(_)), "{err}");
    let err = engine.find(&label("missing"), KeyType::EcP256).unwrap_err();
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
}

/// Body of `find_after_restart` in a fresh process; does nothing when run on its own.
#[test]
#[ignore = "run by find_after_restart in a child process"]
fn restart_child() {
    let Ok(spec) = std::env::var("SHEDU_TEST_RESTART_KEYS") else {
        return;
    };
    let config = Pkcs11Config::from_env().unwrap().unwrap();
    // Nothing in this process is logged in yet, so the token itself judges the PIN.
    let mut wrong = config.clone();
    wrong.pin = Zeroizing::new("0000".into());
    let err = Pkcs11Engine::open(wrong).unwrap_err();
    assert!(matches!(err, Error::WrongPin { .. }), "{err}");

    let engine = open(&config);
    let mut n = 0;
    for entry in spec.split(';') {
        let mut parts = entry.split(',');
        let (name, kt, public) = (
            parts.next().unwrap(),
            parts.next().unwrap().parse::<KeyType>().unwrap(),
            parts.next().unwrap(),
        );
        let signer = engine.find(name, kt).unwrap();
        assert_eq!(hex(signer.public_key()), public, "{name}");
        sign_and_verify(signer.as_ref(), b"after restart");
        n += 1;
    }
    println!("restart child found {n} keys");
}

#[test]
fn software_keys_import_and_sign() {
    let Some((config, _shared)) = token("software_keys_import_and_sign") else {
        return;
    };
    let engine = open(&config);
    let mut cases = vec![
        SoftwareKey::generate(KeyType::EcP256).unwrap(),
        SoftwareKey::generate(KeyType::EcP384).unwrap(),
        SoftwareKey::generate(KeyType::Rsa2048).unwrap(),
    ];
    if engine.supports(KeyType::Ed25519) {
        cases.push(SoftwareKey::generate(KeyType::Ed25519).unwrap());
    }
    // Traditional PEM from openssl: SEC1 and PKCS#1.
    for (args, kt) in [
        (
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout"][..],
            KeyType::EcP256,
        ),
        (&["genrsa", "-traditional", "2048"][..], KeyType::Rsa2048),
    ] {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}");
        let pem = Zeroizing::new(String::from_utf8(out.stdout).unwrap());
        assert!(
            pem.contains("-----BEGIN EC PRIVATE KEY") || pem.contains("-----BEGIN RSA PRIVATE KEY")
        );
        cases.push(SoftwareKey::from_pem(&pem, kt).unwrap());
    }
    for key in &cases {
        let kt = key.key_type();
        let name = label(&format!("import-{kt}"));
        let signer = engine.import(&name, key).unwrap();
        assert_eq!(signer.key_type(), kt);
        assert_eq!(signer.public_key(), key.public_key(), "{kt}");
        sign_and_verify(signer.as_ref(), b"imported");
        assert_protected(&config, &name, kt, false);
        // And after a lookup by label.
        let found = engine.find(&name, kt).unwrap();
        assert_eq!(found.public_key(), key.public_key());
        sign_and_verify(found.as_ref(), b"imported and found");
        let err = engine.import(&name, key).unwrap_err();
        assert!(matches!(err, Error::KeyExists { .. }), "{err}");
    }
}

#[test]
fn self_signed_ca_verifies_with_openssl() {
    let Some((config, _shared)) = token("self_signed_ca_verifies_with_openssl") else {
        return;
    };
    let engine = open(&config);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(label("ca"));
    std::fs::create_dir_all(&dir).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for kt in [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Rsa2048,
        KeyType::Ed25519,
    ] {
        if !engine.supports(kt) {
            continue;
        }
        let signer = engine.generate(&label(&format!("ca-{kt}")), kt).unwrap();
        let subject = SubjectName {
            common_name: format!("shedu PKCS#11 test CA {kt}"),
            organization: Some("shedu".into()),
            ..Default::default()
        };
        let params = build_ca_params(
            subject.to_dn().unwrap(),
            Validity::root(now, 30).unwrap(),
            &Serial::random(),
            Some(1),
            true,
        )
        .unwrap();
        let cert = params.self_signed(&CaSigner(signer)).unwrap();
        let pem_path: PathBuf = dir.join(format!("{kt}.pem"));
        std::fs::write(&pem_path, pem_encode_cert(cert.der())).unwrap();
        let out = Command::new("openssl")
            .arg("verify")
            .arg("-x509_strict")
            .arg("-CAfile")
            .arg(&pem_path)
            .arg(&pem_path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.trim_end().ends_with(": OK"),
            "{kt}: openssl verify: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{kt}: {}", text.trim_end());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A signature that fails in the token keeps the engine's error as the source of pki's `Error::Signing`
/// (rcgen itself can only say `RemoteKeyError`), so callers can tell a key that is gone from a bug.
#[test]
fn a_failed_signature_keeps_the_engine_error() {
    let Some((config, _shared)) = token("a_failed_signature_keeps_the_engine_error") else {
        return;
    };
    let engine = open(&config);
    let name = label("gone");
    let signer = CaSigner(engine.generate(&name, KeyType::EcP256).unwrap());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let subject = SubjectName {
        common_name: "shedu PKCS#11 CRL signer".into(),
        ..Default::default()
    };
    let params = build_ca_params(
        subject.to_dn().unwrap(),
        Validity::root(now, 30).unwrap(),
        &Serial::random(),
        None,
        true,
    )
    .unwrap();
    let ca = CertInfo::from_der(params.self_signed(&signer).unwrap().der()).unwrap();
    let key_id = ca.subject_key_id.clone().unwrap();
    let crl = CrlParams {
        issuer_der: &ca.subject_der,
        issuer_key_id: &key_id,
        number: 1,
        this_update: now,
        next_update: now + 3600,
        revoked: &[],
        scope: CrlScope::Full { freshest: None },
        distribution_point: None,
    };
    build_crl(&crl, &signer, KeyType::EcP256).unwrap();
    assert!(
        signer.take_sign_failure().is_none(),
        "a good signature keeps nothing"
    );

    assert_eq!(engine.destroy(&name).unwrap(), 2, "private and public key");
    let err = build_crl(&crl, &signer, KeyType::EcP256).unwrap_err();
    let shedu_pki::Error::Signing { source } = &err else {
        panic!("not a signing error: {err}");
    };
    let engine_err = source
        .downcast_ref::<Error>()
        .unwrap_or_else(|| panic!("the source is not the engine's error: {source}"));
    assert!(
        matches!(engine_err, Error::KeyNotFound { label, .. } if *label == name),
        "{engine_err}"
    );
    assert!(signer.take_sign_failure().is_none(), "pki took the cause");
}

#[test]
fn concurrent_signing() {
    let Some((config, _shared)) = token("concurrent_signing") else {
        return;
    };
    let engine = open(&config);
    for (kt, per_thread) in [(KeyType::EcP256, 200), (KeyType::Rsa2048, 25)] {
        let signer = engine.generate(&label(&format!("conc-{kt}")), kt).unwrap();
        let start = Instant::now();
        let results: Vec<Vec<(Vec<u8>, Vec<u8>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let signer = signer.clone();
                    s.spawn(move || {
                        (0..per_thread)
                            .map(|i| {
                                let msg = format!("thread {t} message {i}").into_bytes();
                                let sig = signer.sign(&msg).unwrap();
                                (msg, sig)
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let elapsed = start.elapsed();
        let key = UnparsedPublicKey::new(verification_alg(kt), signer.public_key());
        let mut n = 0;
        for (msg, sig) in results.iter().flatten() {
            key.verify(msg, sig).unwrap();
            n += 1;
        }
        assert_eq!(n, 8 * per_thread);
        println!("{kt}: {n} signatures on 8 threads in {elapsed:?}, all verify");
    }
}

/// Several engines of one process create and look up keys at the same time, as CAs created in parallel
/// do. SoftHSM 2.6.1 fails a creation at random when a search runs beside it (`CKR_GENERAL_ERROR` or
/// `CKR_TEMPLATE_INCONSISTENT`); the engines order searches and creations per module, so every call
/// succeeds.
#[test]
fn keys_created_and_found_in_parallel_by_several_engines() {
    let Some((config, _shared)) = token("keys_created_and_found_in_parallel_by_several_engines")
    else {
        return;
    };
    let per_thread = 12;
    let created: Vec<Vec<(String, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let engine = open(&config);
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let name = label(&format!("par-{t}-{i}"));
                            let signer = engine.generate(&name, KeyType::EcP256).unwrap();
                            // A search right behind the creation, while other threads create.
                            let found = engine.find(&name, KeyType::EcP256).unwrap();
                            assert_eq!(found.public_key(), signer.public_key());
                            assert!(!engine.contains(&label("absent")).unwrap());
                            (name, signer.public_key().to_vec())
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let engine = open(&config);
    for (name, public_key) in created.iter().flatten() {
        let again = engine.find(name, KeyType::EcP256).unwrap();
        assert_eq!(again.public_key(), &public_key[..]);
        assert_eq!(engine.destroy(name).unwrap(), 2, "private and public key");
    }
    assert_eq!(created.iter().flatten().count(), 4 * per_thread);
}

#[test]
fn wrong_pin_label_and_module_are_reported() {
    let Some((config, _shared)) = token("wrong_pin_label_and_module_are_reported") else {
        return;
    };
    // Also with an engine of this process logged in: the right PIN does not hide a wrong one.
    let engine = open(&config);
    let mut wrong = config.clone();
    wrong.pin = Zeroizing::new("0000".into());
    let err = Pkcs11Engine::open(wrong).unwrap_err();
    assert!(matches!(err, Error::WrongPin { .. }), "{err}");
    assert!(!err.to_string().contains("0000"));
    assert!(!format!("{config:?}").contains(config.pin.as_str()));

    let mut no_token = config.clone();
    no_token.token_label = "no-such-token".into();
    let err = Pkcs11Engine::open(no_token).unwrap_err();
    match &err {
        Error::TokenNotFound { label, available } => {
            assert_eq!(label, "no-such-token");
            assert!(available.contains(&config.token_label), "{available}");
        }
        other => panic!("expected TokenNotFound, got {other}"),
    }

    let mut no_module = config.clone();
    no_module.module = "/nonexistent/libpkcs11.so".into();
    let err = Pkcs11Engine::open(no_module).unwrap_err();
    assert!(matches!(err, Error::Pkcs11Module { .. }), "{err}");
    println!("{err}");

    let err = engine.generate("", KeyType::EcP256).unwrap_err();
    assert!(matches!(err, Error::InvalidKey(_)), "{err}");
    // The engine that was open all along is unaffected.
    let signer = engine
        .generate(&label("after-errors"), KeyType::EcP256)
        .unwrap();
    sign_and_verify(signer.as_ref(), b"fine");
    assert_eq!(engine.destroy(&label("nothing")).unwrap(), 0);
}

#[test]
fn session_recovery() {
    if token("session_recovery").is_none() {
        return;
    }
    // The child creates and deletes a key: on a token of its own, as SoftHSM 2.6.1 can fail a creation in
    // one process while another process changes the same token (the engines order calls within a process
    // only; `keys_created_and_found_in_parallel_by_several_engines` failed so in a clean-clone run).
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("softhsm-{}-recovery", std::process::id()));
    let mut env = softhsm_env(&dir);
    env.push(("SHEDU_TEST_RECOVERY".to_string(), "1".to_string()));
    run_child("recovery_child", &env);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Body of `session_recovery`: logs the whole process out of the token underneath the engine (which a
/// token reset or removal does too). Runs in its own process because that logout hits every engine in it.
#[test]
#[ignore = "run by session_recovery in a child process"]
fn recovery_child() {
    if std::env::var_os("SHEDU_TEST_RECOVERY").is_none() {
        return;
    }
    let config = Pkcs11Config::from_env().unwrap().unwrap();
    let mut small = config.clone();
    small.sessions = 2;
    let engine = open(&small);
    let name = label("recovery");
    let signer = engine.generate(&name, KeyType::EcP256).unwrap();
    sign_and_verify(signer.as_ref(), b"before");

    raw_session(&config).logout().unwrap();
    let err = signer.sign(b"during").unwrap_err();
    assert!(matches!(err, Error::TokenUnavailable(_)), "{err}");
    println!("call after logout: {err}");
    // The engine reopens and logs in again; every pooled session comes back.
    for i in 0..10 {
        sign_and_verify(signer.as_ref(), format!("after {i}").as_bytes());
    }
    assert_eq!(
        engine.find(&name, KeyType::EcP256).unwrap().public_key(),
        signer.public_key()
    );
    assert_eq!(engine.destroy(&name).unwrap(), 2);
    let err = signer.sign(b"deleted").unwrap_err();
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
}

/// Throughput through the engine, 1 and 4 threads, for the report:
/// `cargo test --release -p shedu-keys --test pkcs11 -- --ignored --nocapture bench_signing`.
#[test]
#[ignore = "benchmark"]
fn bench_signing() {
    let Some((config, _shared)) = token("bench_signing") else {
        return;
    };
    let engine = open(&config);
    for kt in [KeyType::EcP256, KeyType::Rsa2048] {
        let signer = engine.generate(&label(&format!("bench-{kt}")), kt).unwrap();
        let msg = [0xa5u8; 512];
        for threads in [1usize, 4] {
            let per_thread = if kt == KeyType::EcP256 { 4000 } else { 500 };
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    let signer = signer.clone();
                    s.spawn(move || {
                        for _ in 0..per_thread {
                            signer.sign(&msg).unwrap();
                        }
                    });
                }
            });
            let rate = (threads * per_thread) as f64 / start.elapsed().as_secs_f64();
            println!("BENCH {kt}: {threads} thread(s): {rate:.0} signatures/s");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret sealed under a token AES key (the master key's `pkcs11` auto-unseal) opens with the same key
/// and associated data only; the key is made in the token at the first seal, sensitive and not
/// extractable; a label with no key is `KeyNotFound`.
#[test]
fn secrets_seal_under_a_token_key() {
    let Some((config, _shared)) = token("secrets_seal_under_a_token_key") else {
        return;
    };
    let engine = open(&config);
    let name = label("wrap");
    let sealed = engine
        .seal_secret(&name, b"aad", b"the master key")
        .unwrap();
    assert!(!sealed.windows(14).any(|w| w == b"the master key"));
    assert_eq!(
        &engine.open_secret(&name, b"aad", &sealed).unwrap()[..],
        b"the master key"
    );
    // A second seal reuses the key (a fresh IV: another ciphertext).
    let again = engine
        .seal_secret(&name, b"aad", b"the master key")
        .unwrap();
    assert_ne!(again, sealed);
    assert_eq!(
        &engine.open_secret(&name, b"aad", &again).unwrap()[..],
        b"the master key"
    );
    let err = engine.open_secret(&name, b"other", &sealed).unwrap_err();
    assert!(matches!(err, Error::Crypto(_)), "{err}");
    let mut tampered = sealed.clone();
    tampered[20] ^= 1;
    assert!(matches!(
        engine.open_secret(&name, b"aad", &tampered).unwrap_err(),
        Error::Crypto(_)
    ));
    let err = engine
        .open_secret(&label("absent"), b"aad", &sealed)
        .unwrap_err();
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");

    let session = raw_session(&config);
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(name.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1);
    let attrs = session
        .get_attributes(
            found[0],
            &[AttributeType::Sensitive, AttributeType::Extractable],
        )
        .unwrap();
    assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
    assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
}
