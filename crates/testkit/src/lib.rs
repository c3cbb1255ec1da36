//! Test support for shedu: start the real server on ephemeral ports over SQLite or a scratch PostgreSQL
//! database, talk to it with a client that trusts its TLS CA, and run `openssl` as the outside judge.
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use shedu_core::{EngineKind, Engines, ManualClock, Services, ServicesConfig, VaConfig};
use shedu_keys::{Keystore, MasterKey};
use shedu_server::{AdminToken, AppState, Running, ServerConfig};
use shedu_store::Store;

pub use shedu_store::scratch::{ScratchDb, TestBackend as Backend};

pub mod brokers;
pub mod libtest;

/// Expands one async test body into `<name>_sqlite` and `<name>_postgres` tests.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $backend = $crate::Backend::Sqlite;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $backend = $crate::Backend::Postgres;
                $body
            }
        }
    };
}

/// A running shedu server on ephemeral loopback ports.
pub struct TestServer {
    /// `https://127.0.0.1:<port>`
    pub base_url: String,
    /// `http://127.0.0.1:<port>` (plain listener)
    pub http_url: String,
    /// The bootstrap admin token.
    pub token: String,
    /// The TLS CA file clients trust.
    pub ca_file: PathBuf,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The service clock; advance it to move time.
    pub clock: Arc<ManualClock>,
    /// The services, for tests that look below the API.
    pub services: Services,
    /// An HTTPS client that trusts `ca_file`.
    pub client: reqwest::Client,
    /// The database URL.
    pub db_url: String,
    /// The HTTPS listener's certificate (renew it with `tls.reload(clock.now())`).
    pub tls: Arc<shedu_server::tls::ServerTls>,
    running: Running,
    persisted: Persisted,
}

/// How to start a test server beyond its backend.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A PKCS#11 token to add as an engine (and make the default).
    pub pkcs11: Option<shedu_keys::Pkcs11Config>,
    /// Refuse the bootstrap token once an admin user exists.
    pub bootstrap_until_admin: bool,
    /// OIDC identity providers whose bearer JWTs the API accepts.
    pub oidc: Vec<shedu_core::OidcIssuer>,
    /// The RA (name or id) answering EST requests without a label.
    pub est_default_ra: Option<String>,
    /// Proxies whose forwarded client certificate (`X-Client-Cert`) is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Connection timeouts and cap (the production defaults unless a test needs small ones).
    pub connection_limits: shedu_server::ConnectionLimits,
    /// Address blocks webhooks may reach although they are not global (`--webhook-allow`); tests whose
    /// receivers listen on loopback name `127.0.0.1/32` here.
    pub webhook_allow: Vec<shedu_core::Cidr>,
    /// Alert delivery tuning (webhook timeout, retries); the production defaults when unset.
    pub delivery: Option<shedu_events::DeliveryOptions>,
    /// Operator-provided TLS files (`--tls-cert`, `--tls-key`) instead of the internal TLS CA.
    pub operator_tls: Option<OperatorTls>,
    /// How often the listener re-reads its certificate (`--tls-reload-every`); an hour when unset, as
    /// tests renew explicitly through [`TestServer::tls`].
    pub tls_reload_every: Option<std::time::Duration>,
    /// The SMTP relay for e-mail alerts (`--smtp-*`); none when unset.
    pub smtp: Option<shedu_events::SmtpConfig>,
    /// Expiry reminder thresholds and interval, computed on the server's [`TestServer::clock`] (the
    /// `clock` given here is replaced by it); the production defaults on the system clock when unset.
    pub reminders: Option<shedu_events::ReminderOptions>,
    /// ACME validation (the http-01 port a test's client listens on); port 80 when unset.
    pub acme: Option<shedu_core::AcmeConfig>,
    /// The connector's settings; the production defaults when unset.
    pub connector: Option<shedu_core::ConnectorConfig>,
    /// The secret store's settings (mounts, token-socket clients); the production defaults when unset.
    pub secrets: Option<shedu_core::SecretsConfig>,
    /// Where the secret store's token socket listens; none when unset.
    pub secrets_socket: Option<PathBuf>,
    /// The cloud connectors' retry timing; the production defaults when unset.
    pub cloud: Option<shedu_core::CloudConfig>,
    /// Agentless rotation's settings; the production defaults when unset.
    pub rotation: Option<shedu_core::RotationConfig>,
}

/// The operator's TLS files, and the CA file the test's clients trust instead of the internal one.
#[derive(Clone, Debug)]
pub struct OperatorTls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// The CA (or self-signed certificate) clients trust.
    pub ca: PathBuf,
}

impl Options {
    /// Options whose webhooks may reach receivers on 127.0.0.1 (the test's own listeners).
    pub fn loopback_webhooks() -> Options {
        Options {
            webhook_allow: vec!["127.0.0.1/32".parse().expect("CIDR")],
            ..Options::default()
        }
    }
}

/// What a restart keeps: the database, the data folder and the master key.
struct Persisted {
    db: ScratchDb,
    dir: tempfile::TempDir,
    master_hex: String,
    options: Options,
}

impl TestServer {
    /// Starts a server on `backend`.
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, Options::default()).await
    }

    /// Starts a server on `backend` with `options`.
    pub async fn start_with(backend: Backend, options: Options) -> TestServer {
        let persisted = Persisted {
            db: ScratchDb::new(backend).await,
            dir: tempfile::tempdir().expect("temp dir"),
            master_hex: MasterKey::generate().to_hex().to_string(),
            options,
        };
        TestServer::boot(persisted).await
    }

    /// Stops this server and starts a new one on the same database, data folder, master key and token.
    pub async fn restart(self) -> TestServer {
        let TestServer {
            persisted, running, ..
        } = self;
        drop(running);
        TestServer::boot(persisted).await
    }

    /// Like [`TestServer::restart`], with other options (the database, data folder and master key stay).
    pub async fn restart_with(self, options: Options) -> TestServer {
        let TestServer {
            mut persisted,
            running,
            ..
        } = self;
        drop(running);
        persisted.options = options;
        TestServer::boot(persisted).await
    }

    /// A second server (another replica) on this server's database and master key, with its own data
    /// folder, listeners and clock. Only this server owns the database.
    pub async fn start_beside(&self) -> TestServer {
        TestServer::boot(Persisted {
            db: ScratchDb::shared(&self.db_url),
            dir: tempfile::tempdir().expect("temp dir"),
            master_hex: self.persisted.master_hex.clone(),
            options: self.persisted.options.clone(),
        })
        .await
    }

    async fn boot(persisted: Persisted) -> TestServer {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let master = MasterKey::from_hex(&persisted.master_hex).expect("master key");
        let store = Store::connect(&persisted.db.url, &shedu_core::EVENT_WORDS)
            .await
            .expect("open store");
        let clock = Arc::new(ManualClock::default());
        // The plain listener's port must be known before the service starts: it is the public URL that
        // goes into certificates (AIA, CRL distribution points) and CRL partition names.
        let http_listen = free_port();
        let pkcs11 = match persisted.options.pkcs11.clone() {
            Some(config) => Some(
                tokio::task::spawn_blocking(move || shedu_keys::Pkcs11Engine::open(config))
                    .await
                    .expect("join")
                    .expect("open PKCS#11 token"),
            ),
            None => None,
        };
        let config = ServicesConfig {
            va: VaConfig {
                public_url: format!("http://{http_listen}"),
                ..VaConfig::default()
            },
            // A configured token is the default engine, as `--default-engine pkcs11` makes it.
            engines: match pkcs11 {
                Some(token) => Engines::new(Some(token), EngineKind::Pkcs11),
                None => Engines::default(),
            },
            est_default_ra: persisted.options.est_default_ra.clone(),
            oidc: persisted.options.oidc.clone(),
            webhook_allow: persisted.options.webhook_allow.clone(),
            audit_checkpoint_file: Some(persisted.dir.path().join(shedu_core::CHECKPOINT_FILE)),
            acme: persisted.options.acme.clone().unwrap_or_default(),
            connector: persisted.options.connector.clone().unwrap_or_default(),
            secrets: persisted.options.secrets.clone().unwrap_or_default(),
            cloud: persisted.options.cloud.clone().unwrap_or_default(),
            rotation: persisted.options.rotation.clone().unwrap_or_default(),
        };
        let services = Services::open(store.clone(), &master, clock.clone(), config)
            .await
            .expect("services");
        let events = shedu_events::start(
            store,
            services.webhooks.clone(),
            shedu_events::EventsConfig {
                event_types: &shedu_core::EVENT_TYPES,
                delivery: persisted.options.delivery.clone().unwrap_or_default(),
                smtp: persisted.options.smtp.clone(),
                reminders: match persisted.options.reminders.clone() {
                    Some(r) => shedu_events::ReminderOptions {
                        clock: clock.clone(),
                        ..r
                    },
                    None => shedu_events::ReminderOptions::default(),
                },
                cloud: Some(services.cloud.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("event delivery");
        let dir = persisted.dir.path().to_path_buf();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let source = match &persisted.options.operator_tls {
            Some(files) => shedu_server::tls::TlsSource::Files {
                cert: files.cert.clone(),
                key: files.key.clone(),
            },
            None => shedu_server::tls::TlsSource::Internal {
                data_dir: dir.clone(),
                keystore: Keystore::new(&master).expect("keystore"),
                names,
            },
        };
        let tls = shedu_server::tls::ServerTls::load(source, services.registry.now()).expect("TLS");
        let ca_file = match &persisted.options.operator_tls {
            Some(files) => files.ca.clone(),
            None => tls.ca_file().expect("internal CA file").to_path_buf(),
        };
        let token = hex_token();
        let state = AppState::new(
            services.clone(),
            AdminToken::new(token.clone()).expect("token"),
            persisted.options.bootstrap_until_admin,
            Some(events),
        );
        let cfg = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            http_listen,
            tls: tls.clone(),
            tls_check_interval: persisted
                .options
                .tls_reload_every
                .unwrap_or(std::time::Duration::from_secs(3600)),
            proxied_certificates: shedu_server::mtls::ProxiedCertificates::new(
                persisted.options.trusted_proxies.clone(),
                None,
            )
            .expect("proxy settings"),
            secrets_socket: persisted.options.secrets_socket.clone(),
            limits: persisted.options.connection_limits.clone(),
            kmip: Some(shedu_server::KmipListen {
                addr: "127.0.0.1:0".parse().expect("addr"),
                optional: false,
            }),
        };
        let running = shedu_server::start(state, cfg).await.expect("start server");
        let ca_pem = std::fs::read(&ca_file).expect("read CA");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).expect("CA pem"))
            .build()
            .expect("client");
        TestServer {
            base_url: format!("https://{}", running.https_addr),
            http_url: format!("http://{}", running.http_addr),
            token,
            ca_file,
            data_dir: dir,
            clock,
            services,
            client,
            db_url: persisted.db.url.clone(),
            tls,
            running,
            persisted,
        }
    }

    /// The KMIP listener's address (binary TTLV over TLS; every test server runs one on a free port).
    pub fn kmip_addr(&self) -> std::net::SocketAddr {
        self.running.kmip_addr.expect("the KMIP listener runs")
    }

    /// `GET path` with the admin token; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body and the admin token.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Any method (`reqwest::Method` or its name) on `path` with the admin token and an optional JSON body;
    /// returns status and JSON body (a body that is not JSON as a JSON string).
    pub async fn send(
        &self,
        method: impl AsRef<str>,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_ref().as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        decode(
            req.send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e}")),
        )
        .await
    }

    /// The types of every event in the outbox, oldest first.
    pub async fn cas_events(&self) -> Vec<String> {
        self.services
            .events
            .list(0, None, None, 100_000)
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.event.ty)
            .collect()
    }

    /// `(serial, from, to)` of every `certificate.status_changed` event, oldest first.
    pub async fn status_events(&self) -> Vec<(String, String, String)> {
        let events = self
            .services
            .events
            .list(0, Some("certificate.status_changed"), None, 100_000)
            .await
            .expect("events");
        events
            .into_iter()
            .map(|e| {
                let d: serde_json::Value =
                    serde_json::from_str(&e.event.data).expect("event data is JSON");
                let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                (s("serial"), s("from"), s("to"))
            })
            .collect()
    }

    /// Creates a CA and returns its JSON; panics unless the server answers 201.
    pub async fn create_ca(&self, body: serde_json::Value) -> serde_json::Value {
        let (status, json) = self.post("/api/v1/cas", body).await;
        assert_eq!(status, 201, "create CA: {json}");
        json
    }
}

async fn decode(res: reqwest::Response) -> (u16, serde_json::Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

/// A loopback address with a port that was free a moment ago.
fn free_port() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], free_port_number()))
}

/// A loopback port that is free right now, for a listener the test starts a moment later. Chosen at
/// random below the kernel's ephemeral range (32768 and up on Linux): a port released by `bind(:0)` can be
/// handed to the next `bind(:0)` or outgoing connection of a test running beside this one (seen once: the
/// port picked for a test server's plain listener was taken before the server bound it), while a port
/// here is only ever taken by another test picking at random in the same 12,000 ports.
pub fn free_port_number() -> u16 {
    free_port_run(0)
}

/// `base` such that the ports `base..=base + n` are all free on loopback right now, from the same range as
/// [`free_port_number`] (below the ephemeral range, where another test's outgoing connection cannot take
/// one of them before the listener binds it).
pub fn free_port_run(n: u16) -> u16 {
    const LOW: u16 = 20_000;
    const EPHEMERAL: u16 = 32_768;
    assert!(n < 1_000, "a run of {n} ports");
    loop {
        let base = LOW + rand::random::<u16>() % (EPHEMERAL - LOW - n);
        let held: Vec<_> = (0..=n)
            .map_while(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(n) + 1 {
            return base;
        }
    }
}

fn hex_token() -> String {
    rand::random::<[u8; 24]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Everything the database at `db_url` holds, as bytes, for scans that a secret is nowhere in clear: the
/// SQLite files (with the WAL), or every PostgreSQL table's rows as text (`psql`).
pub fn database_bytes(db_url: &str) -> Vec<u8> {
    let mut dump = Vec::new();
    match db_url.strip_prefix("sqlite://") {
        Some(rest) => {
            let file = rest.split('?').next().unwrap_or(rest);
            for suffix in ["", "-wal", "-shm"] {
                if let Ok(bytes) = std::fs::read(format!("{file}{suffix}")) {
                    dump.extend(bytes);
                }
            }
            assert!(dump.len() > 4096, "the database files were read");
        }
        None => {
            let psql = |sql: &str| {
                let out = Command::new("psql")
                    .args([db_url, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
                    .output()
                    .expect("psql is required (apt-get install postgresql-client)");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            let tables = psql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
            );
            for table in tables.lines().filter(|t| !t.is_empty()) {
                dump.extend(psql(&format!("SELECT t::text FROM \"{table}\" t")).into_bytes());
            }
        }
    }
    dump
}

/// Runs one SQL statement on the database at `db_url` behind shedu's back, with the backend's own client
/// (`sqlite3` or `psql`): the outside hand of tamper tests. Panics when it fails.
pub fn tamper(db_url: &str, sql: &str) {
    let out = match db_url.strip_prefix("sqlite://") {
        Some(rest) => {
            let file = rest.split('?').next().unwrap_or(rest);
            // The server may be writing at that moment: wait for its lock (5 s) rather than fail at once
            // with `database is locked`, as sqlite3 does without a busy timeout.
            Command::new("sqlite3")
                .args(["-cmd", ".timeout 5000", file, sql])
                .output()
        }
        None => Command::new("psql")
            .args([db_url, "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output(),
    }
    .unwrap_or_else(|e| {
        panic!("sqlite3 and psql are required (apt-get install sqlite3 postgresql-client): {e}")
    });
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `openssl` with `args` in `dir`; returns (success, stdout + stderr). Panics with the install hint
/// when openssl is missing.
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is required (apt-get install openssl): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Makes a key of `key_type` (shedu's names) and a CSR for `subject` with `sans` (openssl `-addext`
/// syntax, e.g. `DNS:a,IP:10.0.0.1`) in `dir`; returns the CSR PEM.
pub fn openssl_csr(
    dir: &Path,
    stem: &str,
    key_type: &str,
    subject: &str,
    sans: Option<&str>,
) -> String {
    let key = format!("{stem}.key");
    let csr = format!("{stem}.csr");
    let keygen: Vec<&str> = match key_type {
        "ec-p256" => vec![
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        "ec-p384" => vec![
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
        "rsa-2048" => vec![
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        "rsa-3072" => vec![
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
        ],
        "rsa-4096" => vec![
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:4096",
        ],
        "ed25519" => vec!["genpkey", "-algorithm", "ED25519"],
        other => panic!("unknown key type {other}"),
    };
    let mut args = keygen;
    args.extend(["-out", key.as_str()]);
    let (ok, out) = openssl(dir, &args);
    assert!(ok, "openssl genpkey: {out}");
    let mut args = vec![
        "req",
        "-new",
        "-key",
        key.as_str(),
        "-subj",
        subject,
        "-out",
        csr.as_str(),
    ];
    let ext;
    if let Some(s) = sans {
        ext = format!("subjectAltName={s}");
        args.extend(["-addext", ext.as_str()]);
    }
    let (ok, out) = openssl(dir, &args);
    assert!(ok, "openssl req: {out}");
    std::fs::read_to_string(dir.join(csr)).expect("csr")
}

/// The PKCS#11 token for this test. When the environment names one (`scripts/test` exports a fresh
/// SoftHSM2 token), returns it. Otherwise makes a token with `scripts/softhsm-env`, runs this same test
/// again in a child process with that environment, asserts that exactly it ran and passed, and returns
/// `None`: the caller then returns. (Setting the environment of the running process would need `unsafe` in edition 2024.)
pub fn pkcs11_or_rerun(test_path: &str) -> Option<shedu_keys::Pkcs11Config> {
    if let Some(config) = shedu_keys::Pkcs11Config::from_env().expect("PKCS#11 environment") {
        return Some(config);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let token_dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(root.join("scripts/softhsm-env"))
        .arg(token_dir.path())
        .output()
        .unwrap_or_else(|e| panic!("scripts/softhsm-env: {e}"));
    assert!(
        out.status.success(),
        "scripts/softhsm-env failed (apt-get install softhsm2): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new(std::env::current_exe().expect("test binary"));
    child.args([test_path, "--exact", "--nocapture"]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line
            .trim()
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
        {
            child.env(k, v.trim_matches(|c| c == '"' || c == '\''));
        }
    }
    let out = child.output().expect("re-run the test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "--- child process: {test_path} ---\n{stdout}{}--- end of {test_path} ---",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{test_path} failed with the SoftHSM2 token"
    );
    libtest::assert_exactly_one_passed(test_path, &stdout);
    None
}

/// The directory of a cached Python virtualenv holding exactly `requirements` (pinned), made by
/// `scripts/pyvenv` on first use (so a lone `cargo test` works too; `scripts/test` makes them beforehand).
/// Its programs are in `<dir>/bin` (`python`, and the clients' own commands such as `bao` or `certbot`).
pub fn python_venv(name: &str, requirements: &[&str]) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(root.join("scripts/pyvenv"))
        .arg(name)
        .args(requirements)
        .output()
        .unwrap_or_else(|e| panic!("scripts/pyvenv: {e}"));
    assert!(
        out.status.success(),
        "scripts/pyvenv {name} {requirements:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Makes a self-signed P-256 CA with openssl in `dir` (`<stem>.pem`, `<stem>.key`): CA:TRUE and the key
/// usages a CA needs, valid 30 days. The stand-in for "an existing CA" that tests import.
pub fn openssl_ca(dir: &Path, stem: &str, common_name: &str) {
    openssl_self_signed(
        dir,
        stem,
        common_name,
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
    );
}

/// Makes a self-signed P-256 certificate with openssl in `dir` (`<stem>.pem`, `<stem>.key`), valid 30 days,
/// with each of `extensions` as an `-addext` (e.g. `subjectAltName=IP:127.0.0.1` for a test's own TLS
/// server).
pub fn openssl_self_signed(dir: &Path, stem: &str, common_name: &str, extensions: &[&str]) {
    let (key, cert, subject) = (
        format!("{stem}.key"),
        format!("{stem}.pem"),
        format!("/CN={common_name}"),
    );
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &cert,
        "-subj",
        &subject,
        "-days",
        "30",
    ];
    for e in extensions {
        args.extend(["-addext", e]);
    }
    let (ok, out) = openssl(dir, &args);
    assert!(ok, "openssl req -x509: {out}");
}

/// Runs `curl` in `dir` with `args`; returns (exit code, stdout). Panics with the install hint when curl
/// is missing. Tests use it as the outside client for TLS, mTLS and EST.
pub fn curl(dir: &Path, args: &[&str]) -> (i32, Vec<u8>) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("curl is required (apt-get install curl): {e}"));
    (out.status.code().unwrap_or(-1), out.stdout)
}

impl TestServer {
    /// Makes a P-256 key and CSR for `subject` with openssl in `dir` and has CA `ca_id` issue it through
    /// the API; writes `<stem>.pem` (the certificate) beside `<stem>.key` and returns the issued JSON.
    pub async fn issue_to_files(
        &self,
        ca_id: &str,
        dir: &Path,
        stem: &str,
        subject: &str,
    ) -> serde_json::Value {
        let csr = openssl_csr(dir, stem, "ec-p256", subject, None);
        let (status, issued) = self
            .post(
                &format!("/api/v1/cas/{ca_id}/certificates"),
                serde_json::json!({ "csr_pem": csr }),
            )
            .await;
        assert_eq!(status, 201, "issue: {issued}");
        let pem = issued["certificate_pem"].as_str().expect("certificate_pem");
        std::fs::write(dir.join(format!("{stem}.pem")), pem).expect("write certificate");
        issued
    }
}

/// Makes `<stem>.pem` + `<stem>.key` in `dir`: a P-256 certificate for `subject` from a CA the platform
/// does not manage (made with [`openssl_ca`] as `<stem>-ca`). The stand-in for a stranger's certificate.
pub fn openssl_foreign_leaf(dir: &Path, stem: &str, subject: &str) {
    let ca = format!("{stem}-ca");
    openssl_ca(dir, &ca, "Foreign CA");
    openssl_csr(dir, stem, "ec-p256", subject, None);
    let (csr, ca_pem, ca_key, out) = (
        format!("{stem}.csr"),
        format!("{ca}.pem"),
        format!("{ca}.key"),
        format!("{stem}.pem"),
    );
    let (ok, text) = openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "5",
            "-out",
            &out,
        ],
    );
    assert!(ok, "openssl x509 -req: {text}");
}
