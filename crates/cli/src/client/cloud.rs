//! `shedu cloud …`: cloud connectors (AWS IoT Core) and their sync state. A connector's settings are a JSON
//! document (the API's own shape, `--file`, `-` for standard input), which keeps the secret access key out
//! of the command line (and so out of `ps` and the shell history).

use std::path::PathBuf;

use clap::Subcommand;

use super::ClientArgs;
use super::api::Api;
use super::devices::{read_json, show_one};
use super::output::{printable, show_rows};

/// `shedu cloud …`
#[derive(Debug, Subcommand)]
pub(crate) enum CloudCommand {
    /// Create a connector from its settings (JSON, as `POST /api/v1/cloud-connectors` takes it).
    Create {
        /// The settings document, with the credentials; `-` reads standard input.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// List connectors.
    List,
    /// Show one connector (never its credentials).
    Show {
        /// Connector id.
        id: String,
    },
    /// Replace a connector's settings (without `credentials`, the stored ones stay).
    Update {
        /// Connector id.
        id: String,
        /// The settings document; `-` reads standard input.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Delete a connector and its sync state (nothing changes in the cloud, unless `--deregister`).
    Delete {
        /// Connector id.
        id: String,
        /// First take back from the cloud what the connector registered (certificates, then CAs); the
        /// connector goes when that is done (`shedu cloud state` shows the progress).
        #[arg(long)]
        deregister: bool,
    },
    /// Catch up with every valid certificate of the connector's CAs again (creating a connector or
    /// binding a CA does this on its own; idempotent).
    Backfill {
        /// Connector id.
        id: String,
    },
    /// The sync state of each bound CA and each of their certificates.
    State {
        /// Connector id.
        id: String,
        /// Only `ca` or `certificate` items.
        #[arg(long)]
        kind: Option<String>,
        /// Only `pending`, `synced` or `failed` items.
        #[arg(long)]
        state: Option<String>,
    },
}

const FIELDS: [(&str, &str); 11] = [
    ("ID", "id"),
    ("Name", "name"),
    ("Type", "type"),
    ("Region", "region"),
    ("Endpoint", "endpoint_url"),
    ("CAs", "ca_ids"),
    ("Policy", "policy_name"),
    ("Thing group", "thing_group"),
    ("Register things", "register_things"),
    ("CA mode", "ca_mode"),
    ("Deregistering", "deregistering"),
];

/// Runs one `shedu cloud …` command.
pub(crate) async fn run_cloud(args: ClientArgs, cmd: CloudCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let base = ["api", "v1", "cloud-connectors"];
    match cmd {
        CloudCommand::Create { file } => {
            let c = api.post(&base, &read_json(&file)?).await?;
            show_one(&c, &args, &FIELDS)
        }
        CloudCommand::List => {
            let list = api.get(&base, &[]).await?;
            let columns = [
                ("ID", "id"),
                ("NAME", "name"),
                ("TYPE", "type"),
                ("REGION", "region"),
                ("CAS", "ca_ids"),
            ];
            show_rows(&list, args.output, args.quiet, "id", &columns)
        }
        CloudCommand::Show { id } => {
            let c = api.get(&[base[0], base[1], base[2], &id], &[]).await?;
            show_one(&c, &args, &FIELDS)
        }
        CloudCommand::Update { id, file } => {
            let c = api
                .put(&[base[0], base[1], base[2], &id], &read_json(&file)?)
                .await?;
            show_one(&c, &args, &FIELDS)
        }
        CloudCommand::Delete { id, deregister } => {
            let path = [base[0], base[1], base[2], &id];
            if deregister {
                api.delete_with_query(&path, &[("deregister", "true")])
                    .await?;
                eprintln!(
                    "cloud connector {} is taking back what it registered; it goes when done",
                    printable(&id)
                );
            } else {
                api.delete(&path).await?;
                eprintln!("cloud connector {} deleted", printable(&id));
            }
            Ok(())
        }
        CloudCommand::Backfill { id } => {
            api.post(
                &[base[0], base[1], base[2], &id, "backfill"],
                &serde_json::json!({}),
            )
            .await?;
            eprintln!(
                "cloud connector {} catches up with its CAs' certificates",
                printable(&id)
            );
            Ok(())
        }
        CloudCommand::State { id, kind, state } => {
            let mut query = Vec::new();
            if let Some(k) = kind {
                query.push(("kind", k));
            }
            if let Some(s) = state {
                query.push(("state", s));
            }
            let list = api
                .get(&[base[0], base[1], base[2], &id, "state"], &query)
                .await?;
            let columns = [
                ("KIND", "kind"),
                ("CA", "ca_id"),
                ("SERIAL", "serial"),
                ("DESIRED", "desired"),
                ("STATE", "state"),
                ("ATTEMPTS", "attempts"),
                ("RETRY AT", "retry_at"),
                ("ERROR", "error"),
            ];
            show_rows(&list, args.output, args.quiet, "serial", &columns)
        }
    }
}
