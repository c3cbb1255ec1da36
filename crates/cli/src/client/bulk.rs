//! Bulk imports (`shedu device import`, `shedu asset import`, `shedu ca import-bundle`): every item sent
//! and counted behind a progress bar with rate and ETA on a terminal (a line every 10 % elsewhere), bad
//! items reported at the end without losing the good ones, and Ctrl-C stopping cleanly: no new item is
//! sent, those in flight finish, and the report says what was not sent. Items already present count as
//! done, so running the same import again finishes an interrupted one. CSV files (`read_csv`) name their
//! columns in a header line, in any order.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use serde_json::Value;

use super::output::{emit, printable};

/// One item to send: where it came from (`line 7`, `certificate 3`) and its request body, or why it
/// could not be made.
pub(crate) struct Item {
    pub label: String,
    pub body: Result<Value, String>,
}

/// What became of one item.
pub(crate) enum Outcome {
    /// Created.
    Done,
    /// The server already had it.
    AlreadyThere,
    /// Refused or failed, with the reason.
    Failed(String),
    /// Not sent: the import was interrupted.
    NotSent,
}

/// How an import names its items and results in the bar and the report.
pub(crate) struct Words {
    /// The items, plural (`devices`).
    pub items: &'static str,
    /// What was done to them (`registered`).
    pub done: &'static str,
}

/// One CSV record, its cells looked up by the header's column names.
pub(crate) struct Row<'a> {
    headers: &'a csv::StringRecord,
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    /// The cell under `column`, trimmed; `None` when the column is absent or the cell empty.
    pub(crate) fn cell(&self, column: &str) -> Option<&str> {
        let i = self.headers.iter().position(|h| h == column)?;
        self.record.get(i).filter(|v| !v.is_empty())
    }

    /// The cell under `column`, which must be there.
    pub(crate) fn required(&self, column: &str) -> Result<&str, String> {
        self.cell(column).ok_or_else(|| format!("no {column}"))
    }

    /// The cell under `column` split at `;` into its non-empty parts (none when empty).
    pub(crate) fn list(&self, column: &str) -> Vec<&str> {
        self.cell(column)
            .map(|t| {
                t.split(';')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Parses a CSV import file: a header naming the columns (in any order, `required` among them), then one
/// item per record, its body built by `body` (an `Err` marks the line as failed without stopping the
/// import). Items are labelled `line N`, counting the header as line 1.
pub(crate) fn read_csv(
    file: &Path,
    required: &[&str],
    body: impl Fn(&Row<'_>) -> Result<Value, String>,
) -> anyhow::Result<Vec<Item>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{} has no header line", file.display()))?
        .clone();
    if let Some(missing) = required.iter().find(|c| !headers.iter().any(|h| h == **c)) {
        bail!(
            "the header of {} must name the columns {} (no {missing})",
            file.display(),
            required.join(", ")
        );
    }
    let mut items = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let body = record.map_err(|e| e.to_string()).and_then(|record| {
            body(&Row {
                headers: &headers,
                record: &record,
            })
        });
        items.push(Item {
            label: format!("line {}", i + 2),
            body,
        });
    }
    Ok(items)
}

/// Sends each item with `send` (at most `parallel` at once, in order when 1) and prints the report;
/// fails when an item failed or was not sent.
pub(crate) async fn import<F, Fut>(
    items: Vec<Item>,
    words: &Words,
    parallel: usize,
    send: F,
) -> anyhow::Result<()>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let total = items.len() as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {}  {{per_sec}}  ETA {{eta}}  {{msg}}",
            words.items
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // On a terminal the bar redraws itself; elsewhere (a log, CI) a line every 10 % instead.
    let on_terminal = !bar.is_hidden();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let send = &send;
    let results: Vec<(usize, String, Outcome)> =
        futures::stream::iter(items.into_iter().enumerate())
            .map(|(i, item)| {
                let stop = stop.clone();
                let bar = bar.clone();
                async move {
                    let outcome = match item.body {
                        _ if stop.load(Ordering::SeqCst) => Outcome::NotSent,
                        Err(why) => Outcome::Failed(why),
                        Ok(body) => send(body).await,
                    };
                    bar.inc(1);
                    let done = bar.position();
                    if !on_terminal && total >= 10 && done.is_multiple_of((total / 10).max(1)) {
                        eprintln!("{done}/{total} {}", words.items);
                    }
                    (i, item.label, outcome)
                }
            })
            .buffered(parallel.max(1))
            .collect()
            .await;
    watcher.abort();
    bar.finish_and_clear();
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|(_, _, o)| f(o)).count();
    let done = count(|o| matches!(o, Outcome::Done));
    let already = count(|o| matches!(o, Outcome::AlreadyThere));
    let not_sent = count(|o| matches!(o, Outcome::NotSent));
    let failed: Vec<(&str, &str)> = results
        .iter()
        .filter_map(|(_, label, o)| match o {
            Outcome::Failed(why) => Some((label.as_str(), why.as_str())),
            _ => None,
        })
        .collect();
    for (label, why) in &failed {
        eprintln!("{label}: {}", printable(why));
    }
    emit(&format!(
        "{done} {d}, {already} already {d}, {} failed, {not_sent} not sent\n",
        failed.len(),
        d = words.done
    ))?;
    if not_sent > 0 {
        bail!("interrupted: run the same import again to finish it");
    }
    if !failed.is_empty() {
        bail!(
            "{} of {total} {} failed (listed above)",
            failed.len(),
            words.items
        );
    }
    Ok(())
}
