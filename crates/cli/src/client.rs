//! The client commands (`shedu ca …`, `shedu cert …`): HTTPS calls to a running server.

use clap::{Args, Subcommand};

/// How to reach the server.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// Server base URL.
    #[arg(
        long,
        env = "SHEDU_URL",
        default_value = "https://127.0.0.1:8443",
        global = true
    )]
    pub url: String,
}

/// `shedu ca …`
#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// List CAs.
    List,
}

/// `shedu cert …`
#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// List certificates.
    List,
}

pub(crate) async fn run_ca(_args: ClientArgs, _cmd: CaCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub(crate) async fn run_cert(_args: ClientArgs, _cmd: CertCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
