//! `shedu asset …` and `shedu rotation …`: the agentless-rotation inventory (add, list and search, show,
//! delete, scan, rotate now) and the runs, routes and executors (docs/rotation.md). Executors and routes
//! are created through the API (`/api/v1/rotation-executors`, `/api/v1/rotation-routes`): their settings
//! are JSON documents.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::ClientArgs;
use super::api::Api;
use super::output::{emit, emit_doc, key_values, show_rows, text};

/// `shedu asset …`
#[derive(Debug, Subcommand)]
pub(crate) enum AssetCommand {
    /// Add an asset (due at once while its expiry is unknown: scan it first).
    Add(AddAsset),
    /// List and search assets.
    List(ListAssets),
    /// One asset with its computed fields.
    Show {
        /// The asset's system name.
        name: String,
    },
    /// Delete an asset.
    Delete {
        /// The asset's system name.
        name: String,
    },
    /// Read the certificate the host serves and record its expiry and fingerprint.
    Scan {
        /// The asset's system name.
        name: String,
    },
    /// Rotate the asset's certificate now (prints the run id; follow it with `shedu rotation run`).
    Rotate {
        /// The asset's system name.
        name: String,
    },
}

/// `shedu asset add`
#[derive(Debug, clap::Args)]
pub(crate) struct AddAsset {
    /// Unique name.
    name: String,
    /// The certificate's common name.
    #[arg(long)]
    common_name: String,
    /// The address to connect to (IP address or host name).
    #[arg(long)]
    address: String,
    /// TLS port. [default: 443]
    #[arg(long)]
    port: Option<u16>,
    /// More names the certificate must cover, comma-separated.
    #[arg(long, value_delimiter = ',')]
    san: Vec<String>,
    #[arg(long)]
    host_platform: Option<String>,
    #[arg(long)]
    os_version: Option<String>,
    #[arg(long)]
    device_model: Option<String>,
    #[arg(long)]
    data_center: Option<String>,
    /// The CA to issue from (the route's when unset).
    #[arg(long)]
    ca: Option<String>,
    /// Labels, `key=value`, repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
}

/// `shedu asset list`
#[derive(Debug, clap::Args)]
pub(crate) struct ListAssets {
    #[arg(long)]
    host_platform: Option<String>,
    #[arg(long)]
    os_version: Option<String>,
    #[arg(long)]
    data_center: Option<String>,
    /// `key=value`.
    #[arg(long)]
    label: Option<String>,
    /// `no_route` or `failed`.
    #[arg(long)]
    skip_reason: Option<String>,
    /// Expiring within this many days.
    #[arg(long)]
    days_until_expiration: Option<i64>,
    /// Page size (1 to 1000).
    #[arg(long)]
    limit: Option<i64>,
    /// The next_cursor of the previous page.
    #[arg(long)]
    cursor: Option<String>,
}

/// `shedu rotation …`
#[derive(Debug, Subcommand)]
pub(crate) enum RotationCommand {
    /// Runs, newest first (`--state queued` shows the queue).
    Runs {
        /// `queued`, `running`, `succeeded`, `failed` or `rolled_back`.
        #[arg(long)]
        state: Option<String>,
        /// Of one asset.
        #[arg(long)]
        asset: Option<String>,
    },
    /// One run with its step log.
    Run {
        /// The run id.
        id: String,
    },
    /// Routes in match order.
    Routes,
    /// Executors (never their secrets).
    Executors,
}

const ASSET_COLUMNS: [(&str, &str); 6] = [
    ("NAME", "system_name"),
    ("COMMON NAME", "common_name"),
    ("ADDRESS", "ip_address"),
    ("EXPIRES", "certificate_expiration"),
    ("NEXT ROTATION", "next_rotation_at"),
    ("SKIP", "skip_reason"),
];

/// Runs `shedu asset …`.
pub(crate) async fn run_asset(args: ClientArgs, command: AssetCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let answer = match command {
        AssetCommand::Add(a) => {
            let mut labels = Map::new();
            for l in &a.labels {
                let (k, v) = l
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--label {l:?}: expected key=value"))?;
                labels.insert(k.to_string(), Value::String(v.to_string()));
            }
            let body = json!({
                "system_name": a.name, "common_name": a.common_name, "ip_address": a.address,
                "port": a.port, "subject_alternative_name": a.san, "host_platform": a.host_platform,
                "os_version": a.os_version, "device_model": a.device_model,
                "data_center": a.data_center, "ca_id": a.ca, "labels": labels,
            });
            api.post(&["api", "v1", "assets"], &body).await?
        }
        AssetCommand::List(l) => {
            let days = l.days_until_expiration.map(|d| d.to_string());
            let limit = l.limit.map(|d| d.to_string());
            let query: Vec<(&str, String)> = [
                ("host_platform", l.host_platform),
                ("os_version", l.os_version),
                ("data_center", l.data_center),
                ("label", l.label),
                ("skip_reason", l.skip_reason),
                ("days_until_expiration", days),
                ("limit", limit),
                ("cursor", l.cursor),
            ]
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
            let page = api.get(&["api", "v1", "assets"], &query).await?;
            return show_rows(
                &page,
                args.output,
                args.quiet,
                "system_name",
                &ASSET_COLUMNS,
            );
        }
        AssetCommand::Show { name } => api.get(&["api", "v1", "assets", &name], &[]).await?,
        AssetCommand::Delete { name } => {
            api.delete(&["api", "v1", "assets", &name]).await?;
            if !args.quiet {
                eprintln!("asset {name} deleted");
            }
            return Ok(());
        }
        AssetCommand::Scan { name } => {
            api.post(&["api", "v1", "assets", &name, "scan"], &json!({}))
                .await?
        }
        AssetCommand::Rotate { name } => {
            let queued = api
                .post(&["api", "v1", "assets", &name, "rotate"], &json!({}))
                .await?;
            if args.output.is_document() {
                return emit_doc(args.output, &queued);
            }
            return emit(&format!("{}\n", text(&queued, "run_id")));
        }
    };
    show_object(&args, &answer)
}

/// Runs `shedu rotation …`.
pub(crate) async fn run_rotation(args: ClientArgs, command: RotationCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    match command {
        RotationCommand::Runs { state, asset } => {
            let query = [
                ("state", state.unwrap_or_default()),
                ("system_name", asset.unwrap_or_default()),
            ];
            let page = api.get(&["api", "v1", "rotation-runs"], &query).await?;
            show_rows(
                &page,
                args.output,
                args.quiet,
                "id",
                &[
                    ("RUN", "id"),
                    ("ASSET", "system_name"),
                    ("STATE", "state"),
                    ("TRIGGER", "trigger"),
                    ("SERIAL", "serial"),
                    ("CREATED", "created_at"),
                ],
            )
        }
        RotationCommand::Run { id } => {
            let run = api.get(&["api", "v1", "rotation-runs", &id], &[]).await?;
            if args.output.is_document() {
                return emit_doc(args.output, &run);
            }
            let mut out = key_values(&[
                ("Run", text(&run, "id")),
                ("Asset", text(&run, "system_name")),
                ("State", text(&run, "state")),
                ("Serial", text(&run, "serial")),
                ("Error", text(&run, "error")),
            ]);
            for step in run["steps"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{}  {:<8} {:<5} {}\n",
                    text(step, "time"),
                    text(step, "step"),
                    text(step, "outcome"),
                    text(step, "detail")
                ));
            }
            emit(&out)
        }
        RotationCommand::Routes => {
            let list = api.get(&["api", "v1", "rotation-routes"], &[]).await?;
            show_rows(
                &list,
                args.output,
                args.quiet,
                "id",
                &[
                    ("ROUTE", "id"),
                    ("POSITION", "position"),
                    ("EXECUTOR", "executor_id"),
                    ("CA", "ca_id"),
                    ("MATCH", "match"),
                ],
            )
        }
        RotationCommand::Executors => {
            let list = api.get(&["api", "v1", "rotation-executors"], &[]).await?;
            show_rows(
                &list,
                args.output,
                args.quiet,
                "id",
                &[
                    ("EXECUTOR", "id"),
                    ("NAME", "name"),
                    ("KIND", "kind"),
                    ("SECRET", "has_secret"),
                ],
            )
        }
    }
}

fn show_object(args: &ClientArgs, v: &Value) -> anyhow::Result<()> {
    if args.output.is_document() {
        return emit_doc(args.output, v);
    }
    let pairs: Vec<(&str, String)> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| (k.as_str(), text(v, k)))
        .collect();
    emit(&key_values(&pairs))
}
