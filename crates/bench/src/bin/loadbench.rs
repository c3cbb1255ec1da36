//! `loadbench`: issuance from CSRs over the network against a running server, at a fixed concurrency.
//!
//! Why: the issue asks for certificates per second and p50/p99 latency of issuance over HTTPS, per CA key
//! type, at concurrency 1 and 32, with the server's RSS under that load, and for the same figures from a
//! peer CA (cfssl) measured the same way. This tool is the client side of that; `scripts/bench` starts the
//! servers and calls it once per table row.
//!
//! How: it creates a root CA of `--ca-key-type` through the API (shedu only), generates a pool of distinct
//! CSRs in process (so the client spends no CPU on keys while measuring), then runs N workers, each with
//! its own connection, that POST CSRs back to back for `--warmup` + `--duration` seconds. Only requests
//! that complete inside the measured window count; anything but the expected status is an error. Every
//! 100 ms it samples the server's `VmRSS`, and it reads the server's CPU time before and after the window.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use shedu_bench::procfs;
use shedu_bench::stats::{Summary, micros};

/// Issuance load generator for shedu (HTTPS API) and cfssl (`cfssl serve`, plain HTTP).
#[derive(Debug, Parser)]
#[command(name = "loadbench")]
struct Args {
    /// Base URL: `https://127.0.0.1:8443` for shedu, `http://127.0.0.1:8888` for cfssl.
    #[arg(long)]
    url: String,
    /// File holding the admin bearer token (shedu: `<data-dir>/admin-token`).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// PEM CA certificate to trust for HTTPS (shedu: `<data-dir>/tls/ca.pem` or as printed at start).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Key type of the issuing CA to create (shedu) or the one cfssl was started with (label only).
    #[arg(long, default_value = "ec-p256")]
    ca_key_type: String,
    /// Key type of the CSRs sent.
    #[arg(long, default_value = "ec-p256")]
    csr_key_type: String,
    /// Requests in flight at once (one worker and one connection each).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (connections, caches, the database warm up).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Which API to speak.
    #[arg(long, value_enum, default_value_t = Target::Shedu)]
    target: Target,
    /// Server process id: sample its VmRSS/VmHWM and CPU time during the run.
    #[arg(long)]
    pid: Option<u32>,
    /// Distinct CSRs to cycle through [default: 256, or 16 for RSA CSR keys].
    #[arg(long)]
    pool: Option<usize>,
    /// Key engine of the CA to create (shedu): `software` or `pkcs11` (the server must have a PKCS#11 token
    /// configured). [default: the server's default engine]
    #[arg(long)]
    engine: Option<String>,
    /// Issue under this existing CA instead of creating one (shedu).
    #[arg(long)]
    ca_id: Option<String>,
    /// Free-form label copied into the output (e.g. the database backend).
    #[arg(long, default_value = "")]
    label: String,
    /// Print one JSON line instead of the human summary.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Target {
    /// shedu: `POST /api/v1/cas/{id}/certificates` with `{"csr_pem": …}`, expects 201.
    Shedu,
    /// cfssl: `POST /api/v1/cfssl/sign` with `{"certificate_request": …}`, expects 200.
    Cfssl,
}

/// One result row.
#[derive(Debug, Serialize)]
struct Report {
    target: Target,
    label: String,
    ca_key_type: String,
    /// The CA's key engine as requested (`None`: the server's default, `software` unless configured).
    engine: Option<String>,
    csr_key_type: String,
    concurrency: usize,
    http_version: String,
    duration_s: f64,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    certs_per_s: f64,
    latency: Summary,
    /// Server VmRSS just before the load, KiB.
    rss_before_kib: Option<u64>,
    /// Largest server VmRSS sampled during the run, KiB.
    rss_peak_kib: Option<u64>,
    /// Server VmHWM at the end (peak since its start), KiB.
    hwm_kib: Option<u64>,
    /// Server CPU seconds used in the measured window.
    server_cpu_s: Option<f64>,
    /// Certificates per server CPU-second (useful on a shared machine).
    certs_per_server_cpu_s: Option<f64>,
    /// This load generator's CPU seconds in the measured window (it shares the machine).
    client_cpu_s: Option<f64>,
    /// Bytes the server sent to storage per certificate in the window (`/proc/PID/io` write_bytes).
    storage_bytes_per_cert: Option<f64>,
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
}

struct Plan {
    url: String,
    token: Option<String>,
    target: Target,
    expected: reqwest::StatusCode,
    bodies: Arc<Vec<String>>,
    measure_from: Instant,
    end: Instant,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let token = match &args.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let root = match &args.ca_file {
        Some(p) => Some(reqwest::Certificate::from_pem(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )?),
        None => None,
    };
    let client = |root: &Option<reqwest::Certificate>| -> anyhow::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1);
        if let Some(r) = root {
            b = b.add_root_certificate(r.clone());
        }
        Ok(b.build()?)
    };
    let base = args.url.trim_end_matches('/').to_string();
    let setup = client(&root)?;

    let (url, expected) = match args.target {
        Target::Shedu => {
            let ca_id = match &args.ca_id {
                Some(id) => id.clone(),
                None => {
                    create_ca(
                        &setup,
                        &base,
                        token.as_deref(),
                        &args.ca_key_type,
                        args.engine.as_deref(),
                    )
                    .await?
                }
            };
            (
                format!("{base}/api/v1/cas/{ca_id}/certificates"),
                reqwest::StatusCode::CREATED,
            )
        }
        Target::Cfssl => (format!("{base}/api/v1/cfssl/sign"), reqwest::StatusCode::OK),
    };

    let pool = args
        .pool
        .unwrap_or(if args.csr_key_type.starts_with("rsa") {
            16
        } else {
            256
        });
    let csr_type = args.csr_key_type.clone();
    let target = args.target;
    let bodies = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let tag = hex::encode(rand::random::<[u8; 4]>());
        (0..pool.max(1))
            .map(|i| {
                let csr = shedu_bench::make_csr(&csr_type, &format!("dev-{tag}-{i}"))?;
                let body = match target {
                    Target::Shedu => serde_json::json!({ "csr_pem": csr }),
                    Target::Cfssl => serde_json::json!({ "certificate_request": csr }),
                };
                Ok(body.to_string())
            })
            .collect()
    })
    .await??;

    // One request first: proves the endpoint works (and loads the CA) before any clock starts.
    let http_version = {
        let res = send(&setup, &url, token.as_deref(), &bodies[0]).await?;
        let version = format!("{:?}", res.version());
        let status = res.status();
        let text = res.text().await?;
        if status != expected || !text.contains("BEGIN CERTIFICATE") {
            bail!("probe request to {url} returned {status}: {text}");
        }
        version
    };

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = Arc::new(Plan {
        url,
        token,
        target: args.target,
        expected,
        bodies: Arc::new(bodies),
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.duration),
    });

    let mut workers = Vec::with_capacity(args.concurrency);
    for w in 0..args.concurrency {
        let c = client(&root)?;
        workers.push(tokio::spawn(worker(c, plan.clone(), w, args.concurrency)));
    }

    let sampler = args
        .pid
        .map(|pid| tokio::spawn(procfs::sample_rss(pid, plan.end)));
    tokio::time::sleep_until(measure_from.into()).await;
    let rss_before = args.pid.and_then(procfs::memory).map(|m| m.rss_kib);
    let server_cpu0 = args.pid.and_then(|p| procfs::cpu_time(&p.to_string()));
    let client_cpu0 = procfs::cpu_time("self");
    let written0 = args.pid.and_then(procfs::storage_write_bytes);
    tokio::time::sleep_until(plan.end.into()).await;
    let server_cpu1 = args.pid.and_then(|p| procfs::cpu_time(&p.to_string()));
    let client_cpu1 = procfs::cpu_time("self");
    let written1 = args.pid.and_then(procfs::storage_write_bytes);

    let mut all = WorkerResult::default();
    for w in workers {
        let r = w.await?;
        all.latencies_us.extend(r.latencies_us);
        all.errors += r.errors;
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    let rss_peak = match sampler {
        Some(s) => s.await?,
        None => None,
    };
    let hwm = args.pid.and_then(procfs::memory).map(|m| m.hwm_kib);

    let latency = Summary::from_micros(&mut all.latencies_us);
    let certs_per_s = latency.count as f64 / args.duration;
    let json = args.json;
    let server_cpu_s = match (server_cpu0, server_cpu1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
        _ => None,
    };
    let report = Report {
        target: args.target,
        label: args.label,
        ca_key_type: args.ca_key_type,
        engine: args.engine,
        csr_key_type: args.csr_key_type,
        concurrency: args.concurrency,
        http_version,
        duration_s: args.duration,
        ok: latency.count,
        errors: all.errors,
        first_error: all.first_error,
        certs_per_s,
        rss_before_kib: rss_before,
        rss_peak_kib: rss_peak,
        hwm_kib: hwm,
        certs_per_server_cpu_s: server_cpu_s
            .filter(|s| *s > 0.0)
            .map(|s| latency.count as f64 / s),
        server_cpu_s,
        client_cpu_s: match (client_cpu0, client_cpu1) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        },
        storage_bytes_per_cert: match (written0, written1) {
            (Some(a), Some(b)) if latency.count > 0 => {
                Some(b.saturating_sub(a) as f64 / latency.count as f64)
            }
            _ => None,
        },
        latency,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

async fn create_ca(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    key_type: &str,
    engine: Option<&str>,
) -> anyhow::Result<String> {
    let name = format!(
        "bench-{key_type}-{}",
        hex::encode(rand::random::<[u8; 4]>())
    );
    let mut body = serde_json::json!({
        "name": name,
        "key_type": key_type,
        "subject": { "common_name": format!("Bench {key_type} CA") },
    });
    if let Some(engine) = engine {
        body["engine"] = serde_json::Value::from(engine);
    }
    let mut req = client
        .post(format!("{base}/api/v1/cas"))
        .timeout(Duration::from_secs(300))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.context("POST /api/v1/cas")?;
    let status = res.status();
    let body: serde_json::Value = res.json().await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("creating the CA returned {status}: {body}");
    }
    body["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no id in {body}"))
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> reqwest::Result<reqwest::Response> {
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await
}

async fn worker(
    client: reqwest::Client,
    plan: Arc<Plan>,
    index: usize,
    stride: usize,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    let mut next = index;
    loop {
        let started = Instant::now();
        if started >= plan.end {
            break;
        }
        let body = &plan.bodies[next % plan.bodies.len()];
        next += stride;
        let outcome = match send(&client, &plan.url, plan.token.as_deref(), body).await {
            Ok(res) => {
                let status = res.status();
                // Read the whole body: the response is part of issuance, and the connection is reused.
                match res.bytes().await {
                    Ok(b) if status == plan.expected && cfssl_success(plan.target, &b) => Ok(()),
                    Ok(b) => Err(format!("{status}: {}", String::from_utf8_lossy(&b))),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let done = Instant::now();
        if done < plan.measure_from || done > plan.end {
            continue;
        }
        match outcome {
            Ok(()) => out.latencies_us.push(micros(done - started)),
            Err(e) => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(e.chars().take(300).collect());
                }
            }
        }
    }
    out
}

/// cfssl answers 200 with `"success":false` on some failures; shedu's status code is enough.
fn cfssl_success(target: Target, body: &[u8]) -> bool {
    match target {
        Target::Shedu => true,
        Target::Cfssl => body.windows(14).any(|w| w == b"\"success\":true"),
    }
}

fn print_human(r: &Report) {
    let mib =
        |k: Option<u64>| k.map_or("-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "{:?} {} CA {}{} / CSR {} / c={} ({}): {} certs/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} ok, {} errors",
        r.target,
        r.label,
        r.ca_key_type,
        r.engine
            .as_deref()
            .map_or(String::new(), |e| format!(" ({e})")),
        r.csr_key_type,
        r.concurrency,
        r.http_version,
        shedu_bench::thousands(r.certs_per_s),
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.latency.max_ms,
        r.ok,
        r.errors,
    );
    println!(
        "  server RSS before {} / peak {} / HWM {}; server CPU {:.1} s ({} certs per CPU-s); client CPU {:.1} s; \
         {} KiB written to storage per certificate",
        mib(r.rss_before_kib),
        mib(r.rss_peak_kib),
        mib(r.hwm_kib),
        r.server_cpu_s.unwrap_or(0.0),
        r.certs_per_server_cpu_s
            .map_or("-".into(), shedu_bench::thousands),
        r.client_cpu_s.unwrap_or(0.0),
        r.storage_bytes_per_cert
            .map_or("-".into(), |b| format!("{:.1}", b / 1024.0)),
    );
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
}
