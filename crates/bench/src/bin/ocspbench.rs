//! `ocspbench`: OCSP responses per second and latency of a responder on the network, at a fixed concurrency.
//!
//! Why: the issue asks for OCSP responses/s and p99 latency on loopback, against `openssl ocsp` acting as
//! the responder for the same kind of CA, with the ratio between the two. `wrk` measures shedu well, but
//! `openssl ocsp` cannot be loaded with it: the responder serves one connection at a time and hangs on a
//! connection that sends nothing (wrk opens such probes). A comparison is only fair when the same client
//! measures both servers, so this tool is that client, and `scripts/bench` runs it against both (and `wrk`
//! against shedu in addition).
//!
//! How: N workers, each on its own TCP connection, send the same DER `OCSPRequest` back to back for
//! `--warmup` + `--duration` seconds, as `POST {path}` with `Content-Type: application/ocsp-request`, or
//! as RFC 5019 `GET {path}/{url-encoded base64}`. It speaks minimal HTTP/1.1 over a raw socket instead of
//! using reqwest: on a 2-core machine the client shares the CPU with the server, and a lean client leaves
//! more of it to the server under test. Connections are kept alive when the server allows it (HTTP/1.1
//! without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`) and reopened otherwise; the
//! report counts the connections opened, so a server that closes after every answer is visible. A
//! response counts when it is `200` with a successful `OCSPResponse` (`responseStatus` 0); every request
//! has a timeout, so a stuck server ends the run with errors instead of hanging it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use shedu_bench::procfs;
use shedu_bench::stats::{Summary, micros};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// OCSP load generator (HTTP/1.1, POST or RFC 5019 GET, keep-alive when the server allows it).
#[derive(Debug, Parser)]
#[command(name = "ocspbench")]
struct Args {
    /// Responder URL, e.g. `http://127.0.0.1:8080/ocsp` (shedu) or `http://127.0.0.1:8888/` (openssl).
    #[arg(long)]
    url: String,
    /// The DER OCSPRequest to send (`openssl ocsp -issuer ca.pem -cert leaf.pem -no_nonce -reqout req.der`).
    #[arg(long)]
    request: PathBuf,
    /// POST the request, or GET it base64- and URL-encoded in the path (RFC 5019).
    #[arg(long, value_enum, default_value_t = Method::Post)]
    method: Method,
    /// Requests in flight at once (one worker and one connection each).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds one request may take before it counts as an error (and its connection is dropped).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Client runtime threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Server process id: its CPU time in the measured window goes into the report.
    #[arg(long)]
    pid: Option<u32>,
    /// Which responder this is (copied into the output), e.g. `shedu` or `openssl`.
    #[arg(long, default_value = "shedu")]
    server: String,
    /// Free-form label copied into the output (e.g. `no nonce (cached)`).
    #[arg(long, default_value = "")]
    label: String,
    /// Print one JSON line instead of the human summary.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum Method {
    Post,
    Get,
}

/// One result row (the same fields `scripts/bench` writes for its `wrk` runs).
#[derive(Debug, Serialize)]
struct Report {
    tool: &'static str,
    server: String,
    label: String,
    method: Method,
    concurrency: usize,
    duration_s: f64,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    req_per_s: f64,
    latency: Summary,
    /// TCP connections opened in the measured window (one per request when the server closes each).
    connections: u64,
    /// Server CPU seconds in the measured window.
    server_cpu_s: Option<f64>,
    /// This client's CPU seconds in the measured window (it shares the machine).
    client_cpu_s: Option<f64>,
    request_bytes: usize,
    response_bytes: Option<usize>,
}

struct Plan {
    addr: String,
    request: Vec<u8>,
    timeout: Duration,
    measure_from: Instant,
    end: Instant,
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
    connections: u64,
    response_bytes: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let der = std::fs::read(&args.request)
        .with_context(|| format!("reading {}", args.request.display()))?;
    let (addr, path) = split_url(&args.url)?;
    let request = build_request(args.method, &addr, &path, &der);

    // One request first: proves the responder answers before any clock starts.
    let probe_plan = Plan {
        addr: addr.clone(),
        request: request.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        measure_from: Instant::now(),
        end: Instant::now(),
    };
    let mut conn = None;
    let mut opened = 0;
    let probe = exchange(&probe_plan, &mut conn, &mut opened)
        .await
        .with_context(|| format!("probe request to {}", args.url))?;
    drop(conn);

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = Arc::new(Plan {
        addr,
        request,
        timeout: Duration::from_secs_f64(args.timeout),
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.duration),
    });
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(worker(plan.clone())))
        .collect();

    tokio::time::sleep_until(measure_from.into()).await;
    let server_cpu0 = args.pid.and_then(|p| procfs::cpu_time(&p.to_string()));
    let client_cpu0 = procfs::cpu_time("self");
    tokio::time::sleep_until(plan.end.into()).await;
    let server_cpu1 = args.pid.and_then(|p| procfs::cpu_time(&p.to_string()));
    let client_cpu1 = procfs::cpu_time("self");

    let mut all = WorkerResult::default();
    for w in workers {
        let r = w.await?;
        all.latencies_us.extend(r.latencies_us);
        all.errors += r.errors;
        all.connections += r.connections;
        all.response_bytes = all.response_bytes.or(r.response_bytes);
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    let latency = Summary::from_micros(&mut all.latencies_us);
    let diff = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
        _ => None,
    };
    let report = Report {
        tool: "ocspbench",
        server: args.server,
        label: args.label,
        method: args.method,
        concurrency: args.concurrency,
        duration_s: args.duration,
        ok: latency.count,
        errors: all.errors,
        first_error: all.first_error,
        req_per_s: latency.count as f64 / args.duration,
        connections: all.connections,
        server_cpu_s: diff(server_cpu0, server_cpu1),
        client_cpu_s: diff(client_cpu0, client_cpu1),
        request_bytes: der.len(),
        response_bytes: all.response_bytes.or(Some(probe)),
        latency,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

/// `http://host:port/path` → (`host:port`, `/path`). Plain HTTP only: OCSP is served without TLS.
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--url must start with http:// (OCSP is plain HTTP)"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() {
        bail!("no host in {url}");
    }
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((host, path.to_string()))
}

/// The request bytes, built once and sent unchanged on every round trip.
fn build_request(method: Method, host: &str, path: &str, der: &[u8]) -> Vec<u8> {
    match method {
        Method::Post => {
            let mut r = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\
                 Content-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
                der.len()
            )
            .into_bytes();
            r.extend_from_slice(der);
            r
        }
        Method::Get => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let encoded = url_encode(&b64);
            let sep = if path.ends_with('/') { "" } else { "/" };
            format!(
                "GET {path}{sep}{encoded} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n"
            )
            .into_bytes()
        }
    }
}

/// Percent-encodes the base64 characters that are not allowed as such in a path segment (`+`, `/`, `=`).
fn url_encode(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + 16);
    for c in b64.chars() {
        match c {
            '+' => out.push_str("%2B"),
            '/' => out.push_str("%2F"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}

async fn worker(plan: Arc<Plan>) -> WorkerResult {
    let mut out = WorkerResult::default();
    let mut conn: Option<BufReader<TcpStream>> = None;
    loop {
        let started = Instant::now();
        if started >= plan.end {
            break;
        }
        let mut opened = 0;
        let outcome = exchange(&plan, &mut conn, &mut opened).await;
        let done = Instant::now();
        if started >= plan.measure_from {
            out.connections += opened;
        }
        if done < plan.measure_from || done > plan.end {
            continue;
        }
        match outcome {
            Ok(len) => {
                out.latencies_us.push(micros(done - started));
                out.response_bytes.get_or_insert(len);
            }
            Err(e) => {
                conn = None;
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(format!("{e:#}").chars().take(300).collect());
                }
            }
        }
    }
    out
}

/// One round trip on `conn` (opened first when `None`, and left `None` when the server closes it).
/// Returns the response body's length.
async fn exchange(
    plan: &Plan,
    conn: &mut Option<BufReader<TcpStream>>,
    opened: &mut u64,
) -> anyhow::Result<usize> {
    let round_trip = async {
        if conn.is_none() {
            let stream = TcpStream::connect(&plan.addr).await?;
            stream.set_nodelay(true)?;
            *conn = Some(BufReader::with_capacity(16 * 1024, stream));
            *opened += 1;
        }
        let Some(c) = conn.as_mut() else {
            bail!("no connection");
        };
        c.get_mut().write_all(&plan.request).await?;
        let (len, keep_alive) = read_response(c).await?;
        if !keep_alive {
            *conn = None;
        }
        Ok(len)
    };
    match tokio::time::timeout(plan.timeout, round_trip).await {
        Ok(r) => r,
        Err(_) => {
            *conn = None;
            bail!("no answer within {:?}", plan.timeout)
        }
    }
}

/// Reads one HTTP response: checks `200` and a successful `OCSPResponse`; returns (body length, whether
/// the connection may be reused).
async fn read_response(c: &mut BufReader<TcpStream>) -> anyhow::Result<(usize, bool)> {
    let mut line = String::new();
    if c.read_line(&mut line).await? == 0 {
        bail!("the server closed the connection");
    }
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or("").to_string();
    let status = parts.next().unwrap_or("").to_string();
    let mut keep_alive = version == "HTTP/1.1";
    let mut length: Option<usize> = None;
    loop {
        line.clear();
        if c.read_line(&mut line).await? == 0 {
            bail!("the connection closed inside the headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().context("Content-Length")?);
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = value.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let body = match length {
        Some(n) => {
            let mut body = vec![0u8; n];
            c.read_exact(&mut body).await?;
            body
        }
        None => {
            keep_alive = false;
            let mut body = Vec::new();
            c.read_to_end(&mut body).await?;
            body
        }
    };
    if status != "200" {
        bail!("HTTP {status}");
    }
    match response_status(&body) {
        Some(0) => Ok((body.len(), keep_alive)),
        Some(s) => bail!("OCSPResponse status {s} (not successful)"),
        None => bail!("the body is not an OCSPResponse ({} bytes)", body.len()),
    }
}

/// The `responseStatus` of a DER `OCSPResponse`: `SEQUENCE { ENUMERATED, ... }`.
fn response_status(der: &[u8]) -> Option<u8> {
    if der.first() != Some(&0x30) {
        return None;
    }
    let len_byte = *der.get(1)?;
    let header = if len_byte < 0x80 {
        2
    } else {
        2 + usize::from(len_byte & 0x7f)
    };
    match der.get(header..header + 3)? {
        [0x0a, 0x01, s] => Some(*s),
        _ => None,
    }
}

fn print_human(r: &Report) {
    println!(
        "{} {} {} c={}: {} responses/s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, {} ok, {} errors, \
         {} connections opened",
        r.server,
        r.label,
        serde_json::to_string(&r.method).unwrap_or_default(),
        r.concurrency,
        shedu_bench::thousands(r.req_per_s),
        r.latency.p50_ms,
        r.latency.p99_ms,
        r.latency.max_ms,
        r.ok,
        r.errors,
        r.connections,
    );
    println!(
        "  server CPU {}, client CPU {}; request {} bytes, response {} bytes",
        r.server_cpu_s.map_or("-".into(), |c| format!("{c:.1} s")),
        r.client_cpu_s.map_or("-".into(), |c| format!("{c:.1} s")),
        r.request_bytes,
        r.response_bytes.map_or("-".into(), |b| b.to_string()),
    );
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/ocsp").unwrap(),
            ("127.0.0.1:8080".into(), "/ocsp".into())
        );
        assert_eq!(
            split_url("http://127.0.0.1:9").unwrap(),
            ("127.0.0.1:9".into(), "/".into())
        );
        assert!(split_url("https://x/ocsp").is_err());
    }

    #[test]
    fn reads_the_response_status() {
        // successful, with a one-byte and with a two-byte length
        assert_eq!(response_status(&[0x30, 0x03, 0x0a, 0x01, 0x00]), Some(0));
        assert_eq!(
            response_status(&[0x30, 0x82, 0x01, 0x00, 0x0a, 0x01, 0x00]),
            Some(0)
        );
        // unauthorized (6), as an error response is encoded
        assert_eq!(response_status(&[0x30, 0x03, 0x0a, 0x01, 0x06]), Some(6));
        assert_eq!(response_status(b"<html>"), None);
    }

    #[test]
    fn get_path_is_url_encoded() {
        let r = build_request(Method::Get, "h:1", "/ocsp", &[0xfb, 0xff, 0xfe]);
        let text = String::from_utf8(r).unwrap();
        assert!(
            text.starts_with("GET /ocsp/%2B%2F%2F%2B HTTP/1.1\r\n"),
            "{text}"
        );
    }
}
