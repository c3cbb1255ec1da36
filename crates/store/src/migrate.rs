//! Schema migrations, one directory per backend, embedded in the binary.
//!
//! A tiny runner instead of `sqlx::migrate!`: the macro needs sqlx's `macros` feature, which compiles both
//! database drivers a second time; this runner is twenty lines and applies each file in one transaction.

use sqlx::AnyPool;

use crate::{Backend, Error};

struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_va.sql"),
        postgres: include_str!("../migrations/postgres/0002_va.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_events.sql"),
        postgres: include_str!("../migrations/postgres/0003_events.sql"),
    },
    Migration {
        version: 4,
        sqlite: include_str!("../migrations/sqlite/0004_auth.sql"),
        postgres: include_str!("../migrations/postgres/0004_auth.sql"),
    },
    Migration {
        version: 5,
        sqlite: include_str!("../migrations/sqlite/0005_audit.sql"),
        postgres: include_str!("../migrations/postgres/0005_audit.sql"),
    },
    Migration {
        version: 6,
        sqlite: include_str!("../migrations/sqlite/0006_devices.sql"),
        postgres: include_str!("../migrations/postgres/0006_devices.sql"),
    },
    Migration {
        version: 7,
        sqlite: include_str!("../migrations/sqlite/0007_ras.sql"),
        postgres: include_str!("../migrations/postgres/0007_ras.sql"),
    },
    Migration {
        version: 8,
        sqlite: include_str!("../migrations/sqlite/0008_auth_tokens.sql"),
        postgres: include_str!("../migrations/postgres/0008_auth_tokens.sql"),
    },
    Migration {
        version: 10,
        sqlite: include_str!("../migrations/sqlite/0010_webhooks.sql"),
        postgres: include_str!("../migrations/postgres/0010_webhooks.sql"),
    },
    Migration {
        version: 11,
        sqlite: include_str!("../migrations/sqlite/0011_names.sql"),
        postgres: include_str!("../migrations/postgres/0011_names.sql"),
    },
    Migration {
        version: 12,
        sqlite: include_str!("../migrations/sqlite/0012_login_failures_age.sql"),
        postgres: include_str!("../migrations/postgres/0012_login_failures_age.sql"),
    },
    Migration {
        version: 13,
        sqlite: include_str!("../migrations/sqlite/0013_connector.sql"),
        postgres: include_str!("../migrations/postgres/0013_connector.sql"),
    },
    Migration {
        version: 14,
        sqlite: include_str!("../migrations/sqlite/0014_acme.sql"),
        postgres: include_str!("../migrations/postgres/0014_acme.sql"),
    },
    Migration {
        version: 15,
        sqlite: include_str!("../migrations/sqlite/0015_secrets.sql"),
        postgres: include_str!("../migrations/postgres/0015_secrets.sql"),
    },
    Migration {
        version: 16,
        sqlite: include_str!("../migrations/sqlite/0016_kmip.sql"),
        postgres: include_str!("../migrations/postgres/0016_kmip.sql"),
    },
    Migration {
        version: 18,
        sqlite: include_str!("../migrations/sqlite/0018_rotation.sql"),
        postgres: include_str!("../migrations/postgres/0018_rotation.sql"),
    },
];

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), Error> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(pool)
        .await?;
    for m in MIGRATIONS {
        let mut tx = pool.begin().await?;
        let done: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        let script = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        for statement in statements(script) {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(m.version)
            .bind(now_secs())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, "applied schema migration");
    }
    Ok(())
}

/// Splits a script into statements at `;` line ends, dropping `--` comment lines. The scripts are ours,
/// written so that no statement contains `;` inside a literal.
fn statements(script: &str) -> Vec<String> {
    let body: String = script
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    body.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
