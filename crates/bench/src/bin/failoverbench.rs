//! `failoverbench`: how long each singleton job of a cluster is without a runner after the replica that ran
//! it is killed with SIGKILL (issue 19). It drives a cluster made by `scripts/cluster up N` (its folder holds
//! each replica's pid file, log, admin token and TLS CA) through the API, and judges from the outside:
//!
//! - `sink`: the replica whose `/metrics` says it dispatches the NATS sink is killed, a certificate is issued
//!   on a survivor at once, and the time runs until a survivor dispatches the sink with no lag (the event of
//!   that certificate is acknowledged by JetStream);
//! - `sweep` / `reminders`: the replica that logged the last lifecycle sweep (expiry reminders) is killed,
//!   the CA's expiry window is widened so that certificates are due, and the time runs until every one of
//!   them has moved to `about_to_expire` (has its reminder event);
//! - `crl`: the replica that logged the last CRL signature is killed, a certificate is revoked on a survivor,
//!   and the time runs until a survivor serves a CRL that lists it (`openssl crl` reads it).
//!
//! Besides the time from the kill, each round gives the time from the moment the work was due (sweep and
//! reminders: the window was widened; CRL: the revocation returned). A profile change and a revocation
//! return only once the killed replica's cache lease ran out (up to 3.5 s), which the time from the kill
//! includes.
//!
//! Each round kills one more replica (at most N − 1 rounds). One JSON line per round with `--json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "failoverbench")]
struct Args {
    /// `scripts/cluster`'s folder (SHEDU_CLUSTER_DIR).
    #[arg(long)]
    cluster_dir: PathBuf,
    /// Replicas in the cluster (`r1` … `rN`).
    #[arg(long, default_value_t = 3)]
    replicas: u16,
    /// SHEDU_CLUSTER_HTTPS_PORT: replica i serves HTTPS on this + i.
    #[arg(long, default_value_t = 9443)]
    https_base: u16,
    /// SHEDU_CLUSTER_HTTP_PORT: replica i serves plain HTTP on this + i.
    #[arg(long, default_value_t = 9080)]
    http_base: u16,
    /// The job whose runner is killed.
    #[arg(long, value_enum)]
    job: Job,
    /// Rounds (kills), at most replicas − 1.
    #[arg(long, default_value_t = 2)]
    rounds: u16,
    /// How long a round may take before it counts as failed.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// One JSON object per round instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Job {
    Sink,
    Sweep,
    Reminders,
    Crl,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Sink => "event sink (NATS)",
            Job::Sweep => "lifecycle sweep",
            Job::Reminders => "expiry reminders",
            Job::Crl => "CRL signing",
        }
    }

    /// The log line the runner writes (not for the sink, whose runner `/metrics` names).
    fn log_line(self) -> &'static str {
        match self {
            Job::Sink => "",
            Job::Sweep => "lifecycle sweep moved certificates",
            Job::Reminders => "expiry reminders emitted",
            Job::Crl => "CRL signed",
        }
    }
}

struct Replica {
    name: String,
    https: u16,
    http: u16,
    pid: String,
    log: PathBuf,
}

impl Replica {
    fn runs(&self, text: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }

    fn kill(&self) -> anyhow::Result<()> {
        let ok = std::process::Command::new("kill")
            .args(["-9", &self.pid])
            .status()?
            .success();
        if !ok {
            bail!("kill -9 {} ({}) failed", self.pid, self.name);
        }
        Ok(())
    }
}

struct Api {
    client: reqwest::Client,
    plain: reqwest::Client,
    token: String,
}

impl Api {
    async fn call(
        &self,
        r: &Replica,
        method: reqwest::Method,
        path: String,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method, format!("https://127.0.0.1:{}{path}", r.https))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path} on {}: {status} {v}", r.name);
        }
        Ok(v)
    }

    async fn post(&self, r: &Replica, path: String, body: Value) -> anyhow::Result<Value> {
        self.call(r, reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, r: &Replica, path: String) -> anyhow::Result<Value> {
        self.call(r, reqwest::Method::GET, path, None).await
    }

    async fn metrics(&self, r: &Replica) -> Option<String> {
        let res = self
            .plain
            .get(format!("http://127.0.0.1:{}/metrics", r.http))
            .send()
            .await
            .ok()?;
        res.text().await.ok()
    }
}

/// The value of the first sample of `name` whose labels start with `labels`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let head = format!("{name}{{{labels}");
    text.lines()
        .find(|l| l.starts_with(&head))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = &args.cluster_dir;
    let mut live: Vec<Replica> = (1..=args.replicas)
        .map(|i| {
            Ok(Replica {
                name: format!("r{i}"),
                https: args.https_base + i,
                http: args.http_base + i,
                pid: std::fs::read_to_string(dir.join(format!("r{i}.pid")))
                    .with_context(|| format!("r{i}.pid in {}", dir.display()))?
                    .trim()
                    .to_string(),
                log: dir.join(format!("r{i}.log")),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let ca_pem = std::fs::read(dir.join("r1/tls/ca.pem"))?;
    let api = Api {
        client: reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem)?)
            .timeout(Duration::from_secs(10))
            .build()?,
        plain: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?,
        token: std::fs::read_to_string(dir.join("r1/admin-token"))?
            .trim()
            .to_string(),
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    let job = args.job;

    // A CA whose certificates last 10 days with a 5-day warning window: active when issued, due for the
    // sweep and the 30-day reminder once the window is widened to 30 days.
    let ca = api
        .post(
            &live[0],
            "/api/v1/cas".to_string(),
            json!({"name": format!("failover-{}", shedu_bench::unix_now()), "key_type": "ec-p256",
                "subject": {"common_name": "Failover bench"},
                "profile": {"expiry_warning_days": 5, "default_validity_days": 10}}),
        )
        .await?;
    let ca_id = ca["id"].as_str().context("CA id")?.to_string();
    let csr = shedu_bench::make_csr("ec-p256", "failover")?;
    // Serials of the certificates issued for a round (sweep, reminders).
    const BATCH: usize = 20;

    for round in 1..=args.rounds.min(args.replicas - 1) {
        // Make sure the job has run once on this round's set of replicas, and find its runner.
        let runner = match job {
            Job::Sink => {
                issue(&api, &live[0], &ca_id, &csr).await?;
                wait_for(timeout, "a replica to dispatch the NATS sink", || async {
                    for (i, r) in live.iter().enumerate() {
                        let m = api.metrics(r).await.unwrap_or_default();
                        if sample(&m, "shedu_event_sink_leader", "sink=\"nats:") == Some(1.0) {
                            return Some(i);
                        }
                    }
                    None
                })
                .await?
            }
            Job::Sweep | Job::Reminders => {
                let before: Vec<usize> = live.iter().map(|r| r.runs(job.log_line())).collect();
                window(&api, &live[0], &ca_id, 5).await?;
                for _ in 0..BATCH {
                    issue(&api, &live[0], &ca_id, &csr).await?;
                }
                window(&api, &live[0], &ca_id, 30).await?;
                wait_for(timeout, "a replica to run the job", || async {
                    live.iter()
                        .enumerate()
                        .find(|(i, r)| r.runs(job.log_line()) > before[*i])
                        .map(|(i, _)| i)
                })
                .await?
            }
            Job::Crl => {
                let before: Vec<usize> = live.iter().map(|r| r.runs(job.log_line())).collect();
                let cert = issue(&api, &live[0], &ca_id, &csr).await?;
                revoke(&api, &live[0], &ca_id, &cert).await?;
                crl_lists(&api, &live[0], &ca_id, &cert, timeout).await?;
                wait_for(timeout, "a replica to sign a CRL", || async {
                    live.iter()
                        .enumerate()
                        .find(|(i, r)| r.runs(job.log_line()) > before[*i])
                        .map(|(i, _)| i)
                })
                .await?
            }
        };
        let victim = live.remove(runner);
        let before: Vec<usize> = live.iter().map(|r| r.runs(job.log_line())).collect();
        victim.kill()?;
        let killed_at = Instant::now();
        // What must happen on the survivors, timed from the kill.
        match job {
            Job::Sink => {
                issue(&api, &live[0], &ca_id, &csr).await?;
                wait_for(timeout, "the NATS sink to be dispatched again", || async {
                    for r in &live {
                        let m = api.metrics(r).await.unwrap_or_default();
                        if sample(&m, "shedu_event_sink_leader", "sink=\"nats:") == Some(1.0)
                            && sample(&m, "shedu_event_sink_lag", "sink=\"nats:") == Some(0.0)
                        {
                            return Some(());
                        }
                    }
                    None
                })
                .await?;
            }
            Job::Sweep | Job::Reminders => {
                window(&api, &live[0], &ca_id, 5).await?;
                let mut serials = Vec::new();
                for _ in 0..BATCH {
                    let c = issue(&api, &live[0], &ca_id, &csr).await?;
                    serials.push(c["serial"].as_str().unwrap_or_default().to_string());
                }
                // The time runs from the kill; the new batch becomes due now.
                let due_at = Instant::now();
                window(&api, &live[0], &ca_id, 30).await?;
                wait_for(timeout, "the due certificates to be handled", || async {
                    let done = if job == Job::Sweep {
                        moved(&api, &live[0], &ca_id, &serials).await
                    } else {
                        reminded(&api, &live[0], &serials).await
                    };
                    done.then_some(())
                })
                .await?;
                emit(
                    &args,
                    round,
                    &victim,
                    killed_at.elapsed(),
                    Some(due_at.elapsed()),
                    &live,
                    &before,
                );
                continue;
            }
            Job::Crl => {
                let cert = issue(&api, &live[0], &ca_id, &csr).await?;
                // The revocation returns once the killed replica's cache lease ran out (docs/scale-out.md):
                // the CRL's own fail-over is timed from there.
                revoke(&api, &live[0], &ca_id, &cert).await?;
                let revoked_at = Instant::now();
                crl_lists(&api, &live[0], &ca_id, &cert, timeout).await?;
                emit(
                    &args,
                    round,
                    &victim,
                    killed_at.elapsed(),
                    Some(revoked_at.elapsed()),
                    &live,
                    &before,
                );
                continue;
            }
        }
        emit(
            &args,
            round,
            &victim,
            killed_at.elapsed(),
            None,
            &live,
            &before,
        );
    }
    Ok(())
}

async fn issue(api: &Api, r: &Replica, ca_id: &str, csr: &str) -> anyhow::Result<Value> {
    api.post(
        r,
        format!("/api/v1/cas/{ca_id}/certificates"),
        json!({"csr_pem": csr}),
    )
    .await
}

/// Sets the CA's expiry warning window (days before notAfter at which the sweep moves a certificate).
async fn window(api: &Api, r: &Replica, ca_id: &str, days: u32) -> anyhow::Result<Value> {
    api.call(
        r,
        reqwest::Method::PATCH,
        format!("/api/v1/cas/{ca_id}"),
        Some(json!({"profile": {"expiry_warning_days": days}})),
    )
    .await
}

/// Prints one round: the time from the kill (and, for sweep and reminders, from the moment the work was
/// due) until the survivors had done it, and which survivor ran the job.
fn emit(
    args: &Args,
    round: u16,
    victim: &Replica,
    since_kill: Duration,
    since_due: Option<Duration>,
    live: &[Replica],
    before: &[usize],
) {
    let by: Vec<&str> = live
        .iter()
        .zip(before)
        .filter(|(r, b)| args.job != Job::Sink && r.runs(args.job.log_line()) > **b)
        .map(|(r, _)| r.name.as_str())
        .collect();
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    if args.json {
        println!(
            "{}",
            json!({"tool": "failoverbench", "job": args.job.name(), "round": round,
                "replicas_left": live.len(), "killed": victim.name, "taken_over_by": by,
                "since_kill_ms": ms(since_kill), "since_due_ms": since_due.map(ms)})
        );
    } else {
        println!(
            "{} round {round}: killed {}, done {:.1} ms after the kill{} (by {by:?})",
            args.job.name(),
            victim.name,
            ms(since_kill),
            since_due
                .map(|d| format!(", {:.1} ms after it was due", ms(d)))
                .unwrap_or_default()
        );
    }
}

/// Polls `probe` every 20 ms until it yields, or fails after `timeout`.
async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, probe: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if started.elapsed() > timeout {
            bail!("waited {timeout:?} for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn revoke(api: &Api, r: &Replica, ca_id: &str, cert: &Value) -> anyhow::Result<()> {
    let serial = cert["serial"].as_str().context("serial")?;
    api.post(
        r,
        format!("/api/v1/cas/{ca_id}/certificates/{serial}/revoke"),
        json!({"reason": "key_compromise"}),
    )
    .await?;
    Ok(())
}

/// Waits until `r` serves a CRL for `ca_id` that lists `cert` (judged by `openssl crl`).
async fn crl_lists(
    api: &Api,
    r: &Replica,
    ca_id: &str,
    cert: &Value,
    timeout: Duration,
) -> anyhow::Result<()> {
    let serial = cert["serial"].as_str().context("serial")?.to_uppercase();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("crl.der");
    wait_for(timeout, "a CRL that lists the revoked certificate", || {
        let (path, serial) = (path.clone(), serial.clone());
        async move {
            let der = api
                .plain
                .get(format!("http://127.0.0.1:{}/crl/{ca_id}", r.http))
                .send()
                .await
                .ok()?
                .bytes()
                .await
                .ok()?;
            std::fs::write(&path, &der).ok()?;
            crl_text(&path).ok()?.contains(&serial).then_some(())
        }
    })
    .await
}

fn crl_text(path: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(path)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .replace(':', "")
        .to_uppercase())
}

/// Every certificate of `serials` is `about_to_expire`.
async fn moved(api: &Api, r: &Replica, ca_id: &str, serials: &[String]) -> bool {
    let Ok(page) = api
        .get(
            r,
            format!("/api/v1/certificates?ca_id={ca_id}&status=about_to_expire&limit=1000"),
        )
        .await
    else {
        return false;
    };
    let listed: Vec<&str> = page["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["serial"].as_str()).collect())
        .unwrap_or_default();
    serials.iter().all(|s| listed.contains(&s.as_str()))
}

/// Every certificate of `serials` has its expiry reminder event.
async fn reminded(api: &Api, r: &Replica, serials: &[String]) -> bool {
    let mut found = 0;
    for serial in serials {
        let Ok(page) = api
            .get(
                r,
                format!("/api/v1/events?type=certificate.expiry_reminder&subject={serial}&limit=1"),
            )
            .await
        else {
            return false;
        };
        if page["items"].as_array().is_some_and(|a| !a.is_empty()) {
            found += 1;
        } else {
            return false;
        }
    }
    found == serials.len()
}
