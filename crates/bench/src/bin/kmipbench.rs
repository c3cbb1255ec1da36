//! `kmipbench`: KMIP Create (AES-256) or Get operations per second over binary TTLV on TLS, at a fixed
//! concurrency, against shedu's KMIP listener or PyKMIP's own `pykmip-server`, with the same client.
//!
//! Why: the KMIP issue asks for Create and Get per second at concurrency 1 and 16 against PyKMIP's
//! server, measured in the same run with the same client, with the server's CPU per operation; the goal
//! is thirty times PyKMIP's throughput.
//!
//! How: the client is this file, over rustls with a client certificate (shedu's KMIP clients must
//! present one from a CA it manages; PyKMIP's server is configured to require one too), encoding and
//! decoding with `shedu-kmip`. Every worker keeps one TLS connection open and sends one Request Message
//! of one batch item at a time (the TLS handshake happens before the clock starts; a connection that
//! fails is reopened by the next operation, and the failure counted). A **create** is a Create of a
//! symmetric key (AES, 256 bits, usage mask Encrypt|Decrypt), successful when the answer names a Unique
//! Identifier. A **get** is a Get of one of 100 such keys made before the clock starts, cycled over,
//! successful when the answer holds a Symmetric Key whose Key Material is 32 bytes. Requests are KMIP 1.2
//! by default (PyKMIP's server answers 1.0–2.0), with attributes in 1.x form (`Template-Attribute`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use shedu_bench::load::{Window, closed_loop};
use shedu_bench::procfs;
use shedu_bench::stats::Summary;
use shedu_kmip::{
    Attribute, ProtocolVersion, RequestBatchItem, RequestMessage, ResponseMessage, Ttlv, Value,
    cryptographic_algorithm, object_type, operation, result_status, tag, write_attribute,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::client::TlsStream;

/// KMIP Create/Get load generator over binary TTLV and TLS.
#[derive(Debug, Parser)]
#[command(name = "kmipbench")]
struct Args {
    /// The KMIP server's address, e.g. `127.0.0.1:5696`.
    #[arg(long)]
    addr: String,
    /// The name the server's certificate is checked against.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// PEM CA certificate(s) of the server's TLS certificate.
    #[arg(long)]
    ca_file: PathBuf,
    /// PEM client certificate (chain) presented to the server.
    #[arg(long)]
    cert: PathBuf,
    /// PEM private key of the client certificate.
    #[arg(long)]
    key: PathBuf,
    /// The server's name in the output (`shedu`, `pykmip`).
    #[arg(long)]
    target: String,
    /// What to measure.
    #[arg(long, value_enum)]
    operation: Operation,
    /// The KMIP protocol version of the requests, `MAJOR.MINOR`.
    #[arg(long, default_value = "1.2")]
    kmip_version: String,
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
    Create,
    Get,
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    operation: Operation,
    label: String,
    kmip_version: String,
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

/// Keys that Gets cycle over.
const KEYS: usize = 100;
/// The longest a response may take (a stuck server counts as a transport failure, not a hang).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest response accepted.
const MAX_RESPONSE: usize = 1 << 20;

/// Where and how to connect.
struct Endpoint {
    addr: String,
    server_name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl Endpoint {
    async fn connect(&self) -> anyhow::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        self.connector
            .connect(self.server_name.clone(), tcp)
            .await
            .context("TLS handshake")
    }
}

/// One worker's connection, reopened after a failure.
type Slot = Mutex<Option<TlsStream<TcpStream>>>;

/// A failed operation: (status for the table, detail).
type Failure = (String, String);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let version = parse_version(&args.kmip_version)?;
    let endpoint = Arc::new(endpoint(&args)?);

    let mut slots: Vec<Slot> = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        slots.push(Mutex::new(Some(endpoint.connect().await?)));
    }
    // The keys Gets read, made on the first worker's connection before the clock starts (for Creates, one
    // Create per connection checks that the server answers before the clock starts).
    let mut uids = Vec::new();
    let setup_creates = match args.operation {
        Operation::Get => KEYS,
        Operation::Create => 0,
    };
    for _ in 0..setup_creates {
        let r = exchange(&endpoint, &slots[0], &create_request(version)).await;
        uids.push(created_uid(r).map_err(|(s, d)| anyhow::anyhow!("setup Create: {s}: {d}"))?);
    }
    if args.operation == Operation::Create {
        for slot in &slots {
            let r = exchange(&endpoint, slot, &create_request(version)).await;
            created_uid(r).map_err(|(s, d)| anyhow::anyhow!("first Create: {s}: {d}"))?;
        }
    }
    let gets: Vec<Vec<u8>> = uids.iter().map(|u| get_request(version, u)).collect();
    let create = create_request(version);

    let plan = Arc::new((endpoint, slots, gets, create, args.operation));
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
            let (endpoint, slots, gets, create, operation) = &*plan;
            let slot = &slots[worker];
            match operation {
                Operation::Create => {
                    created_uid(exchange(endpoint, slot, create).await).map(|_| ())
                }
                Operation::Get => {
                    // Workers start at different keys so that they do not read the same row in step.
                    let k = usize::try_from(n).unwrap_or(0).wrapping_add(worker * 7) % gets.len();
                    got_key(exchange(endpoint, slot, &gets[k]).await)
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
        kmip_version: args.kmip_version,
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
            "{} {} {:?} c={}: {} per s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} errors{}{}",
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
                .server_cpu_ms_per_op
                .map(|ms| format!(", server CPU {ms:.3} ms per op"))
                .unwrap_or_default(),
            report
                .first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn parse_version(text: &str) -> anyhow::Result<ProtocolVersion> {
    let (major, minor) = text
        .split_once('.')
        .with_context(|| format!("--kmip-version {text:?} is not MAJOR.MINOR"))?;
    Ok(ProtocolVersion {
        major: major.parse()?,
        minor: minor.parse()?,
    })
}

fn endpoint(args: &Args) -> anyhow::Result<Endpoint> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&args.ca_file)
        .with_context(|| format!("reading {}", args.ca_file.display()))?
    {
        roots.add(c?)?;
    }
    let chain = CertificateDer::pem_file_iter(&args.cert)
        .with_context(|| format!("reading {}", args.cert.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    Ok(Endpoint {
        addr: args.addr.clone(),
        server_name: ServerName::try_from(args.server_name.clone())?,
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
    })
}

/// A binary Request Message of one batch item.
fn request(version: ProtocolVersion, op: u32, payload: Vec<Ttlv>) -> Vec<u8> {
    let message = RequestMessage {
        protocol_version: version,
        maximum_response_size: None,
        batch_error_continuation: None,
        batch_items: vec![RequestBatchItem {
            operation: op,
            unique_batch_item_id: None,
            payload: Ttlv::structure(tag::REQUEST_PAYLOAD, payload),
        }],
    };
    // A request this small always encodes.
    shedu_kmip::encode(&message.to_ttlv()).unwrap_or_default()
}

/// Create an AES-256 key usable for Encrypt and Decrypt.
fn create_request(version: ProtocolVersion) -> Vec<u8> {
    let attribute = |name: &str, value: Ttlv| Attribute {
        name: name.into(),
        index: 0,
        value,
    };
    let attributes: Vec<Ttlv> = [
        attribute(
            "Cryptographic Algorithm",
            Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, cryptographic_algorithm::AES),
        ),
        attribute(
            "Cryptographic Length",
            Ttlv::integer(tag::CRYPTOGRAPHIC_LENGTH, 256),
        ),
        // Encrypt (0x4) | Decrypt (0x8).
        attribute(
            "Cryptographic Usage Mask",
            Ttlv::integer(tag::CRYPTOGRAPHIC_USAGE_MASK, 0x4 | 0x8),
        ),
    ]
    .iter()
    .map(|a| write_attribute(a, version))
    .collect();
    let holder = if version.is_v2() {
        tag::ATTRIBUTES
    } else {
        tag::TEMPLATE_ATTRIBUTE
    };
    request(
        version,
        operation::CREATE,
        vec![
            Ttlv::enumeration(tag::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            Ttlv::structure(holder, attributes),
        ],
    )
}

fn get_request(version: ProtocolVersion, uid: &str) -> Vec<u8> {
    request(
        version,
        operation::GET,
        vec![Ttlv::text(tag::UNIQUE_IDENTIFIER, uid)],
    )
}

/// Sends `request` on the slot's connection (opening one when it has none) and reads one Response
/// Message; a transport failure drops the connection.
async fn exchange(endpoint: &Endpoint, slot: &Slot, request: &[u8]) -> Result<Ttlv, Failure> {
    let mut conn = slot.lock().await;
    let transport = |e: anyhow::Error| ("transport".to_string(), format!("{e:#}"));
    if conn.is_none() {
        *conn = Some(endpoint.connect().await.map_err(transport)?);
    }
    let Some(tls) = conn.as_mut() else {
        return Err(("transport".into(), "no connection".into()));
    };
    let result = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        tls.write_all(request).await?;
        let mut header = [0u8; shedu_kmip::HEADER_LEN];
        tls.read_exact(&mut header).await?;
        let len = shedu_kmip::message_len(&header)?;
        if len > MAX_RESPONSE {
            bail!("a response of {len} bytes");
        }
        let mut message = header.to_vec();
        message.resize(len, 0);
        tls.read_exact(&mut message[shedu_kmip::HEADER_LEN..])
            .await?;
        Ok(message)
    })
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {EXCHANGE_TIMEOUT:?}")));
    match result {
        Ok(bytes) => shedu_kmip::decode(&bytes).map_err(|e| ("decode".to_string(), e.to_string())),
        Err(e) => {
            *conn = None;
            Err(transport(e))
        }
    }
}

/// The payload of a successful single-item response, or the failure's reason.
fn payload(response: Result<Ttlv, Failure>) -> Result<Ttlv, Failure> {
    let message = ResponseMessage::from_ttlv(&response?)
        .map_err(|e| ("decode".to_string(), e.to_string()))?;
    let Some(item) = message.batch_items.into_iter().next() else {
        return Err(("decode".into(), "no batch item".into()));
    };
    if item.result_status != result_status::SUCCESS {
        let reason = item
            .result_reason
            .and_then(|r| shedu_kmip::enum_name(tag::RESULT_REASON, r))
            .unwrap_or("OperationFailed");
        return Err((reason.to_string(), item.result_message.unwrap_or_default()));
    }
    item.payload
        .ok_or_else(|| ("decode".into(), "no response payload".into()))
}

/// The Unique Identifier a Create answered.
fn created_uid(response: Result<Ttlv, Failure>) -> Result<String, Failure> {
    let p = payload(response)?;
    match p.child(tag::UNIQUE_IDENTIFIER).map(|i| &i.value) {
        Some(Value::TextString(uid)) => Ok(uid.clone()),
        _ => Err(("decode".into(), "no Unique Identifier".into())),
    }
}

/// Checks that a Get answered a symmetric key of 32 bytes.
fn got_key(response: Result<Ttlv, Failure>) -> Result<(), Failure> {
    let p = payload(response)?;
    let material = p
        .child(tag::SYMMETRIC_KEY)
        .and_then(|k| k.child(tag::KEY_BLOCK))
        .and_then(|b| b.child(tag::KEY_VALUE))
        .and_then(|v| v.child(tag::KEY_MATERIAL));
    match material.map(|m| &m.value) {
        Some(Value::ByteString(bytes)) if bytes.len() == 32 => Ok(()),
        Some(Value::ByteString(bytes)) => {
            Err(("decode".into(), format!("a key of {} bytes", bytes.len())))
        }
        _ => Err(("decode".into(), "no Symmetric Key material".into())),
    }
}
