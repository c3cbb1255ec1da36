//! `benchreport`: turns the JSON lines `scripts/bench` collected into one markdown report.
//!
//! Why: the issue wants each issuance figure beside the raw signing rate of the same key type on the same
//! machine, and the targets checked against the figures. Doing the joins and the arithmetic here keeps the
//! script free of jq/python and makes the ratios the same every time the report is regenerated.
//!
//! Input (all optional, in `--dir`): `meta.json` (one object written by the script), `load.jsonl`
//! (`loadbench --json`), `signrate.jsonl` (`signrate --json`), `pkcs11.jsonl` (`signrate --json`, software
//! and `--pkcs11`, on the same thread counts), `ocsp.jsonl` (`ocspbench --json`, and the script's `wrk` rows
//! in the same shape), `crl.jsonl` (`crlbench --json`), `sweep.jsonl` (`sweepbench --json`), `est.jsonl`
//! (`estbench --json`), `startup.jsonl` (one object per backend written by the script), `failures.txt` (steps that failed),
//! `devices.jsonl` (`devicebench --json`), `connector.jsonl` (`loadbench --json` and `connectorbench
//! --json` on one server), `cluster.jsonl` (`loadbench --json` and `ocspbench --json` through a cluster),
//! `failover.jsonl` (`failoverbench --json`, and `loadbench --json` through a cluster losing a replica),
//! `secrets.jsonl` (`secretsbench --json`, shedu and `bao server -dev`), `bao-version.txt`, `kmip.jsonl`
//! (`kmipbench --json`, shedu and `pykmip-server`), `pykmip-version.txt` and `console.jsonl`
//! (`consolebench --json`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use shedu_bench::thousands;

/// Renders target/bench/*.jsonl as markdown.
#[derive(Debug, Parser)]
#[command(name = "benchreport")]
struct Args {
    /// Folder holding the collected results.
    #[arg(long, default_value = "target/bench")]
    dir: PathBuf,
}

/// Targets from the issue.
const TARGET_SQLITE_C32: f64 = 10_000.0;
const TARGET_IDLE_RSS_MB: f64 = 40.0;
const TARGET_STARTUP_MS: f64 = 200.0;
/// "Tens of thousands" of OCSP responses per second: at least 10,000.
const TARGET_OCSP: f64 = 10_000.0;
/// The secret store: shedu durable on SQLite reads at least twice as fast as OpenBao's in-memory dev server.
const TARGET_SECRETS_READ_RATIO: f64 = 2.0;
/// KMIP: shedu serves at least thirty times PyKMIP's server's Creates and Gets per second.
const TARGET_KMIP_RATIO: f64 = 30.0;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let meta = read_lines(&args.dir.join("meta.json"))?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let load = read_lines(&args.dir.join("load.jsonl"))?;
    let sign = read_lines(&args.dir.join("signrate.jsonl"))?;
    let sweep = read_lines(&args.dir.join("sweep.jsonl"))?;
    let startup = read_lines(&args.dir.join("startup.jsonl"))?;
    let pkcs11 = read_lines(&args.dir.join("pkcs11.jsonl"))?;
    let ocsp_rows = read_lines(&args.dir.join("ocsp.jsonl"))?;
    let crl_rows = read_lines(&args.dir.join("crl.jsonl"))?;
    let est_rows = read_lines(&args.dir.join("est.jsonl"))?;
    let device_rows = read_lines(&args.dir.join("devices.jsonl"))?;
    let console_rows = read_lines(&args.dir.join("console.jsonl"))?;
    let connector_rows = read_lines(&args.dir.join("connector.jsonl"))?;
    let secrets_rows = read_lines(&args.dir.join("secrets.jsonl"))?;
    let cluster_rows = read_lines(&args.dir.join("cluster.jsonl"))?;
    let failover_rows = read_lines(&args.dir.join("failover.jsonl"))?;
    let bao_version = std::fs::read_to_string(args.dir.join("bao-version.txt")).ok();
    let kmip_rows = read_lines(&args.dir.join("kmip.jsonl"))?;
    let pykmip_version = std::fs::read_to_string(args.dir.join("pykmip-version.txt")).ok();

    let mut out = String::new();
    let _ = writeln!(out, "# shedu benchmark results\n");
    machine(&mut out, &meta);
    issuance(&mut out, &load, &sign, &pkcs11, &meta);
    est(&mut out, &est_rows, &load);
    connector(&mut out, &connector_rows);
    secrets(&mut out, &secrets_rows, bao_version.as_deref());
    kmip(&mut out, &kmip_rows, pykmip_version.as_deref());
    signing(&mut out, &sign);
    engines(&mut out, &pkcs11);
    ocsp(&mut out, &ocsp_rows);
    crls(&mut out, &crl_rows);
    sweeps(&mut out, &sweep);
    devices(&mut out, &device_rows);
    console(&mut out, &console_rows);
    cluster(&mut out, &cluster_rows);
    failover(&mut out, &failover_rows);
    startup_table(&mut out, &startup);
    targets(&mut out, &load, &startup, &ocsp_rows);
    secrets_target(&mut out, &secrets_rows);
    kmip_target(&mut out, &kmip_rows);
    failures(&mut out, &args.dir.join("failures.txt"));
    print!("{out}");
    Ok(())
}

/// The cluster step: `loadbench` and `ocspbench` rows through HAProxy with 1, 2 and 3 replicas, and to the
/// one replica directly.
fn cluster(out: &mut String, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Cluster: replicas on one PostgreSQL database behind HAProxy\n\n\
         `scripts/cluster up N`: N replicas and HAProxy (TLS passed through for the API, HTTP balanced for \
         OCSP) on this machine's cores, so more replicas add no CPU here: the rows show what spreading the \
         load costs. `direct` is the one replica without the balancer. Issuance: P-256 CSRs, loadbench; OCSP: \
         one cached request (no nonce), POST, ocspbench.\n"
    );
    let _ = writeln!(
        out,
        "| replicas, route | work | c | per s | p50 ms | p99 ms | errors |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let (work, rate) = if s(r, "tool") == "ocspbench" {
            ("OCSP POST", f(r, "req_per_s"))
        } else {
            ("issuance", f(r, "certs_per_s"))
        };
        let _ = writeln!(
            out,
            "| {} | {work} | {} | **{}** | {:.2} | {:.2} | {} |",
            s(r, "label"),
            r["concurrency"].as_u64().unwrap_or(0),
            thousands(rate.unwrap_or(0.0)),
            r["latency"]["p50_ms"].as_f64().unwrap_or(0.0),
            r["latency"]["p99_ms"].as_f64().unwrap_or(0.0),
            r["errors"].as_u64().unwrap_or(0),
        );
    }
    let _ = writeln!(out);
}

/// The failover step: each singleton job's time without a runner after a SIGKILL (`failoverbench`), and
/// issuance through HAProxy while a replica is killed (`loadbench`).
fn failover(out: &mut String, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Fail-over: a replica killed with SIGKILL\n\n\
         `scripts/cluster up 3` on PostgreSQL with NATS, lifecycle and reminder jobs every second. \
         `failoverbench` kills the replica that ran a job last (for the NATS sink: the one dispatching it), \
         twice, and times from the kill until a survivor has done the job's work: the sink, until a certificate \
         issued right after the kill is acknowledged by JetStream; sweep and reminders, until 20 certificates \
         made due after the kill have moved (have their reminder); CRL, until a survivor serves a CRL listing \
         a certificate revoked after the kill. \"After it was due\" starts when the window was widened or the \
         revocation returned: a profile change or a revocation first waits for the killed replica's cache \
         lease to run out (up to 3.5 s), which the time from the kill includes.\n"
    );
    let _ = writeln!(
        out,
        "| job | round | killed | replicas left | done after the kill ms | after it was due ms | run by |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---|");
    for r in rows.iter().filter(|r| s(r, "tool") == "failoverbench") {
        let by: Vec<&str> = r["taken_over_by"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | **{}** | {} | {} |",
            s(r, "job"),
            r["round"].as_u64().unwrap_or(0),
            s(r, "killed"),
            r["replicas_left"].as_u64().unwrap_or(0),
            opt(f(r, "since_kill_ms"), |v| format!("{v:.0}")),
            opt(f(r, "since_due_ms"), |v| format!("{v:.0}")),
            if by.is_empty() {
                "-".to_string()
            } else {
                by.join(", ")
            },
        );
    }
    let load: Vec<&Value> = rows
        .iter()
        .filter(|r| s(r, "tool") != "failoverbench")
        .collect();
    if !load.is_empty() {
        let _ = writeln!(
            out,
            "\n| issuance through HAProxy | c | certificates/s | p50 ms | p99 ms | max ms | ok | errors |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for r in load {
            let _ = writeln!(
                out,
                "| {} | {} | **{}** | {:.2} | {:.2} | {:.2} | {} | {} |",
                s(r, "label"),
                r["concurrency"].as_u64().unwrap_or(0),
                thousands(f(r, "certs_per_s").unwrap_or(0.0)),
                r["latency"]["p50_ms"].as_f64().unwrap_or(0.0),
                r["latency"]["p99_ms"].as_f64().unwrap_or(0.0),
                r["latency"]["max_ms"].as_f64().unwrap_or(0.0),
                r["ok"].as_u64().unwrap_or(0),
                r["errors"].as_u64().unwrap_or(0),
            );
        }
    }
    let _ = writeln!(out);
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn f(v: &Value, key: &str) -> Option<f64> {
    v[key].as_f64()
}

fn opt(x: Option<f64>, fmt: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "-".to_string(), fmt)
}

fn machine(out: &mut String, meta: &Value) {
    if meta.is_null() {
        return;
    }
    let _ = writeln!(out, "## Machine and run\n");
    for (label, key) in [
        ("Date", "date"),
        ("Commit", "commit"),
        ("CPU", "cpu"),
        ("Cores", "cores"),
        ("Memory", "memory"),
        ("Disk fsync (4 KiB O_DSYNC writes)", "fsync"),
        ("Load average at start", "load_start"),
        ("Load average at end", "load_end"),
        ("Durations", "durations"),
        ("Note", "note"),
    ] {
        let v = &meta[key];
        let text = match v {
            Value::String(t) => t.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        if !text.is_empty() {
            let _ = writeln!(out, "* {label}: {text}");
        }
    }
    let _ = writeln!(out);
}

/// The engine a `signrate` or `loadbench` row names; rows written before engines existed are `software`.
fn engine(v: &Value) -> &str {
    match s(v, "engine") {
        "" => "software",
        e => e,
    }
}

/// The signing figures for a key type in an engine: (1 thread, most threads) for sign/s and issue/s.
fn sign_for(
    sign: &[Value],
    key_type: &str,
    engine_name: &str,
    field: &str,
) -> (Option<f64>, Option<f64>) {
    let rows: Vec<&Value> = sign
        .iter()
        .filter(|r| s(r, "ca_key_type") == key_type && engine(r) == engine_name)
        .collect();
    let one = rows
        .iter()
        .find(|r| r["threads"].as_u64() == Some(1))
        .and_then(|r| f(r, field));
    let all = rows
        .iter()
        .filter(|r| r["threads"].as_u64().unwrap_or(0) > 1)
        .max_by_key(|r| r["threads"].as_u64())
        .and_then(|r| f(r, field));
    (one, all)
}

fn issuance(out: &mut String, load: &[Value], sign: &[Value], pkcs11: &[Value], meta: &Value) {
    if load.is_empty() {
        return;
    }
    let cores = meta["cores"].as_str().unwrap_or("all");
    let _ = writeln!(
        out,
        "## Issuance from CSRs over the network\n\n\
         Each row: one root CA of the key type, P-256 CSRs (unless noted), N concurrent clients each on its own \
         connection, measured window after a warm-up. `sign/s` and `issue/s` are `signrate` on this machine with \
         {cores} threads (the machine's ceiling); the ratios show how close issuance gets to it. `server CPU` \
         is the shedu (or cfssl) process only; on PostgreSQL the database's own CPU and writes are not included.\n"
    );
    let _ = writeln!(
        out,
        "| server | DB | CA key | CSR key | c | certs/s | p50 ms | p99 ms | errors | sign/s | issue/s | certs ÷ sign | certs ÷ issue | server CPU (cores) | certs per CPU-s | peak RSS MiB | storage KiB/cert |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in load {
        let kt = s(r, "ca_key_type");
        // A PKCS#11 CA's ceiling is the token's signing rate, measured by `signrate --pkcs11` (pkcs11.jsonl,
        // which also holds software rows: the fallback when the signrate step did not run).
        let eng = if engine(r) == "pkcs11" {
            "pkcs11"
        } else {
            "software"
        };
        let lookup = |field: &str| match sign_for(sign, kt, eng, field) {
            (None, None) => sign_for(pkcs11, kt, eng, field),
            found => found,
        };
        let (sign1, sign_all) = lookup("sign_per_s");
        let (issue1, issue_all) = lookup("issue_per_s");
        let key_label = match s(r, "engine") {
            "" => kt.to_string(),
            e => format!("{kt} ({e})"),
        };
        let sign_ref = sign_all.or(sign1);
        let issue_ref = issue_all.or(issue1);
        let rate = f(r, "certs_per_s").unwrap_or(0.0);
        let duration = f(r, "duration_s").unwrap_or(1.0);
        let pct = |d: Option<f64>| {
            opt(d.filter(|d| *d > 0.0), |d| {
                format!("{:.1} %", rate / d * 100.0)
            })
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | **{}** | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s(r, "target"),
            s(r, "label"),
            key_label,
            s(r, "csr_key_type"),
            r["concurrency"].as_u64().unwrap_or(0),
            thousands(rate),
            r["latency"]["p50_ms"].as_f64().unwrap_or(0.0),
            r["latency"]["p99_ms"].as_f64().unwrap_or(0.0),
            r["errors"].as_u64().unwrap_or(0),
            opt(sign_ref, thousands),
            opt(issue_ref, thousands),
            pct(sign_ref),
            pct(issue_ref),
            opt(f(r, "server_cpu_s"), |c| format!("{:.2}", c / duration)),
            opt(f(r, "certs_per_server_cpu_s"), thousands),
            opt(f(r, "rss_peak_kib"), |k| format!("{:.1}", k / 1024.0)),
            if s(r, "label").starts_with("postgres") {
                "(in PostgreSQL)".to_string()
            } else {
                opt(f(r, "storage_bytes_per_cert"), |b| {
                    format!("{:.1}", b / 1024.0)
                })
            },
        );
    }
    let _ = writeln!(out);
}

fn est(out: &mut String, rows: &[Value], load: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## EST enrolment (`estbench`)\n\n\
         `POST /.well-known/est/{{ra}}/simpleenroll` with a base64 DER PKCS#10, authenticated by mTLS with a \
         bootstrap certificate; the answer is a PKCS#7 certs-only. Every request is the **first enrolment of a \
         new device** (a distinct CSR common name): the RA registers the device, and the certificate, device, \
         slot, log, events and audit record are committed in one transaction per enrolment. Re-enrolment is not \
         measured. `keep-alive`: each client keeps one mTLS connection; `per-enrolment`: a new connection and a \
         full TLS handshake (no resumption) for every enrolment; `resumed`: a new connection per enrolment that \
         resumes the session of the client's previous one (a device that talked to the server before), with \
         the share of handshakes the server resumed (its `shedu_tls_handshakes_total`). `/health` rows send \
         `GET /health` over the same connection pattern: the pattern's ceiling, and `EST ÷ /health` the share \
         of it enrolment keeps. `API certs/s` is `loadbench` (`POST /api/v1/cas/{{id}}/certificates`, \
         group-commit writer) on the same database, CA key and concurrency in the same run.\n"
    );
    let _ = writeln!(
        out,
        "| DB | CA key | CSR key | c | connection | request | per s | p50 ms | p99 ms | max ms | errors | resumed | EST ÷ /health | API certs/s | EST ÷ API | server CPU (cores) | per CPU-s | peak RSS MiB | storage KiB/enrolment |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let health_of = |r: &Value| {
        rows.iter()
            .find(|h| {
                s(h, "request") == "health"
                    && s(h, "label") == s(r, "label")
                    && h["concurrency"] == r["concurrency"]
                    && s(h, "connection") == s(r, "connection")
            })
            .and_then(|h| f(h, "enrolments_per_s"))
    };
    for r in rows {
        let is_health = s(r, "request") == "health";
        let rate = f(r, "enrolments_per_s").unwrap_or(0.0);
        let duration = f(r, "duration_s").unwrap_or(1.0);
        let api = load
            .iter()
            .find(|l| {
                s(l, "target") == "shedu"
                    && engine(l) == "software"
                    && s(l, "label") == s(r, "label")
                    && s(l, "ca_key_type") == s(r, "ca_key_type")
                    && s(l, "csr_key_type") == s(r, "csr_key_type")
                    && l["concurrency"] == r["concurrency"]
            })
            .and_then(|l| f(l, "certs_per_s"))
            .filter(|_| !is_health);
        let health = health_of(r).filter(|h| !is_health && *h > 0.0);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | **{}** | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s(r, "label"),
            s(r, "ca_key_type"),
            s(r, "csr_key_type"),
            r["concurrency"].as_u64().unwrap_or(0),
            s(r, "connection"),
            if is_health { "/health" } else { "enrol" },
            thousands(rate),
            r["latency"]["p50_ms"].as_f64().unwrap_or(0.0),
            r["latency"]["p99_ms"].as_f64().unwrap_or(0.0),
            r["latency"]["max_ms"].as_f64().unwrap_or(0.0),
            r["errors"].as_u64().unwrap_or(0),
            opt(f(r, "resumed_share"), |v| format!("{:.0} %", v * 100.0)),
            opt(health, |h| format!("{:.0} %", rate / h * 100.0)),
            opt(api, thousands),
            opt(api.filter(|a| *a > 0.0), |a| format!(
                "{:.1} %",
                rate / a * 100.0
            )),
            opt(f(r, "server_cpu_s"), |c| format!("{:.2}", c / duration)),
            opt(f(r, "enrolments_per_server_cpu_s"), thousands),
            opt(f(r, "rss_peak_kib"), |k| format!("{:.1}", k / 1024.0)),
            if s(r, "label").starts_with("postgres") {
                "(in PostgreSQL)".to_string()
            } else {
                opt(f(r, "storage_bytes_per_enrolment"), |b| {
                    format!("{:.1}", b / 1024.0)
                })
            },
        );
    }
    for r in rows.iter().filter(|r| !r["first_error"].is_null()) {
        let _ = writeln!(
            out,
            "\n* {} c={} {}: errors by status {}; first: `{}`",
            s(r, "label"),
            r["concurrency"].as_u64().unwrap_or(0),
            s(r, "connection"),
            r["error_statuses"],
            s(r, "first_error").replace('`', "'"),
        );
    }
    let _ = writeln!(out);
}

/// The connector's rows: per database and concurrency, rounds of API issuance (the yardstick, `loadbench`)
/// then full pairings, measured back to back on one server, then renewals; a round's pairing cost in API
/// issuances is its two rates' ratio, and the verdict figure is the median round's (the issue's target: at
/// most 3).
fn connector(out: &mut String, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Connector pairings and renewals (`connectorbench`)\n\n\
         A **pairing** is Kyma's whole flow for an application: `POST …/tokens` (operator token), `GET \
         …/signingRequests/info?token=` and `POST …/certificates?token=` with an EC P-256 CSR, three HTTPS \
         calls on one kept-alive connection per worker; it counts when all three answered inside the window. \
         A **renewal** is `POST …/certificates/renewals` over mTLS with the certificate of one pairing. **API \
         issuance** is `loadbench` (P-256 CA and CSR) on the same server just before each pairing window, the \
         yardstick of the issue's target: a pairing costs no more than 3 API issuances (a round's cost = its \
         API certs/s ÷ its pairings/s). Rates and costs are the median of the rounds; every round's cost is \
         listed.\n"
    );
    let _ = writeln!(
        out,
        "| DB | c | pairings/s | p50 ms | p99 ms | renewals/s | renewal p50 ms | API certs/s | cost per round | pairing cost (API issuances) | errors |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    );
    let mut groups: Vec<(&str, &Value)> = Vec::new();
    for r in rows {
        let key = (s(r, "label"), &r["concurrency"]);
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    for (label, c) in groups {
        // This server's rows at this concurrency, in the order scripts/bench wrote them.
        let group: Vec<&Value> = rows
            .iter()
            .filter(|r| s(r, "label") == label && &r["concurrency"] == c)
            .collect();
        let connector = |mode: &str| -> Vec<&Value> {
            group
                .iter()
                .copied()
                .filter(|r| s(r, "target") == "shedu-connector" && s(r, "mode") == mode)
                .collect()
        };
        let pairings = connector("pairing");
        if pairings.is_empty() {
            continue;
        }
        let renewal = connector("renewal").first().copied();
        // A round is a pairing window and the API window just before it (scripts/bench alternates them): a
        // round whose API window failed has no cost, rather than borrowing the next round's.
        let mut api = None;
        let mut rounds: Vec<(f64, &Value)> = Vec::new();
        for r in &group {
            match (s(r, "target"), s(r, "mode")) {
                ("shedu", _) => api = f(r, "certs_per_s"),
                ("shedu-connector", "pairing") => rounds.extend(api.take().map(|a| (a, *r))),
                _ => {}
            }
        }
        let costs: Vec<f64> = rounds
            .iter()
            .filter_map(|(api, p)| f(p, "per_s").filter(|r| *r > 0.0).map(|r| api / r))
            .collect();
        let sorted = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v
        };
        let rates = sorted(pairings.iter().filter_map(|p| f(p, "per_s")).collect());
        // The pairing window of the median rate gives the latencies.
        let middle =
            median(&rates).and_then(|m| pairings.iter().find(|p| f(p, "per_s") == Some(m)));
        let latency = |q: &str| {
            opt(middle.and_then(|p| p["latency"][q].as_f64()), |v| {
                format!("{v:.2}")
            })
        };
        let errors: u64 = pairings
            .iter()
            .chain(renewal.as_ref())
            .filter_map(|r| r["errors"].as_u64())
            .sum();
        let listed = costs
            .iter()
            .map(|c| format!("{c:.1}"))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            out,
            "| {label} | {} | **{}** | {} | {} | {} | {} | {} | {} | **{}** | {errors} |",
            c.as_u64().unwrap_or(0),
            opt(median(&rates), thousands),
            latency("p50_ms"),
            latency("p99_ms"),
            opt(renewal.and_then(|r| f(r, "per_s")), thousands),
            opt(
                renewal.and_then(|r| r["latency"]["p50_ms"].as_f64()),
                |v| format!("{v:.2}")
            ),
            opt(
                median(&sorted(rounds.iter().map(|(a, _)| *a).collect())),
                thousands
            ),
            listed,
            opt(median(&sorted(costs)), |m| format!("{m:.1}")),
        );
    }
    for r in rows.iter().filter(|r| !r["first_error"].is_null()) {
        let _ = writeln!(
            out,
            "\n* {} {} c={}: errors by status {}; first: `{}`",
            s(r, "label"),
            s(r, "mode"),
            r["concurrency"].as_u64().unwrap_or(0),
            r["error_statuses"],
            s(r, "first_error").replace('`', "'"),
        );
    }
    let _ = writeln!(out);
}

fn signing(out: &mut String, sign: &[Value]) {
    if sign.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Raw signing and in-process issuance (`signrate`)\n\n\
         `sign/s`: the CA key signing a 500-byte message through `shedu_keys::Signer`. `issue/s`: parse and \
         verify a P-256 CSR, build and sign the leaf (`shedu_pki::issue_leaf`), read it back \
         (`CertInfo::from_der`). No HTTP, no database.\n"
    );
    let _ = writeln!(out, "| CA key | threads | sign/s | issue/s |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for r in sign {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            s(r, "ca_key_type"),
            r["threads"].as_u64().unwrap_or(0),
            opt(f(r, "sign_per_s"), thousands),
            opt(f(r, "issue_per_s"), thousands),
        );
    }
    let _ = writeln!(out);
}

fn engines(out: &mut String, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Signing per key engine: software against PKCS#11 (SoftHSM2)\n\n\
         `signrate` with the CA key in software (aws-lc-rs) and generated in the token through \
         `shedu_keys::Pkcs11Engine` (as a CA created with `\"engine\": \"pkcs11\"`), on the same thread counts. \
         `issue/s` is the in-process issuance with that key.\n"
    );
    let _ = writeln!(
        out,
        "| CA key | threads | software sign/s | PKCS#11 sign/s | PKCS#11 ÷ software | software issue/s | PKCS#11 issue/s |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let mut keys: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                s(r, "ca_key_type").to_string(),
                r["threads"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    keys.dedup();
    let mut seen = Vec::new();
    for (kt, threads) in keys {
        if seen.contains(&(kt.clone(), threads)) {
            continue;
        }
        seen.push((kt.clone(), threads));
        let pick = |eng: &str, field: &str| {
            rows.iter()
                .find(|r| {
                    s(r, "ca_key_type") == kt
                        && r["threads"].as_u64() == Some(threads)
                        && engine(r) == eng
                })
                .and_then(|r| f(r, field))
        };
        let (sw, hw) = (pick("software", "sign_per_s"), pick("pkcs11", "sign_per_s"));
        let _ = writeln!(
            out,
            "| {kt} | {threads} | {} | {} | {} | {} | {} |",
            opt(sw, thousands),
            opt(hw, thousands),
            match (sw, hw) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.1} %", b / a * 100.0),
                _ => "-".into(),
            },
            opt(pick("software", "issue_per_s"), thousands),
            opt(pick("pkcs11", "issue_per_s"), thousands),
        );
    }
    let _ = writeln!(out);
}

fn ocsp(out: &mut String, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## OCSP responder\n\n\
         The same DER request sent back to back by N clients, each on its own connection, on loopback. \
         `no nonce` is the RFC 5019 case: shedu answers it from its cache of signed responses, openssl signs \
         every time. `nonce` makes shedu sign each answer too. `÷ openssl` compares the same client (ocspbench), \
         method, request and concurrency against `openssl ocsp` as one process, and against `-multi` where it \
         ran. `wrk` rows are shedu only (openssl's responder hangs on the connections wrk opens and leaves \
         empty). `connections opened` counts those opened inside the measured window: 0 means every answer \
         came on a kept-alive connection, one per answer means the server closed each.\n"
    );
    let _ = writeln!(
        out,
        "| server | client | method | request | c | responses/s | p50 ms | p99 ms | errors | connections opened | server CPU (cores) | ÷ openssl |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in rows {
        let rate = f(r, "req_per_s").unwrap_or(0.0);
        let duration = f(r, "duration_s").unwrap_or(1.0);
        let ratio = if s(r, "server") == "shedu" && s(r, "tool") == "ocspbench" {
            let peers: Vec<String> = rows
                .iter()
                .filter(|p| {
                    s(p, "server").starts_with("openssl")
                        && s(p, "tool") == "ocspbench"
                        && s(p, "method") == s(r, "method")
                        && s(p, "label") == s(r, "label")
                        && p["concurrency"] == r["concurrency"]
                })
                .filter_map(|p| {
                    let peer = f(p, "req_per_s").filter(|v| *v > 0.0)?;
                    Some(format!("{:.1}× ({})", rate / peer, s(p, "server")))
                })
                .collect();
            if peers.is_empty() {
                "-".to_string()
            } else {
                peers.join(", ")
            }
        } else {
            "-".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | **{}** | {:.3} | {:.3} | {} | {} | {} | {} |",
            s(r, "server"),
            s(r, "tool"),
            s(r, "method"),
            s(r, "label"),
            r["concurrency"].as_u64().unwrap_or(0),
            thousands(rate),
            r["latency"]["p50_ms"].as_f64().unwrap_or(0.0),
            r["latency"]["p99_ms"].as_f64().unwrap_or(0.0),
            r["errors"].as_u64().unwrap_or(0),
            r["connections"]
                .as_u64()
                .map_or("-".into(), |c| thousands(c as f64)),
            opt(f(r, "server_cpu_s"), |c| format!("{:.2}", c / duration)),
            ratio,
        );
    }
    let _ = writeln!(out);
}

fn crls(out: &mut String, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## CRL of many revoked certificates (`crlbench`)\n\n\
         `Va::crl(ca, 0, Full)` in process: the first build (read the revoked rows, encode, sign, store), \
         the same call with nothing changed, and the rebuild after one more revocation. The query columns time \
         the build's two queries on their own.\n"
    );
    let _ = writeln!(
        out,
        "| DB | revoked | CA key | first build | unchanged fetch | rebuild after 1 revocation | CRL size | revoked-rows query | change-check query | openssl crl |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let ms = |key: &str| opt(f(r, key), |v| format!("{v:.1} ms"));
        let check = match (
            r["openssl_entries"].as_u64(),
            r["openssl_verified"].as_bool(),
        ) {
            (Some(n), Some(ok)) => format!(
                "{} entries, {}",
                thousands(n as f64),
                if ok { "verify OK" } else { "**not verified**" }
            ),
            _ => "not run".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | **{}** | {} | **{}** | {} | {} | {} | {} |",
            s(r, "backend"),
            thousands(f(r, "revoked").unwrap_or(0.0)),
            s(r, "ca_key_type"),
            ms("first_build_ms"),
            ms("cached_ms"),
            ms("rebuild_ms"),
            opt(f(r, "rebuilt_crl_bytes"), |b| format!(
                "{:.1} MiB",
                b / 1_048_576.0
            )),
            ms("revoked_query_ms"),
            ms("marker_query_ms"),
            check,
        );
    }
    if let Some(head) = rows
        .iter()
        .find_map(|r| r["openssl_head"].as_array().filter(|a| !a.is_empty()))
    {
        let _ = writeln!(out, "\n`openssl crl -inform DER -noout -text | head`:\n");
        let _ = writeln!(out, "```");
        for line in head {
            let _ = writeln!(out, "{}", line.as_str().unwrap_or(""));
        }
        let _ = writeln!(out, "```");
    }
    let _ = writeln!(out);
}

fn sweeps(out: &mut String, sweep: &[Value]) {
    if sweep.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Lifecycle sweep (`sweepbench`)\n\n\
         `nothing due, no stats`: a sweep with nothing to move, before any ANALYZE, which is how a running \
         `shedu serve` plans it. Then ANALYZE, and: the first sweep (moves the ~1 % past notAfter to `expired` \
         and the ~1 % inside the 30-day window to `about_to_expire`, one event each, one transaction), then a \
         second and a third with nothing due.\n"
    );
    let _ = writeln!(
        out,
        "| DB | certificates | insert rows/s | nothing due, no stats | ANALYZE | first sweep | moved | second sweep | third sweep | DB size |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in sweep {
        let moved = r["first_expired"].as_u64().unwrap_or(0)
            + r["first_about_to_expire"].as_u64().unwrap_or(0);
        let ms = |key: &str| opt(f(r, key), |v| format!("{v:.1} ms"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s(r, "backend"),
            thousands(f(r, "count").unwrap_or(0.0)),
            opt(f(r, "insert_rows_per_s"), thousands),
            ms("noop_sweep_without_stats_ms"),
            ms("analyze_ms"),
            ms("first_sweep_ms"),
            thousands(moved as f64),
            ms("second_sweep_ms"),
            ms("third_sweep_ms"),
            opt(f(r, "db_bytes"), |b| format!("{:.0} MiB", b / 1_048_576.0)),
        );
    }
    let _ = writeln!(
        out,
        "\nQuery plans of the sweep's certificate statements, without statistics and after ANALYZE:\n"
    );
    for r in sweep {
        for (key, when) in [
            ("plan_without_stats", "no statistics"),
            ("plan", "after ANALYZE"),
        ] {
            let _ = writeln!(
                out,
                "* {} ({}), {when}:",
                s(r, "backend"),
                thousands(f(r, "count").unwrap_or(0.0))
            );
            let _ = writeln!(out, "  ```");
            for line in r[key].as_array().into_iter().flatten() {
                let _ = writeln!(out, "  {}", line.as_str().unwrap_or(""));
            }
            let _ = writeln!(out, "  ```");
        }
    }
    let _ = writeln!(out);
}

/// The console step: each page's API calls (as the page sends them together) over the synthetic fleet,
/// against issue 20's 200 ms per page.
fn console(out: &mut String, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Console pages (`consolebench`)\n\n\
         Each page's API calls made together through the services the handlers call, as the page sends them, \
         over the synthetic fleet (one certificate per device), after ANALYZE; the page's time is its slowest \
         call. Not included: TLS, JSON encoding of at most 100 rows, rendering. Target: p99 < 200 ms.\n"
    );
    let _ = writeln!(
        out,
        "| DB | certificates | fill | page | calls | p50 ms | p99 ms | loads | < 200 ms |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---|---:|---:|---:|---|");
    for r in rows {
        for p in r["pages"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s(r, "backend"),
                thousands(f(r, "certificates").unwrap_or(0.0)),
                opt(f(r, "fill_s"), |v| format!("{v:.0} s")),
                s(p, "page"),
                s(p, "calls"),
                opt(f(p, "p50_ms"), |v| format!("{v:.2}")),
                opt(f(p, "p99_ms"), |v| format!("{v:.2}")),
                opt(f(p, "samples"), thousands),
                if p["under_target"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "**no**"
                },
            );
        }
    }
    let _ = writeln!(
        out,
        "\nThe plan of the subject search (a prefix of the CN):\n"
    );
    for r in rows {
        let plan: Vec<&str> = r["subject_search_plan"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::trim)
            .collect();
        let _ = writeln!(
            out,
            "- {}: {} (`{}`)",
            s(r, "backend"),
            if r["subject_search_indexed"].as_bool() == Some(true) {
                "reads the common-name index"
            } else {
                "**does not read the common-name index**"
            },
            plan.join(" / ")
        );
    }
    let _ = writeln!(out);
}

fn devices(out: &mut String, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Device registry (`devicebench`)\n\n\
         A synthetic fleet (10 RAs, three tags and a small metadata object per device, one slot each), after \
         ANALYZE. Each read goes through the service call the API makes (pages of 100), p50 / p99 in ms. Then \
         the lifecycle sweep when 0.2 % of the devices are due, and two days later when a 2 % enrolment wave \
         enters the warning window, each followed by a sweep with nothing due.\n"
    );
    let _ = writeln!(
        out,
        "| DB | devices | fill | query | p50 ms | p99 ms | samples |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|");
    for r in rows {
        for q in r["queries"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                s(r, "backend"),
                thousands(f(r, "devices").unwrap_or(0.0)),
                opt(f(r, "fill_s"), |v| format!("{v:.0} s")),
                s(q, "name"),
                opt(f(q, "p50_ms"), |v| format!("{v:.2}")),
                opt(f(q, "p99_ms"), |v| format!("{v:.2}")),
                opt(f(q, "count"), thousands),
            );
        }
    }
    let _ = writeln!(out, "\n| DB | sweep | at | time | devices changed |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    for r in rows {
        for sw in r["sweeps"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "| {} | {} | +{} d | {} | {} |",
                s(r, "backend"),
                s(sw, "label"),
                f(sw, "at_offset_s").unwrap_or(0.0) / 86_400.0,
                opt(f(sw, "ms"), |v| format!("{v:.1} ms")),
                opt(f(sw, "devices_changed"), thousands),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nFull scans and hash joins in the plans of the sweep's device statements:\n"
    );
    for r in rows {
        for (key, when) in [("scans_due_now", "0.2 % due"), ("scans_burst", "2 % due")] {
            let lines: Vec<&str> = r[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let found = if lines.is_empty() {
                "none".to_string()
            } else {
                lines.join("; ")
            };
            let _ = writeln!(out, "* {}, {when}: {found}", s(r, "backend"));
        }
    }
    let _ = writeln!(out);
}

fn startup_table(out: &mut String, startup: &[Value]) {
    if startup.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Start-up and memory\n\n\
         Start-up: from exec of `shedu serve` on an existing data folder until `GET /health` on the plain \
         listener answers (polled with curl, so a few ms of curl start-up are included), and the \"started in \
         N ms\" the banner prints. Idle RSS: VmRSS 1 s after start, before any request.\n"
    );
    let _ = writeln!(
        out,
        "| DB | data folder | runs | start-up median (max) | banner median (max) | idle RSS | RSS after the load runs |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for r in startup {
        let runs = nums(&r["health_ms"]);
        let banner = nums(&r["banner_ms"]);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            s(r, "label"),
            s(r, "data"),
            runs.len(),
            median_max(&runs),
            median_max(&banner),
            opt(f(r, "idle_rss_kib"), |k| format!("{:.1} MiB", k / 1024.0)),
            opt(f(r, "after_load_rss_kib"), |k| format!(
                "{:.1} MiB",
                k / 1024.0
            )),
        );
    }
    let _ = writeln!(out);
}

fn nums(v: &Value) -> Vec<f64> {
    let mut n: Vec<f64> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    n.sort_by(f64::total_cmp);
    n
}

fn median(sorted: &[f64]) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[sorted.len() / 2])
}

fn median_max(sorted: &[f64]) -> String {
    match (median(sorted), sorted.last()) {
        (Some(m), Some(x)) => format!("{m:.0} ms ({x:.0} ms)"),
        _ => "-".into(),
    }
}

fn targets(out: &mut String, load: &[Value], startup: &[Value], ocsp_rows: &[Value]) {
    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "| target | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    let best_sqlite_c32 = load
        .iter()
        .filter(|r| {
            s(r, "target") == "shedu"
                && s(r, "label") == "sqlite"
                && r["concurrency"].as_u64() == Some(32)
        })
        .filter_map(|r| f(r, "certs_per_s").map(|v| (v, s(r, "ca_key_type").to_string())))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best_sqlite_c32 {
        Some((v, kt)) => {
            let _ = writeln!(
                out,
                "| ≥ 10,000 durable certificates/s on SQLite at concurrency 32 | {} ({kt} CA) | {} |",
                thousands(v),
                verdict(v >= TARGET_SQLITE_C32, v / TARGET_SQLITE_C32, true)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| ≥ 10,000 durable certificates/s on SQLite at concurrency 32 | not run | - |"
            );
        }
    }
    let best_ocsp = ocsp_rows
        .iter()
        .filter(|r| s(r, "server") == "shedu" && r["concurrency"].as_u64() == Some(32))
        .filter_map(|r| {
            f(r, "req_per_s").map(|v| {
                (
                    v,
                    format!("{} {}, {}", s(r, "tool"), s(r, "method"), s(r, "label")),
                )
            })
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best_ocsp {
        Some((v, what)) => {
            let _ = writeln!(
                out,
                "| OCSP: tens of thousands of responses/s (≥ 10,000/s at c=32) | {} ({what}) | {} |",
                thousands(v),
                verdict(v >= TARGET_OCSP, v / TARGET_OCSP, true)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| OCSP: tens of thousands of responses/s | not run | - |"
            );
        }
    }
    let idle = startup
        .iter()
        .filter_map(|r| f(r, "idle_rss_kib"))
        .map(|k| k * 1024.0 / 1_000_000.0)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    match idle {
        Some(mb) => {
            let _ = writeln!(
                out,
                "| idle RSS < 40 MB | {mb:.1} MB | {} |",
                verdict(mb < TARGET_IDLE_RSS_MB, mb / TARGET_IDLE_RSS_MB, false)
            );
        }
        None => {
            let _ = writeln!(out, "| idle RSS < 40 MB | not run | - |");
        }
    }
    let start = startup
        .iter()
        .filter_map(|r| median(&nums(&r["health_ms"])))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    match start {
        Some(ms) => {
            let _ = writeln!(
                out,
                "| start-up < 200 ms (median, slowest backend) | {ms:.0} ms | {} |",
                verdict(ms < TARGET_STARTUP_MS, ms / TARGET_STARTUP_MS, false)
            );
        }
        None => {
            let _ = writeln!(out, "| start-up < 200 ms | not run | - |");
        }
    }
    let _ = writeln!(out);
}

/// The secretsbench row of `target` for `operation` at concurrency `c`.
fn secrets_row<'a>(
    rows: &'a [Value],
    target: &str,
    operation: &str,
    c: &Value,
) -> Option<&'a Value> {
    rows.iter().find(|r| {
        s(r, "target") == target && s(r, "operation") == operation && &r["concurrency"] == c
    })
}

/// A table of shedu against a peer measured by the same tool in the same run (`secretsbench`, `kmipbench`):
/// per operation and concurrency, each side's rate, latency and CPU per operation, the ratio
/// (`decimals` places), and the errors; then each row's first error. `peer` is the peer's `target` in the
/// rows, its name in the rate column and in the ratio column.
fn head_to_head(out: &mut String, rows: &[Value], peer: (&str, &str, &str), decimals: usize) {
    let (peer_target, peer_column, peer_ratio) = peer;
    let _ = writeln!(
        out,
        "| operation | c | shedu ops/s | p50 ms | p99 ms | CPU ms/op | {peer_column} ops/s | p50 ms | p99 ms | CPU ms/op | shedu ÷ {peer_ratio} | errors |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    // One line per shedu row (per database when its rows carry several labels), else per peer row.
    let mut labels: Vec<&str> = rows
        .iter()
        .filter(|r| s(r, "target") == "shedu")
        .map(|r| s(r, "label"))
        .collect();
    labels.dedup();
    let mut seen = Vec::new();
    for r in rows {
        let (op, c) = (s(r, "operation").to_string(), r["concurrency"].clone());
        let shedu = if s(r, "target") == "shedu" {
            Some(r)
        } else {
            secrets_row(rows, "shedu", &op, &c)
        };
        let key = (op, c, shedu.map(|r| s(r, "label")));
        if seen.contains(&key) {
            continue;
        }
        seen.push(key.clone());
        let (op, c) = (&key.0, &key.1);
        let other = secrets_row(rows, peer_target, op, c);
        let op = match shedu {
            Some(r) if labels.len() > 1 => format!("{op} ({})", s(r, "label")),
            _ => op.clone(),
        };
        let rate = |r: Option<&Value>| r.and_then(|r| f(r, "per_s"));
        let ms = |r: Option<&Value>, k: &str| {
            opt(r.and_then(|r| r["latency"][k].as_f64()), |v| {
                format!("{v:.2}")
            })
        };
        let cpu = |r: Option<&Value>| {
            opt(r.and_then(|r| f(r, "server_cpu_ms_per_op")), |v| {
                format!("{v:.3}")
            })
        };
        let errors: u64 = [shedu, other]
            .iter()
            .flatten()
            .map(|r| r["errors"].as_u64().unwrap_or(0))
            .sum();
        let ratio = match (rate(shedu), rate(other)) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let _ = writeln!(
            out,
            "| {op} | {} | **{}** | {} | {} | {} | {} | {} | {} | {} | **{}** | {errors} |",
            c.as_u64().unwrap_or(0),
            opt(rate(shedu), thousands),
            ms(shedu, "p50_ms"),
            ms(shedu, "p99_ms"),
            cpu(shedu),
            opt(rate(other), thousands),
            ms(other, "p50_ms"),
            ms(other, "p99_ms"),
            cpu(other),
            opt(ratio, |v| format!("{v:.decimals$}×")),
        );
    }
    for r in rows.iter().filter(|r| !r["first_error"].is_null()) {
        let _ = writeln!(
            out,
            "\n* {} {} c={}: errors by status {}; first: `{}`",
            s(r, "target"),
            s(r, "operation"),
            r["concurrency"].as_u64().unwrap_or(0),
            r["error_statuses"],
            s(r, "first_error")
        );
    }
    let _ = writeln!(out);
}

fn secrets(out: &mut String, rows: &[Value], bao_version: Option<&str>) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Secret store: KV v2 against OpenBao's dev server (`secretsbench`)\n\n\
         shedu on SQLite (every write committed durably, values sealed with AES-256-GCM) against `bao server \
         -dev` ({}, in memory, plain HTTP), measured in the same run by the same client: one kept-alive \
         HTTP/1.1 connection per worker, a secret-store token of the server's own (`auth/token/create`, \
         policy root) in `X-Vault-Token`. A **read** is `GET /v1/secret/data/bench/r<k>` over 100 \
         secrets; a **write** is a new version of one of 100 paths per worker. Server CPU is per \
         operation over the measured window.\n",
        bao_version
            .and_then(|v| v.split_whitespace().take(2).last())
            .unwrap_or("version unknown")
    );
    head_to_head(out, rows, ("openbao-dev", "OpenBao dev", "OpenBao"), 2);
}

/// The secret store's goal, at each concurrency measured (printed under the targets table).
fn secrets_target(out: &mut String, rows: &[Value]) {
    let reads: Vec<&Value> = rows
        .iter()
        .filter(|r| s(r, "target") == "shedu" && s(r, "operation") == "read")
        .collect();
    if reads.is_empty() {
        return;
    }
    let _ = writeln!(out, "| secret store target | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    for shedu in reads {
        let c = &shedu["concurrency"];
        let line = format!(
            "shedu on SQLite ≥ 2× `bao server -dev` on KV reads, c={}",
            c.as_u64().unwrap_or(0)
        );
        match (
            f(shedu, "per_s"),
            secrets_row(rows, "openbao-dev", "read", c).and_then(|r| f(r, "per_s")),
        ) {
            (Some(a), Some(b)) if b > 0.0 => {
                let ratio = a / b;
                let _ = writeln!(
                    out,
                    "| {line} | {ratio:.2}× | {} |",
                    verdict(
                        ratio >= TARGET_SECRETS_READ_RATIO,
                        ratio / TARGET_SECRETS_READ_RATIO,
                        true
                    )
                );
            }
            _ => {
                let _ = writeln!(out, "| {line} | no OpenBao row | - |");
            }
        }
    }
    let _ = writeln!(out);
}

fn kmip(out: &mut String, rows: &[Value], pykmip_version: Option<&str>) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## KMIP: Create and Get against PyKMIP's server (`kmipbench`)\n\n\
         shedu's KMIP listener (on each database measured, key material sealed) against PyKMIP {}'s own `pykmip-server` (its \
         SQLite database, TLS 1.2), measured in the same run by the same client: binary TTLV (KMIP 1.2) over \
         TLS with a client certificate, one connection per worker, one operation per message. A **create** \
         makes an AES-256 key; a **get** reads one of 100 such keys. Server CPU is per operation over the \
         measured window.\n",
        pykmip_version.map_or("(version unknown)", str::trim)
    );
    head_to_head(out, rows, ("pykmip", "PyKMIP", "PyKMIP"), 1);
}

fn kmip_target(out: &mut String, rows: &[Value]) {
    let ours: Vec<&Value> = rows.iter().filter(|r| s(r, "target") == "shedu").collect();
    if ours.is_empty() {
        return;
    }
    let _ = writeln!(out, "| KMIP target | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    for shedu in ours {
        let (op, c) = (s(shedu, "operation"), &shedu["concurrency"]);
        let line = format!(
            "shedu ({}) ≥ 30× `pykmip-server` on KMIP {op}, c={}",
            s(shedu, "label"),
            c.as_u64().unwrap_or(0)
        );
        match (
            f(shedu, "per_s"),
            secrets_row(rows, "pykmip", op, c).and_then(|r| f(r, "per_s")),
        ) {
            (Some(a), Some(b)) if b > 0.0 => {
                let ratio = a / b;
                let _ = writeln!(
                    out,
                    "| {line} | {ratio:.1}× | {} |",
                    verdict(ratio >= TARGET_KMIP_RATIO, ratio / TARGET_KMIP_RATIO, true)
                );
            }
            _ => {
                let _ = writeln!(out, "| {line} | no PyKMIP row | - |");
            }
        }
    }
    let _ = writeln!(out);
}

fn failures(out: &mut String, path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let _ = writeln!(out, "## Steps that failed\n");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(out, "* {line}");
    }
    let _ = writeln!(out);
}

/// "met" or "missed by N %", where `ratio` is measured ÷ target.
fn verdict(met: bool, ratio: f64, higher_is_better: bool) -> String {
    if met {
        if higher_is_better {
            format!("met ({ratio:.2}× the target)")
        } else {
            format!("met ({:.0} % of the limit)", ratio * 100.0)
        }
    } else if higher_is_better {
        format!("**missed**: {:.0} % of the target", ratio * 100.0)
    } else {
        format!("**missed** by {:.0} %", (ratio - 1.0) * 100.0)
    }
}
