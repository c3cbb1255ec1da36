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
