//! `estbench`: EST `simpleenroll` (RFC 7030) over mTLS against a running server, at a fixed concurrency.
//!
//! Why: the issue asks for enrolments per second and p50/p99 latency of EST enrolment at concurrency 1 and
//! 32, on SQLite and PostgreSQL, so that the device path can be judged beside plain API issuance
//! (`loadbench`). `scripts/bench` starts the server and calls this once per table row.
//!
//! What is measured is a **first enrolment with a new device id per request**: every CSR carries a distinct
//! common name, so each enrolment registers a device (the RA auto-registers) and commits the certificate,
//! the device, its slot, log, events and audit record in one transaction. Re-enrolment of an existing
//! device is a different path and is not measured here.
//!
//! How: through the API it creates a device CA and a bootstrap CA, and an RA that accepts that bootstrap CA,
//! auto-registers devices and has its own certificate (from the internal RA CA) for a key generated here.
//! The load client presents the RA's certificate: a bootstrap certificate is bound to the one device it was
//! made for (issue 12), so an RA's own certificate is what enrols many new devices. It generates a pool of distinct CSRs before any clock starts, on every core
//! (their cost is reported, and kept off the measured path), sends one enrolment to prove the path and
//! that the device was registered, then runs N workers that POST enrolments back to back for `--warmup` +
//! `--duration` seconds. Each worker keeps one mTLS connection, or with `--connection per-enrolment` opens a
//! new one (full handshake, no resumption) per enrolment, or with `--connection resumed` opens a new one per
//! enrolment that resumes the TLS session of the worker's previous connection (a device that talked to the
//! server before, e.g. to fetch `/cacerts`: the first connection of each worker is made before the clock
//! starts). With `--metrics-url` the share of handshakes the server resumed in the window is read from its
//! `shedu_tls_handshakes_total` counter. `--operation health` sends `GET /health` instead of an enrolment
//! over the same connection pattern: the ceiling of that pattern on this machine, the yardstick.
//! Only 200 answers completed inside the measured window count; anything else is an error, reported with
//! its status and body. Server memory, CPU and storage writes are read from `/proc` as `loadbench` does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use shedu_bench::procfs;
use shedu_bench::stats::{Summary, micros};

/// What the output calls the measured path.
const OPERATION: &str = "simpleenroll, first enrolment (a new device id per request)";

/// EST enrolment load generator for shedu.
#[derive(Debug, Parser)]
#[command(name = "estbench")]
struct Args {
    /// Base URL of shedu's HTTPS listener, e.g. `https://127.0.0.1:8443`.
    #[arg(long)]
    url: String,
    /// File holding the admin bearer token (`<data-dir>/admin-token`), for the set-up calls.
    #[arg(long)]
    token_file: PathBuf,
    /// PEM CA certificate of the server's TLS certificate (`<data-dir>/tls/ca.pem`).
    #[arg(long)]
    ca_file: PathBuf,
    /// Key type of the device CA to create (the CA that signs the enrolled certificates).
    #[arg(long, default_value = "ec-p256")]
    ca_key_type: String,
    /// Key type of the devices' CSRs.
    #[arg(long, default_value = "ec-p256")]
    csr_key_type: String,
    /// Enrolments in flight at once (one worker each).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// How workers connect.
    #[arg(long, value_enum, default_value_t = Connection::KeepAlive)]
    connection: Connection,
    /// What each request is.
    #[arg(long, value_enum, default_value_t = Operation::Enroll)]
    operation: Operation,
    /// The server's Prometheus endpoint (`http://<http-listen>/metrics`): report the share of TLS handshakes
    /// it resumed during the window.
    #[arg(long)]
    metrics_url: Option<String>,
    /// Server process id: sample its VmRSS/VmHWM, CPU time and storage writes during the run.
    #[arg(long)]
    pid: Option<u32>,
    /// Enrolment rate the CSR pool is sized for: the pool holds `max_rate × (warmup + duration)` CSRs, each
    /// a new device. A run that uses them all stops early and reports it as an error.
    #[arg(long, default_value_t = 5000.0)]
    max_rate: f64,
    /// Free-form label copied into the output (e.g. the database backend).
    #[arg(long, default_value = "")]
    label: String,
    /// Print one JSON line instead of the human summary.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Connection {
    /// One mTLS connection per worker, kept alive: the handshake is paid once.
    KeepAlive,
    /// A new mTLS connection with a full handshake for every enrolment.
    PerEnrolment,
    /// A new mTLS connection for every enrolment, resuming the session of the worker's previous one.
    Resumed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Operation {
    /// `simpleenroll`, the first enrolment of a new device.
    Enroll,
    /// `GET /health` over the same connections: what the connection pattern alone allows.
    Health,
}

/// One result row.
#[derive(Debug, Serialize)]
struct Report {
    target: &'static str,
    operation: &'static str,
    /// `enroll` or `health`.
    request: Operation,
    label: String,
    ca_key_type: String,
    csr_key_type: String,
    concurrency: usize,
    connection: Connection,
    http_version: String,
    /// Share of the server's TLS handshakes in the window that were resumptions (with `--metrics-url`).
    resumed_share: Option<f64>,
    duration_s: f64,
    ok: usize,
    errors: usize,
    /// Errors by HTTP status (`transport` when no answer came).
    error_statuses: BTreeMap<String, usize>,
    first_error: Option<String>,
    enrolments_per_s: f64,
    latency: Summary,
    /// CSRs generated before the run (distinct device ids).
    csr_pool: usize,
    /// CSRs the run consumed (probe, warm-up, window and after it).
    csr_used: usize,
    /// Wall-clock seconds the pool took, on every core, before the clock started.
    csr_generation_s: f64,
    /// Client CPU cost of one CSR (key generation and signing), microseconds on one core.
    csr_us_per_core: f64,
    /// Server VmRSS just before the window, KiB.
    rss_before_kib: Option<u64>,
    /// Largest server VmRSS sampled during the run, KiB.
    rss_peak_kib: Option<u64>,
    /// Server VmHWM at the end (peak since its start), KiB.
    hwm_kib: Option<u64>,
    /// Server CPU seconds used in the measured window.
    server_cpu_s: Option<f64>,
    /// Enrolments per server CPU-second (useful on a shared machine).
    enrolments_per_server_cpu_s: Option<f64>,
    /// This load generator's CPU seconds in the measured window (it shares the machine).
    client_cpu_s: Option<f64>,
    /// Bytes the server sent to storage per enrolment in the window (`/proc/PID/io` write_bytes).
    storage_bytes_per_enrolment: Option<f64>,
}

/// Everything the workers share.
struct Plan {
    url: String,
    /// What each request is; for `Health`, `GET` of `health_url`.
    operation: Operation,
    health_url: String,
    root: reqwest::Certificate,
    identity: reqwest::Identity,
    /// Base64 DER CSRs, one device id each; `next` hands each out once.
    csrs: Vec<String>,
    next: AtomicUsize,
    measure_from: Instant,
    end: Instant,
}

impl Plan {
    /// The next unused CSR, or `None` when the pool is spent.
    fn take_csr(&self) -> Option<&str> {
        self.csrs
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .map(String::as_str)
    }

    /// A client that presents the bootstrap certificate and trusts only the server's TLS CA. Each one has
    /// its own connection pool and TLS session cache, so a new client means a full handshake.
    fn client(&self) -> reqwest::Result<reqwest::Client> {
        self.client_keeping(1)
    }

    /// A client keeping at most `idle` idle connections: with 0, every request opens a new connection,
    /// which resumes the TLS session of the previous one from the client's session cache.
    fn client_keeping(&self, idle: usize) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(idle)
            .tls_certs_only([self.root.clone()])
            .identity(self.identity.clone())
            .build()
    }
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u64>,
    error_statuses: BTreeMap<String, usize>,
    first_error: Option<String>,
}

impl WorkerResult {
    fn error(&mut self, status: String, detail: impl FnOnce() -> String) {
        *self.error_statuses.entry(status).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(detail().chars().take(300).collect());
        }
    }
}

/// A pool of CSRs and what it cost to make.
struct CsrPool {
    csrs: Vec<String>,
    seconds: f64,
    us_per_core: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let (token, root) = shedu_bench::token_and_root(&args.token_file, &args.ca_file)?;
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .tls_certs_only([root.clone()])
            .build()?,
        base: args.url.trim_end_matches('/').to_string(),
        token,
    };
    let run = hex::encode(rand::random::<[u8; 4]>());

    let device_ca = api
        .create_ca(&format!("bench-est-devices-{run}"), &args.ca_key_type)
        .await?;
    let bootstrap_ca = api
        .create_ca(&format!("bench-est-bootstrap-{run}"), "ec-p256")
        .await?;
    let (ra_id, identity) = api
        .create_ra(&format!("bench-est-{run}"), &device_ca, &bootstrap_ca)
        .await?;

    let count = (args.max_rate * (args.warmup + args.duration)).ceil() as usize + 1;
    let csr_type = args.csr_key_type.clone();
    let prefix = format!("bench-{run}");
    let pool = tokio::task::spawn_blocking(move || csr_pool(&csr_type, &prefix, count)).await??;

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = Arc::new(Plan {
        url: format!("{}/.well-known/est/{ra_id}/simpleenroll", api.base),
        operation: args.operation,
        health_url: format!("{}/health", api.base),
        root,
        identity,
        csrs: pool.csrs,
        next: AtomicUsize::new(0),
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.duration),
    });
    // One enrolment first: proves the path (mTLS accepted, device registered) before any clock starts.
    let http_version = probe(&api, &plan, &format!("bench-{run}-0")).await?;

    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let client = match args.connection {
            Connection::KeepAlive => Some(plan.client()?),
            Connection::PerEnrolment => None,
            Connection::Resumed => {
                // The device's earlier visit, before the clock starts: it leaves a session to resume.
                let client = plan.client_keeping(0)?;
                client
                    .get(&plan.health_url)
                    .send()
                    .await?
                    .error_for_status()?;
                Some(client)
            }
        };
        workers.push(tokio::spawn(worker(client, plan.clone())));
    }
    let metrics = args
        .metrics_url
        .as_ref()
        .map(|url| (url.clone(), reqwest::Client::new()));

    let sampler = args
        .pid
        .map(|pid| tokio::spawn(procfs::sample_rss(pid, plan.end)));
    tokio::time::sleep_until(measure_from.into()).await;
    let rss_before = args.pid.and_then(procfs::memory).map(|m| m.rss_kib);
    let window = Window::open(args.pid);
    let handshakes_before = match &metrics {
        Some((url, client)) => Some(handshakes(client, url).await?),
        None => None,
    };
    tokio::time::sleep_until(plan.end.into()).await;
    let window = window.close();
    let resumed_share = match (&metrics, handshakes_before) {
        (Some((url, client)), Some((full0, resumed0))) => {
            let (full, resumed) = handshakes(client, url).await?;
            let (full, resumed) = (full - full0, resumed - resumed0);
            (full + resumed > 0.0).then(|| resumed / (full + resumed))
        }
        _ => None,
    };

    let mut all = WorkerResult::default();
    for w in workers {
        let r = w.await?;
        all.latencies_us.extend(r.latencies_us);
        for (status, n) in r.error_statuses {
            *all.error_statuses.entry(status).or_default() += n;
        }
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    let rss_peak = match sampler {
        Some(s) => s.await?,
        None => None,
    };
    let latency = Summary::from_micros(&mut all.latencies_us);
    let ok = latency.count as f64;
    let report = Report {
        target: "shedu-est",
        operation: match args.operation {
            Operation::Enroll => OPERATION,
            Operation::Health => "GET /health over the same connections",
        },
        request: args.operation,
        label: args.label,
        ca_key_type: args.ca_key_type,
        csr_key_type: args.csr_key_type,
        concurrency: args.concurrency,
        connection: args.connection,
        http_version,
        resumed_share,
        duration_s: args.duration,
        ok: latency.count,
        errors: all.error_statuses.values().sum(),
        error_statuses: all.error_statuses,
        first_error: all.first_error,
        enrolments_per_s: ok / args.duration,
        latency,
        csr_pool: plan.csrs.len(),
        csr_used: plan.next.load(Ordering::Relaxed).min(plan.csrs.len()),
        csr_generation_s: pool.seconds,
        csr_us_per_core: pool.us_per_core,
        rss_before_kib: rss_before,
        rss_peak_kib: rss_peak,
        hwm_kib: args.pid.and_then(procfs::memory).map(|m| m.hwm_kib),
        server_cpu_s: window.server_cpu_s,
        enrolments_per_server_cpu_s: window.server_cpu_s.filter(|s| *s > 0.0).map(|s| ok / s),
        client_cpu_s: window.client_cpu_s,
        storage_bytes_per_enrolment: window
            .written_bytes
            .filter(|_| ok > 0.0)
            .map(|b| b as f64 / ok),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

/// The admin API, for setting up the run.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// POSTs `body` to `path`, expects `expected`, returns the JSON answer.
    async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
        expected: reqwest::StatusCode,
    ) -> anyhow::Result<serde_json::Value> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = res.status();
        let text = res.text().await?;
        if status != expected {
            bail!("POST {path} returned {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// A root CA issuing `clientAuth` certificates; returns its id.
    async fn create_ca(&self, name: &str, key_type: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({
            "name": name,
            "key_type": key_type,
            "subject": { "common_name": name },
            "profile": { "ext_key_usages": ["client_auth"] },
        });
        let ca = self
            .post("/api/v1/cas", body, reqwest::StatusCode::CREATED)
            .await?;
        id_of(&ca)
    }

    /// An RA enrolling into `device_ca`, accepting certificates of `bootstrap_ca`, registering new devices,
    /// with its own certificate for a key generated here. Returns its id and the load client's TLS identity
    /// (that certificate and key).
    async fn create_ra(
        &self,
        name: &str,
        device_ca: &str,
        bootstrap_ca: &str,
    ) -> anyhow::Result<(String, reqwest::Identity)> {
        let key = shedu_bench::generate_key("ec-p256")?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        let csr_pem = params.serialize_request(&key)?.pem()?;
        let body = serde_json::json!({
            "name": name,
            "ca_ids": [device_ca],
            "enrollment": {
                "auth_modes": ["client_certificate"],
                "bootstrap_ca_ids": [bootstrap_ca],
                "auto_register": true,
            },
            "csr": csr_pem,
        });
        let ra = self
            .post("/api/v1/ras", body, reqwest::StatusCode::CREATED)
            .await?;
        let cert_pem = ra["certificate_pem"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no certificate_pem in {ra}"))?;
        let pem = format!("{cert_pem}\n{}", key.serialize_pem());
        Ok((id_of(&ra)?, reqwest::Identity::from_pem(pem.as_bytes())?))
    }
}

fn id_of(v: &serde_json::Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no id in {v}"))
}

/// `count` CSRs of `key_type` with CNs `<prefix>-0`, `<prefix>-1`, …, made on every core. The EST body is
/// base64 DER, which is a PEM's body without its armour lines (RFC 8951 allows the line breaks).
fn csr_pool(key_type: &str, prefix: &str, count: usize) -> anyhow::Result<CsrPool> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = count.div_ceil(threads);
    let started = Instant::now();
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * per_thread)..((t + 1) * per_thread).min(count);
                scope.spawn(move || {
                    range
                        .map(|i| {
                            let pem = shedu_bench::make_csr(key_type, &format!("{prefix}-{i}"))?;
                            Ok(pem
                                .lines()
                                .filter(|l| !l.starts_with("-----"))
                                .collect::<Vec<_>>()
                                .join("\n"))
                        })
                        .collect::<anyhow::Result<Vec<String>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a CSR thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<Vec<String>>>>()
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let csrs: Vec<String> = parts.into_iter().flatten().collect();
    Ok(CsrPool {
        us_per_core: seconds * threads as f64 * 1e6 / csrs.len().max(1) as f64,
        csrs,
        seconds,
    })
}

/// Enrols the pool's first CSR (`cn`) and checks what a device would: a 200 with a PKCS#7 that carries
/// the device's name, and the device now registered. Returns the HTTP version spoken.
async fn probe(api: &Api, plan: &Plan, cn: &str) -> anyhow::Result<String> {
    let csr = plan
        .take_csr()
        .ok_or_else(|| anyhow::anyhow!("empty CSR pool"))?;
    let res = enroll(&plan.client()?, &plan.url, csr).await?;
    let version = format!("{:?}", res.version());
    let status = res.status();
    let body = res.bytes().await?;
    if status != reqwest::StatusCode::OK {
        bail!(
            "probe enrolment at {} returned {status}: {}",
            plan.url,
            String::from_utf8_lossy(&body)
        );
    }
    let b64: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = STANDARD
        .decode(b64)
        .context("the enrolment answer is not base64")?;
    if !der.windows(cn.len()).any(|w| w == cn.as_bytes()) {
        bail!("the enrolment answer does not hold a certificate for {cn}");
    }
    let res = api
        .client
        .get(format!("{}/api/v1/devices/{cn}", api.base))
        .bearer_auth(&api.token)
        .send()
        .await?;
    if res.status() != reqwest::StatusCode::OK {
        bail!(
            "device {cn} was not registered by its enrolment: {}",
            res.status()
        );
    }
    Ok(version)
}

async fn enroll(
    client: &reqwest::Client,
    url: &str,
    csr: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/pkcs10")
        .body(csr.to_string())
        .send()
        .await
}

/// Enrols back to back until the end of the run. `client` is the worker's kept-alive connection, or
/// `None` for a new connection per enrolment (its set-up is part of the measured latency).
async fn worker(client: Option<reqwest::Client>, plan: Arc<Plan>) -> WorkerResult {
    let mut out = WorkerResult::default();
    loop {
        let started = Instant::now();
        if started >= plan.end {
            break;
        }
        let csr = if plan.operation == Operation::Health {
            ""
        } else if let Some(csr) = plan.take_csr() {
            csr
        } else {
            out.error("pool exhausted".into(), || {
                format!(
                    "the CSR pool ({} device ids) ran out before the end; raise --max-rate",
                    plan.csrs.len()
                )
            });
            break;
        };
        let outcome = match &client {
            Some(c) => attempt(c, &plan, csr).await,
            None => match plan.client() {
                Ok(c) => attempt(&c, &plan, csr).await,
                Err(e) => Err(("client".to_string(), chain(e))),
            },
        };
        let done = Instant::now();
        if done < plan.measure_from || done > plan.end {
            continue;
        }
        match outcome {
            Ok(()) => out.latencies_us.push(micros(done - started)),
            Err((status, detail)) => out.error(status, || detail),
        }
    }
    out
}

/// One request (an enrolment, or `GET /health`): `Ok` for a 200, else the status (or `transport`) and what
/// came back.
async fn attempt(client: &reqwest::Client, plan: &Plan, csr: &str) -> Result<(), (String, String)> {
    let sent = match plan.operation {
        Operation::Enroll => enroll(client, &plan.url, csr).await,
        Operation::Health => client.get(&plan.health_url).send().await,
    };
    let res = sent.map_err(|e| ("transport".to_string(), chain(e)))?;
    let status = res.status();
    // Read the whole body: the answer is part of the enrolment, and the connection is reused.
    let body = res
        .bytes()
        .await
        .map_err(|e| ("transport".to_string(), chain(e)))?;
    if status == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err((
            status.as_u16().to_string(),
            format!("{status}: {}", String::from_utf8_lossy(&body)),
        ))
    }
}

/// The server's TLS handshake counters (full, resumed) from its Prometheus text.
async fn handshakes(client: &reqwest::Client, url: &str) -> anyhow::Result<(f64, f64)> {
    let text = client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let count = |kind: &str| {
        let prefix = format!("shedu_tls_handshakes_total{{kind=\"{kind}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((count("full"), count("resumed")))
}

/// A reqwest error with its causes (the TLS or connection error is in the source chain).
fn chain(e: reqwest::Error) -> String {
    format!("{:#}", anyhow::Error::from(e))
}

/// Server CPU, client CPU and server storage writes over the measured window.
struct Window {
    pid: Option<u32>,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
    written: Option<u64>,
}

/// What [`Window`] measured.
struct WindowDelta {
    server_cpu_s: Option<f64>,
    client_cpu_s: Option<f64>,
    written_bytes: Option<u64>,
}

impl Window {
    fn open(pid: Option<u32>) -> Window {
        Window {
            pid,
            server_cpu: pid.and_then(|p| procfs::cpu_time(&p.to_string())),
            client_cpu: procfs::cpu_time("self"),
            written: pid.and_then(procfs::storage_write_bytes),
        }
    }

    fn close(self) -> WindowDelta {
        let seconds = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        let pid = self.pid;
        WindowDelta {
            server_cpu_s: seconds(
                self.server_cpu,
                pid.and_then(|p| procfs::cpu_time(&p.to_string())),
            ),
            client_cpu_s: seconds(self.client_cpu, procfs::cpu_time("self")),
            written_bytes: match (self.written, pid.and_then(procfs::storage_write_bytes)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            },
        }
    }
}

fn print_human(r: &Report) {
    let mib =
        |k: Option<u64>| k.map_or("-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let connection = match r.connection {
        Connection::KeepAlive => "one kept-alive mTLS connection per worker",
        Connection::PerEnrolment => "a new mTLS connection per enrolment",
        Connection::Resumed => "a new mTLS connection per enrolment, resuming the previous session",
    };
    println!(
        "EST {} {}: device CA {} / CSR {} / c={}, {connection} ({}): {} enrolments/s, p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms, {} ok, {} errors",
        r.operation,
        r.label,
        r.ca_key_type,
        r.csr_key_type,
        r.concurrency,
        r.http_version,
        shedu_bench::thousands(r.enrolments_per_s),
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.latency.max_ms,
        r.ok,
        r.errors,
    );
    println!(
        "  server RSS before {} / peak {} / HWM {}; server CPU {:.1} s ({} enrolments per CPU-s); client CPU \
         {:.1} s; {} KiB written to storage per enrolment",
        mib(r.rss_before_kib),
        mib(r.rss_peak_kib),
        mib(r.hwm_kib),
        r.server_cpu_s.unwrap_or(0.0),
        r.enrolments_per_server_cpu_s
            .map_or("-".into(), shedu_bench::thousands),
        r.client_cpu_s.unwrap_or(0.0),
        r.storage_bytes_per_enrolment
            .map_or("-".into(), |b| format!("{:.1}", b / 1024.0)),
    );
    println!(
        "  CSR pool: {} made in {:.1} s before the run ({:.0} µs each on one core), {} used",
        shedu_bench::thousands(r.csr_pool as f64),
        r.csr_generation_s,
        r.csr_us_per_core,
        shedu_bench::thousands(r.csr_used as f64),
    );
    if let Some(share) = r.resumed_share {
        println!(
            "  {:.1} % of the server's TLS handshakes in the window were resumptions",
            share * 100.0
        );
    }
    if !r.error_statuses.is_empty() {
        println!("  errors by status: {:?}", r.error_statuses);
    }
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Every pooled body is what EST expects (base64 DER that shedu's CSR parser accepts, signature
    /// verified) and names its own device, so each enrolment of a run registers a new device.
    #[test]
    fn pool_holds_one_device_per_csr() {
        let pool = csr_pool("ec-p256", "bench-t", 7).unwrap();
        assert_eq!(pool.csrs.len(), 7);
        assert!(pool.us_per_core > 0.0);
        for (i, body) in pool.csrs.iter().enumerate() {
            assert!(!body.contains("-----"), "armour left in {body}");
            let b64: String = body.split_whitespace().collect();
            let csr = shedu_pki::Csr::from_der(&STANDARD.decode(b64).unwrap()).unwrap();
            assert_eq!(csr.common_name(), Some(format!("bench-t-{i}").as_str()));
        }
    }
}
