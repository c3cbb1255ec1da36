//! Slowloris on both listeners: connections that send part of a request (or nothing, or only an HTTP/2
//! preface) and stall are closed by the server within the header-read timeout, while normal requests keep
//! succeeding meanwhile; and with every connection slot taken, a new client waits for a free slot instead
//! of failing.
//!
//! SQLite only: this is listener behaviour (`listen.rs`), which never touches storage; the backend only
//! answers `/health`, which does not read the database either.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use shedu_server::ConnectionLimits;
use shedu_testkit::{Backend, Options, TestServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Slow connections per listener and kind.
const N: usize = 50;
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Time the server gets beyond the header timeout to close a stalled connection (an idle HTTP/2
/// connection gets the header timeout again to answer its GOAWAY, which a raw client never does).
const MARGIN: Duration = Duration::from_secs(5);

/// A request line and one header, without the blank line that would end the header.
const PARTIAL: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n";
/// A whole request, which leaves an HTTP/1.1 connection open for the next one.
const WHOLE: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
/// The HTTP/2 client preface and an empty SETTINGS frame: a connection that never sends a request.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

fn connector(server: &TestServer) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&server.ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn open(
    addr: std::net::SocketAddr,
    tls: Option<&TlsConnector>,
    send: &[u8],
) -> Box<dyn Stream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut stream: Box<dyn Stream> = match tls {
        Some(c) => Box::new(
            c.connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap(),
        ),
        None => Box::new(tcp),
    };
    stream.write_all(send).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Reads until the server closes the connection (EOF or an error); false if `deadline` comes first.
async fn closed_by(mut stream: Box<dyn Stream>, deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. the server's SETTINGS, a GOAWAY or a 408
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_while_others_are_served() {
    let server = TestServer::start_with(
        Backend::Sqlite,
        Options {
            connection_limits: ConnectionLimits {
                header_read_timeout: HEADER_TIMEOUT,
                idle_timeout: Duration::from_secs(3),
                ..ConnectionLimits::default()
            },
            ..Options::default()
        },
    )
    .await;
    let https: std::net::SocketAddr = server.base_url["https://".len()..].parse().unwrap();
    let http: std::net::SocketAddr = server.http_url["http://".len()..].parse().unwrap();
    let tls = connector(&server);

    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..N {
        slow.push(("http partial", open(http, None, PARTIAL).await));
        slow.push(("https partial", open(https, Some(&tls), PARTIAL).await));
    }
    // A few of the other ways to stall: say nothing at all, or open HTTP/2 and never ask.
    for _ in 0..5 {
        slow.push(("http silent", open(http, None, b"").await));
        slow.push(("https silent", open(https, Some(&tls), b"").await));
        slow.push(("http h2 idle", open(http, None, H2_PREFACE).await));
        slow.push(("https h2 idle", open(https, Some(&tls), H2_PREFACE).await));
        // A whole request, answered, then a keep-alive connection that never asks again.
        slow.push(("http keep-alive", open(http, None, WHOLE).await));
        slow.push(("https keep-alive", open(https, Some(&tls), WHOLE).await));
    }
    let opened = started.elapsed();
    assert!(
        opened < HEADER_TIMEOUT,
        "opening took {opened:?}; the test cannot judge the timeout"
    );

    // Meanwhile, normal requests on both listeners are answered.
    let plain = reqwest::Client::new();
    for _ in 0..5 {
        let res = server
            .client
            .get(format!("{}/health", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let res = plain
            .get(format!("{}/health", server.http_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every stalled connection is closed by the server within the timeout and a margin.
    let deadline = started + HEADER_TIMEOUT + MARGIN;
    let results = futures::future::join_all(
        slow.into_iter()
            .map(|(kind, s)| async move { (kind, closed_by(s, deadline).await) }),
    )
    .await;
    let mut open = std::collections::BTreeMap::<&str, usize>::new();
    for (kind, closed) in &results {
        if !closed {
            *open.entry(kind).or_default() += 1;
        }
    }
    assert!(
        open.is_empty(),
        "stalled connections still open after {:?} (of {}): {open:?}",
        started.elapsed(),
        results.len(),
    );

    // And the service still answers afterwards.
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200);
}

/// With every connection slot taken, a new client waits (it is not accepted and refused) and is
/// served as soon as a stalled connection is closed and frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_makes_new_clients_wait_instead_of_failing() {
    const SLOTS: usize = 4;
    let server = TestServer::start_with(
        Backend::Sqlite,
        Options {
            connection_limits: ConnectionLimits {
                header_read_timeout: HEADER_TIMEOUT,
                max_connections: SLOTS,
                ..ConnectionLimits::default()
            },
            ..Options::default()
        },
    )
    .await;
    let http: std::net::SocketAddr = server.http_url["http://".len()..].parse().unwrap();
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..SLOTS {
        slow.push(open(http, None, PARTIAL).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // let the server take them all

    let waiting = tokio::spawn(
        reqwest::Client::new()
            .get(format!("{}/health", server.http_url))
            .send(),
    );
    tokio::time::sleep(HEADER_TIMEOUT / 2).await;
    assert!(
        !waiting.is_finished(),
        "served although every slot was taken"
    );
    let res = tokio::time::timeout(HEADER_TIMEOUT + MARGIN, waiting)
        .await
        .expect("still waiting after the stalled connections timed out")
        .unwrap()
        .expect("the waiting request failed instead of being served");
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() >= HEADER_TIMEOUT);
    drop(slow);
}
