//! The secret store's options: `--secrets-socket` and `--secrets-max-versions` (or `SHEDU_SECRETS_*`), and
//! a `[secrets]` table in the TOML file with the same keys plus the token socket's allow-list:
//!
//! ```toml
//! [secrets]
//! socket = "/run/shedu/secrets.sock"
//!
//! [[secrets.clients]]
//! service = "app-service"
//! uid = 1000
//! exe = "/usr/local/bin/app-service"
//! exe_sha256 = "9f86d0…"          # optional: pin the executable's content too
//! policies = ["app-service"]
//! ttl = "1h"
//! period = "1h"                    # optional: renewable indefinitely, one period at a time
//! ```
//!
//! resolved into `shedu_core::SecretsConfig` and the socket's path.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use shedu_core::{SecretClient, SecretsConfig};

use super::parse_duration;

/// The secret store (Vault KV v2 subset) and its token socket.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SecretsArgs {
    /// Unix socket (created with mode 0660) where allow-listed processes get tokens
    /// (`POST /v1/token`). [default: none]
    #[arg(long = "secrets-socket", env = "SHEDU_SECRETS_SOCKET")]
    pub socket: Option<PathBuf>,

    /// Versions kept per secret path unless its metadata says otherwise. [default: 10]
    #[arg(long = "secrets-max-versions", env = "SHEDU_SECRETS_MAX_VERSIONS")]
    pub max_versions: Option<i64>,

    /// The token socket's allow-list (`[[secrets.clients]]`, file only).
    #[arg(skip)]
    pub clients: Vec<ClientArgs>,
}

/// One `[[secrets.clients]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientArgs {
    service: String,
    uid: u32,
    exe: PathBuf,
    exe_sha256: Option<String>,
    #[serde(default)]
    policies: Vec<String>,
    ttl: Option<String>,
    period: Option<String>,
}

impl SecretsArgs {
    /// Flags and environment over the file's `[secrets]` table, over the defaults: the store's settings
    /// and the socket's path.
    pub(crate) fn resolve(
        self,
        file: SecretsArgs,
    ) -> anyhow::Result<(SecretsConfig, Option<PathBuf>)> {
        let d = SecretsConfig::default();
        let max_versions = self
            .max_versions
            .or(file.max_versions)
            .unwrap_or(d.max_versions);
        if !(1..=1000).contains(&max_versions) {
            bail!("--secrets-max-versions must be 1 to 1000");
        }
        let mut clients = Vec::new();
        for c in self.clients.into_iter().chain(file.clients) {
            clients.push(c.resolve()?);
        }
        Ok((
            SecretsConfig {
                max_versions,
                clients,
                ..d
            },
            self.socket.or(file.socket),
        ))
    }
}

impl ClientArgs {
    fn resolve(self) -> anyhow::Result<SecretClient> {
        let what = format!("[[secrets.clients]] {:?}", self.service);
        if !self.exe.is_absolute() {
            bail!("{what}: exe must be an absolute path");
        }
        let exe_sha256 = match &self.exe_sha256 {
            None => None,
            Some(text) => {
                let bytes = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .with_context(|| format!("{what}: exe_sha256 must be 64 hex digits"))?;
                Some(bytes)
            }
        };
        let secs = |text: &Option<String>, name: &str| -> anyhow::Result<i64> {
            match text {
                None => Ok(0),
                Some(t) => {
                    let d = parse_duration(t).with_context(|| format!("{what}: {name}"))?;
                    i64::try_from(d.as_secs()).with_context(|| format!("{what}: {name}"))
                }
            }
        };
        Ok(SecretClient {
            ttl: secs(&self.ttl, "ttl")?,
            period: secs(&self.period, "period")?,
            service: self.service,
            uid: self.uid,
            exe: self.exe,
            exe_sha256,
            policies: self.policies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_from_the_file() {
        let file: SecretsArgs = toml::from_str(
            r#"
            socket = "/run/shedu/secrets.sock"
            [[clients]]
            service = "svc"
            uid = 1000
            exe = "/usr/bin/svc"
            exe_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            policies = ["svc"]
            ttl = "1h"
            "#,
        )
        .unwrap();
        let (config, socket) = SecretsArgs::default().resolve(file).unwrap();
        assert_eq!(socket, Some(PathBuf::from("/run/shedu/secrets.sock")));
        assert_eq!(config.clients[0].ttl, 3600);
        assert_eq!(config.clients[0].exe_sha256.unwrap()[0], 0x9f);
        assert_eq!(config.max_versions, 10);
        let bad: SecretsArgs =
            toml::from_str("[[clients]]\nservice = \"s\"\nuid = 1\nexe = \"rel/svc\"\n").unwrap();
        assert!(SecretsArgs::default().resolve(bad).is_err());
    }
}
