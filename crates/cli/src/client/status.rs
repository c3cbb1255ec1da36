//! `shedu status`: the server's version, health (`GET /ready`), database, event sinks with their lag, and
//! counts by status (`GET /api/v1/status`).

use serde_json::Value;

use super::ClientArgs;
use super::api::Api;
use super::output::{emit, emit_doc, key_values, text};

/// `active 3, revoked 1` from a `{status: count}` object; `none` when empty.
fn counts(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| format!("{} {n}", super::output::printable(k)))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Runs `shedu status`.
pub(crate) async fn run_status(args: ClientArgs) -> anyhow::Result<()> {
    let api = Api::new(&args)?;
    let status = api.get(&["api", "v1", "status"], &[]).await?;
    if args.output.is_document() {
        return emit_doc(args.output, &status);
    }
    // Whether this replica serves: its database answers, its event dispatchers run. A server that is
    // not ready still shows its counts, so the answer is a line rather than a failure.
    let health = match api.get(&["ready"], &[]).await {
        Ok(ready) => text(&ready, "status"),
        Err(e) => format!("{e:#}"),
    };
    let db = &status["database"];
    let mut lines = vec![
        (
            "Server",
            format!("{} (version {})", api.base(), text(&status, "version")),
        ),
        ("Health", health),
        (
            "Database",
            format!(
                "{} (answered in {:.1} ms)",
                text(db, "kind"),
                db["read_ms"].as_f64().unwrap_or(0.0)
            ),
        ),
        (
            "Events",
            format!("head {}", text(&status["events"], "head")),
        ),
    ];
    let sinks = status["events"]["sinks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sink_lines: Vec<(String, String)> = sinks
        .iter()
        .map(|s| {
            (
                format!("  sink {}", text(s, "name")),
                format!(
                    "position {}, lag {}, moved {}",
                    text(s, "position"),
                    text(s, "lag"),
                    text(s, "updated_at")
                ),
            )
        })
        .collect();
    lines.extend(sink_lines.iter().map(|(k, v)| (k.as_str(), v.clone())));
    lines.push(("CAs", counts(&status["cas"])));
    lines.push(("Certificates", counts(&status["certificates"])));
    lines.push(("Devices", counts(&status["devices"])));
    emit(&key_values(&lines))
}
