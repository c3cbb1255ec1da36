//! `shedu events list` and `shedu audit list`: reading the event outbox and the audit log over the API.
//! (`shedu audit verify` checks the audit chain against the database itself: see `crate::audit`.)

use clap::Args;

use super::ClientArgs;
use super::api::Api;
use super::output::{OutputFormat, columns_table, emit, emit_json, items, text};

/// Filters of `shedu events list`.
#[derive(Debug, Args)]
pub(crate) struct EventsListArgs {
    /// Only this type (e.g. `certificate.revoked`).
    #[arg(long = "type")]
    ty: Option<String>,
    /// Only events whose subject contains this (a CA id, a serial, a device id).
    #[arg(long)]
    subject: Option<String>,
    /// Only events after this outbox position (the SEQ of the last event seen).
    #[arg(long)]
    after: Option<i64>,
    /// Page size (1 to 1000).
    #[arg(long)]
    limit: Option<u32>,
}

/// Filters of `shedu audit list`.
#[derive(Debug, Args)]
pub(crate) struct AuditListArgs {
    /// Only this principal (user name, API key name, `anonymous`).
    #[arg(long)]
    principal: Option<String>,
    /// Only this action (`certificate.issue`, `POST /api/v1/cas`).
    #[arg(long)]
    action: Option<String>,
    /// Only this outcome: `success`, `denied` or `failure`.
    #[arg(long)]
    outcome: Option<String>,
    /// Only the records of this request id (as printed in an error line).
    #[arg(long)]
    request_id: Option<String>,
    /// Only records older than this SEQ (the cursor printed after the previous page).
    #[arg(long)]
    before: Option<i64>,
    /// Page size (1 to 1000).
    #[arg(long)]
    limit: Option<u32>,
}

fn some<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Prints one page: JSON as it came, `seq`s with `-q`, else a table.
fn show_page(
    page: &serde_json::Value,
    args: &ClientArgs,
    columns: &[(&str, &str)],
) -> anyhow::Result<()> {
    if args.output == OutputFormat::Json {
        return emit_json(page);
    }
    let rows = items(page)?;
    if args.quiet {
        return emit(
            &rows
                .iter()
                .map(|r| format!("{}\n", text(r, "seq")))
                .collect::<String>(),
        );
    }
    emit(&columns_table(rows, columns))
}

/// Runs `shedu events list`.
pub(crate) async fn run_events_list(args: ClientArgs, a: EventsListArgs) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let query = [
        ("type", some(&a.ty)),
        ("subject", some(&a.subject)),
        ("after", some(&a.after)),
        ("limit", some(&a.limit)),
    ];
    let page = api.get(&["api", "v1", "events"], &query).await?;
    let columns = [
        ("SEQ", "seq"),
        ("TIME", "time"),
        ("TYPE", "type"),
        ("SUBJECT", "subject"),
    ];
    show_page(&page, &args, &columns)
}

/// Runs `shedu audit list`.
pub(crate) async fn run_audit_list(args: ClientArgs, a: AuditListArgs) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let query = [
        ("principal", some(&a.principal)),
        ("action", some(&a.action)),
        ("outcome", some(&a.outcome)),
        ("request_id", some(&a.request_id)),
        ("before", some(&a.before)),
        ("limit", some(&a.limit)),
    ];
    let page = api.get(&["api", "v1", "audit"], &query).await?;
    let columns = [
        ("SEQ", "seq"),
        ("TIME", "time"),
        ("PRINCIPAL", "principal"),
        ("ROLE", "role"),
        ("ACTION", "action"),
        ("OUTCOME", "outcome"),
        ("TARGET", "target"),
    ];
    show_page(&page, &args, &columns)?;
    if args.output == OutputFormat::Table
        && let Some(next) = page["next_cursor"].as_i64()
    {
        eprintln!("more: --before {next}");
    }
    Ok(())
}

/// `shedu subscription …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SubscriptionCommand {
    /// Subscribe a webhook or an e-mail address to events (JSON, as `POST /api/v1/subscriptions` takes
    /// it: `event_types`, `channel`, `condition`). A webhook's generated secret is shown once.
    Create {
        /// The subscription document; `-` reads standard input.
        #[arg(long, short)]
        file: std::path::PathBuf,
    },
    /// List subscriptions.
    List,
    /// Show one subscription.
    Show {
        /// Subscription id.
        id: String,
    },
    /// Delete a subscription.
    Delete {
        /// Subscription id.
        id: String,
    },
}

/// `shedu delivery …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DeliveryCommand {
    /// List deliveries, newest first.
    List {
        /// `pending`, `delivered` or `dead`.
        #[arg(long)]
        status: Option<String>,
        /// Of this subscription.
        #[arg(long)]
        subscription: Option<String>,
        /// Page size.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Send a dead-lettered delivery again.
    Retry {
        /// Subscription id.
        subscription: String,
        /// Event id.
        event: String,
    },
}

/// Runs one `shedu subscription …` command.
pub(crate) async fn run_subscription(
    args: ClientArgs,
    cmd: SubscriptionCommand,
) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let show = |v: &serde_json::Value| match args.output {
        OutputFormat::Json => emit_json(v),
        OutputFormat::Table if args.quiet => emit(&format!("{}\n", text(v, "id"))),
        OutputFormat::Table => emit(&super::output::key_values(&[
            ("ID", text(v, "id")),
            ("Events", text(v, "event_types")),
            (
                "Channel",
                super::output::printable(&v["channel"].to_string()),
            ),
            (
                "Condition",
                super::output::printable(&v["condition"].to_string()),
            ),
            ("Created", text(v, "created_at")),
        ])),
    };
    match cmd {
        SubscriptionCommand::Create { file } => {
            let body = super::devices::read_json(&file)?;
            let made = api.post(&["api", "v1", "subscriptions"], &body).await?;
            if made["channel"]["secret"].is_string() && args.output == OutputFormat::Table {
                eprintln!("the webhook's signing secret (in Channel) is shown once: keep it now");
            }
            show(&made)
        }
        SubscriptionCommand::List => {
            let list = api.get(&["api", "v1", "subscriptions"], &[]).await?;
            let columns = [
                ("ID", "id"),
                ("EVENTS", "event_types"),
                ("CREATED", "created_at"),
            ];
            super::output::show_list(&list, args.output, args.quiet, &columns)
        }
        SubscriptionCommand::Show { id } => {
            show(&api.get(&["api", "v1", "subscriptions", &id], &[]).await?)
        }
        SubscriptionCommand::Delete { id } => {
            api.delete(&["api", "v1", "subscriptions", &id]).await?;
            eprintln!("subscription {} deleted", super::output::printable(&id));
            Ok(())
        }
    }
}

/// Runs one `shedu delivery …` command.
pub(crate) async fn run_delivery(args: ClientArgs, cmd: DeliveryCommand) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    match cmd {
        DeliveryCommand::List {
            status,
            subscription,
            limit,
        } => {
            let query = [
                ("status", some(&status)),
                ("subscription_id", some(&subscription)),
                ("limit", some(&limit)),
            ];
            let list = api.get(&["api", "v1", "deliveries"], &query).await?;
            if args.output == OutputFormat::Json {
                return emit_json(&list);
            }
            let columns = [
                ("SUBSCRIPTION", "subscription_id"),
                ("EVENT", "event_id"),
                ("STATUS", "status"),
                ("ATTEMPTS", "attempts"),
                ("NEXT ATTEMPT", "next_attempt_at"),
                ("LAST ERROR", "last_error"),
            ];
            emit(&columns_table(items(&list)?, &columns))
        }
        DeliveryCommand::Retry {
            subscription,
            event,
        } => {
            let path = [
                "api",
                "v1",
                "subscriptions",
                &subscription,
                "deliveries",
                &event,
                "retry",
            ];
            let answer = api.post(&path, &serde_json::json!({})).await?;
            if args.output == OutputFormat::Json {
                return emit_json(&answer);
            }
            eprintln!("delivery queued again");
            Ok(())
        }
    }
}
