//! Executors: how a run reaches a host for its steps (`csr`, `install`, `reload`, `rollback`).
//!
//! - `command`: a local program (a vendor CLI, a script) started once per step, with the step, the asset
//!   and, for `install`, the certificate and chain as one JSON document on stdin; its stdout is the step's
//!   answer (the CSR for `csr`). No shell: the program and its arguments are given as a list, its
//!   environment is only `PATH`, and it is killed when the run's time is up.

use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::AssetInput;
use crate::Error;

/// Largest answer read from a step (a CSR, a log line); more is an error.
const MAX_OUTPUT: usize = 256 * 1024;

/// An executor's kind and settings (no secrets: those are sealed beside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutorSpec {
    /// A local program.
    Command(CommandSettings),
}

/// A `command` executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSettings {
    /// The program, an absolute path.
    pub program: String,
    /// Its arguments (before the step's JSON arrives on stdin).
    #[serde(default)]
    pub args: Vec<String>,
    /// Whether the program has a `rollback` step (called after a failed validation).
    #[serde(default)]
    pub rollback: bool,
}

impl ExecutorSpec {
    /// The kind's wire name.
    pub fn kind(&self) -> &'static str {
        match self {
            ExecutorSpec::Command(_) => "command",
        }
    }

    /// The settings as JSON (stored, and shown by the API: no secret is in them).
    pub fn settings_json(&self) -> serde_json::Value {
        match self {
            ExecutorSpec::Command(c) => serde_json::to_value(c).unwrap_or_default(),
        }
    }

    pub(crate) fn to_json(&self) -> String {
        self.settings_json().to_string()
    }

    /// Parses a kind and its settings (the API's input, or a stored row).
    pub fn from_json(kind: &str, settings: &str) -> Result<ExecutorSpec, Error> {
        let bad =
            |e: serde_json::Error| Error::invalid("invalid-executor", format!("settings: {e}"));
        match kind {
            "command" => Ok(ExecutorSpec::Command(
                serde_json::from_str(settings).map_err(bad)?,
            )),
            other => Err(Error::invalid(
                "invalid-executor",
                format!("kind {other:?} is not an executor kind (command)"),
            )),
        }
    }

    /// Checks the settings and whether a secret may come with them.
    pub(crate) fn check(&self, secret: Option<&str>) -> Result<(), Error> {
        let bad = |d: &str| Err(Error::invalid("invalid-executor", d.to_string()));
        match self {
            ExecutorSpec::Command(c) => {
                if !c.program.starts_with('/') || c.program.len() > 4096 {
                    return bad("program is an absolute path");
                }
                if c.args.len() > 64 || c.args.iter().any(|a| a.len() > 4096) {
                    return bad("at most 64 arguments of up to 4096 bytes");
                }
                if secret.is_some() {
                    return bad("a command executor takes no secret");
                }
                Ok(())
            }
        }
    }

    /// Whether a `rollback` step is defined.
    pub(crate) fn has_rollback(&self) -> bool {
        match self {
            ExecutorSpec::Command(c) => c.rollback,
        }
    }
}

/// What one step sends the host.
pub(crate) struct StepInput<'a> {
    pub(crate) step: &'a str,
    pub(crate) asset: &'a AssetInput,
    pub(crate) certificate: Option<&'a str>,
    pub(crate) chain: Option<&'a str>,
}

/// Runs one step within `budget`; its stdout, or why it failed.
pub(crate) async fn run_step(
    spec: &ExecutorSpec,
    input: &StepInput<'_>,
    budget: Duration,
) -> Result<String, String> {
    match spec {
        ExecutorSpec::Command(c) => command_step(c, input, budget).await,
    }
}

async fn command_step(
    c: &CommandSettings,
    input: &StepInput<'_>,
    budget: Duration,
) -> Result<String, String> {
    let a = input.asset;
    let doc = serde_json::json!({
        "step": input.step,
        "asset": {
            "system_name": a.system_name,
            "common_name": a.common_name,
            "subject_alternative_name": a.subject_alternative_name,
            "ip_address": a.ip_address,
            "port": a.port,
            "data_center": a.data_center,
            "host_platform": a.host_platform,
            "os_version": a.os_version,
            "device_model": a.device_model,
            "labels": a.labels,
        },
        "certificate": input.certificate,
        "chain": input.chain,
    });
    let mut child = tokio::process::Command::new(&c.program)
        .args(&c.args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", c.program))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let work = async {
        let body = doc.to_string();
        let write = async move {
            // A program that does not read its input is fine: a closed pipe is not an error here.
            let _ = stdin.write_all(body.as_bytes()).await;
            drop(stdin);
        };
        let (out, err, status, ()) = tokio::join!(
            read_capped(&mut stdout),
            read_capped(&mut stderr),
            child.wait(),
            write
        );
        let status = status.map_err(|e| e.to_string())?;
        let out = out?;
        if status.success() {
            Ok(out)
        } else {
            Err(format!("{status}: {}", err.unwrap_or_default().trim()))
        }
    };
    tokio::time::timeout(budget, work)
        .await
        .map_err(|_| format!("step {} did not finish in time; killed", input.step))?
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Result<String, String> {
    let mut buf = Vec::new();
    let n = r
        .take(MAX_OUTPUT as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if n > MAX_OUTPUT {
        return Err(format!("answer larger than {MAX_OUTPUT} bytes"));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
