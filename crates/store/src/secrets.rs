//! The secret store's storage: KV v2 paths and their sealed versions, ACL policies, and tokens (only their
//! SHA-256 hashes).
//!
//! A version is written with optimistic concurrency: the caller read the path's current version, sealed the
//! value for the next one (the version is part of the sealing's associated data), and
//! [`Store::write_secret_version`] moves the path from the version it read to the next one in one
//! transaction with the version row, the pruning of versions beyond `max_versions` and the audit record.
//! If another writer got there first the update changes no row and the call returns
//! [`Error::Conflict`], writing nothing; the caller reads again and retries (or reports a failed
//! check-and-set).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::Audited;
use crate::{Error, Store};

/// One KV v2 path (its metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretPathRow {
    /// The mount (`secret`).
    pub mount: String,
    /// The path under the mount (`app/db`).
    pub path: String,
    /// The newest version (0 never appears: a path exists from its first version).
    pub current_version: i64,
    /// The oldest version still kept.
    pub oldest_version: i64,
    /// How many versions are kept (0: the store's default).
    pub max_versions: i64,
    /// Whether every write must give a check-and-set version.
    pub cas_required: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last version written.
    pub updated_at: i64,
}

/// One version of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretVersionRow {
    /// The version number (1, 2, …).
    pub version: i64,
    /// The sealed value; `None` once destroyed.
    pub sealed: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
    /// When it was soft-deleted; `None` while live.
    pub deleted_at: Option<i64>,
}

/// A new version of a path, sealed by the caller for `version`.
#[derive(Clone, Debug)]
pub struct SecretWrite {
    /// The mount.
    pub mount: String,
    /// The path under the mount.
    pub path: String,
    /// The current version the caller read (0: the path did not exist).
    pub expected: i64,
    /// The version written (`expected + 1`).
    pub version: i64,
    /// The sealed value.
    pub sealed: Vec<u8>,
    /// How many versions to keep (older ones are removed in the same transaction).
    pub keep: i64,
    /// `max_versions` for a new path (0: the store's default).
    pub max_versions: i64,
    /// Unix seconds.
    pub now: i64,
}

/// What to do to some versions of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionChange {
    /// Soft-delete (the value stays sealed, recoverable by undelete).
    Delete,
    /// Clear a soft delete.
    Undelete,
    /// Remove the sealed value for good.
    Destroy,
}

/// One token, as stored: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretTokenRow {
    /// The token's public handle (random, shown to whoever may see the token's metadata).
    pub accessor: String,
    /// SHA-256 of the token.
    pub token_sha256: Vec<u8>,
    /// The accessor of the token that created it; `None` for an orphan.
    pub parent: Option<String>,
    /// Policy names.
    pub policies: Vec<String>,
    /// A name for people (`token`, `token-svc-a`).
    pub display_name: String,
    /// The allow-listed service it was delivered to over the token socket, if any.
    pub service: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; refused from then on.
    pub expires_at: i64,
    /// Renewals never move `expires_at` past this (periodic tokens: renewable indefinitely).
    pub max_expires_at: i64,
    /// The TTL asked for, seconds.
    pub ttl: i64,
    /// The renewal period, seconds (0: not periodic).
    pub period: i64,
    /// Whether renew-self is allowed.
    pub renewable: bool,
}

const TOKEN_COLUMNS: &str = "accessor, token_sha256, parent, policies, display_name, service, created_at, \
                             expires_at, max_expires_at, ttl, period, renewable";
const PATH_COLUMNS: &str = "mount, path, current_version, oldest_version, max_versions, cas_required, \
                            created_at, updated_at";

impl Store {
    /// The metadata of `mount`/`path`, if it exists.
    pub async fn secret_path(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<SecretPathRow>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PATH_COLUMNS} FROM secret_paths WHERE mount = $1 AND path = $2"
        )))
        .bind(mount)
        .bind(path)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(path_from_row).transpose()
    }

    /// What a read needs, in one statement: the path's current version and the row of `version` (the
    /// current one when `version` is 0 or less), if it is kept. `None` when the path does not exist.
    pub async fn secret_version_to_read(
        &self,
        mount: &str,
        path: &str,
        version: i64,
    ) -> Result<Option<(i64, Option<SecretVersionRow>)>, Error> {
        let row = sqlx::query(
            "SELECT v.version, v.sealed, v.created_at, v.deleted_at, p.current_version \
             FROM secret_paths p LEFT JOIN secret_versions v \
             ON v.mount = p.mount AND v.path = p.path \
             AND v.version = CASE WHEN $3 > 0 THEN $3 ELSE p.current_version END \
             WHERE p.mount = $1 AND p.path = $2",
        )
        .bind(mount)
        .bind(path)
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let current: i64 = r.try_get(4)?;
        let found: Option<i64> = r.try_get(0)?;
        let version = match found {
            Some(_) => Some(version_from_row(&r)?),
            None => None,
        };
        Ok(Some((current, version)))
    }

    /// Every kept version of `mount`/`path`, oldest first.
    pub async fn secret_versions(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Vec<SecretVersionRow>, Error> {
        let rows = sqlx::query(
            "SELECT version, sealed, created_at, deleted_at FROM secret_versions \
             WHERE mount = $1 AND path = $2 ORDER BY version",
        )
        .bind(mount)
        .bind(path)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Writes a new version; see the module documentation. [`Error::Conflict`] (nothing written) when the
    /// path's current version is no longer `w.expected`.
    pub async fn write_secret_version(
        &self,
        w: &SecretWrite,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let oldest = (w.version - w.keep + 1).max(1);
        if w.expected == 0 {
            // A concurrent first write makes this a primary-key conflict.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO secret_paths ({PATH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)"
            )))
            .bind(&w.mount)
            .bind(&w.path)
            .bind(w.version)
            .bind(oldest)
            .bind(w.max_versions)
            .bind(w.now)
            .execute(&mut *tx)
            .await?;
        } else {
            let moved = sqlx::query(
                "UPDATE secret_paths SET current_version = $1, oldest_version = \
                 CASE WHEN oldest_version < $2 THEN $2 ELSE oldest_version END, updated_at = $3 \
                 WHERE mount = $4 AND path = $5 AND current_version = $6",
            )
            .bind(w.version)
            .bind(oldest)
            .bind(w.now)
            .bind(&w.mount)
            .bind(&w.path)
            .bind(w.expected)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                return Err(Error::Conflict { constraint: None });
            }
        }
        sqlx::query(
            "INSERT INTO secret_versions (mount, path, version, sealed, created_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&w.mount)
        .bind(&w.path)
        .bind(w.version)
        .bind(w.sealed.clone())
        .bind(w.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM secret_versions WHERE mount = $1 AND path = $2 AND version < $3")
            .bind(&w.mount)
            .bind(&w.path)
            .bind(oldest)
            .execute(&mut *tx)
            .await?;
        let target = format!("{}/{}#{}", w.mount, w.path, w.version);
        crate::audit::commit(tx, &self.chain, audit, &target, w.now).await
    }

    /// Deletes, undeletes or destroys `versions` of `mount`/`path` (versions that do not exist are
    /// skipped, as Vault does), with the audit record; [`Error::NotFound`] when the path does not exist.
    pub async fn change_secret_versions(
        &self,
        mount: &str,
        path: &str,
        versions: &[i64],
        change: VersionChange,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let exists: Option<(i64,)> = sqlx::query_as(
            "SELECT current_version FROM secret_paths WHERE mount = $1 AND path = $2",
        )
        .bind(mount)
        .bind(path)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(Error::NotFound);
        }
        let sql = match change {
            VersionChange::Delete => {
                "UPDATE secret_versions SET deleted_at = $1 \
                 WHERE mount = $2 AND path = $3 AND version = $4 AND deleted_at IS NULL AND sealed IS NOT NULL"
            }
            VersionChange::Undelete => {
                "UPDATE secret_versions SET deleted_at = NULL \
                 WHERE mount = $2 AND path = $3 AND version = $4 AND sealed IS NOT NULL AND $1 = $1"
            }
            VersionChange::Destroy => {
                "UPDATE secret_versions SET sealed = NULL \
                 WHERE mount = $2 AND path = $3 AND version = $4 AND $1 = $1"
            }
        };
        for v in versions {
            sqlx::query(sql)
                .bind(now)
                .bind(mount)
                .bind(path)
                .bind(*v)
                .execute(&mut *tx)
                .await?;
        }
        crate::audit::commit(tx, &self.chain, audit, &format!("{mount}/{path}"), now).await
    }

    /// Sets a path's `max_versions` and `cas_required`, with the audit record; [`Error::NotFound`] when the
    /// path does not exist.
    pub async fn set_secret_path_options(
        &self,
        mount: &str,
        path: &str,
        max_versions: i64,
        cas_required: bool,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let changed = sqlx::query(
            "UPDATE secret_paths SET max_versions = $1, cas_required = $2, updated_at = $3 \
             WHERE mount = $4 AND path = $5",
        )
        .bind(max_versions)
        .bind(i64::from(cas_required))
        .bind(now)
        .bind(mount)
        .bind(path)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        crate::error::found(changed)?;
        crate::audit::commit(tx, &self.chain, audit, &format!("{mount}/{path}"), now).await
    }

    /// Removes a path with every version, with the audit record; [`Error::NotFound`] when it does not
    /// exist.
    pub async fn delete_secret_path(
        &self,
        mount: &str,
        path: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM secret_versions WHERE mount = $1 AND path = $2")
            .bind(mount)
            .bind(path)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM secret_paths WHERE mount = $1 AND path = $2")
            .bind(mount)
            .bind(path)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        crate::error::found(gone)?;
        crate::audit::commit(tx, &self.chain, audit, &format!("{mount}/{path}"), now).await
    }

    /// The paths of `mount` that start with `prefix`, in order.
    pub async fn secret_paths_under(
        &self,
        mount: &str,
        prefix: &str,
    ) -> Result<Vec<String>, Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT path FROM secret_paths WHERE mount = $1 AND substr(path, 1, length($2)) = $2 \
             ORDER BY path",
        )
        .bind(mount)
        .bind(prefix)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The JSON document of policy `name`.
    pub async fn secret_policy(&self, name: &str) -> Result<Option<String>, Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT document FROM secret_policies WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|r| r.0))
    }

    /// The names of every policy.
    pub async fn secret_policy_names(&self) -> Result<Vec<String>, Error> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM secret_policies ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Creates or replaces policy `name`, with the audit record.
    pub async fn put_secret_policy(
        &self,
        name: &str,
        document: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO secret_policies (name, document, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(document)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(tx, &self.chain, audit, &format!("policy/{name}"), now).await
    }

    /// Deletes policy `name` (tokens naming it keep the name, which then grants nothing), with the audit
    /// record; [`Error::NotFound`] when there is none.
    pub async fn delete_secret_policy(
        &self,
        name: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let gone = sqlx::query("DELETE FROM secret_policies WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        crate::error::found(gone)?;
        crate::audit::commit(tx, &self.chain, audit, &format!("policy/{name}"), now).await
    }

    /// Stores a new token with its audit record; tokens that expired before `purge_before` are removed
    /// in the same transaction. `revoke_service`: the token replaces every earlier token delivered to
    /// that service (they and their children are revoked with it).
    pub async fn insert_secret_token(
        &self,
        t: &SecretTokenRow,
        purge_before: i64,
        revoke_service: bool,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM secret_tokens WHERE expires_at < $1")
            .bind(purge_before)
            .execute(&mut *tx)
            .await?;
        if let (true, Some(service)) = (revoke_service, &t.service) {
            let earlier: Vec<(String,)> =
                sqlx::query_as("SELECT accessor FROM secret_tokens WHERE service = $1")
                    .bind(service)
                    .fetch_all(&mut *tx)
                    .await?;
            for (accessor,) in earlier {
                revoke_tree(&mut tx, &accessor).await?;
            }
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO secret_tokens ({TOKEN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(&t.accessor)
        .bind(t.token_sha256.clone())
        .bind(t.parent.clone())
        .bind(t.policies.join(","))
        .bind(&t.display_name)
        .bind(t.service.clone())
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.max_expires_at)
        .bind(t.ttl)
        .bind(t.period)
        .bind(i64::from(t.renewable))
        .execute(&mut *tx)
        .await?;
        let target = format!("token/{}", t.accessor);
        crate::audit::commit(tx, &self.chain, audit, &target, t.created_at).await
    }

    /// A token by its hash.
    pub async fn secret_token_by_hash(
        &self,
        token_sha256: &[u8],
    ) -> Result<Option<SecretTokenRow>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM secret_tokens WHERE token_sha256 = $1"
        )))
        .bind(token_sha256.to_vec())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// A token by its accessor.
    pub async fn secret_token(&self, accessor: &str) -> Result<Option<SecretTokenRow>, Error> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM secret_tokens WHERE accessor = $1");
        self.read_optional(sql, accessor, token_from_row).await
    }

    /// Moves a token's expiry, with the audit record; [`Error::NotFound`] when it is gone.
    pub async fn renew_secret_token(
        &self,
        accessor: &str,
        expires_at: i64,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let changed = sqlx::query("UPDATE secret_tokens SET expires_at = $1 WHERE accessor = $2")
            .bind(expires_at)
            .bind(accessor)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        crate::error::found(changed)?;
        crate::audit::commit(tx, &self.chain, audit, &format!("token/{accessor}"), now).await
    }

    /// Revokes a token and every token descended from it, with the audit record. Returns how many were
    /// revoked.
    pub async fn revoke_secret_token(
        &self,
        accessor: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<u64, Error> {
        let mut tx = self.write.begin().await?;
        let n = revoke_tree(&mut tx, accessor).await?;
        crate::audit::commit(tx, &self.chain, audit, &format!("token/{accessor}"), now).await?;
        Ok(n)
    }
}

/// Deletes the token `accessor` and its descendants (a recursive query both backends run).
async fn revoke_tree(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    accessor: &str,
) -> Result<u64, Error> {
    let n = sqlx::query(
        "WITH RECURSIVE tree(accessor) AS ( \
             SELECT accessor FROM secret_tokens WHERE accessor = $1 \
             UNION SELECT t.accessor FROM secret_tokens t JOIN tree ON t.parent = tree.accessor) \
         DELETE FROM secret_tokens WHERE accessor IN (SELECT accessor FROM tree)",
    )
    .bind(accessor)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n)
}

fn path_from_row(r: &AnyRow) -> Result<SecretPathRow, Error> {
    Ok(SecretPathRow {
        mount: r.try_get(0)?,
        path: r.try_get(1)?,
        current_version: r.try_get(2)?,
        oldest_version: r.try_get(3)?,
        max_versions: r.try_get(4)?,
        cas_required: r.try_get::<i64, _>(5)? != 0,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

fn version_from_row(r: &AnyRow) -> Result<SecretVersionRow, Error> {
    Ok(SecretVersionRow {
        version: r.try_get(0)?,
        sealed: r.try_get(1)?,
        created_at: r.try_get(2)?,
        deleted_at: r.try_get(3)?,
    })
}

fn token_from_row(r: &AnyRow) -> Result<SecretTokenRow, Error> {
    let policies: String = r.try_get(3)?;
    Ok(SecretTokenRow {
        accessor: r.try_get(0)?,
        token_sha256: r.try_get(1)?,
        parent: r.try_get(2)?,
        policies: policies
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        display_name: r.try_get(4)?,
        service: r.try_get(5)?,
        created_at: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        max_expires_at: r.try_get(8)?,
        ttl: r.try_get(9)?,
        period: r.try_get(10)?,
        renewable: r.try_get::<i64, _>(11)? != 0,
    })
}
