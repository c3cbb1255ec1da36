//! Scratch PostgreSQL databases for tests and benchmarks: one fresh database per test, dropped after.

use sqlx::any::install_default_drivers;
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

use crate::Error;

/// The local PostgreSQL server tests use; override with `SHEDU_TEST_POSTGRES`.
pub fn postgres_admin_url() -> String {
    std::env::var("SHEDU_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database with a random name on the server of `admin_url`; returns its URL.
pub async fn create_postgres_database(admin_url: &str) -> Result<String, Error> {
    install_default_drivers();
    let name = format!("shedu_test_{}", hex::encode(rand::random::<[u8; 6]>()));
    let mut conn = AnyConnection::connect(admin_url)
        .await
        .map_err(Error::unavailable)?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let _ = conn.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    Ok(format!("{base}/{name}"))
}

/// Drops a database made by [`create_postgres_database`], disconnecting its sessions.
pub async fn drop_postgres_database(admin_url: &str, db_url: &str) -> Result<(), Error> {
    let Some((_, name)) = db_url.rsplit_once('/') else {
        return Ok(());
    };
    if !name.starts_with("shedu_test_")
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::Config(format!("refusing to drop {name}")));
    }
    let mut conn = AnyConnection::connect(admin_url)
        .await
        .map_err(Error::unavailable)?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(())
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the local PostgreSQL server.
    Postgres,
}

/// A database for one test: a SQLite file in a temporary folder, or a fresh PostgreSQL database that is
/// dropped with this value. A missing PostgreSQL server fails loudly: CI must never skip those tests.
#[derive(Debug)]
pub struct ScratchDb {
    /// The URL to connect to.
    pub url: String,
    postgres_admin: Option<String>,
    dir: Option<std::path::PathBuf>,
}

impl ScratchDb {
    /// Creates a fresh database.
    pub async fn new(backend: TestBackend) -> ScratchDb {
        match backend {
            TestBackend::Sqlite => {
                let dir = std::env::temp_dir().join(format!(
                    "shedu-test-{}",
                    hex::encode(rand::random::<[u8; 8]>())
                ));
                let _ = std::fs::create_dir_all(&dir);
                let url = format!("sqlite://{}?mode=rwc", dir.join("shedu.db").display());
                ScratchDb {
                    url,
                    postgres_admin: None,
                    dir: Some(dir),
                }
            }
            TestBackend::Postgres => {
                let admin = postgres_admin_url();
                match create_postgres_database(&admin).await {
                    Ok(url) => ScratchDb {
                        url,
                        postgres_admin: Some(admin),
                        dir: None,
                    },
                    Err(e) => panic!(
                        "PostgreSQL is required for this test and is not reachable at {admin} ({e:?}). \
                         Run the tests through scripts/test or scripts/services (they start one), or point \
                         SHEDU_TEST_POSTGRES at a server."
                    ),
                }
            }
        }
    }
}

impl ScratchDb {
    /// The database at `url` without owning it: dropping this deletes nothing (a second server on a
    /// database another [`ScratchDb`] owns).
    pub fn shared(url: &str) -> ScratchDb {
        ScratchDb {
            url: url.to_string(),
            postgres_admin: None,
            dir: None,
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(admin) = self.postgres_admin.take() {
            let url = self.url.clone();
            // Drop may run inside a runtime; a thread with its own runtime avoids blocking it.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    let _ = rt.block_on(drop_postgres_database(&admin, &url));
                }
            })
            .join();
        }
    }
}

/// The event words for storage tests and benchmarks that run without the services crate: the same words
/// `shedu_core::EVENT_WORDS` gives, so the tests' expectations read as the platform's events do.
pub static TEST_WORDS: crate::EventWords = crate::EventWords {
    source: "/test",
    certificate_status_changed: "certificate.status_changed",
    ca_status_changed: "ca.status_changed",
    device_status_changed: "device.status_changed",
    device_registered: "device.registered",
    device_enrolled: "device.enrolled",
    device_reenrolled: "device.reenrolled",
    certificate_revoked: "certificate.revoked",
    certificate_expiry_reminder: "certificate.expiry_reminder",
};

/// The actor of changes that storage tests and benchmarks make.
pub static TEST_ACTOR: std::sync::LazyLock<crate::audit::AuditContext> =
    std::sync::LazyLock::new(|| crate::audit::AuditContext::new("test", "test", "admin", "", ""));

/// The audit record of a test's change, `action` by [`TEST_ACTOR`].
pub fn test_audit(action: &'static str) -> crate::Audited<'static> {
    crate::Audited {
        actor: &TEST_ACTOR,
        action,
    }
}

/// A root CA row `id` for tests: a placeholder certificate, valid until `not_after`, warning
/// `expiry_warning_days` before its certificates expire.
pub fn test_ca_row(id: &str, not_after: i64, expiry_warning_days: i64) -> crate::CaRow {
    crate::CaRow {
        id: id.into(),
        name: id.into(),
        kind: "root".into(),
        parent_id: None,
        key_type: "ec-p256".into(),
        engine: None,
        key_sealed: None,
        certificate_der: vec![0x30],
        subject: format!("CN={id}"),
        serial: "01".into(),
        fingerprint: format!("{id:0>64}"),
        not_before: 0,
        not_after,
        status: "active".into(),
        default_validity_days: 365,
        key_usages: String::new(),
        ext_key_usages: String::new(),
        path_len: None,
        allowed_key_types: "ec-p256".into(),
        expiry_warning_days,
        created_at: 0,
        name_policy: None,
    }
}
