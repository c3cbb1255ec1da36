//! `rotationbench`: the rotation scheduler at scale (issue 16's benchmark: "scheduler cost at 100,000
//! assets; finding the due ones must be an indexed query, O(due)").
//!
//! It opens the services over a fresh database (a SQLite file, or a scratch PostgreSQL database dropped
//! afterwards), fills `--assets` assets with `Store::fill_synthetic_assets` (one in `--due-every` due now,
//! the others spread over the next year), runs ANALYZE, and times `--reps` runs of the scheduler's due
//! query (`Store::due_assets`, what `Rotation::tick` reads) with the plan the database chose; then one
//! whole scheduler tick (`Rotation::tick`: with no route, every due asset is passed over with
//! `skip_reason = no_route` and a `rotation.skipped` event, one transaction each), and a second tick with
//! nothing left to do.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use shedu_bench::stats::{Summary, micros};
use shedu_core::{ManualClock, Services, ServicesConfig};
use shedu_keys::MasterKey;
use shedu_store::Store;

/// Times the rotation scheduler's due query and tick over a large synthetic inventory.
#[derive(Debug, Parser)]
#[command(name = "rotationbench")]
struct Args {
    /// Database(s) to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// Assets in the inventory.
    #[arg(long, default_value_t = 100_000)]
    assets: i64,
    /// One asset in this many is due now.
    #[arg(long, default_value_t = 100)]
    due_every: i64,
    /// Timed repetitions of the due query.
    #[arg(long, default_value_t = 50)]
    reps: usize,
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
    assets: i64,
    due: i64,
    fill_s: f64,
    due_query_found: usize,
    due_query: Summary,
    plan: String,
    tick_ms: f64,
    tick_skipped: usize,
    idle_tick_ms: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut reports = Vec::new();
    if matches!(args.backend, Which::Sqlite | Which::Both) {
        let tmp = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            tmp.path().join("rotationbench.db").display()
        );
        reports.push(run("sqlite", &url, &args).await?);
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
            println!(
                "{}: {} assets, {} due (filled in {:.1} s)\n  due query: p50 {:.2} ms, p99 {:.2} ms ({} found)\n  plan: {}\n  \
                 tick: {:.0} ms ({} passed over, no route), idle tick: {:.1} ms",
                r.backend,
                r.assets,
                r.due,
                r.fill_s,
                r.due_query.p50_ms,
                r.due_query.p99_ms,
                r.due_query_found,
                r.plan.replace('\n', " / "),
                r.tick_ms,
                r.tick_skipped,
                r.idle_tick_ms
            );
        }
    }
    Ok(())
}

async fn run(backend: &'static str, url: &str, args: &Args) -> anyhow::Result<Report> {
    let store = Store::connect(url, &shedu_core::EVENT_WORDS)
        .await
        .with_context(|| format!("opening {}", shedu_store::redact_url(url)))?;
    let services = Services::open(
        store.clone(),
        &MasterKey::generate(),
        Arc::new(ManualClock::default()),
        ServicesConfig::default(),
    )
    .await?;
    let now = services.registry.now();
    let t = Instant::now();
    let due = store
        .fill_synthetic_assets(args.assets, args.due_every, now)
        .await?;
    let fill_s = t.elapsed().as_secs_f64();
    store.analyze().await?;
    let mut found = 0;
    for _ in 0..3 {
        found = store.due_assets(now, 10_000).await?.len();
    }
    let mut samples = Vec::with_capacity(args.reps);
    for _ in 0..args.reps.max(1) {
        let t = Instant::now();
        let rows = store.due_assets(now, 10_000).await?;
        samples.push(micros(t.elapsed()));
        found = rows.len();
    }
    let plan = store.due_assets_plan(now).await?;
    let t = Instant::now();
    services.rotation.tick().await?;
    let tick_ms = t.elapsed().as_secs_f64() * 1e3;
    let tick_skipped = store.due_assets(now, 10_000).await?.len();
    let t = Instant::now();
    services.rotation.tick().await?;
    let idle_tick_ms = t.elapsed().as_secs_f64() * 1e3;
    Ok(Report {
        backend,
        assets: args.assets,
        due,
        fill_s,
        due_query_found: found,
        due_query: Summary::from_micros(&mut samples),
        plan,
        tick_ms,
        tick_skipped: found - tick_skipped,
        idle_tick_ms,
    })
}
