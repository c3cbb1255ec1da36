//! See: issue 12 ("a kill -9 test for events"). The real `shedu serve` publishes its outbox to a broker of
//! the test's own (NATS JetStream, or a RabbitMQ node with a durable queue bound to the exchange), on
//! SQLite and on PostgreSQL, through this story:
//!
//! 1. four clients issue and revoke certificates through the REST API while events flow to the broker;
//! 2. the broker is stopped and the load goes on (the outbox fills; the dispatcher retries);
//! 3. the server is killed with SIGKILL in the middle of that load;
//! 4. the broker (same store) and the server (same data) are started again, the load resumes, and the
//!    broker is restarted once more in the middle of it;
//! 5. the load stops, and the test reads everything the broker holds.
//!
//! On the way, `/ready` follows the broker: with `--ready-bus require` (the first server) it turns 503 within
//! [`READY_BOUND`] of the broker stopping; with `--ready-bus report` (the second) it stays 200 and shows the
//! bus unreachable, then reachable again after the broker's restart.
//!
//! What the design promises (docs/events.md), checked against the outbox as the API lists it: every
//! committed event reaches the broker; keeping the first copy of each event id, the broker holds exactly
//! the outbox, in outbox (`seq`) order, which is commit order (so a certificate's `issued` comes before its
//! `revoked`); and every certificate or revocation a client was told about has its event. Each phase is
//! bounded in time and everything runs on loopback.

// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Banner, wait_for_banner};
use futures::StreamExt;
use serde_json::{Value, json};
use shedu_testkit::Backend;
use shedu_testkit::brokers::{NatsServer, RabbitMq};

const SHEDU: &str = env!("CARGO_BIN_EXE_shedu");
/// Generous: on a loaded two-core machine several debug servers start at once.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// Concurrent API clients.
const CLIENTS: usize = 4;
/// How long each phase of load runs.
const PHASE: Duration = Duration::from_secs(2);
/// How long the broker may take to hold every event once the load has stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// The exchange and queue of the RabbitMQ runs.
const EXCHANGE: &str = "shedu.events";
const QUEUE: &str = "shedu-crash-test";
/// How soon `/ready` must reflect a broker that stopped or came back: a probe interval and a probe timeout
/// (docs/scale-out.md says 3 s), plus slack for a loaded two-core machine running debug builds.
const READY_BOUND: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_down_server_killed_every_event_once_in_order_sqlite() {
    crash_story(Broker::nats(), Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_down_server_killed_every_event_once_in_order_postgres() {
    crash_story(Broker::nats(), Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_down_server_killed_every_event_once_in_order_sqlite() {
    crash_story(Broker::rabbitmq().await, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_down_server_killed_every_event_once_in_order_postgres() {
    crash_story(Broker::rabbitmq().await, Backend::Postgres).await;
}

async fn crash_story(mut broker: Broker, backend: Backend) {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shedu-data");
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(shedu_testkit::ScratchDb::new(backend).await),
    };
    let db_url = db.as_ref().map(|d| d.url.clone());
    let csr = shedu_testkit::openssl_csr(tmp.path(), "leaf", "ec-p256", "/CN=load", None);

    let mut server = Server::start(tmp.path(), &data, &broker.url(), db_url.as_deref(), 1);
    let api = server.api();
    let took = wait_ready(&api, Some(true), true).await;
    println!("/ready saw the bus reachable {took:?} after the banner");
    let ca = api
        .post(
            "/api/v1/cas",
            json!({"name": "crash", "key_type": "ec-p256", "subject": {"common_name": "Crash CA"}}),
        )
        .await
        .expect("create CA");
    assert_eq!(ca.0, 201, "{}", ca.1);
    let ca_id = ca.1["id"].as_str().unwrap().to_string();

    // 1 and 2: load with the broker up, then down; 3: SIGKILL in the middle of it.
    let load = Load::start(&api, &ca_id, &csr);
    tokio::time::sleep(PHASE).await;
    broker.stop().await;
    let down_from = last_seq(&api).await;
    let took = wait_ready(&api, None, false).await;
    println!("/ready answered 503 {took:?} after the broker stopped (--ready-bus require)");
    tokio::time::sleep(PHASE).await;
    server.kill();
    let before_kill = load.finish().await;
    assert!(
        before_kill.ended_by_error == CLIENTS,
        "every client was still sending when the server was killed ({} of {CLIENTS})",
        before_kill.ended_by_error
    );

    // 4: broker and server back; load; the broker restarted in the middle of it.
    broker.start_again().await;
    let server = Server::start(tmp.path(), &data, &broker.url(), db_url.as_deref(), 2);
    let api = server.api();
    wait_ready(&api, Some(true), true).await;
    let after_kill = last_seq(&api).await;
    assert!(
        after_kill > down_from,
        "events were committed while the broker was down (seq {down_from} → {after_kill})"
    );
    let load = Load::start(&api, &ca_id, &csr);
    tokio::time::sleep(PHASE).await;
    broker.stop().await;
    let took = wait_ready(&api, Some(false), true).await;
    println!(
        "/ready showed the bus unreachable {took:?} after the broker stopped (--ready-bus report)"
    );
    broker.start_again().await;
    let took = wait_ready(&api, Some(true), true).await;
    println!("/ready showed the bus reachable {took:?} after the broker came back");
    tokio::time::sleep(PHASE).await;
    load.stop.store(true, Ordering::SeqCst);
    let after_restart = load.finish().await;
    assert_eq!(
        after_restart.ended_by_error, 0,
        "no request failed without a kill"
    );

    // 5: the broker holds the outbox, first copies in order.
    let outbox = outbox(&api).await;
    let expected: Vec<String> = outbox.iter().map(|e| e.id.clone()).collect();
    let received = broker.read_until(&expected).await;
    let mut seen = HashSet::new();
    let firsts: Vec<&str> = received
        .iter()
        .filter(|r| seen.insert(r.id.clone()))
        .map(|r| r.id.as_str())
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events never reached the broker, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        firsts.len(),
        expected.len(),
        "the broker holds events that are not in the outbox"
    );
    if let Some(i) = (0..firsts.len()).find(|&i| firsts[i] != expected[i]) {
        let seq_of: HashMap<&str, i64> = outbox.iter().map(|e| (e.id.as_str(), e.seq)).collect();
        let around: Vec<i64> = firsts[i.saturating_sub(3)..(i + 4).min(firsts.len())]
            .iter()
            .map(|id| seq_of[id])
            .collect();
        panic!(
            "out of outbox order at position {i}: expected seq {}, the broker has seqs {around:?} there",
            outbox[i].seq
        );
    }
    for r in &received {
        assert_eq!(r.message_id, r.id, "message id = event id");
    }

    // Every certificate or revocation a client was told about has its event.
    let told = before_kill.merge(after_restart);
    let events: HashSet<(&str, &str)> = outbox
        .iter()
        .map(|e| (e.ty.as_str(), e.serial.as_str()))
        .collect();
    for serial in &told.issued {
        assert!(
            events.contains(&("certificate.issued", serial.as_str())),
            "certificate {serial} was returned without its event"
        );
    }
    for serial in &told.revoked {
        assert!(
            events.contains(&("certificate.revoked", serial.as_str())),
            "the revocation of {serial} was confirmed without its event"
        );
    }
    assert!(!told.issued.is_empty() && !told.revoked.is_empty());
    println!(
        "{} on {backend:?}: {} events ({} committed while the broker was down), {} certificates and {} \
         revocations confirmed, {} copies received ({} duplicates), in {:.1} s",
        broker.name(),
        expected.len(),
        after_kill - down_from,
        told.issued.len(),
        told.revoked.len(),
        received.len(),
        received.len() - expected.len(),
        started.elapsed().as_secs_f64()
    );
    drop(server);
    drop(db);
}

/// Polls `/ready` until it answers 200 (`ready`) or 503 naming the event bus (`!ready`), and, for a 200,
/// until the bus is listed as `reachable` (when given); fails after [`READY_BOUND`]. Returns the time taken.
async fn wait_ready(api: &Api, reachable: Option<bool>, ready: bool) -> Duration {
    let started = Instant::now();
    loop {
        let answer = api.get("/ready").await;
        let done = match &answer {
            Ok((200, body)) if ready => {
                assert_eq!(body["bus"].as_array().map(Vec::len), Some(1), "{body}");
                reachable.is_none_or(|r| body["bus"][0]["reachable"] == r)
            }
            Ok((503, body)) if !ready => {
                let detail = body["detail"].as_str().unwrap_or_default();
                assert!(detail.contains("event bus"), "{body}");
                assert!(!detail.contains("guest:guest"), "no credentials: {body}");
                true
            }
            _ => false,
        };
        if done {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < READY_BOUND,
            "/ready did not turn {} (bus reachable: {reachable:?}) within {READY_BOUND:?}: {answer:?}",
            if ready { "200" } else { "503" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An outbox event as `GET /api/v1/events` lists it.
struct OutboxEvent {
    seq: i64,
    id: String,
    ty: String,
    serial: String,
}

/// The whole outbox, oldest first, page by page.
async fn outbox(api: &Api) -> Vec<OutboxEvent> {
    let mut out: Vec<OutboxEvent> = Vec::new();
    loop {
        let after = out.last().map(|e| e.seq).unwrap_or(0);
        let (s, page) = api
            .get(&format!("/api/v1/events?after={after}&limit=1000"))
            .await
            .expect("list events");
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return out;
        }
        out.extend(items.iter().map(|e| OutboxEvent {
            seq: e["seq"].as_i64().unwrap(),
            id: e["id"].as_str().unwrap().to_string(),
            ty: e["type"].as_str().unwrap().to_string(),
            serial: e["data"]["serial"].as_str().unwrap_or_default().to_string(),
        }));
    }
}

async fn last_seq(api: &Api) -> i64 {
    outbox(api).await.last().map(|e| e.seq).unwrap_or(0)
}

/// One message the broker held: the CloudEvent's id and the transport's message id.
struct Received {
    id: String,
    message_id: String,
}

enum Broker {
    Nats(NatsServer),
    /// The node; the queue `QUEUE` is durable and bound to `EXCHANGE` with `#`.
    Rabbit(RabbitMq),
}

impl Broker {
    fn nats() -> Broker {
        Broker::Nats(NatsServer::start())
    }

    /// A node with a durable queue bound to the exchange before any event is published.
    async fn rabbitmq() -> Broker {
        let node = tokio::task::spawn_blocking(RabbitMq::start).await.unwrap();
        let conn = lapin::Connection::connect(&node.url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.exchange_declare(
            EXCHANGE.into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_declare(
            QUEUE.into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            QUEUE.into(),
            EXCHANGE.into(),
            "#".into(),
            lapin::options::QueueBindOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
        let _ = conn.close(200, "bound".into()).await;
        Broker::Rabbit(node)
    }

    fn name(&self) -> &'static str {
        match self {
            Broker::Nats(_) => "NATS JetStream",
            Broker::Rabbit(_) => "RabbitMQ",
        }
    }

    fn url(&self) -> String {
        match self {
            Broker::Nats(n) => n.url(),
            Broker::Rabbit(r) => r.url(),
        }
    }

    async fn stop(&mut self) {
        tokio::task::block_in_place(|| match self {
            Broker::Nats(n) => n.stop(),
            Broker::Rabbit(r) => r.stop(),
        })
    }

    async fn start_again(&mut self) {
        tokio::task::block_in_place(|| match self {
            Broker::Nats(n) => n.start_again(),
            Broker::Rabbit(r) => r.start_again(),
        })
    }

    /// Everything the broker holds, in its order, once it holds every id of `expected` (or after
    /// [`DRAIN_TIMEOUT`], for the caller to report what is missing).
    async fn read_until(&self, expected: &[String]) -> Vec<Received> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let want: HashSet<&str> = expected.iter().map(String::as_str).collect();
        match self {
            Broker::Nats(n) => {
                let js = async_nats::jetstream::new(async_nats::connect(n.url()).await.unwrap());
                loop {
                    let got = read_stream(&js).await;
                    let ids: HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
                    if want.is_subset(&ids) || Instant::now() > deadline {
                        return got;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            Broker::Rabbit(r) => {
                let conn =
                    lapin::Connection::connect(&r.url(), lapin::ConnectionProperties::default())
                        .await
                        .unwrap();
                let ch = conn.create_channel().await.unwrap();
                let mut consumer = ch
                    .basic_consume(
                        QUEUE.into(),
                        "crash-test".into(),
                        lapin::options::BasicConsumeOptions::default(),
                        lapin::types::FieldTable::default(),
                    )
                    .await
                    .unwrap();
                let mut got = Vec::new();
                let mut ids: HashSet<String> = HashSet::new();
                while !want.iter().all(|w| ids.contains(*w)) {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let Ok(Some(d)) = tokio::time::timeout(left, consumer.next()).await else {
                        break;
                    };
                    let d = d.unwrap();
                    let ce: Value = serde_json::from_slice(&d.data).unwrap();
                    let id = ce["id"].as_str().unwrap().to_string();
                    let message_id = d
                        .properties
                        .message_id()
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    d.ack(lapin::options::BasicAckOptions::default())
                        .await
                        .unwrap();
                    ids.insert(id.clone());
                    got.push(Received { id, message_id });
                }
                let _ = conn.close(200, "read".into()).await;
                got
            }
        }
    }
}

/// Every message of the `SHEDU` stream, in stream order.
async fn read_stream(js: &async_nats::jetstream::Context) -> Vec<Received> {
    use async_nats::jetstream::consumer;
    let Ok(mut stream) = js.get_stream("SHEDU").await else {
        return Vec::new();
    };
    let total = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {total} stream messages read", out.len()))
            .unwrap()
            .unwrap();
        let ce: Value = serde_json::from_slice(&m.payload).unwrap();
        let message_id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push(Received {
            id: ce["id"].as_str().unwrap().to_string(),
            message_id,
        });
    }
    out
}

/// A `shedu serve` process on the test's data folder, publishing to the broker.
struct Server {
    child: Child,
    addr: String,
    data: PathBuf,
}

impl Server {
    /// Run 1 requires the bus for `/ready`; later runs only report it.
    fn start(root: &Path, data: &Path, events_url: &str, db_url: Option<&str>, run: u32) -> Server {
        let stderr_path = root.join(format!("serve-{run}.stderr"));
        let mut cmd = Command::new(SHEDU);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SHEDU_") {
                cmd.env_remove(key);
            }
        }
        if let Some(url) = db_url {
            cmd.env("SHEDU_DATABASE_URL", url);
        }
        let mut child = cmd
            .current_dir(root)
            .arg("serve")
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(["--events-url", events_url])
            .args(["--ready-bus", if run == 1 { "require" } else { "report" }])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
            .spawn()
            .unwrap();
        match wait_for_banner(&mut child, STARTUP_TIMEOUT) {
            (Banner::Listening(addr), _) => Server {
                child,
                addr,
                data: data.to_path_buf(),
            },
            (_, seen) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "shedu serve did not start\nstdout: {seen:?}\nstderr: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        }
    }

    /// A client for the API that trusts the server's TLS CA, with the admin token.
    fn api(&self) -> Api {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca = std::fs::read(self.data.join("tls").join("ca.pem")).unwrap();
        let token = std::fs::read_to_string(self.data.join("admin-token")).unwrap();
        Api {
            client: reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: format!("https://{}", self.addr),
            token: token.trim().to_string(),
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing the server could do about it.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// `Err` when the request did not get an answer (the server is gone).
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value), reqwest::Error> {
        let res = req.bearer_auth(&self.token).send().await?;
        let status = res.status().as_u16();
        let body = res.json::<Value>().await?;
        Ok((status, body))
    }

    async fn get(&self, path: &str) -> Result<(u16, Value), reqwest::Error> {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Result<(u16, Value), reqwest::Error> {
        self.send(self.client.post(format!("{}{path}", self.base)).json(&body))
            .await
    }
}

/// What the clients were told: certificates issued (201) and revocations confirmed (200), by serial.
#[derive(Default)]
struct Told {
    issued: Vec<String>,
    revoked: Vec<String>,
    /// Clients whose last request got no answer.
    ended_by_error: usize,
}

impl Told {
    fn merge(mut self, other: Told) -> Told {
        self.issued.extend(other.issued);
        self.revoked.extend(other.revoked);
        self.ended_by_error += other.ended_by_error;
        self
    }
}

/// [`CLIENTS`] tasks, each issuing certificates and revoking every third one it was given, until `stop`
/// or until a request gets no answer.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Told>>,
}

impl Load {
    fn start(api: &Api, ca_id: &str, csr: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..CLIENTS)
            .map(|_| {
                let (api, stop) = (api.clone(), stop.clone());
                let issue = format!("/api/v1/cas/{ca_id}/certificates");
                let csr = csr.to_string();
                tokio::spawn(async move {
                    let mut told = Told::default();
                    while !stop.load(Ordering::SeqCst) {
                        let (s, body) = match api.post(&issue, json!({"csr_pem": csr})).await {
                            Ok(r) => r,
                            Err(_) => {
                                told.ended_by_error = 1;
                                break;
                            }
                        };
                        assert_eq!(s, 201, "issue: {body}");
                        let serial = body["serial"].as_str().unwrap().to_string();
                        told.issued.push(serial.clone());
                        if told.issued.len() % 3 != 0 {
                            continue;
                        }
                        let revoke = format!("{issue}/{serial}/revoke");
                        match api.post(&revoke, json!({"reason": "superseded"})).await {
                            Ok((s, body)) => {
                                assert_eq!(s, 200, "revoke: {body}");
                                told.revoked.push(serial);
                            }
                            Err(_) => {
                                told.ended_by_error = 1;
                                break;
                            }
                        }
                    }
                    told
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Waits for every client to end (they end on `stop` or when the server is gone), bounded.
    async fn finish(self) -> Told {
        let mut told = Told::default();
        for t in self.tasks {
            let t = tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a client did not end within 60 s")
                .unwrap();
            told = told.merge(t);
        }
        told
    }
}
