//! `shedu secrets issue-token-files`: EdgeX's file fallback for platforms without the token socket. For
//! each `[[secrets.clients]]` entry of a serve configuration file, a token is made through the API
//! (`POST /v1/auth/token/create`, an orphan with the entry's policies, TTL and period; the caller must be an
//! admin of the platform) and written as `<out>/<service>/secrets-token.json`: the token-create answer,
//! the format EdgeX services read. The file is 0600 and the folder 0700, both owned by the entry's uid, so
//! only that service (and root) can read its token.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::ClientArgs;
use super::api::Api;

/// `shedu secrets …`
#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Write a token file per `[[secrets.clients]]` entry (EdgeX's `secrets-token.json`).
    IssueTokenFiles {
        /// The serve configuration file holding the `[[secrets.clients]]` entries.
        #[arg(long)]
        config: PathBuf,
        /// The folder the `<service>/secrets-token.json` files go to.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs a `shedu secrets` command.
pub(crate) async fn run_secrets(args: ClientArgs, cmd: SecretsCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    match cmd {
        SecretsCommand::IssueTokenFiles { config, out } => {
            let clients = crate::config::secrets_clients(&config)?;
            if clients.is_empty() {
                anyhow::bail!("{} has no [[secrets.clients]] entry", config.display());
            }
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            for c in clients {
                let positive = |secs: i64| (secs > 0).then_some(secs);
                let answer = api
                    .post(
                        &["v1", "auth", "token", "create"],
                        &json!({
                            "policies": c.policies,
                            "ttl": positive(c.ttl),
                            "period": positive(c.period),
                            "display_name": c.service,
                            "no_parent": true,
                        }),
                    )
                    .await
                    .with_context(|| format!("token for {}", c.service))?;
                let dir = out.join(&c.service);
                shedu_keys::make_private_dir(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                // Written aside and renamed over, so a reader never sees half a file and a second run
                // replaces the token.
                let file = dir.join("secrets-token.json");
                let staged = dir.join(".secrets-token.json.new");
                let _ = std::fs::remove_file(&staged);
                let text = serde_json::to_string_pretty(&answer)?;
                shedu_keys::write_secret_file(&staged, text.as_bytes())
                    .with_context(|| format!("cannot write {}", staged.display()))?;
                for path in [&dir, &staged] {
                    std::os::unix::fs::chown(path, Some(c.uid), None).with_context(|| {
                        format!("cannot give {} to uid {}", path.display(), c.uid)
                    })?;
                }
                std::fs::rename(&staged, &file)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                println!("{}", file.display());
            }
            Ok(())
        }
    }
}
