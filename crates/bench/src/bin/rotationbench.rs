//! `rotationbench`: agentless rotation at scale (issue 16's benchmark: "scheduler cost at 100,000 assets;
//! finding the due ones must be an indexed query, O(due); rotations per minute with the `command` executor
//! at caps 5 and 50").
//!
//! `--mode scheduler` (the default) opens the services over a fresh database (a SQLite file, or a scratch PostgreSQL database dropped
//! afterwards), fills `--assets` assets with `Store::fill_synthetic_assets` (one in `--due-every` due now,
//! the others spread over the next year), runs ANALYZE, and times `--reps` runs of the scheduler's due
//! query (`Store::due_assets`, what `Rotation::tick` reads) with the plan the database chose; then one
//! whole scheduler tick (`Rotation::tick`: with no route, every due asset is passed over with
//! `skip_reason = no_route` and a `rotation.skipped` event, one transaction each), and a second tick with
//! nothing left to do.
//!
//! `--mode throughput` measures whole rotations: for each `--caps` value (`max_concurrent_rotations`), a
//! fresh database, a CA, `--rotations` assets on one loopback TLS target (rustls, in this process, serving
//! per SNI name the files the executor installed, read at each handshake), and a `command` executor: a bash
//! script that makes the key and CSR with `openssl req` (`csr`), writes certificate and chain (`install`)
//! and moves them in place (`reload`, after `--executor-sleep-ms`, a device's own delay). One tick queues
//! every asset; the clock runs until the last run has ended. Each run is the real thing: route, csr,
//! issue, install, reload, validation on the wire (served leaf = issued, chain to the CA, names covered),
//! the run's end and its event in one transaction. Reported: rotations per minute, failed runs, and the
//! CPU of shedu (this process) and of the executor's processes (its children) per rotation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use shedu_bench::stats::{Summary, micros};
use shedu_core::{
    AssetInput, AuditContext, CommandSettings, ExecutorInput, ExecutorSpec, KeyMode, ManualClock,
    RotationConfig, RouteInput, RouteMatch, RouteSettings, RunQuery, RunState, Services,
    ServicesConfig,
};
use shedu_keys::MasterKey;
use shedu_store::Store;

/// Times the rotation scheduler's due query and tick over a large synthetic inventory, or whole rotations
/// per minute with the `command` executor.
#[derive(Debug, Parser)]
#[command(name = "rotationbench")]
struct Args {
    /// Database(s) to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Scheduler)]
    mode: Mode,
    /// Throughput: the `max_concurrent_rotations` values to measure, each on a fresh database.
    #[arg(long, value_delimiter = ',', default_value = "5,50")]
    caps: Vec<usize>,
    /// Throughput: assets rotated per cap (all due at once).
    #[arg(long, default_value_t = 300)]
    rotations: usize,
    /// Throughput: milliseconds the executor's `reload` sleeps (a device's own delay; 0 measures shedu
    /// and the executor alone).
    #[arg(long, default_value_t = 0)]
    executor_sleep_ms: u64,
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
enum Mode {
    /// The due query and the tick over `--assets`.
    Scheduler,
    /// Rotations per minute with the `command` executor at each of `--caps`.
    Throughput,
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
    if args.mode == Mode::Throughput {
        return throughput_main(&args).await;
    }
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
    let (store, services) = shedu_bench::open_services(url).await?;
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

// ----- throughput -----

#[derive(Debug, Serialize)]
struct ThroughputReport {
    backend: &'static str,
    cap: usize,
    rotations: usize,
    executor_sleep_ms: u64,
    succeeded: usize,
    failed: usize,
    elapsed_s: f64,
    rotations_per_minute: f64,
    /// CPU of this process (shedu: issuance, storage, validation, the dispatcher) per rotation.
    shedu_cpu_ms_per_rotation: f64,
    /// CPU of the executor's processes (bash, jq, openssl) per rotation.
    executor_cpu_ms_per_rotation: f64,
}

async fn throughput_main(args: &Args) -> anyhow::Result<()> {
    for tool in ["bash", "jq", "openssl"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        anyhow::ensure!(found, "{tool} is required by the benchmark's executor");
    }
    let mut reports = Vec::new();
    for &cap in &args.caps {
        if matches!(args.backend, Which::Sqlite | Which::Both) {
            let tmp = tempfile::tempdir()?;
            let url = format!(
                "sqlite://{}?mode=rwc",
                tmp.path().join("rotationbench.db").display()
            );
            reports.push(throughput("sqlite", &url, cap, args).await?);
        }
        if matches!(args.backend, Which::Postgres | Which::Both) {
            reports.push(
                shedu_bench::on_scratch_postgres(|url| async move {
                    throughput("postgres", &url, cap, args).await
                })
                .await?,
            );
        }
    }
    for r in &reports {
        if args.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            println!(
                "{} cap {}: {} rotations ({} failed, executor sleep {} ms) in {:.1} s: {} rotations/min; \
                 CPU per rotation: shedu {:.1} ms, executor {:.1} ms",
                r.backend,
                r.cap,
                r.succeeded,
                r.failed,
                r.executor_sleep_ms,
                r.elapsed_s,
                shedu_bench::thousands(r.rotations_per_minute),
                r.shedu_cpu_ms_per_rotation,
                r.executor_cpu_ms_per_rotation
            );
        }
    }
    Ok(())
}

async fn throughput(
    backend: &'static str,
    url: &str,
    cap: usize,
    args: &Args,
) -> anyhow::Result<ThroughputReport> {
    let store = Store::connect(url, &shedu_core::EVENT_WORDS)
        .await
        .with_context(|| format!("opening {}", shedu_store::redact_url(url)))?;
    let services = Services::open(
        store,
        &MasterKey::generate(),
        Arc::new(ManualClock::default()),
        ServicesConfig {
            rotation: RotationConfig {
                max_concurrent: cap,
                ..RotationConfig::default()
            },
            ..ServicesConfig::default()
        },
    )
    .await?;
    let actor = AuditContext::new("rotationbench", "", "admin", "", "");
    let ca = services
        .cas
        .create(
            &actor,
            shedu_bench::root_ca(
                format!("rotationbench-{backend}-{cap}"),
                "rotationbench CA",
                "ec-p256".parse()?,
            ),
        )
        .await?;
    let work = tempfile::tempdir()?;
    let port = spawn_target(work.path().to_path_buf())?;
    let program = executor_script(work.path(), args.executor_sleep_ms)?;
    let rotation = &services.rotation;
    rotation
        .create_executor(
            &actor,
            ExecutorInput {
                name: "bench".into(),
                spec: ExecutorSpec::Command(CommandSettings {
                    program: program.display().to_string(),
                    args: Vec::new(),
                    rollback: false,
                }),
                secret: None,
            },
        )
        .await?;
    rotation
        .create_route(
            &actor,
            RouteInput {
                position: None,
                executor: "bench".into(),
                settings: RouteSettings {
                    matcher: RouteMatch::default(),
                    ca_id: ca.id.clone(),
                    validity_days: Some(90),
                    renew_before_days: 30,
                    key_mode: KeyMode::OnDevice,
                    key_type: None,
                },
            },
        )
        .await?;
    for i in 0..args.rotations {
        rotation
            .create_asset(
                &actor,
                AssetInput {
                    system_name: format!("node-{i}"),
                    common_name: format!("node-{i}.rotation.bench"),
                    ip_address: Some("127.0.0.1".into()),
                    port,
                    host_platform: Some("linux".into()),
                    ..AssetInput::default()
                },
            )
            .await?;
    }

    let (cpu0, children0) = cpu_self_and_children();
    let t = Instant::now();
    let queued = rotation.tick().await?;
    anyhow::ensure!(
        queued == args.rotations,
        "the tick queued {queued} of {} assets",
        args.rotations
    );
    let limit = Duration::from_secs(600 + 10 * args.rotations as u64);
    loop {
        let mut active = 0;
        for state in [RunState::Queued, RunState::Running] {
            let page = rotation
                .runs(RunQuery {
                    state: Some(state),
                    limit: Some(1),
                    ..RunQuery::default()
                })
                .await?;
            active += page.items.len();
        }
        if active == 0 {
            break;
        }
        anyhow::ensure!(t.elapsed() < limit, "runs still active after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t.elapsed();
    let (cpu1, children1) = cpu_self_and_children();

    let mut succeeded = 0;
    let mut failed = 0;
    let mut cursor = None;
    loop {
        let page = rotation
            .runs(RunQuery {
                cursor,
                limit: Some(1000),
                ..RunQuery::default()
            })
            .await?;
        for run in &page.items {
            if run.state == RunState::Succeeded {
                succeeded += 1;
            } else {
                failed += 1;
                if failed == 1 {
                    eprintln!(
                        "{backend} cap {cap}: run {} of {} ended {}: {}",
                        run.id,
                        run.system_name,
                        run.state.as_str(),
                        run.error.as_deref().unwrap_or("")
                    );
                }
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / args.rotations.max(1) as f64;
    Ok(ThroughputReport {
        backend,
        cap,
        rotations: args.rotations,
        executor_sleep_ms: args.executor_sleep_ms,
        succeeded,
        failed,
        elapsed_s: elapsed.as_secs_f64(),
        rotations_per_minute: succeeded as f64 * 60.0 / elapsed.as_secs_f64(),
        shedu_cpu_ms_per_rotation: per(cpu1.saturating_sub(cpu0)),
        executor_cpu_ms_per_rotation: per(children1.saturating_sub(children0)),
    })
}

/// CPU time (user + system) of this process, and of its waited-for children (the executor's processes).
fn cpu_self_and_children() -> (Duration, Duration) {
    let read = || -> Option<(Duration, Duration)> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14 to 17 of the line, 12 to 15 after the command name.
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        // USER_HZ is 100 on every Linux ABI Rust targets.
        let ms = |t: u64| Duration::from_millis(t * 10);
        Some((ms(ticks(11)? + ticks(12)?), ms(ticks(13)? + ticks(14)?)))
    };
    read().unwrap_or_default()
}

/// The executor: one bash script for every step, the key made beside the "device" (the target's files).
fn executor_script(dir: &Path, sleep_ms: u64) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("executor.sh");
    let pause = if sleep_ms > 0 {
        format!("sleep {}.{:03}; ", sleep_ms / 1000, sleep_ms % 1000)
    } else {
        String::new()
    };
    std::fs::write(
        &path,
        format!(
            "#!/bin/bash\nset -euo pipefail\ndir='{}'\ninput=$(cat)\n\
             read -r step cn < <(jq -r '\"\\(.step) \\(.asset.common_name)\"' <<<\"$input\")\n\
             case \"$step\" in\n\
             csr) openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout \"$dir/$cn.key.new\" -subj \"/CN=$cn\" 2>/dev/null ;;\n\
             install) jq -r '.certificate + .chain' <<<\"$input\" > \"$dir/$cn.crt.new\" ;;\n\
             reload) {pause}mv \"$dir/$cn.key.new\" \"$dir/$cn.key\"; mv \"$dir/$cn.crt.new\" \"$dir/$cn.crt\" ;;\n\
             esac\n",
            dir.display()
        ),
    )?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// A TLS target for every asset on one loopback port: for SNI name `n` it serves `<dir>/<n>.crt` with
/// `<dir>/<n>.key`, read at each handshake (what the executor installed is what validation sees). One
/// thread per connection.
fn spawn_target(dir: PathBuf) -> anyhow::Result<u16> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;

    #[derive(Debug)]
    struct FilesBySni(PathBuf);
    impl ResolvesServerCert for FilesBySni {
        fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            let name = hello.server_name()?;
            let cert = std::fs::read(self.0.join(format!("{name}.crt"))).ok()?;
            let key = std::fs::read(self.0.join(format!("{name}.key"))).ok()?;
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            let key = PrivateKeyDer::from_pem_slice(&key).ok()?;
            let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).ok()?;
            Some(Arc::new(CertifiedKey::new(chain, signer)))
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(FilesBySni(dir))),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(mut conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                while conn.is_handshaking() {
                    if conn.complete_io(&mut tcp).is_err() {
                        return;
                    }
                }
                conn.send_close_notify();
                let _ = conn.complete_io(&mut tcp);
            });
        }
    });
    Ok(port)
}
