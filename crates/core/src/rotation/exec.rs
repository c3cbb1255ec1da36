//! Executors: how a run reaches a host for its steps (`csr`, `install`, `reload`, `rollback`).
//!
//! - `command`: a local program (a vendor CLI, a script) started once per step, with the step, the asset
//!   and, for `install`, the certificate and chain as one JSON document on stdin; its stdout is the step's
//!   answer (the CSR for `csr`). No shell: the program and its arguments are given as a list, its
//!   environment is only `PATH`, and it runs in a process group of its own, killed as a whole when the
//!   run's time is up.
//! - `ssh` (russh): the asset's address, a user and a private key (sealed), and **a pinned host key
//!   fingerprint, required**: the server's key is compared during the key exchange, before authentication
//!   and before any command, and a mismatch ends the connection. Each step is a templated command
//!   (`{common_name}`, `{system_name}`, `{sans}`, each shell-quoted); `install` gets certificate and chain
//!   on stdin (after the key shedu made, with `key_mode = server`).
//! - `http`: an appliance's or a vendor's REST API. Each step is one POST of the `command` executor's JSON
//!   document to a configured URL (`{ip_address}`, `{system_name}`, `{common_name}` filled in), signed
//!   `X-Shedu-Signature: sha256=<hex HMAC-SHA256(body, secret)>` with the executor's sealed secret, which
//!   also goes, when `auth_header` names a header, as that header's value (an API key). The answer's body
//!   is the step's answer (the CSR for `csr`); a status other than 2xx fails the step. Requests go through
//!   the webhook client: only to addresses the target policy permits (`--webhook-allow`), no redirects.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
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
    /// Commands over SSH.
    Ssh(SshSettings),
    /// Signed requests to a REST API.
    Http(HttpSettings),
}

/// An `http` executor (its secret, required, signs every request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Where each step is POSTed: `http(s)://…`, with `{ip_address}`, `{system_name}` and `{common_name}`
    /// replaced by the asset's.
    pub url: String,
    /// A header that carries the secret itself (an API key, e.g. `X-Api-Key`), besides the signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_header: Option<String>,
    /// Whether the API has a `rollback` step (called after a failed validation).
    #[serde(default)]
    pub rollback: bool,
}

/// An `ssh` executor (the private key is the executor's sealed secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// The user to log in as.
    pub user: String,
    /// The SSH port (the host is the asset's address). [default: 22]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The host key's fingerprint as OpenSSH prints it (`SHA256:…`, `ssh-keygen -lf`). Required.
    pub host_key_fingerprint: String,
    /// The step commands.
    pub commands: SshCommands,
}

/// The commands of an `ssh` executor's steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshCommands {
    /// Prints a CSR made on the host (the key never leaves it).
    pub csr: String,
    /// Installs the certificate and chain it reads on stdin.
    pub install: String,
    /// Makes the service serve the installed certificate.
    pub reload: String,
    /// Puts the previous certificate back (after a failed validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
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
            ExecutorSpec::Ssh(_) => "ssh",
            ExecutorSpec::Http(_) => "http",
        }
    }

    /// The settings as JSON (stored, and shown by the API: no secret is in them).
    pub fn settings_json(&self) -> serde_json::Value {
        match self {
            ExecutorSpec::Command(c) => serde_json::to_value(c).unwrap_or_default(),
            ExecutorSpec::Ssh(c) => serde_json::to_value(c).unwrap_or_default(),
            ExecutorSpec::Http(c) => serde_json::to_value(c).unwrap_or_default(),
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
            "ssh" => Ok(ExecutorSpec::Ssh(
                serde_json::from_str(settings).map_err(bad)?,
            )),
            "http" => Ok(ExecutorSpec::Http(
                serde_json::from_str(settings).map_err(bad)?,
            )),
            other => Err(Error::invalid(
                "invalid-executor",
                format!("kind {other:?} is not an executor kind (command, ssh, http)"),
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
            ExecutorSpec::Ssh(c) => {
                if c.user.is_empty()
                    || c.user.len() > 64
                    || c.user.chars().any(|ch| ch.is_control())
                {
                    return bad("user is 1 to 64 characters");
                }
                let pin = c.host_key_fingerprint.strip_prefix("SHA256:").unwrap_or("");
                if pin.len() != 43
                    || !pin
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '+' || ch == '/')
                {
                    return bad(
                        "host_key_fingerprint is required: SHA256:<43 base64 characters>, as ssh-keygen -lf prints it",
                    );
                }
                let cmds = [&c.commands.csr, &c.commands.install, &c.commands.reload];
                if cmds
                    .iter()
                    .chain(c.commands.rollback.iter().collect::<Vec<_>>().iter())
                    .any(|x| x.trim().is_empty() || x.len() > 4096)
                {
                    return bad(
                        "the csr, install, reload (and rollback) commands are 1 to 4096 characters",
                    );
                }
                match secret {
                    None => bad("an ssh executor needs its private key as secret"),
                    Some(key) => russh::keys::decode_secret_key(key, None)
                        .map(|_| ())
                        .map_err(|e| {
                            Error::invalid(
                                "invalid-executor",
                                format!("secret: not an SSH private key: {e}"),
                            )
                        }),
                }
            }
            ExecutorSpec::Http(c) => {
                let sample = AssetInput {
                    system_name: "asset".into(),
                    common_name: "asset.example".into(),
                    ip_address: Some("192.0.2.1".into()),
                    ..AssetInput::default()
                };
                let url = http_url(&c.url, &sample);
                match reqwest::Url::parse(&url) {
                    Ok(u)
                        if (u.scheme() == "https" || u.scheme() == "http")
                            && u.host().is_some() => {}
                    _ => {
                        return bad(
                            "url is an http(s) URL (with {ip_address}, {system_name}, {common_name})",
                        );
                    }
                }
                if c.url.len() > 4096 {
                    return bad("url is up to 4096 characters");
                }
                if let Some(h) = &c.auth_header
                    && reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err()
                {
                    return bad("auth_header is an HTTP header name");
                }
                match secret {
                    Some(s)
                        if !s.is_empty() && s.len() <= 4096 && !s.chars().any(char::is_control) =>
                    {
                        Ok(())
                    }
                    _ => bad(
                        "an http executor needs a secret (1 to 4096 characters, no control characters): it signs every request",
                    ),
                }
            }
        }
    }

    /// Whether a `rollback` step is defined.
    pub(crate) fn has_rollback(&self) -> bool {
        match self {
            ExecutorSpec::Command(c) => c.rollback,
            ExecutorSpec::Ssh(c) => c.commands.rollback.is_some(),
            ExecutorSpec::Http(c) => c.rollback,
        }
    }
}

/// What one step sends the host.
pub(crate) struct StepInput<'a> {
    pub(crate) step: &'a str,
    pub(crate) asset: &'a AssetInput,
    pub(crate) certificate: Option<&'a str>,
    pub(crate) chain: Option<&'a str>,
    /// The private key shedu made (`key_mode = server`), for `install` only.
    pub(crate) key: Option<&'a str>,
}

/// Runs one step within `budget`; its stdout, or why it failed. `secret` is the executor's opened secret;
/// `http` is the webhook client (`http` executors).
pub(crate) async fn run_step(
    spec: &ExecutorSpec,
    secret: Option<&str>,
    http: &crate::WebhookClient,
    input: &StepInput<'_>,
    budget: Duration,
) -> Result<String, String> {
    match spec {
        ExecutorSpec::Command(c) => command_step(c, input, budget).await,
        ExecutorSpec::Http(c) => {
            let secret = secret.ok_or("the http executor has no secret")?;
            tokio::time::timeout(budget, http_step(c, secret, http, input, budget))
                .await
                .map_err(|_| format!("step {} did not finish in time", input.step))?
        }
        ExecutorSpec::Ssh(c) => {
            let key = secret.ok_or("the ssh executor has no private key")?;
            tokio::time::timeout(budget, ssh_step(c, key, input))
                .await
                .map_err(|_| format!("step {} did not finish in time", input.step))?
        }
    }
}

/// Checks the server's key against the pin during the key exchange; remembers what it saw.
struct Pinned {
    pin: String,
    seen: Arc<Mutex<Option<String>>>,
}

impl russh::client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            // A pin names a key, not a certificate authority.
            return Ok(false);
        };
        let seen = key.fingerprint(russh::keys::HashAlg::Sha256).to_string();
        let ok = seen == self.pin;
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(seen);
        }
        Ok(ok)
    }
}

async fn ssh_step(c: &SshSettings, key_pem: &str, input: &StepInput<'_>) -> Result<String, String> {
    let a = input.asset;
    let command = match input.step {
        "csr" => &c.commands.csr,
        "install" => &c.commands.install,
        "reload" => &c.commands.reload,
        "rollback" => c.commands.rollback.as_ref().ok_or("no rollback command")?,
        other => return Err(format!("no step {other}")),
    };
    let command = template(command, a);
    let host = a.ip_address.clone().unwrap_or_default();
    let port = c.port.unwrap_or(22);
    let seen = Arc::new(Mutex::new(None));
    let handler = Pinned {
        pin: c.host_key_fingerprint.clone(),
        seen: seen.clone(),
    };
    let config = Arc::new(russh::client::Config {
        inactivity_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    });
    let mut session = match russh::client::connect(config, (host.as_str(), port), handler).await {
        Ok(s) => s,
        Err(e) => {
            let seen = seen.lock().ok().and_then(|s| s.clone());
            return Err(match seen {
                Some(fp) if fp != c.host_key_fingerprint => format!(
                    "host key {fp} of {host}:{port} is not the pinned {}; refused before any command",
                    c.host_key_fingerprint
                ),
                _ => format!("ssh {host}:{port}: {e}"),
            });
        }
    };
    let key =
        russh::keys::decode_secret_key(key_pem, None).map_err(|e| format!("private key: {e}"))?;
    let hash = session
        .best_supported_rsa_hash()
        .await
        .map_err(|e| e.to_string())?
        .flatten();
    let auth = session
        .authenticate_publickey(
            c.user.clone(),
            russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await
        .map_err(|e| format!("ssh authentication: {e}"))?;
    if !auth.success() {
        return Err(format!(
            "ssh: {host}:{port} refused the key of user {}",
            c.user
        ));
    }
    let mut channel = session
        .channel_open_session()
        .await
        .map_err(|e| e.to_string())?;
    channel
        .exec(true, command.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    if input.step == "install" {
        // With key_mode = server, the key shedu made comes first (one PEM stream: key, certificate, chain).
        let body = zeroize::Zeroizing::new(format!(
            "{}{}{}",
            input.key.unwrap_or_default(),
            input.certificate.unwrap_or_default(),
            input.chain.unwrap_or_default()
        ));
        channel
            .data(body.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    channel.eof().await.map_err(|e| e.to_string())?;
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), None);
    while let Some(msg) = channel.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
            russh::ChannelMsg::ExtendedData { data, .. } => err.extend_from_slice(&data),
            russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
        if out.len() + err.len() > MAX_OUTPUT {
            return Err(format!("answer larger than {MAX_OUTPUT} bytes"));
        }
    }
    let _ = session
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    match status {
        Some(0) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Some(code) => Err(format!(
            "exit status {code}: {}",
            String::from_utf8_lossy(&err).trim()
        )),
        None => Err("the command ended without an exit status".into()),
    }
}

/// Fills `{common_name}`, `{system_name}` and `{sans}` with shell-quoted values.
fn template(command: &str, a: &AssetInput) -> String {
    let sans = a
        .subject_alternative_name
        .iter()
        .map(|s| quote(s))
        .collect::<Vec<_>>()
        .join(" ");
    command
        .replace("{common_name}", &quote(&a.common_name))
        .replace("{system_name}", &quote(&a.system_name))
        .replace("{sans}", &sans)
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The `url` with the asset's `{ip_address}` (bracketed when IPv6), `{system_name}` and `{common_name}`:
/// each checked on input to hold only name or address characters.
fn http_url(url: &str, a: &AssetInput) -> String {
    let address = a.ip_address.clone().unwrap_or_default();
    let address = if address.contains(':') {
        format!("[{address}]")
    } else {
        address
    };
    url.replace("{ip_address}", &address)
        .replace("{system_name}", &a.system_name)
        .replace("{common_name}", &a.common_name)
}

async fn http_step(
    c: &HttpSettings,
    secret: &str,
    http: &crate::WebhookClient,
    input: &StepInput<'_>,
    budget: Duration,
) -> Result<String, String> {
    let url = http_url(&c.url, input.asset);
    let body = zeroize::Zeroizing::new(step_document(input).to_string().into_bytes());
    let mut req = http
        .post(&url)?
        .timeout(budget)
        .header("Content-Type", "application/json")
        .header("X-Shedu-Signature", crate::signature(secret, &body))
        .header("X-Shedu-Step", input.step);
    if let Some(h) = &c.auth_header {
        let mut value = reqwest::header::HeaderValue::from_str(secret)
            .map_err(|_| "the secret cannot be a header value")?;
        value.set_sensitive(true);
        req = req.header(h.as_str(), value);
    }
    let res = req
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", e.without_url()))?;
    let status = res.status();
    let text = crate::webhook::read_capped(res, MAX_OUTPUT)
        .await
        .map_err(|e| format!("POST {url}: the answer: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    if status.is_success() {
        Ok(text.into_owned())
    } else {
        Err(format!(
            "POST {url}: HTTP {}: {}",
            status.as_u16(),
            text.chars().take(512).collect::<String>().trim()
        ))
    }
}

/// The JSON document a step sends: the step, the asset, and for `install` the certificate, chain and (with
/// `key_mode = server`) the key.
fn step_document(input: &StepInput<'_>) -> serde_json::Value {
    let a = input.asset;
    serde_json::json!({
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
        "key": input.key,
    })
}

async fn command_step(
    c: &CommandSettings,
    input: &StepInput<'_>,
    budget: Duration,
) -> Result<String, String> {
    let doc = step_document(input);
    let mut child = tokio::process::Command::new(&c.program)
        .args(&c.args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: at the timeout, what it started (a vendor CLI under a wrapper script,
        // a `sleep`) is killed with it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", c.program))?;
    let group = child.id();
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let work = async {
        let body = zeroize::Zeroizing::new(doc.to_string());
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
    match tokio::time::timeout(budget, work).await {
        Ok(done) => done,
        Err(_) => {
            // Only on a timeout: a step that ended may leave a service it started running (a reload).
            if let Some(pid) = group.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.start_kill();
            Err(format!(
                "step {} still running after {:.1} s; killed (its process group)",
                input.step,
                budget.as_secs_f64()
            ))
        }
    }
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
