//! `shedu asset …` and `shedu rotation …`: the agentless-rotation inventory (add, import from CSV, list
//! and search, show, update, delete, scan, rotate now) and the runs, routes and executors
//! (docs/rotation.md). Flags are named after the API's fields; an executor's settings are the JSON object
//! the API takes, and its secret (an SSH private key) is read from a file, never the command line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::ClientArgs;
use super::api::{Api, HttpError};
use super::bulk::{self, Item, Outcome, Words};
use super::output::{emit, emit_doc, key_values, show_rows, text};

/// `shedu asset …`
#[derive(Debug, Subcommand)]
pub(crate) enum AssetCommand {
    /// Add an asset (due at once while its expiry is unknown: scan it first).
    Add(AddAsset),
    /// Add assets from a CSV file whose header names the API's fields: `system_name` and `common_name`
    /// (required), `ip_address`, `port`, `subject_alternative_name` (names separated by `;`),
    /// `data_center`, `host_platform`, `os_version`, `device_model`, `origin`, `certificate_validation`
    /// (`true`/`false`), `ca_id`, `labels` (`key=value;key=value`). Assets already in the inventory are
    /// skipped, so an interrupted import is finished by running it again.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
    },
    /// List and search assets.
    List(ListAssets),
    /// Change some of an asset's fields (those given; the others stay).
    Update(UpdateAsset),
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
    /// Where the asset's record came from (a CMDB's name, say).
    #[arg(long)]
    origin: Option<String>,
    /// Check the served certificate's chain when scanning.
    #[arg(long)]
    certificate_validation: bool,
    /// The CA to issue from (the route's when unset).
    #[arg(long)]
    ca: Option<String>,
    /// Labels, `key=value`, repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
}

/// `shedu asset update`: only the fields given are sent (`PATCH`).
#[derive(Debug, clap::Args)]
pub(crate) struct UpdateAsset {
    /// The asset's system name.
    name: String,
    #[arg(long)]
    common_name: Option<String>,
    /// The address to connect to.
    #[arg(long)]
    address: Option<String>,
    #[arg(long)]
    port: Option<u16>,
    /// The names the certificate must cover, comma-separated (replacing the old).
    #[arg(long, value_delimiter = ',')]
    san: Option<Vec<String>>,
    #[arg(long)]
    host_platform: Option<String>,
    #[arg(long)]
    os_version: Option<String>,
    #[arg(long)]
    device_model: Option<String>,
    #[arg(long)]
    data_center: Option<String>,
    #[arg(long)]
    origin: Option<String>,
    /// `true` or `false`.
    #[arg(long)]
    certificate_validation: Option<bool>,
    /// The CA to issue from.
    #[arg(long)]
    ca: Option<String>,
    /// Labels, `key=value`, repeatable (replacing the old).
    #[arg(long = "label")]
    labels: Option<Vec<String>>,
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
    /// Add, show or delete a route.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Add, show or delete an executor.
    #[command(subcommand)]
    Executor(ExecutorCommand),
}

/// `shedu rotation route …`
#[derive(Debug, Subcommand)]
pub(crate) enum RouteCommand {
    /// Add a route (after the last unless --position is given; the lowest position that matches wins).
    Create(CreateRoute),
    /// Delete a route.
    Delete {
        /// Route id.
        id: String,
    },
}

/// `shedu rotation route create`
#[derive(Debug, clap::Args)]
pub(crate) struct CreateRoute {
    /// Executor id or name.
    #[arg(long)]
    executor: String,
    /// The CA to issue from.
    #[arg(long)]
    ca: String,
    #[arg(long)]
    position: Option<i64>,
    /// Match assets of this host platform.
    #[arg(long)]
    match_host_platform: Option<String>,
    /// Match OS versions by glob (`*`, `?`, `[0-9]`).
    #[arg(long)]
    match_os_version: Option<String>,
    /// Match one of these device models (repeatable).
    #[arg(long)]
    match_device_model: Vec<String>,
    /// Match assets with this label, `key=value` (repeatable; all must match).
    #[arg(long)]
    match_label: Vec<String>,
    #[arg(long)]
    validity_days: Option<u32>,
    /// [server default: 30]
    #[arg(long)]
    renew_before_days: Option<u32>,
    /// `on_device` (the asset makes its key) [server default: on_device].
    #[arg(long)]
    key_mode: Option<String>,
    #[arg(long)]
    key_type: Option<String>,
}

/// `shedu rotation executor …`
#[derive(Debug, Subcommand)]
pub(crate) enum ExecutorCommand {
    /// Add an executor.
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// `command` (a local program) or `ssh`.
        #[arg(long)]
        kind: String,
        /// Its settings, the JSON object the API takes (`{"program": "/abs/path"}` for `command`); `@FILE`
        /// reads it from a file.
        #[arg(long)]
        settings: String,
        /// A file holding its secret (the SSH private key), sealed by the server and never shown again.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Show one executor (never its secret).
    Show {
        /// Executor id.
        id: String,
    },
    /// Delete an executor.
    Delete {
        /// Executor id.
        id: String,
    },
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
            let body = json!({
                "system_name": a.name, "common_name": a.common_name, "ip_address": a.address,
                "port": a.port, "subject_alternative_name": a.san, "host_platform": a.host_platform,
                "os_version": a.os_version, "device_model": a.device_model,
                "data_center": a.data_center, "origin": a.origin,
                "certificate_validation": a.certificate_validation, "ca_id": a.ca,
                "labels": labels(&a.labels)?,
            });
            api.post(&["api", "v1", "assets"], &body).await?
        }
        AssetCommand::Import { file, parallel } => {
            return import_assets(&api, &file, parallel).await;
        }
        AssetCommand::Update(u) => {
            let labels = u.labels.as_deref().map(labels).transpose()?;
            let fields = [
                ("common_name", u.common_name.map(Value::from)),
                ("ip_address", u.address.map(Value::from)),
                ("port", u.port.map(Value::from)),
                ("subject_alternative_name", u.san.map(Value::from)),
                ("host_platform", u.host_platform.map(Value::from)),
                ("os_version", u.os_version.map(Value::from)),
                ("device_model", u.device_model.map(Value::from)),
                ("data_center", u.data_center.map(Value::from)),
                ("origin", u.origin.map(Value::from)),
                (
                    "certificate_validation",
                    u.certificate_validation.map(Value::from),
                ),
                ("ca_id", u.ca.map(Value::from)),
                ("labels", labels.map(Value::Object)),
            ];
            let body: Map<String, Value> = fields
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?)))
                .collect();
            api.patch(&["api", "v1", "assets", &u.name], &Value::Object(body))
                .await?
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
    if args.quiet && !args.output.is_document() {
        return emit(&format!("{}\n", text(&answer, "system_name")));
    }
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
        RotationCommand::Route(RouteCommand::Create(r)) => {
            let mut matcher = Map::new();
            if let Some(p) = r.match_host_platform {
                matcher.insert("host_platform".into(), p.into());
            }
            if let Some(v) = r.match_os_version {
                matcher.insert("os_version".into(), v.into());
            }
            matcher.insert("device_model".into(), r.match_device_model.into());
            matcher.insert("labels".into(), Value::Object(labels(&r.match_label)?));
            let mut body = json!({
                "executor_id": r.executor, "ca_id": r.ca, "match": matcher,
            });
            let optional = [
                ("position", r.position.map(Value::from)),
                ("validity_days", r.validity_days.map(Value::from)),
                ("renew_before_days", r.renew_before_days.map(Value::from)),
                ("key_mode", r.key_mode.map(Value::from)),
                ("key_type", r.key_type.map(Value::from)),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    body[k] = v;
                }
            }
            let route = api.post(&["api", "v1", "rotation-routes"], &body).await?;
            show_created(&args, &route)
        }
        RotationCommand::Route(RouteCommand::Delete { id }) => {
            api.delete(&["api", "v1", "rotation-routes", &id]).await?;
            if !args.quiet {
                eprintln!("route {id} deleted");
            }
            Ok(())
        }
        RotationCommand::Executor(ExecutorCommand::Create {
            name,
            kind,
            settings,
            secret_file,
        }) => {
            let mut body =
                json!({"name": name, "kind": kind, "settings": settings_object(&settings)?});
            if let Some(path) = secret_file {
                let secret = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read the secret file {}", path.display()))?;
                body["secret"] = Value::String(secret);
            }
            let executor = api
                .post(&["api", "v1", "rotation-executors"], &body)
                .await?;
            show_created(&args, &executor)
        }
        RotationCommand::Executor(ExecutorCommand::Show { id }) => {
            let executor = api
                .get(&["api", "v1", "rotation-executors", &id], &[])
                .await?;
            show_object(&args, &executor)
        }
        RotationCommand::Executor(ExecutorCommand::Delete { id }) => {
            api.delete(&["api", "v1", "rotation-executors", &id])
                .await?;
            if !args.quiet {
                eprintln!("executor {id} deleted");
            }
            Ok(())
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

/// `key=value` labels as a JSON object of strings.
fn labels<S: AsRef<str>>(pairs: &[S]) -> anyhow::Result<Map<String, Value>> {
    pairs
        .iter()
        .map(|l| {
            let l = l.as_ref();
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("label {l:?}: expected key=value"))?;
            Ok((k.to_string(), Value::String(v.to_string())))
        })
        .collect()
}

/// Parses the asset import file: one asset per record, cells named after the API's fields.
fn read_assets(file: &Path) -> anyhow::Result<Vec<Item>> {
    bulk::read_csv(file, &["system_name", "common_name"], |row| {
        let port = row
            .cell("port")
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| format!("port {p:?} is not a port number"))
            })
            .transpose()?;
        let validation = match row.cell("certificate_validation") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "certificate_validation {other:?} is not true or false"
                ));
            }
        };
        let labels = labels(&row.list("labels")).map_err(|e| e.to_string())?;
        Ok(json!({
            "system_name": row.required("system_name")?, "common_name": row.required("common_name")?,
            "ip_address": row.cell("ip_address"), "port": port,
            "subject_alternative_name": row.list("subject_alternative_name"),
            "data_center": row.cell("data_center"), "host_platform": row.cell("host_platform"),
            "os_version": row.cell("os_version"), "device_model": row.cell("device_model"),
            "origin": row.cell("origin"), "certificate_validation": validation,
            "ca_id": row.cell("ca_id"), "labels": labels,
        }))
    })
}

/// `asset import`: every row sent (at most `parallel` at once) and counted; an asset already in the
/// inventory (409 `asset-exists`) counts as done, so a second run after an interruption finishes the job.
async fn import_assets(api: &Api, file: &Path, parallel: usize) -> anyhow::Result<()> {
    let words = Words {
        items: "assets",
        done: "added",
    };
    bulk::import(read_assets(file)?, &words, parallel, |body| async move {
        match api.post(&["api", "v1", "assets"], &body).await {
            Ok(_) => Outcome::Done,
            Err(e) => match e.downcast_ref::<HttpError>() {
                Some(h) if h.is("asset-exists") => Outcome::AlreadyThere,
                _ => Outcome::Failed(e.to_string()),
            },
        }
    })
    .await
}

/// `--settings`: a JSON object, given inline or as `@FILE`.
fn settings_object(text: &str) -> anyhow::Result<Value> {
    let (text, from) = match text.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
            path,
        ),
        None => (text.to_string(), "--settings"),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => anyhow::bail!("{from} is not a JSON object"),
    }
}

/// A created route or executor: its id alone with `-q`, else the whole object.
fn show_created(args: &ClientArgs, v: &Value) -> anyhow::Result<()> {
    if args.quiet && !args.output.is_document() {
        return emit(&format!("{}\n", text(v, "id")));
    }
    show_object(args, v)
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
