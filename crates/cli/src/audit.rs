//! `shedu audit verify`: walk the audit log's chain in the database and name the first record that breaks
//! it, and hold it to the checkpoints kept outside the table so that a cut tail shows. It opens the store
//! and the master key from the same data folder, database URL and key options as `serve`, and only reads,
//! so it may run beside a live server.
//!
//! Exit status: 0 the log is intact; 1 it was tampered with (a record edited, removed or recomputed, the
//! tail cut, a checkpoint forged, the audit key removed); 2 it could not be checked (no database, the wrong
//! master key, an unreadable checkpoint, or a chain that was never keyed).

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use shedu_core::{AuditFinding, AuditVerdict, CHECKPOINT_FILE, Checkpoint, hex32};
use shedu_keys::Keystore;
use shedu_store::{Store, redact_url};

use crate::config::ServeArgs;

/// `shedu audit …`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check that no audit record was changed, removed or reordered and that the tail was not cut (exit
    /// status 1 if one was, 2 if the log could not be checked).
    Verify(Box<VerifyArgs>),
    /// List audit records over the API, newest first.
    List(Box<AuditList>),
}

/// `audit list`: where the server is, and the filters.
#[derive(Debug, Args)]
pub(crate) struct AuditList {
    #[command(flatten)]
    client: crate::client::ClientArgs,
    #[command(flatten)]
    filters: crate::client::AuditListArgs,
}

/// Options of `verify`: where the database and the master key are, as for `serve`, and the checkpoints.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// The checkpoint file the server appends to [default: <data-dir>/audit-checkpoints; when that file
    /// does not exist, no checkpoint is used].
    #[arg(long)]
    checkpoint_file: Option<PathBuf>,
    /// A checkpoint copied from the server's log or an `audit.checkpoint` event, as `<seq>:<head hex>`:
    /// the chain must reach record `seq` with that value. May be repeated.
    #[arg(long, value_name = "SEQ:HEX", value_parser = parse_checkpoint)]
    checkpoint: Vec<(i64, Vec<u8>)>,
}

/// The error context that makes `shedu audit verify` exit with status 2: the log could not be checked.
#[derive(Debug)]
pub(crate) struct CannotVerify;

impl fmt::Display for CannotVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot verify the audit log")
    }
}

pub(crate) async fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify(args) => verify(*args).await,
        AuditCommand::List(list) => {
            let AuditList { client, filters } = *list;
            crate::client::run_audit_list(client, filters).await
        }
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let (finding, checkpoints) = check(args).await.context(CannotVerify)?;
    match finding {
        AuditFinding::Chain {
            verdict: AuditVerdict::Intact { records, legacy },
            keyed,
            checkpoint,
        } => {
            if !keyed && records > 0 {
                return Err(anyhow::anyhow!(
                    "the database has no audit key: its {records} records are chained with plain SHA-256, \
                     which anyone who can write the database can recompute; start `shedu serve` once to key \
                     the chain"
                )
                .context(CannotVerify));
            }
            let held = match checkpoint {
                Some(seq) => format!(
                    "consistent with {} checkpoint(s), the newest at record {seq}",
                    checkpoints
                ),
                None => "no checkpoint given, so a cut tail cannot be seen".to_string(),
            };
            println!(
                "audit chain OK: {records} records ({legacy} legacy SHA-256, {} keyed); {held}",
                records - legacy
            );
            Ok(())
        }
        AuditFinding::Chain {
            verdict: AuditVerdict::Broken { seq, id, reason },
            ..
        } => bail!("audit chain broken at record {seq} ({id}): {reason}"),
        AuditFinding::Chain {
            verdict: AuditVerdict::Truncated { head, checkpoint },
            ..
        } => bail!(
            "audit chain truncated: it ends at record {head}, but a checkpoint records record {checkpoint}: \
             the newest records were removed"
        ),
        AuditFinding::ForgedCheckpoint { index } => bail!(
            "audit checkpoint {index} is not authenticated by this database's audit key: the key was replaced \
             or the checkpoint forged"
        ),
        AuditFinding::KeyMissing => bail!(
            "the database has no audit key, yet checkpoints of its keyed chain exist: the key was removed"
        ),
    }
}

/// Opens the store and the audit key and walks the chain; returns the finding and how many checkpoints
/// it was held to. Every error here means the log could not be checked.
async fn check(args: VerifyArgs) -> anyhow::Result<(AuditFinding, usize)> {
    let s = args.serve.resolve()?;
    let (file, explicit) = match args.checkpoint_file {
        Some(path) => (path, true),
        None => (s.data_dir.join(CHECKPOINT_FILE), false),
    };
    let checkpoints = read_checkpoints(&file, explicit)?;
    let (master, source) = crate::serve::load_master_key(&s, false)?;
    let store = Store::connect(&s.database_url, &shedu_core::EVENT_WORDS)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&s.database_url)))?;
    let result = async {
        shedu_core::load_audit_key(&store, &Keystore::new(&master)?)
            .await
            .with_context(|| format!("master key from {source}"))?;
        shedu_core::verify_audit_log(&store, &checkpoints, &args.checkpoint)
            .await
            .context("cannot read the audit log")
    }
    .await;
    store.close().await;
    let count = checkpoints.len() + args.checkpoint.len();
    Ok((result?, count))
}

/// The checkpoints in `file`, one a line (blank lines skipped). A missing file is no checkpoint unless it
/// was named explicitly.
fn read_checkpoints(file: &std::path::Path, explicit: bool) -> anyhow::Result<Vec<Checkpoint>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the checkpoint file {}", file.display()));
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            line.parse::<Checkpoint>()
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", file.display(), i + 1))
        })
        .collect()
}

/// `<seq>:<64 hex digits>`.
fn parse_checkpoint(text: &str) -> Result<(i64, Vec<u8>), String> {
    let form = || format!("expected <seq>:<64 hex digits>, got {text:?}");
    let (seq, head) = text.split_once(':').ok_or_else(form)?;
    let seq = seq
        .parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(form)?;
    Ok((seq, hex32(head).ok_or_else(form)?))
}
