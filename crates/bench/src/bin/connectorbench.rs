//! `connectorbench`: the connector's pairings (token → info → sign) or renewals over mTLS per second,
//! against a running server, at a fixed concurrency.
//!
//! Why: the connector issue asks for full pairings per second at concurrency 1 and 32 on SQLite and
//! PostgreSQL, and renewals per second, with the target that a pairing costs no more than three API
//! issuances (`loadbench`): a pairing is three requests, two token transactions and one certificate
//! transaction.
//!
//! How: it makes sure a CA named `connector` exists (the connector's default CA; created with a subject
//! policy that keeps Kyma's subject), makes one key and CSR for the application `bench-app` before the
//! clock starts (a client may pair the same identity again and again, and the CSR is reused), then runs N
//! workers back to back for `--warmup` + `--duration` seconds. A pairing counts when its three calls
//! answered 201, 200 and 201 inside the measured window; `--mode renewal` first pairs once, then each
//! worker renews over its own kept-alive mTLS connection with the issued certificate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};
use shedu_bench::procfs;
use shedu_bench::stats::{Summary, micros};

/// Connector load generator for shedu.
#[derive(Debug, Parser)]
#[command(name = "connectorbench")]
struct Args {
    /// Base URL of shedu's HTTPS listener, e.g. `https://127.0.0.1:8443`.
    #[arg(long)]
    url: String,
    /// The connector's base path.
    #[arg(long, default_value = "/connector")]
    base: String,
    /// File holding the admin bearer token (`<data-dir>/admin-token`).
    #[arg(long)]
    token_file: PathBuf,
    /// PEM CA certificate of the server's TLS certificate (`<data-dir>/tls/ca.pem`).
    #[arg(long)]
    ca_file: PathBuf,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Pairing)]
    mode: Mode,
    /// Key type of the client's CSR.
    #[arg(long, default_value = "ec-p256")]
    csr_key_type: String,
    /// Operations in flight at once (one worker each).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Free-form label copied into the output (e.g. the database backend).
    #[arg(long, default_value = "")]
    label: String,
    /// Print one JSON line instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Server process id: measure its CPU time and bytes written in the measured window.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    /// token → info → sign, each pairing on the worker's kept-alive connection.
    Pairing,
    /// POST certificates/renewals over mTLS with the certificate of one pairing.
    Renewal,
}

#[derive(Debug, Serialize)]
struct Report {
    target: &'static str,
    mode: Mode,
    label: String,
    csr_key_type: String,
    concurrency: usize,
    duration_s: f64,
    ok: usize,
    errors: usize,
    error_statuses: BTreeMap<String, usize>,
    first_error: Option<String>,
    per_s: f64,
    latency: Summary,
    /// Server CPU seconds used in the measured window (with `--pid`).
    server_cpu_s: Option<f64>,
    /// Server CPU milliseconds per pairing or renewal: comparable on a shared machine, where rates are not.
    server_cpu_ms_per_op: Option<f64>,
    /// Bytes the server sent to storage per pairing or renewal in the window (`/proc/PID/io` write_bytes).
    storage_bytes_per_op: Option<f64>,
}

struct Plan {
    base: String,
    token: String,
    csr_body: String,
    measure_from: Instant,
    end: Instant,
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u64>,
    error_statuses: BTreeMap<String, usize>,
    first_error: Option<String>,
}

impl WorkerResult {
    fn error(&mut self, status: String, detail: String) {
        *self.error_statuses.entry(status).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(detail.chars().take(300).collect());
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let (token, root) = shedu_bench::token_and_root(&args.token_file, &args.ca_file)?;
    let client = || {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .tls_certs_only([root.clone()])
    };
    let api = client().build()?;
    let url = args.url.trim_end_matches('/').to_string();
    ensure_ca(&api, &url, &token).await?;

    let key = shedu_bench::generate_key(&args.csr_key_type)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (ty, v) in [
        (rcgen::DnType::OrganizationName, "Organization"),
        (rcgen::DnType::OrganizationalUnitName, "OrgUnit"),
        (rcgen::DnType::LocalityName, "Waldorf"),
        (rcgen::DnType::StateOrProvinceName, "Waldorf"),
        (rcgen::DnType::CountryName, "DE"),
        (rcgen::DnType::CommonName, "bench-app"),
    ] {
        params.distinguished_name.push(ty, v);
    }
    let csr_pem = params.serialize_request(&key)?.pem()?;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = Arc::new(Plan {
        base: format!("{url}{}", args.base.trim_end_matches('/')),
        token,
        csr_body: json!({ "csr": STANDARD.encode(csr_pem) }).to_string(),
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.duration),
    });

    // One pairing first: proves the path (and gives renewals their certificate).
    let first = pair(&api, &plan)
        .await
        .map_err(|(s, d)| anyhow::anyhow!("{s}: {d}"))?;
    let identity = match args.mode {
        Mode::Pairing => None,
        Mode::Renewal => {
            let pem = STANDARD.decode(first["clientCrt"].as_str().unwrap_or_default())?;
            let mut id = pem;
            id.extend(key.serialize_pem().as_bytes());
            Some(reqwest::Identity::from_pem(&id)?)
        }
    };
    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let mut b = client();
        if let Some(id) = &identity {
            b = b.identity(id.clone());
        }
        workers.push(tokio::spawn(worker(b.build()?, plan.clone(), args.mode)));
    }
    tokio::time::sleep_until(plan.measure_from.into()).await;
    let server_cpu0 = args.pid.and_then(|p| procfs::cpu_time(&p.to_string()));
    let written0 = args.pid.and_then(procfs::storage_write_bytes);
    tokio::time::sleep_until(plan.end.into()).await;
    let server_cpu1 = args.pid.and_then(|p| procfs::cpu_time(&p.to_string()));
    let written1 = args.pid.and_then(procfs::storage_write_bytes);
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
    let latency = Summary::from_micros(&mut all.latencies_us);
    let server_cpu_s = match (server_cpu0, server_cpu1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
        _ => None,
    };
    let ops = latency.count as f64;
    let report = Report {
        target: "shedu-connector",
        mode: args.mode,
        label: args.label,
        csr_key_type: args.csr_key_type,
        concurrency: args.concurrency,
        duration_s: args.duration,
        ok: latency.count,
        errors: all.error_statuses.values().sum(),
        error_statuses: all.error_statuses,
        first_error: all.first_error,
        per_s: ops / args.duration,
        latency,
        server_cpu_ms_per_op: server_cpu_s.filter(|_| ops > 0.0).map(|s| 1000.0 * s / ops),
        server_cpu_s,
        storage_bytes_per_op: match (written0, written1) {
            (Some(a), Some(b)) if ops > 0.0 => Some(b.saturating_sub(a) as f64 / ops),
            _ => None,
        },
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "connector {:?} {} c={}: {} per s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} errors, {} server CPU ms per op{}",
            report.mode,
            report.label,
            report.concurrency,
            shedu_bench::thousands(report.per_s),
            report.latency.p50_ms,
            report.latency.p99_ms,
            report.ok,
            report.errors,
            report
                .server_cpu_ms_per_op
                .map(|ms| format!("{ms:.2}"))
                .unwrap_or_else(|| "?".into()),
            report
                .first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Creates the CA named `connector` unless it exists (409: a CA of that name is there).
async fn ensure_ca(api: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<()> {
    let policy = json!({"CN": "allow", "O": "allow", "OU": "allow", "L": "allow", "ST": "allow", "C": "allow"});
    let res = api
        .post(format!("{url}/api/v1/cas"))
        .bearer_auth(token)
        .json(&json!({"name": "connector", "key_type": "ec-p256",
            "subject": {"common_name": "Connector bench CA"},
            "profile": {"ext_key_usages": ["client_auth"], "subject_policy": policy}}))
        .send()
        .await?;
    match res.status().as_u16() {
        201 | 409 => Ok(()),
        s => bail!("creating the connector CA: {s} {}", res.text().await?),
    }
}

/// One pairing; the certificate answer, or (status, body) of the call that failed.
async fn pair(client: &reqwest::Client, plan: &Plan) -> Result<Value, (String, String)> {
    let fail = |e: reqwest::Error| ("transport".to_string(), e.to_string());
    let res = client
        .post(format!("{}/v1/applications/tokens", plan.base))
        .bearer_auth(&plan.token)
        .header("Application", "bench-app")
        .send()
        .await
        .map_err(fail)?;
    let token = expect(res, 201).await?;
    let url = token["url"].as_str().unwrap_or_default().to_string();
    let info = expect(client.get(url).send().await.map_err(fail)?, 200).await?;
    let csr_url = info["csrUrl"].as_str().unwrap_or_default().to_string();
    let res = client
        .post(csr_url)
        .header("content-type", "application/json")
        .body(plan.csr_body.clone())
        .send()
        .await
        .map_err(fail)?;
    expect(res, 201).await
}

async fn renew(client: &reqwest::Client, plan: &Plan) -> Result<Value, (String, String)> {
    let res = client
        .post(format!(
            "{}/v1/applications/certificates/renewals",
            plan.base
        ))
        .header("content-type", "application/json")
        .body(plan.csr_body.clone())
        .send()
        .await
        .map_err(|e| ("transport".to_string(), e.to_string()))?;
    expect(res, 201).await
}

async fn expect(res: reqwest::Response, status: u16) -> Result<Value, (String, String)> {
    let got = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    if got != status {
        return Err((got.to_string(), text));
    }
    serde_json::from_str(&text).map_err(|e| ("json".to_string(), e.to_string()))
}

async fn worker(client: reqwest::Client, plan: Arc<Plan>, mode: Mode) -> WorkerResult {
    let mut out = WorkerResult::default();
    loop {
        let began = Instant::now();
        if began >= plan.end {
            return out;
        }
        let result = match mode {
            Mode::Pairing => pair(&client, &plan).await,
            Mode::Renewal => renew(&client, &plan).await,
        };
        let done = Instant::now();
        match result {
            Ok(_) if began >= plan.measure_from && done <= plan.end => {
                out.latencies_us.push(micros(done - began));
            }
            Ok(_) => {}
            Err((status, detail)) => out.error(status, detail),
        }
    }
}
