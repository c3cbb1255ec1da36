//! `shedu login`, `shedu logout` and `shedu context …`: saving where a platform is and how to prove who we
//! are there, so that later commands need no flags (see [`super::context`] for the file).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::api::{Api, read_token_file, session_from};
use super::context::{Context, Contexts, DEFAULT_CONTEXT, check_name};
use super::output::{OutputFormat, emit, emit_doc, printable, table};

/// Options of `shedu login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// Server base URL. [default: the context's URL]
    #[arg(long, env = "SHEDU_URL")]
    url: Option<String>,
    /// PEM CA certificate(s) to trust for the server's TLS (saved in the context).
    #[arg(long, env = "SHEDU_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// The context to save, created or replaced. [default: the current one, else `default`]
    #[arg(long, env = "SHEDU_CONTEXT")]
    context: Option<String>,
    /// User name. [default: asked on the terminal]
    #[arg(long, short)]
    username: Option<String>,
    /// Read the password from the first line of standard input instead of asking on the terminal.
    #[arg(long)]
    password_stdin: bool,
    /// Use the bearer token in this file (an API key) instead of a user's login; the file is read at
    /// each command, so replacing it rotates the key.
    #[arg(long, conflicts_with_all = ["username", "password_stdin"])]
    token_file: Option<PathBuf>,
    /// Log in at the platform's OpenID Connect provider with the device-code flow (RFC 8628): approve
    /// the code shown in a browser on any machine. Needs --oidc-issuer and --oidc-client-id.
    #[arg(
        long,
        conflicts_with_all = ["username", "password_stdin", "token_file"],
        requires_all = ["oidc_issuer", "oidc_client_id"]
    )]
    oidc: bool,
    /// The provider's issuer URL (its discovery document is `<issuer>/.well-known/openid-configuration`).
    #[arg(long, env = "SHEDU_OIDC_ISSUER", requires = "oidc")]
    oidc_issuer: Option<String>,
    /// The public client registered at the provider for the CLI (device flow, no secret).
    #[arg(long, env = "SHEDU_OIDC_CLIENT_ID", requires = "oidc")]
    oidc_client_id: Option<String>,
    /// Scopes to ask for (`offline_access` brings the refresh token).
    #[arg(
        long,
        default_value = "openid profile offline_access",
        requires = "oidc"
    )]
    oidc_scope: String,
    /// Which of the provider's tokens to present to shedu: its `aud` must be the audience shedu is
    /// configured with.
    #[arg(long, value_enum, default_value_t = super::oidc::TokenKind::Id, requires = "oidc")]
    oidc_token: super::oidc::TokenKind,
}

/// Options of `shedu logout`.
#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    /// The context to log out of. [default: the current one]
    #[arg(long, env = "SHEDU_CONTEXT")]
    context: Option<String>,
}

/// `shedu context …`
#[derive(Debug, Subcommand)]
pub(crate) enum ContextCommand {
    /// Save a context (a server and how to trust it) without logging in.
    Add {
        /// The context's name.
        name: String,
        /// Server base URL.
        #[arg(long)]
        url: String,
        /// PEM CA certificate(s) to trust for the server's TLS.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// A file holding a bearer token (an API key) for this context.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Make a context the current one.
    Use {
        /// The context's name.
        name: String,
    },
    /// List the saved contexts; `*` marks the current one.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Forget a context and its session.
    Remove {
        /// The context's name.
        name: String,
    },
}

/// A path as the context stores it: absolute, so commands run from any folder find the file.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("cannot find {}", path.display()))
}

/// One line of standard input, without its line ending.
pub(crate) fn stdin_line(what: &str) -> anyhow::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    if trimmed.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(trimmed)
}

/// A password: the next line of standard input with `from_stdin`, else asked on the terminal as `prompt`
/// without echo.
pub(crate) fn read_secret(prompt: &str, from_stdin: bool) -> anyhow::Result<Zeroizing<String>> {
    if from_stdin {
        return stdin_line(&prompt.to_lowercase());
    }
    let secret = rpassword::prompt_password(format!("{prompt}: "))
        .context("cannot ask for a password on a terminal (use --password-stdin in scripts)")?;
    Ok(Zeroizing::new(secret))
}

/// Runs `shedu login`.
pub(crate) async fn run_login(args: LoginArgs) -> anyhow::Result<()> {
    let mut contexts = Contexts::load()?;
    let name = args
        .context
        .clone()
        .or_else(|| contexts.current.clone())
        .unwrap_or_else(|| DEFAULT_CONTEXT.to_string());
    check_name(&name)?;
    let existing = contexts.contexts.get(&name).cloned().unwrap_or_default();
    let url = match (&args.url, existing.url.is_empty()) {
        (Some(u), _) => u.clone(),
        (None, false) => existing.url.clone(),
        (None, true) => bail!("--url is needed: context {name:?} does not exist yet"),
    };
    let ca_file = match &args.ca_file {
        Some(p) => Some(absolute(p)?),
        None => existing.ca_file.clone(),
    };
    let api = Api::anonymous(&url, ca_file.clone())?;
    let mut context = Context {
        url: api.base(),
        ca_file,
        token_file: None,
        session: None,
    };
    let who = if args.oidc {
        let (Some(issuer), Some(client_id)) = (&args.oidc_issuer, &args.oidc_client_id) else {
            bail!("--oidc needs --oidc-issuer and --oidc-client-id");
        };
        let mut session =
            super::oidc::device_login(issuer, client_id, &args.oidc_scope, args.oidc_token).await?;
        // Checked before it is saved: a platform that does not trust this provider should say so now.
        let me = api
            .get_with_token(&["api", "v1", "auth", "whoami"], &session.token)
            .await
            .context("the platform did not accept the identity provider's token")?;
        session.user = me["name"].as_str().unwrap_or("?").to_string();
        let who = session.user.clone();
        context.session = Some(session);
        who
    } else if let Some(file) = &args.token_file {
        // Checked before it is saved: a wrong key should fail now, not at the next command.
        let file = absolute(file)?;
        let token = read_token_file(&file)?;
        let me = api
            .get_with_token(&["api", "v1", "auth", "whoami"], &token)
            .await?;
        context.token_file = Some(file);
        me["name"].as_str().unwrap_or("?").to_string()
    } else {
        let username = match &args.username {
            Some(u) => u.clone(),
            None if args.password_stdin => bail!("--password-stdin needs --username"),
            None => {
                eprint!("Username: ");
                stdin_line("user name")?.to_string()
            }
        };
        let password = read_secret("Password", args.password_stdin)?;
        let body = json!({ "username": username, "password": *password });
        let answer = api.post(&["api", "v1", "auth", "login"], &body).await?;
        context.session = Some(session_from(&username, &answer)?);
        username
    };
    let url = context.url.clone();
    contexts.contexts.insert(name.clone(), context);
    contexts.current = Some(name.clone());
    contexts.save()?;
    emit(&format!(
        "Logged in to {} as {} (context {})\n",
        printable(&url),
        printable(&who),
        printable(&name)
    ))
}

/// Runs `shedu logout`: the context keeps its URL and CA file, and loses its credentials.
pub(crate) async fn run_logout(args: LogoutArgs) -> anyhow::Result<()> {
    let mut contexts = Contexts::load()?;
    let Some((name, _)) = contexts.pick(args.context.as_deref())? else {
        bail!("no current context to log out of");
    };
    if let Some(c) = contexts.contexts.get_mut(&name) {
        c.session = None;
        c.token_file = None;
    }
    contexts.save()?;
    emit(&format!("Logged out of context {}\n", printable(&name)))
}

/// Runs one `shedu context …` command.
pub(crate) async fn run_context(cmd: ContextCommand) -> anyhow::Result<()> {
    let mut contexts = Contexts::load()?;
    match cmd {
        ContextCommand::Add {
            name,
            url,
            ca_file,
            token_file,
        } => {
            check_name(&name)?;
            // Parsed the way commands will use it, so a typo fails here.
            let api = Api::anonymous(&url, None)?;
            let context = Context {
                url: api.base(),
                ca_file: ca_file.as_deref().map(absolute).transpose()?,
                token_file: token_file.as_deref().map(absolute).transpose()?,
                session: None,
            };
            contexts.contexts.insert(name.clone(), context);
            if contexts.current.is_none() {
                contexts.current = Some(name.clone());
            }
            contexts.save()?;
            emit(&format!("Context {} saved\n", printable(&name)))
        }
        ContextCommand::Use { name } => {
            if !contexts.contexts.contains_key(&name) {
                bail!("no context named {name:?} (see `shedu context list`)");
            }
            contexts.current = Some(name.clone());
            contexts.save()?;
            emit(&format!("Now using context {}\n", printable(&name)))
        }
        ContextCommand::Remove { name } => {
            if contexts.contexts.remove(&name).is_none() {
                bail!("no context named {name:?}");
            }
            if contexts.current.as_deref() == Some(name.as_str()) {
                contexts.current = None;
            }
            contexts.save()?;
            emit(&format!("Context {} removed\n", printable(&name)))
        }
        ContextCommand::List { output } => {
            let listed: Vec<Value> = contexts
                .contexts
                .iter()
                .map(|(name, c)| {
                    let auth = match (&c.session, &c.token_file) {
                        (Some(s), _) => format!("user {}", s.user),
                        (None, Some(f)) => format!("token file {}", f.display()),
                        (None, None) => String::new(),
                    };
                    json!({
                        "current": contexts.current.as_deref() == Some(name.as_str()),
                        "name": name,
                        "url": c.url,
                        "ca_file": c.ca_file,
                        "auth": auth,
                    })
                })
                .collect();
            match output {
                f @ (OutputFormat::Json | OutputFormat::Yaml) => emit_doc(f, &Value::Array(listed)),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = listed
                        .iter()
                        .map(|c| {
                            let mark = if c["current"] == true { "*" } else { "" };
                            vec![
                                mark.to_string(),
                                super::output::text(c, "name"),
                                super::output::text(c, "url"),
                                super::output::text(c, "auth"),
                            ]
                        })
                        .collect();
                    emit(&table(&["CURRENT", "NAME", "URL", "AUTH"], &rows))
                }
            }
        }
    }
}
