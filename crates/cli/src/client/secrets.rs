//! `shedu secrets issue-token-files`: EdgeX's file fallback for platforms without the token socket. For
//! each `[[secrets.clients]]` entry of a serve configuration file, a token is made through the API
//! (`POST /v1/auth/token/create`, an orphan with the entry's policies, TTL and period; the caller must be an
//! admin of the platform) and written as `<out>/<service>/secrets-token.json`: the token-create answer,
//! the format EdgeX services read. The file is 0600 and the folder 0700, both owned by the entry's uid, so
//! only that service (and root) can read its token.
//!
//! `shedu secrets get|put|list` read and write the KV store (mount `secret`) through the same API, with the
//! caller's platform credentials (an admin is root on the secret store).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::ClientArgs;
use super::api::Api;
use super::output::{OutputFormat, emit, emit_doc};

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
    /// Print a secret's data (JSON) from the mount `secret`.
    Get {
        /// The path under the mount (`app/db`).
        path: String,
        /// A version other than the current one.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Write a new version of a secret: `KEY=VALUE` pairs, or a JSON object from `--file` (`-` for stdin,
    /// which keeps values out of the process list).
    Put {
        /// The path under the mount (`app/db`).
        path: String,
        /// `KEY=VALUE` pairs.
        pairs: Vec<String>,
        /// A JSON object file (`-`: stdin) instead of pairs.
        #[arg(long, conflicts_with = "pairs")]
        file: Option<PathBuf>,
    },
    /// List the keys under a folder (`app/`); folders end with `/`.
    List {
        /// The folder; the mount's root when left out.
        #[arg(default_value = "")]
        prefix: String,
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
        SecretsCommand::Get { path, version } => {
            let query = [(
                "version",
                version.map(|v| v.to_string()).unwrap_or_default(),
            )];
            let answer = api.get(&kv_path("data", &path), &query).await?;
            // The secret's data as a document: YAML when asked, else JSON (a table would not fit values).
            let format = match args.output {
                OutputFormat::Yaml => OutputFormat::Yaml,
                _ => OutputFormat::Json,
            };
            emit_doc(format, &answer["data"]["data"])
        }
        SecretsCommand::Put { path, pairs, file } => {
            let data = match file {
                Some(file) => {
                    let text = if file.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
                    } else {
                        std::fs::read_to_string(&file)
                            .with_context(|| format!("cannot read {}", file.display()))?
                    };
                    serde_json::from_str::<Map<String, Value>>(&text)
                        .context("the file must hold a JSON object")?
                }
                None => {
                    let mut data = Map::new();
                    for pair in &pairs {
                        let (k, v) = pair
                            .split_once('=')
                            .with_context(|| format!("{pair:?} is not KEY=VALUE"))?;
                        data.insert(k.to_string(), Value::String(v.to_string()));
                    }
                    if data.is_empty() {
                        anyhow::bail!("give KEY=VALUE pairs or --file");
                    }
                    data
                }
            };
            let answer = api
                .post(&kv_path("data", &path), &json!({ "data": data }))
                .await?;
            emit(&format!("{path}: version {}\n", answer["data"]["version"]))
        }
        SecretsCommand::List { prefix } => {
            let answer = api
                .get(&kv_path("metadata", &prefix), &[("list", "true".into())])
                .await?;
            let keys = answer["data"]["keys"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let lines: String = keys
                .iter()
                .filter_map(Value::as_str)
                .map(|k| format!("{k}\n"))
                .collect();
            emit(&lines)
        }
    }
}

/// `v1/secret/<op>/<path…>` as URL segments (each escaped by the client).
fn kv_path<'a>(op: &'a str, path: &'a str) -> Vec<&'a str> {
    let mut segments = vec!["v1", "secret", op];
    segments.extend(path.split('/'));
    segments
}
