//! `signrate`: the machine's raw limits for issuance, in process, without HTTP or a database.
//!
//! Why: the issue asks to put the raw signing rate of each CA key type beside the HTTPS issuance rate, so
//! the ratio shows how close issuance gets to what the hardware can sign. Two figures per key type:
//!
//! * `sign/s`: signatures of the CA key over a 500-byte message (about a leaf's to-be-signed size) through
//!   the same `shedu_keys::Signer` the server signs with;
//! * `issue/s`: the whole CPU part of one issuance as `shedu_core` runs it: parse and verify the CSR
//!   (`shedu_pki::Csr::parse`), build and sign the leaf with AIA and CRLDP URLs (`shedu_pki::issue_leaf`)
//!   and read it back (`shedu_pki::CertInfo::from_der`, which computes the fingerprint the database
//!   indexes).
//!
//! Each figure runs `--seconds` on `--threads` threads (default 1, "per core"); with `--threads` equal to
//! the number of cores it is the machine's ceiling for issuance.
//!
//! With `--pkcs11` the CA keys are generated inside the PKCS#11 token that `SHEDU_PKCS11_MODULE`,
//! `SHEDU_PKCS11_TOKEN_LABEL` and `SHEDU_PKCS11_PIN` name (`eval "$(scripts/softhsm-env)"` makes a
//! SoftHSM2 one) through `shedu_keys::Pkcs11Engine`, exactly as a CA created with `"engine": "pkcs11"` gets
//! its key, and are deleted from the token afterwards. The issue asks for signatures/s per engine: this is
//! the same measurement through the token, so the two engines compare like for like. The engine's session
//! pool (`SHEDU_PKCS11_SESSIONS`, default 4) bounds how many threads sign at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use rcgen::Issuer;
use serde::Serialize;
use shedu_bench::unix_now;
use shedu_keys::{CaSigner, Pkcs11Engine, Signer, SoftwareKey};
use shedu_pki::{
    CertInfo, Csr, IssueRequest, KeyType, Profile, RevocationUrls, Serial, SubjectName, Validity,
    build_ca_params, issue_leaf,
};

/// Raw signing and in-process issuance rates per CA key type.
#[derive(Debug, Parser)]
#[command(name = "signrate")]
struct Args {
    /// CA key types to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = shedu_bench::KEY_TYPES.map(String::from))]
    key_types: Vec<String>,
    /// Key type of the CSR the issuance figure parses.
    #[arg(long, default_value = "ec-p256")]
    csr_key_type: String,
    /// Seconds per figure.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Threads signing at once.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Generate the CA keys in the PKCS#11 token named by the `SHEDU_PKCS11_*` variables instead of in
    /// software.
    #[arg(long)]
    pkcs11: bool,
    /// Print one JSON line per key type instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    /// `software` (aws-lc-rs) or `pkcs11`.
    engine: &'static str,
    ca_key_type: String,
    csr_key_type: String,
    threads: usize,
    sign_per_s: f64,
    issue_per_s: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let threads = args.threads.max(1);
    let seconds = Duration::from_secs_f64(args.seconds);
    let csr_pem = shedu_bench::make_csr(&args.csr_key_type, "device-0001")?;
    let token = if args.pkcs11 {
        let config = shedu_keys::Pkcs11Config::from_env()?.ok_or_else(|| {
            anyhow::anyhow!(
                "--pkcs11 needs SHEDU_PKCS11_MODULE, SHEDU_PKCS11_TOKEN_LABEL and SHEDU_PKCS11_PIN \
                 (eval \"$(scripts/softhsm-env)\")"
            )
        })?;
        Some(Pkcs11Engine::open(config).context("opening the PKCS#11 token")?)
    } else {
        None
    };
    let engine = if token.is_some() {
        "pkcs11"
    } else {
        "software"
    };
    if !args.json {
        println!(
            "in-process rates, {engine} keys, {threads} thread(s), {:.1} s per figure, CSR key {}",
            args.seconds, args.csr_key_type
        );
        println!("| CA key | sign/s | issue/s (parse CSR + sign + read back) |");
        println!("|---|---:|---:|");
    }
    for name in &args.key_types {
        let key_type: KeyType = name.parse().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let label = format!("signrate-{name}-{}", hex::encode(rand::random::<[u8; 4]>()));
        let key: Arc<dyn Signer> = match &token {
            Some(t) => t
                .generate(&label, key_type)
                .with_context(|| format!("generating a {name} key in the token"))?,
            None => Arc::new(
                SoftwareKey::generate(key_type)
                    .with_context(|| format!("generating a {name} key"))?,
            ),
        };
        let measured = measure(key, &csr_pem, threads, seconds);
        if let Some(Err(e)) = token.as_ref().map(|t| t.destroy(&label)) {
            eprintln!("warning: could not delete the test key {label} from the token: {e}");
        }
        let (sign_per_s, issue_per_s) = measured?;
        let row = Row {
            engine,
            ca_key_type: name.clone(),
            csr_key_type: args.csr_key_type.clone(),
            threads,
            sign_per_s,
            issue_per_s,
        };
        if args.json {
            println!("{}", serde_json::to_string(&row)?);
        } else {
            println!(
                "| {} | {} | {} |",
                row.ca_key_type,
                shedu_bench::thousands(row.sign_per_s),
                shedu_bench::thousands(row.issue_per_s)
            );
        }
    }
    Ok(())
}

/// (sign/s, issue/s) of `key`, each over `seconds` on `threads` threads.
fn measure(
    key: Arc<dyn Signer>,
    csr_pem: &str,
    threads: usize,
    seconds: Duration,
) -> anyhow::Result<(f64, f64)> {
    let message: Vec<u8> = (0..500u32).map(|i| (i * 31 % 251) as u8).collect();
    let sign_key = key.clone();
    let sign_per_s = run_for(seconds, threads, move || {
        sign_key
            .sign(&message)
            .map(|_| ())
            .map_err(anyhow::Error::from)
    })?;

    let issuer = Arc::new(make_issuer(key)?);
    let profile = Profile::default();
    // As a server with a public URL configured writes them: AIA (OCSP, caIssuers) and CRLDP.
    let urls = RevocationUrls {
        ocsp: Some("http://pki.example.invalid/ocsp".into()),
        ca_issuers: Some("http://pki.example.invalid/ca.crt".into()),
        crl: Some("http://pki.example.invalid/ca.crl".into()),
    };
    let issue_per_s = run_for(seconds, threads, move || {
        let now = unix_now();
        let csr = Csr::parse(csr_pem.as_bytes())?;
        let validity = Validity::within_issuer(now, None, 365, now + 3650 * 86_400)?;
        let serial = Serial::random();
        let der = issue_leaf(
            &IssueRequest {
                csr: &csr,
                sans: None,
                validity,
                serial: &serial,
                profile: &profile,
                revocation_urls: &urls,
            },
            &issuer,
        )?;
        CertInfo::from_der(&der)?;
        Ok(())
    })?;
    Ok((sign_per_s, issue_per_s))
}

/// A self-signed root CA around `key`, loaded the way the server loads one.
fn make_issuer(key: Arc<dyn Signer>) -> anyhow::Result<Issuer<'static, CaSigner>> {
    let signer = CaSigner(key);
    let subject = SubjectName {
        common_name: "signrate CA".into(),
        ..SubjectName::default()
    }
    .to_dn()?;
    let params = build_ca_params(
        subject,
        Validity::root(unix_now(), 3650)?,
        &Serial::random(),
        None,
        true,
    )?;
    let cert = params.self_signed(&signer)?;
    Ok(Issuer::from_ca_cert_der(cert.der(), signer)?)
}

/// Runs `op` in a loop on `threads` threads for `how_long`; returns completed operations per second.
fn run_for(
    how_long: Duration,
    threads: usize,
    op: impl Fn() -> anyhow::Result<()> + Send + Sync,
) -> anyhow::Result<f64> {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let elapsed = std::thread::scope(|s| -> anyhow::Result<Duration> {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        op()?;
                        n += 1;
                    }
                    done.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                })
            })
            .collect();
        std::thread::sleep(how_long);
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??;
        }
        Ok(started.elapsed())
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}
