//! `shedu audit verify`: walk the audit log's hash chain in the database and name the first record that
//! breaks it. It opens the store from the same data folder or database URL options as `serve` and only reads
//! the log, so it may run beside a live server.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use shedu_core::AuditVerdict;
use shedu_store::{Store, redact_url};

use crate::config::ServeArgs;

/// `shedu audit …`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check that no audit record was changed, removed or reordered (exit status 1 if one was).
    Verify(VerifyArgs),
}

/// Options of `verify`: where the database is, as for `serve`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    serve: ServeArgs,
}

pub(crate) async fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify(args) => verify(args).await,
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let s = args.serve.resolve()?;
    let store = Store::connect(&s.database_url, &shedu_core::EVENT_WORDS)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&s.database_url)))?;
    let verdict = store.verify_audit_chain().await;
    store.close().await;
    match verdict.context("cannot read the audit log")? {
        AuditVerdict::Intact { records } => {
            println!("audit chain OK: {records} records");
            Ok(())
        }
        AuditVerdict::Broken { seq, id, reason } => {
            bail!("audit chain broken at record {seq} ({id}): {reason}")
        }
    }
}
