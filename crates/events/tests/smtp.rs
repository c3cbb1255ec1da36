//! E-mail alerts through a real SMTP server on loopback (Python aiosmtpd, Debian `python3-aiosmtpd`), on
//! SQLite and PostgreSQL: a `certificate.status_changed` event to `about_to_expire` reaches the subscribed
//! recipient as multipart/alternative with the built-in subject and bodies; an event the condition excludes
//! sends nothing. And end to end through a real server: a certificate issued through the REST API crosses
//! an expiry-reminder threshold and its reminder arrives, over plain SMTP and over STARTTLS to a relay whose
//! certificate comes from a private CA (which the server is configured to trust; the relay refuses mail
//! before STARTTLS). The SMTP server parses each message with Python's `email` package and writes a JSON
//! summary, including the TLS version the session negotiated, so the judge is independent of lettre.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use shedu_events::{
    Channel, Condition, DeliveryOptions, DeliveryQuery, DeliveryStatus, EventsConfig,
    NewSubscription, ReminderOptions, SmtpConfig, SmtpTls,
};
use shedu_store::scratch::TestBackend;
use shedu_testkit::{Options, TestServer, openssl, openssl_ca, openssl_csr};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SERVER: &str = r#"
import json, os, ssl, sys
from email import message_from_bytes, policy
from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), sys.argv[2]
# With a certificate and key: STARTTLS offered and required before MAIL.
tls = None
if len(sys.argv) > 4:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(sys.argv[3], sys.argv[4])

class Handler:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        parts = {}
        for part in msg.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                parts[part.get_content_type()] = part.get_content()
        Handler.n += 1
        negotiated = None
        if session.ssl is not None:
            negotiated = {"version": session.ssl["ssl_object"].version(),
                          "cipher": session.ssl["cipher"][0]}
        path = os.path.join(out, "%d.json" % Handler.n)
        with open(path + ".tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "subject": str(msg["subject"]), "from": str(msg["from"]), "to": str(msg["to"]),
                       "content_type": msg.get_content_type(), "parts": parts, "tls": negotiated}, f)
        os.rename(path + ".tmp", path)
        return "250 OK"

c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=tls,
               require_starttls=tls is not None)
c.start()
print("READY", flush=True)
try:
    sys.stdin.read()
finally:
    c.stop()
"#;

/// A Python with aiosmtpd, or a failure that says how to get one.
fn python() -> String {
    for p in ["/usr/bin/python3", "python3"] {
        let ok = std::process::Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return p.to_string();
        }
    }
    panic!(
        "this test needs Python 3 with aiosmtpd: run `apt-get install -y python3-aiosmtpd` (as root)"
    );
}

struct Smtp {
    port: u16,
    dir: PathBuf,
    /// With STARTTLS: the private CA that issued the relay's certificate (for 127.0.0.1).
    ca_file: Option<PathBuf>,
    _child: Child,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain SMTP server, or with `starttls` one that requires STARTTLS with a certificate for 127.0.0.1
/// from a CA of its own.
async fn smtp_server(starttls: bool) -> Smtp {
    let dir = std::env::temp_dir().join(unique("shedu-smtp-"));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = starttls.then(|| relay_certificate(&dir));
    let script = dir.join("server.py");
    std::fs::write(&script, SERVER).unwrap();
    let out = dir.join("mail");
    std::fs::create_dir_all(&out).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut command = Command::new(python());
    command.arg(&script).arg(port.to_string()).arg(&out);
    if starttls {
        command
            .arg(dir.join("relay.pem"))
            .arg(dir.join("relay.key"));
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .expect("aiosmtpd did not start")
        .unwrap();
    assert_eq!(line.as_deref(), Some("READY"), "aiosmtpd did not start");
    Smtp {
        port,
        dir,
        ca_file,
        _child: child,
    }
}

/// Makes `relay.pem`/`relay.key` in `dir`, a certificate for IP 127.0.0.1 from the CA `relay-ca.pem`;
/// returns the CA's path.
fn relay_certificate(dir: &std::path::Path) -> PathBuf {
    openssl_ca(dir, "relay-ca", "Relay Test CA");
    openssl_csr(
        dir,
        "relay",
        "ec-p256",
        "/CN=127.0.0.1",
        Some("IP:127.0.0.1"),
    );
    let (ok, out) = openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "relay.csr",
            "-CA",
            "relay-ca.pem",
            "-CAkey",
            "relay-ca.key",
            "-CAcreateserial",
            "-days",
            "5",
            "-copy_extensions",
            "copy",
            "-out",
            "relay.pem",
        ],
    );
    assert!(ok, "openssl x509 -req: {out}");
    dir.join("relay-ca.pem")
}

fn mails(smtp: &Smtp) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(smtp.dir.join("mail"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

async fn about_to_expire_mail(backend: TestBackend) {
    let smtp = smtp_server(false).await;
    let (_db, store) = store(backend).await;
    let config = EventsConfig {
        smtp: Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp.port,
            tls: SmtpTls::None,
            from: "shedu <pki@example.com>".into(),
            username: None,
            password: None,
            ca_file: None,
        }),
        dispatch: fast(),
        delivery: DeliveryOptions {
            poll_interval: Duration::from_millis(100),
            retry_initial: Duration::from_millis(500),
            ..DeliveryOptions::default()
        },
        reminders: ReminderOptions {
            days_before: Vec::new(),
            ..ReminderOptions::default()
        },
        ..EventsConfig::default()
    };
    let handle = shedu_events::start(store.clone(), test_webhooks(), config)
        .await
        .unwrap();
    let alerts = handle.alerts();
    let sub = alerts
        .create_subscription(
            NewSubscription {
                event_types: vec!["certificate.status_changed".into()],
                channel: Channel::Email {
                    to: vec!["Ops <ops@example.com>".into()],
                },
                condition: Some(Condition {
                    ca_id: Some("ca1".into()),
                    subject_contains: None,
                }),
            },
            &shedu_store::scratch::test_audit("subscription.create"),
        )
        .await
        .unwrap();
    let not_after = now() + 10 * 86_400;
    let ev = event_with(
        "certificate.status_changed",
        serde_json::json!({"ca_id": "ca1", "serial": "0a1b", "from": "active", "to": "about_to_expire", "not_after": not_after}),
    );
    store.append_event(&ev).await.unwrap();
    // Another CA: the condition keeps it out.
    store
        .append_event(&event_with(
            "certificate.status_changed",
            serde_json::json!({"ca_id": "ca2", "serial": "ffff", "from": "active", "to": "expired", "not_after": 1}),
        ))
        .await
        .unwrap();
    handle.notify();

    let d = wait_for(Duration::from_secs(20), "the e-mail delivery", || async {
        alerts
            .get_delivery(&sub.id, &ev.id)
            .await
            .ok()
            .filter(|d| d.status != DeliveryStatus::Pending)
    })
    .await;
    assert_eq!(d.status, DeliveryStatus::Delivered, "{:?}", d.last_error);
    let got = wait_for(Duration::from_secs(5), "the mail file", || async {
        let m = mails(&smtp);
        (!m.is_empty()).then_some(m)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(mails(&smtp).len(), 1, "only the subscribed CA's event");
    assert_eq!(
        alerts
            .list_deliveries(&DeliveryQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );

    let m = &got[0];
    assert_eq!(m["rcpt_tos"], serde_json::json!(["ops@example.com"]));
    assert_eq!(m["mail_from"], "pki@example.com");
    assert_eq!(m["subject"], "Certificate 0a1b is about to expire");
    assert_eq!(m["content_type"], "multipart/alternative");
    let text = m["parts"]["text/plain"].as_str().unwrap();
    let html = m["parts"]["text/html"].as_str().unwrap();
    let when = time::OffsetDateTime::from_unix_timestamp(not_after)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(
        text.contains("Certificate 0a1b of CA ca1 changed from active to about_to_expire."),
        "{text}"
    );
    assert!(text.contains(&format!("It expires at {when}.")), "{text}");
    assert!(
        html.contains("<b>0a1b</b>") && html.contains(&when),
        "{html}"
    );
}

#[tokio::test]
async fn about_to_expire_mail_sqlite() {
    about_to_expire_mail(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn about_to_expire_mail_postgres() {
    about_to_expire_mail(TestBackend::Postgres).await;
}

/// See: issue 12 (e-mail for a real certificate crossing its threshold, over STARTTLS too). A certificate
/// issued through the REST API for 3 days is outside the 2-day reminder window: several runs of the
/// reminder job (every 200 ms) emit nothing. Once the server's clock has moved a day on, the next run emits
/// its reminder and the e-mail subscription delivers it to the SMTP server: once, to the subscribed address,
/// naming the serial and the subject, and with `starttls` over TLS negotiated with a relay whose
/// certificate only the configured CA file vouches for.
async fn reminder_mail_for_an_issued_certificate(tls: SmtpTls) {
    let smtp = smtp_server(tls == SmtpTls::StartTls).await;
    let server = TestServer::start_with(
        TestBackend::Sqlite,
        Options {
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port: smtp.port,
                tls,
                from: "shedu <pki@example.com>".into(),
                username: None,
                password: None,
                ca_file: smtp.ca_file.clone(),
            }),
            reminders: Some(ReminderOptions {
                days_before: vec![2],
                interval: Duration::from_millis(200),
                ..ReminderOptions::default()
            }),
            delivery: Some(DeliveryOptions {
                poll_interval: Duration::from_millis(100),
                retry_initial: Duration::from_millis(500),
                ..DeliveryOptions::default()
            }),
            ..Options::default()
        },
    )
    .await;
    let (s, sub) = server
        .post(
            "/api/v1/subscriptions",
            json!({"event_types": ["certificate.expiry_reminder"],
                   "channel": {"type": "email", "address": "ops@example.com"}}),
        )
        .await;
    assert_eq!(s, 201, "{sub}");
    let ca = server
        .create_ca(json!({"name": "reminders", "key_type": "ec-p256",
                          "subject": {"common_name": "Reminder CA"}}))
        .await;
    let ca_id = ca["id"].as_str().unwrap();
    let csr = openssl_csr(&smtp.dir, "leaf", "ec-p256", "/CN=reminded.example", None);
    let (s, cert) = server
        .post(
            &format!("/api/v1/cas/{ca_id}/certificates"),
            json!({"csr_pem": csr, "validity_days": 3}),
        )
        .await;
    assert_eq!(s, 201, "{cert}");
    let serial = cert["serial"].as_str().unwrap();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        reminder_events(&server).await,
        0,
        "3 days before notAfter: no 2-day reminder yet"
    );
    assert!(mails(&smtp).is_empty());

    server.clock.advance(86_400 + 60);
    let got = wait_for(Duration::from_secs(30), "the reminder e-mail", || async {
        let m = mails(&smtp);
        (!m.is_empty()).then_some(m)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(mails(&smtp).len(), 1, "one reminder per threshold");
    assert_eq!(reminder_events(&server).await, 1);

    let m = &got[0];
    assert_eq!(m["rcpt_tos"], json!(["ops@example.com"]));
    assert_eq!(m["mail_from"], "pki@example.com");
    assert_eq!(
        m["subject"],
        format!("Certificate {serial} expires in 1 day")
    );
    let text = m["parts"]["text/plain"].as_str().unwrap();
    assert!(
        text.contains(serial) && text.contains("reminded.example") && text.contains(ca_id),
        "{text}"
    );
    match tls {
        SmtpTls::StartTls => {
            let version = m["tls"]["version"].as_str().unwrap_or_default();
            assert!(version.starts_with("TLSv1."), "TLS negotiated: {m}");
        }
        _ => assert!(m["tls"].is_null(), "plain SMTP: {m}"),
    }
    let (_, deliveries) = server.get("/api/v1/deliveries").await;
    assert_eq!(
        deliveries["items"][0]["status"], "delivered",
        "{deliveries}"
    );
}

async fn reminder_events(server: &TestServer) -> usize {
    server
        .cas_events()
        .await
        .iter()
        .filter(|t| *t == "certificate.expiry_reminder")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_mail_for_an_issued_certificate_plain() {
    reminder_mail_for_an_issued_certificate(SmtpTls::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_mail_for_an_issued_certificate_starttls() {
    reminder_mail_for_an_issued_certificate(SmtpTls::StartTls).await;
}
