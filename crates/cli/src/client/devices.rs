//! `shedu ra …`, `shedu device …` and `shedu group …`: registration authorities, the device registry and
//! device groups. An RA's settings are a JSON document (the API's own shape, `--file`); devices and groups
//! take flags named after the API's fields. `device import` registers devices from a CSV file with a
//! progress bar, keeps going past bad rows and reports them at the end.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::ClientArgs;
use super::api::{Api, HttpError};
use super::bulk::{self, Item, Outcome, Words};
use super::output::{OutputFormat, emit, emit_doc, key_values, printable, show_list, text};

/// `shedu ra …`
#[derive(Debug, Subcommand)]
pub(crate) enum RaCommand {
    /// Create an RA from its settings (JSON, as `POST /api/v1/ras` takes it).
    Create {
        /// The settings document; `-` reads standard input.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// List RAs.
    List,
    /// Show one RA with its settings.
    Show {
        /// RA id.
        id: String,
    },
    /// Replace an RA's settings (JSON, as `PUT /api/v1/ras/{id}` takes it).
    Update {
        /// RA id.
        id: String,
        /// The settings document; `-` reads standard input.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Delete an RA (refused while it still has devices).
    Delete {
        /// RA id.
        id: String,
    },
}

/// `shedu device …`
#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// Register a device before it enrols.
    Create {
        /// The id it enrols with (its CSR's common name).
        id: String,
        /// The RA it enrols through.
        #[arg(long)]
        ra: String,
        /// A friendly name.
        #[arg(long)]
        alias: Option<String>,
        /// A tag (repeat for several).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// A metadata entry `key=value` (repeat for several; values that parse as JSON numbers or
        /// booleans are kept as such).
        #[arg(long = "metadata", value_name = "KEY=VALUE")]
        metadata: Vec<String>,
    },
    /// List devices, newest first.
    List {
        /// Registered by this RA.
        #[arg(long)]
        ra: Option<String>,
        /// `pending_provisioning`, `fully_provisioned`, `requires_action`, `with_warnings` or
        /// `decommissioned`.
        #[arg(long)]
        status: Option<String>,
        /// Carrying this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Page size (1 to 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// The cursor printed after the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one device.
    Show {
        /// Device id.
        id: String,
    },
    /// Change a device's alias, tags or metadata.
    Update {
        /// Device id.
        id: String,
        /// The new alias (`""` clears it).
        #[arg(long)]
        alias: Option<String>,
        /// The new tags, replacing the old (repeat for several).
        #[arg(long = "tag")]
        tags: Option<Vec<String>>,
        /// The new metadata, replacing the old (repeat `key=value`).
        #[arg(long = "metadata", value_name = "KEY=VALUE")]
        metadata: Option<Vec<String>>,
    },
    /// Retire a device for good: its valid certificates are revoked.
    Decommission {
        /// Device id.
        id: String,
    },
    /// Set a one-time enrolment secret for the device (shown once).
    EnrollmentSecret {
        /// Device id.
        id: String,
    },
    /// Register devices from a CSV file with the header `id,ra_id,alias,tags,metadata` (tags separated
    /// by `;`, metadata a JSON object; only `id` and `ra_id` are required). Devices already registered
    /// are skipped, so an interrupted import can simply be run again.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
    },
}

/// `shedu group …`
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Create a device group: a saved filter (RA, status, tags, metadata), optionally nested.
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Nest under this group (its filter is ANDed with the ancestors').
        #[arg(long)]
        parent: Option<String>,
        /// Devices of this RA.
        #[arg(long)]
        ra: Option<String>,
        /// Devices in this status.
        #[arg(long)]
        status: Option<String>,
        /// Devices carrying this tag (repeat: all of them).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Devices whose metadata has `key=value` (repeat for several).
        #[arg(long = "metadata", value_name = "KEY=VALUE")]
        metadata: Vec<String>,
    },
    /// List device groups.
    List,
    /// Show a group with its combined filter and live counts by status.
    Show {
        /// Group id.
        id: String,
    },
    /// Delete a group (the devices stay).
    Delete {
        /// Group id.
        id: String,
    },
}

/// A JSON document from a file, or from standard input for `-`.
pub(crate) fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// `key=value` pairs as a JSON object; values that parse as JSON numbers or booleans keep that type.
fn metadata(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("metadata {pair:?} is not KEY=VALUE");
        };
        let typed = match serde_json::from_str::<Value>(value) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
            _ => Value::String(value.to_string()),
        };
        map.insert(key.to_string(), typed);
    }
    Ok(map)
}

pub(crate) fn show_one(
    v: &Value,
    args: &ClientArgs,
    fields: &[(&str, &str)],
) -> anyhow::Result<()> {
    match args.output {
        f @ (OutputFormat::Json | OutputFormat::Yaml) => emit_doc(f, v),
        OutputFormat::Table if args.quiet => emit(&format!("{}\n", text(v, "id"))),
        OutputFormat::Table => {
            let pairs: Vec<(&str, String)> = fields.iter().map(|(l, f)| (*l, text(v, f))).collect();
            emit(&key_values(&pairs))
        }
    }
}

const RA_FIELDS: [(&str, &str); 4] = [
    ("ID", "id"),
    ("Name", "name"),
    ("CAs", "ca_ids"),
    ("Created", "created_at"),
];

const DEVICE_FIELDS: [(&str, &str); 8] = [
    ("ID", "id"),
    ("RA", "ra_id"),
    ("Alias", "alias"),
    ("Status", "status"),
    ("Tags", "tags"),
    ("Metadata", "metadata"),
    ("Created", "created_at"),
    ("Updated", "updated_at"),
];

/// Runs one `shedu ra …` command.
pub(crate) async fn run_ra(args: ClientArgs, cmd: RaCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    match cmd {
        RaCommand::Create { file } => {
            let ra = api.post(&["api", "v1", "ras"], &read_json(&file)?).await?;
            show_one(&ra, &args, &RA_FIELDS)
        }
        RaCommand::List => {
            let list = api.get(&["api", "v1", "ras"], &[]).await?;
            let columns = [("ID", "id"), ("NAME", "name"), ("CAS", "ca_ids")];
            show_list(&list, args.output, args.quiet, &columns)
        }
        RaCommand::Show { id } => {
            let ra = api.get(&["api", "v1", "ras", &id], &[]).await?;
            if args.output == OutputFormat::Table && !args.quiet {
                // The settings are a document: printed whole, as JSON, under the summary.
                show_one(&ra, &args, &RA_FIELDS)?;
                let settings = serde_json::to_string_pretty(&ra["enrollment"])?;
                return emit(&format!("Enrollment:\n{}\n", printable_block(&settings)));
            }
            show_one(&ra, &args, &RA_FIELDS)
        }
        RaCommand::Update { id, file } => {
            let ra = api
                .put(&["api", "v1", "ras", &id], &read_json(&file)?)
                .await?;
            show_one(&ra, &args, &RA_FIELDS)
        }
        RaCommand::Delete { id } => {
            api.delete(&["api", "v1", "ras", &id]).await?;
            eprintln!("RA {} deleted", printable(&id));
            Ok(())
        }
    }
}

/// A multi-line text with control characters escaped but its line breaks kept.
fn printable_block(text: &str) -> String {
    text.lines().map(printable).collect::<Vec<_>>().join("\n")
}

/// Runs one `shedu device …` command.
pub(crate) async fn run_device(args: ClientArgs, cmd: DeviceCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    match cmd {
        DeviceCommand::Create {
            id,
            ra,
            alias,
            tags,
            metadata: pairs,
        } => {
            let body = json!({"id": id, "ra_id": ra, "alias": alias, "tags": tags,
                "metadata": metadata(&pairs)?});
            let device = api.post(&["api", "v1", "devices"], &body).await?;
            show_one(&device, &args, &DEVICE_FIELDS)
        }
        DeviceCommand::List {
            ra,
            status,
            tag,
            limit,
            cursor,
        } => {
            let query = [
                ("ra_id", ra.unwrap_or_default()),
                ("status", status.unwrap_or_default()),
                ("tag", tag.unwrap_or_default()),
                ("limit", limit.map(|l| l.to_string()).unwrap_or_default()),
                ("cursor", cursor.unwrap_or_default()),
            ];
            let list = api.get(&["api", "v1", "devices"], &query).await?;
            let columns = [
                ("ID", "id"),
                ("RA", "ra_id"),
                ("ALIAS", "alias"),
                ("STATUS", "status"),
                ("TAGS", "tags"),
            ];
            show_list(&list, args.output, args.quiet, &columns)?;
            if args.output == OutputFormat::Table
                && let Some(next) = list["next_cursor"].as_str()
            {
                eprintln!("more: --cursor {}", printable(next));
            }
            Ok(())
        }
        DeviceCommand::Show { id } => {
            let device = api.get(&["api", "v1", "devices", &id], &[]).await?;
            show_one(&device, &args, &DEVICE_FIELDS)
        }
        DeviceCommand::Update {
            id,
            alias,
            tags,
            metadata: pairs,
        } => {
            let mut body = Map::new();
            if let Some(alias) = alias {
                body.insert("alias".into(), json!(alias));
            }
            if let Some(tags) = tags {
                body.insert("tags".into(), json!(tags));
            }
            if let Some(pairs) = pairs {
                body.insert("metadata".into(), Value::Object(metadata(&pairs)?));
            }
            if body.is_empty() {
                bail!("nothing to change: give --alias, --tag or --metadata");
            }
            let device = api
                .patch(&["api", "v1", "devices", &id], &Value::Object(body))
                .await?;
            show_one(&device, &args, &DEVICE_FIELDS)
        }
        DeviceCommand::Decommission { id } => {
            let device = api
                .post(&["api", "v1", "devices", &id, "decommission"], &json!({}))
                .await?;
            show_one(&device, &args, &DEVICE_FIELDS)
        }
        DeviceCommand::EnrollmentSecret { id } => {
            let answer = api
                .post(
                    &["api", "v1", "devices", &id, "enrollment-secret"],
                    &json!({}),
                )
                .await?;
            if args.output.is_document() {
                return emit_doc(args.output, &answer);
            }
            eprintln!("the secret is shown once: give it to the device now");
            emit(&format!("{}\n", text(&answer, "secret")))
        }
        DeviceCommand::Import { file, parallel } => import(&api, &file, parallel.max(1)).await,
    }
}

/// Runs one `shedu group …` command.
pub(crate) async fn run_group(args: ClientArgs, cmd: GroupCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    match cmd {
        GroupCommand::Create {
            name,
            parent,
            ra,
            status,
            tags,
            metadata: pairs,
        } => {
            let body = json!({"name": name, "parent_id": parent, "ra_id": ra, "status": status,
                "tags": tags, "metadata": metadata(&pairs)?});
            let group = api.post(&["api", "v1", "device-groups"], &body).await?;
            show_one(&group, &args, &[("ID", "id"), ("Name", "name")])
        }
        GroupCommand::List => {
            let list = api.get(&["api", "v1", "device-groups"], &[]).await?;
            let columns = [("ID", "id"), ("NAME", "name"), ("PARENT", "parent_id")];
            show_list(&list, args.output, args.quiet, &columns)
        }
        GroupCommand::Show { id } => {
            let group = api.get(&["api", "v1", "device-groups", &id], &[]).await?;
            if args.output.is_document() || args.quiet {
                return show_one(&group, &args, &[]);
            }
            let counts = &group["counts"];
            emit(&key_values(&[
                ("ID", text(&group, "id")),
                ("Name", text(&group, "name")),
                ("Parent", text(&group, "parent_id")),
                ("Filter", printable(&group["combined_filter"].to_string())),
                ("Devices", text(counts, "total")),
                ("  pending", text(counts, "pending_provisioning")),
                ("  provisioned", text(counts, "fully_provisioned")),
                ("  action needed", text(counts, "requires_action")),
                ("  with warnings", text(counts, "with_warnings")),
                ("  decommissioned", text(counts, "decommissioned")),
            ]))
        }
        GroupCommand::Delete { id } => {
            api.delete(&["api", "v1", "device-groups", &id]).await?;
            eprintln!("group {} deleted", printable(&id));
            Ok(())
        }
    }
}

/// Parses the import file: a header naming the columns (in any order), then one device per record.
fn read_rows(file: &Path) -> anyhow::Result<Vec<Item>> {
    bulk::read_csv(file, &["id", "ra_id"], |row| {
        let metadata = match row.cell("metadata") {
            None => Value::Object(Map::new()),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => v,
                _ => return Err("metadata is not a JSON object".to_string()),
            },
        };
        Ok(
            json!({"id": row.required("id")?, "ra_id": row.required("ra_id")?,
            "alias": row.cell("alias"), "tags": row.list("tags"), "metadata": metadata}),
        )
    })
}

/// `device import`: every row is sent (at most `parallel` at once) and counted; a row already registered
/// (409) counts as done, so a second run after an interruption finishes the job.
async fn import(api: &Api, file: &Path, parallel: usize) -> anyhow::Result<()> {
    let words = Words {
        items: "devices",
        done: "registered",
    };
    bulk::import(read_rows(file)?, &words, parallel, |body| async move {
        match api.post(&["api", "v1", "devices"], &body).await {
            Ok(_) => Outcome::Done,
            Err(e) => match e.downcast_ref::<HttpError>() {
                Some(h) if h.is("device-exists") => Outcome::AlreadyThere,
                _ => Outcome::Failed(e.to_string()),
            },
        }
    })
    .await
}
