//! The operator's side of the enrolment protocols: `shedu acme eab` (External Account Binding keys of an
//! RA's ACME directory) and `shedu connector` (pairing tokens and revocation by fingerprint, Kyma-style).

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::ClientArgs;
use super::api::Api;
use super::output::{emit, emit_doc, key_values, show_rows, text};

/// `shedu acme …`
#[derive(Debug, Subcommand)]
pub(crate) enum AcmeCommand {
    /// External Account Binding keys: what an ACME client needs to register when the RA requires EAB.
    Eab {
        #[command(subcommand)]
        command: EabCommand,
    },
}

/// `shedu acme eab …`
#[derive(Debug, Subcommand)]
pub(crate) enum EabCommand {
    /// Make a key for one client: the HMAC key is shown in this answer only (`-q`: `KID HMAC`).
    Create {
        /// The RA's id.
        #[arg(long)]
        ra: String,
    },
    /// List the RA's keys and the account each one bound (never the HMAC keys).
    List {
        /// The RA's id.
        #[arg(long)]
        ra: String,
    },
    /// Delete a key (an account it already bound stays).
    Delete {
        /// The RA's id.
        #[arg(long)]
        ra: String,
        /// The key id.
        kid: String,
    },
}

/// Runs `shedu acme …`.
pub(crate) async fn run_acme(args: ClientArgs, command: AcmeCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let AcmeCommand::Eab { command } = command;
    match command {
        EabCommand::Create { ra } => {
            let key = api
                .post(&["api", "v1", "ras", &ra, "acme", "eab"], &json!({}))
                .await?;
            if args.output.is_document() {
                return emit_doc(args.output, &key);
            }
            if args.quiet {
                return emit(&format!(
                    "{} {}\n",
                    text(&key, "kid"),
                    text(&key, "hmac_key")
                ));
            }
            emit(&key_values(&[
                ("Key id", text(&key, "kid")),
                ("HMAC key", text(&key, "hmac_key")),
            ]))?;
            eprintln!(
                "The HMAC key is not shown again; give both to the ACME client (--eab --kid --hmac)."
            );
            Ok(())
        }
        EabCommand::List { ra } => {
            let list = api
                .get(&["api", "v1", "ras", &ra, "acme", "eab"], &[])
                .await?;
            let columns = [
                ("KID", "kid"),
                ("CREATED", "created_at"),
                ("ACCOUNT", "account_id"),
            ];
            show_rows(&list, args.output, args.quiet, "kid", &columns)
        }
        EabCommand::Delete { ra, kid } => {
            api.delete(&["api", "v1", "ras", &ra, "acme", "eab", &kid])
                .await?;
            if !args.quiet {
                eprintln!("deleted EAB key {kid}");
            }
            Ok(())
        }
    }
}

/// Who a connector token or revocation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConnectorKind {
    /// An external application (Kyma's Application flow).
    Applications,
    /// A whole runtime (a cluster).
    Runtimes,
}

impl ConnectorKind {
    fn segment(self) -> &'static str {
        match self {
            ConnectorKind::Applications => "applications",
            ConnectorKind::Runtimes => "runtimes",
        }
    }
}

/// The connector's base path on the server, and `shedu connector …`.
#[derive(Debug, Args)]
pub(crate) struct ConnectorArgs {
    /// The connector's base path (the server's `--connector-base`).
    #[arg(long, default_value = "/connector", global = true)]
    base: String,
    #[command(subcommand)]
    command: ConnectorCommand,
}

/// `shedu connector …`
#[derive(Debug, Subcommand)]
pub(crate) enum ConnectorCommand {
    /// Issue a one-time pairing token: prints the token and the URL the client starts from (`-q`: the
    /// URL only).
    Token(ConnectorTokenArgs),
    /// Revoke a connector certificate by the SHA-256 fingerprint of its DER.
    Revoke {
        /// Applications or runtimes.
        #[arg(long, value_enum, default_value = "applications")]
        kind: ConnectorKind,
        /// The certificate's SHA-256 fingerprint (hex, any case, colons allowed).
        #[arg(long)]
        fingerprint: String,
    },
}

/// Options of `shedu connector token`.
#[derive(Debug, Args)]
pub(crate) struct ConnectorTokenArgs {
    /// The application's name (an application token).
    #[arg(long, required_unless_present = "runtime", conflicts_with = "runtime")]
    application: Option<String>,
    /// The runtime's id (a runtime token).
    #[arg(long)]
    runtime: Option<String>,
    /// The client's group.
    #[arg(long)]
    group: Option<String>,
    /// The client's tenant.
    #[arg(long)]
    tenant: Option<String>,
}

/// The base path as URL segments (`/connector` → `["connector"]`).
fn base_segments(base: &str) -> Vec<&str> {
    base.split('/').filter(|s| !s.is_empty()).collect()
}

/// Runs `shedu connector …`.
pub(crate) async fn run_connector(args: ClientArgs, c: ConnectorArgs) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let mut path = base_segments(&c.base);
    path.push("v1");
    match c.command {
        ConnectorCommand::Token(t) => {
            let (kind, name_header, name) = match (&t.application, &t.runtime) {
                (Some(app), _) => (ConnectorKind::Applications, "Application", app),
                (None, Some(rt)) => (ConnectorKind::Runtimes, "RuntimeID", rt),
                (None, None) => anyhow::bail!("give --application or --runtime"),
            };
            let mut headers = vec![(name_header, name.as_str())];
            if let Some(g) = &t.group {
                headers.push(("Group", g));
            }
            if let Some(tenant) = &t.tenant {
                headers.push(("Tenant", tenant));
            }
            path.extend([kind.segment(), "tokens"]);
            let answer = api.post_with_headers(&path, &headers, None::<&()>).await?;
            if args.output.is_document() {
                return emit_doc(args.output, &answer);
            }
            if args.quiet {
                return emit(&format!("{}\n", text(&answer, "url")));
            }
            emit(&key_values(&[
                ("Token", text(&answer, "token")),
                ("URL", text(&answer, "url")),
            ]))
        }
        ConnectorCommand::Revoke { kind, fingerprint } => {
            let hash = fingerprint.replace(':', "");
            path.extend([kind.segment(), "certificates", "revocations"]);
            api.post(&path, &json!({ "hash": hash })).await?;
            if !args.quiet {
                eprintln!("revoked the certificate with SHA-256 {hash}");
            }
            Ok(())
        }
    }
}
