//! Scratch PostgreSQL databases for tests and benchmarks: one fresh database per test, dropped after.

use sqlx::any::install_default_drivers;
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

use crate::Error;

/// The local PostgreSQL server tests use; override with `SHEDU_TEST_POSTGRES`.
pub fn postgres_admin_url() -> String {
    std::env::var("SHEDU_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database with a random name on the server of `admin_url`; returns its URL.
pub async fn create_postgres_database(admin_url: &str) -> Result<String, Error> {
    install_default_drivers();
    let name = format!("shedu_test_{}", hex::encode(rand::random::<[u8; 6]>()));
    let mut conn = AnyConnection::connect(admin_url).await.map_err(Error::unavailable)?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    let _ = conn.close().await;
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
    Ok(format!("{base}/{name}"))
}

/// Drops a database made by [`create_postgres_database`], disconnecting its sessions.
pub async fn drop_postgres_database(admin_url: &str, db_url: &str) -> Result<(), Error> {
    let Some((_, name)) = db_url.rsplit_once('/') else { return Ok(()) };
    if !name.starts_with("shedu_test_") || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::Config(format!("refusing to drop {name}")));
    }
    let mut conn = AnyConnection::connect(admin_url).await.map_err(Error::unavailable)?;
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await?;
    let _ = conn.close().await;
    Ok(())
}
