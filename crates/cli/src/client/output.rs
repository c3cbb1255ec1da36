//! Rendering of API responses: plain space-padded tables for people, the server's own JSON for scripts.
//!
//! Tables are built from [`serde_json::Value`]s so a field the server adds later never breaks the CLI, and a
//! missing or `null` field shows as `-` instead of failing.

use std::io::Write;

use anyhow::Context;
use clap::ValueEnum;
use serde_json::Value;

/// `--output`: what the client commands print on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Aligned columns or key/value lines, for reading.
    #[default]
    Table,
    /// The server's JSON response, pretty-printed, for scripts (`jq`).
    Json,
    /// The server's response as YAML (block style; strings quoted wherever YAML would read them as
    /// something else), for people and for `yq`.
    Yaml,
}

impl OutputFormat {
    /// JSON or YAML: the whole document as the server sent it, rather than a table.
    pub(crate) fn is_document(self) -> bool {
        self != OutputFormat::Table
    }
}

/// Prints `value` as the document format asks (JSON, or YAML); a table format prints JSON too (callers
/// check [`OutputFormat::is_document`] first).
pub(crate) fn emit_doc(format: OutputFormat, value: &Value) -> anyhow::Result<()> {
    match format {
        OutputFormat::Yaml => emit(&to_yaml(value)),
        OutputFormat::Json | OutputFormat::Table => emit_json(value),
    }
}

/// `value` as a YAML 1.2 block document (also read the same by YAML 1.1 parsers such as PyYAML): maps
/// and lists in block style, empty ones in flow style, strings plain when no parser could take them for
/// anything else and JSON-quoted (a valid YAML double-quoted scalar) otherwise.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => yaml_map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => yaml_list(a, 0, &mut out),
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
    out
}

fn yaml_map(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first key of a map that is a list item shares the line of its "- ".
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&yaml_string(k));
        out.push(':');
        yaml_value(v, indent, out);
    }
}

fn yaml_list(a: &[Value], indent: usize, out: &mut String) {
    for (i, v) in a.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => yaml_map(m, indent + 2, out),
            Value::Array(inner) if !inner.is_empty() => yaml_list(inner, indent + 2, out),
            scalar => {
                out.push_str(&yaml_scalar(scalar));
                out.push('\n');
            }
        }
    }
}

/// The value of a `key:` at `indent`: a scalar on the same line, a collection on the lines below.
fn yaml_value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml_list(a, indent + 2, out);
        }
        scalar => {
            out.push(' ');
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => yaml_string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A string plain when it starts with a letter, holds only letters, digits and `_ - . / @ +` (and
/// single spaces or colons not followed by a space), and is none of the words YAML 1.1 reads as booleans
/// or null; JSON-quoted otherwise (ids, serials and timestamps that start with a digit are quoted, so
/// no parser reads them as numbers or dates).
fn yaml_string(s: &str) -> String {
    const WORDS: [&str; 12] = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf", "infinity",
    ];
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./@+ :".contains(c))
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains("  ")
        && !WORDS.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

/// Writes `text` to stdout. A closed pipe (`shedu cert list | head`) ends the output quietly instead of
/// panicking the way `println!` would.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Prints a JSON document pretty-printed, with a final newline.
pub(crate) fn emit_json(value: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot format the JSON")?;
    text.push('\n');
    emit(&text)
}

/// One field as display text: strings bare, lists comma-separated, absent/`null`/empty as `-`. Control
/// characters are escaped (`\u{1b}`): a subject or name from the server must not drive the terminal.
pub(crate) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => printable(s),
        Some(Value::Array(items)) if items.is_empty() => "-".into(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => printable(s),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// `s` with every control character escaped, so that printing it cannot move the cursor, retitle the window
/// or clear the screen.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A string field the command cannot do without (a serial, a PEM); its absence means the server and the
/// CLI disagree about the API, which is worth a clear error.
pub(crate) fn required<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("the server's response has no {key:?} field"))
}

/// The `items` array of a list response.
pub(crate) fn items(v: &Value) -> anyhow::Result<&Vec<Value>> {
    v.get("items")
        .and_then(Value::as_array)
        .context("the server's response has no \"items\" list")
}

/// Columns separated by two spaces, each as wide as its widest cell; the last one is not padded so lines
/// carry no trailing blanks.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints a list response: the JSON as it came, only the ids with `quiet`, else a table of `columns`
/// (header, field).
pub(crate) fn show_list(
    list: &Value,
    format: OutputFormat,
    quiet: bool,
    columns: &[(&str, &str)],
) -> anyhow::Result<()> {
    show_rows(list, format, quiet, "id", columns)
}

/// [`show_list`] for any list answer: `{"items": [...]}` or a bare array, with `id` the field `quiet`
/// prints (`seq` for events, `kid` for EAB keys).
pub(crate) fn show_rows(
    list: &Value,
    format: OutputFormat,
    quiet: bool,
    id: &str,
    columns: &[(&str, &str)],
) -> anyhow::Result<()> {
    if format.is_document() {
        return emit_doc(format, list);
    }
    let rows = match list.as_array() {
        Some(rows) => rows,
        None => items(list)?,
    };
    if quiet {
        let ids: String = rows.iter().map(|r| format!("{}\n", text(r, id))).collect();
        return emit(&ids);
    }
    emit(&columns_table(rows, columns))
}

/// A table of `rows` with one column per (header, field) of `columns`.
pub(crate) fn columns_table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, f)| text(r, f)).collect())
        .collect();
    table(&headers, &cells)
}

/// `Label:  value` lines with the values aligned, for one object.
pub(crate) fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let pad = width - k.chars().count();
        out.push_str(&format!("{k}:{}  {v}\n", " ".repeat(pad)));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test reports failure
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let t = table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "root".into()],
                vec!["12345".into(), "x".into()],
            ],
        );
        assert_eq!(t, "ID     NAME\n1      root\n12345  x\n");
    }

    #[test]
    fn key_values_align() {
        let t = key_values(&[("ID", "1".into()), ("Status", "active".into())]);
        assert_eq!(t, "ID:      1\nStatus:  active\n");
    }

    #[test]
    fn field_text() {
        let v = json!({"s": "a", "n": 3, "b": true, "l": ["x", "y"], "e": [], "z": null});
        assert_eq!(text(&v, "s"), "a");
        assert_eq!(text(&v, "n"), "3");
        assert_eq!(text(&v, "b"), "true");
        assert_eq!(text(&v, "l"), "x, y");
        assert_eq!(text(&v, "e"), "-");
        assert_eq!(text(&v, "z"), "-");
        assert_eq!(text(&v, "missing"), "-");
        assert!(required(&v, "n").is_err());
        assert_eq!(required(&v, "s").unwrap(), "a");
    }

    #[test]
    fn yaml_documents() {
        let v = json!({
            "id": "0193a7c2",
            "name": "root ca",
            "n": 3,
            "ok": true,
            "none": null,
            "word": "yes",
            "colon": "a: b",
            "url": "https://x:8443/acme",
            "empty": [],
            "map": {},
            "list": [{"a": 1, "b": ["x"]}, "s", [1, 2]],
            "nested": {"deep": {"k": "v"}}
        });
        let y = to_yaml(&v);
        let expected = [
            "colon: \"a: b\"",
            "empty: []",
            "id: \"0193a7c2\"",
            "list:",
            "  - a: 1",
            "    b:",
            "      - x",
            "  - s",
            "  - - 1",
            "    - 2",
            "map: {}",
            "\"n\": 3", // YAML 1.1 reads a bare n as false
            "name: root ca",
            "nested:",
            "  deep:",
            "    k: v",
            "none: null",
            "ok: true",
            "url: https://x:8443/acme",
            "word: \"yes\"",
        ];
        assert_eq!(y, format!("{}\n", expected.join("\n")));
        assert_eq!(to_yaml(&json!([])), "[]\n");
        assert_eq!(to_yaml(&json!("a\nb")), "\"a\\nb\"\n");
    }

    // See: issue 12 (names with `ESC]0;…BEL ESC[2J` were printed raw by `ca list`).
    #[test]
    fn control_characters_never_reach_the_terminal() {
        let v = json!({"s": "root\u{1b}]0;pwned\u{7}\u{1b}[2J", "l": ["a\nb"]});
        assert_eq!(text(&v, "s"), "root\\u{1b}]0;pwned\\u{7}\\u{1b}[2J");
        assert_eq!(text(&v, "l"), "a\\u{a}b");
    }
}
