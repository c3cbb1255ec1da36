//! `shedu user …` and `shedu api-key …`: the gateway's local users and API keys. Users are named by user
//! name or id; passwords are asked on the terminal without echo (or read from standard input with
//! `--password-stdin`), never taken as arguments, which other users of the machine could read.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::ClientArgs;
use super::api::Api;
use super::login::read_secret;
use super::output::{OutputFormat, emit, emit_doc, items, key_values, required, show_list, text};

/// `shedu user …`
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a local user (admin only).
    Create {
        /// User name: 1 to 64 characters, no spaces.
        name: String,
        /// `admin`, `operator` or `auditor`.
        #[arg(long)]
        role: String,
        /// Read the password from standard input instead of asking on the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Change your own password (asks for the current one, then the new one).
    Passwd {
        /// Read both passwords from standard input, one line each.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: no login, and their sessions and API keys are refused at once.
    Disable {
        /// User name or id.
        user: String,
    },
    /// Enable a disabled user.
    Enable {
        /// User name or id.
        user: String,
    },
    /// Change a user's role (their sessions end).
    Role {
        /// User name or id.
        user: String,
        /// `admin`, `operator` or `auditor`.
        role: String,
    },
    /// Delete a user.
    Delete {
        /// User name or id.
        user: String,
    },
}

/// `shedu api-key …`
#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCommand {
    /// Create an API key; its secret is shown once.
    Create {
        /// A name for the key.
        name: String,
        /// `admin`, `operator` or `auditor`.
        #[arg(long)]
        role: String,
        /// Days until it expires (1 to 3650). [default: never]
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Write the secret to this new file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List API keys (never their secrets).
    List,
    /// Revoke an API key.
    Revoke {
        /// The key's id.
        id: String,
    },
}

/// A user's id from its name or id.
async fn user_id(api: &Api, user: &str) -> anyhow::Result<String> {
    let users = api.get(&["api", "v1", "users"], &[]).await?;
    items(&users)?
        .iter()
        .find(|u| u["username"] == user || u["id"] == user)
        .map(|u| required(u, "id").map(str::to_string))
        .transpose()?
        .with_context(|| format!("no user named {user:?}"))
}

fn show_user(user: &Value, args: &ClientArgs) -> anyhow::Result<()> {
    match args.output {
        f @ (OutputFormat::Json | OutputFormat::Yaml) => emit_doc(f, user),
        OutputFormat::Table if args.quiet => emit(&format!("{}\n", text(user, "id"))),
        OutputFormat::Table => emit(&key_values(&[
            ("ID", text(user, "id")),
            ("User", text(user, "username")),
            ("Role", text(user, "role")),
            ("Disabled", text(user, "disabled")),
            ("Created", text(user, "created_at")),
        ])),
    }
}

/// Runs one `shedu user …` command.
pub(crate) async fn run_user(args: ClientArgs, cmd: UserCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    match cmd {
        UserCommand::Create {
            name,
            role,
            password_stdin,
        } => {
            let password = read_secret("Password", password_stdin)?;
            let body = json!({"username": name, "password": *password, "role": role});
            let user = api.post(&["api", "v1", "users"], &body).await?;
            show_user(&user, &args)
        }
        UserCommand::List => {
            let list = api.get(&["api", "v1", "users"], &[]).await?;
            let columns = [
                ("ID", "id"),
                ("USER", "username"),
                ("ROLE", "role"),
                ("DISABLED", "disabled"),
                ("CREATED", "created_at"),
            ];
            show_list(&list, args.output, args.quiet, &columns)
        }
        UserCommand::Passwd { password_stdin } => {
            let current = read_secret("Current password", password_stdin)?;
            let new = read_secret("New password", password_stdin)?;
            if !password_stdin && *read_secret("New password again", false)? != *new {
                bail!("the new passwords differ; nothing changed");
            }
            let body = json!({"current_password": *current, "new_password": *new});
            api.post(&["api", "v1", "users", "me", "password"], &body)
                .await?;
            eprintln!("password changed; your other sessions have ended (log in again there)");
            Ok(())
        }
        UserCommand::Disable { user } => {
            let id = user_id(&api, &user).await?;
            let user = api
                .post(&["api", "v1", "users", &id, "disable"], &json!({}))
                .await?;
            show_user(&user, &args)
        }
        UserCommand::Enable { user } => {
            let id = user_id(&api, &user).await?;
            let user = api
                .post(&["api", "v1", "users", &id, "enable"], &json!({}))
                .await?;
            show_user(&user, &args)
        }
        UserCommand::Role { user, role } => {
            let id = user_id(&api, &user).await?;
            let user = api
                .put(&["api", "v1", "users", &id, "role"], &json!({"role": role}))
                .await?;
            show_user(&user, &args)
        }
        UserCommand::Delete { user } => {
            let id = user_id(&api, &user).await?;
            api.delete(&["api", "v1", "users", &id]).await?;
            eprintln!("user {} deleted", super::output::printable(&user));
            Ok(())
        }
    }
}

/// Runs one `shedu api-key …` command.
pub(crate) async fn run_api_key(args: ClientArgs, cmd: ApiKeyCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    match cmd {
        ApiKeyCommand::Create {
            name,
            role,
            expires_in_days,
            out,
        } => {
            let mut body = json!({"name": name, "role": role});
            if let Some(days) = expires_in_days {
                body["expires_in_days"] = json!(days);
            }
            let key = api.post(&["api", "v1", "api-keys"], &body).await?;
            let secret = required(&key, "key")?;
            match &out {
                Some(path) => {
                    // A new file only: never overwrite (and so never widen) an existing one.
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path)
                        .and_then(|mut f| f.write_all(format!("{secret}\n").as_bytes()))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("API key {} written to {}", text(&key, "id"), path.display());
                }
                None => eprintln!("the key's secret is shown once: keep it now"),
            }
            match (args.output, &out) {
                (f @ (OutputFormat::Json | OutputFormat::Yaml), _) => emit_doc(f, &key),
                (OutputFormat::Table, Some(_)) => emit(&format!("{}\n", text(&key, "id"))),
                (OutputFormat::Table, None) if args.quiet => emit(&format!("{secret}\n")),
                (OutputFormat::Table, None) => emit(&key_values(&[
                    ("ID", text(&key, "id")),
                    ("Name", text(&key, "name")),
                    ("Role", text(&key, "role")),
                    ("Expires", text(&key, "expires_at")),
                    ("Key", secret.to_string()),
                ])),
            }
        }
        ApiKeyCommand::List => {
            let list = api.get(&["api", "v1", "api-keys"], &[]).await?;
            let columns = [
                ("ID", "id"),
                ("NAME", "name"),
                ("ROLE", "role"),
                ("CREATED BY", "created_by"),
                ("EXPIRES", "expires_at"),
                ("REVOKED", "revoked_at"),
            ];
            show_list(&list, args.output, args.quiet, &columns)
        }
        ApiKeyCommand::Revoke { id } => {
            api.delete(&["api", "v1", "api-keys", &id]).await?;
            eprintln!("API key {} revoked", super::output::printable(&id));
            Ok(())
        }
    }
}
