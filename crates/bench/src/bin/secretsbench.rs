//! `secretsbench`: KV v2 reads or writes per second against a Vault-compatible server, at a fixed
//! concurrency: shedu's secret store, or `bao server -dev` (OpenBao in memory) with the same client.
//!
//! Why: the secret store issue asks for KV reads and writes per second at concurrency 1 and 32 against the
//! in-memory OpenBao dev server, measured in the same run with the same client, with the goal that shedu,
//! durable on SQLite, reads at least twice as fast.
//!
//! How: with the token given (shedu's admin token, or the dev server's root token) it first makes a
//! secret-store token (`auth/token/create`, policy `root`), so both servers check a token of their own on
//! every request, then writes the 100 secrets `bench/r<k>` that reads cycle over. Each worker has its own
//! kept-alive HTTP/1.1 connection (the same protocol for both: the dev server speaks plain HTTP only,
//! shedu HTTPS; the TLS handshake happens once per worker, before the clock starts). A read is `GET
//! /v1/secret/data/bench/r<k>` answered 200; a write is `POST /v1/secret/data/bench/w<worker>-<k>`
//! (`{"data": {..}}`, two fields, 48 bytes of values) answered 200, cycling over 100 paths per worker so
//! that version pruning is part of the steady state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};
use shedu_bench::load::{Window, closed_loop};
use shedu_bench::procfs;
use shedu_bench::stats::Summary;

/// KV v2 load generator for Vault-compatible servers.
#[derive(Debug, Parser)]
#[command(name = "secretsbench")]
struct Args {
    /// Base URL, e.g. `https://127.0.0.1:8443` (shedu) or `http://127.0.0.1:8200` (bao -dev).
    #[arg(long)]
    url: String,
    /// File holding a token allowed to make root tokens (shedu's `<data-dir>/admin-token`, or the dev
    /// server's root token).
    #[arg(long)]
    token_file: PathBuf,
    /// PEM CA certificate of the server's TLS certificate (HTTPS only).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// The server's name in the output (`shedu`, `openbao-dev`).
    #[arg(long)]
    target: String,
    /// What to measure.
    #[arg(long, value_enum)]
    operation: Operation,
    /// Operations in flight at once (one worker and connection each).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The server's pid, to report its CPU time per operation.
    #[arg(long)]
    pid: Option<u32>,
    /// Free-form label copied into the output (e.g. the database backend).
    #[arg(long, default_value = "")]
    label: String,
    /// Print one JSON line instead of the human summary.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Operation {
    Read,
    Write,
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    operation: Operation,
    label: String,
    concurrency: usize,
    duration_s: f64,
    ok: usize,
    errors: usize,
    error_statuses: std::collections::BTreeMap<String, usize>,
    first_error: Option<String>,
    per_s: f64,
    /// Server CPU milliseconds per operation, over the measured window.
    server_cpu_ms_per_op: Option<f64>,
    latency: Summary,
}

/// Paths that reads cycle over, and that each worker's writes cycle over.
const PATHS: u64 = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let admin = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("reading {}", args.token_file.display()))?
        .trim()
        .to_string();
    let root = match &args.ca_file {
        Some(f) => Some(reqwest::Certificate::from_pem(
            &std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        )?),
        None => None,
    };
    let client = || {
        let b = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .http1_only();
        match &root {
            Some(root) => b.tls_certs_only([root.clone()]),
            None => b,
        }
        .build()
    };
    let url = args.url.trim_end_matches('/').to_string();
    let setup = client()?;
    let token = make_token(&setup, &url, &admin).await?;
    let value = json!({"data": {"user": "bench-service", "password": "x".repeat(35)}}).to_string();
    for k in 0..PATHS {
        send(
            &setup,
            &format!("{url}/v1/secret/data/bench/r{k}"),
            &token,
            Some(&value),
        )
        .await
        .map_err(|(s, d)| anyhow::anyhow!("writing bench/r{k}: {s} {d}"))?;
    }

    let clients: Vec<reqwest::Client> = (0..args.concurrency)
        .map(|_| client())
        .collect::<Result<_, _>>()?;
    // Each worker's connection is opened (and its TLS handshake done) before the clock starts.
    for c in &clients {
        send(c, &format!("{url}/v1/secret/data/bench/r0"), &token, None)
            .await
            .map_err(|(s, d)| anyhow::anyhow!("first read: {s} {d}"))?;
    }
    let plan = Arc::new((clients, url, token, value, args.operation));
    let window = Window::from_now(args.warmup, args.duration);
    let cpu_at_start = args.pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(window.measure_from.into()).await;
            procfs::cpu_time(&pid.to_string())
        })
    });
    let op_plan = plan.clone();
    let mut outcome = closed_loop(window, args.concurrency, move |worker, n| {
        let plan = op_plan.clone();
        async move {
            let (clients, url, token, value, operation) = &*plan;
            let k = n % PATHS;
            match operation {
                Operation::Read => {
                    let path = format!("{url}/v1/secret/data/bench/r{k}");
                    send(&clients[worker], &path, token, None).await
                }
                Operation::Write => {
                    let path = format!("{url}/v1/secret/data/bench/w{worker}-{k}");
                    send(&clients[worker], &path, token, Some(value)).await
                }
            }
        }
    })
    .await?;
    let cpu_end = args.pid.and_then(|p| procfs::cpu_time(&p.to_string()));
    let cpu_start = match cpu_at_start {
        Some(task) => task.await?,
        None => None,
    };
    let latency = outcome.summary();
    let server_cpu_ms_per_op = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) if latency.count > 0 => {
            Some((b.saturating_sub(a)).as_secs_f64() * 1000.0 / latency.count as f64)
        }
        _ => None,
    };
    let report = Report {
        target: args.target,
        operation: args.operation,
        label: args.label,
        concurrency: args.concurrency,
        duration_s: args.duration,
        ok: latency.count,
        errors: outcome.errors(),
        error_statuses: outcome.error_statuses,
        first_error: outcome.first_error,
        per_s: latency.count as f64 / args.duration,
        server_cpu_ms_per_op,
        latency,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} {} {:?} c={}: {} per s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} errors{}",
            report.target,
            report.label,
            report.operation,
            report.concurrency,
            shedu_bench::thousands(report.per_s),
            report.latency.p50_ms,
            report.latency.p99_ms,
            report.ok,
            report.errors,
            report
                .first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// A root secret-store token made with `admin`.
async fn make_token(client: &reqwest::Client, url: &str, admin: &str) -> anyhow::Result<String> {
    let res = client
        .post(format!("{url}/v1/auth/token/create"))
        .header("X-Vault-Token", admin)
        .json(&json!({"policies": ["root"], "ttl": "1h"}))
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    match body["auth"]["client_token"].as_str() {
        Some(t) if status.is_success() => Ok(t.to_string()),
        _ => bail!("auth/token/create answered {status}: {body}"),
    }
}

/// A GET (no body) or POST (`body`) that must answer 200.
async fn send(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Option<&String>,
) -> Result<(), (String, String)> {
    let req = match body {
        Some(b) => client
            .post(url)
            .header("content-type", "application/json")
            .body(b.clone()),
        None => client.get(url),
    };
    let res = req
        .header("X-Vault-Token", token)
        .send()
        .await
        .map_err(|e| ("transport".to_string(), e.to_string()))?;
    let status = res.status().as_u16();
    let text = res
        .bytes()
        .await
        .map_err(|e| ("transport".to_string(), e.to_string()))?;
    if status != 200 {
        return Err((
            status.to_string(),
            String::from_utf8_lossy(&text).into_owned(),
        ));
    }
    Ok(())
}
