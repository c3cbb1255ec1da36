//! `shedu events list` and `shedu audit list`: reading the event outbox and the audit log over the API.
//! (`shedu audit verify` checks the audit chain against the database itself: see `crate::audit`.)

use clap::Args;

use super::ClientArgs;
use super::api::Api;
use std::time::Duration;

use super::output::{
    OutputFormat, columns_table, emit, emit_doc, items, printable, show_rows, text, to_yaml,
};

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

/// Options of `shedu events tail`.
#[derive(Debug, Args)]
pub(crate) struct EventsTailArgs {
    /// Only this type (e.g. `certificate.revoked`).
    #[arg(long = "type")]
    ty: Option<String>,
    /// First replay the events after this outbox position (the SEQ of the last event seen), then
    /// follow; without it, only events from now on.
    #[arg(long)]
    after: Option<i64>,
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
    show_rows(&page, args.output, args.quiet, "seq", &columns)
}

/// Longest wait between two reconnections of `events tail`.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs `shedu events tail`: prints each event of the live stream as it arrives, until Ctrl-C. A broken
/// connection is re-opened (with back-off) from the last event printed, so nothing is missed or printed
/// twice; a refusal (4xx/5xx) ends the command with its error line.
pub(crate) async fn run_events_tail(args: ClientArgs, a: EventsTailArgs) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let mut last = a.after;
    let mut backoff = Duration::from_secs(1);
    // The first connection must work: a wrong URL or token is an error, not a retry loop.
    let mut res = Some(
        api.open_stream(&["api", "v1", "events", "stream"], last)
            .await?,
    );
    loop {
        let response = match res.take() {
            Some(r) => r,
            None => {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                match api
                    .open_stream(&["api", "v1", "events", "stream"], last)
                    .await
                {
                    Ok(r) => r,
                    Err(e) if e.downcast_ref::<super::HttpError>().is_some() => return Err(e),
                    Err(e) => {
                        eprintln!("events tail: {e:#}; retrying");
                        continue;
                    }
                }
            }
        };
        let followed = tokio::select! {
            r = follow(response, &args, &a, &mut last, &mut backoff) => r,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match followed {
            Ok(()) => eprintln!("events tail: the server closed the stream; reconnecting"),
            Err(e) => eprintln!("events tail: {e:#}; reconnecting"),
        }
    }
}

/// Prints the events of one open stream until it ends; `last` follows the outbox position printed.
async fn follow(
    mut response: reqwest::Response,
    args: &ClientArgs,
    a: &EventsTailArgs,
    last: &mut Option<i64>,
    backoff: &mut Duration,
) -> anyhow::Result<()> {
    let mut parser = SseParser::default();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| anyhow::Error::new(e.without_url()))?
    {
        *backoff = Duration::from_secs(1);
        for message in parser.push(&chunk) {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&message.data) else {
                continue;
            };
            let seq = message.id.as_deref().and_then(|i| i.parse::<i64>().ok());
            if let Some(seq) = seq {
                *last = Some(seq);
            }
            if a.ty.as_deref().is_some_and(|t| event["type"] != t) {
                continue;
            }
            emit(&tail_line(&event, seq, args))?;
        }
    }
    Ok(())
}

/// One event as `events tail` prints it: a JSON line, a YAML document, the SEQ alone (`-q`), or
/// `SEQ  TIME  TYPE  SUBJECT`.
fn tail_line(event: &serde_json::Value, seq: Option<i64>, args: &ClientArgs) -> String {
    let seq = seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
    match args.output {
        OutputFormat::Json => format!("{event}\n"),
        OutputFormat::Yaml => format!("---\n{}", to_yaml(event)),
        OutputFormat::Table if args.quiet => format!("{seq}\n"),
        OutputFormat::Table => format!(
            "{seq}  {}  {}  {}\n",
            text(event, "time"),
            text(event, "type"),
            printable(&text(event, "subject"))
        ),
    }
}

/// One Server-Sent Events message: its `id:` and its `data:` lines joined.
#[derive(Debug, PartialEq)]
struct SseMessage {
    id: Option<String>,
    data: String,
}

/// An incremental Server-Sent Events parser (the WHATWG event-stream format): bytes in, whole messages
/// out; a message split across chunks, even inside a UTF-8 character, waits for its end.
#[derive(Default)]
struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            let text = &self.buf;
            // A message ends at a blank line (LF LF, or CR LF CR LF).
            let end = text
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| (p, 2))
                .into_iter()
                .chain(
                    text.windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|p| (p, 4)),
                )
                .min_by_key(|(p, _)| *p);
            let Some((at, len)) = end else { break };
            let block: Vec<u8> = self.buf.drain(..at + len).collect();
            let block = String::from_utf8_lossy(&block[..at]).into_owned();
            let mut message = SseMessage {
                id: None,
                data: String::new(),
            };
            let mut has_data = false;
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => message.id = Some(value.to_string()),
                    "data" => {
                        if has_data {
                            message.data.push('\n');
                        }
                        message.data.push_str(value);
                        has_data = true;
                    }
                    _ => {} // comments (keep-alives), `event:`, `retry:`
                }
            }
            if has_data {
                out.push(message);
            }
        }
        out
    }
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
    show_rows(&page, args.output, args.quiet, "seq", &columns)?;
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
        f @ (OutputFormat::Json | OutputFormat::Yaml) => emit_doc(f, v),
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
            if args.output.is_document() {
                return emit_doc(args.output, &list);
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
            if args.output.is_document() {
                return emit_doc(args.output, &answer);
            }
            eprintln!("delivery queued again");
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test reports failure
mod tests {
    use super::*;

    #[test]
    fn sse_messages_split_anywhere_come_out_whole() {
        let stream = "id: 7\nevent: ca.created\ndata: {\"type\":\"ca.created\",\"subject\":\"cas/é\"}\n\n: keep-alive\n\nid: 8\r\ndata: a\r\ndata: b\r\n\r\n";
        let whole = SseParser::default().push(stream.as_bytes());
        // The same bytes one at a time (cutting the two-byte é in half) give the same messages.
        let mut parser = SseParser::default();
        let mut split = Vec::new();
        for b in stream.as_bytes() {
            split.extend(parser.push(&[*b]));
        }
        assert_eq!(whole, split);
        assert_eq!(
            whole,
            vec![
                SseMessage {
                    id: Some("7".into()),
                    data: "{\"type\":\"ca.created\",\"subject\":\"cas/é\"}".into()
                },
                SseMessage {
                    id: Some("8".into()),
                    data: "a\nb".into()
                },
            ]
        );
    }
}
