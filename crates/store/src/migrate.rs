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
        version: 17,
        sqlite: include_str!("../migrations/sqlite/0017_cloud.sql"),
        postgres: include_str!("../migrations/postgres/0017_cloud.sql"),
    },
    Migration {
        version: 18,
        sqlite: include_str!("../migrations/sqlite/0018_rotation.sql"),
        postgres: include_str!("../migrations/postgres/0018_rotation.sql"),
    },
    Migration {
        version: 20,
        sqlite: include_str!("../migrations/sqlite/0020_cluster.sql"),
        postgres: include_str!("../migrations/postgres/0020_cluster.sql"),
    },
    Migration {
        version: 21,
        sqlite: include_str!("../migrations/sqlite/0021_acme_reuse.sql"),
        postgres: include_str!("../migrations/postgres/0021_acme_reuse.sql"),
    },
    Migration {
        version: 23,
        sqlite: include_str!("../migrations/sqlite/0023_ocsp_answers.sql"),
        postgres: include_str!("../migrations/postgres/0023_ocsp_answers.sql"),
    },
    Migration {
        version: 25,
        sqlite: include_str!("../migrations/sqlite/0025_acme_rate_limits.sql"),
        postgres: include_str!("../migrations/postgres/0025_acme_rate_limits.sql"),
    },
    Migration {
        version: 26,
        sqlite: include_str!("../migrations/sqlite/0026_cloud_backfill.sql"),
        postgres: include_str!("../migrations/postgres/0026_cloud_backfill.sql"),
    },
    Migration {
        version: 27,
        sqlite: include_str!("../migrations/sqlite/0027_rotation_heartbeats.sql"),
        postgres: include_str!("../migrations/postgres/0027_rotation_heartbeats.sql"),
    },
    Migration {
        version: 31,
        sqlite: include_str!("../migrations/sqlite/0031_secret_changes.sql"),
        postgres: include_str!("../migrations/postgres/0031_secret_changes.sql"),
    },
    Migration {
        version: 32,
        sqlite: include_str!("../migrations/sqlite/0032_crl_markers.sql"),
        postgres: include_str!("../migrations/postgres/0032_crl_markers.sql"),
    },
    Migration {
        version: 33,
        sqlite: include_str!("../migrations/sqlite/0033_console.sql"),
        postgres: include_str!("../migrations/postgres/0033_console.sql"),
    },
    Migration {
        version: 34,
        sqlite: include_str!("../migrations/sqlite/0034_status_counts.sql"),
        postgres: include_str!("../migrations/postgres/0034_status_counts.sql"),
    },
    Migration {
        version: 36,
        sqlite: include_str!("../migrations/sqlite/0036_acme_changes.sql"),
        postgres: include_str!("../migrations/postgres/0036_acme_changes.sql"),
    },
    Migration {
        version: 37,
        sqlite: include_str!("../migrations/sqlite/0037_kmip_changes.sql"),
        postgres: include_str!("../migrations/postgres/0037_kmip_changes.sql"),
    },
    Migration {
        version: 38,
        sqlite: include_str!("../migrations/sqlite/0038_device_tag_columns.sql"),
        postgres: include_str!("../migrations/postgres/0038_device_tag_columns.sql"),
    },
    Migration {
        version: 39,
        sqlite: include_str!("../migrations/sqlite/0039_sweep_horizons.sql"),
        postgres: include_str!("../migrations/postgres/0039_sweep_horizons.sql"),
    },
    Migration {
        version: 40,
        sqlite: include_str!("../migrations/sqlite/0040_audit_lock_head.sql"),
        postgres: include_str!("../migrations/postgres/0040_audit_lock_head.sql"),
    },
];

/// Whether every migration this binary knows is applied (a replica of an older binary may have migrated
/// the database only partly, or another replica may still be migrating it).
pub(crate) async fn complete(pool: &AnyPool) -> Result<bool, Error> {
    let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?;
    Ok(MIGRATIONS
        .iter()
        .all(|m| applied.iter().any(|(v,)| *v == m.version)))
}

/// Lock id for migrations across processes on PostgreSQL ("SHEM").
const MIGRATION_LOCK: i64 = 0x5348_454D;

/// Applies every pending migration. On PostgreSQL the whole run holds an advisory lock, so replicas started
/// at the same instant on an empty database migrate it once: the others wait, then find nothing to do
/// (without it, concurrent `CREATE TABLE`s fail on the catalog's unique indexes).
pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), Error> {
    let mut conn = pool.acquire().await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let outcome = apply(&mut conn, backend).await;
    if backend == Backend::Postgres {
        // A failed unlock leaves the lock to the session: the connection is closed, not returned to the pool.
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            conn.close_on_drop();
        }
    }
    outcome
}

async fn apply(conn: &mut sqlx::AnyConnection, backend: Backend) -> Result<(), Error> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    for m in MIGRATIONS {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
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
        for mut statement in statements(script) {
            if backend == Backend::Sqlite {
                // SQLite has no `$$` quoting: there the marks only keep a trigger body whole.
                statement = statement.replace("$$", "");
            }
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

/// Splits a script into statements at `;`, dropping `--` comment lines; a `$$`-quoted function body (or, on
/// SQLite, a trigger body between `$$` marks) is one piece. The scripts are ours, written so that no statement contains `;` inside a literal.
fn statements(script: &str) -> Vec<String> {
    let body: String = script
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut current = String::new();
    // Even pieces of a split at `$$` are outside a function body, odd ones inside.
    for (i, piece) in body.split("$$").enumerate() {
        if i > 0 {
            current.push_str("$$");
        }
        if i % 2 == 1 {
            current.push_str(piece);
            continue;
        }
        let mut parts = piece.split(';');
        if let Some(first) = parts.next() {
            current.push_str(first);
        }
        for part in parts {
            out.push(std::mem::take(&mut current));
            current.push_str(part);
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn statements_split_at_semicolons_but_keep_function_bodies_whole() {
        let script = "-- a comment; with a semicolon\nCREATE TABLE a (x INT);\nCREATE FUNCTION f() RETURNS trigger \
                      LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  RETURN NULL;\nEND\n$$;\nCREATE TRIGGER t AFTER \
                      UPDATE ON a FOR EACH ROW EXECUTE FUNCTION f();\n";
        let got = statements(script);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0], "CREATE TABLE a (x INT)");
        assert!(got[1].starts_with("CREATE FUNCTION f()"), "{}", got[1]);
        assert!(
            got[1].ends_with("PERFORM 1;\n  RETURN NULL;\nEND\n$$"),
            "{}",
            got[1]
        );
        assert!(got[2].starts_with("CREATE TRIGGER t"), "{}", got[2]);
    }

    #[test]
    fn every_migration_splits_into_statements() {
        for m in super::MIGRATIONS {
            for script in [m.sqlite, m.postgres] {
                let parts = statements(script);
                assert!(
                    parts.iter().all(|p| p.matches("$$").count() % 2 == 0),
                    "migration {}: a function body was cut",
                    m.version
                );
            }
        }
    }
}
