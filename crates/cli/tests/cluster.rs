//! Several replicas of `shedu serve` on one PostgreSQL database (issue 19), each its own process with its own
//! ports and data folder, judged by `openssl ocsp` and plain HTTPS calls:
//! - started at the same instant on an empty database, they migrate it once and agree on the internal TLS
//!   CA, the admin token, the session secret and the internal RA CA;
//! - a CA created on one replica is an OCSP issuer on the others at once;
//! - after `revoke` returns on any replica, no replica answers `good`, though each had the answer cached;
//! - a replica cut off from the database stops serving its cached answers within the lease, and a
//!   revocation elsewhere does not wait for it longer than that.
//!
//! PostgreSQL only: a SQLite database has one process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{STARTUP_TIMEOUT, shedu_command, wait_for_listeners};
use serde_json::{Value, json};
use shedu_testkit::{Backend, ScratchDb, openssl};

/// One `shedu serve` process.
struct Replica {
    child: Child,
    https: String,
    http: String,
    data: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a replica on `db_url` with its own data folder `root/name` (not yet waiting for it).
fn spawn(root: &Path, name: &str, db_url: &str, master: &str) -> (Child, PathBuf) {
    let data = root.join(name);
    let stderr = std::fs::File::create(root.join(format!("{name}.stderr"))).unwrap();
    let child = shedu_command(root)
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--kmip-listen", "127.0.0.1:0"])
        .env("SHEDU_DATABASE_URL", db_url)
        .env("SHEDU_MASTER_KEY", master)
        .env("SHEDU_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    (child, data)
}

/// Starts `names.len()` replicas at the same instant and waits for all of them.
fn start_all(root: &Path, names: &[&str], db_url: &str, master: &str) -> Vec<Replica> {
    let spawned: Vec<_> = names
        .iter()
        .map(|n| (n, spawn(root, n, db_url, master)))
        .collect();
    spawned
        .into_iter()
        .map(|(name, (mut child, data))| {
            match wait_for_listeners(&mut child, STARTUP_TIMEOUT) {
                Ok((https, http)) => Replica {
                    child,
                    https,
                    http,
                    data,
                },
                Err(e) => {
                    let _ = child.kill();
                    let stderr = std::fs::read_to_string(root.join(format!("{name}.stderr")))
                        .unwrap_or_default();
                    panic!("replica {name} did not start: {e}\nstderr:\n{stderr}");
                }
            }
        })
        .collect()
}

fn master_key() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// An HTTPS client trusting `ca_pem`, with a bearer token.
struct Api {
    client: reqwest::Client,
    token: String,
}

impl Api {
    fn new(ca_pem: &[u8], token: &str) -> Api {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Api {
            client,
            token: token.to_string(),
        }
    }

    async fn call(&self, method: &str, replica: &Replica, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("https://{}{path}", replica.https);
        let mut req = self
            .client
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, replica: &Replica, path: &str, body: Value) -> Value {
        let (s, v) = self.call("POST", replica, path, Some(body)).await;
        assert!((200..300).contains(&s), "POST {path} on {}: {s} {v}", replica.https);
        v
    }
}

/// `openssl ocsp -no_nonce` (so answers may come from a cache) for `cert` against `replica`: the status word
/// and the raw response.
fn ocsp(dir: &Path, replica: &Replica, issuer: &str, cert: &str) -> (String, Vec<u8>) {
    let out = dir.join(format!("resp-{}", rand::random::<u64>()));
    let url = format!("http://{}/ocsp", replica.http);
    let (ok, text) = openssl(
        dir,
        &[
            "ocsp", "-no_nonce", "-issuer", issuer, "-cert", cert, "-url", &url, "-CAfile", issuer,
            "-respout", out.to_str().unwrap(), "-timeout", "10",
        ],
    );
    let status = ["good", "revoked", "unknown"]
        .into_iter()
        .find(|w| text.contains(&format!("{cert}: {w}")))
        .map(str::to_string)
        .unwrap_or_else(|| format!("no status (ok={ok}): {text}"));
    let der = std::fs::read(&out).unwrap_or_default();
    (status, der)
}

/// The replica answers `good` for `cert`, and from its cache: two answers in a row are the same signed bytes
/// (ECDSA signatures differ each time one is made). The first answers may not be cached yet: setting up the
/// CA's responder is a change every replica hears of, and forgets the CA's answers for.
fn assert_cached_good(dir: &Path, replica: &Replica, issuer: &str, cert: &str) {
    let mut previous = Vec::new();
    for _ in 0..10 {
        let (status, der) = ocsp(dir, replica, issuer, cert);
        assert_eq!(status, "good", "{}", replica.http);
        if der == previous {
            return;
        }
        previous = der;
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never answered from its cache", replica.http);
}

/// How many replicas' logs report applying schema migration 1.
fn migrations_applied(root: &Path, names: &[&str]) -> usize {
    names
        .iter()
        .map(|n| std::fs::read_to_string(root.join(format!("{n}.stderr"))).unwrap_or_default())
        .map(|log| {
            log.lines()
                .filter(|l| {
                    l.contains("applied schema migration")
                        && l.split_whitespace().any(|w| w == "version=1")
                })
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_setup_and_see_every_revocation_at_once() {
    let db = ScratchDb::new(Backend::Postgres).await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let names = ["a", "b", "c"];
    let replicas = start_all(root, &names, &db.url, &master_key());

    // One migration run, one internal TLS CA, one admin token.
    assert_eq!(
        migrations_applied(root, &names),
        1,
        "exactly one replica applies the first migration"
    );
    let read = |r: &Replica, f: &str| std::fs::read(r.data.join(f)).unwrap();
    let ca_pem = read(&replicas[0], "tls/ca.pem");
    let token = String::from_utf8(read(&replicas[0], "admin-token")).unwrap();
    for r in &replicas[1..] {
        assert_eq!(read(r, "tls/ca.pem"), ca_pem, "one internal TLS CA");
        assert_eq!(read(r, "admin-token"), token.as_bytes(), "one admin token");
    }
    let api = Api::new(&ca_pem, token.trim());
    let [a, b, c] = &replicas[..] else { unreachable!() };

    // A session made on one replica works on the others (one session secret).
    api.post(
        a,
        "/api/v1/users",
        json!({"username": "op", "password": "a long enough secret", "role": "operator"}),
    )
    .await;
    let session = api
        .post(
            b,
            "/api/v1/auth/login",
            json!({"username": "op", "password": "a long enough secret"}),
        )
        .await;
    let op = Api::new(&ca_pem, session["token"].as_str().unwrap());
    for r in &replicas {
        let (s, me) = op.call("GET", r, "/api/v1/auth/whoami", None).await;
        assert_eq!(s, 200, "session from b on {}: {me}", r.https);
    }

    // The internal RA CA is made once, however many replicas need it at the same moment.
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut ra_ids = Vec::new();
    for (i, r) in replicas.iter().enumerate() {
        let (ok, text) = openssl(
            &work,
            &[
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", &format!("ra{i}.key"), "-subj", &format!("/CN=ra-{i}"), "-out",
                &format!("ra{i}.csr"),
            ],
        );
        assert!(ok, "{text}");
        ra_ids.push((r, std::fs::read_to_string(work.join(format!("ra{i}.csr"))).unwrap()));
    }
    let probe = api
        .post(
            a,
            "/api/v1/cas",
            json!({"name": "probe", "key_type": "ec-p256", "subject": {"common_name": "Probe"}}),
        )
        .await;
    let probe_id = probe["id"].as_str().unwrap().to_string();
    let ras = futures::future::join_all(ra_ids.iter().enumerate().map(|(i, (r, csr))| {
        api.call(
            "POST",
            r,
            "/api/v1/ras",
            Some(json!({"name": format!("ra-{i}"), "ca_ids": [probe_id], "csr": csr,
                "enrollment": {"auth_modes": ["one_time_secret"]}})),
        )
    }))
    .await;
    for (s, ra) in &ras {
        assert_eq!(*s, 201, "{ra}");
    }
    let (_, cas) = api.call("GET", c, "/api/v1/cas", None).await;
    let internal: Vec<_> = cas
        .as_array()
        .or_else(|| cas["items"].as_array())
        .unwrap()
        .iter()
        .filter(|ca| ca["name"] == "shedu internal RA CA")
        .collect();
    assert_eq!(internal.len(), 1, "one internal RA CA: {cas}");

    // C builds its OCSP issuer index now (a request for a CA it does not know yet is refused) ...
    let (ok, text) = openssl(
        &work,
        &[
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "plc.key", "-subj", "/CN=plc", "-out", "plc.csr",
        ],
    );
    assert!(ok, "{text}");
    let csr = std::fs::read_to_string(work.join("plc.csr")).unwrap();
    // ... then a CA made on A issues on B and answers OCSP on C at once.
    let ca = api
        .post(
            a,
            "/api/v1/cas",
            json!({"name": "plant", "key_type": "ec-p256", "subject": {"common_name": "Plant CA"}}),
        )
        .await;
    let ca_id = ca["id"].as_str().unwrap().to_string();
    let (s, chain) = api
        .call("GET", b, &format!("/api/v1/cas/{ca_id}"), None)
        .await;
    assert_eq!(s, 200, "{chain}");
    std::fs::write(
        work.join("issuer.pem"),
        chain["certificate_pem"].as_str().unwrap(),
    )
    .unwrap();

    for round in 0..3 {
        let issued = api
            .post(
                b,
                &format!("/api/v1/cas/{ca_id}/certificates"),
                json!({ "csr_pem": csr }),
            )
            .await;
        let serial = issued["serial"].as_str().unwrap().to_string();
        let leaf = format!("leaf{round}.pem");
        std::fs::write(work.join(&leaf), issued["certificate_pem"].as_str().unwrap()).unwrap();
        // Every replica answers `good`, the second time from its cache (the same signed bytes: ECDSA
        // signatures differ each time they are made).
        for r in &replicas {
            assert_cached_good(&work, r, "issuer.pem", &leaf);
        }
        // Revoked on one replica; once that returns, no replica says `good`.
        let revoker = &replicas[round % 3];
        let started = Instant::now();
        api.post(
            revoker,
            &format!("/api/v1/cas/{ca_id}/certificates/{serial}/revoke"),
            json!({"reason": "key_compromise"}),
        )
        .await;
        let took = started.elapsed();
        for r in &replicas {
            let (status, _) = ocsp(&work, r, "issuer.pem", &leaf);
            assert_eq!(
                status, "revoked",
                "round {round}: {} right after the revocation on {} returned ({took:?})",
                r.http, revoker.http
            );
        }
        println!("round {round}: revocation on {} returned in {took:?}", revoker.http);
    }
}

/// A TCP proxy on loopback that can stop forwarding (a network partition: nothing is closed, nothing
/// arrives).
struct Partition {
    addr: String,
    cut: Arc<AtomicBool>,
}

impl Partition {
    fn to(upstream: String) -> Partition {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = flag.clone();
                    std::thread::spawn(move || pump(from, to, &flag));
                }
            }
        });
        Partition { addr, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, holding what it read while the partition is cut.
fn pump(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_the_database_stops_serving_cached_answers() {
    let db = ScratchDb::new(Backend::Postgres).await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let master = master_key();
    // A migrates the database first; B reaches it through a link the test can cut.
    let a = start_all(root, &["a"], &db.url, &master).remove(0);
    let pg = db.url.split('@').nth(1).unwrap();
    let (hostport, dbname) = pg.split_once('/').unwrap();
    let link = Partition::to(hostport.to_string());
    let via_link = db.url.replace(hostport, &link.addr);
    assert_ne!(via_link, db.url);
    let b = start_all(root, &["b"], &via_link, &master).remove(0);
    let _ = dbname;

    let ca_pem = std::fs::read(a.data.join("tls/ca.pem")).unwrap();
    let token = std::fs::read_to_string(a.data.join("admin-token")).unwrap();
    let api = Api::new(&ca_pem, token.trim());
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (ok, text) = openssl(
        &work,
        &[
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "plc.key", "-subj", "/CN=plc", "-out", "plc.csr",
        ],
    );
    assert!(ok, "{text}");
    let ca = api
        .post(
            &a,
            "/api/v1/cas",
            json!({"name": "plant", "key_type": "ec-p256", "subject": {"common_name": "Plant CA"}}),
        )
        .await;
    let ca_id = ca["id"].as_str().unwrap().to_string();
    std::fs::write(work.join("issuer.pem"), ca["certificate_pem"].as_str().unwrap()).unwrap();
    let issued = api
        .post(
            &a,
            &format!("/api/v1/cas/{ca_id}/certificates"),
            json!({ "csr_pem": std::fs::read_to_string(work.join("plc.csr")).unwrap() }),
        )
        .await;
    let serial = issued["serial"].as_str().unwrap().to_string();
    std::fs::write(work.join("leaf.pem"), issued["certificate_pem"].as_str().unwrap()).unwrap();
    assert_cached_good(&work, &b, "issuer.pem", "leaf.pem");

    // B loses the database. A revocation on A waits for B's lease at most, not for B.
    link.set_cut(true);
    let started = Instant::now();
    api.post(
        &a,
        &format!("/api/v1/cas/{ca_id}/certificates/{serial}/revoke"),
        json!({"reason": "key_compromise"}),
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < shedu_core::LEASE * 3,
        "the revocation waited {took:?} for a replica cut off from the database"
    );
    // B, still cut off, does not answer `good` from its cache any more.
    let (cut_off, _) = ocsp(&work, &b, "issuer.pem", "leaf.pem");
    assert_ne!(cut_off, "good", "B served a cached answer while cut off: {cut_off}");
    println!("B while cut off: {cut_off}; revocation on A took {took:?}");

    // The link heals: B catches up and answers `revoked`.
    link.set_cut(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = ocsp(&work, &b, "issuer.pem", "leaf.pem");
        if status == "revoked" {
            break;
        }
        assert!(Instant::now() < deadline, "B never recovered: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
