//! What the CLI test files share: a clean `shedu` command, running a test on both backends, and waiting for
//! a real `shedu serve` to print where it listens.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Expands `fn name(backend: Backend)` into the tests `name::sqlite` and `name::postgres`.
#[allow(unused_macros)] // not every test file needs both backends
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(shedu_testkit::Backend::Sqlite);
            }

            #[test]
            fn postgres() {
                super::$name(shedu_testkit::Backend::Postgres);
            }
        }
    )+};
}

/// A command for the `shedu` binary with no `SHEDU_*` variable inherited, so a developer's environment
/// (a master key, a token, a URL) cannot change what the test exercises.
#[allow(dead_code)] // not every test file runs the CLI
pub(crate) fn shedu_command(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shedu"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SHEDU_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(cwd);
    cmd
}

/// A running `shedu serve`, killed on drop.
#[allow(dead_code)] // not every test file starts its server this way
pub(crate) struct Server {
    pub(crate) child: Child,
    /// `127.0.0.1:PORT` of the HTTPS API.
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(dead_code)]
impl Server {
    pub(crate) fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// A scratch PostgreSQL database for the PostgreSQL run of a test; `None` on SQLite (the embedded default).
#[allow(dead_code)]
pub(crate) fn scratch_db(backend: shedu_testkit::Backend) -> Option<shedu_testkit::ScratchDb> {
    match backend {
        shedu_testkit::Backend::Sqlite => None,
        shedu_testkit::Backend::Postgres => Some(
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(shedu_testkit::ScratchDb::new(backend)),
        ),
    }
}

/// Generous: on a loaded two-core machine several debug servers start at once.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// One test's folder: `root/shedu-data` for the server, `root/work` for files and the CLI's working
/// directory (no `shedu-data` there, so the CLI's defaults cannot stand in for the flags under test); and
/// its database: on SQLite the embedded default (`shedu-data/shedu.db`, no URL given), on PostgreSQL a
/// scratch database that `serve`, `keys rotate-master` and `audit verify` get as `SHEDU_DATABASE_URL`.
#[allow(dead_code)]
pub(crate) struct Sandbox {
    pub(crate) root: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) postgres: Option<shedu_testkit::ScratchDb>,
    // Last: the folder goes after the database that may live in it.
    _tmp: tempfile::TempDir,
}

#[allow(dead_code)]
impl Sandbox {
    pub(crate) fn new(backend: shedu_testkit::Backend) -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let data = root.join("shedu-data");
        let work = root.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let postgres = scratch_db(backend);
        Sandbox {
            root,
            data,
            work,
            postgres,
            _tmp: tmp,
        }
    }

    /// A `shedu` command run from the sandbox's root on its database: for `serve`, `keys` and `audit`.
    pub(crate) fn shedu(&self) -> Command {
        let mut cmd = shedu_command(&self.root);
        if let Some(db) = &self.postgres {
            cmd.env("SHEDU_DATABASE_URL", &db.url);
        }
        cmd
    }
}

/// Why a server did not come up: its exit status and its stderr.
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) struct StartFailure {
    pub(crate) status: ExitStatus,
    pub(crate) stderr: String,
}

/// Starts `shedu serve` on the sandbox's data folder with OS-chosen ports, extra arguments and environment
/// variables, and waits for the line giving the HTTPS address. `Err` when the process exits first; its
/// stderr is kept in `root/serve-<run>.stderr`.
#[allow(dead_code)]
pub(crate) fn try_start_with(
    sb: &Sandbox,
    run: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Server, StartFailure> {
    let stderr_path = sb.root.join(format!("serve-{run}.stderr"));
    let stderr_file = std::fs::File::create(&stderr_path).unwrap();
    let mut child = sb
        .shedu()
        .arg("serve")
        .arg("--data-dir")
        .arg(&sb.data)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr_file))
        .spawn()
        .unwrap();
    match wait_for_banner(&mut child, STARTUP_TIMEOUT) {
        (Banner::Listening(addr), _) => Ok(Server { child, addr }),
        (Banner::Exited, _) => {
            let status = child.wait().unwrap();
            let stderr = std::fs::read_to_string(&stderr_path).unwrap();
            Err(StartFailure { status, stderr })
        }
        (Banner::Silent, seen) => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!(
                "shedu serve did not print its address in time\nstdout: {seen:?}\nstderr: {stderr}"
            );
        }
    }
}

/// How `shedu serve`'s start-up ended, as seen on its stdout.
pub(crate) enum Banner {
    /// It printed its HTTPS address (`127.0.0.1:PORT`).
    Listening(String),
    /// It exited first.
    Exited,
    /// It printed no address within the timeout (it still runs).
    Silent,
}

/// Reads the child's stdout (which must be piped) until the banner line with the HTTPS address. A thread
/// keeps draining stdout until the process ends, so the server never blocks on a full pipe. Also returns
/// the lines printed before.
pub(crate) fn wait_for_banner(child: &mut Child, timeout: Duration) -> (Banner, Vec<String>) {
    let rx = drain_stdout(child);
    banner_on(&rx, Instant::now() + timeout)
}

/// Like [`wait_for_banner`], for a server that must come up: its HTTPS and plain-HTTP addresses
/// (`127.0.0.1:PORT`), or what it printed instead.
#[allow(dead_code)]
pub(crate) fn wait_for_listeners(
    child: &mut Child,
    timeout: Duration,
) -> Result<(String, String), String> {
    let rx = drain_stdout(child);
    let deadline = Instant::now() + timeout;
    let (banner, mut seen) = banner_on(&rx, deadline);
    let Banner::Listening(https) = banner else {
        return Err(format!("no HTTPS address; stdout: {seen:?}"));
    };
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => match address_after(&line, "HTTP:", "http://") {
                Some(http) => return Ok((https, http)),
                None => seen.push(line),
            },
            Err(_) => return Err(format!("no HTTP address; stdout: {seen:?}")),
        }
    }
}

/// A thread that forwards the child's stdout lines until it ends.
fn drain_stdout(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

fn banner_on(rx: &mpsc::Receiver<String>, deadline: Instant) -> (Banner, Vec<String>) {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => match https_addr(&line) {
                Some(addr) => return (Banner::Listening(addr), seen),
                None => seen.push(line),
            },
            Err(mpsc::RecvTimeoutError::Disconnected) => return (Banner::Exited, seen),
            Err(mpsc::RecvTimeoutError::Timeout) => return (Banner::Silent, seen),
        }
    }
}

/// `  API (HTTPS):  https://127.0.0.1:PORT/api/v1   (OpenAPI: …)` → `127.0.0.1:PORT`.
fn https_addr(line: &str) -> Option<String> {
    address_after(line, "API (HTTPS):", "https://")
}

/// The `host:port` after `label` and `scheme` at the start of a banner line.
fn address_after(line: &str, label: &str, scheme: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix(label)?.trim_start();
    let rest = rest.strip_prefix(scheme)?;
    let end = rest.find('/')?;
    Some(rest[..end].to_string())
}
