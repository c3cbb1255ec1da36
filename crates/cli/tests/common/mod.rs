//! What the CLI test files share: waiting for a real `shedu serve` to print where it listens.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
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
    let rest = line.trim_start().strip_prefix("API (HTTPS):")?.trim_start();
    let rest = rest.strip_prefix("https://")?;
    let end = rest.find('/')?;
    Some(rest[..end].to_string())
}
