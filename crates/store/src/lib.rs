//! Storage for shedu: the only crate that names sqlx.
//!
//! One code path serves SQLite (the embedded default, WAL, `synchronous=FULL`) and PostgreSQL through
//! sqlx's `Any` driver; only the schema and a few statements differ per backend. Times are Unix seconds.
//!
//! Writes on SQLite go through a single connection, so transactions never fight over the lock; certificate
//! inserts additionally go through a group-commit writer ([`writer`]) so that one fsync serves every
//! certificate queued meanwhile, while each caller still returns only after its row is committed. The
//! transactions of the hot request paths (enrolment, the connector's tokens) share commits the same way
//! through [`group`], each in its own savepoint, on both backends.
#![warn(missing_docs)]

mod acme;
pub mod audit;
mod auth;
#[cfg(any(test, feature = "testing"))]
pub mod bench_fill;
mod cas;
mod certificates;
mod cloud;
mod cluster;
mod connector;
mod counts;
mod devices;
mod error;
mod events;
mod group;
mod kmip;
mod migrate;
mod model;
mod outbox;
mod ras;
mod rotation;
#[cfg(any(test, feature = "testing"))]
pub mod scratch;
mod secrets;
mod status;
mod sweep;
mod va;
mod writer;

use std::time::Duration;

/// A PostgreSQL connection idle this long is pinged before it is used again.
const IDLE_PING: Duration = Duration::from_secs(1);

use sqlx::any::AnyRow;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, AssertSqlSafe, Executor};

pub use acme::{
    ACME_ACCOUNT_KEY_EXISTS, ACME_ALREADY_REPLACED, ACME_EAB_UNUSABLE, AcmeAccountRow,
    AcmeAuthzRow, AcmeCounted, AcmeEabRow, AcmeOrderRow, AcmeRateCheck, RateRefusal, RateWindow,
};
pub use audit::Audited;
pub use auth::{ApiKeyRow, LoginFailures, Redeemed, RefreshTokenRow, UserChange, UserRow};
pub use certificates::{CertificateFilter, Page, RevokeOutcome};
pub use cloud::{CloudConnectorRow, CloudSyncKey, CloudSyncRow};
pub use cluster::{Change, ChangeFeed};
pub use connector::{ConnectorCertRow, ConnectorIssuance, ConnectorTokenRow};
#[cfg(any(test, feature = "testing"))]
pub use counts::CountCheck;
pub use devices::{
    DEVICE_ALREADY_ENROLLED, DEVICE_DECOMMISSIONED, DEVICE_LIVE_CERTIFICATES, DEVICE_RA_MISMATCH,
    DEVICE_SLOT_NOT_CA, DeviceChanges, DeviceFilter, DeviceLogRow, DeviceRow, EnrollmentOutcome,
    EnrollmentRecord, GROUP_HAS_CHILDREN, GroupRow, SlotCertificateRow, SlotRow,
};
pub use error::Error;
pub use events::EventFilter;
pub use kmip::{KmipGrantRow, KmipObjectRow};
pub use model::{CaRow, CertRow, EventRow, NewEvent};
#[cfg(any(test, feature = "testing"))]
pub use outbox::HeldTransaction;
pub use outbox::{
    DeliveryFilter, DeliveryOutcome, DeliveryRow, NewDelivery, SinkLock, SubscriptionRow,
};
pub use ras::{RA_HAS_DEVICES, RaRow, RaWrite};
pub use rotation::{
    ASSET_TEXT_COLUMNS, AssetFilter, AssetObserved, AssetRow, ExecutorRow, RUN_ACTIVE, RouteRow,
    RunRow,
};
pub use secrets::{SecretPathRow, SecretTokenRow, SecretVersionRow, SecretWrite, VersionChange};
pub use status::{Overview, SinkPosition};

/// A fresh id for a row of the outbox or the audit log (32 lowercase hex digits, a UUIDv7): unique, and
/// ordered by creation within this process, so each id lands at the right edge of its unique index, as
/// `seq` does. A random id (UUIDv4) lands on a random leaf page of an index that grows with the table:
/// every row dirtied a page of its own there, written to the WAL at each commit (and on PostgreSQL a full
/// page image after each checkpoint), which made these indexes a third of the bytes an issuance wrote.
/// Request ids the server makes are these too (the audit log indexes them).
pub fn ordered_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
pub use sweep::SweepReport;
pub use va::{
    CaProfileUpdate, CaVaSettings, CrlRow, OcspAnswerRow, ResponderRow, RevokedRow, SealedKeyRow,
    SealedSecretRow, StatusRow,
};

/// Which database is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (embedded default).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The prefix that explains a statement and the column of each plan row (for tests and benchmarks).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn explain(self) -> (&'static str, &'static str) {
        match self {
            Backend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
            Backend::Postgres => ("EXPLAIN ", "QUERY PLAN"),
        }
    }
}

/// The event words of the changes storage derives itself: set-based status transitions, an enrolment's side
/// effects, expiry reminders. Storage knows no business words: the services crate owns them
/// (`shedu_core::EVENT_WORDS`, built from its `EventKind`) and hands them over when it opens the store;
/// storage only copies them into rows.
#[derive(Debug, PartialEq, Eq)]
pub struct EventWords {
    /// The CloudEvents `source` of every event.
    pub source: &'static str,
    /// A certificate's stored status moved (sweep).
    pub certificate_status_changed: &'static str,
    /// A CA's stored status moved (sweep).
    pub ca_status_changed: &'static str,
    /// A device's derived status moved.
    pub device_status_changed: &'static str,
    /// A device was registered by its first enrolment.
    pub device_registered: &'static str,
    /// A device enrolled.
    pub device_enrolled: &'static str,
    /// A device re-enrolled.
    pub device_reenrolled: &'static str,
    /// A certificate was revoked (a superseded one, at re-enrolment).
    pub certificate_revoked: &'static str,
    /// A certificate entered an expiry reminder window.
    pub certificate_expiry_reminder: &'static str,
}

/// The handle services use for all persistence. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    /// How audit records are chained (the audit key, once set), shared by every clone.
    chain: audit::Chain,
    certs: writer::CertWriter,
    /// Group commit for write transactions (see [`group`]).
    group: group::GroupWriter,
    words: &'static EventWords,
    /// PostgreSQL's URL, for the change feed's own connection.
    feed_url: Option<cluster::FeedUrl>,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`) and applies pending migrations. The
    /// events storage derives itself are written with `words`.
    pub async fn connect(url: &str, words: &'static EventWords) -> Result<Store, Error> {
        install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::Config(format!(
                "unsupported database URL scheme in {}",
                redact_url(url)
            )));
        };
        let (read, write) = match backend {
            Backend::Sqlite => {
                private_sqlite_files(url).map_err(|e| {
                    Error::Config(format!("cannot prepare {}: {e}", redact_url(url)))
                })?;
                // The page cache is per connection: a modest one for each reader, a larger one for the
                // single writer that touches the hot index pages (64 MiB on all nine connections made idle
                // RSS grow to ~94 MB with the data; found by the benchmark).
                let read = sqlite_pool(url, 8, 2 * 1024).await?;
                let write = sqlite_pool(url, 1, 16 * 1024).await?;
                (read, write)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    // sqlx pings a connection over the network before each use (and again when it comes
                    // back, which is what drops a broken one): one extra round trip per statement outside
                    // a transaction. A connection in steady use needs no ping; one idle long enough to have
                    // been cut off unnoticed (a server restart, a proxy's idle timeout) gets it.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= IDLE_PING {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect(url)
                    .await
                    .map_err(Error::unavailable)?;
                (pool.clone(), pool)
            }
        };
        migrate::run(&write, backend).await?;
        let chain = audit::Chain::new(backend);
        let certs =
            writer::CertWriter::spawn(write.clone(), chain.clone(), words, writer::slots(backend));
        let group = group::GroupWriter::spawn(write.clone(), chain.clone(), group::slots(backend));
        Ok(Store {
            read,
            write,
            backend,
            chain,
            certs,
            group,
            words,
            feed_url: (backend == Backend::Postgres).then(|| cluster::FeedUrl(url.into())),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Reads a value from the `meta` table.
    pub async fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Writes a value into the `meta` table (insert or replace).
    pub async fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Writes a value into the `meta` table unless the key is already there; `false` when it was (someone
    /// else wrote it first: read theirs).
    pub async fn meta_insert_new(&self, key: &str, value: &[u8]) -> Result<bool, Error> {
        let done = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The row `sql` selects with its one parameter `param`, decoded; `None` when there is none.
    pub(crate) async fn read_optional<T>(
        &self,
        sql: String,
        param: &str,
        decode: fn(&AnyRow) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(param)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Every row `sql` selects, decoded.
    pub(crate) async fn read_all<T>(
        &self,
        sql: String,
        decode: fn(&AnyRow) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(decode).collect()
    }

    /// Closes the pools after the certificate writer has drained.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Makes the SQLite database file private to this user (0600 on Unix) before SQLite opens it, creating it
/// empty when missing; SQLite gives its `-wal` and `-shm` files the database file's permissions. Files left
/// readable by an older version are tightened too.
fn private_sqlite_files(url: &str) -> std::io::Result<()> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{path}{suffix}");
            if std::path::Path::new(&file).exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

async fn sqlite_pool(url: &str, max: u32, cache_kib: i64) -> Result<AnyPool, Error> {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        // A SQLite connection is a file handle in this process: it cannot be cut off like a socket, so
        // the ping sqlx sends by default on every acquire (a round trip to the connection's worker thread,
        // about as costly as a short query) checks nothing here.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA busy_timeout = 30000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                // Sorting, temporary indexes and statement journals stay in memory.
                conn.execute("PRAGMA temp_store = MEMORY").await?;
                let cache = format!("PRAGMA cache_size = -{cache_kib}");
                conn.execute(sqlx::AssertSqlSafe(cache)).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(Error::unavailable)
}

/// `word` as an SQL string literal. Event words are the services' constants, never input; quoting keeps
/// them inert all the same.
pub(crate) fn sql_word(word: &str) -> String {
    format!("'{}'", word.replace('\'', "''"))
}

/// Hides the password of a database URL for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::scratch::{ScratchDb, TEST_WORDS, TestBackend};
    use sqlx::Connection;

    /// Connections are handed out without a ping while in steady use; one that was cut off while idle (a
    /// server restart) is pinged, found dead and replaced, so the caller never sees the dead one.
    #[tokio::test]
    async fn postgres_connections_cut_off_while_idle_are_replaced() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let store = super::Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        store.meta_put("k", b"v").await.unwrap();
        let mut admin = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        let cut: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(!cut.is_empty() && cut.iter().all(|c| *c), "{cut:?}");
        admin.close().await.unwrap();
        tokio::time::sleep(super::IDLE_PING + std::time::Duration::from_millis(300)).await;
        assert_eq!(store.meta_get("k").await.unwrap(), Some(b"v".to_vec()));
        store.meta_put("k", b"w").await.unwrap();
        assert_eq!(store.meta_get("k").await.unwrap(), Some(b"w".to_vec()));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
