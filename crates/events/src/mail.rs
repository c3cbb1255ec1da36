//! Alert texts and e-mail: minijinja templates per event type (subject, plain text, HTML) with built-in
//! defaults that operators can override with files, and an SMTP sender (lettre, rustls on aws-lc-rs).
//!
//! Templates are looked up as `<event type>.subject.txt`, `<event type>.txt` and `<event type>.html`, then
//! `default.*`. Files in the template directory with those names replace the built-ins. The context has the
//! CloudEvent attributes (`id`, `type`, `source`, `subject`, `time`), `data`, `event` (all of it) and
//! `data_json` (pretty JSON); the `datetime` filter turns Unix seconds into RFC 3339. HTML templates are
//! auto-escaped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::Environment;
use minijinja::value::Serde;
use zeroize::Zeroizing;

use crate::{CloudEvent, Error};

/// Transport security towards the SMTP relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (local relays and tests only).
    None,
    /// STARTTLS, required (port 587).
    #[default]
    StartTls,
    /// Implicit TLS (port 465).
    Tls,
}

/// The SMTP relay alerts are sent through.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Relay host name (also the TLS server name).
    pub host: String,
    /// Port (587 for STARTTLS, 465 for TLS, 25 plain).
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Sender address, e.g. `shedu <pki@example.com>`.
    pub from: String,
    /// Login, if the relay wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<Zeroizing<String>>,
    /// PEM file of CA certificates the relay's TLS certificate may also chain to, besides the built-in web
    /// roots (a relay with a certificate from a private CA). Only with `StartTls` or `Tls`.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// A rendered alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

const BUILTIN: &[(&str, &str)] = &[
    ("default.subject.txt", "[shedu] {{ type }}: {{ subject }}"),
    (
        "default.txt",
        "Event {{ type }} at {{ time }}\nSubject: {{ subject }}\nEvent id: {{ id }}\n\n{{ data_json }}\n",
    ),
    (
        "default.html",
        "<p>Event <b>{{ type }}</b> at {{ time }}</p>\n<p>Subject: {{ subject }}<br>Event id: {{ id }}</p>\n<pre>{{ data_json }}</pre>\n",
    ),
    (
        "certificate.status_changed.subject.txt",
        "{% if data.to == 'about_to_expire' %}Certificate {{ data.serial }} is about to expire\
         {% elif data.to == 'expired' %}Certificate {{ data.serial }} has expired\
         {% else %}Certificate {{ data.serial }} is now {{ data.to }}{% endif %}",
    ),
    (
        "certificate.status_changed.txt",
        "Certificate {{ data.serial }} of CA {{ data.ca_id }} changed from {{ data.from }} to {{ data.to }}.\n\
         {% if data.not_after %}It {% if data.to == 'expired' %}expired{% else %}expires{% endif %} at {{ data.not_after | datetime }}.\n{% endif %}\
         \nEvent {{ id }} at {{ time }}.\n",
    ),
    (
        "certificate.status_changed.html",
        "<p>Certificate <b>{{ data.serial }}</b> of CA {{ data.ca_id }} changed from {{ data.from }} to <b>{{ data.to }}</b>.</p>\n\
         {% if data.not_after %}<p>It {% if data.to == 'expired' %}expired{% else %}expires{% endif %} at {{ data.not_after | datetime }}.</p>\n{% endif %}\
         <p><small>Event {{ id }} at {{ time }}.</small></p>\n",
    ),
    (
        "certificate.expiry_reminder.subject.txt",
        "Certificate {{ data.serial }} expires in {{ data.days_left }} day{{ '' if data.days_left == 1 else 's' }}",
    ),
    (
        "certificate.expiry_reminder.txt",
        "Certificate {{ data.serial }} ({{ data.subject }}) of CA {{ data.ca_id }} expires at {{ data.not_after | datetime }}, \
         in {{ data.days_left }} day{{ '' if data.days_left == 1 else 's' }}.\nRenew it before then.\n\nEvent {{ id }}.\n",
    ),
    (
        "certificate.expiry_reminder.html",
        "<p>Certificate <b>{{ data.serial }}</b> ({{ data.subject }}) of CA {{ data.ca_id }} expires at \
         {{ data.not_after | datetime }}, in <b>{{ data.days_left }} day{{ '' if data.days_left == 1 else 's' }}</b>.</p>\n\
         <p>Renew it before then.</p>\n<p><small>Event {{ id }}.</small></p>\n",
    ),
    (
        "certificate.revoked.subject.txt",
        "Certificate {{ data.serial }} was revoked ({{ data.reason }})",
    ),
    (
        "certificate.issued.subject.txt",
        "Certificate {{ data.serial }} issued for {{ data.subject }}",
    ),
    (
        "ca.status_changed.subject.txt",
        "{% if data.to == 'about_to_expire' %}CA {{ data.ca_id }} is about to expire\
         {% elif data.to == 'expired' %}CA {{ data.ca_id }} has expired\
         {% else %}CA {{ data.ca_id }} is now {{ data.to }}{% endif %}",
    ),
];

/// The alert templates: built-ins plus overrides.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The built-in templates, overridden by `<dir>/<type>.subject.txt|.txt|.html` files when `dir` is given.
    /// Fails on an unreadable directory or a template with a syntax error (at startup, not at the first alert).
    pub fn load(dir: Option<&Path>) -> Result<Templates, Error> {
        let mut env = Environment::new();
        // Lenient: a missing or non-numeric value renders as itself rather than failing the alert.
        env.add_filter("datetime", |v: minijinja::Value| {
            match i64::try_from(v.clone()) {
                Ok(secs) => crate::cloudevent::rfc3339(secs),
                Err(_) if v.is_undefined() || v.is_none() => String::new(),
                Err(_) => v.to_string(),
            }
        });
        for (name, src) in BUILTIN {
            env.add_template(name, src)
                .map_err(|e| Error::Template(format!("built-in {name}: {e}")))?;
        }
        if let Some(dir) = dir {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| Error::Config(format!("template directory {}: {e}", dir.display())))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if !(name.ends_with(".txt") || name.ends_with(".html")) {
                    continue;
                }
                let src = std::fs::read_to_string(entry.path())
                    .map_err(|e| Error::Config(format!("{}: {e}", entry.path().display())))?;
                env.add_template_owned(name.clone(), src)
                    .map_err(|e| Error::Template(format!("{name}: {e}")))?;
                tracing::info!(template = %name, "alert template override loaded");
            }
        }
        Ok(Templates { env })
    }

    /// Renders the subject, text and HTML for `e`.
    pub fn render(&self, e: &CloudEvent) -> Result<Rendered, Error> {
        let ctx = serde_json::json!({
            "id": e.id, "type": e.ty, "source": e.source, "subject": e.subject, "time": e.time,
            "data": e.data, "event": e,
            "data_json": serde_json::to_string_pretty(&e.data).unwrap_or_default(),
        });
        let ctx = minijinja::Value::from(Serde(ctx));
        let render = |kind: &str| -> Result<String, Error> {
            let specific = format!("{}.{kind}", e.ty);
            let t = match self.env.get_template(&specific) {
                Ok(t) => t,
                Err(_) => self
                    .env
                    .get_template(&format!("default.{kind}"))
                    .map_err(|err| Error::Template(err.to_string()))?,
            };
            t.render(ctx.clone())
                .map_err(|err| Error::Template(format!("{}: {err}", t.name())))
        };
        let subject = render("subject.txt")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Rendered {
            subject,
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

/// TLS towards the relay: its certificate must name `host` and chain to a built-in web root or to a
/// certificate of `ca_file`.
fn tls_parameters(c: &SmtpConfig) -> Result<TlsParameters, Error> {
    let mut b = TlsParameters::builder(c.host.clone());
    if let Some(path) = &c.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Error::Config(format!("SMTP CA file {}: {e}", path.display())))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(Error::Config(format!(
                "SMTP CA file {}: no PEM certificate in it",
                path.display()
            )));
        }
        let roots = Certificate::from_pem(&pem)
            .map_err(|e| Error::Config(format!("SMTP CA file {}: {e}", path.display())))?;
        b = b.add_root_certificate(roots);
    }
    b.build()
        .map_err(|e| Error::Config(format!("SMTP TLS for {}: {e}", c.host)))
}

/// Sends alert e-mails through the configured relay (pooled connections).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// Builds the transport (no connection yet).
    pub fn new(c: &SmtpConfig) -> Result<Mailer, Error> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| Error::Config(format!("SMTP from {:?}: {e}", c.from)))?;
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.clone());
        let builder = match c.tls {
            SmtpTls::None => {
                if let Some(f) = &c.ca_file {
                    return Err(Error::Config(format!(
                        "SMTP CA file {} given for a relay without TLS",
                        f.display()
                    )));
                }
                builder
            }
            SmtpTls::StartTls => builder.tls(Tls::Required(tls_parameters(c)?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls_parameters(c)?)),
        };
        let mut builder = builder.port(c.port).timeout(Some(Duration::from_secs(10)));
        if let Some(user) = &c.username {
            let pass = c
                .password
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one multipart/alternative message (plain text + HTML) to `to`.
    pub async fn send(&self, to: &[String], r: &Rendered, event_id: &str) -> Result<(), String> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(r.subject.clone())
            .message_id(Some(format!(
                "<{event_id}.{}@shedu>",
                hex::encode(rand::random::<[u8; 4]>())
            )));
        for addr in to {
            let mb: Mailbox = addr
                .parse()
                .map_err(|e| format!("recipient {addr:?}: {e}"))?;
            b = b.to(mb);
        }
        let msg = b
            .multipart(MultiPart::alternative_plain_html(
                r.text.clone(),
                r.html.clone(),
            ))
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: &str, data: serde_json::Value) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".into(),
            id: "e1".into(),
            source: "/shedu".into(),
            ty: ty.into(),
            subject: "cas/c1/certificates/0a".into(),
            time: "2024-01-01T00:00:00Z".into(),
            datacontenttype: "application/json".into(),
            data,
            seq: 1,
        }
    }

    #[test]
    fn built_in_templates_render() {
        let t = Templates::load(None).unwrap_or_else(|e| panic!("{e}"));
        let r = t
            .render(&ev(
                "certificate.status_changed",
                serde_json::json!({"ca_id": "c1", "serial": "0a", "from": "active", "to": "about_to_expire", "not_after": 1_700_000_000}),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.subject, "Certificate 0a is about to expire");
        assert!(r.text.contains("2023-11-14T22:13:20Z"), "{}", r.text);
        let r = t
            .render(&ev(
                "certificate.issued",
                serde_json::json!({"serial": "0b", "subject": "CN=<x>"}),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.subject, "Certificate 0b issued for CN=<x>");
        assert!(r.html.contains("CN=&lt;x&gt;"), "{}", r.html);
        let r = t
            .render(&ev(
                "certificate.expiry_reminder",
                serde_json::json!({"serial": "0c", "days_left": 1}),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.subject, "Certificate 0c expires in 1 day");
    }

    #[test]
    fn files_override_built_ins() {
        let dir = std::env::temp_dir().join(format!(
            "shedu-tpl-{}",
            hex::encode(rand::random::<[u8; 6]>())
        ));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        std::fs::write(
            dir.join("certificate.issued.subject.txt"),
            "New cert {{ data.serial }}",
        )
        .unwrap_or_default();
        let t = Templates::load(Some(&dir)).unwrap_or_else(|e| panic!("{e}"));
        let r = t
            .render(&ev(
                "certificate.issued",
                serde_json::json!({"serial": "0b"}),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.subject, "New cert 0b");
        let _ = std::fs::remove_dir_all(dir);
    }
}
