//! `sweepbench`: the lifecycle sweep's time over a large certificate table, on SQLite and PostgreSQL.
//!
//! Why: the issue asks for the sweep time at 1M and 10M certificates. The sweep (`Store::sweep_statuses`)
//! is meant to cost O(rows that change), not O(table), thanks to partial indexes; this tool checks that
//! claim at scale. It fills a fresh database with `--count` certificate rows through
//! `Store::bulk_insert_certificates` (reporting the insert rate), of which `--expiring-fraction` are past
//! notAfter and `--warning-fraction` inside the 30-day warning window, the rest valid for months. Then:
//!
//! 1. the sweep's query plan (`Store::explain_sweep`) and the time of a sweep with nothing due, both
//!    *before* planner statistics exist, which is the state `shedu serve` runs in (it never runs ANALYZE);
//! 2. `Store::analyze`, the plan again, and two timed sweeps: the first moves the due rows (one event
//!    each), the second finds nothing to do, which shows the fixed cost (a third shows PostgreSQL once the
//!    row versions the first sweep left behind are no longer visited), and a fourth a minute later, as the
//!    lifecycle job would run it (it moves only what that minute made due).
//!
//! The rows are synthetic (a fixed DER blob of `--der-bytes`, unique serials and fingerprints): the sweep
//! reads only status and notAfter, and nothing here parses certificates.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use shedu_bench::{mix, unix_now};
use shedu_core::{AuditAction, AuditContext, EventKind};
use shedu_store::{CaRow, CertRow, NewEvent, Store, SweepReport};

const DAY: i64 = 86_400;

/// Times the lifecycle sweep over a large synthetic certificate table.
#[derive(Debug, Parser)]
#[command(name = "sweepbench")]
struct Args {
    /// Database(s) to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// Certificates to insert.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Share of certificates already past notAfter (the first sweep expires them).
    #[arg(long, default_value_t = 0.01)]
    expiring_fraction: f64,
    /// Share of certificates inside the 30-day warning window (the first sweep flags them).
    #[arg(long, default_value_t = 0.01)]
    warning_fraction: f64,
    /// Rows per `bulk_insert_certificates` call (one transaction each).
    #[arg(long, default_value_t = 50_000)]
    chunk: u64,
    /// Size of the stored DER of each row (a P-256 leaf is about 450-550 bytes).
    #[arg(long, default_value_t = 480)]
    der_bytes: usize,
    /// Folder for the SQLite file [default: a temporary folder, removed afterwards].
    #[arg(long)]
    sqlite_dir: Option<PathBuf>,
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
    count: u64,
    insert_s: f64,
    insert_rows_per_s: f64,
    db_bytes: Option<u64>,
    /// Plan without planner statistics (as a running server has them).
    plan_without_stats: Vec<String>,
    /// A sweep with nothing due, without planner statistics.
    noop_sweep_without_stats_ms: f64,
    analyze_ms: f64,
    first_sweep_ms: f64,
    first_expired: u64,
    first_about_to_expire: u64,
    second_sweep_ms: f64,
    second_moved: u64,
    /// A third sweep: on PostgreSQL the second one still visits the row versions the first one left behind
    /// (until VACUUM or index hints clean them), the third shows the steady state.
    third_sweep_ms: f64,
    /// A sweep a minute after the others, the lifecycle job's next run: it moves only what the minute made
    /// due (`minute_later_moved`, usually none of the certificates).
    minute_later_sweep_ms: f64,
    minute_later_moved: u64,
    plan: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if matches!(args.backend, Which::Sqlite | Which::Both) {
        let (_tmp, dir) = match &args.sqlite_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let path = dir.join(format!(
            "sweepbench-{}.db",
            hex::encode(rand::random::<[u8; 4]>())
        ));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let result = run("sqlite", &url, &args, Some(&path)).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        // Each database's report as soon as it is done: a 10M run killed during PostgreSQL's fill keeps
        // SQLite's.
        report(&result?, args.json)?;
    }
    if matches!(args.backend, Which::Postgres | Which::Both) {
        let args = &args;
        let r = shedu_bench::on_scratch_postgres(|url| async move {
            run("postgres", &url, args, None).await
        })
        .await?;
        report(&r, args.json)?;
    }
    Ok(())
}

fn report(r: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        print_human(r);
    }
    std::io::Write::flush(&mut std::io::stdout())?;
    Ok(())
}

async fn run(
    backend: &'static str,
    url: &str,
    args: &Args,
    sqlite_file: Option<&std::path::Path>,
) -> anyhow::Result<Report> {
    let store = Store::connect(url, &shedu_core::EVENT_WORDS)
        .await
        .with_context(|| format!("opening {}", shedu_store::redact_url(url)))?;
    let now = unix_now();
    let ca_id = "5ee7bench".to_string();
    let actor = AuditContext::new("sweepbench", "", "", "", "");
    store
        .insert_ca(
            &ca_row(&ca_id, now),
            &event(EventKind::CaCreated, &ca_id, now),
            &AuditAction::CaCreate.by(&actor),
        )
        .await?;

    let der = vec![0x30u8; args.der_bytes];
    let chunk = args.chunk.max(1);
    let started = Instant::now();
    let mut done = 0u64;
    let mut last_report = Instant::now();
    while done < args.count {
        let n = chunk.min(args.count - done);
        let rows: Vec<CertRow> = (done..done + n)
            .map(|i| cert_row(&ca_id, i, now, &der, args))
            .collect();
        store
            .bulk_insert_certificates(&rows)
            .await
            .with_context(|| format!("inserting rows {done}..{}", done + n))?;
        done += n;
        if done < args.count && last_report.elapsed().as_secs() >= 10 {
            eprintln!(
                "{backend}: {done}/{} rows, {} rows/s",
                args.count,
                shedu_bench::thousands(done as f64 / started.elapsed().as_secs_f64())
            );
            last_report = Instant::now();
        }
    }
    let insert_s = started.elapsed().as_secs_f64();

    // Without statistics: a sweep 61 days back, where nothing is due yet (the due rows end at most
    // 30 days before `now`, so neither their expiry nor their warning window has begun).
    let plan_without_stats = store.explain_sweep(now).await?;
    let t = Instant::now();
    let noop = store.sweep_statuses(now - 61 * DAY).await?;
    let noop_sweep_without_stats_ms = t.elapsed().as_secs_f64() * 1000.0;
    if noop != SweepReport::default() {
        anyhow::bail!("the early sweep moved rows: {noop:?}");
    }
    let t = Instant::now();
    store.analyze().await?;
    let analyze_ms = t.elapsed().as_secs_f64() * 1000.0;

    let plan = store.explain_sweep(now).await?;
    let t = Instant::now();
    let first: SweepReport = store.sweep_statuses(now).await?;
    let first_sweep_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let second: SweepReport = store.sweep_statuses(now).await?;
    let second_sweep_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    store.sweep_statuses(now).await?;
    let third_sweep_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let later = store.sweep_statuses(now + 60).await?;
    let minute_later_sweep_ms = t.elapsed().as_secs_f64() * 1000.0;
    store.close().await;

    let db_bytes = sqlite_file.map(|p| {
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", p.display())).ok())
            .map(|m| m.len())
            .sum()
    });
    Ok(Report {
        backend,
        count: args.count,
        insert_s,
        insert_rows_per_s: args.count as f64 / insert_s,
        db_bytes,
        plan_without_stats,
        noop_sweep_without_stats_ms,
        analyze_ms,
        first_sweep_ms,
        first_expired: first.certificates_expired,
        first_about_to_expire: first.certificates_about_to_expire,
        second_sweep_ms,
        second_moved: second.certificates_expired
            + second.certificates_about_to_expire
            + second.cas_changed,
        third_sweep_ms,
        minute_later_sweep_ms,
        minute_later_moved: later.certificates_expired + later.certificates_about_to_expire,
        plan,
    })
}

fn cert_row(ca_id: &str, i: u64, now: i64, der: &[u8], args: &Args) -> CertRow {
    let h = mix(i);
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    let spread = |days: i64| i64::try_from(h % (days as u64 * DAY as u64)).unwrap_or(0);
    let not_after = if u < args.expiring_fraction {
        now - 1 - spread(30)
    } else if u < args.expiring_fraction + args.warning_fraction {
        now + 1 + spread(29)
    } else {
        now + 31 * DAY + spread(334)
    };
    let not_before = not_after - 365 * DAY;
    CertRow {
        seq: 0,
        ca_id: ca_id.to_string(),
        serial: format!("{h:016x}{:016x}", mix(h ^ 0x5e71a1)),
        fingerprint: format!(
            "{h:016x}{:016x}{:016x}{:016x}",
            mix(h ^ 1),
            mix(h ^ 2),
            mix(h ^ 3)
        ),
        subject: format!("CN=device-{i}"),
        sans: format!("DNS:device-{i}.bench.invalid"),
        key_type: "ec-p256".into(),
        not_before,
        not_after,
        der: der.to_vec(),
        status: "active".into(),
        revoked_at: None,
        revocation_reason: None,
        created_at: not_before,
    }
}

fn ca_row(id: &str, now: i64) -> CaRow {
    CaRow {
        id: id.to_string(),
        name: "sweepbench".into(),
        kind: "external".into(),
        parent_id: None,
        key_type: "ec-p256".into(),
        engine: None,
        key_sealed: None,
        certificate_der: vec![0x30, 0x00],
        subject: "CN=sweepbench".into(),
        serial: "01".into(),
        fingerprint: "00".repeat(32),
        not_before: now - DAY,
        not_after: now + 3650 * DAY,
        status: "active".into(),
        default_validity_days: 365,
        key_usages: "digital_signature".into(),
        ext_key_usages: "client_auth".into(),
        path_len: None,
        allowed_key_types: "ec-p256".into(),
        expiry_warning_days: 30,
        created_at: now,
        name_policy: None,
    }
}

fn event(ty: EventKind, ca_id: &str, now: i64) -> NewEvent {
    NewEvent {
        id: hex::encode(rand::random::<[u8; 16]>()),
        source: "/shedu-bench".into(),
        ty: ty.as_str().into(),
        subject: format!("cas/{ca_id}"),
        time: now,
        data: "{}".into(),
    }
}

fn print_human(r: &Report) {
    println!(
        "{}: {} certificates inserted in {:.1} s ({} rows/s){}",
        r.backend,
        shedu_bench::thousands(r.count as f64),
        r.insert_s,
        shedu_bench::thousands(r.insert_rows_per_s),
        r.db_bytes.map_or(String::new(), |b| format!(
            ", database {:.0} MiB",
            b as f64 / 1_048_576.0
        ))
    );
    println!("  sweep plan without planner statistics (as `shedu serve` runs):");
    for line in &r.plan_without_stats {
        println!("    {line}");
    }
    println!(
        "  sweep with nothing due, without statistics: {:.1} ms",
        r.noop_sweep_without_stats_ms
    );
    println!("  ANALYZE: {:.0} ms; sweep plan after it:", r.analyze_ms);
    for line in &r.plan {
        println!("    {line}");
    }
    println!(
        "  first sweep:  {:.1} ms ({} expired, {} about to expire, one event each)",
        r.first_sweep_ms,
        shedu_bench::thousands(r.first_expired as f64),
        shedu_bench::thousands(r.first_about_to_expire as f64)
    );
    println!(
        "  second sweep: {:.1} ms ({} moved); third: {:.1} ms; a minute later: {:.1} ms ({} moved)",
        r.second_sweep_ms,
        r.second_moved,
        r.third_sweep_ms,
        r.minute_later_sweep_ms,
        r.minute_later_moved
    );
}
