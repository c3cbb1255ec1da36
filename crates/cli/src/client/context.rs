//! Named contexts, like kubectl's: where each platform the operator talks to is (URL, the CA file for its
//! TLS) and how to prove who they are there (a login session, or a token file such as an API key's).
//!
//! Kept in one JSON file, `<config dir>/config.json`, where the config dir is `$SHEDU_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/shedu`, else `~/.config/shedu`. The folder is 0700 and the file 0600 (it holds
//! session tokens); the file is replaced through a rename, so a crash never leaves half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// The context a fresh `shedu login` creates when none is named.
pub(crate) const DEFAULT_CONTEXT: &str = "default";

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Contexts {
    /// The context commands use when `--context` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One platform.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Context {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A file holding a bearer token (an API key), read at each command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// The session of `shedu login`, refreshed as it is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
}

/// A context, without its secrets (`Debug` must never print a token).
impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("url", &self.url)
            .field("ca_file", &self.ca_file)
            .field("token_file", &self.token_file)
            .field("user", &self.session.as_ref().map(|s| &s.user))
            .finish()
    }
}

/// A login session: the access token and the refresh token that renews it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Session {
    pub user: String,
    pub token: String,
    pub refresh_token: String,
    pub expires_at: String,
    /// Set when the session came from the identity provider (`shedu login --oidc`): it renews there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<super::oidc::OidcSession>,
}

/// The config folder (see the module documentation).
pub(crate) fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SHEDU_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("shedu"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("shedu")),
        None => bail!("no config folder: set SHEDU_CONFIG_DIR or HOME"),
    }
}

impl Contexts {
    fn path() -> anyhow::Result<PathBuf> {
        Ok(config_dir()?.join("config.json"))
    }

    /// The saved contexts; none when the file does not exist yet.
    pub(crate) fn load() -> anyhow::Result<Contexts> {
        let path = Contexts::path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a shedu config file", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contexts::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the contexts: a private file in a private folder, replaced atomically.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        let path = Contexts::path()?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self)?;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&text)?;
                f.sync_all()
            });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        Ok(())
    }

    /// The context `name` names, else the current one; `None` when there is neither (no error: commands
    /// then fall back to their flags and defaults). A `name` that does not exist is an error.
    pub(crate) fn pick(&self, name: Option<&str>) -> anyhow::Result<Option<(String, &Context)>> {
        match name {
            Some(n) => match self.contexts.get(n) {
                Some(c) => Ok(Some((n.to_string(), c))),
                None => bail!("no context named {n:?} (see `shedu context list`)"),
            },
            None => Ok(self
                .current
                .as_deref()
                .and_then(|n| self.contexts.get(n).map(|c| (n.to_string(), c)))),
        }
    }
}

/// Checks a context name: 1 to 64 printable characters without spaces, so it prints and types safely.
pub(crate) fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.chars().count() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_graphic() || c.is_alphanumeric())
    {
        bail!("a context name is 1 to 64 characters, without spaces or control characters");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test reports failure
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("prod-eu").is_ok());
        assert!(check_name("usine-Lyon_2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("x\u{1b}[2J").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn debug_never_shows_tokens() {
        let c = Context {
            url: "https://pki.example".into(),
            session: Some(Session {
                user: "ops".into(),
                token: "secret-access".into(),
                refresh_token: "secret-refresh".into(),
                expires_at: "2026-12-06T00:00:00Z".into(),
                oidc: None,
            }),
            ..Context::default()
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("ops") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
