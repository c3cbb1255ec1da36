//! `crlbench`: how long a CA's complete CRL takes to build when it lists 100,000 revoked certificates.
//!
//! Why: the issue asks for CRL regeneration time at 100k revoked entries on both databases. The VA
//! (`shedu_core::Va::crl`) rebuilds a CRL whenever the set of revoked certificates changed, so with
//! many revocations this is the cost every revocation adds to the next CRL fetch. The tool runs the real
//! service code in process, no HTTP: it opens the services over a fresh database (a SQLite file, or a
//! scratch PostgreSQL database that is dropped afterwards), creates a P-256 root CA through it, inserts
//! `--count` certificates already in status `revoked` (with `revoked_at` and a spread of reason codes)
//! plus one active one through `Store::bulk_insert_certificates`, then times:
//!
//! 1. the first `crl(ca, 0, Full)`: read every revoked row, encode and sign the CRL, store it;
//! 2. the same call again, with nothing changed: the cached answer (the cost of the change check alone);
//! 3. after `Issuance::revoke` of the active certificate, the call again: the rebuild a revocation causes;
//!
//! and, on their own, the two queries the build makes (`revocation_marker`, `revoked_certificates`), so the
//! database's share is visible. It checks the result with `openssl crl` when `openssl` is on the PATH:
//! signature against the CA certificate, and the number of entries.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use shedu_bench::mix;
use shedu_core::{AuditContext, CrlKind};
use shedu_pki::RevocationReason;
use shedu_store::CertRow;

const DAY: i64 = 86_400;

/// The reason codes the synthetic revocations cycle through (`unspecified` is written without a reason).
const REASONS: [&str; 5] = [
    "key_compromise",
    "superseded",
    "cessation_of_operation",
    "affiliation_changed",
    "unspecified",
];

/// Times building a CRL of many revoked certificates through shedu's VA, on SQLite and PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "crlbench")]
struct Args {
    /// Database(s) to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// Revoked certificates the CRL lists.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Key type of the CA that signs the CRL.
    #[arg(long, default_value = "ec-p256")]
    key_type: String,
    /// Rows per `bulk_insert_certificates` call (one transaction each).
    #[arg(long, default_value_t = 50_000)]
    chunk: u64,
    /// Folder for the SQLite file [default: a temporary folder, removed afterwards].
    #[arg(long)]
    sqlite_dir: Option<PathBuf>,
    /// Write each backend's rebuilt CRL (DER) and the CA certificate (PEM) into this folder.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Skip the check with `openssl crl`.
    #[arg(long)]
    no_openssl: bool,
    /// Print one JSON line per backend instead of the summary.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: &'static str,
    revoked: u64,
    ca_key_type: String,
    insert_s: f64,
    /// First `crl()`: nothing cached, nothing stored.
    first_build_ms: f64,
    /// Second `crl()` with nothing changed: the change check and the cached answer.
    cached_ms: f64,
    /// `crl()` after one more revocation.
    rebuild_ms: f64,
    /// `revocation_marker` alone (the change check each fetch makes).
    marker_query_ms: f64,
    /// `revoked_certificates` alone (the rows a build reads).
    revoked_query_ms: f64,
    crl_bytes: usize,
    rebuilt_crl_bytes: usize,
    first_number: i64,
    rebuilt_number: i64,
    /// Entries `openssl crl -text` lists in the rebuilt CRL, when openssl ran.
    openssl_entries: Option<u64>,
    /// Whether `openssl crl -CAfile` verified the rebuilt CRL's signature, when openssl ran.
    openssl_verified: Option<bool>,
    /// The first lines of `openssl crl -text` for the rebuilt CRL.
    openssl_head: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut reports = Vec::new();
    if matches!(args.backend, Which::Sqlite | Which::Both) {
        let tmp = tempfile::tempdir()?;
        let dir = args
            .sqlite_dir
            .clone()
            .unwrap_or_else(|| tmp.path().to_path_buf());
        let path = dir.join(format!(
            "crlbench-{}.db",
            hex::encode(rand::random::<[u8; 4]>())
        ));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let result = run("sqlite", &url, &args).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        reports.push(result?);
    }
    if matches!(args.backend, Which::Postgres | Which::Both) {
        let args = &args;
        reports.push(
            shedu_bench::on_scratch_postgres(
                |url| async move { run("postgres", &url, args).await },
            )
            .await?,
        );
    }
    for r in &reports {
        if args.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            print_human(r);
        }
    }
    Ok(())
}

async fn run(backend: &'static str, url: &str, args: &Args) -> anyhow::Result<Report> {
    let (reader, service) = shedu_bench::open_services(url).await?;
    let actor = AuditContext::new("crlbench", "", "admin", "", "");
    let ca = service
        .cas
        .create(
            &actor,
            shedu_bench::root_ca(
                format!("crlbench-{backend}"),
                "crlbench CA",
                args.key_type.parse()?,
            ),
        )
        .await?;

    // The revoked rows, then one active certificate to revoke through the service later.
    let now = service.registry.now();
    let der = vec![0x30u8; 480];
    let started = Instant::now();
    let chunk = args.chunk.max(1);
    let mut done = 0u64;
    while done < args.count {
        let n = chunk.min(args.count - done);
        let rows: Vec<CertRow> = (done..done + n)
            .map(|i| cert_row(&ca.id, i, now, &der, true))
            .collect();
        reader
            .bulk_insert_certificates(&rows)
            .await
            .with_context(|| format!("inserting rows {done}..{}", done + n))?;
        done += n;
    }
    let last = cert_row(&ca.id, args.count, now, &der, false);
    reader
        .bulk_insert_certificates(std::slice::from_ref(&last))
        .await?;
    let insert_s = started.elapsed().as_secs_f64();

    let t = Instant::now();
    let first = service.va.crl(&ca.id, 0, CrlKind::Full).await?;
    let first_build_ms = ms(t);
    let t = Instant::now();
    let cached = service.va.crl(&ca.id, 0, CrlKind::Full).await?;
    let cached_ms = ms(t);
    if cached.number != first.number {
        bail!("the second CRL fetch rebuilt the CRL although nothing changed");
    }

    let t = Instant::now();
    reader.revocation_marker(&ca.id).await?;
    let marker_query_ms = ms(t);
    let t = Instant::now();
    let rows = reader.revoked_certificates(&ca.id, None).await?;
    let revoked_query_ms = ms(t);
    if rows.len() as u64 != args.count {
        bail!("expected {} revoked rows, read {}", args.count, rows.len());
    }

    // One more revocation changes the revoked count, so the next fetch must rebuild.
    service
        .issuance
        .revoke(
            &actor,
            &ca.id,
            &last.serial.parse()?,
            RevocationReason::KeyCompromise,
            None,
        )
        .await?;
    let t = Instant::now();
    let rebuilt = service.va.crl(&ca.id, 0, CrlKind::Full).await?;
    let rebuild_ms = ms(t);
    if rebuilt.number == first.number {
        bail!("the CRL was not rebuilt after a revocation");
    }
    drop(service);
    reader.close().await;

    let ca_pem = pem_block("CERTIFICATE", &ca.certificate_der);
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(format!("crl-{backend}.der")), rebuilt.der.as_ref())?;
        std::fs::write(dir.join(format!("ca-{backend}.pem")), &ca_pem)?;
    }
    let (openssl_entries, openssl_verified, openssl_head) = if args.no_openssl {
        (None, None, Vec::new())
    } else {
        match check_with_openssl(&rebuilt.der, &ca_pem) {
            Ok((n, ok, head)) => (Some(n), Some(ok), head),
            Err(e) => {
                eprintln!("note: openssl check skipped: {e:#}");
                (None, None, Vec::new())
            }
        }
    };

    Ok(Report {
        backend,
        revoked: args.count,
        ca_key_type: args.key_type.parse()?,
        insert_s,
        first_build_ms,
        cached_ms,
        rebuild_ms,
        marker_query_ms,
        revoked_query_ms,
        crl_bytes: first.der.len(),
        rebuilt_crl_bytes: rebuilt.der.len(),
        first_number: first.number,
        rebuilt_number: rebuilt.number,
        openssl_entries,
        openssl_verified,
        openssl_head,
    })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// A synthetic certificate row: unique serial (16 bytes, positive, as shedu makes them) and fingerprint;
/// revoked within the last 30 days with one of [`REASONS`], or active when `revoked` is false.
fn cert_row(ca_id: &str, i: u64, now: i64, der: &[u8], revoked: bool) -> CertRow {
    let h = mix(i);
    let serial_hi = (h & 0x3fff_ffff_ffff_ffff) | 0x4000_0000_0000_0000;
    let not_after = now + 200 * DAY;
    let reason = REASONS[(i % REASONS.len() as u64) as usize];
    CertRow {
        seq: 0,
        ca_id: ca_id.to_string(),
        serial: format!("{serial_hi:016x}{:016x}", mix(h ^ 0x5e71a1)),
        fingerprint: format!(
            "{h:016x}{:016x}{:016x}{:016x}",
            mix(h ^ 1),
            mix(h ^ 2),
            mix(h ^ 3)
        ),
        subject: format!("CN=device-{i}"),
        sans: format!("DNS:device-{i}.bench.invalid"),
        key_type: "ec-p256".into(),
        not_before: not_after - 365 * DAY,
        not_after,
        der: der.to_vec(),
        status: if revoked { "revoked" } else { "active" }.into(),
        revoked_at: revoked.then(|| now - 60 - i64::try_from(h % (30 * DAY as u64)).unwrap_or(0)),
        revocation_reason: revoked.then(|| reason.to_string()),
        created_at: not_after - 365 * DAY,
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// `openssl crl -text` (entries, first lines) and `openssl crl -CAfile` (signature) on the CRL.
fn check_with_openssl(der: &[u8], ca_pem: &str) -> anyhow::Result<(u64, bool, Vec<String>)> {
    let dir = tempfile::tempdir()?;
    let crl = dir.path().join("crl.der");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&crl, der)?;
    std::fs::write(&ca, ca_pem)?;
    let text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path(&crl)?,
        "-noout",
        "-text",
    ])?;
    let entries = text
        .lines()
        .filter(|l| l.trim_start().starts_with("Serial Number:"))
        .count() as u64;
    let head = text.lines().take(16).map(str::to_string).collect();
    let verify = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in", path(&crl)?, "-noout"])
        .args(["-CAfile", path(&ca)?])
        .output()
        .context("running openssl crl -CAfile")?;
    let said = String::from_utf8_lossy(&verify.stderr).to_string()
        + &String::from_utf8_lossy(&verify.stdout);
    Ok((
        entries,
        verify.status.success() && said.contains("verify OK"),
        head,
    ))
}

fn openssl(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", p.display()))
}

fn print_human(r: &Report) {
    println!(
        "{}: CRL of {} revoked certificates, {} CA (rows inserted in {:.1} s)",
        r.backend,
        shedu_bench::thousands(r.revoked as f64),
        r.ca_key_type,
        r.insert_s
    );
    println!(
        "  first build {:.0} ms ({} bytes, number {}); unchanged fetch {:.1} ms; rebuild after one revocation {:.0} ms ({} bytes, number {})",
        r.first_build_ms,
        shedu_bench::thousands(r.crl_bytes as f64),
        r.first_number,
        r.cached_ms,
        r.rebuild_ms,
        shedu_bench::thousands(r.rebuilt_crl_bytes as f64),
        r.rebuilt_number,
    );
    println!(
        "  of which the queries alone: revocation marker {:.1} ms, revoked rows {:.0} ms",
        r.marker_query_ms, r.revoked_query_ms
    );
    match (r.openssl_entries, r.openssl_verified) {
        (Some(n), Some(ok)) => println!(
            "  openssl crl: {} entries, signature {}",
            shedu_bench::thousands(n as f64),
            if ok { "verify OK" } else { "NOT verified" }
        ),
        _ => println!("  openssl crl: not run"),
    }
    for line in &r.openssl_head {
        println!("    {line}");
    }
}
