//! Throw-away message brokers for failure tests: a `nats-server` with JetStream and a RabbitMQ node, each
//! on free loopback ports with its own temporary folder, that a test may stop and start again (same port,
//! same store) without touching the machine's shared brokers. Dropping one stops it.
//!
//! Both are started from their Debian packages (`nats-server`; `rabbitmq-server` and `erlang-base`). The
//! RabbitMQ node gets its own node name, configuration, Mnesia and log folders, Erlang cookie (its `HOME`)
//! and its own `epmd` on a free port, so it shares nothing with a system broker.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a broker may take to accept connections (RabbitMQ boots in ~8 s on an idle machine; these
/// machines build in parallel).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a graceful stop may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A `nats-server -js` of this test's own.
pub struct NatsServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    runs: u32,
}

impl NatsServer {
    /// Starts one on a free port with an empty JetStream store; panics with the install hint when
    /// `nats-server` is missing.
    pub fn start() -> NatsServer {
        let mut nats = NatsServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            runs: 0,
        };
        nats.start_again();
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again after [`NatsServer::stop`]: same port, same JetStream store.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "nats-server is already running");
        self.runs += 1;
        let log = log_file(self.dir.path(), "nats", self.runs);
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.dir.path().join("jetstream"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("nats-server is required (apt-get install nats-server): {e}")
            });
        self.child = Some(child);
        wait_until_listening(self.port, &mut self.child, "nats-server", self.dir.path());
    }

    /// Stops it (SIGTERM: JetStream closes its store) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            assert!(
                stop_gracefully(child),
                "nats-server did not stop within {STOP_TIMEOUT:?} of SIGTERM"
            );
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A RabbitMQ node of this test's own, with the default `guest` user (loopback only) and vhost `/`.
pub struct RabbitMq {
    port: u16,
    dist_port: u16,
    epmd_port: u16,
    dir: tempfile::TempDir,
    epmd: Child,
    child: Option<Child>,
    runs: u32,
}

impl RabbitMq {
    /// Starts one (and its `epmd`) on free ports with empty data; panics with the install hint when
    /// RabbitMQ or Erlang is missing.
    pub fn start() -> RabbitMq {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let epmd_port = free_port();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .expect("write rabbitmq.conf");
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "").expect("write env file");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("write plugins file");
        let epmd = Command::new("epmd")
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("epmd is required (apt-get install erlang-base): {e}"));
        let mut rabbit = RabbitMq {
            port,
            dist_port: free_port(),
            epmd_port,
            dir,
            epmd,
            child: None,
            runs: 0,
        };
        rabbit.start_again();
        rabbit
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node again after [`RabbitMq::stop`]: same port, node name and data.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "RabbitMQ is already running");
        self.runs += 1;
        let d = self.dir.path();
        let log = log_file(d, "rabbitmq", self.runs);
        // The packaged /usr/sbin wrapper switches to the `rabbitmq` user when run as root; the script
        // behind it runs the node as whoever calls it.
        let packaged = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        let script = if packaged.exists() {
            packaged
        } else {
            Path::new("rabbitmq-server")
        };
        let child = Command::new(script)
            .env("HOME", d)
            .env("RABBITMQ_CONF_ENV_FILE", d.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env(
                "RABBITMQ_NODENAME",
                format!("shedu-test-{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("rabbitmq.pid"))
            .env("RABBITMQ_LOGS", "-")
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("RabbitMQ is required (apt-get install rabbitmq-server): {e}")
            });
        self.child = Some(child);
        wait_until_listening(self.port, &mut self.child, "RabbitMQ", d);
    }

    /// Stops the node gracefully (the start script turns SIGTERM into a clean shutdown) and waits until it
    /// has exited.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            let stopped = stop_gracefully(child);
            if !stopped {
                self.kill_node();
            }
            assert!(
                stopped,
                "RabbitMQ did not stop within {STOP_TIMEOUT:?} of SIGTERM"
            );
        }
    }

    /// SIGKILL to the Erlang VM behind the start script (which has been killed already).
    fn kill_node(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("rabbitmq.pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        if let Some(child) = self.child.take()
            && !stop_gracefully(child)
        {
            self.kill_node();
        }
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
    }
}

fn log_file(dir: &Path, name: &str, run: u32) -> std::fs::File {
    std::fs::File::create(dir.join(format!("{name}-{run}.log"))).expect("broker log file")
}

fn logs(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "log"));
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("== {}\n{}", p.display(), tail.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn wait_until_listening(port: u16, child: &mut Option<Child>, what: &str, dir: &Path) {
    let started = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            *child = None;
            panic!(
                "{what} exited with {status} before listening\n{}",
                logs(dir)
            );
        }
        if started.elapsed() > START_TIMEOUT {
            panic!(
                "{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:?}\n{}",
                logs(dir)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM, then waits for the exit; `false` (after a SIGKILL) when it took longer than [`STOP_TIMEOUT`].
fn stop_gracefully(mut child: Child) -> bool {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let started = Instant::now();
    while started.elapsed() < STOP_TIMEOUT {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

fn free_port() -> u16 {
    super::free_port().port()
}

/// The pinned `moto` (PyPI `moto[server]`, with boto3) that plays AWS IoT Core in the cloud connector's
/// tests; `scripts/test` pre-creates this virtualenv.
pub const MOTO: &[&str] = &["moto[server]==5.2.6"];

/// A `moto_server` of this test's own on a free loopback port: AWS IoT Core (and IAM) in memory, with
/// request recording on (`recording()`: what moto received, bodies included) and, when `auth_after` is
/// given, SigV4 and IAM checks from that many requests on (moto's `INITIAL_NO_AUTH_ACTION_COUNT`). Moto
/// keeps nothing across [`MotoServer::stop`]; it is the cloud going down and coming back empty.
pub struct MotoServer {
    port: u16,
    dir: tempfile::TempDir,
    venv: PathBuf,
    auth_after: Option<u32>,
    child: Option<Child>,
    runs: u32,
}

impl MotoServer {
    /// Starts one; `auth_after`: `None` accepts any credentials.
    pub fn start(auth_after: Option<u32>) -> MotoServer {
        let mut moto = MotoServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            venv: super::python_venv("moto", MOTO),
            auth_after,
            child: None,
            runs: 0,
        };
        moto.start_again();
        moto
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The virtualenv (its `bin/python` has boto3).
    pub fn venv(&self) -> &Path {
        &self.venv
    }

    /// Starts it again after [`MotoServer::stop`] on the same port (empty), with IoT certificate ids
    /// computed from the DER as AWS does (moto's `iot.use_valid_cert`, which its HTTP config API does not
    /// take, hence the wrapper).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "moto is already running");
        self.runs += 1;
        let log = log_file(self.dir.path(), "moto", self.runs);
        let program = format!(
            "import sys\n\
             from moto.core.config import default_user_config\n\
             default_user_config['iot'] = {{'use_valid_cert': True}}\n\
             from moto.server import main\n\
             sys.exit(main(['-H', '127.0.0.1', '-p', '{}']))\n",
            self.port
        );
        let mut cmd = Command::new(self.venv.join("bin/python"));
        cmd.arg("-c")
            .arg(program)
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", self.recording_file())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        if let Some(n) = self.auth_after {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        self.child = Some(cmd.spawn().expect("start moto"));
        wait_until_listening(self.port, &mut self.child, "moto", self.dir.path());
    }

    /// Stops it and waits until it has exited (moto forgets everything).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            assert!(
                stop_gracefully(child),
                "moto_server did not stop within {STOP_TIMEOUT:?} of SIGTERM"
            );
        }
    }

    fn recording_file(&self) -> PathBuf {
        self.dir.path().join(format!("recording-{}", self.runs))
    }

    /// The requests this run of moto received so far (method, URL, body text), in order.
    pub fn recording(&self) -> Vec<(String, String, String)> {
        std::fs::read_to_string(self.recording_file())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("recording line");
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                let body = if v["body_encoded"].as_bool() == Some(true) {
                    use base64::Engine;
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(text("body"))
                        .expect("recorded body");
                    String::from_utf8_lossy(&raw).into_owned()
                } else {
                    text("body")
                };
                (text("method"), text("url"), body)
            })
            .collect()
    }

    /// Checks the SigV4 signature of every signed request this run of moto received with botocore (AWS's
    /// own signer) and `secret`: moto's own check refuses even boto3's requests to IoT, so the reference
    /// implementation judges instead. Returns how many requests were checked; panics on a mismatch.
    pub fn check_signatures(&self, secret: &str) -> usize {
        let program = format!(
            "import json, base64\n\
             from botocore.awsrequest import AWSRequest\n\
             from botocore.auth import SigV4Auth\n\
             from botocore.credentials import Credentials\n\
             checked, bad = 0, []\n\
             for line in open({file:?}):\n\
             \x20   e = json.loads(line)\n\
             \x20   h = {{k.lower(): v for k, v in e['headers'].items()}}\n\
             \x20   a = h.get('authorization', '')\n\
             \x20   if not a.startswith('AWS4-HMAC-SHA256'):\n\
             \x20       continue\n\
             \x20   parts = dict(p.strip().split('=', 1) for p in a[len('AWS4-HMAC-SHA256 '):].split(','))\n\
             \x20   key, date, region, service, _ = parts['Credential'].split('/')\n\
             \x20   signed = parts['SignedHeaders'].split(';')\n\
             \x20   body = base64.b64decode(e['body']) if e.get('body_encoded') else (e.get('body') or '').encode()\n\
             \x20   url = e['url'] if e['url'].startswith('http') else 'http://' + h['host'] + e['url']\n\
             \x20   r = AWSRequest(method=e['method'], url=url, data=body, headers={{k: h[k] for k in signed}})\n\
             \x20   r.context['timestamp'] = h['x-amz-date']\n\
             \x20   auth = SigV4Auth(Credentials(key, {secret:?}), service, region)\n\
             \x20   sig = auth.signature(auth.string_to_sign(r, auth.canonical_request(r)), r)\n\
             \x20   checked += 1\n\
             \x20   if sig != parts['Signature']:\n\
             \x20       bad.append([e['method'], e['url'], auth.canonical_request(r)])\n\
             print(json.dumps([checked, bad]))\n",
            file = self.recording_file(),
        );
        let v = self.python(&program);
        assert_eq!(
            v[1],
            serde_json::json!([]),
            "requests whose SigV4 signature botocore refuses"
        );
        v[0].as_u64().unwrap_or(0) as usize
    }

    /// Runs `script` with boto3 against this moto (an `iot` client is `iot`, an `iam` client `iam`) with
    /// the given credentials; the script prints one JSON value, which is returned.
    pub fn boto3(&self, access_key_id: &str, secret: &str, script: &str) -> serde_json::Value {
        let program = format!(
            "import boto3, json, sys\n\
             kw = dict(endpoint_url={url:?}, region_name='us-east-1', aws_access_key_id={access_key_id:?}, aws_secret_access_key={secret:?})\n\
             iot = boto3.client('iot', **kw)\n\
             iam = boto3.client('iam', **kw)\n\
             {script}\n",
            url = self.url(),
        );
        self.python(&program)
    }

    /// Runs a Python program in the virtualenv; it must succeed and print one JSON value.
    fn python(&self, program: &str) -> serde_json::Value {
        let out = Command::new(self.venv.join("bin/python"))
            .arg("-c")
            .arg(program)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "python failed: {}\n{program}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("python printed {text:?}: {e}"))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
