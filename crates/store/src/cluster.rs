//! Cluster coherence on PostgreSQL: the change feed every replica listens to, heartbeats through it, and the
//! cache leases that let a revocation wait for every replica (schema and triggers: `0020_cluster.sql`).
//!
//! Storage only moves the words; when a cache may be used and what a change invalidates is the services
//! crate's rule (`core/src/cluster.rs`).

use std::sync::Arc;

use sqlx::Row;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::{Backend, Error, Store};

/// The channel the triggers and heartbeats notify on.
const CHANNEL: &str = "shedu_changes";

/// Milliseconds since the Unix epoch on the database's clock: every replica measures leases on this one clock.
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// A change another replica (or this one) committed, as the feed delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A certificate's revocation status changed (revoked, or released from hold).
    Certificate {
        /// Its CA.
        ca_id: String,
        /// Its serial, hex as stored.
        serial: String,
    },
    /// A CA or its validation settings were created or changed.
    Ca {
        /// The CA.
        id: String,
    },
    /// A secret-store token was revoked, renewed or deleted, or a policy changed.
    Secrets,
    /// A KMIP managed object, or a grant on it, changed (`0037_kmip_changes.sql`).
    Kmip {
        /// The object's Unique Identifier.
        uid: String,
    },
    /// An RA (and with it its ACME settings) or an ACME account was created, changed or deleted.
    Acme,
    /// A replica's heartbeat: every change committed before `at_ms` was delivered before it.
    Beat {
        /// The replica that sent it.
        replica: String,
        /// Its sequence number at that replica.
        n: u64,
        /// When it was sent, database clock, ms.
        at_ms: i64,
    },
}

impl Change {
    fn parse(payload: &str) -> Option<Change> {
        // A uid is the rest of the payload, whatever it holds (Register may be given one).
        if let Some(uid) = payload.strip_prefix("kmip ") {
            return (!uid.is_empty()).then(|| Change::Kmip {
                uid: uid.to_string(),
            });
        }
        let mut words = payload.split(' ');
        let change = match words.next()? {
            "certificate" => Change::Certificate {
                ca_id: words.next()?.to_string(),
                serial: words.next()?.to_string(),
            },
            "ca" => Change::Ca {
                id: words.next()?.to_string(),
            },
            "secrets" => Change::Secrets,
            "acme" => Change::Acme,
            "beat" => Change::Beat {
                replica: words.next()?.to_string(),
                n: words.next()?.parse().ok()?,
                at_ms: words.next()?.parse().ok()?,
            },
            _ => return None,
        };
        words.next().is_none().then_some(change)
    }
}

/// The database URL, kept for the feed's own connection; never printed with its password.
#[derive(Clone)]
pub(crate) struct FeedUrl(pub(crate) Arc<str>);

impl std::fmt::Debug for FeedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::redact_url(&self.0))
    }
}

/// A connection listening to the change feed.
pub struct ChangeFeed {
    listener: PgListener,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed").finish_non_exhaustive()
    }
}

impl ChangeFeed {
    /// The next change; `Ok(None)` when the connection was lost, and with it any change sent meanwhile
    /// (the caller must forget everything it cached and open a new feed). Payloads this version does not
    /// know are skipped.
    pub async fn next(&mut self) -> Result<Option<Change>, Error> {
        loop {
            match self.listener.try_recv().await.map_err(Error::unavailable)? {
                None => return Ok(None),
                Some(n) => {
                    if let Some(change) = Change::parse(n.payload()) {
                        return Ok(Some(change));
                    }
                    tracing::debug!(payload = n.payload(), "unknown change notification");
                }
            }
        }
    }
}

impl Store {
    /// Opens a connection listening to the change feed, named `application_name` in `pg_stat_activity`.
    /// `None` on SQLite, where one process owns the database.
    pub async fn change_feed(&self, application_name: &str) -> Result<Option<ChangeFeed>, Error> {
        let Some(url) = &self.feed_url else {
            return Ok(None);
        };
        let options: sqlx::postgres::PgConnectOptions = url
            .0
            .parse()
            .map_err(|e| Error::Config(format!("database URL: {e}")))?;
        // One connection of its own, never reused: a lost connection must surface as `None` once.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options.application_name(application_name))
            .await
            .map_err(Error::unavailable)?;
        let mut listener = PgListener::connect_with(&pool)
            .await
            .map_err(Error::unavailable)?;
        listener.listen(CHANNEL).await.map_err(Error::unavailable)?;
        Ok(Some(ChangeFeed { listener }))
    }

    /// Sends heartbeat `n` of `replica` through the feed; returns its time (database clock, ms).
    pub async fn send_beat(&self, replica: &str, n: u64) -> Result<i64, Error> {
        self.require_postgres()?;
        // `pg_notify` returns void, which the `Any` driver cannot decode: only the time is selected.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH t AS (SELECT {DB_NOW_MS} AS ms), \
             n AS (SELECT pg_notify('{CHANNEL}', 'beat ' || $1 || ' ' || $2 || ' ' || t.ms) FROM t) \
             SELECT t.ms FROM t, n"
        )))
        .bind(replica)
        .bind(n.to_string())
        .fetch_one(&self.write)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Records that `replica` applied every change committed before `synced_at` and may use its caches
    /// until `lease_until` (database clock, ms). Refused (`false`) when that time has passed, or when the
    /// replica's lease is not live and a revocation raised the fence past `synced_at`: the caller may then
    /// not use its caches. Leases of replicas gone for a day are deleted.
    pub async fn renew_lease(
        &self,
        replica: &str,
        synced_at: i64,
        lease_until: i64,
    ) -> Result<bool, Error> {
        self.require_postgres()?;
        let renewed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE replica_leases SET synced_at = GREATEST(synced_at, $2), lease_until = $3 \
             WHERE id = $1 AND $3 > {DB_NOW_MS} \
             AND (lease_until > {DB_NOW_MS} OR $2 >= (SELECT at FROM cluster_fence WHERE id = 1))"
        )))
        .bind(replica)
        .bind(synced_at)
        .bind(lease_until)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1;
        let renewed = renewed
            || sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO replica_leases (id, synced_at, lease_until) SELECT $1, $2, $3 \
                 WHERE $3 > {DB_NOW_MS} AND $2 >= (SELECT at FROM cluster_fence WHERE id = 1) \
                 ON CONFLICT (id) DO NOTHING"
            )))
            .bind(replica)
            .bind(synced_at)
            .bind(lease_until)
            .execute(&self.write)
            .await?
            .rows_affected()
                == 1;
        if synced_at % 60_000 < 1_000 {
            sqlx::query("DELETE FROM replica_leases WHERE lease_until < $1")
                .bind(synced_at - 86_400_000)
                .execute(&self.write)
                .await?;
        }
        Ok(renewed)
    }

    /// Gives up `replica`'s lease (a clean shutdown), so no revocation waits for it.
    pub async fn drop_lease(&self, replica: &str) -> Result<(), Error> {
        self.require_postgres()?;
        sqlx::query("DELETE FROM replica_leases WHERE id = $1")
            .bind(replica)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Called after a revocation committed: raises the fence to the database's current time and returns
    /// it. Replicas must sync past it before their caches count again.
    pub async fn raise_fence(&self) -> Result<i64, Error> {
        self.require_postgres()?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH t AS (SELECT {DB_NOW_MS} AS ms) \
             UPDATE cluster_fence SET at = GREATEST(at, t.ms) FROM t WHERE id = 1 RETURNING t.ms"
        )))
        .fetch_one(&self.write)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// How many replicas other than `me` hold a live lease but have not yet applied the changes committed
    /// before `since` (database clock, ms).
    pub async fn replicas_behind(&self, me: &str, since: i64) -> Result<i64, Error> {
        self.require_postgres()?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM replica_leases WHERE id <> $1 AND synced_at < $2 AND lease_until > {DB_NOW_MS}"
        )))
        .bind(me)
        .bind(since)
        .fetch_one(&self.write)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Whether the database answers within `timeout` and carries every migration this binary knows.
    pub async fn ready(&self, timeout: std::time::Duration) -> Result<(), Error> {
        match tokio::time::timeout(timeout, crate::migrate::complete(&self.read)).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(Error::Config("the database schema is not complete".into())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    fn require_postgres(&self) -> Result<(), Error> {
        match self.backend {
            Backend::Postgres => Ok(()),
            Backend::Sqlite => Err(Error::Config(
                "cluster coherence needs PostgreSQL: a SQLite database has one process".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn payloads_parse_and_strangers_are_skipped() {
        assert_eq!(
            Change::parse("certificate ca-1 0a1b"),
            Some(Change::Certificate {
                ca_id: "ca-1".into(),
                serial: "0a1b".into()
            })
        );
        assert_eq!(
            Change::parse("ca c-2"),
            Some(Change::Ca { id: "c-2".into() })
        );
        assert_eq!(Change::parse("secrets"), Some(Change::Secrets));
        assert_eq!(Change::parse("acme"), Some(Change::Acme));
        assert_eq!(
            Change::parse("kmip a b"),
            Some(Change::Kmip { uid: "a b".into() })
        );
        assert_eq!(
            Change::parse("beat r1 7 1700000000123"),
            Some(Change::Beat {
                replica: "r1".into(),
                n: 7,
                at_ms: 1_700_000_000_123
            })
        );
        for bad in [
            "",
            "ca",
            "ca a b",
            "beat r1 x 5",
            "beat r1 1",
            "certificate a",
            "nope x",
            "secrets x",
            "kmip",
            "kmip ",
        ] {
            assert_eq!(Change::parse(bad), None, "{bad:?}");
        }
    }
}
